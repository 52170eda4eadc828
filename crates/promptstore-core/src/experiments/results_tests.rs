//! Results on clear wins, losses, noise and degenerate data, and properties over seeded
//! random inputs.

use std::collections::BTreeMap;

use promptstore_types::{ArmComparison, Direction, ExperimentResults, MetricSpec, Outcome};

use super::*;
use crate::experiments::testutil::{Rng, arm, at, experiment, latency_rollup, rate_rollup};

fn analyse_with(
    e: &ExperimentRecord,
    rollups: Vec<Rollup>,
    exposures: &[u64],
) -> ExperimentResults {
    let rollups: BTreeMap<String, Rollup> =
        e.arms.iter().map(|a| a.name.clone()).zip(rollups).collect();
    let exposures: BTreeMap<String, u64> = e
        .arms
        .iter()
        .map(|a| a.name.clone())
        .zip(exposures.iter().copied())
        .collect();
    let r = analyze(e, &rollups, &exposures, e.phase_started_at, at(24));
    assert_clean_json(&r);
    r
}

/// Two arms on success rate, with balanced exposures.
fn rates(control: (u64, u64), treatment: (u64, u64)) -> ExperimentResults {
    analyse_with(
        &experiment(),
        vec![
            rate_rollup(control.0, control.1),
            rate_rollup(treatment.0, treatment.1),
        ],
        &[1000, 1000],
    )
}

/// No NaN, no infinity, no null anywhere in the JSON (absent numbers are omitted, and
/// undefined analyses carry a reason).
fn assert_clean_json(r: &ExperimentResults) {
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains("null"), "null in {json}");
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    fn walk(v: &serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => assert!(n.as_f64().is_some_and(f64::is_finite)),
            serde_json::Value::Array(a) => a.iter().for_each(walk),
            serde_json::Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    walk(&serde_json::to_value(r).unwrap());
}

fn only(r: &ExperimentResults) -> &ArmComparison {
    &r.primary.comparisons[0]
}

fn undefined_reason<T: std::fmt::Debug>(o: &Outcome<T>) -> &str {
    match o {
        Outcome::Undefined { undefined } => undefined,
        Outcome::Defined(t) => panic!("expected undefined, got {t:?}"),
    }
}

#[test]
fn a_clear_win_is_called() {
    let r = rates((10_000, 1_000), (10_000, 1_300));
    let c = only(&r);
    assert_eq!(c.call, BETTER);
    assert!((c.rel_diff.unwrap() - 0.3).abs() < 1e-12);
    assert!((c.abs_diff.unwrap() - 0.03).abs() < 1e-12);
    let Outcome::Defined(b) = &c.bayesian else {
        panic!()
    };
    assert!(b.chance_to_beat_control > 0.999);
    assert!(b.risk_treatment < b.risk_control);
    assert!(c.z_pooled.is_some() && c.z_unpooled.is_some());
    assert_eq!(r.verdict.code, TREATMENT_WINS);
    assert_eq!(r.verdict.arm.as_deref(), Some("treatment"));
    assert!(
        r.verdict.message.contains("+30.0%"),
        "{}",
        r.verdict.message
    );
    assert!(!r.srm.mismatch);
}

#[test]
fn a_clear_loss_is_called() {
    let r = rates((10_000, 1_300), (10_000, 1_000));
    assert_eq!(only(&r).call, WORSE);
    assert_eq!(r.verdict.code, CONTROL_WINS);
    assert_eq!(r.verdict.arm.as_deref(), Some("control"));
}

#[test]
fn noise_keeps_running() {
    let r = rates((500, 50), (500, 53));
    assert_eq!(only(&r).call, INCONCLUSIVE);
    assert_eq!(r.verdict.code, KEEP_RUNNING);
    let ss = &r.sample_size;
    let required = ss.required_per_arm.unwrap();
    assert_eq!(ss.remaining_per_arm, Some(required - 500));
    assert!(
        r.verdict.message.contains(&required.to_string()),
        "{}",
        r.verdict.message
    );
}

#[test]
fn enough_data_without_a_difference_says_so() {
    let r = rates((200_000, 20_000), (200_000, 20_010));
    assert_eq!(only(&r).call, INCONCLUSIVE);
    assert_eq!(r.sample_size.remaining_per_arm, Some(0));
    assert_eq!(r.verdict.code, NO_DETECTABLE_DIFFERENCE, "{:?}", r.verdict);
}

#[test]
fn sample_size_matches_the_normal_approximation() {
    // Baseline 10%, +5% relative: (z_a + z_b)²(p1q1 + p2q2)/(p2 − p1)².
    let r = rates((1000, 100), (1000, 100));
    let (p1, p2) = (0.1_f64, 0.105_f64);
    let z = 1.959_963_984_540_054 + 0.841_621_233_572_914_3;
    let n = z * z * (p1 * (1.0 - p1) + p2 * (1.0 - p2)) / (p2 - p1).powi(2);
    assert_eq!(r.sample_size.required_per_arm, Some(n.ceil() as u64));
    assert_eq!(r.sample_size.power, 0.8);
}

#[test]
fn an_srm_mismatch_overrides_a_win() {
    let e = experiment();
    let r = analyse_with(
        &e,
        vec![rate_rollup(10_000, 1_000), rate_rollup(10_000, 1_300)],
        &[5_000, 4_500],
    );
    assert!(r.srm.mismatch);
    assert!(r.srm.p_value < 0.001);
    assert_eq!(r.srm.expected, vec![4_750.0, 4_750.0]);
    assert_eq!(r.verdict.code, UNTRUSTWORTHY);
    assert!(
        r.verdict.message.contains("5000 / 4500"),
        "{}",
        r.verdict.message
    );
}

#[test]
fn stopped_arms_weigh_zero_and_cannot_win() {
    let mut e = experiment();
    e.arms.push(arm("bold", 3, 1.0));
    e.arms[2].stopped = true;
    let r = analyse_with(
        &e,
        vec![
            rate_rollup(10_000, 1_000),
            rate_rollup(10_000, 1_010),
            rate_rollup(10_000, 2_000),
        ],
        &[1_000, 1_000, 0],
    );
    assert_eq!(r.srm.expected, vec![1_000.0, 1_000.0, 0.0]);
    assert!(!r.srm.mismatch);
    assert_eq!(r.primary.comparisons[1].call, BETTER);
    assert_ne!(r.verdict.code, TREATMENT_WINS, "{:?}", r.verdict);
}

#[test]
fn lower_is_better_for_latency() {
    let mut e = experiment();
    e.primary_metric = MetricSpec {
        metric: "latency_ms".into(),
        direction: None,
    };
    let mut rng = Rng::new(3);
    let mut values = |mean: f64| {
        (0..3000)
            .map(|_| mean + 100.0 * rng.normal())
            .collect::<Vec<_>>()
    };
    let (slow, fast) = (values(1200.0), values(1100.0));
    let r = analyse_with(
        &e,
        vec![latency_rollup(&slow), latency_rollup(&fast)],
        &[3000, 3000],
    );
    assert_eq!(r.primary.direction, Direction::Lower);
    let c = only(&r);
    assert!(c.rel_diff.unwrap() < 0.0);
    assert_eq!(c.call, BETTER);
    assert!(c.z_pooled.is_none(), "no z test for a mean");
    let Outcome::Defined(b) = &c.bayesian else {
        panic!()
    };
    assert!(b.chance_to_beat_control > 0.99, "inverse applied: {b:?}");
    assert_eq!(r.verdict.code, TREATMENT_WINS);
    // The guardrail on latency is the same data here.
    assert_eq!(r.guardrails[0].comparisons[0].call, BETTER);
}

#[test]
fn degenerate_data_is_undefined_with_a_reason() {
    // No events at all.
    let r = rates((0, 0), (0, 0));
    let c = only(&r);
    assert!(undefined_reason(&c.sequential).contains("no events"));
    assert!(undefined_reason(c.z_pooled.as_ref().unwrap()).contains("no events"));
    assert_eq!((c.abs_diff, c.rel_diff), (None, None));
    assert!(r.sample_size.undefined.is_some());
    assert_eq!(r.srm.p_value, 1.0);
    assert_eq!(r.verdict.code, KEEP_RUNNING);
    assert!(
        r.verdict.message.contains("cannot be compared"),
        "{}",
        r.verdict.message
    );
    assert_eq!(r.primary.arms[0].mean, None);

    // Zero baseline: 0% in the control.
    let r = rates((100, 0), (100, 5));
    let c = only(&r);
    assert!(undefined_reason(&c.frequentist_relative).contains("mean success_rate of 0"));
    assert_eq!(c.rel_diff, None);
    assert!(c.abs_diff.is_some());
    assert!(matches!(c.z_pooled, Some(Outcome::Defined(_))));

    // Zero variance: 100% in both.
    let r = rates((100, 100), (100, 100));
    let c = only(&r);
    assert!(undefined_reason(&c.sequential).contains("zero variance"));
    assert!(undefined_reason(c.z_pooled.as_ref().unwrap()).contains("standard error is 0"));
    assert!(r.sample_size.undefined.is_some());

    // One value per arm of a mean.
    let mut e = experiment();
    e.primary_metric.metric = "latency_ms".into();
    let r = analyse_with(
        &e,
        vec![latency_rollup(&[5.0]), latency_rollup(&[7.0])],
        &[1, 1],
    );
    assert!(undefined_reason(&only(&r).sequential).contains("fewer than two"));

    // TTFT has no moments.
    e.primary_metric.metric = "ttft_ms".into();
    let r = analyse_with(
        &e,
        vec![latency_rollup(&[5.0, 6.0]), latency_rollup(&[7.0, 9.0])],
        &[2, 2],
    );
    assert!(undefined_reason(&only(&r).bayesian).contains("ttft_ms"));
    assert!(
        r.sample_size
            .undefined
            .as_deref()
            .unwrap()
            .contains("ttft_ms")
    );

    // Missing arm data is an empty arm.
    let r = analyze(
        &experiment(),
        &BTreeMap::new(),
        &BTreeMap::new(),
        None,
        at(1),
    );
    assert_clean_json(&r);
    assert_eq!(r.verdict.code, KEEP_RUNNING);

    // A record without arms (never valid, but never a panic either).
    let mut e = experiment();
    e.arms.clear();
    let r = analyze(&e, &BTreeMap::new(), &BTreeMap::new(), None, at(1));
    assert_clean_json(&r);
    assert!(r.primary.comparisons.is_empty());
}

/// Random arms (rates and means, small to large, occasionally degenerate).
fn random_rollup(rng: &mut Rng, rate: bool) -> Rollup {
    if rate {
        let n = rng.below(5000);
        let p = rng.unit();
        rate_rollup(n, (n as f64 * p) as u64)
    } else {
        let n = rng.below(200) as usize;
        // Positive means: the sign of a relative lift flips with the arms only then.
        let mean = 100.0 + 1000.0 * rng.unit();
        let sd = 30.0 * rng.unit();
        latency_rollup(&(0..n).map(|_| mean + sd * rng.normal()).collect::<Vec<_>>())
    }
}

#[test]
fn properties_over_random_inputs() {
    let mut rng = Rng::new(2024);
    for round in 0..300 {
        let rate = round % 2 == 0;
        let mut e = experiment();
        if !rate {
            e.primary_metric.metric = "latency_ms".into();
            e.primary_metric.direction = Some(Direction::Lower);
        }
        e.alpha = [0.01, 0.05, 0.1][rng.below(3) as usize];
        let (ra, rb) = (random_rollup(&mut rng, rate), random_rollup(&mut rng, rate));
        let exposures = [rng.below(3000), rng.below(3000)];
        let fwd = analyse_with(&e, vec![ra.clone(), rb.clone()], &exposures);
        let back = analyse_with(&e, vec![rb, ra], &exposures);
        let (f, b) = (only(&fwd), only(&back));

        // Swapping the arms flips the sign of every lift.
        if let (Some(x), Some(y)) = (f.abs_diff, b.abs_diff) {
            assert!((x + y).abs() <= 1e-12 * (1.0 + x.abs()), "{x} vs {y}");
        }
        if let (Some(x), Some(y)) = (f.rel_diff, b.rel_diff) {
            assert!(x * y <= 0.0 || (x == 0.0 && y == 0.0), "{x} vs {y}");
        }
        if let (Outcome::Defined(x), Outcome::Defined(y)) =
            (&f.frequentist_absolute, &b.frequentist_absolute)
        {
            assert!((x.estimate + y.estimate).abs() <= 1e-9 * (1.0 + x.estimate.abs()));
            assert!((x.p_value - y.p_value).abs() < 1e-9, "same test, same p");
        }
        let calls = (f.call.as_str(), b.call.as_str());
        assert!(
            !matches!(calls, (BETTER, BETTER) | (WORSE, WORSE)),
            "round {round}: {calls:?}"
        );

        for r in [&fwd, &back] {
            let c = only(r);
            let tests = [
                Some(&c.frequentist_relative),
                Some(&c.frequentist_absolute),
                Some(&c.sequential),
                c.z_pooled.as_ref(),
                c.z_unpooled.as_ref(),
            ];
            for t in tests.into_iter().flatten() {
                if let Outcome::Defined(t) = t {
                    assert!((0.0..=1.0).contains(&t.p_value), "{t:?}");
                    assert!(
                        t.ci_lower <= t.estimate && t.estimate <= t.ci_upper,
                        "{t:?}"
                    );
                    assert!(t.stddev >= 0.0);
                }
            }
            if let Outcome::Defined(bayes) = &c.bayesian {
                assert!((0.0..=1.0).contains(&bayes.chance_to_beat_control));
                assert!(bayes.ci_lower <= bayes.estimate && bayes.estimate <= bayes.ci_upper);
                assert!(bayes.risk_control >= 0.0 && bayes.risk_treatment >= 0.0);
            }
            assert!((0.0..=1.0).contains(&r.srm.p_value));
        }
    }
}

#[test]
fn keep_running_past_the_sample_size_says_so() {
    // Sized for the MDE already, but below the experiment's own minimum sample: the
    // message must not claim fewer events than it has.
    let mut e = experiment();
    e.min_sample_per_arm = 1_000_000;
    let r = analyse_with(
        &e,
        vec![rate_rollup(200_000, 20_000), rate_rollup(200_000, 20_050)],
        &[1000, 1000],
    );
    assert_eq!(r.verdict.code, KEEP_RUNNING);
    let required = r.sample_size.required_per_arm.unwrap();
    assert!(required < 200_000);
    assert!(
        r.verdict.message.contains(&format!(
            "200000 events in the smallest arm, past the {required} per arm needed"
        )),
        "{}",
        r.verdict.message
    );
}
