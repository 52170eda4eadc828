//! Alert rules: checking a rule as a client sends it, and evaluating it on the rollup of
//! its window into a new state and, when the state flips between `ok` and `firing`, the
//! transition to record (`firing` or `resolved`).
//!
//! States: `ok`, `firing`, `insufficient_data` (fewer than `min_sample` events in the
//! window, or no value to compare). Insufficient data never resolves a firing alert: the
//! rule stays `firing` (with the sample reported) until enough data says it is over. A rule
//! coming out of `insufficient_data` fires (a transition) or goes quietly to `ok`.

use promptstore_types::{AlertRuleIn, ErrorCode};
use time::{Duration, OffsetDateTime};

use super::model::{AlertEvaluation, AlertRuleRecord, AnalyticsFilter};
use super::rollup::Rollup;
use crate::error::Error;

pub const STATE_OK: &str = "ok";
pub const STATE_FIRING: &str = "firing";
pub const STATE_INSUFFICIENT: &str = "insufficient_data";
pub const TRANSITION_FIRING: &str = "firing";
pub const TRANSITION_RESOLVED: &str = "resolved";

/// Longest window: one week.
pub const MAX_WINDOW_MINUTES: u32 = 10_080;
/// Longest rule name and score name.
pub const MAX_NAME_LEN: usize = 200;

/// What a rule measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertMetric {
    ErrorRate,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    /// USD in the window.
    Cost,
    /// The window's cost scaled to 24 hours.
    CostPerDay,
    ScoreMean(String),
    NegativeFeedbackRate,
    Count,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::rejected(ErrorCode::InvalidRequest, message)
        .with_details(serde_json::json!({ "field": field }))
}

fn check_name(field: &str, what: &str, s: &str) -> Result<(), Error> {
    if s.trim().is_empty() {
        return Err(invalid(field, format!("{what} must not be empty")));
    }
    if s.chars().count() > MAX_NAME_LEN {
        return Err(invalid(
            field,
            format!("{what} must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(())
}

impl AlertMetric {
    pub fn parse(s: &str) -> Result<AlertMetric, Error> {
        Ok(match s {
            "error_rate" => AlertMetric::ErrorRate,
            "latency_p50_ms" => AlertMetric::LatencyP50,
            "latency_p95_ms" => AlertMetric::LatencyP95,
            "latency_p99_ms" => AlertMetric::LatencyP99,
            "cost" => AlertMetric::Cost,
            "cost_per_day" => AlertMetric::CostPerDay,
            "negative_feedback_rate" => AlertMetric::NegativeFeedbackRate,
            "count" => AlertMetric::Count,
            other => match other.strip_prefix("score_mean:") {
                Some(name) => {
                    check_name("metric", "the score name in score_mean:<name>", name)?;
                    AlertMetric::ScoreMean(name.to_owned())
                }
                None => {
                    return Err(invalid(
                        "metric",
                        format!(
                            "unknown metric '{other}'; use error_rate, latency_p50_ms, latency_p95_ms, latency_p99_ms, cost, cost_per_day, score_mean:<name>, negative_feedback_rate or count"
                        ),
                    ));
                }
            },
        })
    }

    /// The metric's value on a window's rollup and the sample it rests on. The value is
    /// None when the sample is empty for a rate, mean or percentile.
    pub fn measure(&self, r: &Rollup, window_minutes: u32) -> (Option<f64>, u64) {
        let q = |q: f64| r.latency.quantile(q).ok().flatten();
        match self {
            AlertMetric::ErrorRate => (
                (r.count > 0).then(|| r.errors() as f64 / r.count as f64),
                r.count,
            ),
            AlertMetric::LatencyP50 => (q(0.50), r.latency.count()),
            AlertMetric::LatencyP95 => (q(0.95), r.latency.count()),
            AlertMetric::LatencyP99 => (q(0.99), r.latency.count()),
            // A sum over nothing is zero: a cost alert can watch a quiet window.
            AlertMetric::Cost => (Some(r.cost.sum), r.count),
            AlertMetric::CostPerDay => (
                Some(r.cost.sum * 1440.0 / f64::from(window_minutes.max(1))),
                r.count,
            ),
            AlertMetric::ScoreMean(name) => match r.scores.get(name) {
                Some(m) => (m.mean(), m.count),
                None => (None, 0),
            },
            AlertMetric::NegativeFeedbackRate => (r.feedback.negative_rate(), r.feedback.given),
            AlertMetric::Count => (Some(r.count as f64), r.count),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    pub fn parse(s: &str) -> Result<Comparison, Error> {
        match s {
            "gt" => Ok(Comparison::Gt),
            "gte" => Ok(Comparison::Gte),
            "lt" => Ok(Comparison::Lt),
            "lte" => Ok(Comparison::Lte),
            other => Err(invalid(
                "comparison",
                format!("comparison must be gt, gte, lt or lte; got '{other}'"),
            )),
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Gte => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Lte => value <= threshold,
        }
    }
}

/// Check a rule as sent (`POST`/`PUT /alerts`).
pub fn validate_rule(rule: AlertRuleIn) -> Result<AlertRuleIn, Error> {
    check_name("name", "name", &rule.name)?;
    AlertMetric::parse(&rule.metric)?;
    Comparison::parse(&rule.comparison)?;
    if !rule.threshold.is_finite() {
        return Err(invalid("threshold", "threshold must be a finite number"));
    }
    if !(1..=MAX_WINDOW_MINUTES).contains(&rule.window_minutes) {
        return Err(invalid(
            "window_minutes",
            format!(
                "window_minutes must be between 1 and {MAX_WINDOW_MINUTES} (one week), got {}",
                rule.window_minutes
            ),
        ));
    }
    if let Some(p) = &rule.prompt {
        crate::names::validate_prompt_name(p)?;
    }
    if let Some(l) = &rule.label {
        if rule.prompt.is_none() {
            return Err(invalid(
                "label",
                "label needs prompt: a label belongs to one prompt",
            ));
        }
        crate::names::validate_label_name(l)?;
    }
    Ok(rule)
}

/// The events a rule watches.
pub fn filter(rule: &AlertRuleIn) -> AnalyticsFilter {
    AnalyticsFilter {
        prompt: rule.prompt.clone(),
        label: rule.label.clone(),
        ..AnalyticsFilter::default()
    }
}

/// The window a rule looks at when evaluated at `now`: `[now − window, now)`.
pub fn window(rule: &AlertRuleIn, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let from = now
        .checked_sub(Duration::minutes(i64::from(rule.window_minutes)))
        .unwrap_or(now);
    (from, now)
}

/// What one evaluation found, before it becomes a state.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub value: Option<f64>,
    pub sample: u64,
    /// Below `min_sample`, or no value: the rule cannot say.
    pub insufficient_data: bool,
    /// The comparison holds (false when insufficient).
    pub breached: bool,
}

/// Measure a rule on its window's rollup. A stored rule that no longer parses (an older
/// build's metric) is insufficient data rather than an error, so one bad rule does not stop
/// the worker.
pub fn assess(rule: &AlertRuleIn, window: &Rollup) -> Assessment {
    let (Ok(metric), Ok(cmp)) = (
        AlertMetric::parse(&rule.metric),
        Comparison::parse(&rule.comparison),
    ) else {
        return Assessment {
            value: None,
            sample: 0,
            insufficient_data: true,
            breached: false,
        };
    };
    let (value, sample) = metric.measure(window, rule.window_minutes);
    let value = value.filter(|v| v.is_finite());
    let insufficient_data = sample < rule.min_sample || value.is_none();
    let breached = !insufficient_data && value.is_some_and(|v| cmp.holds(v, rule.threshold));
    Assessment {
        value,
        sample,
        insufficient_data,
        breached,
    }
}

/// Evaluate a stored rule on its window's rollup at `now`: the new state and the
/// transition to record, if any.
pub fn evaluate(rule: &AlertRuleRecord, window: &Rollup, now: OffsetDateTime) -> AlertEvaluation {
    let a = assess(&rule.rule, window);
    let was_firing = rule.state == STATE_FIRING;
    let (state, transition) = if a.insufficient_data {
        if was_firing {
            // Not enough data to say it is over: keep firing, report the sample.
            (STATE_FIRING, None)
        } else {
            (STATE_INSUFFICIENT, None)
        }
    } else if a.breached {
        (STATE_FIRING, (!was_firing).then_some(TRANSITION_FIRING))
    } else {
        (STATE_OK, was_firing.then_some(TRANSITION_RESOLVED))
    };
    AlertEvaluation {
        rule_id: rule.id,
        state: state.to_owned(),
        value: a.value,
        sample: a.sample,
        at: now,
        transition: transition.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::Feedback;
    use time::macros::datetime;

    use super::*;
    use crate::analytics::testutil::event;
    use crate::model::ProjectId;

    const NOW: OffsetDateTime = datetime!(2025-09-01 12:00 UTC);

    fn rule(metric: &str, comparison: &str, threshold: f64, min_sample: u64) -> AlertRuleIn {
        AlertRuleIn {
            name: "r".into(),
            metric: metric.into(),
            prompt: None,
            label: None,
            comparison: comparison.into(),
            threshold,
            window_minutes: 60,
            min_sample,
            enabled: true,
        }
    }

    fn record(rule: AlertRuleIn, state: &str) -> AlertRuleRecord {
        AlertRuleRecord {
            id: 9,
            project: ProjectId("p1".into()),
            rule,
            state: state.into(),
            last_value: None,
            last_evaluated_at: None,
            created_at: NOW,
        }
    }

    /// `n` events, `errors` of them failed, latency 100 ms + 10·i, cost 0.01 each.
    fn window_of(n: u64, errors: u64) -> Rollup {
        let mut r = Rollup::default();
        for i in 0..n {
            let mut e = event(0);
            e.success = i >= errors;
            e.latency_ms = Some(100.0 + 10.0 * i as f64);
            e.cost = Some(0.01);
            e.scores.insert("acc".into(), 0.5);
            e.feedback = Some(Feedback {
                thumbs_up: Some(i % 4 != 0),
                ..Default::default()
            });
            r.add(&e);
        }
        r
    }

    #[test]
    fn validation() {
        assert!(validate_rule(rule("error_rate", "gt", 0.1, 10)).is_ok());
        assert!(validate_rule(rule("score_mean:accuracy", "lt", 0.5, 10)).is_ok());
        let mut with_label = rule("count", "lt", 5.0, 0);
        with_label.prompt = Some("support/triage".into());
        with_label.label = Some("production".into());
        assert!(validate_rule(with_label).is_ok());
        let cases: Vec<(AlertRuleIn, &str)> = vec![
            (rule("errors", "gt", 0.1, 0), "unknown metric 'errors'"),
            (rule("score_mean:", "gt", 0.1, 0), "score name"),
            (rule("error_rate", "above", 0.1, 0), "comparison must be"),
            (
                rule("error_rate", "gt", f64::NAN, 0),
                "threshold must be a finite",
            ),
            (
                AlertRuleIn {
                    window_minutes: 0,
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "window_minutes must be between 1 and 10080",
            ),
            (
                AlertRuleIn {
                    window_minutes: 10_081,
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "window_minutes",
            ),
            (
                AlertRuleIn {
                    name: " ".into(),
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "name must not be empty",
            ),
            (
                AlertRuleIn {
                    name: "n".repeat(201),
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "at most 200",
            ),
            (
                AlertRuleIn {
                    label: Some("production".into()),
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "label needs prompt",
            ),
            (
                AlertRuleIn {
                    prompt: Some("/bad".into()),
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "invalid prompt name",
            ),
            (
                AlertRuleIn {
                    prompt: Some("ok".into()),
                    label: Some("Bad".into()),
                    ..rule("error_rate", "gt", 0.1, 0)
                },
                "invalid label name",
            ),
        ];
        for (r, msg) in cases {
            let err = validate_rule(r.clone()).unwrap_err();
            assert!(err.to_string().contains(msg), "{r:?}: {err}");
        }
    }

    #[test]
    fn measured_values() {
        let w = window_of(40, 4);
        let v = |m: &str| AlertMetric::parse(m).unwrap().measure(&w, 60);
        assert_eq!(v("error_rate"), (Some(0.1), 40));
        assert_eq!(v("count"), (Some(40.0), 40));
        assert!((v("cost").0.unwrap() - 0.4).abs() < 1e-12);
        assert!((v("cost_per_day").0.unwrap() - 0.4 * 24.0).abs() < 1e-9);
        assert_eq!(v("score_mean:acc"), (Some(0.5), 40));
        assert_eq!(v("score_mean:other"), (None, 0));
        assert_eq!(v("negative_feedback_rate"), (Some(0.25), 40));
        let p95 = v("latency_p95_ms").0.unwrap();
        // Exact p95 of 100..490 step 10 at rank floor(0.95·39) = 37: 470.
        assert!((p95 - 470.0).abs() <= 4.7, "{p95}");
        let (p50, n) = v("latency_p50_ms");
        assert_eq!(n, 40);
        assert!((p50.unwrap() - 290.0).abs() <= 2.9);
        assert!(v("latency_p99_ms").0.unwrap() >= p95);
    }

    /// (previous state, window n, errors) → (new state, transition).
    #[test]
    fn firing_resolving_and_insufficient_data() {
        let r = rule("error_rate", "gt", 0.2, 20);
        let cases: &[(&str, u64, u64, &str, Option<&str>)] = &[
            ("ok", 100, 50, "firing", Some("firing")),
            ("firing", 100, 50, "firing", None),
            ("firing", 100, 5, "ok", Some("resolved")),
            ("ok", 100, 5, "ok", None),
            // Below min_sample: no flip from firing to ok, and no firing from ok.
            ("firing", 10, 0, "firing", None),
            ("ok", 10, 10, "insufficient_data", None),
            ("insufficient_data", 10, 10, "insufficient_data", None),
            // Out of insufficient data: fire, or quietly ok.
            ("insufficient_data", 100, 50, "firing", Some("firing")),
            ("insufficient_data", 100, 0, "ok", None),
            // No event at all.
            ("ok", 0, 0, "insufficient_data", None),
        ];
        for &(prev, n, errors, state, transition) in cases {
            let e = evaluate(&record(r.clone(), prev), &window_of(n, errors), NOW);
            assert_eq!(
                (e.state.as_str(), e.transition.as_deref()),
                (state, transition),
                "{prev} n={n} errors={errors}"
            );
            assert_eq!(e.rule_id, 9);
            assert_eq!(e.sample, n);
            assert_eq!(e.at, NOW);
        }
        // Comparisons at the threshold.
        let w = window_of(10, 2);
        for (cmp, fires) in [("gt", false), ("gte", true), ("lt", false), ("lte", true)] {
            let e = evaluate(&record(rule("error_rate", cmp, 0.2, 0), "ok"), &w, NOW);
            assert_eq!(e.state == "firing", fires, "{cmp}");
        }
        // A rate with no sample is insufficient even with min_sample 0; a count is not.
        let empty = Rollup::default();
        assert_eq!(
            evaluate(&record(rule("error_rate", "gt", 0.1, 0), "ok"), &empty, NOW).state,
            "insufficient_data"
        );
        let quiet = evaluate(&record(rule("count", "lt", 1.0, 0), "ok"), &empty, NOW);
        assert_eq!(
            (quiet.state.as_str(), quiet.transition.as_deref()),
            ("firing", Some("firing"))
        );
    }

    #[test]
    fn window_and_filter() {
        let mut r = rule("count", "gt", 1.0, 0);
        r.prompt = Some("a".into());
        r.label = Some("production".into());
        let (from, to) = window(&r, NOW);
        assert_eq!((from, to), (NOW - Duration::hours(1), NOW));
        let f = filter(&r);
        assert_eq!(
            (f.prompt.as_deref(), f.label.as_deref()),
            (Some("a"), Some("production"))
        );
    }
}
