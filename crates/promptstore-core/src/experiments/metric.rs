//! The metrics an experiment can be judged on: their names, their natural direction and
//! whether they are rates (0/1 outcomes) or means of continuous values.

use promptstore_types::{Direction, MetricSpec};

/// Longest score name in `score:<name>` (the same bound as score names on events).
pub const MAX_SCORE_NAME_LEN: usize = 200;

/// The names accepted in a metric spec, for error messages.
pub const METRIC_NAMES: &str = "success_rate, error_rate, latency_ms, ttft_ms, cost, score:<name>, thumbs_up_rate or negative_feedback_rate";

/// A parsed experiment metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Successful events over events.
    SuccessRate,
    /// Failed events over events.
    ErrorRate,
    /// Mean latency of the events that reported one.
    LatencyMs,
    /// Mean time to first token.
    TtftMs,
    /// Mean cost per priced event.
    Cost,
    /// Mean of a named score over the events that carry it.
    Score(String),
    /// Thumbs up over thumbs given (up or down).
    ThumbsUpRate,
    /// Negative feedback (thumbs down or a rating of 1–2) over all feedback given.
    NegativeFeedbackRate,
}

impl Metric {
    /// Parses a metric name; the error says what is accepted.
    pub fn parse(name: &str) -> Result<Metric, String> {
        Ok(match name {
            "success_rate" => Metric::SuccessRate,
            "error_rate" => Metric::ErrorRate,
            "latency_ms" => Metric::LatencyMs,
            "ttft_ms" => Metric::TtftMs,
            "cost" => Metric::Cost,
            "thumbs_up_rate" => Metric::ThumbsUpRate,
            "negative_feedback_rate" => Metric::NegativeFeedbackRate,
            other => match other.strip_prefix("score:") {
                Some(score) => {
                    check_score_name(score)?;
                    Metric::Score(score.to_owned())
                }
                None => {
                    return Err(format!(
                        "unknown metric '{}'; use {METRIC_NAMES}",
                        shorten(other)
                    ));
                }
            },
        })
    }

    /// The metric's name as written in a spec.
    pub fn name(&self) -> String {
        match self {
            Metric::SuccessRate => "success_rate".into(),
            Metric::ErrorRate => "error_rate".into(),
            Metric::LatencyMs => "latency_ms".into(),
            Metric::TtftMs => "ttft_ms".into(),
            Metric::Cost => "cost".into(),
            Metric::Score(s) => format!("score:{s}"),
            Metric::ThumbsUpRate => "thumbs_up_rate".into(),
            Metric::NegativeFeedbackRate => "negative_feedback_rate".into(),
        }
    }

    /// Lower is better for errors, latency, cost and negative feedback; higher otherwise.
    pub fn default_direction(&self) -> Direction {
        match self {
            Metric::ErrorRate
            | Metric::LatencyMs
            | Metric::TtftMs
            | Metric::Cost
            | Metric::NegativeFeedbackRate => Direction::Lower,
            Metric::SuccessRate | Metric::Score(_) | Metric::ThumbsUpRate => Direction::Higher,
        }
    }

    /// Rates are 0/1 outcomes per event (proportion statistics, z-tests apply).
    pub fn is_rate(&self) -> bool {
        matches!(
            self,
            Metric::SuccessRate
                | Metric::ErrorRate
                | Metric::ThumbsUpRate
                | Metric::NegativeFeedbackRate
        )
    }
}

/// The direction a spec asks for, or the metric's natural one. An unparsable metric (only
/// possible for records that bypassed validation) counts as higher-is-better.
pub fn direction_of(metric: &str, direction: Option<Direction>) -> Direction {
    direction.unwrap_or_else(|| {
        Metric::parse(metric)
            .map(|m| m.default_direction())
            .unwrap_or(Direction::Higher)
    })
}

/// The direction of a primary metric spec.
pub fn spec_direction(spec: &MetricSpec) -> Direction {
    direction_of(&spec.metric, spec.direction)
}

fn check_score_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the score name in score:<name> must not be empty".into());
    }
    if name.chars().count() > MAX_SCORE_NAME_LEN {
        return Err(format!(
            "the score name in score:<name> must be at most {MAX_SCORE_NAME_LEN} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the score name in score:<name> must not contain control characters".into());
    }
    Ok(())
}

/// At most 80 characters of user input in a message.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(80).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_with_their_directions() {
        let cases = [
            ("success_rate", Direction::Higher, true),
            ("error_rate", Direction::Lower, true),
            ("latency_ms", Direction::Lower, false),
            ("ttft_ms", Direction::Lower, false),
            ("cost", Direction::Lower, false),
            ("score:accuracy", Direction::Higher, false),
            ("thumbs_up_rate", Direction::Higher, true),
            ("negative_feedback_rate", Direction::Lower, true),
        ];
        for (name, direction, rate) in cases {
            let m = Metric::parse(name).unwrap();
            assert_eq!(m.name(), name);
            assert_eq!(m.default_direction(), direction, "{name}");
            assert_eq!(m.is_rate(), rate, "{name}");
        }
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for (name, fragment) in [
            ("latency", "unknown metric"),
            ("score:", "must not be empty"),
            ("score:  ", "must not be empty"),
            ("score:a\nb", "control characters"),
            ("", "unknown metric"),
        ] {
            let err = Metric::parse(name).unwrap_err();
            assert!(err.contains(fragment), "{name:?}: {err}");
        }
        let long = format!("score:{}", "x".repeat(201));
        assert!(Metric::parse(&long).unwrap_err().contains("at most"));
    }

    #[test]
    fn an_explicit_direction_wins() {
        assert_eq!(
            direction_of("latency_ms", Some(Direction::Higher)),
            Direction::Higher
        );
        assert_eq!(direction_of("latency_ms", None), Direction::Lower);
    }
}
