//! Group commit keeps the promise "answered only once durable": clients ingest batches
//! concurrently, the server is killed with SIGKILL mid-flight, and a new server on the same
//! data directory holds every event that had been acknowledged — and its aggregates agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use promptstore_client::types::{CreatePrompt, EventIn, Template};
use promptstore_client::{AnalyticsQuery, Client};
use time::OffsetDateTime;

/// Sends batches until the server dies; records the client ids of acknowledged batches.
async fn sender(client: Client, worker: usize, acknowledged: Arc<Mutex<Vec<String>>>) {
    for batch in 0..1000 {
        let events: Vec<EventIn> = (0..100)
            .map(|i| EventIn {
                id: Some(format!("w{worker}-b{batch}-e{i}")),
                prompt: "durable".to_owned(),
                latency_ms: Some(f64::from(i)),
                ..EventIn::default()
            })
            .collect();
        let Ok(report) = client.ingest_events(&events).await else {
            return;
        };
        assert_eq!(report.accepted, 100);
        acknowledged
            .lock()
            .unwrap()
            .extend(events.into_iter().filter_map(|e| e.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let server = Server::start();
    let admin_key = server.admin_key.clone();
    let client = Client::builder(&server.url, &admin_key)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .create_prompt(&CreatePrompt {
            name: "durable".into(),
            description: String::new(),
            tags: vec![],
            status: None,
            template: Template::Text { text: "hi".into() },
            variables: vec![],
            model_config: None,
            commit_message: "v1".into(),
        })
        .await
        .unwrap();

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4)
        .map(|w| tokio::spawn(sender(client.clone(), w, acknowledged.clone())))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 2_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = tokio::task::spawn_blocking(move || server.kill_hard())
        .await
        .unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 2_000,
        "the senders made progress before the kill"
    );

    let restarted = Server::start_in(dir, Some(&admin_key));
    let client = Client::new(&restarted.url, &admin_key).unwrap();
    // Re-sending every acknowledged event finds each of them stored already.
    for chunk in acknowledged.chunks(5_000) {
        let events: Vec<EventIn> = chunk
            .iter()
            .map(|id| EventIn {
                id: Some(id.clone()),
                prompt: "durable".to_owned(),
                ..EventIn::default()
            })
            .collect();
        let report = client.ingest_events(&events).await.unwrap();
        assert_eq!(
            (report.accepted, report.duplicates),
            (0, chunk.len() as u64),
            "every acknowledged event is stored after the kill"
        );
    }
    // The aggregates were written in the same transactions as the raw events.
    let now = OffsetDateTime::now_utc();
    let summary = client
        .summary(
            &AnalyticsQuery {
                from: Some(now - time::Duration::hours(2)),
                to: Some(now + time::Duration::hours(1)),
                ..AnalyticsQuery::default()
            },
            &[],
        )
        .await
        .unwrap();
    let stored = client
        .list_events(
            &AnalyticsQuery::default(),
            &promptstore_client::PageRequest {
                cursor: None,
                limit: Some(1),
            },
        )
        .await
        .unwrap();
    assert!(!stored.items.is_empty());
    assert!(summary.metrics.count >= acknowledged.len() as u64);
    assert_eq!(summary.metrics.count % 100, 0, "batches are all or nothing");
    assert_eq!(summary.metrics.latency_ms.count, summary.metrics.count);
}
