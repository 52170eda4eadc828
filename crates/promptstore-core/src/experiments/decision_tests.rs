//! The automatic decisions on synthetic results: guardrail stops, conclusions on
//! conclusive data and at the maximum duration, silence under SRM, promotion.

use std::collections::BTreeMap;

use promptstore_types::{ExperimentResults, ExperimentStatus, OnConclusion};

use super::*;
use crate::analytics::rollup::{Moments, Rollup};
use crate::experiments::results::analyze;
use crate::experiments::testutil::{arm, at, experiment};

/// `n` events, `successes` of them successful, latency with exactly this mean and sd.
fn data(n: u64, successes: u64, latency_mean: f64, latency_sd: f64) -> Rollup {
    let nf = n as f64;
    Rollup {
        count: n,
        successes,
        latency_moments: Moments {
            count: n,
            sum: nf * latency_mean,
            sum_sq: (nf - 1.0) * latency_sd * latency_sd + nf * latency_mean * latency_mean,
        },
        ..Default::default()
    }
}

fn results(e: &ExperimentRecord, arms: Vec<Rollup>, exposures: &[u64]) -> ExperimentResults {
    let names = e.arms.iter().map(|a| a.name.clone());
    let rollups: BTreeMap<String, Rollup> = names.clone().zip(arms).collect();
    let exposures: BTreeMap<String, u64> = names.zip(exposures.iter().copied()).collect();
    analyze(e, &rollups, &exposures, e.phase_started_at, at(1))
}

const NOISE: (u64, u64) = (2000, 200);

#[test]
fn a_guardrail_breach_stops_the_arm() {
    let mut e = experiment();
    e.arms.push(arm("bold", 3, 1.0));
    let r = results(
        &e,
        vec![
            data(NOISE.0, NOISE.1, 1000.0, 100.0),
            data(NOISE.0, NOISE.1 + 3, 1010.0, 100.0),
            // 50% slower, tolerance 10%.
            data(NOISE.0, NOISE.1 + 5, 1500.0, 100.0),
        ],
        &[2000, 2000, 2000],
    );
    let breaches = guardrail_breaches(&e, &r);
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].arm, "bold");
    let Decision::StopArms {
        arms,
        stopped,
        note,
    } = decide(&e, &r, at(1), false)
    else {
        panic!("expected an arm stop");
    };
    assert_eq!(stopped, vec!["bold".to_owned()]);
    assert!(arms[2].stopped && !arms[1].stopped && !arms[0].stopped);
    let reason = arms[2].stopped_reason.as_deref().unwrap();
    assert!(
        reason.contains("latency_ms") && reason.contains("+50.0%"),
        "{reason}"
    );
    assert_eq!(note.kind, "arm_stopped");
    assert_eq!(note.details["stopped"][0], "bold");
    // The new arm list is valid for a running experiment.
    crate::experiments::definition::validate_running_arms(&arms, 3).unwrap();
}

#[test]
fn a_regression_within_tolerance_is_no_breach() {
    let e = experiment();
    // 5% slower, clearly significant, but the tolerance is 10%.
    let r = results(
        &e,
        vec![
            data(NOISE.0, NOISE.1, 1000.0, 10.0),
            data(NOISE.0, NOISE.1, 1050.0, 10.0),
        ],
        &[2000, 2000],
    );
    assert_eq!(r.guardrails[0].comparisons[0].call, "worse");
    assert!(guardrail_breaches(&e, &r).is_empty());
    assert_eq!(decide(&e, &r, at(1), false), Decision::Nothing);
}

#[test]
fn when_every_treatment_breaches_the_experiment_stops() {
    let e = experiment();
    let r = results(
        &e,
        vec![
            data(NOISE.0, NOISE.1, 1000.0, 100.0),
            data(NOISE.0, NOISE.1, 2000.0, 100.0),
        ],
        &[2000, 2000],
    );
    let Decision::StopExperiment(note) = decide(&e, &r, at(1), false) else {
        panic!("expected the experiment to stop");
    };
    assert_eq!(note.kind, "stopped");
    assert!(
        note.message.contains("no treatment arm remains"),
        "{}",
        note.message
    );
}

#[test]
fn a_conclusive_primary_with_enough_data_concludes() {
    let e = experiment();
    let r = results(
        &e,
        vec![
            data(10_000, 1_000, 1000.0, 100.0),
            data(10_000, 1_300, 1000.0, 100.0),
        ],
        &[10_000, 10_000],
    );
    let Decision::Conclude {
        conclusion,
        note,
        promotion,
    } = decide(&e, &r, at(1), false)
    else {
        panic!("expected a conclusion");
    };
    assert_eq!(conclusion.winner.as_deref(), Some("treatment"));
    assert_eq!(conclusion.decided_by, "automatic");
    assert!(!conclusion.promoted);
    assert_eq!(promotion, None, "on_conclusion is nothing");
    assert!(
        conclusion.reason.contains("+30.0%"),
        "{}",
        conclusion.reason
    );
    assert_eq!(note.kind, "concluded");
    assert_eq!(note.details["trigger"], "conclusive");
    assert_eq!(note.details["events_per_arm"][1]["n"], 10_000);

    // Not enough events yet: wait.
    let mut patient = e.clone();
    patient.min_sample_per_arm = 20_000;
    assert_eq!(decide(&patient, &r, at(1), false), Decision::Nothing);
}

#[test]
fn promotion_names_the_winners_version() {
    let mut e = experiment();
    e.on_conclusion = OnConclusion::PromoteWinner;
    let r = results(
        &e,
        vec![
            data(10_000, 1_000, 1000.0, 100.0),
            data(10_000, 1_300, 1000.0, 100.0),
        ],
        &[10_000, 10_000],
    );
    let Decision::Conclude {
        conclusion,
        promotion: Some(p),
        ..
    } = decide(&e, &r, at(1), false)
    else {
        panic!("expected a promotion");
    };
    assert!(conclusion.promoted);
    assert_eq!((p.arm.as_str(), p.version), ("treatment", 2));
    assert!(
        p.reason
            .starts_with("experiment shorter prompt concluded: "),
        "{}",
        p.reason
    );

    // The control winning is concluded, but nothing is promoted.
    let r = results(
        &e,
        vec![
            data(10_000, 1_300, 1000.0, 100.0),
            data(10_000, 1_000, 1000.0, 100.0),
        ],
        &[10_000, 10_000],
    );
    let Decision::Conclude {
        conclusion,
        promotion,
        ..
    } = decide(&e, &r, at(1), false)
    else {
        panic!("expected a conclusion");
    };
    assert_eq!(conclusion.winner.as_deref(), Some("control"));
    assert_eq!(promotion, None);
    assert!(!conclusion.promoted);
}

#[test]
fn a_winner_that_breaches_a_guardrail_does_not_win() {
    let mut e = experiment();
    e.on_conclusion = OnConclusion::PromoteWinner;
    let r = results(
        &e,
        vec![
            data(10_000, 1_000, 1000.0, 100.0),
            data(10_000, 1_300, 2000.0, 100.0),
        ],
        &[10_000, 10_000],
    );
    assert_eq!(r.verdict.code, "treatment_wins");
    assert!(matches!(
        decide(&e, &r, at(1), false),
        Decision::StopExperiment(_)
    ));
}

#[test]
fn the_maximum_duration_concludes_whatever_the_data() {
    let e = experiment();
    let hours = i64::from(e.max_duration_hours.unwrap());
    let r = results(
        &e,
        vec![
            data(NOISE.0, NOISE.1, 1000.0, 100.0),
            data(NOISE.0, NOISE.1 + 4, 1000.0, 100.0),
        ],
        &[2000, 2000],
    );
    assert_eq!(decide(&e, &r, at(hours - 1), false), Decision::Nothing);
    let Decision::Conclude {
        conclusion, note, ..
    } = decide(&e, &r, at(hours), false)
    else {
        panic!("expected a conclusion at the maximum duration");
    };
    assert_eq!(conclusion.winner, None);
    assert!(
        conclusion.reason.contains("maximum duration of 336 h"),
        "{}",
        conclusion.reason
    );
    assert_eq!(note.details["trigger"], "max_duration");
}

#[test]
fn no_decision_under_srm() {
    let mut e = experiment();
    e.on_conclusion = OnConclusion::PromoteWinner;
    let r = results(
        &e,
        vec![
            data(10_000, 1_000, 1000.0, 100.0),
            data(10_000, 1_300, 2000.0, 100.0),
        ],
        &[10_000, 8_000],
    );
    assert!(r.srm.mismatch);
    let Decision::SrmWarning(note) = decide(&e, &r, at(1), false) else {
        panic!("expected the SRM warning");
    };
    assert_eq!(note.kind, SRM_WARNING_KIND);
    assert!(note.message.contains("p < 0.0001"), "{}", note.message);
    assert_eq!(decide(&e, &r, at(1), true), Decision::Nothing);
    // At the maximum duration it concludes, without a winner.
    let Decision::Conclude {
        conclusion,
        promotion,
        ..
    } = decide(&e, &r, at(10_000), true)
    else {
        panic!("expected a conclusion");
    };
    assert_eq!((conclusion.winner, promotion), (None, None));
    assert!(conclusion.reason.contains("SRM"), "{}", conclusion.reason);
}

#[test]
fn only_running_experiments_are_decided() {
    let mut e = experiment();
    e.status = ExperimentStatus::Stopped;
    let r = results(
        &e,
        vec![
            data(10_000, 1_000, 1000.0, 100.0),
            data(10_000, 1_300, 1000.0, 100.0),
        ],
        &[10_000, 10_000],
    );
    assert_eq!(decide(&e, &r, at(10_000), false), Decision::Nothing);
}
