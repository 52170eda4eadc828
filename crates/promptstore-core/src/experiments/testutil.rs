//! Test helpers of the experiment modules: a seeded generator, an event and experiment
//! builder, and rollups with exact counts.

use promptstore_types::{
    Arm, Direction, ExperimentStatus, GuardrailSpec, MetricSpec, OnConclusion,
};
use time::OffsetDateTime;

use super::model::{ExperimentRecord, NewExperiment};
use crate::analytics::model::EventRecord;
use crate::analytics::rollup::Rollup;
use crate::model::ProjectId;

pub(crate) use crate::analytics::testutil::Rng;

/// A successful event with latency 100 ms and cost 0.001, at the Unix epoch.
pub fn event() -> EventRecord {
    crate::analytics::testutil::event(0)
}

/// A rollup with exactly `successes` successes of `n` events.
pub fn rate_rollup(n: u64, successes: u64) -> Rollup {
    Rollup {
        count: n,
        successes,
        ..Default::default()
    }
}

/// A rollup whose latency moments are those of `values` (and as many successful events).
pub fn latency_rollup(values: &[f64]) -> Rollup {
    let mut r = Rollup::default();
    for &v in values {
        let mut e = event();
        e.latency_ms = Some(v);
        r.add(&e);
    }
    r
}

pub fn at(hours: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::hours(hours)
}

pub fn arm(name: &str, version: u32, weight: f64) -> Arm {
    Arm {
        name: name.into(),
        version,
        weight,
        stopped: false,
        stopped_reason: None,
    }
}

pub fn new_experiment() -> NewExperiment {
    NewExperiment {
        name: "shorter prompt".into(),
        description: String::new(),
        prompt: "support/triage".into(),
        label: "production".into(),
        arms: vec![arm("control", 1, 1.0), arm("treatment", 2, 1.0)],
        primary_metric: MetricSpec {
            metric: "success_rate".into(),
            direction: Some(Direction::Higher),
        },
        guardrails: vec![GuardrailSpec {
            metric: "latency_ms".into(),
            direction: Some(Direction::Lower),
            tolerance: 0.1,
        }],
        min_sample_per_arm: 100,
        max_duration_hours: Some(24 * 14),
        on_conclusion: OnConclusion::Nothing,
        alpha: 0.05,
        sequential_tuning: 5000.0,
        prior: None,
        mde: 0.05,
    }
}

/// A running experiment started at hour 0, with the definition of [`new_experiment`].
pub fn experiment() -> ExperimentRecord {
    let n = new_experiment();
    ExperimentRecord {
        id: "exp-1".into(),
        project: ProjectId("p1".into()),
        name: n.name,
        description: n.description,
        prompt_id: "id-a".into(),
        prompt: n.prompt,
        label: n.label,
        arms: n.arms,
        primary_metric: n.primary_metric,
        guardrails: n.guardrails,
        min_sample_per_arm: n.min_sample_per_arm,
        max_duration_hours: n.max_duration_hours,
        on_conclusion: n.on_conclusion,
        alpha: n.alpha,
        sequential_tuning: n.sequential_tuning,
        prior: n.prior,
        mde: n.mde,
        status: ExperimentStatus::Running,
        conclusion: None,
        revision: 2,
        phase: 1,
        created_by: "key-1".into(),
        created_at: at(0),
        started_at: Some(at(0)),
        phase_started_at: Some(at(0)),
        ended_at: None,
    }
}
