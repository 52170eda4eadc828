//! The automatic decisions on a running experiment, as a pure function of its definition,
//! its current results and the time: warn about a sample-ratio mismatch (once), stop arms
//! that breach a guardrail, or conclude (with or without a winner, promoting it when the
//! experiment says so). Every decision carries the history note that explains it.

use promptstore_types::{
    Arm, ArmComparison, Conclusion, Direction, ExperimentResults, ExperimentStatus, OnConclusion,
    Outcome,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::format::{level, p_clause, pct};
use super::model::{ExperimentRecord, HistoryNote};
use super::results::{
    BETTER, WORSE, active_comparisons, best_by_estimate, describe_lift, sequential_of, sign,
    smallest_active_n,
};

/// The history kind of the SRM warning (the caller writes it once: it passes whether the
/// newest history entry already has this kind).
pub const SRM_WARNING_KIND: &str = "srm_warning";
/// `decided_by` of automatic conclusions, and the actor the worker acts as.
pub const AUTOMATIC: &str = "automatic";

/// What the decision worker should do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Nothing,
    /// The split does not match the weights: record `note` (kind `srm_warning`) in the
    /// history and decide nothing else.
    SrmWarning(HistoryNote),
    /// Apply `ExperimentChange::SetArms(arms)` (the breaching arms marked stopped, with the
    /// reason) with `note` (kind `arm_stopped`).
    StopArms {
        arms: Vec<Arm>,
        /// The names of the arms stopped now.
        stopped: Vec<String>,
        note: HistoryNote,
    },
    /// Every treatment breached a guardrail: only the control would remain. Apply
    /// `ExperimentChange::Stop` with `note` (kind `stopped`).
    StopExperiment(HistoryNote),
    /// Apply `ExperimentChange::Conclude(conclusion)` with `note` (kind `concluded`); with a
    /// promotion, in the same `apply`, move the experiment's label to `promotion.version`
    /// with `promotion.reason`. When the caller does not promote after all (the version
    /// breaks the label's variable contract), it sets `conclusion.promoted = false` and says
    /// why in the history.
    Conclude {
        conclusion: Conclusion,
        note: HistoryNote,
        promotion: Option<Promotion>,
    },
}

/// Moving the label to the winner's version.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub arm: String,
    pub version: u32,
    /// The label move's reason: `experiment <name> concluded: …`.
    pub reason: String,
}

/// A treatment arm significantly worse than the control on a guardrail, beyond its
/// tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailBreach {
    pub arm: String,
    pub metric: String,
    pub tolerance: f64,
    /// The relative lift and its always-valid interval, as measured (not direction-adjusted).
    pub estimate: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub p_value: f64,
}

impl GuardrailBreach {
    fn sentence(&self, alpha: f64) -> String {
        format!(
            "arm '{}' is worse than the control on guardrail {} beyond its {} tolerance: {} (always-valid {}% CI {} to {}, {})",
            self.arm,
            self.metric,
            pct(self.tolerance).trim_start_matches('+'),
            pct(self.estimate),
            level(alpha),
            pct(self.ci_lower),
            pct(self.ci_upper),
            p_clause(self.p_value)
        )
    }

    fn details(&self) -> Value {
        json!({
            "arm": self.arm,
            "metric": self.metric,
            "tolerance": self.tolerance,
            "estimate": self.estimate,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "p_value": self.p_value,
        })
    }
}

/// The guardrail breaches of the active treatment arms: the always-valid interval of the
/// relative lift, turned so that better is positive, lies entirely below −tolerance.
pub fn guardrail_breaches(
    experiment: &ExperimentRecord,
    results: &ExperimentResults,
) -> Vec<GuardrailBreach> {
    let mut out = Vec::new();
    for (spec, result) in experiment.guardrails.iter().zip(&results.guardrails) {
        let s = sign(result.direction);
        for c in active_comparisons(experiment, result) {
            let Some(t) = sequential_of(c) else { continue };
            let adjusted_upper = (s * t.ci_lower).max(s * t.ci_upper);
            if adjusted_upper < -spec.tolerance {
                out.push(GuardrailBreach {
                    arm: c.arm.clone(),
                    metric: result.metric.clone(),
                    tolerance: spec.tolerance,
                    estimate: t.estimate,
                    ci_lower: t.ci_lower,
                    ci_upper: t.ci_upper,
                    p_value: t.p_value,
                });
            }
        }
    }
    out
}

/// Whether `max_duration_hours` have passed since the start.
pub fn max_duration_reached(experiment: &ExperimentRecord, now: OffsetDateTime) -> bool {
    match (experiment.started_at, experiment.max_duration_hours) {
        (Some(start), Some(hours)) => now >= start + time::Duration::hours(i64::from(hours)),
        _ => false,
    }
}

/// Decide for a running experiment (anything else: `Nothing`).
///
/// In order: at the maximum duration, conclude (without a winner under SRM); under SRM,
/// warn once and do nothing else; when the primary sequential test is conclusive (an
/// active treatment significantly better, or every active treatment significantly worse)
/// and every active arm has `min_sample_per_arm` events of the primary metric, conclude;
/// when an arm breaches a guardrail, stop it (or the experiment, when no treatment would
/// remain). A winner is the best significantly better arm that breaches no guardrail.
pub fn decide(
    experiment: &ExperimentRecord,
    results: &ExperimentResults,
    now: OffsetDateTime,
    srm_already_recorded: bool,
) -> Decision {
    if experiment.status != ExperimentStatus::Running || experiment.arms.is_empty() {
        return Decision::Nothing;
    }
    let timed_out = max_duration_reached(experiment, now);
    if results.srm.mismatch {
        if timed_out {
            return conclude(experiment, results, Trigger::MaxDurationUnderSrm, &[]);
        }
        if srm_already_recorded {
            return Decision::Nothing;
        }
        return Decision::SrmWarning(srm_note(results));
    }
    let breaches = guardrail_breaches(experiment, results);
    let primary = &results.primary;
    let active = active_comparisons(experiment, primary);
    let has_winner = active
        .iter()
        .any(|c| c.call == BETTER && !breaches.iter().any(|b| b.arm == c.arm));
    let control_wins = !active.is_empty() && active.iter().all(|c| c.call == WORSE);
    let sampled = smallest_active_n(experiment, primary) >= experiment.min_sample_per_arm;
    if (has_winner || control_wins) && sampled {
        return conclude(experiment, results, Trigger::Conclusive, &breaches);
    }
    if timed_out {
        return conclude(experiment, results, Trigger::MaxDuration, &breaches);
    }
    if !breaches.is_empty() {
        return stop_arms(experiment, results, &breaches);
    }
    Decision::Nothing
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    Conclusive,
    MaxDuration,
    MaxDurationUnderSrm,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Conclusive => "conclusive",
            Trigger::MaxDuration => "max_duration",
            Trigger::MaxDurationUnderSrm => "max_duration_srm",
        }
    }
}

fn srm_note(results: &ExperimentResults) -> HistoryNote {
    let srm = &results.srm;
    HistoryNote {
        kind: SRM_WARNING_KIND.into(),
        message: format!(
            "Sample-ratio mismatch: units per arm {:?} against expected {:?} (chi² = {:.2}, {}, below the 0.001 threshold); no automatic decision is taken until the split is fixed.",
            srm.observed,
            srm.expected.iter().map(|e| e.round()).collect::<Vec<_>>(),
            srm.chi2,
            p_clause(srm.p_value)
        ),
        details: json!({
            "observed": srm.observed,
            "expected": srm.expected,
            "chi2": srm.chi2,
            "p_value": srm.p_value,
        }),
    }
}

fn comparison_details(c: &ArmComparison) -> Value {
    let mut v = json!({ "arm": c.arm, "call": c.call });
    if let Some(t) = sequential_of(c) {
        v["estimate"] = json!(t.estimate);
        v["ci_lower"] = json!(t.ci_lower);
        v["ci_upper"] = json!(t.ci_upper);
        v["p_value"] = json!(t.p_value);
    }
    if let Outcome::Defined(b) = &c.bayesian {
        v["chance_to_beat_control"] = json!(b.chance_to_beat_control);
    }
    v
}

fn conclude(
    experiment: &ExperimentRecord,
    results: &ExperimentResults,
    trigger: Trigger,
    breaches: &[GuardrailBreach],
) -> Decision {
    let primary = &results.primary;
    let metric = &primary.metric;
    let control = &experiment.arms[0].name;
    let alpha = experiment.alpha;
    let active = active_comparisons(experiment, primary);
    let candidates = active
        .iter()
        .copied()
        .filter(|c| c.call == BETTER && !breaches.iter().any(|b| b.arm == c.arm));
    let best = if trigger == Trigger::MaxDurationUnderSrm {
        None
    } else {
        best_by_estimate(candidates, primary.direction)
    };
    let control_wins = !active.is_empty() && active.iter().all(|c| c.call == WORSE);
    let events: Vec<String> = primary.arms.iter().map(|a| a.n.to_string()).collect();
    let events = format!("{} events per arm", events.join(" / "));
    let hours = experiment.max_duration_hours.unwrap_or(0);
    let (winner, reason) = match (best, trigger) {
        (Some(best), _) => (
            Some(best.arm.clone()),
            format!(
                "arm {} beat the control '{control}' on {metric}, with {events}",
                describe_lift(best, alpha)
            ),
        ),
        (None, Trigger::MaxDurationUnderSrm) => (
            None,
            format!(
                "the maximum duration of {hours} h was reached while the traffic split did not match the weights (SRM {}), so no arm can be declared the winner",
                p_clause(results.srm.p_value)
            ),
        ),
        (None, _) if control_wins && !active.is_empty() => {
            let closest = best_by_estimate(active.iter().copied(), primary.direction)
                .map(|c| format!("; the closest was {}", describe_lift(c, alpha)))
                .unwrap_or_default();
            let when = if trigger == Trigger::MaxDuration {
                format!("at the maximum duration of {hours} h, ")
            } else {
                String::new()
            };
            (
                Some(control.clone()),
                format!(
                    "{when}the control '{control}' beat every treatment on {metric}, with {events}{closest}"
                ),
            )
        }
        (None, _) => {
            let best_so_far = best_by_estimate(active.iter().copied(), primary.direction)
                .map(|c| format!(" (best: {})", describe_lift(c, alpha)))
                .unwrap_or_default();
            (
                None,
                format!(
                    "the maximum duration of {hours} h was reached with no arm significantly better than the control on {metric}{best_so_far}, with {events}"
                ),
            )
        }
    };
    let promotion = match (&winner, experiment.on_conclusion) {
        (Some(w), OnConclusion::PromoteWinner) if w != control => experiment
            .arms
            .iter()
            .find(|a| &a.name == w)
            .map(|a| Promotion {
                arm: a.name.clone(),
                version: a.version,
                reason: format!("experiment {} concluded: {reason}", experiment.name),
            }),
        _ => None,
    };
    let mut reason = reason;
    if !breaches.is_empty() {
        let b: Vec<String> = breaches.iter().map(|b| b.sentence(alpha)).collect();
        reason.push_str(&format!("; guardrails: {}", b.join("; ")));
    }
    let message = capitalise(&format!("{reason}."));
    let details = json!({
        "trigger": trigger.as_str(),
        "winner": winner,
        "promote": promotion.as_ref().map(|p| json!({ "arm": p.arm, "version": p.version })),
        "metric": metric,
        "direction": match primary.direction { Direction::Higher => "higher", Direction::Lower => "lower" },
        "events_per_arm": primary.arms.iter().map(|a| json!({ "arm": a.arm, "n": a.n })).collect::<Vec<_>>(),
        "comparisons": primary.comparisons.iter().map(comparison_details).collect::<Vec<_>>(),
        "srm_p_value": results.srm.p_value,
        "guardrail_breaches": breaches.iter().map(GuardrailBreach::details).collect::<Vec<_>>(),
    });
    Decision::Conclude {
        conclusion: Conclusion {
            winner,
            reason: message.clone(),
            promoted: promotion.is_some(),
            decided_by: AUTOMATIC.into(),
        },
        note: HistoryNote {
            kind: "concluded".into(),
            message,
            details,
        },
        promotion,
    }
}

fn stop_arms(
    experiment: &ExperimentRecord,
    results: &ExperimentResults,
    breaches: &[GuardrailBreach],
) -> Decision {
    let alpha = experiment.alpha;
    let mut arms = experiment.arms.clone();
    let mut stopped = Vec::new();
    for arm in arms.iter_mut().skip(1).filter(|a| !a.stopped) {
        let reasons: Vec<String> = breaches
            .iter()
            .filter(|b| b.arm == arm.name)
            .map(|b| b.sentence(alpha))
            .collect();
        if !reasons.is_empty() {
            arm.stopped = true;
            arm.stopped_reason = Some(capitalise(&format!("{}.", reasons.join("; "))));
            stopped.push(arm.name.clone());
        }
    }
    let sentences: Vec<String> = breaches.iter().map(|b| b.sentence(alpha)).collect();
    let details = json!({
        "stopped": stopped,
        "guardrail_breaches": breaches.iter().map(GuardrailBreach::details).collect::<Vec<_>>(),
        "srm_p_value": results.srm.p_value,
    });
    let remaining_treatments = arms.iter().skip(1).filter(|a| !a.stopped).count();
    if remaining_treatments == 0 {
        return Decision::StopExperiment(HistoryNote {
            kind: "stopped".into(),
            message: capitalise(&format!(
                "{}; no treatment arm remains, so the experiment is stopped.",
                sentences.join("; ")
            )),
            details,
        });
    }
    let names: Vec<String> = stopped.iter().map(|s| format!("'{s}'")).collect();
    Decision::StopArms {
        note: HistoryNote {
            kind: "arm_stopped".into(),
            message: capitalise(&format!(
                "Stopped {}: {}.",
                names.join(", "),
                sentences.join("; ")
            )),
            details,
        },
        arms,
        stopped,
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
