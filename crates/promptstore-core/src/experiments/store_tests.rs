//! The experiment part of the storage conformance suite: what every `Store` backend must do
//! with experiments and their history, and every `AnalyticsStore` backend with exposures and
//! the arm filter. Expanded for each backend by `store_test_suite!` and
//! `analytics_store_test_suite!` (through [`experiment_store_test_suite!`](crate::experiment_store_test_suite)
//! and [`experiment_analytics_test_suite!`](crate::experiment_analytics_test_suite)).
//!
//! Each test gets fresh, empty stores; times are taken from what the store returned.

// This is test code compiled as a library (feature `testing`): a failed expectation must
// stop the test with a message, which is what unwrap and panic do.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use promptstore_types::{
    Arm, Conclusion, CostSource, ExperimentStatus, GuardrailSpec, MetricSpec, OnConclusion,
    PriorSpec, PromptKind, PromptStatus, Role, Template,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::model::{
    ExperimentChange, ExperimentFilter, ExperimentRecord, Exposure, HistoryNote, NewExperiment,
};
use crate::analytics::model::{AnalyticsFilter, EventRecord, Granularity};
use crate::analytics::store::AnalyticsStore;
use crate::model::{Actor, NewApiKey, NewVersion, ProjectId};
use crate::store::{AuditFilter, PageRequest, Store, StoreError, WriteOp, WriteOutcome};

/// Expand to one `#[tokio::test]` per experiment registry conformance test; `$make` is as
/// for [`store_test_suite!`](crate::store_test_suite), which expands this too.
#[macro_export]
macro_rules! experiment_store_test_suite {
    ($make:expr) => {
        $crate::experiment_store_test_suite!(@each $make;
            experiments_create_read_and_list,
            experiment_writes_refuse_what_breaks_the_rules,
            one_running_experiment_per_prompt_and_label,
            experiment_lifecycle_phases_and_audit,
            experiment_history_is_oldest_first_and_paginated,
            experiment_list_paginates_without_gaps,
            deleting_a_prompt_deletes_its_experiments,
            experiments_are_isolated_between_projects,
            conclusion_and_label_move_are_atomic,
            notes_append_history_without_changing_the_experiment,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $make;
                $crate::experiments::store_tests::$name(
                    $crate::store_tests::Fixture::store(&fixture),
                )
                .await;
            }
        )+
    };
}

/// Expand to one `#[tokio::test]` per experiment analytics conformance test; `$make` is as
/// for [`analytics_store_test_suite!`](crate::analytics_store_test_suite), which expands this
/// too.
#[macro_export]
macro_rules! experiment_analytics_test_suite {
    ($make:expr) => {
        $crate::experiment_analytics_test_suite!(@each $make;
            exposures_are_deduplicated_per_phase_and_counted,
            large_exposure_batches_are_stored,
            arm_filter_narrows_cells_window_and_events,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $make;
                $crate::experiments::store_tests::$name(
                    $crate::analytics::store_tests::AnalyticsFixture::analytics(&fixture),
                )
                .await;
            }
        )+
    };
}

// ---- fixtures ------------------------------------------------------------------------------

/// A project with an admin key; returns the actor of that key.
async fn project(store: &dyn Store, name: &str) -> Actor {
    let creator = Actor::system(ProjectId("bootstrap".to_owned()));
    let (project, key) = store
        .create_project(
            &creator,
            name,
            &[],
            NewApiKey {
                id: format!("{name}admin"),
                name: format!("admin of {name}"),
                role: Role::Admin,
                secret_hash: format!("hash-of-{name}"),
            },
        )
        .await
        .unwrap();
    Actor {
        project: project.id,
        key_id: key.id,
        role: Role::Admin,
    }
}

fn text_version(text: &str) -> NewVersion {
    NewVersion {
        template: Template::Text {
            text: text.to_owned(),
        },
        variables: vec![],
        model_config: json!({}),
        commit_message: format!("set text to {text}"),
        parent: None,
        content_hash: format!("hash:{text}"),
        includes: vec![],
        breaking_changes: vec![],
    }
}

/// A prompt with versions 1..=`versions` and the label `production` on version 1.
async fn prompt(store: &dyn Store, actor: &Actor, name: &str, versions: u32) {
    let mut ops = vec![WriteOp::CreatePrompt {
        name: name.to_owned(),
        kind: PromptKind::Text,
        description: String::new(),
        tags: vec![],
        status: PromptStatus::Draft,
        first_version: text_version(&format!("{name} v1")),
    }];
    for n in 2..=versions {
        ops.push(WriteOp::CreateVersion {
            name: name.to_owned(),
            expected_latest: None,
            version: text_version(&format!("{name} v{n}")),
        });
    }
    ops.push(WriteOp::MoveLabel {
        name: name.to_owned(),
        label: "production".to_owned(),
        to: Some(1),
        expected_from: None,
        reason: None,
    });
    store.apply(actor, ops).await.unwrap();
}

fn arm(name: &str, version: u32, weight: f64) -> Arm {
    Arm {
        name: name.to_owned(),
        version,
        weight,
        stopped: false,
        stopped_reason: None,
    }
}

fn definition(name: &str, prompt: &str, label: &str) -> NewExperiment {
    NewExperiment {
        name: name.to_owned(),
        description: format!("does {name} help?"),
        prompt: prompt.to_owned(),
        label: label.to_owned(),
        arms: vec![arm("control", 1, 1.0), arm("treatment", 2, 1.0)],
        primary_metric: MetricSpec {
            metric: "success_rate".to_owned(),
            direction: None,
        },
        guardrails: vec![GuardrailSpec {
            metric: "latency_ms".to_owned(),
            direction: None,
            tolerance: 0.1,
        }],
        min_sample_per_arm: 100,
        max_duration_hours: Some(72),
        on_conclusion: OnConclusion::PromoteWinner,
        alpha: 0.05,
        sequential_tuning: 5000.0,
        prior: Some(PriorSpec {
            mean: 0.0,
            stddev: 0.3,
        }),
        mde: 0.05,
    }
}

fn note(kind: &str, message: &str) -> HistoryNote {
    HistoryNote {
        kind: kind.to_owned(),
        message: message.to_owned(),
        details: json!({ "kind": kind }),
    }
}

fn create_op(new: NewExperiment) -> WriteOp {
    WriteOp::CreateExperiment {
        experiment: new,
        note: note("created", "created by the test"),
    }
}

fn update_op(id: &str, expected_revision: Option<u64>, change: ExperimentChange) -> WriteOp {
    let kind = match &change {
        ExperimentChange::ReplaceDraft(_) => "updated",
        ExperimentChange::Start => "started",
        ExperimentChange::SetArms(_) => "arms_changed",
        ExperimentChange::Stop => "stopped",
        ExperimentChange::Conclude(_) => "concluded",
    };
    WriteOp::UpdateExperiment {
        id: id.to_owned(),
        expected_revision,
        change,
        note: note(kind, &format!("{kind} by the test")),
    }
}

async fn one(store: &dyn Store, actor: &Actor, op: WriteOp) -> Result<WriteOutcome, StoreError> {
    let mut outcomes = store.apply(actor, vec![op]).await?;
    assert_eq!(outcomes.len(), 1, "one op, one outcome");
    Ok(outcomes.remove(0))
}

async fn write(
    store: &dyn Store,
    actor: &Actor,
    op: WriteOp,
) -> Result<ExperimentRecord, StoreError> {
    match one(store, actor, op).await? {
        WriteOutcome::Experiment(e) => Ok(e),
        other => panic!("an experiment write answered {other:?}"),
    }
}

async fn create(store: &dyn Store, actor: &Actor, new: NewExperiment) -> ExperimentRecord {
    write(store, actor, create_op(new)).await.unwrap()
}

async fn change(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    change: ExperimentChange,
) -> Result<ExperimentRecord, StoreError> {
    write(store, actor, update_op(id, None, change)).await
}

fn conclusion(winner: Option<&str>) -> Conclusion {
    Conclusion {
        winner: winner.map(str::to_owned),
        reason: "the test decided".to_owned(),
        promoted: winner.is_some(),
        decided_by: "manual".to_owned(),
    }
}

async fn get(store: &dyn Store, actor: &Actor, id: &str) -> ExperimentRecord {
    store
        .get_experiment(&actor.project, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("experiment {id} is stored"))
}

async fn history_kinds(store: &dyn Store, actor: &Actor, id: &str) -> Vec<String> {
    let page = PageRequest {
        cursor: None,
        limit: 200,
    };
    store
        .experiment_history(&actor.project, id, &page)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|h| h.kind)
        .collect()
}

async fn list_names(store: &dyn Store, actor: &Actor, filter: ExperimentFilter) -> Vec<String> {
    store
        .list_experiments(&actor.project, &filter, &PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.name)
        .collect()
}

async fn audit_actions(store: &dyn Store, actor: &Actor, object_id: &str) -> Vec<String> {
    let filter = AuditFilter {
        object_id: Some(object_id.to_owned()),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        cursor: None,
        limit: 200,
    };
    let mut actions: Vec<String> = store
        .list_audit(&actor.project, &filter, &page)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.reverse();
    actions
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Conflict { message }) => {
            assert!(message.contains(needle), "{message:?} names {needle:?}")
        }
        other => panic!("expected a conflict naming {needle:?}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::NotFound { what }) => {
            assert!(what.contains(needle), "{what:?} names {needle:?}")
        }
        other => panic!("expected not found naming {needle:?}, got {other:?}"),
    }
}

// ---- registry tests ------------------------------------------------------------------------

pub async fn experiments_create_read_and_list(store: &dyn Store) {
    let a = project(store, "expa").await;
    prompt(store, &a, "support/triage", 3).await;
    prompt(store, &a, "support/reply", 2).await;
    let prompt_record = store
        .get_prompt(&a.project, "support/triage")
        .await
        .unwrap()
        .unwrap();

    let def = definition("shorter", "support/triage", "production");
    let e = create(store, &a, def.clone()).await;
    assert!(!e.id.is_empty());
    assert_eq!(e.project, a.project);
    assert_eq!(e.name, "shorter");
    assert_eq!(e.description, def.description);
    assert_eq!(e.prompt, "support/triage");
    assert_eq!(e.prompt_id, prompt_record.id);
    assert_eq!(e.label, "production");
    assert_eq!(e.arms, def.arms);
    assert_eq!(e.primary_metric, def.primary_metric);
    assert_eq!(e.guardrails, def.guardrails);
    assert_eq!(e.min_sample_per_arm, 100);
    assert_eq!(e.max_duration_hours, Some(72));
    assert_eq!(e.on_conclusion, OnConclusion::PromoteWinner);
    assert_eq!(e.alpha, 0.05);
    assert_eq!(e.sequential_tuning, 5000.0);
    assert_eq!(e.prior, def.prior);
    assert_eq!(e.mde, 0.05);
    assert_eq!(e.status, ExperimentStatus::Draft);
    assert_eq!(e.conclusion, None);
    assert_eq!(e.revision, 1);
    assert_eq!(e.phase, 0);
    assert_eq!(e.created_by, a.key_id);
    assert_eq!(e.started_at, None);
    assert_eq!(e.phase_started_at, None);
    assert_eq!(e.ended_at, None);
    assert_eq!(
        get(store, &a, &e.id).await,
        e,
        "what a write returns is what a read returns"
    );
    assert_eq!(
        store
            .get_experiment(&a.project, "no-such-id")
            .await
            .unwrap(),
        None
    );

    // Optional fields absent round-trip too.
    let mut bare = definition("bare", "support/reply", "production");
    bare.max_duration_hours = None;
    bare.prior = None;
    bare.guardrails = vec![];
    bare.on_conclusion = OnConclusion::Nothing;
    bare.description = String::new();
    let b = create(store, &a, bare).await;
    let b_read = get(store, &a, &b.id).await;
    assert_eq!(b_read.max_duration_hours, None);
    assert_eq!(b_read.prior, None);
    assert_eq!(b_read.on_conclusion, OnConclusion::Nothing);
    assert_ne!(b.id, e.id, "every experiment has its own id");

    let c = create(store, &a, definition("third", "support/triage", "staging")).await;
    change(store, &a, &c.id, ExperimentChange::Start)
        .await
        .unwrap();

    assert_eq!(
        list_names(store, &a, ExperimentFilter::default()).await,
        ["third", "bare", "shorter"],
        "newest first"
    );
    let by_prompt = ExperimentFilter {
        prompt: Some("support/triage".to_owned()),
        ..ExperimentFilter::default()
    };
    assert_eq!(list_names(store, &a, by_prompt).await, ["third", "shorter"]);
    let drafts = ExperimentFilter {
        status: Some(ExperimentStatus::Draft),
        ..ExperimentFilter::default()
    };
    assert_eq!(list_names(store, &a, drafts).await, ["bare", "shorter"]);
    let both = ExperimentFilter {
        prompt: Some("support/triage".to_owned()),
        status: Some(ExperimentStatus::Running),
    };
    assert_eq!(list_names(store, &a, both).await, ["third"]);
    let unknown = ExperimentFilter {
        prompt: Some("no/such".to_owned()),
        ..ExperimentFilter::default()
    };
    assert!(list_names(store, &a, unknown).await.is_empty());

    // The creation is in the history with the note, and in the audit log.
    let history = store
        .experiment_history(&a.project, &e.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1);
    let h = &history.items[0];
    assert_eq!(h.experiment_id, e.id);
    assert_eq!(h.kind, "created");
    assert_eq!(h.message, "created by the test");
    assert_eq!(h.details, json!({ "kind": "created" }));
    assert_eq!(h.actor, a.key_id);
    assert_eq!(h.at, e.created_at);
    assert_eq!(
        audit_actions(store, &a, &e.id).await,
        ["experiment.created"]
    );
}

pub async fn experiment_writes_refuse_what_breaks_the_rules(store: &dyn Store) {
    let a = project(store, "expr").await;
    prompt(store, &a, "p", 2).await;

    assert_not_found(
        write(
            store,
            &a,
            create_op(definition("x", "no/such", "production")),
        )
        .await,
        "prompt 'no/such'",
    );
    let mut bad_arm = definition("x", "p", "production");
    bad_arm.arms[1].version = 9;
    assert_not_found(write(store, &a, create_op(bad_arm)).await, "version 9");
    assert!(
        list_names(store, &a, ExperimentFilter::default())
            .await
            .is_empty()
    );

    let e = create(store, &a, definition("x", "p", "production")).await;
    // A stale revision.
    assert_conflict(
        write(
            store,
            &a,
            update_op(&e.id, Some(7), ExperimentChange::Start),
        )
        .await,
        "revision",
    );
    // Transitions a draft cannot take.
    assert_conflict(
        change(store, &a, &e.id, ExperimentChange::Stop).await,
        "draft",
    );
    assert_conflict(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::Conclude(conclusion(None)),
        )
        .await,
        "draft",
    );
    // Arms of versions that do not exist.
    assert_not_found(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::SetArms(vec![arm("control", 1, 1.0), arm("b", 5, 1.0)]),
        )
        .await,
        "version 5",
    );
    // A replaced draft may not point at an unknown prompt.
    assert_not_found(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::ReplaceDraft(definition("x", "no/such", "production")),
        )
        .await,
        "prompt 'no/such'",
    );
    // Unknown experiments.
    assert_not_found(
        change(store, &a, "nope", ExperimentChange::Start).await,
        "nope",
    );
    assert_not_found(
        one(
            store,
            &a,
            WriteOp::DeleteExperiment {
                id: "nope".to_owned(),
            },
        )
        .await,
        "nope",
    );
    // Nothing of the refusals was written.
    let unchanged = get(store, &a, &e.id).await;
    assert_eq!(unchanged, e);
    assert_eq!(history_kinds(store, &a, &e.id).await, ["created"]);

    // Right revision: started.
    let started = write(
        store,
        &a,
        update_op(&e.id, Some(1), ExperimentChange::Start),
    )
    .await
    .unwrap();
    assert_eq!(started.status, ExperimentStatus::Running);
    assert_conflict(
        change(store, &a, &e.id, ExperimentChange::Start).await,
        "running",
    );
    assert_conflict(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::ReplaceDraft(definition("y", "p", "production")),
        )
        .await,
        "running",
    );
    // Only drafts can be deleted.
    assert_conflict(
        one(store, &a, WriteOp::DeleteExperiment { id: e.id.clone() }).await,
        "draft",
    );
    change(store, &a, &e.id, ExperimentChange::Stop)
        .await
        .unwrap();
    assert_conflict(
        change(store, &a, &e.id, ExperimentChange::Stop).await,
        "stopped",
    );
    assert_conflict(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::SetArms(vec![arm("control", 1, 1.0), arm("b", 2, 2.0)]),
        )
        .await,
        "stopped",
    );
    assert_conflict(
        one(store, &a, WriteOp::DeleteExperiment { id: e.id.clone() }).await,
        "draft",
    );
    change(
        store,
        &a,
        &e.id,
        ExperimentChange::Conclude(conclusion(None)),
    )
    .await
    .unwrap();
    assert_conflict(
        change(
            store,
            &a,
            &e.id,
            ExperimentChange::Conclude(conclusion(None)),
        )
        .await,
        "concluded",
    );
    assert_conflict(
        change(store, &a, &e.id, ExperimentChange::Start).await,
        "concluded",
    );

    // A draft is deleted with its history; the audit keeps the record.
    let d = create(store, &a, definition("doomed", "p", "production")).await;
    let outcome = one(store, &a, WriteOp::DeleteExperiment { id: d.id.clone() })
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Deleted);
    assert_eq!(store.get_experiment(&a.project, &d.id).await.unwrap(), None);
    assert_not_found(
        store
            .experiment_history(&a.project, &d.id, &PageRequest::default())
            .await,
        &d.id,
    );
    assert_eq!(
        audit_actions(store, &a, &d.id).await,
        ["experiment.created", "experiment.deleted"]
    );
}

pub async fn one_running_experiment_per_prompt_and_label(store: &dyn Store) {
    let a = project(store, "exp1").await;
    prompt(store, &a, "p", 2).await;
    prompt(store, &a, "q", 2).await;
    let first = create(store, &a, definition("first", "p", "production")).await;
    let second = create(store, &a, definition("second", "p", "production")).await;
    let staging = create(store, &a, definition("on-staging", "p", "staging")).await;
    let other_prompt = create(store, &a, definition("other-prompt", "q", "production")).await;

    change(store, &a, &first.id, ExperimentChange::Start)
        .await
        .unwrap();
    let refused = change(store, &a, &second.id, ExperimentChange::Start).await;
    assert_conflict(refused, "first");
    assert_eq!(
        get(store, &a, &second.id).await,
        second,
        "the refusal wrote nothing"
    );
    // Another label of the same prompt, or the same label of another prompt, is free.
    change(store, &a, &staging.id, ExperimentChange::Start)
        .await
        .unwrap();
    change(store, &a, &other_prompt.id, ExperimentChange::Start)
        .await
        .unwrap();

    let running: BTreeSet<String> = store
        .running_experiments(Some(&a.project))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        running,
        BTreeSet::from(["first".into(), "on-staging".into(), "other-prompt".into()])
    );
    assert!(
        store
            .running_experiments(Some(&a.project))
            .await
            .unwrap()
            .iter()
            .all(|e| e.status == ExperimentStatus::Running)
    );

    // Once the first has ended, the second may start (a concluded one does not count either).
    change(store, &a, &first.id, ExperimentChange::Stop)
        .await
        .unwrap();
    change(store, &a, &second.id, ExperimentChange::Start)
        .await
        .unwrap();
    change(
        store,
        &a,
        &second.id,
        ExperimentChange::Conclude(conclusion(Some("treatment"))),
    )
    .await
    .unwrap();
    let third = create(store, &a, definition("third", "p", "production")).await;
    change(store, &a, &third.id, ExperimentChange::Start)
        .await
        .unwrap();
    let running_now: BTreeSet<String> = store
        .running_experiments(Some(&a.project))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        running_now,
        BTreeSet::from(["third".into(), "on-staging".into(), "other-prompt".into()])
    );
}

pub async fn experiment_lifecycle_phases_and_audit(store: &dyn Store) {
    let a = project(store, "expl").await;
    prompt(store, &a, "p", 3).await;
    let e = create(store, &a, definition("phases", "p", "production")).await;

    // Arms of a draft change without a phase.
    let draft_arms = vec![arm("control", 1, 2.0), arm("treatment", 3, 1.0)];
    let d = change(
        store,
        &a,
        &e.id,
        ExperimentChange::SetArms(draft_arms.clone()),
    )
    .await
    .unwrap();
    assert_eq!((d.revision, d.phase, d.phase_started_at), (2, 0, None));
    assert_eq!(d.arms, draft_arms);

    // A replaced draft keeps its id, creator and creation time.
    let mut redefined = definition("phases", "p", "production");
    redefined.description = "redefined".to_owned();
    redefined.min_sample_per_arm = 500;
    let r = change(
        store,
        &a,
        &e.id,
        ExperimentChange::ReplaceDraft(redefined.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.revision, 3);
    assert_eq!(r.description, "redefined");
    assert_eq!(r.min_sample_per_arm, 500);
    assert_eq!(r.arms, redefined.arms);
    assert_eq!((r.id.as_str(), r.created_at), (e.id.as_str(), e.created_at));
    assert_eq!(r.status, ExperimentStatus::Draft);

    let s = change(store, &a, &e.id, ExperimentChange::Start)
        .await
        .unwrap();
    assert_eq!(s.status, ExperimentStatus::Running);
    assert_eq!((s.revision, s.phase), (4, 1));
    let started_at = s.started_at.unwrap();
    assert_eq!(s.phase_started_at, Some(started_at));
    assert!(started_at >= e.created_at);
    assert_eq!(s.ended_at, None);

    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut stopped_arm = arm("treatment", 2, 1.0);
    stopped_arm.stopped = true;
    stopped_arm.stopped_reason = Some("latency guardrail breached".to_owned());
    let new_arms = vec![arm("control", 1, 1.0), stopped_arm];
    let p2 = change(
        store,
        &a,
        &e.id,
        ExperimentChange::SetArms(new_arms.clone()),
    )
    .await
    .unwrap();
    assert_eq!((p2.revision, p2.phase), (5, 2));
    assert_eq!(p2.arms, new_arms, "stopped arms and their reason are kept");
    assert_eq!(p2.started_at, Some(started_at), "the start does not move");
    assert!(
        p2.phase_started_at.unwrap() > started_at,
        "a new phase starts now"
    );
    assert_eq!(p2.status, ExperimentStatus::Running);

    let stopped = change(store, &a, &e.id, ExperimentChange::Stop)
        .await
        .unwrap();
    assert_eq!(stopped.status, ExperimentStatus::Stopped);
    assert_eq!((stopped.revision, stopped.phase), (6, 2));
    let ended_at = stopped.ended_at.unwrap();
    assert!(ended_at >= p2.phase_started_at.unwrap());

    std::thread::sleep(std::time::Duration::from_millis(5));
    let c = conclusion(Some("control"));
    let concluded = change(store, &a, &e.id, ExperimentChange::Conclude(c.clone()))
        .await
        .unwrap();
    assert_eq!(concluded.status, ExperimentStatus::Concluded);
    assert_eq!(concluded.conclusion, Some(c));
    assert_eq!(concluded.revision, 7);
    assert_eq!(
        concluded.ended_at,
        Some(ended_at),
        "concluding a stopped one keeps its end"
    );
    assert_eq!(get(store, &a, &e.id).await, concluded);
    assert!(store.running_experiments(None).await.unwrap().is_empty());

    // Concluding a running experiment ends it then.
    let direct = create(store, &a, definition("direct", "p", "production")).await;
    change(store, &a, &direct.id, ExperimentChange::Start)
        .await
        .unwrap();
    let done = change(
        store,
        &a,
        &direct.id,
        ExperimentChange::Conclude(conclusion(None)),
    )
    .await
    .unwrap();
    assert!(done.ended_at.is_some());
    assert_eq!(done.conclusion, Some(conclusion(None)));

    assert_eq!(
        audit_actions(store, &a, &e.id).await,
        [
            "experiment.created",
            "experiment.arms_changed",
            "experiment.updated",
            "experiment.started",
            "experiment.arms_changed",
            "experiment.stopped",
            "experiment.concluded",
        ]
    );
    // The audit record carries the experiment before and after (the wire JSON).
    let page = store
        .list_audit(
            &a.project,
            &AuditFilter {
                object_id: Some(e.id.clone()),
                action: Some("experiment.stopped".to_owned()),
                ..AuditFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let record = &page.items[0];
    assert_eq!(record.object_type, "experiment");
    assert_eq!(record.actor, a.key_id);
    assert_eq!(record.before.as_ref().unwrap()["status"], json!("running"));
    assert_eq!(record.after.as_ref().unwrap()["status"], json!("stopped"));
}

pub async fn experiment_history_is_oldest_first_and_paginated(store: &dyn Store) {
    let a = project(store, "exph").await;
    prompt(store, &a, "p", 2).await;
    let e = create(store, &a, definition("h", "p", "production")).await;
    change(store, &a, &e.id, ExperimentChange::Start)
        .await
        .unwrap();
    for weight in [2.0, 3.0, 4.0] {
        let arms = vec![arm("control", 1, 1.0), arm("treatment", 2, weight)];
        let op = WriteOp::UpdateExperiment {
            id: e.id.clone(),
            expected_revision: None,
            change: ExperimentChange::SetArms(arms),
            note: HistoryNote {
                kind: "arms_changed".to_owned(),
                message: format!("treatment weight to {weight}"),
                details: json!({ "weight": weight, "nested": { "list": [1, 2] } }),
            },
        };
        one(store, &a, op).await.unwrap();
    }
    // The decision worker acts as the system.
    let system = Actor::system(a.project.clone());
    write(
        store,
        &system,
        update_op(
            &e.id,
            None,
            ExperimentChange::Conclude(conclusion(Some("treatment"))),
        ),
    )
    .await
    .unwrap();

    let all = store
        .experiment_history(
            &a.project,
            &e.id,
            &PageRequest {
                cursor: None,
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.next_cursor, None);
    let kinds: Vec<&str> = all.items.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "started",
            "arms_changed",
            "arms_changed",
            "arms_changed",
            "concluded"
        ]
    );
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at)
    );
    assert_eq!(all.items[3].message, "treatment weight to 3");
    assert_eq!(
        all.items[3].details,
        json!({ "weight": 3.0, "nested": { "list": [1, 2] } })
    );
    assert_eq!(all.items[4].actor, a.key_id);
    assert_eq!(all.items[5].actor, "system");
    assert!(all.items.iter().all(|h| h.experiment_id == e.id));

    // Pages of two: the same entries, no gaps, no duplicates.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .experiment_history(&a.project, &e.id, &PageRequest { cursor, limit: 2 })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        paged.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, all.items);

    let bad = PageRequest {
        cursor: Some("not-a-cursor".to_owned()),
        limit: 2,
    };
    assert!(matches!(
        store.experiment_history(&a.project, &e.id, &bad).await,
        Err(StoreError::InvalidCursor { .. })
    ));
    assert_not_found(
        store
            .experiment_history(&a.project, "missing", &PageRequest::default())
            .await,
        "missing",
    );
}

pub async fn experiment_list_paginates_without_gaps(store: &dyn Store) {
    let a = project(store, "expp").await;
    prompt(store, &a, "p", 2).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create(store, &a, definition(&format!("e{i}"), "p", "production")).await);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_experiments(
                &a.project,
                &ExperimentFilter::default(),
                &PageRequest { cursor, limit: 3 },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, created, "every experiment once, newest first");

    // A cursor of another list is refused.
    let e = &created[0];
    change(store, &a, &e.id, ExperimentChange::Start)
        .await
        .unwrap();
    let history_cursor = store
        .experiment_history(
            &a.project,
            &e.id,
            &PageRequest {
                cursor: None,
                limit: 1,
            },
        )
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    for cursor in [history_cursor, "garbage!".to_owned()] {
        let result = store
            .list_experiments(
                &a.project,
                &ExperimentFilter::default(),
                &PageRequest {
                    cursor: Some(cursor),
                    limit: 3,
                },
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor { .. })),
            "{result:?}"
        );
    }
}

pub async fn deleting_a_prompt_deletes_its_experiments(store: &dyn Store) {
    let a = project(store, "expd").await;
    prompt(store, &a, "gone", 2).await;
    prompt(store, &a, "kept", 2).await;
    let running = create(store, &a, definition("running", "gone", "production")).await;
    change(store, &a, &running.id, ExperimentChange::Start)
        .await
        .unwrap();
    let draft = create(store, &a, definition("draft", "gone", "staging")).await;
    let kept = create(store, &a, definition("kept", "kept", "production")).await;
    change(store, &a, &kept.id, ExperimentChange::Start)
        .await
        .unwrap();

    one(
        store,
        &a,
        WriteOp::DeletePrompt {
            name: "gone".to_owned(),
        },
    )
    .await
    .unwrap();
    for id in [&running.id, &draft.id] {
        assert_eq!(store.get_experiment(&a.project, id).await.unwrap(), None);
        assert_not_found(
            store
                .experiment_history(&a.project, id, &PageRequest::default())
                .await,
            id,
        );
        let actions = audit_actions(store, &a, id).await;
        assert_eq!(
            actions.first().map(String::as_str),
            Some("experiment.created")
        );
        assert_eq!(
            actions.last().map(String::as_str),
            Some("experiment.deleted")
        );
    }
    assert_eq!(
        list_names(store, &a, ExperimentFilter::default()).await,
        ["kept"]
    );
    let still_running: Vec<String> = store
        .running_experiments(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(still_running, std::slice::from_ref(&kept.id));
    assert_eq!(
        get(store, &a, &kept.id).await.status,
        ExperimentStatus::Running
    );

    // A prompt created again under the same name starts without experiments.
    prompt(store, &a, "gone", 2).await;
    let filter = ExperimentFilter {
        prompt: Some("gone".to_owned()),
        ..ExperimentFilter::default()
    };
    assert!(list_names(store, &a, filter).await.is_empty());
    let again = create(store, &a, definition("again", "gone", "production")).await;
    change(store, &a, &again.id, ExperimentChange::Start)
        .await
        .unwrap();
}

pub async fn experiments_are_isolated_between_projects(store: &dyn Store) {
    let a = project(store, "expia").await;
    let b = project(store, "expib").await;
    prompt(store, &a, "p", 2).await;
    prompt(store, &b, "p", 2).await;
    let ea = create(store, &a, definition("in-a", "p", "production")).await;
    change(store, &a, &ea.id, ExperimentChange::Start)
        .await
        .unwrap();

    assert_eq!(
        store.get_experiment(&b.project, &ea.id).await.unwrap(),
        None
    );
    assert!(
        list_names(store, &b, ExperimentFilter::default())
            .await
            .is_empty()
    );
    assert!(
        store
            .running_experiments(Some(&b.project))
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        store
            .experiment_history(&b.project, &ea.id, &PageRequest::default())
            .await,
        &ea.id,
    );
    assert_not_found(
        change(store, &b, &ea.id, ExperimentChange::Stop).await,
        &ea.id,
    );
    assert_not_found(
        one(store, &b, WriteOp::DeleteExperiment { id: ea.id.clone() }).await,
        &ea.id,
    );
    assert_eq!(
        get(store, &a, &ea.id).await.status,
        ExperimentStatus::Running
    );

    // The same prompt and label in another project is another experiment slot.
    let eb = create(store, &b, definition("in-b", "p", "production")).await;
    change(store, &b, &eb.id, ExperimentChange::Start)
        .await
        .unwrap();
    let all: BTreeMap<String, ProjectId> = store
        .running_experiments(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.project))
        .collect();
    assert_eq!(
        all,
        BTreeMap::from([
            ("in-a".to_owned(), a.project.clone()),
            ("in-b".to_owned(), b.project.clone())
        ])
    );
    assert_eq!(
        list_names(store, &b, ExperimentFilter::default()).await,
        ["in-b"]
    );
}

pub async fn conclusion_and_label_move_are_atomic(store: &dyn Store) {
    let a = project(store, "expc").await;
    prompt(store, &a, "p", 2).await;
    let e = create(store, &a, definition("promote", "p", "production")).await;
    let running = change(store, &a, &e.id, ExperimentChange::Start)
        .await
        .unwrap();
    let history_before = history_kinds(store, &a, &e.id).await;

    let ops = |expected_from: Option<u32>| {
        vec![
            update_op(
                &e.id,
                Some(running.revision),
                ExperimentChange::Conclude(conclusion(Some("treatment"))),
            ),
            WriteOp::MoveLabel {
                name: "p".to_owned(),
                label: "production".to_owned(),
                to: Some(2),
                expected_from: Some(expected_from),
                reason: Some("experiment promote concluded: treatment wins".to_owned()),
            },
        ]
    };
    // The label moved meanwhile (the move expects version 2 to be where it points): nothing.
    let refused = store.apply(&a, ops(Some(2))).await;
    assert_conflict(refused, "production");
    assert_eq!(
        get(store, &a, &e.id).await,
        running,
        "the experiment is not concluded"
    );
    assert_eq!(history_kinds(store, &a, &e.id).await, history_before);
    assert!(
        !audit_actions(store, &a, &e.id)
            .await
            .contains(&"experiment.concluded".to_owned())
    );
    let p = store.get_prompt(&a.project, "p").await.unwrap().unwrap();
    assert_eq!(p.labels.get("production"), Some(&1));

    let outcomes = store.apply(&a, ops(Some(1))).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    match &outcomes[0] {
        WriteOutcome::Experiment(c) => {
            assert_eq!(c.status, ExperimentStatus::Concluded);
            assert_eq!(c.conclusion, Some(conclusion(Some("treatment"))));
        }
        other => panic!("the conclusion answered {other:?}"),
    }
    match &outcomes[1] {
        WriteOutcome::LabelMoved(Some(m)) => {
            assert_eq!((m.from_version, m.to_version), (Some(1), Some(2)));
            assert_eq!(
                m.reason.as_deref(),
                Some("experiment promote concluded: treatment wins")
            );
        }
        other => panic!("the label move answered {other:?}"),
    }
    let p = store.get_prompt(&a.project, "p").await.unwrap().unwrap();
    assert_eq!(p.labels.get("production"), Some(&2));
    assert_eq!(
        get(store, &a, &e.id).await.status,
        ExperimentStatus::Concluded
    );
}

pub async fn notes_append_history_without_changing_the_experiment(store: &dyn Store) {
    let a = project(store, "expn").await;
    prompt(store, &a, "p", 2).await;
    let e = create(store, &a, definition("noted", "p", "production")).await;
    let running = change(store, &a, &e.id, ExperimentChange::Start)
        .await
        .unwrap();
    let system = Actor::system(a.project.clone());
    let srm = HistoryNote {
        kind: "srm_mismatch".to_owned(),
        message: "sample ratio mismatch: p = 0.0001".to_owned(),
        details: json!({ "observed": [120, 80], "p_value": 0.0001 }),
    };
    let op = WriteOp::NoteExperiment {
        id: e.id.clone(),
        note: srm.clone(),
    };
    let outcome = write(store, &system, op).await.unwrap();
    assert_eq!(outcome, running, "the experiment as it is");
    assert_eq!(get(store, &a, &e.id).await, running, "no new revision");
    let history = store
        .experiment_history(&a.project, &e.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    let last = history.last().unwrap();
    assert_eq!(
        (
            last.kind.as_str(),
            last.message.as_str(),
            &last.details,
            last.actor.as_str()
        ),
        ("srm_mismatch", srm.message.as_str(), &srm.details, "system")
    );
    assert_eq!(
        audit_actions(store, &a, &e.id).await,
        ["experiment.created", "experiment.started"],
        "a note is not a change"
    );
    let unknown = WriteOp::NoteExperiment {
        id: "nope".to_owned(),
        note: srm,
    };
    assert_not_found(one(store, &a, unknown).await, "nope");
}

// ---- analytics tests -----------------------------------------------------------------------

/// 2024-03-09T22:00:00Z.
fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_710_021_600).unwrap()
}

fn exposure(project: &str, experiment: &str, phase: u32, unit: &str, arm: &str) -> Exposure {
    Exposure {
        project: ProjectId(project.to_owned()),
        experiment_id: experiment.to_owned(),
        phase,
        unit_id: unit.to_owned(),
        arm: arm.to_owned(),
        at: t0(),
    }
}

async fn counts(
    store: &dyn AnalyticsStore,
    project: &str,
    experiment: &str,
    phase: u32,
) -> BTreeMap<String, u64> {
    store
        .exposure_counts(&ProjectId(project.to_owned()), experiment, phase)
        .await
        .unwrap()
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

pub async fn exposures_are_deduplicated_per_phase_and_counted(store: &dyn AnalyticsStore) {
    assert_eq!(store.record_exposures(vec![]).await.unwrap(), 0);
    assert!(counts(store, "p1", "x", 1).await.is_empty());

    let first = vec![
        exposure("p1", "x", 1, "u1", "control"),
        exposure("p1", "x", 1, "u2", "treatment"),
        exposure("p1", "x", 1, "u3", "control"),
        // The same unit again in the batch: ignored.
        exposure("p1", "x", 1, "u1", "control"),
    ];
    assert_eq!(store.record_exposures(first).await.unwrap(), 3);
    assert_eq!(
        counts(store, "p1", "x", 1).await,
        expected(&[("control", 2), ("treatment", 1)])
    );

    let second = vec![
        // Already stored (even under another arm name): ignored.
        exposure("p1", "x", 1, "u2", "treatment"),
        exposure("p1", "x", 1, "u3", "treatment"),
        // A new phase counts units anew.
        exposure("p1", "x", 2, "u1", "treatment"),
        exposure("p1", "x", 2, "u2", "treatment"),
        // Another experiment, another project: their own counts.
        exposure("p1", "y", 1, "u1", "control"),
        exposure("p2", "x", 1, "u1", "control"),
        exposure("p1", "x", 1, "u4", "treatment"),
    ];
    assert_eq!(store.record_exposures(second).await.unwrap(), 5);
    assert_eq!(
        counts(store, "p1", "x", 1).await,
        expected(&[("control", 2), ("treatment", 2)])
    );
    assert_eq!(
        counts(store, "p1", "x", 2).await,
        expected(&[("treatment", 2)])
    );
    assert_eq!(
        counts(store, "p1", "y", 1).await,
        expected(&[("control", 1)])
    );
    assert_eq!(
        counts(store, "p2", "x", 1).await,
        expected(&[("control", 1)])
    );
    assert!(counts(store, "p2", "x", 2).await.is_empty());
    assert!(counts(store, "p3", "x", 1).await.is_empty());
}

pub async fn large_exposure_batches_are_stored(store: &dyn AnalyticsStore) {
    let arms = ["control", "a", "b"];
    let batch: Vec<Exposure> = (0..5000)
        .map(|i| exposure("big", "x", 1, &format!("unit-{i}"), arms[i % 3]))
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(store.record_exposures(batch.clone()).await.unwrap(), 5000);
    // Generous: a row-at-a-time implementation in a debug build takes several times this.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "5000 exposures took {:?}",
        started.elapsed()
    );
    assert_eq!(
        counts(store, "big", "x", 1).await,
        expected(&[("control", 1667), ("a", 1667), ("b", 1666)])
    );
    // The same batch again adds nothing.
    assert_eq!(store.record_exposures(batch).await.unwrap(), 0);
    assert_eq!(
        counts(store, "big", "x", 1).await.values().sum::<u64>(),
        5000
    );
}

fn experiment_event(project: &ProjectId, arm: Option<&str>, at: OffsetDateTime) -> EventRecord {
    EventRecord {
        project: project.clone(),
        client_id: None,
        prompt_id: "prompt-id-a".to_owned(),
        prompt: "a".to_owned(),
        version: if arm == Some("treatment") { 2 } else { 1 },
        label: Some("production".to_owned()),
        experiment: arm.map(|_| "exp-1".to_owned()),
        arm: arm.map(str::to_owned),
        unit_id: arm.map(|a| format!("unit-of-{a}")),
        model: "gpt-4o".to_owned(),
        provider: None,
        input_tokens: 10,
        output_tokens: 5,
        cached_input_tokens: 0,
        latency_ms: Some(100.0),
        ttft_ms: None,
        cost: Some(0.001),
        cost_source: CostSource::Reported,
        success: arm != Some("treatment"),
        error_type: None,
        scores: BTreeMap::new(),
        feedback: None,
        metadata: json!({}),
        at,
    }
}

pub async fn arm_filter_narrows_cells_window_and_events(store: &dyn AnalyticsStore) {
    let p = ProjectId("arms".to_owned());
    let mut events = Vec::new();
    // Over three hours: 3 control, 2 treatment and 4 events outside the experiment per hour.
    for hour in 0..3 {
        let base = t0() + Duration::hours(hour);
        for i in 0..3 {
            events.push(experiment_event(
                &p,
                Some("control"),
                base + Duration::minutes(i),
            ));
        }
        for i in 0..2 {
            events.push(experiment_event(
                &p,
                Some("treatment"),
                base + Duration::minutes(10 + i),
            ));
        }
        for i in 0..4 {
            events.push(experiment_event(&p, None, base + Duration::minutes(20 + i)));
        }
    }
    store.ingest(events).await.unwrap();
    let (from, to) = (t0(), t0() + Duration::hours(3));
    let filter = |experiment: Option<&str>, arm: Option<&str>| AnalyticsFilter {
        experiment: experiment.map(str::to_owned),
        arm: arm.map(str::to_owned),
        ..AnalyticsFilter::default()
    };
    let cases = [
        (filter(Some("exp-1"), Some("control")), 9, 9),
        (filter(Some("exp-1"), Some("treatment")), 6, 0),
        (filter(Some("exp-1"), None), 15, 9),
        (filter(None, Some("treatment")), 6, 0),
        (filter(None, Some("nope")), 0, 0),
        (filter(None, None), 27, 21),
    ];
    for (f, count, successes) in cases {
        let cells = store
            .cells(&p, Granularity::Hour, from, to, &f)
            .await
            .unwrap();
        assert!(
            cells
                .iter()
                .all(|(k, _)| f.arm.as_ref().is_none_or(|a| &k.arm == a)),
            "{f:?}"
        );
        let cell_count: u64 = cells.iter().map(|(_, r)| r.count).sum();
        let cell_successes: u64 = cells.iter().map(|(_, r)| r.successes).sum();
        assert_eq!(
            (cell_count, cell_successes),
            (count, successes),
            "cells {f:?}"
        );

        let w = store.window(&p, &f, from, to).await.unwrap();
        assert_eq!((w.count, w.successes), (count, successes), "window {f:?}");

        // A partial first hour, as experiment results read it: from minute 5 of hour 0.
        let late = store
            .window(&p, &f, from + Duration::minutes(5), to)
            .await
            .unwrap();
        // Only the control events of hour 0 fall in its first five minutes.
        let skipped = if f.arm.as_deref().is_none_or(|a| a == "control") {
            3
        } else {
            0
        };
        assert_eq!(
            late.count,
            count.saturating_sub(skipped),
            "late window {f:?}"
        );

        let listed = store
            .list_events(
                &p,
                &f,
                Some(from),
                Some(to),
                &PageRequest {
                    cursor: None,
                    limit: 200,
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.items.len() as u64, count, "events {f:?}");
        assert!(
            listed
                .items
                .iter()
                .all(|e| f.arm.is_none() || e.event.arm == f.arm),
            "{f:?}"
        );
    }
}
