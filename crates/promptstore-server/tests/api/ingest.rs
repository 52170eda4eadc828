//! Event ingestion: per-item validation with indexes, NDJSON, duplicates, late judgements,
//! cost at ingest, group commit under concurrency.

use std::collections::BTreeMap;

use promptstore_client::types::{
    AttachToEvent, CostSource, EventIn, Feedback, IngestReport, Role, SetModelPrice,
};
use promptstore_client::{AnalyticsQuery, ErrorCode, Method, PageRequest, ndjson_body};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::analytics_support::*;
use crate::harness::*;

async fn post_raw(s: &TestServer, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = s
        .admin
        .raw(
            Method::POST,
            "/api/v1/events",
            &[("content-type", content_type)],
            Some(body),
        )
        .await
        .unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn every_validation_error_is_reported_with_its_index_and_the_good_items_are_stored() {
    let s = server_with(&["p"], 2).await;
    let now = OffsetDateTime::now_utc();
    let long = "x".repeat(201);
    let many_scores: serde_json::Map<String, serde_json::Value> =
        (0..101).map(|i| (format!("s{i}"), json!(1.0))).collect();
    // (item, expected code, expected field) — `None` code = a valid item.
    let cases: Vec<(serde_json::Value, Option<ErrorCode>, Option<&str>)> = vec![
        (json!({"prompt": "p"}), None, None),
        (
            json!({"prompt": "p", "id": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("id"),
        ),
        (
            json!({"prompt": "p", "id": long}),
            Some(ErrorCode::InvalidRequest),
            Some("id"),
        ),
        (
            json!({"prompt": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("prompt"),
        ),
        (
            json!({"prompt": "nope"}),
            Some(ErrorCode::NotFound),
            Some("prompt"),
        ),
        (
            json!({"prompt": "p", "version": 0}),
            Some(ErrorCode::NotFound),
            Some("version"),
        ),
        (
            json!({"prompt": "p", "version": 9}),
            Some(ErrorCode::NotFound),
            Some("version"),
        ),
        (
            json!({"prompt": "p", "label": "Bad Label"}),
            Some(ErrorCode::InvalidRequest),
            Some("label"),
        ),
        (
            json!({"prompt": "p", "label": "missing"}),
            Some(ErrorCode::NotFound),
            Some("label"),
        ),
        (
            json!({"prompt": "p", "model": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("model"),
        ),
        (
            json!({"prompt": "p", "provider": "a\u{1}b"}),
            Some(ErrorCode::InvalidRequest),
            Some("provider"),
        ),
        (
            json!({"prompt": "p", "experiment": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("experiment"),
        ),
        (
            json!({"prompt": "p", "arm": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("arm"),
        ),
        (
            json!({"prompt": "p", "unit_id": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("unit_id"),
        ),
        (
            json!({"prompt": "p", "error_type": ""}),
            Some(ErrorCode::InvalidRequest),
            Some("error_type"),
        ),
        (
            json!({"prompt": "p", "input_tokens": 10, "cached_input_tokens": 11}),
            Some(ErrorCode::InvalidRequest),
            Some("cached_input_tokens"),
        ),
        (
            json!({"prompt": "p", "latency_ms": -1}),
            Some(ErrorCode::InvalidRequest),
            Some("latency_ms"),
        ),
        (
            json!({"prompt": "p", "ttft_ms": -0.5}),
            Some(ErrorCode::InvalidRequest),
            Some("ttft_ms"),
        ),
        (
            json!({"prompt": "p", "cost": -0.01}),
            Some(ErrorCode::InvalidRequest),
            Some("cost"),
        ),
        (
            json!({"prompt": "p", "success": true, "error_type": "timeout"}),
            Some(ErrorCode::InvalidRequest),
            Some("success"),
        ),
        (
            json!({"prompt": "p", "scores": {"": 1.0}}),
            Some(ErrorCode::InvalidRequest),
            Some("scores"),
        ),
        (
            json!({"prompt": "p", "scores": many_scores}),
            Some(ErrorCode::InvalidRequest),
            Some("scores"),
        ),
        (
            json!({"prompt": "p", "feedback": {"rating": 6}}),
            Some(ErrorCode::InvalidRequest),
            Some("feedback.rating"),
        ),
        (
            json!({"prompt": "p", "feedback": {"rating": 0}}),
            Some(ErrorCode::InvalidRequest),
            Some("feedback.rating"),
        ),
        (
            json!({"prompt": "p", "feedback": {"comment": "x".repeat(10_001)}}),
            Some(ErrorCode::InvalidRequest),
            Some("feedback.comment"),
        ),
        (
            json!({"prompt": "p", "metadata": [1, 2]}),
            Some(ErrorCode::InvalidRequest),
            Some("metadata"),
        ),
        (
            json!({"prompt": "p", "metadata": {"big": "x".repeat(17_000)}}),
            Some(ErrorCode::InvalidRequest),
            Some("metadata"),
        ),
        (
            json!({"prompt": "p", "timestamp": rfc3339(now + Duration::hours(1))}),
            Some(ErrorCode::InvalidRequest),
            Some("timestamp"),
        ),
        (
            json!({"prompt": "p", "timestamp": rfc3339(now - Duration::days(40))}),
            Some(ErrorCode::InvalidRequest),
            Some("timestamp"),
        ),
        (
            json!({"prompt": "p", "bogus": 1}),
            Some(ErrorCode::InvalidJson),
            None,
        ),
        (
            json!({"prompt": "p", "input_tokens": -5}),
            Some(ErrorCode::InvalidJson),
            None,
        ),
        (
            json!({"prompt": "p", "feedback": {"rating": 300}}),
            Some(ErrorCode::InvalidJson),
            None,
        ),
        (json!(42), Some(ErrorCode::InvalidJson), None),
        (
            json!({"prompt": "p", "version": 2, "label": "gone", "model": "m", "latency_ms": 12.5}),
            None,
            None,
        ),
    ];
    let batch: Vec<&serde_json::Value> = cases.iter().map(|c| &c.0).collect();
    let (status, body) =
        post_raw(&s, "application/json", serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let report: IngestReport = serde_json::from_value(body).unwrap();
    let expected_errors: Vec<usize> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.1.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        report.errors.iter().map(|e| e.index).collect::<Vec<_>>(),
        expected_errors,
        "{report:#?}"
    );
    for error in &report.errors {
        let (item, code, field) = &cases[error.index];
        assert_eq!(
            Some(error.code),
            *code,
            "item {} = {item}: {error:?}",
            error.index
        );
        if let Some(field) = field {
            assert_eq!(
                error.field.as_deref(),
                Some(*field),
                "item {item}: {error:?}"
            );
        }
        assert!(!error.message.is_empty());
    }
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected, expected_errors.len() as u64);
    assert_eq!(report.ids.len(), cases.len());
    for (i, id) in report.ids.iter().enumerate() {
        assert_eq!(id.is_some(), cases[i].1.is_none(), "ids[{i}]");
    }
    // The good items are stored: the version came from the label, or was given.
    let events = s
        .admin
        .list_events(&AnalyticsQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);
    let last = s
        .admin
        .get_event(report.ids[cases.len() - 1].unwrap())
        .await
        .unwrap();
    assert_eq!(
        (last.version, last.model.as_str(), last.latency_ms),
        (2, "m", Some(12.5))
    );
    let first = s.admin.get_event(report.ids[0].unwrap()).await.unwrap();
    assert_eq!(first.version, 2, "no version and no label = the latest");
    assert!(first.success);
    assert_eq!(summary_now(&s.admin, Some("p")).await.count, 2);

    // A body that is not a batch at all is refused whole.
    let (status, body) = post_raw(&s, "application/json", b"{\"prompt\":\"p\"}".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let (status, body) = post_raw(&s, "text/csv", b"prompt\np".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
}

#[tokio::test]
async fn ndjson_batches_report_bad_lines_by_line_number() {
    let s = server_with(&["p"], 1).await;
    let body = b"{\"prompt\":\"p\",\"id\":\"a\"}\nnot json at all\n\n{\"prompt\":\"nope\"}\r\n{\"prompt\":\"p\",\"id\":\"b\"}\n".to_vec();
    let report = s.admin.ingest_ndjson(body).await.unwrap();
    assert_eq!((report.accepted, report.rejected), (2, 3), "{report:#?}");
    let indexes: Vec<(usize, ErrorCode)> =
        report.errors.iter().map(|e| (e.index, e.code)).collect();
    assert_eq!(
        indexes,
        vec![
            (1, ErrorCode::InvalidJson),
            (2, ErrorCode::InvalidJson),
            (3, ErrorCode::NotFound)
        ]
    );
    assert!(
        report.errors[0].message.contains("line 2"),
        "{:?}",
        report.errors[0]
    );
    assert_eq!(report.ids.len(), 5);
    assert!(report.ids[0].is_some() && report.ids[4].is_some());

    // The client's NDJSON encoder round-trips.
    let report = s
        .admin
        .ingest_ndjson(ndjson_body(&[ev("p"), ev("p")]).unwrap())
        .await
        .unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(summary_now(&s.admin, None).await.count, 4);
}

#[tokio::test]
async fn a_client_id_sent_twice_is_stored_once() {
    let s = server_with(&["p"], 1).await;
    let first = s
        .admin
        .ingest_events(&[ev_id("p", "a"), ev_id("p", "a"), ev_id("p", "b")])
        .await
        .unwrap();
    assert_eq!(
        (first.accepted, first.duplicates, first.rejected),
        (2, 1, 0)
    );
    assert_eq!(
        first.ids[0], first.ids[1],
        "a duplicate gets the stored event's id"
    );
    assert_ne!(first.ids[0], first.ids[2]);

    let retry = s
        .admin
        .ingest_events(&[ev_id("p", "b"), ev_id("p", "c")])
        .await
        .unwrap();
    assert_eq!((retry.accepted, retry.duplicates), (1, 1));
    assert_eq!(retry.ids[0], first.ids[2]);
    assert_eq!(summary_now(&s.admin, None).await.count, 3);
    let listed = s
        .admin
        .list_events(&AnalyticsQuery::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
}

#[tokio::test]
async fn late_scores_and_feedback_change_the_summary() {
    let s = server_with(&["p"], 1).await;
    let (runtime, _) = s.key(Role::Runtime).await;
    let report = runtime
        .ingest_events(&[
            ev_id("p", "gen-1"),
            EventIn {
                scores: BTreeMap::from([("accuracy".to_owned(), 0.5)]),
                ..ev("p")
            },
        ])
        .await
        .unwrap();
    let before = summary_now(&s.admin, None).await;
    assert_eq!(before.feedback.thumbs_down, 0);
    assert_eq!(before.scores["accuracy"].count, 1);

    // A thumbs-down a minute later, by the client's id; a score by the server's id.
    let event = runtime
        .attach_by_client_id(
            "gen-1",
            &AttachToEvent {
                feedback: Some(Feedback {
                    thumbs_up: Some(false),
                    rating: Some(2),
                    comment: Some("wrong queue".into()),
                }),
                ..AttachToEvent::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(event.feedback.as_ref().unwrap().thumbs_up, Some(false));
    let event = runtime
        .attach_to_event(
            report.ids[0].unwrap(),
            &AttachToEvent {
                scores: BTreeMap::from([("accuracy".to_owned(), 1.0)]),
                ..AttachToEvent::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(event.scores["accuracy"], 1.0);
    assert_eq!(event.client_id.as_deref(), Some("gen-1"));

    let after = summary_now(&s.admin, None).await;
    assert_eq!(after.count, 2, "attaching adds no event");
    assert_eq!(after.feedback.thumbs_down, 1);
    assert_eq!(after.feedback.ratings, [0, 1, 0, 0, 0]);
    assert_eq!(after.scores["accuracy"].count, 2);
    assert!(close(after.scores["accuracy"].mean, 0.75));

    // Replacing the feedback adjusts the counts instead of adding to them.
    runtime
        .attach_by_client_id(
            "gen-1",
            &AttachToEvent {
                feedback: Some(Feedback {
                    thumbs_up: Some(true),
                    ..Feedback::default()
                }),
                ..AttachToEvent::default()
            },
        )
        .await
        .unwrap();
    let replaced = summary_now(&s.admin, None).await;
    assert_eq!(
        (replaced.feedback.thumbs_up, replaced.feedback.thumbs_down),
        (1, 0)
    );

    // Refusals: nothing to attach, a bad rating, unknown events.
    let r = runtime
        .attach_by_client_id("gen-1", &AttachToEvent::default())
        .await;
    assert_eq!(code(r), ErrorCode::InvalidRequest);
    let (status, body) = api_error(
        runtime
            .attach_by_client_id(
                "gen-1",
                &AttachToEvent {
                    feedback: Some(Feedback {
                        rating: Some(9),
                        ..Feedback::default()
                    }),
                    ..AttachToEvent::default()
                },
            )
            .await,
    );
    assert_eq!(
        (status, body.details["field"].as_str()),
        (400, Some("feedback.rating"))
    );
    let r = runtime
        .attach_by_client_id(
            "no-such-id",
            &AttachToEvent {
                scores: BTreeMap::from([("x".to_owned(), 1.0)]),
                ..AttachToEvent::default()
            },
        )
        .await;
    assert_eq!(code(r), ErrorCode::NotFound);
    assert_eq!(code(s.admin.get_event(999_999).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn cost_is_computed_from_default_and_project_prices_reported_kept_and_unknown_unpriced() {
    let s = server_with(&["p"], 1).await;
    let tokens = |model: &str| EventIn {
        model: Some(model.to_owned()),
        input_tokens: Some(1_000),
        output_tokens: Some(500),
        ..ev("p")
    };
    // gpt-4o-mini ships at $0.15 in / $0.60 out per million tokens.
    let report = s
        .admin
        .ingest_events(&[
            tokens("gpt-4o-mini"),
            EventIn {
                cost: Some(0.25),
                ..tokens("gpt-4o-mini")
            },
            tokens("in-house-model"),
        ])
        .await
        .unwrap();
    let get = |i: usize| s.admin.get_event(report.ids[i].unwrap());
    let computed = get(0).await.unwrap();
    assert_eq!(computed.cost_source, CostSource::Computed);
    assert!(close(
        computed.cost.unwrap(),
        (1_000.0 * 0.15 + 500.0 * 0.60) / 1e6
    ));
    let reported = get(1).await.unwrap();
    assert_eq!(
        (reported.cost_source, reported.cost),
        (CostSource::Reported, Some(0.25))
    );
    let unpriced = get(2).await.unwrap();
    assert_eq!(
        (unpriced.cost_source, unpriced.cost),
        (CostSource::Unpriced, None)
    );

    let m = summary_now(&s.admin, None).await;
    assert_eq!((m.priced_events, m.unpriced_events), (2, 1));
    assert_eq!(m.unpriced_models, vec!["in-house-model".to_owned()]);
    assert!(
        close(m.cost, 0.25 + computed.cost.unwrap()),
        "unpriced is not counted as zero cost: {}",
        m.cost
    );

    // A project price applies to the next events at once (the cache is refreshed on write).
    let price = s
        .admin
        .set_price(
            "in-house-model",
            &SetModelPrice {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
                cached_input_per_mtok: None,
                effective_from: Some(OffsetDateTime::now_utc() - Duration::hours(1)),
            },
        )
        .await
        .unwrap();
    assert_eq!(price.source, "project");
    let report = s
        .admin
        .ingest_events(&[tokens("in-house-model")])
        .await
        .unwrap();
    let priced = s.admin.get_event(report.ids[0].unwrap()).await.unwrap();
    assert_eq!(priced.cost_source, CostSource::Computed);
    assert!(close(
        priced.cost.unwrap(),
        (1_000.0 * 1.0 + 500.0 * 2.0) / 1e6
    ));
    // The event received before the price stays unpriced: costs are fixed at ingest.
    assert_eq!(get(2).await.unwrap().cost_source, CostSource::Unpriced);
}

#[tokio::test]
async fn concurrent_batches_are_all_acknowledged_and_all_counted() {
    let s = server_with(&["p", "q"], 1).await;
    let (runtime, _) = s.key(Role::Runtime).await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let client = runtime.clone();
            tokio::spawn(async move {
                let mut accepted = 0;
                for b in 0..5 {
                    let batch: Vec<EventIn> = (0..200)
                        .map(|i| EventIn {
                            id: Some(format!("t{t}-b{b}-i{i}")),
                            latency_ms: Some(f64::from(i)),
                            ..ev(if i % 2 == 0 { "p" } else { "q" })
                        })
                        .collect();
                    let report = client.ingest_events(&batch).await.unwrap();
                    assert_eq!(report.rejected, 0);
                    assert!(report.ids.iter().all(Option::is_some));
                    accepted += report.accepted;
                }
                accepted
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 8 * 5 * 200);
    let m = summary_now(&s.admin, None).await;
    assert_eq!(m.count, 8000);
    let by_prompt = s
        .admin
        .summary(&last_hours(24, None), &["prompt"])
        .await
        .unwrap();
    let counts: Vec<(String, u64)> = by_prompt
        .groups
        .iter()
        .map(|g| (g.key["prompt"].clone(), g.metrics.count))
        .collect();
    assert_eq!(counts, vec![("p".to_owned(), 4000), ("q".to_owned(), 4000)]);
    let metrics = s.admin.metrics_text().await.unwrap();
    assert!(
        metrics.contains("promptstore_events_ingested_total 8000"),
        "{metrics}"
    );
}
