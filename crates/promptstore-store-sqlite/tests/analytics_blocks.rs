//! Raw events in blocks, through the store's public interface: the newest-first listing
//! over blocks that overlap in time (late, shuffled arrivals), retention that cuts through
//! a block, and a file whose events an earlier version stored as rows.

use std::collections::BTreeMap;

use promptstore_core::analytics::model::{
    AnalyticsFilter, EventRecord, EventRef, IngestOutcome, StoredEvent,
};
use promptstore_core::analytics::store::{
    AnalyticsStore, CollectedBatches, OpenCommit, PreparedBatch,
};
use promptstore_core::model::ProjectId;
use promptstore_core::store::PageRequest;
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{CostSource, Feedback};
use sqlx::Connection;
use time::{Duration, OffsetDateTime};

const T0: i64 = 1_710_021_600;

fn project() -> ProjectId {
    ProjectId("p-blocks".into())
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0).expect("test setup") + Duration::milliseconds(ms)
}

/// Event `i`: 6 prompts, 5 hours, times in a scrambled order; every third in an
/// experiment, some with judgements and metadata.
fn event(i: usize) -> EventRecord {
    let prompt = format!("prompt/{}", i % 6);
    EventRecord {
        project: project(),
        client_id: (i % 9 != 4).then(|| format!("c-{i:06}")),
        prompt_id: format!("id-{prompt}"),
        prompt,
        version: 1 + (i % 3) as u32,
        label: i.is_multiple_of(2).then(|| "production".to_owned()),
        experiment: i.is_multiple_of(3).then(|| "exp".to_owned()),
        arm: i.is_multiple_of(3).then(|| ["a", "b"][i % 2].to_owned()),
        unit_id: Some(format!("user-{}", i % 50)),
        model: if i.is_multiple_of(4) { "m-1" } else { "m-2" }.to_owned(),
        provider: (!i.is_multiple_of(5)).then(|| "openai".to_owned()),
        input_tokens: 100 + i as u64,
        output_tokens: 10 + (i % 7) as u64,
        cached_input_tokens: (i % 4) as u64,
        latency_ms: (!i.is_multiple_of(13)).then_some(100.0 + (i % 97) as f64),
        ttft_ms: i.is_multiple_of(2).then_some(10.0 + (i % 11) as f64),
        cost: (!i.is_multiple_of(8)).then_some(0.001 * (i % 5) as f64),
        cost_source: if i.is_multiple_of(8) {
            CostSource::Unpriced
        } else {
            CostSource::Computed
        },
        success: !i.is_multiple_of(10),
        error_type: i.is_multiple_of(10).then(|| "timeout".to_owned()),
        scores: if i.is_multiple_of(5) {
            BTreeMap::from([("accuracy".to_owned(), (i % 10) as f64 / 10.0)])
        } else {
            BTreeMap::new()
        },
        feedback: i.is_multiple_of(7).then(|| Feedback {
            thumbs_up: Some(i.is_multiple_of(2)),
            rating: None,
            comment: Some(format!("comment {i}")),
        }),
        metadata: if i.is_multiple_of(6) {
            serde_json::json!({"route": format!("/r/{i}"), "n": i})
        } else {
            serde_json::json!({})
        },
        // Scrambled over five hours; several events share a millisecond (ties go by id).
        at: at_ms(((i * 7_919) % (5 * 3_600_000 / 1_000)) as i64 * 1_000),
    }
}

/// A fixed permutation of `0..n` (a multiplicative walk, coprime step).
fn shuffled(n: usize) -> Vec<usize> {
    (0..n).map(|k| (k * 389 + 17) % n).collect()
}

async fn ingest(store: &SqliteStore, events: Vec<EventRecord>) -> Vec<i64> {
    store
        .ingest(events)
        .await
        .expect("test setup")
        .into_iter()
        .map(|o| match o {
            IngestOutcome::Inserted(id) => id,
            IngestOutcome::Duplicate(id) => panic!("unexpected duplicate of {id}"),
        })
        .collect()
}

/// Every page of a listing, with `limit` per page.
async fn list_all(
    store: &SqliteStore,
    filter: &AnalyticsFilter,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    limit: u32,
) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_events(
                &project(),
                filter,
                from,
                to,
                &PageRequest {
                    limit,
                    cursor: cursor.clone(),
                },
            )
            .await
            .expect("listing");
        assert!(page.items.len() <= limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

fn matches(e: &EventRecord, f: &AnalyticsFilter) -> bool {
    let dim = |want: &Option<String>, have: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| have.as_deref().unwrap_or("") == w)
    };
    f.prompt.as_ref().is_none_or(|p| &e.prompt == p)
        && f.version.is_none_or(|v| v == e.version)
        && dim(&f.label, &e.label)
        && f.model.as_ref().is_none_or(|m| &e.model == m)
        && dim(&f.experiment, &e.experiment)
        && dim(&f.arm, &e.arm)
}

#[tokio::test]
async fn listing_pages_through_overlapping_blocks_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    // Shuffled batches of 97: every batch touches most prompts and hours, so blocks
    // overlap in time everywhere.
    let order = shuffled(1_500);
    let mut stored: Vec<StoredEvent> = Vec::new();
    for chunk in order.chunks(97) {
        let batch: Vec<EventRecord> = chunk.iter().map(|&i| event(i)).collect();
        let ids = ingest(&store, batch.clone()).await;
        stored.extend(
            ids.into_iter()
                .zip(batch)
                .map(|(id, event)| StoredEvent { id, event }),
        );
    }
    let filters = [
        AnalyticsFilter::default(),
        AnalyticsFilter {
            prompt: Some("prompt/3".into()),
            ..Default::default()
        },
        AnalyticsFilter {
            label: Some("production".into()),
            model: Some("m-2".into()),
            ..Default::default()
        },
        AnalyticsFilter {
            experiment: Some(String::new()),
            version: Some(2),
            ..Default::default()
        },
        AnalyticsFilter {
            experiment: Some("exp".into()),
            arm: Some("b".into()),
            ..Default::default()
        },
    ];
    let ranges = [
        (None, None),
        (Some(at_ms(3_600_000 + 500)), Some(at_ms(4 * 3_600_000 - 1))),
    ];
    for filter in &filters {
        for (from, to) in ranges {
            let mut expected: Vec<&StoredEvent> = stored
                .iter()
                .filter(|s| {
                    matches(&s.event, filter)
                        && from.is_none_or(|f| s.event.at >= f)
                        && to.is_none_or(|t| s.event.at < t)
                })
                .collect();
            expected.sort_by_key(|s| std::cmp::Reverse((s.event.at, s.id)));
            assert!(expected.len() > 20, "{filter:?}: {}", expected.len());
            for limit in [1, 37, 200] {
                if limit == 1 && expected.len() > 400 {
                    continue;
                }
                let listed = list_all(&store, filter, from, to, limit).await;
                let want: Vec<&StoredEvent> = expected.clone();
                let got: Vec<&StoredEvent> = listed.iter().collect();
                assert_eq!(got.len(), want.len(), "{filter:?} {from:?} limit {limit}");
                assert!(
                    got == want,
                    "{filter:?} {from:?} limit {limit}: listing differs"
                );
            }
        }
    }
    // Look-ups by id and by client id return the whole event.
    for s in stored.iter().step_by(37) {
        let by_id = store
            .get_event(&project(), &EventRef::Id(s.id))
            .await
            .unwrap();
        assert_eq!(by_id.as_ref(), Some(s));
        if let Some(client_id) = &s.event.client_id {
            let by_client = store
                .get_event(&project(), &EventRef::ClientId(client_id.clone()))
                .await
                .unwrap();
            assert_eq!(by_client.as_ref(), Some(s));
        }
    }
    // Ids no event has, and another project's ids, are not found.
    let max = stored.iter().map(|s| s.id).max().unwrap();
    for missing in [0, -5, max + 1, i64::MAX] {
        assert_eq!(
            store
                .get_event(&project(), &EventRef::Id(missing))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .get_event(&ProjectId("other".into()), &EventRef::Id(stored[0].id))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn retention_cuts_through_a_block_at_the_exact_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    // One prompt, one hour, one batch: one block, minute by minute.
    let batch: Vec<EventRecord> = (0..60)
        .map(|m| {
            let mut e = event(6 * m);
            e.prompt = "retained".into();
            e.experiment = None;
            e.arm = None;
            e.at = at_ms(m as i64 * 60_000);
            e
        })
        .collect();
    let ids = ingest(&store, batch.clone()).await;
    // A late judgement on an event that stays, and one on an event that goes.
    let keep = ids[45];
    let judged = store
        .attach(
            &project(),
            &EventRef::Id(keep),
            &BTreeMap::from([("late".to_owned(), 0.5)]),
            None,
        )
        .await
        .unwrap();
    store
        .attach(
            &project(),
            &EventRef::Id(ids[3]),
            &BTreeMap::from([("late".to_owned(), 0.1)]),
            None,
        )
        .await
        .unwrap();

    let bound = at_ms(30 * 60_000);
    assert_eq!(store.prune_events(bound).await.unwrap(), 30);
    assert_eq!(store.prune_events(bound).await.unwrap(), 0);

    let left = list_all(&store, &AnalyticsFilter::default(), None, None, 100).await;
    assert_eq!(left.len(), 30);
    assert!(left.iter().all(|s| s.event.at >= bound));
    for (i, id) in ids.iter().enumerate() {
        let got = store
            .get_event(&project(), &EventRef::Id(*id))
            .await
            .unwrap();
        assert_eq!(got.is_some(), i >= 30, "event {i}");
        let client_id = batch[i].client_id.clone();
        if let Some(client_id) = client_id {
            let got = store
                .get_event(&project(), &EventRef::ClientId(client_id))
                .await
                .unwrap();
            assert_eq!(got.is_some(), i >= 30, "event {i} by client id");
        }
    }
    // The kept event keeps its late judgement; the block's other events are unchanged.
    let again = store
        .get_event(&project(), &EventRef::Id(keep))
        .await
        .unwrap();
    assert_eq!(again, Some(judged));
    let untouched = store
        .get_event(&project(), &EventRef::Id(ids[50]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.event, batch[50]);
    // A client id whose event was pruned may be stored again; a kept one is a duplicate.
    let outcomes = store
        .ingest(vec![batch[2].clone(), batch[40].clone()])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], IngestOutcome::Inserted(id) if id > *ids.iter().max().unwrap()));
    assert_eq!(outcomes[1], IngestOutcome::Duplicate(ids[40]));
}

/// The `events` table of versions before blocks, as its migrations created it.
const ROWS_TABLE: &str = "CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, client_id TEXT,
    prompt_id TEXT NOT NULL, prompt TEXT NOT NULL, version INTEGER NOT NULL, label TEXT,
    experiment TEXT, arm TEXT, unit_id TEXT, model TEXT NOT NULL, provider TEXT,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL, latency_ms REAL, ttft_ms REAL, cost REAL,
    cost_source TEXT NOT NULL, success INTEGER NOT NULL, error_type TEXT, scores TEXT,
    feedback TEXT, metadata TEXT, at INTEGER NOT NULL);
    CREATE UNIQUE INDEX events_by_client_id ON events(project, client_id)
        WHERE client_id IS NOT NULL;
    CREATE INDEX events_by_second ON events(project, at / 1000, id, at);";

fn json_or_null<T: serde::Serialize>(value: &T, empty: bool) -> Option<String> {
    (!empty).then(|| serde_json::to_string(value).expect("test setup"))
}

/// The raw events of the first three hours, folded.
async fn first_hours(store: &SqliteStore) -> promptstore_core::analytics::rollup::Rollup {
    store
        .window(
            &project(),
            &AnalyticsFilter::default(),
            at_ms(0),
            at_ms(3 * 3_600_000),
        )
        .await
        .expect("window")
}

#[tokio::test]
async fn rows_of_an_earlier_version_move_into_blocks_when_the_file_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    let batch: Vec<EventRecord> = shuffled(700).into_iter().map(event).collect();
    let ids = ingest(&store, batch).await;
    store
        .attach(
            &project(),
            &EventRef::Id(ids[10]),
            &BTreeMap::new(),
            Some(&Feedback {
                thumbs_up: None,
                rating: Some(2),
                comment: None,
            }),
        )
        .await
        .unwrap();
    let before = list_all(&store, &AnalyticsFilter::default(), None, None, 200).await;
    let window_before = first_hours(&store).await;
    let events_path = store.events_path().to_owned();
    store.close().await;

    // Rewrite the file as the earlier version left it: the events as rows (with ids that
    // interleave prompts and hours), no blocks, migration 5 not applied.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", events_path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "DROP TABLE event_blocks; DROP TABLE event_client_ids; DROP TABLE event_judgements; \
         DROP TABLE event_sequence; DELETE FROM schema_migrations WHERE version = 5;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(ROWS_TABLE).execute(&mut conn).await.unwrap();
    let mut by_id = before.clone();
    by_id.sort_by_key(|s| s.id);
    for s in &by_id {
        let e = &s.event;
        let metadata_empty = e.metadata.as_object().is_some_and(|m| m.is_empty());
        sqlx::query(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
             ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id)
        .bind(&e.project.0)
        .bind(&e.client_id)
        .bind(&e.prompt_id)
        .bind(&e.prompt)
        .bind(i64::from(e.version))
        .bind(&e.label)
        .bind(&e.experiment)
        .bind(&e.arm)
        .bind(&e.unit_id)
        .bind(&e.model)
        .bind(&e.provider)
        .bind(e.input_tokens as i64)
        .bind(e.output_tokens as i64)
        .bind(e.cached_input_tokens as i64)
        .bind(e.latency_ms)
        .bind(e.ttft_ms)
        .bind(e.cost)
        .bind(match e.cost_source {
            CostSource::Reported => "reported",
            CostSource::Computed => "computed",
            CostSource::Unpriced => "unpriced",
        })
        .bind(e.success)
        .bind(&e.error_type)
        .bind(json_or_null(&e.scores, e.scores.is_empty()))
        .bind(json_or_null(&e.feedback, e.feedback.is_none()))
        .bind(json_or_null(&e.metadata, metadata_empty))
        .bind((e.at.unix_timestamp_nanos() / 1_000_000) as i64)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    for reopen in 0..2 {
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        assert_eq!(
            store.analytics_schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5]
        );
        let max_before = before.iter().map(|s| s.id).max().unwrap();
        // (Without the event the first reopen ingests below.)
        let after: Vec<StoredEvent> =
            list_all(&store, &AnalyticsFilter::default(), None, None, 200)
                .await
                .into_iter()
                .filter(|s| s.id <= max_before)
                .collect();
        assert_eq!(after.len(), before.len(), "reopen {reopen}");
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a, b, "reopen {reopen}: the listing changed");
        }
        for s in before.iter().step_by(23) {
            assert_eq!(
                store
                    .get_event(&project(), &EventRef::Id(s.id))
                    .await
                    .unwrap()
                    .as_ref(),
                Some(s)
            );
        }
        let window_after = first_hours(&store).await;
        assert_eq!(window_after.count, window_before.count);
        assert_eq!(window_after.feedback, window_before.feedback);
        // Client ids still deduplicate, and new ids continue after the moved ones.
        let mut new = event(5_000 + reopen);
        new.at = at_ms(5 * 3_600_000);
        let outcomes = store.ingest(vec![event(1), new]).await.unwrap();
        let first = shuffled(700).iter().position(|&i| i == 1).unwrap();
        assert_eq!(outcomes[0], IngestOutcome::Duplicate(ids[first]));
        assert!(
            matches!(outcomes[1], IngestOutcome::Inserted(id) if id > max_before),
            "{outcomes:?}"
        );
        store.close().await;
    }
    let names: Vec<String> = {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", events_path.display()))
                .await
                .unwrap();
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    assert!(!names.contains(&"events".to_owned()), "{names:?}");
}

/// The cells of a store, per hour bucket: (count, successes, cost rounded).
async fn hour_cells(store: &SqliteStore) -> BTreeMap<i64, (u64, u64, i64)> {
    let mut cells = BTreeMap::new();
    for (key, rollup) in store
        .cells(
            &project(),
            promptstore_core::analytics::model::Granularity::Hour,
            at_ms(-3_600_000),
            at_ms(6 * 3_600_000),
            &AnalyticsFilter::default(),
        )
        .await
        .expect("cells")
    {
        let cell = cells.entry(key.bucket).or_insert((0, 0, 0));
        cell.0 += rollup.count;
        cell.1 += rollup.successes;
        cell.2 += (rollup.cost.sum * 1e6).round() as i64;
    }
    cells
}

/// Batches prepared by their requests and committed together store what one batch of
/// the same events stores; duplicates across batches and against stored events, and
/// batches that were not prepared, take the commit's own planning and agree with it too.
#[tokio::test]
async fn prepared_batches_commit_like_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let together = SqliteStore::open(&dir.path().join("together.db"))
        .await
        .unwrap();
    let single = SqliteStore::open(&dir.path().join("single.db"))
        .await
        .unwrap();
    let order = shuffled(900);
    let batch = |range: std::ops::Range<usize>| -> Vec<EventRecord> {
        order[range].iter().map(|&i| event(i)).collect()
    };
    let all: Vec<EventRecord> = batch(0..900);

    // Three prepared batches in one commit, against one batch of all of them.
    let prepared = vec![
        together.prepare(batch(0..300)),
        together.prepare(batch(300..650)),
        together.prepare(batch(650..900)),
    ];
    assert!(prepared.iter().all(|b| b.work.is_some()));
    let a = together.ingest_prepared(prepared).await.unwrap();
    let b = single.ingest(all.clone()).await.unwrap();
    assert_eq!(a, b);
    let list_a = list_all(&together, &AnalyticsFilter::default(), None, None, 200).await;
    let list_b = list_all(&single, &AnalyticsFilter::default(), None, None, 200).await;
    assert!(list_a == list_b, "the listings differ");
    assert_eq!(hour_cells(&together).await, hour_cells(&single).await);

    // A client id repeated in a later batch of the same commit, one already stored, and a
    // batch nobody prepared.
    let fresh = |i: usize| {
        let mut e = event(i);
        e.client_id = Some(format!("again-{i}"));
        e
    };
    let first = vec![fresh(10_000), fresh(10_001)];
    let second = vec![fresh(10_001), all[5].clone(), fresh(10_002)];
    let third = vec![fresh(10_003)];
    let outcomes = together
        .ingest_prepared(vec![
            together.prepare(first.clone()),
            together.prepare(second.clone()),
            PreparedBatch::plain(third.clone()),
        ])
        .await
        .unwrap();
    let expected = single
        .ingest(first.into_iter().chain(second).chain(third).collect())
        .await
        .unwrap();
    assert_eq!(outcomes, expected);
    let IngestOutcome::Inserted(first_id) = outcomes[1] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(outcomes[2], IngestOutcome::Duplicate(first_id));
    assert_eq!(outcomes[3], b[5].into_duplicate());
    assert_eq!(hour_cells(&together).await, hour_cells(&single).await);

    // Prepared batches that repeat nothing among themselves, but one of whose client ids is
    // stored: the commit, planned as if none were, finds out as it inserts the client ids,
    // undoes that insert and plans again knowing the stored one.
    let stored = (0..all.len())
        .find(|&j| j != 5 && all[j].client_id.is_some())
        .unwrap();
    let fourth = vec![fresh(20_000), fresh(20_001)];
    let fifth = vec![fresh(20_002), all[stored].clone(), fresh(20_003)];
    let outcomes = together
        .ingest_prepared(vec![
            together.prepare(fourth.clone()),
            together.prepare(fifth.clone()),
        ])
        .await
        .unwrap();
    let expected = single
        .ingest(fourth.into_iter().chain(fifth).collect())
        .await
        .unwrap();
    assert_eq!(outcomes, expected);
    assert_eq!(outcomes[3], b[stored].into_duplicate());
    assert_eq!(hour_cells(&together).await, hour_cells(&single).await);
    let list_a = list_all(&together, &AnalyticsFilter::default(), None, None, 500).await;
    let list_b = list_all(&single, &AnalyticsFilter::default(), None, None, 500).await;
    assert!(list_a == list_b, "the listings differ");
    // Each new client id is stored once, under the id its event was given.
    for (outcome, client_id) in outcomes
        .iter()
        .zip(["again-20000", "again-20001", "again-20002"])
    {
        let IngestOutcome::Inserted(id) = outcome else {
            panic!("{outcomes:?}")
        };
        let stored = together
            .get_event(&project(), &EventRef::ClientId(client_id.into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.id, *id);
    }

    // Nothing prepared, nothing to do.
    assert!(
        together
            .ingest_prepared(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}

trait IntoDuplicate {
    fn into_duplicate(self) -> IngestOutcome;
}

impl IntoDuplicate for IngestOutcome {
    fn into_duplicate(self) -> IngestOutcome {
        match self {
            IngestOutcome::Inserted(id) | IngestOutcome::Duplicate(id) => {
                IngestOutcome::Duplicate(id)
            }
        }
    }
}

/// An open commit the store did not open (the trait's default, which only collects its
/// batches) is stored like its batches, prepared or not.
#[tokio::test]
async fn an_open_commit_of_another_kind_is_stored_like_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    let mut commit: Box<dyn OpenCommit> = Box::new(CollectedBatches::default());
    commit.add(store.prepare((0..10).map(event).collect()));
    commit.add(PreparedBatch::plain((10..20).map(event).collect()));
    assert_eq!(commit.events(), 20);
    let outcomes = store.ingest_open(commit).await.unwrap();
    assert_eq!(outcomes.len(), 20);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, IngestOutcome::Inserted(_)))
    );
    let listed = list_all(&store, &AnalyticsFilter::default(), None, None, 100).await;
    assert_eq!(listed.len(), 20);
    // An empty one stores nothing.
    let empty = store.open_commit();
    assert!(store.ingest_open(empty).await.unwrap().is_empty());
}
