//! From an arm's analytics rollup to the sufficient statistics (n, Σx, Σx²) of one metric:
//! rates from counts, means from the rollup's moments. The unit is the event.

use promptstore_stats::{ArmStats, MetricKind, StatsError};

use super::metric::Metric;
use crate::analytics::rollup::{Moments, Rollup};

/// One arm's sufficient statistics on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricData {
    pub kind: MetricKind,
    /// Events that count for the metric (the denominator of a rate, the values of a mean).
    pub n: u64,
    /// Successes of a rate, Σx of a mean.
    pub sum: f64,
    /// Σx² (= successes for a rate).
    pub sum_squares: f64,
}

impl MetricData {
    fn rate(n: u64, successes: u64) -> MetricData {
        let s = successes as f64;
        MetricData {
            kind: MetricKind::Proportion,
            n,
            sum: s,
            sum_squares: s,
        }
    }

    fn moments(m: &Moments) -> MetricData {
        MetricData {
            kind: MetricKind::Mean,
            n: m.count,
            sum: m.sum,
            sum_squares: m.sum_sq,
        }
    }

    /// The successes of a rate (exact: they were counted as integers).
    pub fn successes(&self) -> Option<u64> {
        (self.kind == MetricKind::Proportion).then_some(self.sum as u64)
    }

    /// The statistics crate's view, which checks the numbers once more.
    pub fn arm_stats(&self) -> Result<ArmStats, StatsError> {
        match self.kind {
            MetricKind::Proportion => ArmStats::proportion(self.n, self.sum as u64),
            MetricKind::Mean => ArmStats::sample_mean(self.n, self.sum, self.sum_squares),
        }
    }
}

/// The sufficient statistics of `metric` in `rollup`, or why they cannot be had.
///
/// - `success_rate`, `error_rate`: n = events, sum = successes / failures;
/// - `thumbs_up_rate`: n = thumbs given (up or down), sum = thumbs up;
/// - `negative_feedback_rate`: n = events with any feedback, sum = negative ones;
/// - `latency_ms`, `cost`, `score:<name>`: the moments of the events carrying the value.
/// - `ttft_ms`: undefined — the cells keep only a quantile sketch of TTFT, no moments.
pub fn metric_data(metric: &Metric, rollup: &Rollup) -> Result<MetricData, String> {
    let data = match metric {
        Metric::SuccessRate => MetricData::rate(rollup.count, rollup.successes),
        Metric::ErrorRate => MetricData::rate(rollup.count, rollup.errors()),
        Metric::ThumbsUpRate => {
            let f = &rollup.feedback;
            MetricData::rate(f.thumbs_up + f.thumbs_down, f.thumbs_up)
        }
        Metric::NegativeFeedbackRate => {
            let f = &rollup.feedback;
            // `negative` never exceeds `given` in a consistent cell; the clamp keeps a
            // corrupt one from producing a rate above 1.
            MetricData::rate(f.given, f.negative.min(f.given))
        }
        Metric::LatencyMs => MetricData::moments(&rollup.latency_moments),
        Metric::Cost => MetricData::moments(&rollup.cost),
        Metric::Score(name) => match rollup.scores.get(name) {
            Some(m) => MetricData::moments(m),
            None => MetricData::moments(&Moments::default()),
        },
        Metric::TtftMs => {
            return Err(
                "ttft_ms has no mean and variance in the analytics cells (only a quantile sketch), so it cannot be tested"
                    .into(),
            );
        }
    };
    if !(data.sum.is_finite() && data.sum_squares.is_finite()) {
        return Err(format!(
            "the sums of {} overflowed the floating-point range",
            metric.name()
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use promptstore_types::Feedback;

    use super::*;
    use crate::analytics::model::EventRecord;
    use crate::experiments::testutil::event;

    fn rollup(events: &[EventRecord]) -> Rollup {
        Rollup::of(events)
    }

    #[test]
    fn each_metric_reads_its_counts_or_moments() {
        let mut events = Vec::new();
        for i in 0..10 {
            let mut e = event();
            e.success = i < 7;
            e.latency_ms = (i < 8).then_some(100.0 + i as f64);
            e.cost = (i < 5).then_some(0.5);
            if i < 4 {
                e.scores.insert("acc".into(), i as f64);
            }
            e.feedback = match i {
                0 | 1 => Some(Feedback {
                    thumbs_up: Some(true),
                    ..Default::default()
                }),
                2 => Some(Feedback {
                    thumbs_up: Some(false),
                    ..Default::default()
                }),
                3 => Some(Feedback {
                    rating: Some(1),
                    ..Default::default()
                }),
                _ => None,
            };
            events.push(e);
        }
        let r = rollup(&events);
        let check = |metric: &str, n: u64, sum: f64, ss: f64, kind: MetricKind| {
            let d = metric_data(&Metric::parse(metric).unwrap(), &r).unwrap();
            assert_eq!((d.n, d.kind), (n, kind), "{metric}");
            assert!((d.sum - sum).abs() < 1e-9, "{metric}: {d:?}");
            assert!((d.sum_squares - ss).abs() < 1e-6, "{metric}: {d:?}");
        };
        use MetricKind::{Mean, Proportion};
        check("success_rate", 10, 7.0, 7.0, Proportion);
        check("error_rate", 10, 3.0, 3.0, Proportion);
        check("thumbs_up_rate", 3, 2.0, 2.0, Proportion);
        check("negative_feedback_rate", 4, 2.0, 2.0, Proportion);
        let lat: Vec<f64> = (0..8).map(|i| 100.0 + i as f64).collect();
        check(
            "latency_ms",
            8,
            lat.iter().sum(),
            lat.iter().map(|x| x * x).sum(),
            Mean,
        );
        check("cost", 5, 2.5, 1.25, Mean);
        check("score:acc", 4, 6.0, 14.0, Mean);
        check("score:missing", 0, 0.0, 0.0, Mean);
    }

    #[test]
    fn ttft_is_undefined_and_says_why() {
        let mut e = event();
        e.ttft_ms = Some(50.0);
        let err = metric_data(&Metric::TtftMs, &rollup(&[e])).unwrap_err();
        assert!(err.contains("ttft_ms"), "{err}");
    }

    #[test]
    fn rates_convert_to_proportion_stats() {
        let d = metric_data(&Metric::SuccessRate, &rollup(&[event(), event()])).unwrap();
        assert_eq!(d.successes(), Some(2));
        let s = d.arm_stats().unwrap();
        assert_eq!((s.n(), s.mean()), (2, 1.0));
        let m = metric_data(&Metric::Cost, &rollup(&[event()])).unwrap();
        assert_eq!(m.successes(), None);
    }
}
