//! A/B tests end to end: the lifecycle and every refusal, sticky assignment inside
//! resolve/render, exposures, attribution of events to arms, results, and the decision
//! worker (auto-conclusion with promotion, guardrail stops, maximum duration, SRM).

use std::collections::BTreeMap;

use promptstore_client::types::{
    ArmSpec, CreateExperiment, EndExperiment, EventIn, Experiment, ExperimentStatus, GuardrailSpec,
    MetricSpec, OnConclusion, Role, Selector, UpdateArms,
};
use promptstore_client::{AuditFilter, Client, ErrorCode, ExperimentFilter, Method, PageRequest};
use promptstore_core::experiments::model::Exposure;
use promptstore_core::model::ProjectId;
use time::{Duration, OffsetDateTime};

use crate::harness::*;

const PROMPT: &str = "support/triage";

/// A server with `support/triage` v1..v3 (v3 drops nothing: no variables anywhere) and
/// `production` → 1.
async fn server() -> TestServer {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(PROMPT, text("v1"), vec![]))
        .await
        .unwrap();
    for n in 2..=3 {
        s.admin
            .create_version(PROMPT, &new_version(text(&format!("v{n}")), vec![]))
            .await
            .unwrap();
    }
    s.admin
        .set_label(PROMPT, "production", &to(1))
        .await
        .unwrap();
    s
}

fn arms(specs: &[(&str, u32, f64)]) -> Vec<ArmSpec> {
    specs
        .iter()
        .map(|(name, version, weight)| ArmSpec {
            name: (*name).to_owned(),
            version: *version,
            weight: *weight,
        })
        .collect()
}

fn definition(name: &str, specs: &[(&str, u32, f64)]) -> CreateExperiment {
    CreateExperiment {
        name: name.to_owned(),
        description: String::new(),
        prompt: PROMPT.to_owned(),
        label: "production".to_owned(),
        arms: arms(specs),
        primary_metric: MetricSpec {
            metric: "success_rate".to_owned(),
            direction: None,
        },
        guardrails: Vec::new(),
        min_sample_per_arm: Some(100),
        max_duration_hours: None,
        on_conclusion: OnConclusion::Nothing,
        alpha: None,
        sequential_tuning: None,
        prior: None,
        mde: None,
    }
}

/// The field a 400 names.
fn field<T: std::fmt::Debug>(result: Result<T, promptstore_client::ClientError>) -> String {
    let (status, body) = api_error(result);
    assert_eq!(status, 400, "{body:?}");
    assert_eq!(body.code, ErrorCode::InvalidRequest, "{body:?}");
    body.details["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn started(s: &TestServer, def: &CreateExperiment) -> Experiment {
    let created = s.admin.create_experiment(def).await.unwrap();
    s.admin.start_experiment(&created.id, None).await.unwrap()
}

fn end(reason: &str) -> EndExperiment {
    EndExperiment {
        reason: reason.to_owned(),
        ..EndExperiment::default()
    }
}

#[tokio::test]
async fn lifecycle_and_every_refusal() {
    let s = server().await;
    let a = &s.admin;
    let good = definition("shorter answers", &[("control", 1, 1.0), ("short", 2, 1.0)]);

    // Definitions that cannot be: each names its field.
    let mut bad = good.clone();
    bad.arms = arms(&[("control", 1, 1.0), ("ghost", 9, 1.0)]);
    assert_eq!(field(a.create_experiment(&bad).await), "arms[1].version");
    bad.arms = arms(&[("control", 1, 0.0), ("short", 2, 1.0)]);
    assert_eq!(field(a.create_experiment(&bad).await), "arms[0].weight");
    bad.arms = arms(&[("control", 1, 1.0), ("short", 2, -2.0)]);
    assert_eq!(field(a.create_experiment(&bad).await), "arms[1].weight");
    bad.arms = arms(&[("control", 1, 1.0)]);
    assert_eq!(field(a.create_experiment(&bad).await), "arms");
    bad.arms = arms(&[("same", 1, 1.0), ("same", 2, 1.0)]);
    assert_eq!(field(a.create_experiment(&bad).await), "arms[1].name");
    let mut bad = good.clone();
    bad.label = "latest".into();
    assert_eq!(field(a.create_experiment(&bad).await), "label");
    bad.label = "canary".into();
    assert_eq!(field(a.create_experiment(&bad).await), "label");
    let mut bad = good.clone();
    bad.primary_metric.metric = "happiness".into();
    assert_eq!(
        field(a.create_experiment(&bad).await),
        "primary_metric.metric"
    );
    let mut bad = good.clone();
    bad.prompt = "nope".into();
    assert_eq!(code(a.create_experiment(&bad).await), ErrorCode::NotFound);
    // Malformed JSON and unknown fields are 400s too, never 500s.
    let raw = a
        .raw(
            Method::POST,
            "/api/v1/experiments",
            &[("content-type", "application/json")],
            Some(br#"{"name": "x", "surprise": 1}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 400, "{}", raw.text());

    // Roles: viewers read, runtime keys do neither.
    let (viewer, _) = s.key(Role::Viewer).await;
    let (runtime, _) = s.key(Role::Runtime).await;
    assert_eq!(
        code(viewer.create_experiment(&good).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(runtime.create_experiment(&good).await),
        ErrorCode::Forbidden
    );

    let draft = a.create_experiment(&good).await.unwrap();
    assert_eq!(draft.status, ExperimentStatus::Draft);
    assert_eq!((draft.alpha, draft.min_sample_per_arm), (0.05, 100));
    assert_eq!(viewer.get_experiment(&draft.id).await.unwrap(), draft);
    assert_eq!(
        code(runtime.get_experiment(&draft.id).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(viewer.start_experiment(&draft.id, None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(a.get_experiment("no-such-id").await),
        ErrorCode::NotFound
    );

    // Drafts are edited with If-Match.
    let tagged = a.get_experiment_tagged(&draft.id).await.unwrap();
    assert_eq!(
        tagged.etag.as_deref(),
        Some(format!("\"{}\"", draft.revision).as_str())
    );
    let mut edited = good.clone();
    edited.arms = arms(&[("control", 1, 1.0), ("short", 2, 3.0)]);
    let updated = a
        .update_experiment(&draft.id, draft.revision, &edited)
        .await
        .unwrap();
    assert_eq!(updated.arms[1].weight, 3.0);
    assert_eq!(
        code(
            a.update_experiment(&draft.id, draft.revision, &edited)
                .await
        ),
        ErrorCode::PreconditionFailed
    );
    let no_if_match = a
        .raw(
            Method::PUT,
            &format!("/api/v1/experiments/{}", draft.id),
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&edited).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(no_if_match.status, 428, "{}", no_if_match.text());

    // Start; a second experiment on the same label cannot start.
    let running = a.start_experiment(&draft.id, None).await.unwrap();
    assert_eq!(running.status, ExperimentStatus::Running);
    assert!(running.started_at.is_some() && running.phase_started_at.is_some());
    let second = a
        .create_experiment(&definition("other", &[("control", 1, 1.0), ("b", 3, 1.0)]))
        .await
        .unwrap();
    let (status, body) = api_error(a.start_experiment(&second.id, None).await);
    assert_eq!((status, body.code), (409, ErrorCode::Conflict), "{body:?}");

    // A running experiment is not a draft any more.
    assert_eq!(
        code(
            a.update_experiment(&running.id, running.revision, &good)
                .await
        ),
        ErrorCode::InvalidTransition
    );
    assert_eq!(
        code(a.delete_experiment(&running.id).await),
        ErrorCode::InvalidTransition
    );
    assert_eq!(
        code(a.start_experiment(&running.id, None).await),
        ErrorCode::InvalidTransition
    );

    // Arms change only with a reason; it starts a new phase.
    let new_arms = arms(&[("control", 1, 1.0), ("short", 2, 1.0)]);
    let no_reason = UpdateArms {
        arms: new_arms.clone(),
        reason: " ".into(),
    };
    assert_eq!(
        field(a.set_experiment_arms(&running.id, None, &no_reason).await),
        "reason"
    );
    let one_arm = UpdateArms {
        arms: arms(&[("control", 1, 1.0)]),
        reason: "why not".into(),
    };
    assert_eq!(
        field(a.set_experiment_arms(&running.id, None, &one_arm).await),
        "arms"
    );
    assert_eq!(
        code(
            a.set_experiment_arms(
                &running.id,
                Some(running.revision + 7),
                &UpdateArms {
                    arms: new_arms.clone(),
                    reason: "even split".into()
                }
            )
            .await
        ),
        ErrorCode::PreconditionFailed
    );
    let rephased = a
        .set_experiment_arms(
            &running.id,
            Some(running.revision),
            &UpdateArms {
                arms: new_arms,
                reason: "even split".into(),
            },
        )
        .await
        .unwrap();
    assert!(rephased.phase_started_at >= running.phase_started_at);
    assert!(rephased.revision > running.revision);

    // Stop, then conclude; nothing changes after the conclusion.
    let stopped = a
        .stop_experiment(&running.id, &end("enough"))
        .await
        .unwrap();
    assert_eq!(stopped.status, ExperimentStatus::Stopped);
    assert_eq!(
        code(a.start_experiment(&running.id, None).await),
        ErrorCode::InvalidTransition
    );
    let not_an_arm = EndExperiment {
        winner: Some("nobody".into()),
        ..end("x")
    };
    assert_eq!(
        field(a.conclude_experiment(&running.id, &not_an_arm).await),
        "winner"
    );
    let concluded = a
        .conclude_experiment(
            &running.id,
            &EndExperiment {
                winner: Some("short".into()),
                promote: false,
                reason: "short is fine".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(concluded.status, ExperimentStatus::Concluded);
    let conclusion = concluded.conclusion.clone().unwrap();
    assert_eq!(
        (conclusion.winner.as_deref(), conclusion.promoted),
        (Some("short"), false)
    );
    assert_eq!(conclusion.decided_by, "manual");
    for refused in [
        code(a.conclude_experiment(&running.id, &end("again")).await),
        code(a.stop_experiment(&running.id, &end("again")).await),
        code(
            a.set_experiment_arms(
                &running.id,
                None,
                &UpdateArms {
                    arms: arms(&[("control", 1, 1.0), ("short", 2, 1.0)]),
                    reason: "late".into(),
                },
            )
            .await,
        ),
    ] {
        assert_eq!(refused, ErrorCode::InvalidTransition);
    }
    // Not promoted: the label did not move.
    assert_eq!(a.get_label(PROMPT, "production").await.unwrap().version, 1);

    // Now the other one may run; drafts can be deleted.
    a.start_experiment(&second.id, None).await.unwrap();
    let third = a.create_experiment(&good).await.unwrap();
    a.delete_experiment(&third.id).await.unwrap();
    assert_eq!(code(a.get_experiment(&third.id).await), ErrorCode::NotFound);

    // Lists filter by prompt and status.
    let all = viewer
        .list_experiments(&ExperimentFilter::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let running_only = viewer
        .list_experiments(&ExperimentFilter {
            status: Some(ExperimentStatus::Running),
            ..ExperimentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(running_only.items.len(), 1);
    assert_eq!(running_only.items[0].id, second.id);
    let bad_status = a
        .raw(
            Method::GET,
            "/api/v1/experiments?status=sleeping",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(bad_status.status, 400);

    // The history tells the whole story, oldest first; the audit log has the changes.
    let history = viewer
        .experiment_history(&running.id, &PageRequest::default())
        .await
        .unwrap();
    let kinds: Vec<&str> = history.items.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "updated",
            "started",
            "arms_changed",
            "stopped",
            "concluded"
        ]
    );
    assert!(history.items[3].message.contains("even split"));
    let audit = a
        .audit(&AuditFilter {
            object_type: Some("experiment".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|r| r.action == "experiment.concluded" && r.object_id == running.id),
        "{:?}",
        audit.items.iter().map(|r| &r.action).collect::<Vec<_>>()
    );
}

/// The arm a unit got, and the version served.
async fn resolve_arm(client: &Client, unit: Option<&str>) -> (u32, Option<(String, String)>) {
    let r = client
        .resolve(PROMPT, &Selector::Label("production".into()), unit)
        .await
        .unwrap();
    (r.version, r.assignment.map(|a| (a.experiment, a.arm)))
}

async fn exposures(s: &TestServer, id: &str, phase: u32) -> BTreeMap<String, u64> {
    s.state.flush_exposures().await;
    let project = project_of(s).await;
    s.state
        .analytics()
        .exposure_counts(&project, id, phase)
        .await
        .unwrap()
}

async fn project_of(s: &TestServer) -> ProjectId {
    ProjectId(s.admin.project().await.unwrap().id)
}

#[tokio::test]
async fn assignment_is_sticky_follows_the_weights_and_records_exposures() {
    let s = server().await;
    let e = started(
        &s,
        &definition("split", &[("control", 1, 1.0), ("treatment", 3, 3.0)]),
    )
    .await;
    // A runtime key gets the assignment too.
    let (runtime, _) = s.key(Role::Runtime).await;
    let mut counts = BTreeMap::<String, u32>::new();
    for i in 0..2_000 {
        let unit = format!("user-{i}");
        let (version, assignment) = resolve_arm(&runtime, Some(&unit)).await;
        let (experiment, arm) = assignment.expect("a unit id gets an arm");
        assert_eq!(experiment, e.id);
        assert_eq!(version, if arm == "control" { 1 } else { 3 });
        *counts.entry(arm).or_default() += 1;
    }
    // 25 % / 75 %: 500 expected for the control, σ ≈ 19.
    let control = counts["control"];
    assert!((400..=600).contains(&control), "{counts:?}");
    // Sticky: the same units get the same arms again, by resolve and by render.
    for i in (0..2_000).step_by(97) {
        let unit = format!("user-{i}");
        let first = resolve_arm(&runtime, Some(&unit)).await.1.unwrap().1;
        assert_eq!(resolve_arm(&s.admin, Some(&unit)).await.1.unwrap().1, first);
        let rendered = runtime
            .render(&promptstore_client::types::RenderRequest {
                name: PROMPT.into(),
                label: Some("production".into()),
                version: None,
                variables: Default::default(),
                unit_id: Some(unit.clone()),
            })
            .await
            .unwrap();
        assert_eq!(rendered.assignment.unwrap().arm, first);
        let expected_text = if first == "control" { "v1" } else { "v3" };
        assert_eq!(rendered.text.as_deref(), Some(expected_text));
    }
    // Without a unit id: the control's version and no assignment, and no exposure.
    assert_eq!(resolve_arm(&runtime, None).await, (1, None));
    let bulk = runtime.bulk_resolve("production").await.unwrap();
    assert_eq!(bulk.prompts[0].version, 1);
    assert!(bulk.prompts[0].assignment.is_none());
    // A version selector is never assigned.
    let pinned = runtime
        .resolve(PROMPT, &Selector::Version(2), Some("user-1"))
        .await
        .unwrap();
    assert_eq!((pinned.version, pinned.assignment), (2, None));
    // One exposure per unit, whatever the number of calls.
    let exposed = exposures(&s, &e.id, 1).await;
    assert_eq!(exposed.values().sum::<u64>(), 2_000, "{exposed:?}");
    assert_eq!(exposed["control"], u64::from(control));
    let metrics = s.admin.metrics_text().await.unwrap();
    assert!(
        metrics.contains("promptstore_experiment_exposures_dropped_total 0"),
        "{metrics}"
    );

    // Stopped: the label serves its own version again, without assignment.
    s.admin.stop_experiment(&e.id, &end("done")).await.unwrap();
    assert_eq!(resolve_arm(&runtime, Some("user-1")).await, (1, None));
}

fn event(arm: &str, experiment: &str, success: bool) -> EventIn {
    EventIn {
        prompt: PROMPT.to_owned(),
        label: Some("production".into()),
        experiment: Some(experiment.to_owned()),
        arm: Some(arm.to_owned()),
        success: Some(success),
        latency_ms: Some(100.0),
        ..EventIn::default()
    }
}

#[tokio::test]
async fn events_are_attributed_to_arms_and_results_have_no_nan() {
    let s = server().await;
    let e = started(
        &s,
        &definition("attrib", &[("control", 1, 1.0), ("treatment", 2, 1.0)]),
    )
    .await;
    let (runtime, _) = s.key(Role::Runtime).await;
    // Each unit's events carry what resolve answered.
    let mut batch = Vec::new();
    let mut per_arm = BTreeMap::<String, (u64, u64)>::new();
    for i in 0..300 {
        let unit = format!("u{i}");
        let r = runtime
            .resolve(PROMPT, &Selector::Label("production".into()), Some(&unit))
            .await
            .unwrap();
        let a = r.assignment.unwrap();
        let success = if a.arm == "control" {
            i % 2 == 0
        } else {
            i % 4 != 0
        };
        let entry = per_arm.entry(a.arm.clone()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(success);
        batch.push(EventIn {
            unit_id: Some(unit),
            // No version: the arm's version is filled in, not the label's.
            ..event(&a.arm, &a.experiment, success)
        });
    }
    // An event before the phase does not count.
    batch.push(EventIn {
        timestamp: Some(OffsetDateTime::now_utc() - Duration::hours(3)),
        ..event("control", &e.id, true)
    });
    let report = runtime.ingest_events(&batch).await.unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);

    // Attribution is checked against the running experiment.
    let wrong = runtime
        .ingest_events(&[
            event("nope", &e.id, true),
            EventIn {
                arm: None,
                ..event("control", &e.id, true)
            },
        ])
        .await
        .unwrap();
    assert_eq!(wrong.rejected, 2);
    assert!(
        wrong
            .errors
            .iter()
            .all(|err| err.field.as_deref() == Some("arm")),
        "{:?}",
        wrong.errors
    );
    s.admin
        .create_prompt(&new_prompt("other", text("o"), vec![]))
        .await
        .unwrap();
    let other_prompt = runtime
        .ingest_events(&[EventIn {
            prompt: "other".into(),
            label: None,
            ..event("control", &e.id, true)
        }])
        .await
        .unwrap();
    assert_eq!(other_prompt.rejected, 1);
    assert_eq!(other_prompt.errors[0].field.as_deref(), Some("experiment"));

    // Results: parse the raw JSON (no NaN can hide in it) and check the per-arm counts.
    let raw = s
        .admin
        .raw(
            Method::GET,
            &format!("/api/v1/experiments/{}/results", e.id),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert!(!raw.text().contains("NaN"), "{}", raw.text());
    let json: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(json["experiment"], e.id.as_str());
    let results = s
        .admin
        .experiment_results(&e.id, false, None)
        .await
        .unwrap();
    assert_eq!(results.primary.metric, "success_rate");
    for arm in &results.primary.arms {
        let (n, successes) = per_arm[&arm.arm];
        assert_eq!((arm.n, arm.sum as u64), (n, successes), "{arm:?}");
    }
    assert_eq!(results.primary.comparisons.len(), 1);
    assert_eq!(results.primary.comparisons[0].arm, "treatment");
    // Exposures of the phase are the units that resolved.
    s.state.flush_exposures().await;
    let results = s
        .admin
        .experiment_results(&e.id, false, Some(0.1))
        .await
        .unwrap();
    assert_eq!(results.srm.observed.iter().sum::<u64>(), 300);
    assert!(!results.srm.mismatch, "{:?}", results.srm);
    assert_eq!(results.sample_size.mde, 0.1);
    assert_eq!(
        code(s.admin.experiment_results(&e.id, false, Some(-1.0)).await),
        ErrorCode::InvalidRequest
    );
    // Events by the arm's version: the treatment's events count for version 2.
    let by_version = s
        .admin
        .summary(
            &crate::analytics_support::last_hours(1, Some(PROMPT)),
            &["version"],
        )
        .await
        .unwrap();
    let treatment_events = by_version
        .groups
        .iter()
        .find(|g| g.key.get("version").map(String::as_str) == Some("2"))
        .map(|g| g.metrics.count);
    assert_eq!(treatment_events, Some(per_arm["treatment"].0));
}

#[tokio::test]
async fn skewed_exposures_are_flagged_as_sample_ratio_mismatch_once() {
    let s = server().await;
    let e = started(
        &s,
        &definition("skew", &[("control", 1, 1.0), ("b", 2, 1.0)]),
    )
    .await;
    let project = project_of(&s).await;
    let now = OffsetDateTime::now_utc();
    let exposures: Vec<Exposure> = (0..1_500)
        .map(|i| Exposure {
            project: project.clone(),
            experiment_id: e.id.clone(),
            phase: 1,
            unit_id: format!("unit-{i}"),
            arm: if i < 1_000 { "control" } else { "b" }.to_owned(),
            at: now,
        })
        .collect();
    s.state
        .analytics()
        .record_exposures(exposures)
        .await
        .unwrap();
    let results = s
        .admin
        .experiment_results(&e.id, false, None)
        .await
        .unwrap();
    assert_eq!(results.srm.observed, [1_000, 500]);
    assert!(results.srm.mismatch, "{:?}", results.srm);
    assert!(results.srm.p_value < 0.001);
    assert_eq!(results.verdict.code, "untrustworthy");
    // The worker records it once and decides nothing else.
    for _ in 0..2 {
        s.state.evaluate_experiments(now).await.unwrap();
    }
    let history = s
        .admin
        .experiment_history(&e.id, &PageRequest::default())
        .await
        .unwrap();
    let warnings = history
        .items
        .iter()
        .filter(|h| h.kind == "srm_warning")
        .count();
    assert_eq!(warnings, 1);
    assert_eq!(
        s.admin.get_experiment(&e.id).await.unwrap().status,
        ExperimentStatus::Running
    );
}

/// `n` events per arm, all now (after the start), with success rates by arm.
async fn ingest_rates(s: &TestServer, id: &str, rates: &[(&str, f64, f64)], n: usize) {
    let mut batch = Vec::new();
    for (arm, rate, latency) in rates {
        for i in 0..n {
            // Deterministic: the first `rate · n` events succeed.
            let success = (i as f64) < rate * n as f64;
            batch.push(EventIn {
                unit_id: Some(format!("{arm}-{i}")),
                latency_ms: Some(latency + (i % 10) as f64),
                ..event(arm, id, success)
            });
        }
    }
    let report = s.admin.ingest_events(&batch).await.unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

async fn history_kinds(s: &TestServer, id: &str) -> Vec<(String, String, String)> {
    s.admin
        .experiment_history(id, &PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|h| (h.kind, h.actor, h.message))
        .collect()
}

#[tokio::test]
async fn a_clear_winner_is_concluded_and_promoted_automatically() {
    let s = server().await;
    let mut def = definition("big win", &[("control", 1, 1.0), ("better", 2, 1.0)]);
    def.on_conclusion = OnConclusion::PromoteWinner;
    let e = started(&s, &def).await;
    // Too little data: nothing happens.
    let soon = OffsetDateTime::now_utc() + Duration::minutes(10);
    ingest_rates(
        &s,
        &e.id,
        &[("control", 0.5, 100.0), ("better", 0.9, 100.0)],
        20,
    )
    .await;
    let run = s.state.evaluate_experiments(soon).await.unwrap();
    assert_eq!((run.evaluated, run.decisions), (1, 0));
    // Enough data, taken into account across the hour boundary (cells + raw events).
    ingest_rates(
        &s,
        &e.id,
        &[("control", 0.5, 100.0), ("better", 0.9, 100.0)],
        400,
    )
    .await;
    let later = OffsetDateTime::now_utc() + Duration::hours(2);
    let run = s.state.evaluate_experiments(later).await.unwrap();
    assert_eq!((run.evaluated, run.decisions, run.failed), (1, 1, 0));

    let concluded = s.admin.get_experiment(&e.id).await.unwrap();
    assert_eq!(concluded.status, ExperimentStatus::Concluded);
    let conclusion = concluded.conclusion.unwrap();
    assert_eq!(conclusion.winner.as_deref(), Some("better"));
    assert!(conclusion.promoted);
    assert_eq!(conclusion.decided_by, "automatic");
    // The label moved to the winner, by the system, naming the experiment.
    assert_eq!(
        s.admin
            .get_label(PROMPT, "production")
            .await
            .unwrap()
            .version,
        2
    );
    let moves = s
        .admin
        .label_history(PROMPT, Some("production"), &PageRequest::default())
        .await
        .unwrap();
    let last = &moves.items[0];
    assert_eq!((last.from_version, last.to_version), (Some(1), Some(2)));
    assert_eq!(last.actor, "system");
    assert!(
        last.reason
            .as_deref()
            .unwrap_or_default()
            .contains("big win"),
        "{last:?}"
    );
    let audit = s
        .admin
        .audit(&AuditFilter {
            action: Some("label.moved".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(audit.items.iter().any(
        |r| r.actor == "system" && serde_json::to_string(&r.after).unwrap().contains("big win")
    ));
    let history = history_kinds(&s, &e.id).await;
    let (kind, actor, message) = history.last().unwrap();
    assert_eq!((kind.as_str(), actor.as_str()), ("concluded", "system"));
    assert!(message.contains("better"), "{message}");
    // The label serves the winner to everyone now, without assignment.
    assert_eq!(resolve_arm(&s.admin, Some("user-1")).await, (2, None));
    // Nothing more to decide.
    let run = s.state.evaluate_experiments(later).await.unwrap();
    assert_eq!(run.evaluated, 0);
}

#[tokio::test]
async fn a_winner_that_breaks_the_variable_contract_is_not_promoted() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            PROMPT,
            text("{{ q }}"),
            vec![var("q", promptstore_client::types::VarType::String)],
        ))
        .await
        .unwrap();
    // v2 needs a new required variable: breaking for callers of v1.
    s.admin
        .create_version(
            PROMPT,
            &new_version(
                text("{{ q }} {{ lang }}"),
                vec![
                    var("q", promptstore_client::types::VarType::String),
                    var("lang", promptstore_client::types::VarType::String),
                ],
            ),
        )
        .await
        .unwrap();
    s.admin
        .set_label(PROMPT, "production", &to(1))
        .await
        .unwrap();
    let mut def = definition("breaking", &[("control", 1, 1.0), ("better", 2, 1.0)]);
    def.on_conclusion = OnConclusion::PromoteWinner;
    let e = started(&s, &def).await;
    ingest_rates(
        &s,
        &e.id,
        &[("control", 0.5, 100.0), ("better", 0.9, 100.0)],
        400,
    )
    .await;
    let later = OffsetDateTime::now_utc() + Duration::hours(2);
    s.state.evaluate_experiments(later).await.unwrap();
    let concluded = s.admin.get_experiment(&e.id).await.unwrap();
    let conclusion = concluded.conclusion.unwrap();
    assert_eq!(conclusion.winner.as_deref(), Some("better"));
    assert!(!conclusion.promoted);
    assert_eq!(
        s.admin
            .get_label(PROMPT, "production")
            .await
            .unwrap()
            .version,
        1
    );
    let history = history_kinds(&s, &e.id).await;
    assert!(
        history.last().unwrap().2.contains("not moved"),
        "{history:?}"
    );

    // By hand, a protected label refuses a non-admin and a breaking version.
    s.admin
        .set_protected_labels(&promptstore_client::types::SetProtectedLabels {
            labels: vec!["production".into()],
        })
        .await
        .unwrap();
    let second = started(
        &s,
        &definition("by hand", &[("control", 1, 1.0), ("b", 2, 1.0)]),
    )
    .await;
    let (editor, _) = s.key(Role::Editor).await;
    let promote = EndExperiment {
        winner: Some("b".into()),
        promote: true,
        reason: "b it is".into(),
    };
    assert_eq!(
        code(editor.conclude_experiment(&second.id, &promote).await),
        ErrorCode::ProtectedLabel
    );
    assert_eq!(
        code(s.admin.conclude_experiment(&second.id, &promote).await),
        ErrorCode::BreakingChange
    );
    // Still running: a refused promotion concludes nothing.
    assert_eq!(
        s.admin.get_experiment(&second.id).await.unwrap().status,
        ExperimentStatus::Running
    );
}

#[tokio::test]
async fn promotion_by_hand_moves_the_label_in_the_same_step() {
    let s = server().await;
    let e = started(
        &s,
        &definition("manual", &[("control", 1, 1.0), ("b", 3, 1.0)]),
    )
    .await;
    let concluded = s
        .admin
        .conclude_experiment(
            &e.id,
            &EndExperiment {
                winner: Some("b".into()),
                promote: true,
                reason: "b reads better".into(),
            },
        )
        .await
        .unwrap();
    assert!(concluded.conclusion.unwrap().promoted);
    assert_eq!(
        s.admin
            .get_label(PROMPT, "production")
            .await
            .unwrap()
            .version,
        3
    );
    let moves = s
        .admin
        .label_history(PROMPT, Some("production"), &PageRequest::default())
        .await
        .unwrap();
    assert!(
        moves.items[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("experiment manual concluded: b reads better"),
        "{:?}",
        moves.items[0]
    );
    // Promotion needs a winner.
    let other = started(
        &s,
        &definition("no winner", &[("control", 3, 1.0), ("b", 1, 1.0)]),
    )
    .await;
    assert_eq!(
        field(
            s.admin
                .conclude_experiment(
                    &other.id,
                    &EndExperiment {
                        winner: None,
                        promote: true,
                        reason: String::new()
                    }
                )
                .await
        ),
        "promote"
    );
}

#[tokio::test]
async fn a_guardrail_breach_stops_the_arm() {
    let s = server().await;
    let mut def = definition(
        "guarded",
        &[("control", 1, 1.0), ("fine", 2, 1.0), ("slow", 3, 1.0)],
    );
    def.guardrails = vec![GuardrailSpec {
        metric: "latency_ms".into(),
        direction: None,
        tolerance: 0.05,
    }];
    let e = started(&s, &def).await;
    // Same success rate everywhere; `slow` takes twice as long.
    ingest_rates(
        &s,
        &e.id,
        &[
            ("control", 0.5, 100.0),
            ("fine", 0.5, 100.0),
            ("slow", 0.5, 200.0),
        ],
        300,
    )
    .await;
    let now = OffsetDateTime::now_utc() + Duration::minutes(5);
    let run = s.state.evaluate_experiments(now).await.unwrap();
    assert_eq!(run.decisions, 1);
    let after = s.admin.get_experiment(&e.id).await.unwrap();
    assert_eq!(after.status, ExperimentStatus::Running);
    let slow = after.arms.iter().find(|a| a.name == "slow").unwrap();
    assert!(slow.stopped);
    assert!(
        slow.stopped_reason
            .as_deref()
            .unwrap_or_default()
            .contains("latency_ms"),
        "{slow:?}"
    );
    assert!(!after.arms[1].stopped);
    let history = history_kinds(&s, &e.id).await;
    assert!(
        history
            .iter()
            .any(|(kind, actor, _)| kind == "arm_stopped" && actor == "system"),
        "{history:?}"
    );
    // The stopped arm gets no more traffic.
    for i in 0..200 {
        let (_, assignment) = resolve_arm(&s.admin, Some(&format!("after-{i}"))).await;
        assert_ne!(assignment.unwrap().1, "slow");
    }
}

#[tokio::test]
async fn the_maximum_duration_concludes_without_a_winner() {
    let s = server().await;
    let mut def = definition("timeboxed", &[("control", 1, 1.0), ("b", 2, 1.0)]);
    def.max_duration_hours = Some(1);
    def.on_conclusion = OnConclusion::PromoteWinner;
    let e = started(&s, &def).await;
    // Before the hour is up: nothing.
    let run = s
        .state
        .evaluate_experiments(OffsetDateTime::now_utc() + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(run.decisions, 0);
    let run = s
        .state
        .evaluate_experiments(OffsetDateTime::now_utc() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(run.decisions, 1);
    let after = s.admin.get_experiment(&e.id).await.unwrap();
    assert_eq!(after.status, ExperimentStatus::Concluded);
    let conclusion = after.conclusion.unwrap();
    assert_eq!((conclusion.winner, conclusion.promoted), (None, false));
    assert_eq!(
        s.admin
            .get_label(PROMPT, "production")
            .await
            .unwrap()
            .version,
        1
    );
    let history = history_kinds(&s, &e.id).await;
    assert_eq!(history.last().unwrap().0, "concluded");
}

#[tokio::test]
async fn the_calculator_answers_over_http() {
    let s = server().await;
    let (viewer, _) = s.key(Role::Viewer).await;
    let case = serde_json::json!({
        "id": "mine",
        "input": {"arms": [{"n": 1000, "successes": 100}, {"n": 1000, "successes": 130}]}
    });
    match viewer
        .abtest_analyze(&case, promptstore_client::AnalyzeFormat::Reference)
        .await
        .unwrap()
    {
        promptstore_client::Analysis::Json(v) => {
            assert_eq!(v[0]["id"], "mine");
            assert!(v[0]["expected"].is_object(), "{v}");
        }
        other => panic!("{other:?}"),
    }
    match viewer
        .abtest_analyze(&case, promptstore_client::AnalyzeFormat::Report)
        .await
        .unwrap()
    {
        promptstore_client::Analysis::Text(t) => assert!(t.contains("mine"), "{t}"),
        other => panic!("{other:?}"),
    }
    let bad = serde_json::json!({"input": {"arms": [{"n": -3}]}});
    assert_eq!(
        code(
            viewer
                .abtest_analyze(&bad, promptstore_client::AnalyzeFormat::Json)
                .await
        ),
        ErrorCode::InvalidRequest
    );
    let unknown_format = viewer
        .raw(
            Method::POST,
            "/api/v1/abtest/analyze?format=xml",
            &[("content-type", "application/json")],
            Some(case.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(unknown_format.status, 400);
}

#[tokio::test]
async fn a_render_that_assigns_an_arm_is_never_answered_from_the_cache() {
    let s = server().await;
    let e = started(
        &s,
        &definition("cache", &[("control", 1, 1.0), ("treatment", 3, 1.0)]),
    )
    .await;
    let (runtime, _) = s.key(Role::Runtime).await;
    let render = |unit: Option<&str>| promptstore_client::types::RenderRequest {
        name: PROMPT.into(),
        label: Some("production".into()),
        version: None,
        variables: Default::default(),
        unit_id: unit.map(str::to_owned),
    };
    let assignments = || async {
        let text = s.admin.metrics_text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("promptstore_experiment_assignments_total "))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let before = assignments().await;
    for _ in 0..3 {
        let r = runtime.render(&render(Some("user-7"))).await.unwrap();
        assert_eq!(r.assignment.unwrap().experiment, e.id);
    }
    assert_eq!(
        assignments().await,
        before + 3.0,
        "every render assigned again"
    );

    // Without a unit id the control is served (and may be cached); stopping the
    // experiment makes the same request answer without an assignment at once.
    for _ in 0..2 {
        let r = runtime.render(&render(None)).await.unwrap();
        assert_eq!((r.text.as_deref(), r.assignment), (Some("v1"), None));
    }
    s.admin.stop_experiment(&e.id, &end("done")).await.unwrap();
    let r = runtime.render(&render(Some("user-7"))).await.unwrap();
    assert_eq!((r.text.as_deref(), r.assignment), (Some("v1"), None));
    let exposed = exposures(&s, &e.id, 1).await;
    assert_eq!(exposed.values().sum::<u64>(), 1, "{exposed:?}");
}
