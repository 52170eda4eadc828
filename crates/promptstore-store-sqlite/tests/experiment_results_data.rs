//! The data behind experiment results, over a phase that spans several UTC days and starts
//! and ends mid-hour: every event of the phase counted once per arm — none from before the
//! phase, none from another experiment — whichever cells (hour, day) or raw rows it is read
//! from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use promptstore_core::analytics::model::EventRecord;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::experiments::model::ExperimentRecord;
use promptstore_core::model::ProjectId;
use promptstore_core::service::experiments::results_data;
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{Arm, CostSource, ExperimentStatus, MetricSpec, OnConclusion};
use time::{Duration, OffsetDateTime};

fn event(project: &ProjectId, experiment: &str, arm: &str, at: OffsetDateTime) -> EventRecord {
    EventRecord {
        project: project.clone(),
        client_id: None,
        prompt_id: "prompt-id".to_owned(),
        prompt: "p".to_owned(),
        version: if arm == "control" { 1 } else { 2 },
        label: Some("production".to_owned()),
        experiment: Some(experiment.to_owned()),
        arm: Some(arm.to_owned()),
        unit_id: None,
        model: "gpt-4o".to_owned(),
        provider: None,
        input_tokens: 100,
        output_tokens: 20,
        cached_input_tokens: 0,
        latency_ms: Some(100.0),
        ttft_ms: None,
        cost: Some(0.001),
        cost_source: CostSource::Computed,
        success: true,
        error_type: None,
        scores: BTreeMap::new(),
        feedback: None,
        metadata: serde_json::json!({}),
        at,
    }
}

fn arm(name: &str, version: u32) -> Arm {
    Arm {
        name: name.to_owned(),
        version,
        weight: 1.0,
        stopped: false,
        stopped_reason: None,
    }
}

fn running(project: &ProjectId, id: &str, started: OffsetDateTime) -> ExperimentRecord {
    ExperimentRecord {
        id: id.to_owned(),
        project: project.clone(),
        name: "e".to_owned(),
        description: String::new(),
        prompt_id: "prompt-id".to_owned(),
        prompt: "p".to_owned(),
        label: "production".to_owned(),
        arms: vec![arm("control", 1), arm("treatment", 2)],
        primary_metric: MetricSpec {
            metric: "success_rate".to_owned(),
            direction: None,
        },
        guardrails: Vec::new(),
        min_sample_per_arm: 100,
        max_duration_hours: None,
        on_conclusion: OnConclusion::Nothing,
        alpha: 0.05,
        sequential_tuning: 5000.0,
        prior: None,
        mde: 0.05,
        status: ExperimentStatus::Running,
        conclusion: None,
        revision: 2,
        phase: 1,
        created_by: "test".to_owned(),
        created_at: started,
        started_at: Some(started),
        phase_started_at: Some(started),
        ended_at: None,
    }
}

#[tokio::test]
async fn a_phase_over_several_days_counts_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("promptstore.db"))
        .await
        .unwrap();
    let project = ProjectId("project-1".to_owned());
    // Mid-hour "now" and a phase start 3 days and a bit earlier, also mid-hour: the range
    // has a partial first hour, a partial first day, whole days, and a partial last day.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let started = now - Duration::days(3) - Duration::minutes(95);

    let mut events = Vec::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut at = started - Duration::hours(5);
    let mut i = 0u64;
    while at < now {
        let arm = if i.is_multiple_of(3) {
            "treatment"
        } else {
            "control"
        };
        events.push(event(&project, "exp-1", arm, at));
        // Noise that must not be counted: another experiment at the same moments.
        events.push(event(&project, "exp-2", arm, at));
        if at >= started {
            *expected.entry(arm.to_owned()).or_default() += 1;
        }
        at += Duration::minutes(17);
        i += 1;
    }
    store.ingest(events).await.unwrap();

    let data = results_data(&store, &running(&project, "exp-1", started), false, now)
        .await
        .unwrap();
    let counted: BTreeMap<String, u64> = data
        .rollups
        .iter()
        .map(|(arm, rollup)| (arm.clone(), rollup.count))
        .collect();
    assert_eq!(counted, expected);
    assert!(expected.values().all(|n| *n > 50), "{expected:?}");
}
