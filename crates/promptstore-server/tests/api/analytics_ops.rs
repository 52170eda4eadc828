//! Analytics operations: prices, alert rules firing and resolving, retention, `/metrics`,
//! roles, project isolation, and the analytics part of the OpenAPI document.

use std::time::Duration as StdDuration;

use promptstore_client::types::{AlertRuleIn, CreateProject, EventIn, Role, SetModelPrice};
use promptstore_client::{AnalyticsQuery, Client, ErrorCode, Method, PageRequest, TopBy};
use time::{Duration, OffsetDateTime};

use crate::analytics_support::*;
use crate::harness::*;

fn error_rate_rule(name: &str) -> AlertRuleIn {
    AlertRuleIn {
        name: name.to_owned(),
        metric: "error_rate".to_owned(),
        prompt: Some("p".to_owned()),
        label: None,
        comparison: "gt".to_owned(),
        threshold: 0.5,
        window_minutes: 60,
        min_sample: 5,
        enabled: true,
    }
}

fn failures(n: usize) -> Vec<EventIn> {
    (0..n)
        .map(|_| EventIn {
            error_type: Some("timeout".to_owned()),
            ..ev("p")
        })
        .collect()
}

#[tokio::test]
async fn prices_list_set_and_delete() {
    let s = TestServer::start().await;
    let defaults = s.admin.list_prices().await.unwrap();
    assert!(
        defaults
            .iter()
            .any(|p| p.model == "gpt-4o-mini" && p.source == "default")
    );
    assert!(defaults.iter().all(|p| p.source == "default"));

    let set = SetModelPrice {
        input_per_mtok: 0.5,
        output_per_mtok: 1.5,
        cached_input_per_mtok: Some(0.1),
        effective_from: None,
    };
    let price = s.admin.set_price("acme/model-1", &set).await.unwrap();
    assert_eq!(
        (price.model.as_str(), price.source.as_str()),
        ("acme/model-1", "project")
    );
    let listed = s.admin.list_prices().await.unwrap();
    assert_eq!(
        listed[0].model, "acme/model-1",
        "the project's entries come first"
    );

    // Only admins write prices; bad numbers name the field.
    let (editor, _) = s.key(Role::Editor).await;
    assert_eq!(
        code(editor.set_price("x", &set).await),
        ErrorCode::Forbidden
    );
    let (status, body) = api_error(
        s.admin
            .set_price(
                "x",
                &SetModelPrice {
                    input_per_mtok: -1.0,
                    ..set.clone()
                },
            )
            .await,
    );
    assert_eq!(
        (status, body.details["field"].as_str()),
        (400, Some("input_per_mtok"))
    );

    s.admin.delete_price("acme/model-1").await.unwrap();
    assert!(
        s.admin
            .list_prices()
            .await
            .unwrap()
            .iter()
            .all(|p| p.source == "default")
    );
    assert_eq!(
        code(s.admin.delete_price("acme/model-1").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn an_alert_rule_fires_then_resolves_and_its_history_is_kept() {
    let s = server_with(&["p"], 1).await;
    let rule = s
        .admin
        .create_alert(&error_rate_rule("p errors"))
        .await
        .unwrap();
    assert_eq!(rule.rule.name, "p errors");
    assert_eq!(
        s.admin.get_alert(rule.id).await.unwrap().rule.threshold,
        0.5
    );

    // Too few events: insufficient data, no notification.
    s.admin.ingest_events(&failures(2)).await.unwrap();
    let run = s.state.evaluate_alerts().await.unwrap();
    assert_eq!((run.evaluated, run.transitions), (1, 0));
    assert_eq!(
        s.admin.get_alert(rule.id).await.unwrap().state,
        "insufficient_data"
    );

    // 6 failures out of 6: fires.
    s.admin.ingest_events(&failures(4)).await.unwrap();
    let run = s.state.evaluate_alerts().await.unwrap();
    assert_eq!(run.transitions, 1);
    let firing = s.admin.get_alert(rule.id).await.unwrap();
    assert_eq!(
        (firing.state.as_str(), firing.last_value),
        ("firing", Some(1.0))
    );
    assert!(firing.last_evaluated_at.is_some());
    // Evaluating again changes nothing: one notification per transition.
    assert_eq!(s.state.evaluate_alerts().await.unwrap().transitions, 0);

    // 24 successes: 6/30 = 0.2 ≤ 0.5, resolved.
    s.admin
        .ingest_events(&(0..24).map(|_| ev("p")).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(s.state.evaluate_alerts().await.unwrap().transitions, 1);
    let ok = s.admin.get_alert(rule.id).await.unwrap();
    assert_eq!(ok.state, "ok");
    assert!(close(ok.last_value.unwrap(), 0.2));

    let history = s
        .admin
        .alert_events(Some(rule.id), &PageRequest::default())
        .await
        .unwrap();
    let states: Vec<(&str, u64)> = history
        .items
        .iter()
        .map(|e| (e.state.as_str(), e.sample))
        .collect();
    assert_eq!(
        states,
        vec![("resolved", 30), ("firing", 6)],
        "newest first"
    );
    assert!(
        history
            .items
            .iter()
            .all(|e| e.rule_name == "p errors" && e.threshold == 0.5)
    );

    // The list shows current state; update and delete.
    let listed = s.admin.list_alerts().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "ok");
    let mut changed = error_rate_rule("renamed");
    changed.threshold = 0.1;
    let updated = s.admin.update_alert(rule.id, &changed).await.unwrap();
    assert_eq!(
        (updated.rule.name.as_str(), updated.rule.threshold),
        ("renamed", 0.1)
    );
    s.admin.delete_alert(rule.id).await.unwrap();
    assert_eq!(code(s.admin.get_alert(rule.id).await), ErrorCode::NotFound);
    assert_eq!(
        code(s.admin.delete_alert(rule.id).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn alert_rules_are_validated() {
    let s = TestServer::start().await;
    let check = |field: &'static str, rule: AlertRuleIn| {
        let admin = s.admin.clone();
        async move {
            let (status, body) = api_error(admin.create_alert(&rule).await);
            assert_eq!(
                (status, body.code),
                (400, ErrorCode::InvalidRequest),
                "{field}: {body}"
            );
            assert_eq!(body.details["field"], field, "{body}");
        }
    };
    let base = error_rate_rule("r");
    check(
        "metric",
        AlertRuleIn {
            metric: "happiness".into(),
            ..base.clone()
        },
    )
    .await;
    check(
        "comparison",
        AlertRuleIn {
            comparison: "about".into(),
            ..base.clone()
        },
    )
    .await;
    check(
        "window_minutes",
        AlertRuleIn {
            window_minutes: 0,
            ..base.clone()
        },
    )
    .await;
    check(
        "label",
        AlertRuleIn {
            prompt: None,
            label: Some("production".into()),
            ..base.clone()
        },
    )
    .await;
    let (viewer, _) = s.key(Role::Viewer).await;
    assert_eq!(code(viewer.create_alert(&base).await), ErrorCode::Forbidden);
    assert!(viewer.list_alerts().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_alert_worker_evaluates_on_its_interval() {
    let mut config = test_config();
    config.analytics.alert_interval = Some(StdDuration::from_millis(50));
    let s = TestServer::start_with(config).await;
    add_prompts(&s, &["p"], 1).await;
    let rule = s
        .admin
        .create_alert(&error_rate_rule("worker"))
        .await
        .unwrap();
    s.admin.ingest_events(&failures(10)).await.unwrap();
    // Poll (bounded) until the worker has fired the rule; no timing is asserted.
    let mut state = String::new();
    for _ in 0..400 {
        state = s.admin.get_alert(rule.id).await.unwrap().state;
        if state == "firing" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    assert_eq!(state, "firing");
    let metrics = s.admin.metrics_text().await.unwrap();
    assert!(
        metrics.contains("promptstore_alert_evaluation_runs_total"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn retention_prunes_raw_events_and_keeps_the_summaries() {
    let s = server_with(&["p"], 1).await;
    let two_hours_ago = OffsetDateTime::now_utc() - Duration::hours(2);
    let report = s
        .admin
        .ingest_events(
            &(0..5)
                .map(|_| EventIn {
                    timestamp: Some(two_hours_ago),
                    latency_ms: Some(10.0),
                    ..ev("p")
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(report.accepted, 5);
    // Nothing is older than 30 days yet.
    let run = s
        .state
        .prune_old_events(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(run.deleted, 0);
    // 31 days from now, the events are past retention.
    let later = OffsetDateTime::now_utc() + Duration::days(31);
    let run = s.state.prune_old_events(later).await.unwrap();
    assert_eq!(run.deleted, 5);
    let listed = s
        .admin
        .list_events(&AnalyticsQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(
        code(s.admin.get_event(report.ids[0].unwrap()).await),
        ErrorCode::NotFound
    );
    let m = summary_now(&s.admin, None).await;
    assert_eq!(
        (m.count, m.latency_ms.count),
        (5, 5),
        "the aggregates keep pruned events"
    );
    let metrics = s.admin.metrics_text().await.unwrap();
    assert!(
        metrics.contains("promptstore_events_pruned_total 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_requests_ingestion_and_snapshot_reads() {
    let s = server_with(&["p"], 1).await;
    s.admin
        .ingest_events(&[ev_id("p", "a"), ev_id("p", "a"), ev("nope")])
        .await
        .unwrap();
    s.admin
        .resolve(
            "p",
            &promptstore_client::Selector::Label("latest".into()),
            None,
        )
        .await
        .unwrap();
    let text = s.admin.metrics_text().await.unwrap();
    for needle in [
        "promptstore_events_ingested_total 1",
        "promptstore_events_duplicate_total 1",
        "promptstore_events_rejected_total 1",
        r#"promptstore_http_requests_total{route="/api/v1/events",method="POST",status="200"} 1"#,
        r#"promptstore_http_requests_total{route="/api/v1/resolve",method="GET",status="200"} 1"#,
        r#"promptstore_runtime_snapshot_total{op="resolve",result="hit"} 1"#,
        "promptstore_http_request_duration_seconds_bucket{route=\"/api/v1/events\"",
        "promptstore_ingest_queue_events 0",
        "promptstore_ingest_group_commit_events_count 1",
        "# TYPE promptstore_http_requests_total counter",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    // Unknown paths are counted under one series, not one per path.
    let _ = s
        .admin
        .raw(Method::GET, "/api/v1/no/such/path/123", &[], None)
        .await
        .unwrap();
    let text = s.admin.metrics_text().await.unwrap();
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(!text.contains("/no/such/path"), "{text}");

    // A viewer of any project may scrape; a runtime key and no key may not.
    let (viewer, _) = s.key(Role::Viewer).await;
    viewer.metrics_text().await.unwrap();
    let (runtime, _) = s.key(Role::Runtime).await;
    assert_eq!(code(runtime.metrics_text().await), ErrorCode::Forbidden);
    assert_eq!(
        code(s.client("").metrics_text().await),
        ErrorCode::Unauthorized
    );
    let other = s
        .admin
        .create_project(&CreateProject {
            name: "other".into(),
        })
        .await
        .unwrap();
    s.client(&other.admin_key.secret)
        .metrics_text()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_runtime_key_records_but_cannot_read_analytics() {
    let s = server_with(&["p"], 1).await;
    let (runtime, _) = s.key(Role::Runtime).await;
    let report = runtime.ingest_events(&[ev_id("p", "r1")]).await.unwrap();
    assert_eq!(report.accepted, 1);
    let id = report.ids[0].unwrap();
    let range = last_hours(24, None);
    let forbidden = |r: Result<(), promptstore_client::ClientError>| code(r);
    macro_rules! refused {
        ($call:expr) => {
            assert_eq!(
                forbidden($call.await.map(|_| ())),
                ErrorCode::Forbidden,
                stringify!($call)
            );
        };
    }
    refused!(runtime.summary(&range, &[]));
    refused!(runtime.timeseries(&range, promptstore_client::Interval::Hour, None));
    refused!(runtime.compare_versions("p", 1, 1, &range));
    refused!(runtime.top(TopBy::Use, None, &range));
    refused!(runtime.recommendations(&range));
    refused!(runtime.list_events(&AnalyticsQuery::default(), &PageRequest::default()));
    refused!(runtime.get_event(id));
    refused!(runtime.list_prices());
    refused!(runtime.list_alerts());
    refused!(runtime.alert_events(None, &PageRequest::default()));
    let (viewer, _) = s.key(Role::Viewer).await;
    assert_eq!(summary_now(&viewer, None).await.count, 1);
    // A viewer may read but not record.
    assert_eq!(
        code(viewer.ingest_events(&[ev("p")]).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(s.client("").ingest_events(&[ev("p")]).await),
        ErrorCode::Unauthorized
    );
}

#[tokio::test]
async fn another_project_sees_nothing() {
    let s = server_with(&["p"], 1).await;
    let report = s.admin.ingest_events(&[ev_id("p", "mine")]).await.unwrap();
    let id = report.ids[0].unwrap();
    s.admin
        .create_alert(&error_rate_rule("mine"))
        .await
        .unwrap();
    s.admin
        .set_price(
            "private-model",
            &SetModelPrice {
                input_per_mtok: 1.0,
                output_per_mtok: 1.0,
                cached_input_per_mtok: None,
                effective_from: None,
            },
        )
        .await
        .unwrap();
    let created = s
        .admin
        .create_project(&CreateProject {
            name: "other".into(),
        })
        .await
        .unwrap();
    let other: Client = s.client(&created.admin_key.secret);
    assert_eq!(summary_now(&other, None).await.count, 0);
    let listed = other
        .list_events(&AnalyticsQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(code(other.get_event(id).await), ErrorCode::NotFound);
    let attach = promptstore_client::types::AttachToEvent {
        scores: [("x".to_owned(), 1.0)].into(),
        ..Default::default()
    };
    assert_eq!(
        code(other.attach_to_event(id, &attach).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(other.attach_by_client_id("mine", &attach).await),
        ErrorCode::NotFound
    );
    assert!(other.list_alerts().await.unwrap().is_empty());
    assert!(
        other
            .list_prices()
            .await
            .unwrap()
            .iter()
            .all(|p| p.model != "private-model")
    );
    // Its events cannot name our prompts.
    let theirs = other.ingest_events(&[ev("p")]).await.unwrap();
    assert_eq!(theirs.errors[0].code, ErrorCode::NotFound);
    // The same client id in another project is another event.
    other
        .create_prompt(&new_prompt("p", text("theirs"), vec![]))
        .await
        .unwrap();
    let theirs = other.ingest_events(&[ev_id("p", "mine")]).await.unwrap();
    assert_eq!((theirs.accepted, theirs.duplicates), (1, 0));
    assert_eq!(summary_now(&s.admin, None).await.count, 1);
}

#[tokio::test]
async fn the_openapi_document_describes_the_analytics_routes() {
    let s = TestServer::start().await;
    let doc = s.client("").openapi().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/events", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/{id}", "get"),
        ("/api/v1/events/{id}/attach", "post"),
        ("/api/v1/events/by-client-id/{client_id}/attach", "post"),
        ("/api/v1/analytics/summary", "get"),
        ("/api/v1/analytics/timeseries", "get"),
        ("/api/v1/analytics/compare", "get"),
        ("/api/v1/analytics/top", "get"),
        ("/api/v1/analytics/recommendations", "get"),
        ("/api/v1/prices", "get"),
        ("/api/v1/prices/{model}", "put"),
        ("/api/v1/prices/{model}", "delete"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts", "post"),
        ("/api/v1/alerts/{id}", "get"),
        ("/api/v1/alerts/{id}", "put"),
        ("/api/v1/alerts/{id}", "delete"),
        ("/api/v1/alerts/events", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let ingest = &paths["/api/v1/events"]["post"]["requestBody"]["content"];
    assert!(ingest.get("application/x-ndjson").is_some(), "{ingest}");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "EventIn",
        "IngestReport",
        "Summary",
        "TimeSeries",
        "VersionComparison",
        "AlertRule",
        "ModelPrice",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}

#[tokio::test]
async fn ingest_has_its_own_body_limit() {
    let mut config = test_config();
    config.body_limit_bytes = 1024;
    config.analytics.ingest_body_limit_bytes = 64 * 1024;
    let s = TestServer::start_with(config).await;
    add_prompts(&s, &["p"], 1).await;
    // 100 events are more than the general limit but within the ingest limit.
    let batch: Vec<EventIn> = (0..100).map(|i| ev_id("p", &format!("e{i}"))).collect();
    assert_eq!(s.admin.ingest_events(&batch).await.unwrap().accepted, 100);
    let huge: Vec<EventIn> = (0..3000).map(|i| ev_id("p", &format!("big-{i}"))).collect();
    let (status, body) = api_error(s.admin.ingest_events(&huge).await);
    assert_eq!((status, body.code), (413, ErrorCode::PayloadTooLarge));
}
