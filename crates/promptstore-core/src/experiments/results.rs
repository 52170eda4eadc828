//! The statistical results of an experiment: per metric (primary and guardrails) and per
//! treatment arm against the control, the frequentist, sequential, Bayesian and z tests;
//! the SRM check on exposures; the sample size still needed; and a plain-language verdict.
//!
//! Every number emitted is finite: a comparison the data cannot support is an explicit
//! `Outcome::Undefined` with the reason, never NaN.

use std::collections::BTreeMap;

use promptstore_stats::bayesian::{BayesianConfig, GaussianPrior, bayesian_test};
use promptstore_stats::classical::{self, Counts, ZTest};
use promptstore_stats::dist::norm_ppf;
use promptstore_stats::frequentist::{FrequentistConfig, FrequentistResult, two_sided_t_test};
use promptstore_stats::power::{MdeType, sample_size_mean, sample_size_proportion};
use promptstore_stats::sequential::{SequentialConfig, sequential_test};
use promptstore_stats::srm::{DEFAULT_SRM_THRESHOLD, srm_test};
use promptstore_stats::{ArmStats, DifferenceType, EngineError, MetricKind};
use promptstore_types::{
    ArmComparison, ArmMetric, BayesianResult, Direction, ExperimentResults, MetricResult, Outcome,
    SampleSize, SrmCheck, TestResult, Verdict,
};
use time::OffsetDateTime;

use super::format::{level, num, p_clause, pct, share};
use super::metric::{Metric, direction_of};
use super::metric_data::{MetricData, metric_data};
use super::model::ExperimentRecord;
use crate::analytics::rollup::Rollup;

/// The power of the sample-size estimate.
pub const SAMPLE_SIZE_POWER: f64 = 0.8;

/// Verdict codes.
pub const KEEP_RUNNING: &str = "keep_running";
pub const TREATMENT_WINS: &str = "treatment_wins";
pub const CONTROL_WINS: &str = "control_wins";
pub const NO_DETECTABLE_DIFFERENCE: &str = "no_detectable_difference";
pub const UNTRUSTWORTHY: &str = "untrustworthy";

/// Comparison calls.
pub const BETTER: &str = "better";
pub const WORSE: &str = "worse";
pub const INCONCLUSIVE: &str = "inconclusive";

/// Analyse an experiment.
///
/// `rollups`: each arm's events of the analysed window, by arm name (a missing arm has no
/// events); `exposures`: units first exposed per arm in the window's phase(s); `from`/`to`:
/// the window, echoed in the result. Never fails: what the data cannot support is
/// `undefined` with the reason.
pub fn analyze(
    experiment: &ExperimentRecord,
    rollups: &BTreeMap<String, Rollup>,
    exposures: &BTreeMap<String, u64>,
    from: Option<OffsetDateTime>,
    to: OffsetDateTime,
) -> ExperimentResults {
    let primary_spec = &experiment.primary_metric;
    let (primary, primary_data) = analyze_metric(
        experiment,
        &primary_spec.metric,
        direction_of(&primary_spec.metric, primary_spec.direction),
        rollups,
    );
    let guardrails = experiment
        .guardrails
        .iter()
        .map(|g| {
            analyze_metric(
                experiment,
                &g.metric,
                direction_of(&g.metric, g.direction),
                rollups,
            )
            .0
        })
        .collect();
    let srm = srm_check(experiment, exposures);
    let sample_size = sample_size(experiment, &primary, &primary_data);
    let verdict = verdict(experiment, &primary, &srm, &sample_size);
    ExperimentResults {
        experiment: experiment.id.clone(),
        status: experiment.status,
        from,
        to,
        primary,
        guardrails,
        srm,
        sample_size,
        verdict,
    }
}

/// Per-arm data of one metric, in arm order (the reason when it cannot be had).
type ArmData = Vec<Result<MetricData, String>>;

fn analyze_metric(
    experiment: &ExperimentRecord,
    metric_name: &str,
    direction: Direction,
    rollups: &BTreeMap<String, Rollup>,
) -> (MetricResult, ArmData) {
    let empty = Rollup::default();
    let metric = Metric::parse(metric_name);
    let data: ArmData = experiment
        .arms
        .iter()
        .map(|arm| {
            let rollup = rollups.get(&arm.name).unwrap_or(&empty);
            metric.clone().and_then(|m| metric_data(&m, rollup))
        })
        .collect();
    let arms = experiment
        .arms
        .iter()
        .zip(&data)
        .map(|(arm, d)| arm_metric(&arm.name, d))
        .collect();
    let is_rate = metric.as_ref().is_ok_and(Metric::is_rate);
    // Validated records have a control; an empty arm list just compares nothing.
    let control = experiment.arms.first().map_or("", |a| a.name.as_str());
    let comparisons = experiment
        .arms
        .iter()
        .zip(&data)
        .skip(1)
        .map(|(arm, d)| {
            compare(
                &ComparisonSetup {
                    experiment,
                    metric: metric_name,
                    direction,
                    is_rate,
                },
                (control, &data[0]),
                (&arm.name, d),
            )
        })
        .collect();
    (
        MetricResult {
            metric: metric_name.to_owned(),
            direction,
            arms,
            comparisons,
        },
        data,
    )
}

fn arm_metric(name: &str, data: &Result<MetricData, String>) -> ArmMetric {
    match data {
        Ok(d) => {
            let stats = d.arm_stats().ok();
            let mean = stats.filter(|s| s.n() > 0).map(|s| s.mean());
            let variance = stats.and_then(|s| match s.kind() {
                MetricKind::Proportion => (s.n() > 0).then(|| s.variance()),
                MetricKind::Mean => s.sample_variance().map(|v| v.max(0.0)),
            });
            ArmMetric {
                arm: name.to_owned(),
                n: d.n,
                sum: d.sum,
                sum_squares: d.sum_squares,
                mean: mean.filter(|m| m.is_finite()),
                variance: variance.filter(|v| v.is_finite()),
            }
        }
        Err(_) => ArmMetric {
            arm: name.to_owned(),
            n: 0,
            sum: 0.0,
            sum_squares: 0.0,
            mean: None,
            variance: None,
        },
    }
}

struct ComparisonSetup<'a> {
    experiment: &'a ExperimentRecord,
    metric: &'a str,
    direction: Direction,
    is_rate: bool,
}

fn undefined_comparison(
    setup: &ComparisonSetup<'_>,
    control: &str,
    treatment: &str,
    reason: &str,
) -> ArmComparison {
    fn u<T>(reason: &str) -> Outcome<T> {
        Outcome::Undefined {
            undefined: reason.to_owned(),
        }
    }
    ArmComparison {
        arm: treatment.to_owned(),
        control: control.to_owned(),
        abs_diff: None,
        rel_diff: None,
        frequentist_relative: u(reason),
        frequentist_absolute: u(reason),
        sequential: u(reason),
        bayesian: u(reason),
        z_pooled: setup.is_rate.then(|| u(reason)),
        z_unpooled: setup.is_rate.then(|| u(reason)),
        call: INCONCLUSIVE.into(),
    }
}

fn compare(
    setup: &ComparisonSetup<'_>,
    (control, control_data): (&str, &Result<MetricData, String>),
    (treatment, treatment_data): (&str, &Result<MetricData, String>),
) -> ArmComparison {
    let (cd, td) = match (control_data, treatment_data) {
        (Err(reason), _) | (_, Err(reason)) => {
            return undefined_comparison(setup, control, treatment, reason);
        }
        (Ok(c), Ok(t)) => (c, t),
    };
    for (name, d) in [(control, cd), (treatment, td)] {
        if d.n == 0 {
            let reason = format!(
                "arm '{name}' has no events with a value of {} yet",
                setup.metric
            );
            return undefined_comparison(setup, control, treatment, &reason);
        }
    }
    let (a, b) = match (cd.arm_stats(), td.arm_stats()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return undefined_comparison(setup, control, treatment, &e.to_string());
        }
    };
    let names = (control, treatment);
    let alpha = setup.experiment.alpha;
    let reason = |e: EngineError| engine_reason(e, setup.metric, names, &a, &b);
    let freq = |difference_type| {
        let r = two_sided_t_test(
            &a,
            &b,
            &FrequentistConfig {
                alpha,
                difference_type,
            },
        );
        frequentist_outcome(r.map_err(|e| e.to_string()), &reason)
    };
    let sequential = sequential_test(
        &a,
        &b,
        &SequentialConfig {
            alpha,
            difference_type: DifferenceType::Relative,
            tuning: setup.experiment.sequential_tuning,
        },
    )
    .map(|s| s.result)
    .map_err(|e| e.to_string());
    let sequential = frequentist_outcome(sequential, &reason);
    let prior = setup
        .experiment
        .prior
        .as_ref()
        .map(|p| GaussianPrior {
            mean: p.mean,
            variance: p.stddev * p.stddev,
            proper: true,
        })
        .unwrap_or_default();
    let bayes = bayesian_test(
        &a,
        &b,
        &BayesianConfig {
            alpha,
            difference_type: DifferenceType::Relative,
            inverse: setup.direction == Direction::Lower,
            prior,
        },
    );
    let bayesian = match bayes {
        Err(e) => Outcome::Undefined {
            undefined: e.to_string(),
        },
        Ok(r) => match r.error {
            Some(e) => Outcome::Undefined {
                undefined: reason(e),
            },
            None => finite_bayes(BayesianResult {
                estimate: r.expected,
                ci_lower: r.ci_lower,
                ci_upper: r.ci_upper,
                chance_to_beat_control: r.chance_to_win,
                risk_control: r.risk_control,
                risk_treatment: r.risk_treatment,
            }),
        },
    };
    let (z_pooled, z_unpooled) = if setup.is_rate {
        let (p, u) = z_tests(cd, td, alpha);
        (Some(p), Some(u))
    } else {
        (None, None)
    };
    let (ma, mb) = (a.mean(), b.mean());
    let call = call(&sequential, setup.direction);
    ArmComparison {
        arm: treatment.to_owned(),
        control: control.to_owned(),
        abs_diff: Some(mb - ma).filter(|d| d.is_finite()),
        rel_diff: (ma != 0.0)
            .then(|| (mb - ma) / ma)
            .filter(|d| d.is_finite()),
        frequentist_relative: freq(DifferenceType::Relative),
        frequentist_absolute: freq(DifferenceType::Absolute),
        sequential,
        bayesian,
        z_pooled,
        z_unpooled,
        call: call.into(),
    }
}

/// `better`/`worse`/`inconclusive`: whether the always-valid interval of the relative lift
/// excludes 0, and on which side, with the metric's direction applied.
fn call(sequential: &Outcome<TestResult>, direction: Direction) -> &'static str {
    let Outcome::Defined(t) = sequential else {
        return INCONCLUSIVE;
    };
    let up = t.ci_lower > 0.0;
    let down = t.ci_upper < 0.0;
    match (up, down, direction) {
        (true, _, Direction::Higher) | (_, true, Direction::Lower) => BETTER,
        (true, _, Direction::Lower) | (_, true, Direction::Higher) => WORSE,
        _ => INCONCLUSIVE,
    }
}

/// The sign that makes "better" positive.
pub(crate) fn sign(direction: Direction) -> f64 {
    match direction {
        Direction::Higher => 1.0,
        Direction::Lower => -1.0,
    }
}

fn frequentist_outcome(
    r: Result<FrequentistResult, String>,
    reason: &impl Fn(EngineError) -> String,
) -> Outcome<TestResult> {
    match r {
        Err(e) => Outcome::Undefined { undefined: e },
        Ok(r) => match r.error {
            Some(e) => Outcome::Undefined {
                undefined: reason(e),
            },
            None => finite_test(TestResult {
                estimate: r.expected,
                ci_lower: r.ci_lower,
                ci_upper: r.ci_upper,
                p_value: r.p_value.clamp(0.0, 1.0),
                stddev: r.uplift_stddev,
            }),
        },
    }
}

const NOT_FINITE: &str =
    "the computation left the floating-point range (the values are too large or too close to 0)";

pub(crate) fn finite_test(t: TestResult) -> Outcome<TestResult> {
    let all = [t.estimate, t.ci_lower, t.ci_upper, t.p_value, t.stddev];
    if all.iter().all(|x| x.is_finite()) {
        Outcome::Defined(t)
    } else {
        Outcome::Undefined {
            undefined: NOT_FINITE.into(),
        }
    }
}

fn finite_bayes(b: BayesianResult) -> Outcome<BayesianResult> {
    let all = [
        b.estimate,
        b.ci_lower,
        b.ci_upper,
        b.chance_to_beat_control,
        b.risk_control,
        b.risk_treatment,
    ];
    if all.iter().all(|x| x.is_finite()) {
        Outcome::Defined(b)
    } else {
        Outcome::Undefined {
            undefined: NOT_FINITE.into(),
        }
    }
}

/// A plain-language reason for the engines' placeholder outcomes.
fn engine_reason(
    error: EngineError,
    metric: &str,
    (control, treatment): (&str, &str),
    a: &ArmStats,
    b: &ArmStats,
) -> String {
    match error {
        EngineError::ZeroNegativeBaselineVariation => format!(
            "the control '{control}' has a mean {metric} of 0, so a lift relative to it is undefined"
        ),
        EngineError::ZeroNegativeVariance => {
            let arm = if a.variance() <= 0.0 {
                control
            } else {
                treatment
            };
            let hint = if a.kind() == MetricKind::Proportion {
                " (a rate of 0% or 100%)"
            } else if a.n() <= 1 || b.n() <= 1 {
                " (fewer than two values)"
            } else {
                " (every value is the same)"
            };
            format!(
                "arm '{arm}' has zero variance on {metric}{hint}, so there is no standard error"
            )
        }
        EngineError::NoUnitsInVariation => {
            format!("an arm has no events with a value of {metric} yet")
        }
    }
}

/// The pooled and unpooled two-proportion z tests; each interval is Δ ± z·(its own SE).
fn z_tests(
    control: &MetricData,
    treatment: &MetricData,
    alpha: f64,
) -> (Outcome<TestResult>, Outcome<TestResult>) {
    let counts = |d: &MetricData| {
        d.successes()
            .ok_or_else(|| "not a rate".to_owned())
            .and_then(|s| Counts::new(s, d.n).map_err(|e| e.to_string()))
    };
    let (a, b) = match (counts(control), counts(treatment)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            let u = || Outcome::Undefined {
                undefined: e.clone(),
            };
            return (u(), u());
        }
    };
    let z = norm_ppf(1.0 - alpha / 2.0);
    let diff = b.rate() - a.rate();
    let outcome = |t: ZTest, why: &str| match (t.statistic, t.p_value) {
        (Some(_), Some(p)) => finite_test(TestResult {
            estimate: diff,
            ci_lower: diff - z * t.se,
            ci_upper: diff + z * t.se,
            p_value: p.clamp(0.0, 1.0),
            stddev: t.se,
        }),
        _ => Outcome::Undefined {
            undefined: why.to_owned(),
        },
    };
    (
        outcome(
            classical::z_test_pooled(a, b),
            "the pooled standard error is 0: every event of both arms has the same outcome",
        ),
        outcome(
            classical::z_test_unpooled(a, b),
            "the unpooled standard error is 0: each arm's rate is 0% or 100%",
        ),
    )
}

/// Units exposed per arm against the weights; stopped arms weigh 0 (they are skipped in
/// the statistic, as gbstats skips zero-weight arms).
fn srm_check(experiment: &ExperimentRecord, exposures: &BTreeMap<String, u64>) -> SrmCheck {
    let observed: Vec<u64> = experiment
        .arms
        .iter()
        .map(|a| exposures.get(&a.name).copied().unwrap_or(0))
        .collect();
    let weights: Vec<f64> = experiment
        .arms
        .iter()
        .map(|a| if a.stopped { 0.0 } else { a.weight })
        .collect();
    match srm_test(&observed, &weights) {
        Ok(r) => {
            let chi2 = r.statistic.unwrap_or(0.0);
            let finite = chi2.is_finite()
                && r.p_value.is_finite()
                && r.expected_counts.iter().all(|e| e.is_finite());
            if finite {
                SrmCheck {
                    observed,
                    expected: r.expected_counts.clone(),
                    chi2,
                    p_value: r.p_value.clamp(0.0, 1.0),
                    mismatch: r.is_mismatch(DEFAULT_SRM_THRESHOLD),
                }
            } else {
                no_srm(observed)
            }
        }
        // Only records that bypassed validation (all weights 0, one arm) get here.
        Err(_) => no_srm(observed),
    }
}

fn no_srm(observed: Vec<u64>) -> SrmCheck {
    let k = observed.len();
    SrmCheck {
        observed,
        expected: vec![0.0; k],
        chi2: 0.0,
        p_value: 1.0,
        mismatch: false,
    }
}

/// Events per arm needed to detect a relative change of `mde` on the primary metric with
/// power 0.8 at the experiment's alpha: rates by the unpooled normal approximation (the
/// change in the metric's better direction, or the other way when that leaves 0–100%),
/// means by the normal approximation with the control's standard deviation.
fn sample_size(
    experiment: &ExperimentRecord,
    primary: &MetricResult,
    data: &ArmData,
) -> SampleSize {
    let mde = experiment.mde;
    let undefined = |why: String| SampleSize {
        mde,
        power: SAMPLE_SIZE_POWER,
        required_per_arm: None,
        remaining_per_arm: None,
        undefined: Some(why),
    };
    let control = match data.first() {
        Some(Ok(d)) => d,
        Some(Err(why)) => return undefined(why.clone()),
        None => return undefined("the experiment has no arms".into()),
    };
    let Ok(stats) = control.arm_stats() else {
        return undefined("the control's data is inconsistent".into());
    };
    if stats.n() == 0 {
        return undefined(format!(
            "the control has no events with a value of {} yet, so there is no baseline",
            primary.metric
        ));
    }
    let alpha = experiment.alpha;
    let required = match stats.kind() {
        MetricKind::Proportion => {
            let p1 = stats.mean();
            if p1 <= 0.0 || p1 >= 1.0 {
                return undefined(format!(
                    "the control's {} is {}, and a relative change of a 0% or 100% rate cannot be sized",
                    primary.metric,
                    share(p1)
                ));
            }
            let preferred = sign(primary.direction) * mde;
            let solved =
                sample_size_proportion(p1, preferred, MdeType::Relative, alpha, SAMPLE_SIZE_POWER)
                    .or_else(|_| {
                        sample_size_proportion(
                            p1,
                            -preferred,
                            MdeType::Relative,
                            alpha,
                            SAMPLE_SIZE_POWER,
                        )
                    });
            match solved {
                Ok(s) => s.n_normal_unpooled,
                Err(e) => return undefined(e.to_string()),
            }
        }
        MetricKind::Mean => {
            let Some(var) = stats.sample_variance().filter(|v| *v > 0.0) else {
                return undefined(format!(
                    "the control's {} has no variance yet (fewer than two values, or all equal)",
                    primary.metric
                ));
            };
            let mean = stats.mean();
            if mean == 0.0 {
                return undefined(format!(
                    "the control's mean {} is 0, so a relative effect has no size",
                    primary.metric
                ));
            }
            match sample_size_mean(var.sqrt(), mde * mean.abs(), alpha, SAMPLE_SIZE_POWER) {
                Ok(s) => s.n_normal,
                Err(e) => return undefined(e.to_string()),
            }
        }
    };
    if !(required.is_finite() && required < 1e15) {
        return undefined(format!(
            "detecting a {} change needs more events than can be counted",
            share(mde)
        ));
    }
    let required = required.ceil().max(2.0) as u64;
    let smallest = smallest_active_n(experiment, primary);
    SampleSize {
        mde,
        power: SAMPLE_SIZE_POWER,
        required_per_arm: Some(required),
        remaining_per_arm: Some(required.saturating_sub(smallest)),
        undefined: None,
    }
}

/// The fewest primary-metric events among the arms still receiving traffic.
pub(crate) fn smallest_active_n(experiment: &ExperimentRecord, primary: &MetricResult) -> u64 {
    experiment
        .arms
        .iter()
        .zip(&primary.arms)
        .filter(|(arm, _)| !arm.stopped)
        .map(|(_, m)| m.n)
        .min()
        .unwrap_or(0)
}

/// The primary comparisons of the arms still receiving traffic.
pub(crate) fn active_comparisons<'a>(
    experiment: &ExperimentRecord,
    primary: &'a MetricResult,
) -> Vec<&'a ArmComparison> {
    primary
        .comparisons
        .iter()
        .filter(|c| {
            experiment
                .arms
                .iter()
                .any(|a| a.name == c.arm && !a.stopped)
        })
        .collect()
}

/// The sequential test of a comparison, when defined.
pub(crate) fn sequential_of(c: &ArmComparison) -> Option<&TestResult> {
    match &c.sequential {
        Outcome::Defined(t) => Some(t),
        Outcome::Undefined { .. } => None,
    }
}

/// `'arm': +5.0% (always-valid 95% CI +1.0% to +9.0%, p = 0.0123)`.
pub(crate) fn describe_lift(c: &ArmComparison, alpha: f64) -> String {
    match sequential_of(c) {
        Some(t) => format!(
            "'{}': {} (always-valid {}% CI {} to {}, {})",
            c.arm,
            pct(t.estimate),
            level(alpha),
            pct(t.ci_lower),
            pct(t.ci_upper),
            p_clause(t.p_value)
        ),
        None => format!("'{}': undefined", c.arm),
    }
}

fn chance(c: &ArmComparison) -> Option<f64> {
    match &c.bayesian {
        Outcome::Defined(b) => Some(b.chance_to_beat_control),
        Outcome::Undefined { .. } => None,
    }
}

fn adjusted_estimate(c: &ArmComparison, direction: Direction) -> f64 {
    sequential_of(c).map_or(f64::NEG_INFINITY, |t| sign(direction) * t.estimate)
}

/// The best of `candidates` by direction-adjusted sequential estimate.
pub(crate) fn best_by_estimate<'a>(
    candidates: impl IntoIterator<Item = &'a ArmComparison>,
    direction: Direction,
) -> Option<&'a ArmComparison> {
    candidates
        .into_iter()
        .max_by(|x, y| adjusted_estimate(x, direction).total_cmp(&adjusted_estimate(y, direction)))
}

fn verdict(
    experiment: &ExperimentRecord,
    primary: &MetricResult,
    srm: &SrmCheck,
    sample: &SampleSize,
) -> Verdict {
    let metric = &primary.metric;
    let control = experiment
        .arms
        .first()
        .map_or("control", |a| a.name.as_str());
    let alpha = experiment.alpha;
    if srm.mismatch {
        let observed: Vec<String> = srm.observed.iter().map(u64::to_string).collect();
        let expected: Vec<String> = srm.expected.iter().map(|e| num(e.round())).collect();
        return Verdict {
            code: UNTRUSTWORTHY.into(),
            arm: None,
            message: format!(
                "Results are untrustworthy: the units per arm ({}) do not match the traffic weights (expected about {}; SRM chi² = {:.2}, {}, below the 0.001 threshold); fix the assignment or the event logging before reading any result.",
                observed.join(" / "),
                expected.join(" / "),
                srm.chi2,
                p_clause(srm.p_value)
            ),
        };
    }
    let active = active_comparisons(experiment, primary);
    let winners = active.iter().copied().filter(|c| c.call == BETTER);
    if let Some(best) = best_by_estimate(winners, primary.direction) {
        let chance = chance(best)
            .map(|p| format!(", with a {} chance to beat the control", share(p)))
            .unwrap_or_default();
        return Verdict {
            code: TREATMENT_WINS.into(),
            arm: Some(best.arm.clone()),
            message: format!(
                "Arm {} beats the control '{control}' on {metric}{chance}.",
                describe_lift(best, alpha)
            ),
        };
    }
    if !active.is_empty() && active.iter().all(|c| c.call == WORSE) {
        let closest = best_by_estimate(active.iter().copied(), primary.direction);
        let closest = closest
            .map(|c| format!("; the closest is {}", describe_lift(c, alpha)))
            .unwrap_or_default();
        return Verdict {
            code: CONTROL_WINS.into(),
            arm: Some(control.to_owned()),
            message: format!("The control '{control}' beats every treatment on {metric}{closest}."),
        };
    }
    let smallest = smallest_active_n(experiment, primary);
    let all_inconclusive = active.iter().all(|c| c.call == INCONCLUSIVE);
    let sized = sample.remaining_per_arm == Some(0);
    if all_inconclusive && sized && smallest >= experiment.min_sample_per_arm && !active.is_empty()
    {
        let example = best_by_estimate(active.iter().copied(), primary.direction)
            .map(|c| format!(" (best: {})", describe_lift(c, alpha)))
            .unwrap_or_default();
        return Verdict {
            code: NO_DETECTABLE_DIFFERENCE.into(),
            arm: None,
            message: format!(
                "No detectable difference on {metric}: every arm has at least {smallest} events, past the {} per arm needed to detect a {} relative change, and every always-valid interval includes 0{example}.",
                sample.required_per_arm.unwrap_or(0),
                share(sample.mde)
            ),
        };
    }
    Verdict {
        code: KEEP_RUNNING.into(),
        arm: None,
        message: keep_running_message(experiment, primary, &active, sample, smallest),
    }
}

fn keep_running_message(
    experiment: &ExperimentRecord,
    primary: &MetricResult,
    active: &[&ArmComparison],
    sample: &SampleSize,
    smallest: u64,
) -> String {
    let metric = &primary.metric;
    let undefined = active.iter().find_map(|c| match &c.sequential {
        Outcome::Undefined { undefined } => Some(undefined.clone()),
        Outcome::Defined(_) => None,
    });
    if let Some(why) = undefined {
        return format!("Keep running: {metric} cannot be compared yet: {why}.");
    }
    let progress = match sample.required_per_arm {
        Some(required) if smallest < required => format!(
            "{smallest} of the {required} events per arm needed to detect a {} relative change",
            share(sample.mde)
        ),
        // Sized already: what keeps it running is the minimum sample or an arm still
        // undecided while another is worse.
        Some(required) => format!(
            "{smallest} events in the smallest arm, past the {required} per arm needed to detect a {} relative change",
            share(sample.mde)
        ),
        None => format!(
            "{smallest} events in the smallest arm (minimum {})",
            experiment.min_sample_per_arm
        ),
    };
    let worse: Vec<&str> = active
        .iter()
        .filter(|c| c.call == WORSE)
        .map(|c| c.arm.as_str())
        .collect();
    let state = if worse.is_empty() {
        "no arm differs from the control yet".to_owned()
    } else {
        format!(
            "{} worse than the control, the others undecided",
            worse
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let best = best_by_estimate(active.iter().copied(), primary.direction)
        .map(|c| format!(" Best so far: {}.", describe_lift(c, experiment.alpha)))
        .unwrap_or_default();
    format!("Keep running: {progress} on {metric}; {state}.{best}")
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
