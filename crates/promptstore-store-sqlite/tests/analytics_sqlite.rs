//! What only the SQLite analytics backend promises: a separate `events.db` file with its
//! own writer (registry writes never wait for ingestion), durability of acknowledged
//! batches across a reopen or a kill, and concurrent ingests that queue rather than fail.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promptstore_core::analytics::model::{
    AnalyticsFilter, EventRecord, EventRef, Granularity, IngestOutcome, PriceRecord,
};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::analytics::store::{AnalyticsStore, CellQuery, KeyDetail};
use promptstore_core::model::{Actor, NewVersion, ProjectId};
use promptstore_core::store::{PageRequest, Store, WriteOp};
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{CostSource, Feedback, PromptKind, PromptStatus, Template};
use sqlx::Connection;
use time::OffsetDateTime;

const T0: i64 = 1_710_021_600;

fn project() -> ProjectId {
    ProjectId("p-analytics".into())
}

fn event(i: usize) -> EventRecord {
    let prompt = format!("prompt/{}", i % 10);
    EventRecord {
        project: project(),
        client_id: Some(format!("0190c0de-{i:08x}-4000-8000-{:012x}", i * 7919)),
        prompt_id: format!("id-{prompt}"),
        prompt,
        version: 1 + (i % 3) as u32,
        label: i.is_multiple_of(2).then(|| "production".to_owned()),
        experiment: None,
        arm: None,
        unit_id: Some(format!("user-{}", i % 1000)),
        model: if i.is_multiple_of(4) {
            "claude-x"
        } else {
            "gpt-4o"
        }
        .to_owned(),
        provider: Some("openai".into()),
        input_tokens: 500 + (i % 700) as u64,
        output_tokens: 100 + (i % 300) as u64,
        cached_input_tokens: 0,
        latency_ms: Some(200.0 + (i % 997) as f64),
        ttft_ms: Some(50.0 + (i % 101) as f64),
        cost: Some(0.0001 * (1 + i % 17) as f64),
        cost_source: CostSource::Computed,
        success: !i.is_multiple_of(20),
        error_type: i.is_multiple_of(20).then(|| "timeout".to_owned()),
        scores: if i.is_multiple_of(5) {
            BTreeMap::from([("accuracy".to_owned(), (i % 10) as f64 / 10.0)])
        } else {
            BTreeMap::new()
        },
        feedback: i.is_multiple_of(11).then(|| Feedback {
            thumbs_up: Some(i.is_multiple_of(2)),
            rating: None,
            comment: None,
        }),
        metadata: serde_json::json!({}),
        // Spread over six hours, a millisecond apart per event.
        at: OffsetDateTime::from_unix_timestamp(T0).expect("test setup")
            + time::Duration::milliseconds(((i * 397) % (6 * 3_600_000)) as i64),
    }
}

fn events(range: std::ops::Range<usize>) -> Vec<EventRecord> {
    range.map(event).collect()
}

async fn total_in_cells(store: &SqliteStore, granularity: Granularity) -> u64 {
    let from = OffsetDateTime::from_unix_timestamp(T0 - 86_400 * 2).expect("test setup");
    let to = OffsetDateTime::from_unix_timestamp(T0 + 86_400 * 2).expect("test setup");
    store
        .cells(
            &project(),
            granularity,
            from,
            to,
            &AnalyticsFilter::default(),
        )
        .await
        .expect("test setup")
        .iter()
        .map(|(_, r)| r.count)
        .sum()
}

async fn tables(path: &std::path::Path) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("test setup");
    let names =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .expect("test setup");
    conn.close().await.expect("test setup");
    names
}

#[tokio::test]
async fn analytics_live_in_their_own_file_beside_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    assert_eq!(store.events_path(), dir.path().join("events.db"));
    assert!(store.events_path().exists());
    assert_eq!(
        store.analytics_schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5]
    );
    store.ingest(events(0..10)).await.unwrap();
    store.close().await;

    let registry = tables(&dir.path().join("promptstore.db")).await;
    let analytics = tables(&dir.path().join("events.db")).await;
    assert!(
        registry.contains(&"prompts".to_owned()) && !registry.contains(&"event_blocks".to_owned())
    );
    for t in [
        "event_blocks",
        "event_client_ids",
        "event_judgements",
        "cells_hour",
        "cells_day",
        "prices",
        "alert_rules",
        "alert_events",
    ] {
        assert!(analytics.contains(&t.to_owned()), "{t} in {analytics:?}");
    }
    assert!(!analytics.contains(&"prompts".to_owned()));
    // Events are stored in blocks; the row table of earlier versions is gone.
    assert!(!analytics.contains(&"events".to_owned()));
}

#[tokio::test]
async fn analytics_survive_a_reopen_and_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store.db");
    let actor = Actor::system(project());
    let (stored, rule) = {
        let store = SqliteStore::open(&path).await.unwrap();
        store.ingest(events(0..50)).await.unwrap();
        store
            .attach(
                &project(),
                &EventRef::Id(1),
                &BTreeMap::from([("late".to_owned(), 1.0)]),
                None,
            )
            .await
            .unwrap();
        store
            .set_price(
                &actor,
                PriceRecord {
                    model: "m".into(),
                    input_per_mtok: 1.0,
                    output_per_mtok: 2.0,
                    cached_input_per_mtok: None,
                    effective_from: OffsetDateTime::from_unix_timestamp(T0).unwrap(),
                },
            )
            .await
            .unwrap();
        let rule = store
            .create_alert_rule(
                &actor,
                serde_json::from_value(serde_json::json!({
                    "name": "r", "metric": "count", "comparison": "gt", "threshold": 1.0,
                    "window_minutes": 5
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let stored = store
            .get_event(&project(), &EventRef::Id(1))
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        (stored, rule)
    };
    assert!(dir.path().join("nested/store.events.db").exists());
    for _ in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.analytics_schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5]
        );
        let again = store.get_event(&project(), &EventRef::Id(1)).await.unwrap();
        assert_eq!(again, Some(stored.clone()));
        assert_eq!(stored.event.scores["late"], 1.0);
        assert_eq!(total_in_cells(&store, Granularity::Hour).await, 50);
        assert_eq!(store.list_prices(&project()).await.unwrap().len(), 1);
        assert_eq!(
            store.list_alert_rules(&project()).await.unwrap(),
            vec![rule.clone()]
        );
        // Ingest carries on with the next ids and still knows the stored client ids.
        let outcomes = store.ingest(events(49..50)).await.unwrap();
        assert!(matches!(outcomes[0], IngestOutcome::Duplicate(50)));
        store.close().await;
    }
}

#[tokio::test]
async fn acknowledged_ingests_are_in_the_file_without_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.ingest(events(0..300)).await.unwrap();
    // No close, no checkpoint: the pools are leaked as a killed process would leave them.
    std::mem::forget(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(total_in_cells(&reopened, Granularity::Day).await, 300);
    let page = reopened
        .list_events(
            &project(),
            &AnalyticsFilter::default(),
            None,
            None,
            &PageRequest {
                cursor: None,
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 200);
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn concurrent_ingests_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_in(dir.path()).await.unwrap());
    // A second store on the same files: its writer contends through SQLite's lock.
    let other = Arc::new(SqliteStore::open_in(dir.path()).await.unwrap());
    let mut tasks = vec![];
    for t in 0..12 {
        let store = if t % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            // Overlapping ranges: every client id is sent by two tasks.
            let start = (t / 2) * 100;
            store.ingest(events(start..start + 200)).await
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        for outcome in task.await.unwrap().unwrap() {
            if let IngestOutcome::Inserted(id) = outcome {
                assert!(ids.insert(id), "id {id} handed out twice");
            }
        }
    }
    let distinct = 5 * 100 + 200;
    assert_eq!(ids.len(), distinct, "each client id stored once");
    assert_eq!(
        total_in_cells(&store, Granularity::Hour).await,
        distinct as u64
    );
    assert_eq!(
        total_in_cells(&store, Granularity::Day).await,
        distinct as u64
    );
}

#[tokio::test]
async fn registry_writes_do_not_wait_for_the_analytics_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    // Hold the analytics file's write lock from outside, as a long ingest would.
    let events_url = format!("sqlite://{}", store.events_path().display());
    let mut blocker = sqlx::SqliteConnection::connect(&events_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let (project, key) = store
        .create_project(
            &Actor::system(ProjectId("bootstrap".into())),
            "acme",
            &[],
            promptstore_core::model::NewApiKey {
                id: "adminkey0001".into(),
                name: "admin".into(),
                role: promptstore_types::Role::Admin,
                secret_hash: "h".into(),
            },
        )
        .await
        .unwrap();
    let actor = Actor {
        project: project.id,
        key_id: key.id,
        role: promptstore_types::Role::Admin,
    };
    let op = WriteOp::CreatePrompt {
        name: "p".into(),
        kind: PromptKind::Text,
        description: String::new(),
        tags: vec![],
        status: PromptStatus::Draft,
        first_version: NewVersion {
            template: Template::Text { text: "x".into() },
            variables: vec![],
            model_config: serde_json::json!({}),
            commit_message: String::new(),
            parent: None,
            content_hash: "x".into(),
            includes: vec![],
            breaking_changes: vec![],
        },
    };
    let write = tokio::time::timeout(Duration::from_secs(5), store.apply(&actor, vec![op])).await;
    assert!(
        matches!(write, Ok(Ok(_))),
        "the registry write went through: {write:?}"
    );

    // The ingest waits for the lock (busy timeout), then lands once it is released.
    let ingest = {
        let store = store.clone();
        tokio::spawn(async move { store.ingest(events(0..5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let outcomes = ingest.await.unwrap().unwrap();
    assert_eq!(outcomes.len(), 5);
}

/// Many batches of 1,000, as the HTTP ingest path sends them. Asserts only correctness; the
/// rate is printed for a look by hand (`cargo test … bulk_ingest -- --nocapture`).
#[tokio::test]
async fn bulk_ingest_of_thousand_event_batches_counts_every_event() {
    const BATCHES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    let batches: Vec<Vec<EventRecord>> = (0..BATCHES)
        .map(|b| events(b * 1000..(b + 1) * 1000))
        .collect();
    let started = Instant::now();
    for batch in batches {
        let outcomes = store.ingest(batch).await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, IngestOutcome::Inserted(_)))
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "ingested {} events in {elapsed:?}: {:.0} events/s",
        BATCHES * 1000,
        (BATCHES * 1000) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        total_in_cells(&store, Granularity::Hour).await,
        (BATCHES * 1000) as u64
    );
    assert_eq!(
        total_in_cells(&store, Granularity::Day).await,
        (BATCHES * 1000) as u64
    );
    // Re-sending a batch stores nothing.
    let outcomes = store.ingest(events(5000..6000)).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, IngestOutcome::Duplicate(_)))
    );

    // Group commit hands the store several batches at once: one transaction, one fsync.
    let start = BATCHES * 1000;
    let grouped: Vec<Vec<EventRecord>> = (0..4)
        .map(|g| events(start + g * 10_000..start + (g + 1) * 10_000))
        .collect();
    let started = Instant::now();
    for group in grouped {
        let outcomes = store.ingest(group).await.unwrap();
        assert_eq!(outcomes.len(), 10_000);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "ingested 40000 events in calls of 10,000 in {elapsed:?}: {:.0} events/s",
        40_000.0 / elapsed.as_secs_f64()
    );
    assert_eq!(
        total_in_cells(&store, Granularity::Day).await,
        (BATCHES * 1000 + 40_000) as u64
    );
}

/// Per bucket, what a fold at `detail` feeds (merged) and what the fine cells hold (merged):
/// (count, successes, latency values, summed cost) each.
async fn per_bucket(
    store: &SqliteStore,
    granularity: Granularity,
    detail: KeyDetail,
) -> (
    BTreeMap<i64, (u64, u64, u64, f64)>,
    BTreeMap<i64, (u64, u64, u64, f64)>,
) {
    let from = OffsetDateTime::from_unix_timestamp(T0 - 86_400 * 2).expect("test setup");
    let to = OffsetDateTime::from_unix_timestamp(T0 + 86_400 * 2).expect("test setup");
    let all = AnalyticsFilter::default();
    let mut folded: BTreeMap<i64, Rollup> = BTreeMap::new();
    store
        .fold_cells(
            &project(),
            &CellQuery {
                granularity,
                from,
                to,
                filter: &all,
                detail,
            },
            &mut |key, rollup| folded.entry(key.bucket).or_default().merge_encoded(rollup),
        )
        .await
        .expect("test setup");
    let mut fine: BTreeMap<i64, Rollup> = BTreeMap::new();
    for (key, rollup) in store
        .cells(&project(), granularity, from, to, &all)
        .await
        .expect("test setup")
    {
        fine.entry(key.bucket).or_default().merge(&rollup);
    }
    let brief = |m: BTreeMap<i64, Rollup>| {
        m.into_iter()
            .map(|(b, r)| {
                let cost = (r.cost.sum * 1e9).round() / 1e9;
                (b, (r.count, r.successes, r.latency.count(), cost))
            })
            .collect()
    };
    (brief(folded), brief(fine))
}

#[tokio::test]
async fn a_file_from_before_the_rollup_levels_gets_them_computed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.ingest(events(0..400)).await.unwrap();
    let events_path = store.events_path().to_owned();
    store.close().await;

    // Make it a file written before migration 4: no level tables, migration not applied.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", events_path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "DROP TABLE rollups_hour; DROP TABLE rollups_day; DROP TABLE rollup_levels_backfill; \
         DELETE FROM schema_migrations WHERE version = 4;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    for round in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.analytics_schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5]
        );
        // Later ingests add to the computed levels (the second open computes nothing again).
        store
            .ingest(events(400 + round * 100..500 + round * 100))
            .await
            .unwrap();
        for granularity in [Granularity::Hour, Granularity::Day] {
            for detail in [KeyDetail::Bucket, KeyDetail::Prompt] {
                let (folded, fine) = per_bucket(&store, granularity, detail).await;
                assert_eq!(folded, fine, "round {round}, {granularity:?} {detail:?}");
                let total: u64 = folded.values().map(|v| v.0).sum();
                assert_eq!(total, 500 + round as u64 * 100);
            }
        }
        store.close().await;
    }
}
