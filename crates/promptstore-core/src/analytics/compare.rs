//! Version A against version B of one prompt, metric by metric: the difference, the
//! relative difference, and whether it is beyond noise (two-proportion z test for rates,
//! Welch's t test for means, p < 0.05). With too little data (fewer than 2 events on a
//! side, or no variance at all) there is no test and nothing is called significant.

use std::collections::BTreeSet;

use promptstore_stats::classical::{Counts, welch_t_test, z_test_pooled};
use promptstore_stats::summary::ArmStats;
use promptstore_types::{MetricDifference, VersionComparison};

use super::metrics::metrics;
use super::model::CellKey;
use super::rollup::{Moments, Rollup};

/// Significance level of every comparison.
pub const ALPHA: f64 = 0.05;
/// Fewest events on each side for a test.
pub const MIN_N: u64 = 2;

pub const TEST_WELCH: &str = "welch_t";
pub const TEST_Z: &str = "two_proportion_z";

fn relative(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a),
        _ => None,
    }
}

fn difference(
    metric: String,
    a: Option<f64>,
    b: Option<f64>,
    test: Option<(f64, &str)>,
) -> MetricDifference {
    MetricDifference {
        metric,
        a,
        b,
        difference: a.zip(b).map(|(a, b)| b - a),
        relative_difference: relative(a, b),
        p_value: test.map(|t| t.0),
        test: test.map(|t| t.1.to_owned()),
        significant: test.is_some_and(|t| t.0 < ALPHA),
    }
}

/// Rates `successes / n` on each side, with a pooled two-proportion z test.
pub fn proportion_difference(metric: &str, a: (u64, u64), b: (u64, u64)) -> MetricDifference {
    let rate = |(s, n): (u64, u64)| (n > 0).then(|| s as f64 / n as f64);
    let test = if a.1 >= MIN_N && b.1 >= MIN_N {
        match (Counts::new(a.0, a.1), Counts::new(b.0, b.1)) {
            (Ok(ca), Ok(cb)) => z_test_pooled(ca, cb).p_value.map(|p| (p, TEST_Z)),
            _ => None,
        }
    } else {
        None
    };
    difference(metric.to_owned(), rate(a), rate(b), test)
}

/// Means on each side, with Welch's t test; no test when either side has no variance
/// worth the name (below 1e-12 of the squared mean: floating-point residue, not spread).
pub fn mean_difference(metric: &str, a: &Moments, b: &Moments) -> MetricDifference {
    let spread = |m: &Moments| {
        let (Some(v), Some(mean)) = (m.variance(), m.mean()) else {
            return false;
        };
        v > 1e-12 * mean * mean.max(1.0)
    };
    let test = if a.count >= MIN_N && b.count >= MIN_N && (spread(a) || spread(b)) {
        let arm = |m: &Moments| ArmStats::sample_mean(m.count, m.sum, m.sum_sq.max(0.0));
        match (arm(a), arm(b)) {
            (Ok(sa), Ok(sb)) => welch_t_test(&sa, &sb, ALPHA)
                .ok()
                .flatten()
                .filter(|t| t.p_value.is_finite())
                .map(|t| (t.p_value, TEST_WELCH)),
            _ => None,
        }
    } else {
        None
    };
    difference(metric.to_owned(), a.mean(), b.mean(), test)
}

/// Every compared metric of two rollups: success rate, latency mean (and p95, untested),
/// cost per priced call, negative feedback rate, and each score seen on either side.
pub fn differences(a: &Rollup, b: &Rollup) -> Vec<MetricDifference> {
    let mut out = vec![
        proportion_difference(
            "success_rate",
            (a.successes, a.count),
            (b.successes, b.count),
        ),
        mean_difference("latency_ms_mean", &a.latency_moments, &b.latency_moments),
    ];
    // Percentiles have no test from sketches; shown for context.
    let p95 = |r: &Rollup| r.latency.quantile(0.95).ok().flatten();
    out.push(difference("latency_ms_p95".into(), p95(a), p95(b), None));
    out.push(mean_difference("cost_per_call", &a.cost, &b.cost));
    out.push(proportion_difference(
        "negative_feedback_rate",
        (a.feedback.negative, a.feedback.given),
        (b.feedback.negative, b.feedback.given),
    ));
    let names: BTreeSet<&String> = a.scores.keys().chain(b.scores.keys()).collect();
    let none = Moments::default();
    for name in names {
        out.push(mean_difference(
            &format!("score:{name}"),
            a.scores.get(name).unwrap_or(&none),
            b.scores.get(name).unwrap_or(&none),
        ));
    }
    out
}

/// Compare two versions from their rollups.
pub fn compare(
    prompt: &str,
    a: u32,
    b: u32,
    rollup_a: &Rollup,
    rollup_b: &Rollup,
) -> VersionComparison {
    VersionComparison {
        prompt: prompt.to_owned(),
        a,
        b,
        metrics_a: metrics(rollup_a),
        metrics_b: metrics(rollup_b),
        differences: differences(rollup_a, rollup_b),
    }
}

/// Compare two versions from the prompt's cells (cells of other versions are ignored).
pub fn compare_cells(
    prompt: &str,
    a: u32,
    b: u32,
    cells: &[(CellKey, Rollup)],
) -> VersionComparison {
    let (mut ra, mut rb) = (Rollup::default(), Rollup::default());
    for (k, r) in cells.iter().filter(|(k, _)| k.prompt == prompt) {
        if k.version == a {
            ra.merge(r);
        }
        if k.version == b {
            rb.merge(r);
        }
    }
    compare(prompt, a, b, &ra, &rb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testutil::{Rng, event};

    /// Events of one version: success with probability `p`, latency around `lat`, cost
    /// around `cost`, score `acc` around `acc`.
    fn version(rng: &mut Rng, n: usize, p: f64, lat: f64, cost: f64, acc: f64) -> Rollup {
        let mut r = Rollup::default();
        for i in 0..n {
            let mut e = event(i as i64);
            e.success = rng.unit() < p;
            e.latency_ms = Some(rng.latency(lat));
            e.cost = Some(cost * (1.0 + 0.1 * rng.normal()).max(0.1));
            e.scores.insert("acc".into(), acc + 0.1 * rng.normal());
            if rng.unit() < 0.5 {
                e.feedback = Some(promptstore_types::Feedback {
                    thumbs_up: Some(rng.unit() < p),
                    ..Default::default()
                });
            }
            r.add(&e);
        }
        r
    }

    fn find<'a>(d: &'a [MetricDifference], m: &str) -> &'a MetricDifference {
        d.iter().find(|x| x.metric == m).unwrap()
    }

    #[test]
    fn clear_differences_are_significant() {
        let mut rng = Rng::new(1);
        let a = version(&mut rng, 2000, 0.95, 400.0, 0.010, 0.6);
        let b = version(&mut rng, 2000, 0.80, 600.0, 0.020, 0.8);
        let c = compare("p", 1, 2, &a, &b);
        for m in [
            "success_rate",
            "latency_ms_mean",
            "cost_per_call",
            "score:acc",
            "negative_feedback_rate",
        ] {
            let d = find(&c.differences, m);
            assert!(d.significant, "{m}: {d:?}");
            assert!(d.p_value.unwrap() < 0.001, "{m}: {d:?}");
        }
        let cost = find(&c.differences, "cost_per_call");
        assert!(
            (cost.relative_difference.unwrap() - 1.0).abs() < 0.05,
            "{cost:?}"
        );
        assert_eq!(cost.test.as_deref(), Some(TEST_WELCH));
        assert_eq!(
            find(&c.differences, "success_rate").test.as_deref(),
            Some(TEST_Z)
        );
        assert!(find(&c.differences, "latency_ms_p95").test.is_none());
    }

    #[test]
    fn noise_is_mostly_not_significant() {
        // Same distributions: at α = 0.05 about 5% of tests fire by chance; over 40 seeds ×
        // 5 metrics far fewer than a quarter may.
        let mut fired = 0;
        let mut total = 0;
        for seed in 0..40 {
            let mut rng = Rng::new(100 + seed);
            let a = version(&mut rng, 300, 0.9, 400.0, 0.01, 0.7);
            let b = version(&mut rng, 300, 0.9, 400.0, 0.01, 0.7);
            for d in differences(&a, &b) {
                if d.test.is_some() {
                    total += 1;
                    fired += usize::from(d.significant);
                }
            }
        }
        assert_eq!(total, 200);
        assert!(fired <= 25, "{fired} of {total} noise tests significant");
    }

    #[test]
    fn too_little_data_has_no_test() {
        let one = Rollup::of([&event(0)]);
        let d = differences(&one, &one);
        assert!(
            d.iter()
                .all(|x| x.test.is_none() && !x.significant && x.p_value.is_none())
        );
        // Zero variance: every latency 100 ms on both sides, many events.
        let same: Vec<_> = (0..50).map(event).collect();
        let r = Rollup::of(&same);
        let d = differences(&r, &r);
        assert!(find(&d, "latency_ms_mean").test.is_none());
        assert!(
            find(&d, "success_rate").test.is_none(),
            "both 100%: no standard error"
        );
        assert_eq!(find(&d, "success_rate").relative_difference, Some(0.0));
        // An empty side.
        let d = differences(&Rollup::default(), &r);
        let s = find(&d, "success_rate");
        assert_eq!((s.a, s.b, s.difference), (None, Some(1.0), None));
    }

    #[test]
    fn compare_from_cells_splits_by_version() {
        let mut rng = Rng::new(3);
        let a = version(&mut rng, 100, 0.9, 100.0, 0.01, 0.5);
        let b = version(&mut rng, 50, 0.9, 100.0, 0.01, 0.5);
        let key = |v: u32, prompt: &str| CellKey {
            bucket: 0,
            prompt_id: "id".into(),
            prompt: prompt.into(),
            version: v,
            label: String::new(),
            model: String::new(),
            experiment: String::new(),
            arm: String::new(),
        };
        let cells = vec![
            (key(1, "p"), a.clone()),
            (key(2, "p"), b),
            (key(3, "p"), a.clone()),
            (key(1, "q"), a),
        ];
        let c = compare_cells("p", 1, 2, &cells);
        assert_eq!((c.metrics_a.count, c.metrics_b.count), (100, 50));
    }
}
