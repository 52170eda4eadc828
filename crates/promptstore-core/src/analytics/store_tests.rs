//! The analytics storage conformance suite: what every `AnalyticsStore` backend must do,
//! written once against `&dyn AnalyticsStore` and run by each backend crate through
//! [`analytics_store_test_suite!`](crate::analytics_store_test_suite).
//!
//! Events name made-up project and prompt ids: the analytics store must not need registry
//! rows. The registry store is only read for the audit records of price and alert-rule
//! changes. Event times are whole milliseconds (the precision every backend keeps), and
//! aggregates are compared with the fold of the same events by `Rollup::add`, with sums
//! compared to a relative 1e-9 (their order of addition differs).

// This is test code compiled as a library (feature `testing`): a failed expectation must
// stop the test with a message, which is what unwrap and panic do.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use promptstore_types::{AlertRuleIn, CostSource, Feedback};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::model::{
    AlertEvaluation, AnalyticsFilter, CellKey, EventRecord, EventRef, Granularity, IngestOutcome,
    PriceRecord, StoredEvent,
};
use super::rollup::{Moments, Rollup};
use super::store::{AnalyticsStore, CellQuery, KeyDetail};
use crate::model::{Actor, ProjectId};
use crate::store::{AuditFilter, PageRequest, Store, StoreError};

/// What a backend's test constructor returns: the analytics store, and the registry store
/// whose audit log records analytics changes (often the same object), plus whatever must
/// live as long as they do (a temporary directory).
pub trait AnalyticsFixture {
    fn analytics(&self) -> &dyn AnalyticsStore;
    fn registry(&self) -> &dyn Store;
}

/// Expand to one `#[tokio::test]` per analytics conformance test. `$make` is an expression
/// (it may `.await`) evaluating to an [`AnalyticsFixture`] around fresh, empty stores:
///
/// ```text
/// promptstore_core::analytics_store_test_suite!(fresh_store().await);
/// ```
#[macro_export]
macro_rules! analytics_store_test_suite {
    ($make:expr) => {
        $crate::analytics_store_test_suite!(@each $make;
            ingest_assigns_ids_in_order_and_skips_duplicates,
            stored_events_keep_every_field,
            hour_and_day_cells_equal_the_fold_of_the_events,
            cells_follow_filters,
            folds_give_the_fine_cells_merged_at_every_key_detail,
            cell_ranges_include_from_and_exclude_to,
            attach_by_id_and_client_id_updates_event_and_cells,
            attach_to_an_unknown_event_is_not_found,
            window_folds_the_raw_events,
            experiment_window_folds_the_raw_events_per_arm,
            event_list_is_newest_first_filtered_and_paginated,
            prune_deletes_old_events_and_keeps_cells,
            prices_set_replace_delete_list_and_audit,
            alert_rules_crud_and_audit,
            alert_evaluations_update_state_and_record_transitions,
            analytics_projects_are_isolated,
        );
        $crate::experiment_analytics_test_suite!($make);
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $make;
                $crate::analytics::store_tests::$name(
                    $crate::analytics::store_tests::AnalyticsFixture::analytics(&fixture),
                    $crate::analytics::store_tests::AnalyticsFixture::registry(&fixture),
                )
                .await;
            }
        )+
    };
}

// ---- fixtures ------------------------------------------------------------------------------

/// 2024-03-09T22:00:00Z: two hours before a UTC day boundary.
const T0: i64 = 1_710_021_600;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0).unwrap()
}

fn at(seconds_after_t0: i64) -> OffsetDateTime {
    t0() + Duration::seconds(seconds_after_t0)
}

fn pid(name: &str) -> ProjectId {
    ProjectId(format!("project-{name}"))
}

fn actor(project: &ProjectId) -> Actor {
    Actor {
        project: project.clone(),
        key_id: "analyticskey".to_owned(),
        role: promptstore_types::Role::Admin,
    }
}

/// A plain successful, priced event of prompt `a` version 1.
fn event(project: &ProjectId, when: OffsetDateTime) -> EventRecord {
    EventRecord {
        project: project.clone(),
        client_id: None,
        prompt_id: "prompt-id-a".to_owned(),
        prompt: "a".to_owned(),
        version: 1,
        label: None,
        experiment: None,
        arm: None,
        unit_id: None,
        model: "gpt-4o".to_owned(),
        provider: None,
        input_tokens: 100,
        output_tokens: 20,
        cached_input_tokens: 0,
        latency_ms: Some(120.0),
        ttft_ms: None,
        cost: Some(0.001),
        cost_source: CostSource::Computed,
        success: true,
        error_type: None,
        scores: BTreeMap::new(),
        feedback: None,
        metadata: json!({}),
        at: when,
    }
}

fn with_client_id(mut e: EventRecord, id: &str) -> EventRecord {
    e.client_id = Some(id.to_owned());
    e
}

/// SplitMix64: seeded, so the generated data is the same on every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A varied event within 52 hours of `T0` (so across three UTC day boundaries): several
/// prompts, versions, labels, models, arms; failures, unpriced models, scores, feedback.
fn varied_event(project: &ProjectId, rng: &mut Rng, i: usize) -> EventRecord {
    let prompt = rng.pick(&["a", "b", "support/triage"]);
    let mut e = event(
        project,
        at(rng.below(52 * 3600) as i64) + Duration::milliseconds(rng.below(1000) as i64),
    );
    e.client_id = Some(format!("c-{i}"));
    e.prompt_id = format!("id-{prompt}");
    e.prompt = prompt.to_owned();
    e.version = 1 + rng.below(3) as u32;
    e.label = match rng.below(3) {
        0 => None,
        1 => Some("production".to_owned()),
        _ => Some("staging".to_owned()),
    };
    e.model = rng.pick(&["gpt-4o", "claude-x", "local-llama"]).to_owned();
    if rng.below(4) == 0 {
        e.experiment = Some("exp-1".to_owned());
        e.arm = Some(rng.pick(&["control", "treatment"]).to_owned());
    }
    e.unit_id = Some(format!("user-{}", rng.below(20)));
    e.input_tokens = 50 + rng.below(2000);
    e.output_tokens = rng.below(500);
    e.cached_input_tokens = rng.below(50);
    e.latency_ms = (rng.below(10) != 0).then(|| 10.0 + rng.below(5000) as f64 / 3.0);
    e.ttft_ms = (rng.below(2) == 0).then(|| 5.0 + rng.below(400) as f64);
    if e.model == "local-llama" {
        e.cost = None;
        e.cost_source = CostSource::Unpriced;
    } else {
        e.cost = Some(rng.below(10_000) as f64 / 1e6);
        e.cost_source = if rng.below(2) == 0 {
            CostSource::Reported
        } else {
            CostSource::Computed
        };
    }
    if rng.below(5) == 0 {
        e.success = false;
        e.error_type = match rng.below(3) {
            0 => None,
            1 => Some("timeout".to_owned()),
            _ => Some("rate_limit".to_owned()),
        };
    }
    if rng.below(2) == 0 {
        e.scores
            .insert("accuracy".to_owned(), rng.below(100) as f64 / 100.0);
    }
    if rng.below(3) == 0 {
        e.scores.insert("relevance".to_owned(), rng.below(5) as f64);
    }
    e.feedback = match rng.below(4) {
        0 => Some(Feedback {
            thumbs_up: Some(rng.below(2) == 0),
            rating: None,
            comment: None,
        }),
        1 => Some(Feedback {
            thumbs_up: None,
            rating: Some(1 + rng.below(5) as u8),
            comment: Some("ok".to_owned()),
        }),
        _ => None,
    };
    if rng.below(3) == 0 {
        e.metadata = json!({"region": "eu", "n": i});
    }
    e
}

fn varied_events(project: &ProjectId, n: usize, seed: u64) -> Vec<EventRecord> {
    let mut rng = Rng(seed);
    (0..n).map(|i| varied_event(project, &mut rng, i)).collect()
}

fn inserted_ids(outcomes: &[IngestOutcome]) -> Vec<i64> {
    outcomes
        .iter()
        .map(|o| match o {
            IngestOutcome::Inserted(id) => *id,
            IngestOutcome::Duplicate(id) => panic!("unexpected duplicate of {id}"),
        })
        .collect()
}

/// Ingest and expect every event to be inserted; returns the stored events.
async fn ingest_all(store: &dyn AnalyticsStore, events: Vec<EventRecord>) -> Vec<StoredEvent> {
    let outcomes = store.ingest(events.clone()).await.unwrap();
    inserted_ids(&outcomes)
        .into_iter()
        .zip(events)
        .map(|(id, event)| StoredEvent { id, event })
        .collect()
}

fn bucket_of(granularity: Granularity, t: OffsetDateTime) -> i64 {
    let size = match granularity {
        Granularity::Hour => 3600,
        Granularity::Day => 86_400,
    };
    t.unix_timestamp().div_euclid(size) * size
}

fn key_of(granularity: Granularity, e: &EventRecord) -> CellKey {
    CellKey {
        bucket: bucket_of(granularity, e.at),
        prompt_id: e.prompt_id.clone(),
        prompt: e.prompt.clone(),
        version: e.version,
        label: e.label.clone().unwrap_or_default(),
        model: e.model.clone(),
        experiment: e.experiment.clone().unwrap_or_default(),
        arm: e.arm.clone().unwrap_or_default(),
    }
}

/// The cells the events should produce, by `Rollup::add`.
fn expected_cells<'a>(
    granularity: Granularity,
    events: impl IntoIterator<Item = &'a EventRecord>,
) -> BTreeMap<CellKey, Rollup> {
    let mut cells: BTreeMap<CellKey, Rollup> = BTreeMap::new();
    for e in events {
        cells.entry(key_of(granularity, e)).or_default().add(e);
    }
    cells
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_moments_close(actual: &Moments, expected: &Moments, what: &str) {
    assert_eq!(actual.count, expected.count, "{what}: count");
    assert!(
        close(actual.sum, expected.sum),
        "{what}: sum {} vs {}",
        actual.sum,
        expected.sum
    );
    assert!(
        close(actual.sum_sq, expected.sum_sq),
        "{what}: sum of squares {} vs {}",
        actual.sum_sq,
        expected.sum_sq
    );
}

/// Equal as summaries: counts exact, sketches the same distribution, sums within 1e-9.
fn assert_rollup_close(actual: &Rollup, expected: &Rollup, what: &str) {
    assert_eq!(actual.count, expected.count, "{what}: count");
    assert_eq!(actual.successes, expected.successes, "{what}: successes");
    assert_eq!(
        actual.error_types, expected.error_types,
        "{what}: error types"
    );
    assert!(
        actual.latency.same_distribution(&expected.latency),
        "{what}: latency sketch"
    );
    assert_moments_close(&actual.latency_moments, &expected.latency_moments, what);
    assert!(
        actual.ttft.same_distribution(&expected.ttft),
        "{what}: ttft sketch"
    );
    assert_eq!(
        (
            actual.input_tokens,
            actual.output_tokens,
            actual.cached_input_tokens
        ),
        (
            expected.input_tokens,
            expected.output_tokens,
            expected.cached_input_tokens
        ),
        "{what}: tokens"
    );
    assert_moments_close(&actual.cost, &expected.cost, &format!("{what}: cost"));
    assert_eq!(actual.unpriced, expected.unpriced, "{what}: unpriced");
    assert_eq!(
        actual.unpriced_models, expected.unpriced_models,
        "{what}: unpriced models"
    );
    assert_eq!(
        actual.scores.keys().collect::<Vec<_>>(),
        expected.scores.keys().collect::<Vec<_>>(),
        "{what}: score names"
    );
    for (name, m) in &expected.scores {
        assert_moments_close(&actual.scores[name], m, &format!("{what}: score {name}"));
    }
    assert_eq!(actual.feedback, expected.feedback, "{what}: feedback");
}

fn assert_cells_match(
    actual: Vec<(CellKey, Rollup)>,
    expected: &BTreeMap<CellKey, Rollup>,
    what: &str,
) {
    let actual: BTreeMap<CellKey, Rollup> = actual.into_iter().collect();
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: the cell keys"
    );
    for (key, rollup) in expected {
        assert_rollup_close(&actual[key], rollup, &format!("{what}: {key:?}"));
    }
}

fn far_past() -> OffsetDateTime {
    t0() - Duration::days(30)
}

fn far_future() -> OffsetDateTime {
    t0() + Duration::days(30)
}

async fn all_cells(
    store: &dyn AnalyticsStore,
    project: &ProjectId,
    granularity: Granularity,
    filter: &AnalyticsFilter,
) -> Vec<(CellKey, Rollup)> {
    store
        .cells(project, granularity, far_past(), far_future(), filter)
        .await
        .unwrap()
}

fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

fn price(model: &str, input: f64, from: OffsetDateTime) -> PriceRecord {
    PriceRecord {
        model: model.to_owned(),
        input_per_mtok: input,
        output_per_mtok: input * 4.0,
        cached_input_per_mtok: Some(input / 2.0),
        effective_from: from,
    }
}

fn rule(name: &str, enabled: bool) -> AlertRuleIn {
    AlertRuleIn {
        name: name.to_owned(),
        metric: "error_rate".to_owned(),
        prompt: Some("a".to_owned()),
        label: None,
        comparison: "gt".to_owned(),
        threshold: 0.25,
        window_minutes: 15,
        min_sample: 10,
        enabled,
    }
}

async fn audit_actions(registry: &dyn Store, project: &ProjectId) -> Vec<(String, String)> {
    registry
        .list_audit(
            project,
            &AuditFilter::default(),
            &PageRequest {
                cursor: None,
                limit: 200,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .rev()
        .map(|e| (e.action, e.object_id))
        .collect()
}

// ---- ingest ----------------------------------------------------------------------------------

pub async fn ingest_assigns_ids_in_order_and_skips_duplicates(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    assert_eq!(store.ingest(vec![]).await.unwrap(), vec![]);

    let batch = vec![
        with_client_id(event(&p, at(1)), "a"),
        with_client_id(event(&p, at(2)), "b"),
        with_client_id(event(&p, at(3)), "a"),
        event(&p, at(4)),
        event(&p, at(5)),
    ];
    let outcomes = store.ingest(batch).await.unwrap();
    let [
        IngestOutcome::Inserted(a),
        IngestOutcome::Inserted(b),
        IngestOutcome::Duplicate(a_again),
        IngestOutcome::Inserted(x),
        IngestOutcome::Inserted(y),
    ] = outcomes[..]
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!(
        a_again, a,
        "a duplicate within the batch names the first event"
    );
    assert!(
        a < b && b < x && x < y,
        "ids increase in batch order: {outcomes:?}"
    );

    // Across batches, and the same client id in another project is another event.
    let outcomes = store
        .ingest(vec![
            with_client_id(event(&p, at(6)), "b"),
            with_client_id(event(&p, at(7)), "c"),
            with_client_id(event(&pid("p2"), at(8)), "a"),
            with_client_id(event(&p, at(9)), "c"),
        ])
        .await
        .unwrap();
    let [
        IngestOutcome::Duplicate(b_again),
        IngestOutcome::Inserted(c),
        IngestOutcome::Inserted(other),
        IngestOutcome::Duplicate(c_again),
    ] = outcomes[..]
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!((b_again, c_again), (b, c));
    assert!(c > y && other > c);

    // The first of the duplicates was stored, and counted once.
    let stored = store
        .get_event(&p, &EventRef::ClientId("a".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.id, stored.event.at), (a, at(1)));
    let hour = all_cells(store, &p, Granularity::Hour, &AnalyticsFilter::default()).await;
    assert_eq!(hour.len(), 1);
    assert_eq!(
        hour[0].1.count, 5,
        "a, b, x, y, c: duplicates are not counted"
    );
    let day = all_cells(store, &p, Granularity::Day, &AnalyticsFilter::default()).await;
    assert_eq!(day.iter().map(|(_, r)| r.count).sum::<u64>(), 5);
}

pub async fn stored_events_keep_every_field(store: &dyn AnalyticsStore, _registry: &dyn Store) {
    let p = pid("p1");
    let full = EventRecord {
        project: p.clone(),
        client_id: Some("client-1".into()),
        prompt_id: "0190-uuid".into(),
        prompt: "support/triage".into(),
        version: 7,
        label: Some("production".into()),
        experiment: Some("exp".into()),
        arm: Some("treatment".into()),
        unit_id: Some("user-9".into()),
        model: "claude-x".into(),
        provider: Some("anthropic".into()),
        input_tokens: 1234,
        output_tokens: 56,
        cached_input_tokens: 1000,
        latency_ms: Some(812.5),
        ttft_ms: Some(95.25),
        cost: Some(0.004_321),
        cost_source: CostSource::Reported,
        success: false,
        error_type: Some("invalid_output".into()),
        scores: BTreeMap::from([("accuracy".into(), 0.5), ("f1".into(), -1.25)]),
        feedback: Some(Feedback {
            thumbs_up: Some(false),
            rating: Some(2),
            comment: Some("wrong queue ✗".into()),
        }),
        metadata: json!({"region": "eu", "nested": {"list": [1, 2, 3]}}),
        at: at(0) + Duration::milliseconds(123),
    };
    let mut bare = event(&p, at(10));
    bare.model = String::new();
    bare.cost = None;
    bare.cost_source = CostSource::Unpriced;
    bare.latency_ms = None;
    let mut empty_feedback = event(&p, at(20));
    empty_feedback.feedback = Some(Feedback::default());

    let stored = ingest_all(store, vec![full, bare, empty_feedback]).await;
    for s in &stored {
        let got = store.get_event(&p, &EventRef::Id(s.id)).await.unwrap();
        assert_eq!(
            got.as_ref(),
            Some(s),
            "event {} reads back as ingested",
            s.id
        );
    }
    let by_client = store
        .get_event(&p, &EventRef::ClientId("client-1".into()))
        .await
        .unwrap();
    assert_eq!(by_client.as_ref(), Some(&stored[0]));
    assert_eq!(
        store
            .get_event(&p, &EventRef::Id(stored[2].id + 100))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_event(&p, &EventRef::ClientId("nope".into()))
            .await
            .unwrap(),
        None
    );
}

// ---- cells -----------------------------------------------------------------------------------

pub async fn hour_and_day_cells_equal_the_fold_of_the_events(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let events = varied_events(&p, 600, 7);
    // Several batches, the later ones resending some earlier client ids.
    let mut stored = Vec::new();
    for (i, chunk) in events.chunks(150).enumerate() {
        let mut batch = chunk.to_vec();
        if i > 0 {
            batch.push(events[i * 10].clone());
        }
        let outcomes = store.ingest(batch.clone()).await.unwrap();
        for (outcome, e) in outcomes.iter().zip(batch) {
            if let IngestOutcome::Inserted(_) = outcome {
                stored.push(e);
            }
        }
    }
    assert_eq!(
        stored.len(),
        events.len(),
        "resent events are not stored twice"
    );

    for granularity in [Granularity::Hour, Granularity::Day] {
        let expected = expected_cells(granularity, &events);
        let actual = all_cells(store, &p, granularity, &AnalyticsFilter::default()).await;
        assert_cells_match(actual, &expected, &format!("{granularity:?}"));
    }
    let days = all_cells(store, &p, Granularity::Day, &AnalyticsFilter::default()).await;
    let buckets: std::collections::BTreeSet<i64> = days.iter().map(|(k, _)| k.bucket).collect();
    assert_eq!(buckets.len(), 4, "52 hours from 22:00 touch four UTC days");
}

/// Which events a filter should keep.
type Keep = Box<dyn Fn(&EventRecord) -> bool>;

pub async fn cells_follow_filters(store: &dyn AnalyticsStore, _registry: &dyn Store) {
    let p = pid("p1");
    let events = varied_events(&p, 300, 11);
    ingest_all(store, events.clone()).await;

    let filters: Vec<(AnalyticsFilter, Keep)> = vec![
        (
            AnalyticsFilter {
                prompt: Some("b".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.prompt == "b"),
        ),
        (
            AnalyticsFilter {
                prompt: Some("a".into()),
                version: Some(2),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.prompt == "a" && e.version == 2),
        ),
        (
            AnalyticsFilter {
                label: Some("production".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.label.as_deref() == Some("production")),
        ),
        (
            AnalyticsFilter {
                model: Some("local-llama".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.model == "local-llama"),
        ),
        (
            AnalyticsFilter {
                experiment: Some("exp-1".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.experiment.as_deref() == Some("exp-1")),
        ),
        (
            AnalyticsFilter {
                prompt: Some("support/triage".into()),
                label: Some("staging".into()),
                model: Some("gpt-4o".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| {
                e.prompt == "support/triage"
                    && e.label.as_deref() == Some("staging")
                    && e.model == "gpt-4o"
            }),
        ),
        (
            AnalyticsFilter {
                prompt: Some("missing".into()),
                ..Default::default()
            },
            Box::new(|_: &EventRecord| false),
        ),
    ];
    for (filter, keep) in &filters {
        let kept: Vec<&EventRecord> = events.iter().filter(|e| keep(e)).collect();
        for granularity in [Granularity::Hour, Granularity::Day] {
            let expected = expected_cells(granularity, kept.iter().copied());
            let actual = all_cells(store, &p, granularity, filter).await;
            assert_cells_match(actual, &expected, &format!("{filter:?} {granularity:?}"));
        }
    }
}

/// The part of a cell's key a fold at `detail` promises (the rest empty, version 0).
fn detail_key(detail: KeyDetail, key: &CellKey) -> CellKey {
    let mut out = CellKey {
        bucket: key.bucket,
        prompt_id: String::new(),
        prompt: String::new(),
        version: 0,
        label: String::new(),
        model: String::new(),
        experiment: String::new(),
        arm: String::new(),
    };
    match detail {
        KeyDetail::Bucket => out,
        KeyDetail::Prompt => {
            out.prompt = key.prompt.clone();
            out
        }
        KeyDetail::Full => key.clone(),
    }
}

/// What a fold feeds, merged per (bucket, the key parts `detail` promises).
async fn fold_merged(
    store: &dyn AnalyticsStore,
    project: &ProjectId,
    query: &CellQuery<'_>,
) -> BTreeMap<CellKey, Rollup> {
    let mut merged: BTreeMap<CellKey, Rollup> = BTreeMap::new();
    let detail = query.detail;
    store
        .fold_cells(project, query, &mut |key, rollup| {
            merged
                .entry(detail_key(detail, key))
                .or_default()
                .merge_encoded(rollup)
        })
        .await
        .unwrap();
    merged
}

/// Whatever cells a store feeds (fine cells or a roll-up level it keeps), merged per bucket
/// and needed key parts they equal the fold of the events — after several batches and late
/// judgements too — for every filter, range and key detail.
pub async fn folds_give_the_fine_cells_merged_at_every_key_detail(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let events = varied_events(&p, 450, 23);
    let mut stored = Vec::new();
    for chunk in events.chunks(150) {
        stored.extend(ingest_all(store, chunk.to_vec()).await);
    }
    // Late judgements move contributions inside every level.
    let late = BTreeMap::from([("accuracy".to_owned(), 0.25), ("late".to_owned(), 2.0)]);
    let thumbs_down = Feedback {
        thumbs_up: Some(false),
        rating: None,
        comment: None,
    };
    for s in stored.iter_mut().step_by(7) {
        store
            .attach(&p, &EventRef::Id(s.id), &late, Some(&thumbs_down))
            .await
            .unwrap();
        s.event.scores.extend(late.clone());
        s.event.feedback = Some(thumbs_down.clone());
    }
    let events: Vec<EventRecord> = stored.into_iter().map(|s| s.event).collect();
    // Noise in another project.
    ingest_all(store, varied_events(&pid("p2"), 100, 24)).await;

    let filters: Vec<(AnalyticsFilter, Keep)> = vec![
        (AnalyticsFilter::default(), Box::new(|_: &EventRecord| true)),
        (
            AnalyticsFilter {
                prompt: Some("b".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.prompt == "b"),
        ),
        (
            AnalyticsFilter {
                prompt: Some("missing".into()),
                ..Default::default()
            },
            Box::new(|_: &EventRecord| false),
        ),
        (
            AnalyticsFilter {
                model: Some("gpt-4o".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.model == "gpt-4o"),
        ),
        (
            AnalyticsFilter {
                prompt: Some("a".into()),
                experiment: Some("exp-1".into()),
                ..Default::default()
            },
            Box::new(|e: &EventRecord| e.prompt == "a" && e.experiment.as_deref() == Some("exp-1")),
        ),
    ];
    // The whole data, and a range that cuts it (bucket starts in [from, to)).
    let ranges = [(far_past(), far_future()), (at(5 * 3600), at(30 * 3600))];
    for (filter, keep) in &filters {
        for granularity in [Granularity::Hour, Granularity::Day] {
            for (from, to) in ranges {
                for detail in [KeyDetail::Bucket, KeyDetail::Prompt, KeyDetail::Full] {
                    let (lo, hi) = (from.unix_timestamp(), to.unix_timestamp());
                    let mut expected: BTreeMap<CellKey, Rollup> = BTreeMap::new();
                    for e in events.iter().filter(|e| keep(e)) {
                        let key = key_of(granularity, e);
                        if (lo..hi).contains(&key.bucket) {
                            expected.entry(detail_key(detail, &key)).or_default().add(e);
                        }
                    }
                    let query = CellQuery {
                        granularity,
                        from,
                        to,
                        filter,
                        detail,
                    };
                    let actual = fold_merged(store, &p, &query).await;
                    assert_cells_match(
                        actual.into_iter().collect(),
                        &expected,
                        &format!("{filter:?} {granularity:?} {detail:?} {from}..{to}"),
                    );
                }
            }
        }
    }
}

pub async fn cell_ranges_include_from_and_exclude_to(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    // One event in each of the hours 22:00, 23:00, 00:00 (next day), 01:00.
    let events: Vec<EventRecord> = (0..4).map(|h| event(&p, at(h * 3600 + 1800))).collect();
    ingest_all(store, events).await;
    let f = AnalyticsFilter::default();
    let buckets = |cells: Vec<(CellKey, Rollup)>| -> Vec<i64> {
        cells
            .into_iter()
            .map(|(k, _)| (k.bucket - T0) / 3600)
            .collect()
    };

    let hours = store
        .cells(&p, Granularity::Hour, at(0), at(2 * 3600), &f)
        .await
        .unwrap();
    assert_eq!(buckets(hours), vec![0, 1], "from inclusive, to exclusive");
    let hours = store
        .cells(
            &p,
            Granularity::Hour,
            at(0) + Duration::milliseconds(1),
            at(2 * 3600 + 1),
            &f,
        )
        .await
        .unwrap();
    assert_eq!(
        buckets(hours),
        vec![1, 2],
        "a bucket starting before `from` is outside"
    );
    let hours = store
        .cells(&p, Granularity::Hour, at(3600), at(3600), &f)
        .await
        .unwrap();
    assert!(hours.is_empty(), "an empty range has no cells");

    let day_start = at(2 * 3600);
    let days = store
        .cells(
            &p,
            Granularity::Day,
            day_start - Duration::days(1),
            day_start,
            &f,
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].1.count, 2, "22:00 and 23:00 are in the first day");
    let days = store
        .cells(
            &p,
            Granularity::Day,
            day_start,
            day_start + Duration::days(1),
            &f,
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].1.count, 2, "00:00 and 01:00 are in the next day");
    assert_eq!(days[0].0.bucket, day_start.unix_timestamp());
}

// ---- late judgements -------------------------------------------------------------------------

pub async fn attach_by_id_and_client_id_updates_event_and_cells(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let mut first = with_client_id(event(&p, at(10)), "gen-1");
    first.scores = BTreeMap::from([("accuracy".into(), 0.2), ("tone".into(), 1.0)]);
    first.feedback = Some(Feedback {
        thumbs_up: Some(true),
        rating: None,
        comment: None,
    });
    let second = with_client_id(event(&p, at(20)), "gen-2");
    let mut stored = ingest_all(store, vec![first, second]).await;

    // By server id: scores merge (same name replaces), feedback replaces.
    let scores = BTreeMap::from([("accuracy".into(), 0.9), ("helpful".into(), 4.0)]);
    let feedback = Feedback {
        thumbs_up: Some(false),
        rating: Some(1),
        comment: Some("no".into()),
    };
    let updated = store
        .attach(&p, &EventRef::Id(stored[0].id), &scores, Some(&feedback))
        .await
        .unwrap();
    stored[0].event.scores = BTreeMap::from([
        ("accuracy".into(), 0.9),
        ("helpful".into(), 4.0),
        ("tone".into(), 1.0),
    ]);
    stored[0].event.feedback = Some(feedback);
    assert_eq!(updated, stored[0]);
    assert_eq!(
        store
            .get_event(&p, &EventRef::Id(stored[0].id))
            .await
            .unwrap()
            .as_ref(),
        Some(&stored[0])
    );

    // By client id, scores only: the feedback stays.
    let updated = store
        .attach(
            &p,
            &EventRef::ClientId("gen-2".into()),
            &BTreeMap::from([("accuracy".into(), 0.5)]),
            None,
        )
        .await
        .unwrap();
    stored[1].event.scores = BTreeMap::from([("accuracy".into(), 0.5)]);
    assert_eq!(updated, stored[1]);

    // Feedback only, on an event that had none.
    let rating = Feedback {
        thumbs_up: None,
        rating: Some(5),
        comment: None,
    };
    store
        .attach(
            &p,
            &EventRef::ClientId("gen-2".into()),
            &BTreeMap::new(),
            Some(&rating),
        )
        .await
        .unwrap();
    stored[1].event.feedback = Some(rating);

    let now: Vec<EventRecord> = stored.iter().map(|s| s.event.clone()).collect();
    for granularity in [Granularity::Hour, Granularity::Day] {
        let expected = expected_cells(granularity, &now);
        let actual = all_cells(store, &p, granularity, &AnalyticsFilter::default()).await;
        assert_cells_match(actual, &expected, &format!("after attach, {granularity:?}"));
    }
    let hour = all_cells(store, &p, Granularity::Hour, &AnalyticsFilter::default()).await;
    let r = &hour[0].1;
    assert_eq!(
        r.feedback.thumbs_up, 0,
        "the replaced thumbs up is taken out"
    );
    assert_eq!(r.feedback.thumbs_down, 1);
    assert_eq!(r.feedback.ratings, [1, 0, 0, 0, 1]);
    assert_eq!(r.scores["accuracy"].count, 2);
    assert!(close(r.scores["accuracy"].sum, 1.4));
    assert_eq!(r.count, 2, "attaching never counts an event again");
}

pub async fn attach_to_an_unknown_event_is_not_found(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let stored = ingest_all(store, vec![with_client_id(event(&p, at(0)), "x")]).await;
    let scores = BTreeMap::from([("s".to_owned(), 1.0)]);
    for (project, r) in [
        (p.clone(), EventRef::Id(stored[0].id + 1)),
        (p.clone(), EventRef::ClientId("y".into())),
        (pid("other"), EventRef::Id(stored[0].id)),
        (pid("other"), EventRef::ClientId("x".into())),
    ] {
        let result = store.attach(&project, &r, &scores, None).await;
        assert!(is_not_found(result), "{project:?} {r:?}");
    }
    let unchanged = store
        .get_event(&p, &EventRef::Id(stored[0].id))
        .await
        .unwrap();
    assert_eq!(unchanged.as_ref(), Some(&stored[0]));
}

// ---- raw reads -------------------------------------------------------------------------------

pub async fn window_folds_the_raw_events(store: &dyn AnalyticsStore, _registry: &dyn Store) {
    let p = pid("p1");
    let events = varied_events(&p, 300, 23);
    ingest_all(store, events.clone()).await;
    let from = at(5 * 3600 + 17 * 60);
    let to = at(19 * 3600 + 3 * 60) + Duration::milliseconds(500);
    for filter in [
        AnalyticsFilter::default(),
        AnalyticsFilter {
            prompt: Some("a".into()),
            ..Default::default()
        },
        AnalyticsFilter {
            label: Some("staging".into()),
            model: Some("gpt-4o".into()),
            ..Default::default()
        },
    ] {
        let kept = events.iter().filter(|e| {
            e.at >= from
                && e.at < to
                && filter.prompt.as_ref().is_none_or(|p| &e.prompt == p)
                && filter
                    .label
                    .as_ref()
                    .is_none_or(|l| e.label.as_ref() == Some(l))
                && filter.model.as_ref().is_none_or(|m| &e.model == m)
        });
        let expected = Rollup::of(kept);
        assert!(expected.count > 0, "the window holds events for {filter:?}");
        let actual = store.window(&p, &filter, from, to).await.unwrap();
        assert_rollup_close(&actual, &expected, &format!("window {filter:?}"));
    }
    // Minute precision at the edges: an event exactly at `to` is outside, at `from` inside.
    let q = pid("edges");
    ingest_all(
        store,
        vec![event(&q, at(60)), event(&q, at(120)), event(&q, at(180))],
    )
    .await;
    let w = store
        .window(&q, &AnalyticsFilter::default(), at(120), at(180))
        .await
        .unwrap();
    assert_eq!(w.count, 1);
    let empty = store
        .window(&q, &AnalyticsFilter::default(), at(1000), at(2000))
        .await
        .unwrap();
    assert_eq!(empty, Rollup::default());
}

pub async fn experiment_window_folds_the_raw_events_per_arm(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let events = varied_events(&p, 500, 31);
    let mut stored = ingest_all(store, events).await;
    // A late judgement is in the raw events too.
    let late = BTreeMap::from([("accuracy".to_owned(), 0.75)]);
    let s = stored
        .iter_mut()
        .find(|s| s.event.experiment.is_some())
        .unwrap();
    store
        .attach(&p, &EventRef::Id(s.id), &late, None)
        .await
        .unwrap();
    s.event.scores.extend(late);
    ingest_all(store, varied_events(&pid("p2"), 100, 32)).await;

    // Counts and moments only: the sketches are not promised.
    let without_sketches = |r: &Rollup| {
        let mut r = r.clone();
        r.latency = Default::default();
        r.ttft = Default::default();
        r
    };
    for (from, to) in [
        (far_past(), far_future()),
        (at(3 * 3600 + 17), at(20 * 3600 - 1)),
    ] {
        let mut expected: BTreeMap<String, Rollup> = BTreeMap::new();
        for e in stored.iter().map(|s| &s.event) {
            if e.experiment.as_deref() == Some("exp-1") && e.at >= from && e.at < to {
                expected.entry(e.arm.clone().unwrap()).or_default().add(e);
            }
        }
        assert_eq!(expected.len(), 2, "both arms have events");
        let actual = store
            .experiment_window(&p, "exp-1", from, to)
            .await
            .unwrap();
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        for (arm, rollup) in &expected {
            assert_rollup_close(
                &without_sketches(&actual[arm]),
                &without_sketches(rollup),
                &format!("arm {arm}, {from}..{to}"),
            );
        }
    }
    let none = store
        .experiment_window(&p, "exp-missing", far_past(), far_future())
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn event_list_is_newest_first_filtered_and_paginated(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let mut events: Vec<EventRecord> = (0..25)
        .map(|i| {
            let mut e = event(&p, at(i64::from(i % 7) * 60));
            e.prompt = if i % 3 == 0 { "b".into() } else { "a".into() };
            e
        })
        .collect();
    // Out of order in time: newest first is by time, not by arrival.
    events.reverse();
    let stored = ingest_all(store, events).await;
    let mut expected = stored.clone();
    expected.sort_by_key(|s| std::cmp::Reverse((s.event.at, s.id)));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_events(
                &p,
                &AnalyticsFilter::default(),
                None,
                None,
                &PageRequest { cursor, limit: 10 },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every event once, newest first");

    let filter = AnalyticsFilter {
        prompt: Some("b".into()),
        ..Default::default()
    };
    let page = store
        .list_events(
            &p,
            &filter,
            Some(at(60)),
            Some(at(240)),
            &PageRequest {
                cursor: None,
                limit: 200,
            },
        )
        .await
        .unwrap();
    let want: Vec<StoredEvent> = expected
        .iter()
        .filter(|s| s.event.prompt == "b" && s.event.at >= at(60) && s.event.at < at(240))
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(page.items, want);
    assert_eq!(page.next_cursor, None);

    let bad = store
        .list_events(
            &p,
            &AnalyticsFilter::default(),
            None,
            None,
            &PageRequest {
                cursor: Some("not-a-cursor".into()),
                limit: 10,
            },
        )
        .await;
    assert!(
        matches!(bad, Err(StoreError::InvalidCursor { .. })),
        "{bad:?}"
    );
}

// ---- retention -------------------------------------------------------------------------------

pub async fn prune_deletes_old_events_and_keeps_cells(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let q = pid("p2");
    let mut events = varied_events(&p, 200, 5);
    events.extend(varied_events(&q, 50, 6));
    let stored = ingest_all(store, events).await;
    let hours_before = all_cells(store, &p, Granularity::Hour, &AnalyticsFilter::default()).await;
    let days_before = all_cells(store, &q, Granularity::Day, &AnalyticsFilter::default()).await;

    let cut = at(24 * 3600);
    let old = stored.iter().filter(|s| s.event.at < cut).count() as u64;
    assert!(old > 0 && old < stored.len() as u64);
    assert_eq!(store.prune_events(cut).await.unwrap(), old);
    assert_eq!(
        store.prune_events(cut).await.unwrap(),
        0,
        "nothing left to prune"
    );

    for s in &stored {
        let got = store
            .get_event(&s.event.project, &EventRef::Id(s.id))
            .await
            .unwrap();
        assert_eq!(got.is_some(), s.event.at >= cut, "event at {}", s.event.at);
    }
    let hours_after = all_cells(store, &p, Granularity::Hour, &AnalyticsFilter::default()).await;
    let days_after = all_cells(store, &q, Granularity::Day, &AnalyticsFilter::default()).await;
    assert_eq!(
        hours_after, hours_before,
        "cells keep what the pruned events added"
    );
    assert_eq!(days_after, days_before);

    // A pruned event's id is never handed out again, and late feedback finds nothing.
    let pruned = stored.iter().find(|s| s.event.at < cut).unwrap();
    let scores = BTreeMap::from([("s".to_owned(), 1.0)]);
    assert!(is_not_found(
        store
            .attach(
                &pruned.event.project,
                &EventRef::Id(pruned.id),
                &scores,
                None
            )
            .await
    ));
    let max_id = stored.iter().map(|s| s.id).max().unwrap();
    store.prune_events(far_future()).await.unwrap();
    let fresh = ingest_all(store, vec![event(&p, at(0))]).await;
    assert!(
        fresh[0].id > max_id,
        "ids are not reused after pruning everything"
    );
}

// ---- prices ----------------------------------------------------------------------------------

pub async fn prices_set_replace_delete_list_and_audit(
    store: &dyn AnalyticsStore,
    registry: &dyn Store,
) {
    let p = pid("p1");
    let me = actor(&p);
    let jan = at(0);
    let feb = at(30 * 86_400);

    let first = store
        .set_price(&me, price("gpt-x", 2.5, jan))
        .await
        .unwrap();
    assert_eq!(first, price("gpt-x", 2.5, jan));
    store
        .set_price(&me, price("gpt-x", 3.0, feb))
        .await
        .unwrap();
    store
        .set_price(&me, price("alpha", 1.0, feb))
        .await
        .unwrap();
    // Same model and effective date: replaced, not added.
    let replaced = store
        .set_price(&me, price("gpt-x", 2.0, jan))
        .await
        .unwrap();
    assert_eq!(replaced.input_per_mtok, 2.0);
    store
        .set_price(&actor(&pid("p2")), price("gpt-x", 9.0, jan))
        .await
        .unwrap();

    let listed = store.list_prices(&p).await.unwrap();
    assert_eq!(
        listed,
        vec![
            price("alpha", 1.0, feb),
            price("gpt-x", 2.0, jan),
            price("gpt-x", 3.0, feb)
        ],
        "by model, then effective date"
    );
    let all = store.all_prices().await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.contains(&(pid("p2"), price("gpt-x", 9.0, jan))));

    store.delete_price(&me, "gpt-x").await.unwrap();
    assert_eq!(
        store.list_prices(&p).await.unwrap(),
        vec![price("alpha", 1.0, feb)]
    );
    assert!(is_not_found(store.delete_price(&me, "gpt-x").await));
    assert_eq!(
        store.list_prices(&pid("p2")).await.unwrap().len(),
        1,
        "other projects keep theirs"
    );

    let audit = audit_actions(registry, &p).await;
    let want = |a: &str, o: &str| (a.to_owned(), o.to_owned());
    assert_eq!(
        audit,
        vec![
            want("price.set", "gpt-x"),
            want("price.set", "gpt-x"),
            want("price.set", "alpha"),
            want("price.set", "gpt-x"),
            want("price.deleted", "gpt-x"),
        ]
    );
    let records = registry
        .list_audit(
            &p,
            &AuditFilter {
                action: Some("price.set".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
    let replace = &records[0];
    assert_eq!(replace.actor, "analyticskey");
    assert_eq!(
        replace.before.as_ref().unwrap()["input_per_mtok"],
        json!(2.5)
    );
    assert_eq!(
        replace.after.as_ref().unwrap()["input_per_mtok"],
        json!(2.0)
    );
}

// ---- alerts ----------------------------------------------------------------------------------

pub async fn alert_rules_crud_and_audit(store: &dyn AnalyticsStore, registry: &dyn Store) {
    let p = pid("p1");
    let me = actor(&p);
    let created = store
        .create_alert_rule(&me, rule("errors", true))
        .await
        .unwrap();
    assert_eq!(created.project, p);
    assert_eq!(created.rule, rule("errors", true));
    assert_eq!(created.state, "ok", "a rule starts as ok until evaluated");
    assert_eq!(
        (created.last_value, created.last_evaluated_at),
        (None, None)
    );
    let disabled = store
        .create_alert_rule(&me, rule("quiet", false))
        .await
        .unwrap();
    let other = store
        .create_alert_rule(&actor(&pid("p2")), rule("theirs", true))
        .await
        .unwrap();
    assert!(created.id != disabled.id && disabled.id != other.id);

    assert_eq!(
        store.get_alert_rule(&p, created.id).await.unwrap().as_ref(),
        Some(&created)
    );
    assert_eq!(
        store.list_alert_rules(&p).await.unwrap(),
        vec![created.clone(), disabled.clone()]
    );
    let enabled = store.enabled_alert_rules().await.unwrap();
    let names: Vec<&str> = enabled.iter().map(|r| r.rule.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["errors", "theirs"],
        "enabled rules of every project"
    );

    let mut changed = rule("errors", true);
    changed.threshold = 0.5;
    changed.label = Some("production".into());
    let updated = store
        .update_alert_rule(&me, created.id, changed.clone())
        .await
        .unwrap();
    assert_eq!(updated.rule, changed);
    assert_eq!(
        (updated.id, updated.created_at),
        (created.id, created.created_at)
    );
    assert_eq!(
        store.get_alert_rule(&p, created.id).await.unwrap(),
        Some(updated)
    );
    // Disabling takes it off the worker's list.
    store
        .update_alert_rule(&me, created.id, rule("errors", false))
        .await
        .unwrap();
    assert_eq!(store.enabled_alert_rules().await.unwrap().len(), 1);

    store.delete_alert_rule(&me, disabled.id).await.unwrap();
    assert_eq!(store.get_alert_rule(&p, disabled.id).await.unwrap(), None);
    assert!(is_not_found(
        store.delete_alert_rule(&me, disabled.id).await
    ));
    assert!(is_not_found(
        store
            .update_alert_rule(&me, disabled.id, rule("x", true))
            .await
    ));
    // Another project's rule cannot be seen, changed or deleted.
    assert_eq!(store.get_alert_rule(&p, other.id).await.unwrap(), None);
    assert!(is_not_found(
        store
            .update_alert_rule(&me, other.id, rule("x", true))
            .await
    ));
    assert!(is_not_found(store.delete_alert_rule(&me, other.id).await));
    assert!(
        store
            .get_alert_rule(&pid("p2"), other.id)
            .await
            .unwrap()
            .is_some()
    );

    let id = |r: i64| r.to_string();
    let want = |a: &str, o: String| (a.to_owned(), o);
    assert_eq!(
        audit_actions(registry, &p).await,
        vec![
            want("alert_rule.created", id(created.id)),
            want("alert_rule.created", id(disabled.id)),
            want("alert_rule.updated", id(created.id)),
            want("alert_rule.updated", id(created.id)),
            want("alert_rule.deleted", id(disabled.id)),
        ]
    );
}

pub async fn alert_evaluations_update_state_and_record_transitions(
    store: &dyn AnalyticsStore,
    _registry: &dyn Store,
) {
    let p = pid("p1");
    let me = actor(&p);
    let r1 = store
        .create_alert_rule(&me, rule("errors", true))
        .await
        .unwrap();
    let r2 = store
        .create_alert_rule(&me, rule("latency", true))
        .await
        .unwrap();
    let evaluation =
        |rule_id: i64, state: &str, value: Option<f64>, minute: i64, transition: Option<&str>| {
            AlertEvaluation {
                rule_id,
                state: state.to_owned(),
                value,
                sample: 40,
                at: at(minute * 60),
                transition: transition.map(str::to_owned),
            }
        };

    // No transition: the state is stored, no event.
    let none = store
        .record_alert_evaluation(&p, evaluation(r1.id, "insufficient_data", None, 1, None))
        .await
        .unwrap();
    assert_eq!(none, None);
    let seen = store.get_alert_rule(&p, r1.id).await.unwrap().unwrap();
    assert_eq!(seen.state, "insufficient_data");
    assert_eq!(
        (seen.last_value, seen.last_evaluated_at),
        (None, Some(at(60)))
    );

    // Firing, then resolved: each transition is an event with the value seen.
    let fired = store
        .record_alert_evaluation(
            &p,
            evaluation(r1.id, "firing", Some(0.4), 2, Some("firing")),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            fired.project.clone(),
            fired.rule_id,
            fired.rule_name.as_str(),
            fired.state.as_str()
        ),
        (p.clone(), r1.id, "errors", "firing")
    );
    assert_eq!(
        (fired.value, fired.threshold, fired.sample, fired.at),
        (0.4, 0.25, 40, at(120))
    );
    let seen = store.get_alert_rule(&p, r1.id).await.unwrap().unwrap();
    assert_eq!(
        (seen.state.as_str(), seen.last_value),
        ("firing", Some(0.4))
    );

    store
        .record_alert_evaluation(
            &p,
            evaluation(r2.id, "firing", Some(900.0), 3, Some("firing")),
        )
        .await
        .unwrap();
    let resolved = store
        .record_alert_evaluation(&p, evaluation(r1.id, "ok", Some(0.1), 4, Some("resolved")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.state, "resolved");

    let all = store
        .list_alert_events(&p, None, &PageRequest::default())
        .await
        .unwrap();
    let states: Vec<(i64, &str)> = all
        .items
        .iter()
        .map(|e| (e.rule_id, e.state.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![(r1.id, "resolved"), (r2.id, "firing"), (r1.id, "firing")],
        "newest first"
    );
    assert_eq!(all.items[2], fired);

    let only_r1 = store
        .list_alert_events(&p, Some(r1.id), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(only_r1.items, vec![resolved.clone(), fired.clone()]);

    let first = store
        .list_alert_events(
            &p,
            None,
            &PageRequest {
                cursor: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = store
        .list_alert_events(
            &p,
            None,
            &PageRequest {
                cursor: first.next_cursor,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![fired]);
    assert_eq!(rest.next_cursor, None);

    // History outlives the rule; unknown rules and other projects' rules are not found.
    store.delete_alert_rule(&me, r1.id).await.unwrap();
    let kept = store
        .list_alert_events(&p, Some(r1.id), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 2);
    assert!(is_not_found(
        store
            .record_alert_evaluation(&p, evaluation(r1.id, "ok", Some(0.0), 5, None))
            .await
    ));
    assert!(is_not_found(
        store
            .record_alert_evaluation(
                &pid("p2"),
                evaluation(r2.id, "ok", Some(0.0), 5, Some("resolved"))
            )
            .await
    ));
    let r2_now = store.get_alert_rule(&p, r2.id).await.unwrap().unwrap();
    assert_eq!(
        r2_now.state, "firing",
        "a refused evaluation changes nothing"
    );
}

// ---- isolation -------------------------------------------------------------------------------

pub async fn analytics_projects_are_isolated(store: &dyn AnalyticsStore, _registry: &dyn Store) {
    let mine = pid("mine");
    let theirs = pid("theirs");
    let stored = ingest_all(store, varied_events(&mine, 40, 3)).await;
    store
        .set_price(&actor(&mine), price("m", 1.0, at(0)))
        .await
        .unwrap();
    let rule = store
        .create_alert_rule(&actor(&mine), rule("r", true))
        .await
        .unwrap();
    store
        .record_alert_evaluation(
            &mine,
            AlertEvaluation {
                rule_id: rule.id,
                state: "firing".into(),
                value: Some(1.0),
                sample: 1,
                at: at(0),
                transition: Some("firing".into()),
            },
        )
        .await
        .unwrap();

    let f = AnalyticsFilter::default();
    for s in &stored {
        assert_eq!(
            store.get_event(&theirs, &EventRef::Id(s.id)).await.unwrap(),
            None
        );
        let client = EventRef::ClientId(s.event.client_id.clone().unwrap());
        assert_eq!(store.get_event(&theirs, &client).await.unwrap(), None);
    }
    let page = store
        .list_events(&theirs, &f, None, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
    for granularity in [Granularity::Hour, Granularity::Day] {
        assert!(all_cells(store, &theirs, granularity, &f).await.is_empty());
    }
    assert_eq!(
        store
            .window(&theirs, &f, far_past(), far_future())
            .await
            .unwrap(),
        Rollup::default()
    );
    assert!(store.list_prices(&theirs).await.unwrap().is_empty());
    assert!(store.list_alert_rules(&theirs).await.unwrap().is_empty());
    assert_eq!(store.get_alert_rule(&theirs, rule.id).await.unwrap(), None);
    let events = store
        .list_alert_events(&theirs, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(events.items.is_empty());
    let events = store
        .list_alert_events(&theirs, Some(rule.id), &PageRequest::default())
        .await
        .unwrap();
    assert!(events.items.is_empty());

    // And the owner sees all of it.
    let page = store
        .list_events(
            &mine,
            &f,
            None,
            None,
            &PageRequest {
                cursor: None,
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), stored.len());
    let total: u64 = all_cells(store, &mine, Granularity::Day, &f)
        .await
        .iter()
        .map(|(_, r)| r.count)
        .sum();
    assert_eq!(total, stored.len() as u64);
}
