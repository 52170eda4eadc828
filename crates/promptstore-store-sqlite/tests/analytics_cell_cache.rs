//! The writer's cache of aggregate cells (`analytics/cache.rs`) must never let a cell drift
//! from the events it counts: after many commits into the same cells, late judgements,
//! a reopen, and commits by another connection to the same file, every fine cell and every
//! roll-up level cell must equal the fold of the stored events.

use std::collections::BTreeMap;

use promptstore_core::analytics::model::{
    AnalyticsFilter, CellKey, EventRecord, EventRef, Granularity,
};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::analytics::store::{AnalyticsStore, CellQuery, KeyDetail};
use promptstore_core::model::ProjectId;
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{CostSource, Feedback};
use time::OffsetDateTime;

const T0: i64 = 1_710_021_600;

fn project() -> ProjectId {
    ProjectId("p-cache".into())
}

fn event(i: usize) -> EventRecord {
    let prompt = format!("prompt/{}", i % 4);
    EventRecord {
        project: project(),
        client_id: Some(format!("c-{i}")),
        prompt_id: format!("id-{prompt}"),
        prompt,
        version: 1 + (i % 2) as u32,
        label: i.is_multiple_of(3).then(|| "production".to_owned()),
        experiment: None,
        arm: None,
        unit_id: None,
        model: "gpt-4o".to_owned(),
        provider: None,
        input_tokens: 100 + i as u64,
        output_tokens: 10 + (i % 50) as u64,
        cached_input_tokens: 0,
        latency_ms: Some(100.0 + (i % 400) as f64),
        ttft_ms: None,
        cost: Some(0.001 * (1 + i % 7) as f64),
        cost_source: CostSource::Computed,
        success: !i.is_multiple_of(9),
        error_type: i.is_multiple_of(9).then(|| "timeout".to_owned()),
        scores: if i.is_multiple_of(4) {
            BTreeMap::from([("accuracy".to_owned(), (i % 10) as f64 / 10.0)])
        } else {
            BTreeMap::new()
        },
        feedback: None,
        metadata: serde_json::json!({}),
        // Three hours across a day boundary, so hour and day cells both split.
        at: OffsetDateTime::from_unix_timestamp(T0 - 3_600).expect("test setup")
            + time::Duration::milliseconds(((i * 7_919) % (3 * 3_600_000)) as i64),
    }
}

/// What a cell must hold, compared exactly where it can be and rounded where float sums
/// depend on the order of merging.
type Brief = (u64, u64, u64, u64, i64, u64, i64, [u64; 2]);

fn brief(r: &Rollup) -> Brief {
    let accuracy = r.scores.get("accuracy").copied().unwrap_or_default();
    (
        r.count,
        r.successes,
        r.latency.count(),
        r.input_tokens,
        (r.cost.sum * 1e9).round() as i64,
        accuracy.count,
        (accuracy.sum * 1e9).round() as i64,
        [r.feedback.thumbs_up, r.feedback.thumbs_down],
    )
}

fn bucket(granularity: Granularity, e: &EventRecord) -> i64 {
    let size = match granularity {
        Granularity::Hour => 3_600_000,
        Granularity::Day => 86_400_000,
    };
    let ms = (e.at.unix_timestamp_nanos() / 1_000_000) as i64;
    ms.div_euclid(size) * size / 1000
}

fn range() -> (OffsetDateTime, OffsetDateTime) {
    (
        OffsetDateTime::from_unix_timestamp(T0 - 86_400 * 2).expect("test setup"),
        OffsetDateTime::from_unix_timestamp(T0 + 86_400 * 2).expect("test setup"),
    )
}

/// Every fine cell, and every level a fold reads, equals the fold of `expected`.
async fn assert_cells_fold_the_events(store: &SqliteStore, expected: &[EventRecord], when: &str) {
    let (from, to) = range();
    let all = AnalyticsFilter::default();
    for granularity in [Granularity::Hour, Granularity::Day] {
        let mut want: BTreeMap<CellKey, Rollup> = BTreeMap::new();
        for e in expected {
            let key = CellKey {
                bucket: bucket(granularity, e),
                prompt_id: e.prompt_id.clone(),
                prompt: e.prompt.clone(),
                version: e.version,
                label: e.label.clone().unwrap_or_default(),
                model: e.model.clone(),
                experiment: String::new(),
                arm: String::new(),
            };
            want.entry(key).or_default().add(e);
        }
        let got: BTreeMap<CellKey, Brief> = store
            .cells(&project(), granularity, from, to, &all)
            .await
            .expect("cells")
            .into_iter()
            .map(|(k, r)| (k, brief(&r)))
            .collect();
        let want_fine: BTreeMap<CellKey, Brief> =
            want.iter().map(|(k, r)| (k.clone(), brief(r))).collect();
        assert_eq!(got, want_fine, "{when}: {granularity:?} cells");

        for detail in [KeyDetail::Bucket, KeyDetail::Prompt] {
            let mut folded: BTreeMap<(i64, String), Rollup> = BTreeMap::new();
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
                    &mut |key, rollup| {
                        let prompt = match detail {
                            KeyDetail::Bucket => String::new(),
                            _ => key.prompt.clone(),
                        };
                        folded
                            .entry((key.bucket, prompt))
                            .or_default()
                            .merge_encoded(rollup)
                    },
                )
                .await
                .expect("fold");
            let mut want_levels: BTreeMap<(i64, String), Rollup> = BTreeMap::new();
            for (k, r) in &want {
                let prompt = match detail {
                    KeyDetail::Bucket => String::new(),
                    _ => k.prompt.clone(),
                };
                want_levels.entry((k.bucket, prompt)).or_default().merge(r);
            }
            let brief_all = |m: &BTreeMap<(i64, String), Rollup>| {
                m.iter()
                    .map(|(k, r)| (k.clone(), brief(r)))
                    .collect::<BTreeMap<_, _>>()
            };
            assert_eq!(
                brief_all(&folded),
                brief_all(&want_levels),
                "{when}: {granularity:?} levels at {detail:?}"
            );
        }
    }
}

/// Attach judgements to event `i` in the store and in the expected events.
async fn judge(store: &SqliteStore, expected: &mut [EventRecord], i: usize, score: f64) {
    let scores = BTreeMap::from([("accuracy".to_owned(), score)]);
    let feedback = Feedback {
        thumbs_up: Some(i.is_multiple_of(2)),
        rating: None,
        comment: None,
    };
    store
        .attach(
            &project(),
            &EventRef::ClientId(format!("c-{i}")),
            &scores,
            Some(&feedback),
        )
        .await
        .expect("attach");
    let e = &mut expected[i];
    e.scores.extend(scores);
    e.feedback = Some(feedback);
}

async fn ingest(
    store: &SqliteStore,
    expected: &mut Vec<EventRecord>,
    range: std::ops::Range<usize>,
) {
    let batch: Vec<EventRecord> = range.map(event).collect();
    store.ingest(batch.clone()).await.expect("ingest");
    expected.extend(batch);
}

#[tokio::test]
async fn cells_stay_equal_to_the_events_through_commits_judgements_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promptstore.db");
    let mut expected = Vec::new();
    let store = SqliteStore::open(&path).await.unwrap();
    // Many commits into the same cells: all but the first merge into cached values.
    for k in 0..6 {
        ingest(&store, &mut expected, k * 100..(k + 1) * 100).await;
    }
    assert_cells_fold_the_events(&store, &expected, "after six commits").await;

    // Late judgements change cached cells; the next commits must build on the new values.
    for i in [3, 40, 41, 250, 599] {
        judge(&store, &mut expected, i, 0.25).await;
    }
    assert_cells_fold_the_events(&store, &expected, "after judgements").await;
    ingest(&store, &mut expected, 600..700).await;
    judge(&store, &mut expected, 650, 1.0).await;
    ingest(&store, &mut expected, 700..800).await;
    assert_cells_fold_the_events(&store, &expected, "after commits on judged cells").await;

    // A reopened store starts with no cache and reads the cells back.
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    ingest(&store, &mut expected, 800..900).await;
    judge(&store, &mut expected, 5, 0.5).await;
    ingest(&store, &mut expected, 900..1000).await;
    assert_cells_fold_the_events(&store, &expected, "after a reopen").await;
    store.close().await;
}

#[tokio::test]
async fn commits_by_another_connection_to_the_same_file_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promptstore.db");
    let mut expected = Vec::new();
    let first = SqliteStore::open(&path).await.unwrap();
    ingest(&first, &mut expected, 0..200).await;
    ingest(&first, &mut expected, 200..300).await;

    // Another store on the same files (as another process would be) writes the same cells.
    let second = SqliteStore::open(&path).await.unwrap();
    ingest(&second, &mut expected, 300..500).await;
    judge(&second, &mut expected, 10, 0.75).await;

    // The first store's cached cells are stale now; its next commit must not use them.
    ingest(&first, &mut expected, 500..600).await;
    assert_cells_fold_the_events(&first, &expected, "after the other store wrote").await;
    ingest(&second, &mut expected, 600..700).await;
    ingest(&first, &mut expected, 700..800).await;
    assert_cells_fold_the_events(&second, &expected, "after both wrote again").await;
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn duplicates_and_empty_batches_leave_the_cells_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    let mut expected = Vec::new();
    ingest(&store, &mut expected, 0..100).await;
    // The same client ids again: all duplicates, nothing counted twice.
    store
        .ingest((0..100).map(event).collect())
        .await
        .expect("duplicates");
    store.ingest(Vec::new()).await.expect("empty");
    ingest(&store, &mut expected, 100..200).await;
    assert_cells_fold_the_events(&store, &expected, "after duplicates").await;
    store.close().await;
}
