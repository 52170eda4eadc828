//! The ingest hot path, in the caller's write transaction: find the client ids already
//! stored, drop duplicates, assign ids, insert the rows with multi-row statements, and fold
//! the inserted events into their hour and day cells (read the touched cells, merge, write
//! back). Everything heavy is done in memory; SQLite sees a few statements per thousand
//! events.

use std::collections::HashMap;
use std::sync::LazyLock;

use promptstore_core::analytics::model::{CellKey, EventRecord, Granularity, IngestOutcome};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::store::StoreError;
use sqlx::SqliteConnection;

use super::cache::{CellCache, Staged};
use super::cells::{ProjectCell, bucket_of, merge_into};
use super::multirow::MultiRow;
use super::rows::{EVENT_COLUMN_COUNT, EVENT_COLUMNS, bind_event, encode_json};
use crate::codec::{to_json_text, to_ms};
use crate::error::backend;

/// `OR IGNORE`: a multi-row statement that may abort half-way makes SQLite keep a
/// statement journal (a copy of every page the statement touches, ~20 % of the insert);
/// one that cannot abort needs none. No row is ever ignored in fact — ids are fresh and
/// client ids deduplicated before — and `insert_events` checks that every row went in,
/// failing the whole transaction otherwise.
static INSERT_EVENTS: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        &format!("INSERT OR IGNORE INTO events ({EVENT_COLUMNS})"),
        EVENT_COLUMN_COUNT,
        "",
    )
});

/// Store `events`; see `AnalyticsStore::ingest`. Returns the outcomes and the cells written,
/// which the caller puts in `cache` once the transaction has committed.
pub(crate) async fn ingest(
    conn: &mut SqliteConnection,
    cache: &mut CellCache,
    events: Vec<EventRecord>,
) -> Result<(Vec<IngestOutcome>, Staged), StoreError> {
    let stored = stored_client_ids(conn, &events).await?;
    let mut next_id = next_event_id(conn).await?;

    // Decide every event's fate in batch order: a client id seen before (stored, or earlier
    // in this batch) is a duplicate of that event. The keys borrow from the batch, so this
    // allocates nothing per event; foldhash (seeded per map) hashes them for a fraction of
    // SipHash's cost.
    let mut outcomes = Vec::with_capacity(events.len());
    {
        let mut seen: foldhash::HashMap<(&str, &str), i64> = foldhash::HashMap::default();
        seen.reserve(events.len());
        for event in &events {
            if let Some(client_id) = &event.client_id {
                let key = (event.project.0.as_str(), client_id.as_str());
                if let Some(id) = stored.get(&key).or_else(|| seen.get(&key).copied()) {
                    outcomes.push(IngestOutcome::Duplicate(id));
                    continue;
                }
                seen.insert(key, next_id);
            }
            outcomes.push(IngestOutcome::Inserted(next_id));
            next_id += 1;
        }
    }
    let fresh: Vec<(i64, EventRecord)> = outcomes
        .iter()
        .zip(events)
        .filter_map(|(outcome, event)| match outcome {
            IngestOutcome::Inserted(id) => Some((*id, event)),
            IngestOutcome::Duplicate(_) => None,
        })
        .collect();
    let mut staged = Staged::default();
    if fresh.is_empty() {
        return Ok((outcomes, staged));
    }

    let (hours, days) = fold(&fresh);
    insert_events(conn, fresh).await?;
    merge_into(conn, cache, Granularity::Hour, hours, &mut staged).await?;
    merge_into(conn, cache, Granularity::Day, days, &mut staged).await?;
    Ok((outcomes, staged))
}

/// A cell named by borrowed parts of an event: folding a batch allocates per cell, not per
/// event. (project, bucket, prompt id, prompt, version, label, model, experiment, arm).
type CellRef<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    u32,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

fn cell_ref(e: &EventRecord, bucket: i64) -> CellRef<'_> {
    (
        &e.project.0,
        bucket,
        &e.prompt_id,
        &e.prompt,
        e.version,
        e.label.as_deref().unwrap_or(""),
        &e.model,
        e.experiment.as_deref().unwrap_or(""),
        e.arm.as_deref().unwrap_or(""),
    )
}

fn owned(c: CellRef<'_>) -> ProjectCell {
    let (project, bucket, prompt_id, prompt, version, label, model, experiment, arm) = c;
    (
        project.to_owned(),
        CellKey {
            bucket,
            prompt_id: prompt_id.to_owned(),
            prompt: prompt.to_owned(),
            version,
            label: label.to_owned(),
            model: model.to_owned(),
            experiment: experiment.to_owned(),
            arm: arm.to_owned(),
        },
    )
}

/// The batch's contribution to its hour and day cells: each event is added to its hour
/// cell (`Rollup::add`), and each day cell is the merge of the batch's hour cells inside it
/// (a merge is exact for counts and sketches; sums differ only in the order floats are
/// added), so the per-event work is done once, not once per granularity.
fn fold(
    fresh: &[(i64, EventRecord)],
) -> (HashMap<ProjectCell, Rollup>, HashMap<ProjectCell, Rollup>) {
    let mut hours: foldhash::HashMap<CellRef<'_>, Rollup> = foldhash::HashMap::default();
    for (_, e) in fresh {
        let at_ms = to_ms(e.at);
        hours
            .entry(cell_ref(e, bucket_of(Granularity::Hour, at_ms)))
            .or_default()
            .add(e);
    }
    let mut days: foldhash::HashMap<CellRef<'_>, Rollup> = foldhash::HashMap::default();
    for (hour, rollup) in &hours {
        let mut day = *hour;
        // An hour bucket (seconds) lies inside one UTC day.
        day.1 = bucket_of(Granularity::Day, hour.1.saturating_mul(1000));
        days.entry(day).or_default().merge(rollup);
    }
    let own = |cells: foldhash::HashMap<CellRef<'_>, Rollup>| {
        cells
            .into_iter()
            .map(|(k, r)| (owned(k), r))
            .collect::<HashMap<_, _>>()
    };
    (own(hours), own(days))
}

/// The next free event id. AUTOINCREMENT's sequence (which explicit ids advance too) keeps
/// ids of pruned events from being handed out again.
async fn next_event_id(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
         COALESCE((SELECT MAX(id) FROM events), 0))",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(last + 1)
}

/// CROSS JOIN keeps json_each as the outer loop: one unique-index probe per client id.
pub(crate) const STORED_CLIENT_IDS: &str = "SELECT e.client_id, e.id FROM json_each(?2) AS j \
     CROSS JOIN events AS e ON e.project = ?1 AND e.client_id = j.value";

/// (project, client id) → stored event id, for the batch's client ids that are stored.
/// One query per project of the batch, with the ids as a JSON array.
async fn stored_client_ids<'a>(
    conn: &mut SqliteConnection,
    events: &'a [EventRecord],
) -> Result<StoredIds<'a>, StoreError> {
    let mut by_project: foldhash::HashMap<&str, Vec<&str>> = foldhash::HashMap::default();
    for e in events {
        if let Some(client_id) = &e.client_id {
            by_project
                .entry(e.project.0.as_str())
                .or_default()
                .push(client_id);
        }
    }
    let mut found = StoredIds::default();
    for (project, ids) in by_project {
        let json = to_json_text("client ids", &ids)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(STORED_CLIENT_IDS)
            .bind(project)
            .bind(json)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        if !rows.is_empty() {
            found.0.insert(project, rows.into_iter().collect());
        }
    }
    Ok(found)
}

/// The stored events of a batch's client ids: project → client id → event id.
#[derive(Default)]
struct StoredIds<'a>(foldhash::HashMap<&'a str, foldhash::HashMap<String, i64>>);

impl StoredIds<'_> {
    fn get(&self, (project, client_id): &(&str, &str)) -> Option<i64> {
        self.0.get(project)?.get(*client_id).copied()
    }
}

async fn insert_events(
    conn: &mut SqliteConnection,
    fresh: Vec<(i64, EventRecord)>,
) -> Result<(), StoreError> {
    // Encode every JSON column first: a failure then leaves no statement half-bound.
    let encoded = fresh
        .iter()
        .map(|(_, e)| encode_json(e))
        .collect::<Result<Vec<_>, _>>()?;
    INSERT_EVENTS
        .execute(
            conn,
            fresh.into_iter().zip(encoded),
            |q, ((id, event), json)| bind_event(q, id, event, json),
            Some("event rows were refused by the database"),
        )
        .await
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;
    use crate::analytics::AnalyticsDb;

    /// The lookups of the hot path probe indexes; a full scan would make every batch cost
    /// the size of the table.
    #[tokio::test]
    async fn hot_path_lookups_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let ids = db.query_plan(STORED_CLIENT_IDS).await;
        assert!(
            ids.contains("INDEX events_by_client_id (project=? AND client_id=?)"),
            "{ids}"
        );
        for granularity in [Granularity::Hour, Granularity::Day] {
            let cells = db
                .query_plan(super::super::cells::read_sql_for(granularity))
                .await;
            assert!(
                cells.contains("USING INDEX sqlite_autoindex_cells_"),
                "{cells}"
            );
            assert!(!cells.contains("SCAN c"), "{cells}");
            // Cached cells are written by rowid: one primary-key seek per cell.
            for levels in [false, true] {
                let update = db
                    .query_plan(&super::super::cells::update_sql_for(granularity, levels, 4))
                    .await;
                assert!(
                    update.contains("USING INTEGER PRIMARY KEY (rowid=?)"),
                    "{update}"
                );
                assert!(!update.contains("SCAN cells_"), "{update}");
                assert!(!update.contains("SCAN rollups_"), "{update}");
            }
        }
    }

    fn record(i: usize, prompt: &str) -> EventRecord {
        EventRecord {
            project: promptstore_core::model::ProjectId("p".into()),
            client_id: Some(format!("c-{i}")),
            prompt_id: "pid".into(),
            prompt: prompt.into(),
            version: 1,
            label: None,
            experiment: None,
            arm: None,
            unit_id: None,
            model: "m".into(),
            provider: None,
            input_tokens: 1,
            output_tokens: 1,
            cached_input_tokens: 0,
            latency_ms: Some(10.0),
            ttft_ms: None,
            cost: None,
            cost_source: promptstore_types::CostSource::Unpriced,
            success: true,
            error_type: None,
            scores: Default::default(),
            feedback: None,
            metadata: serde_json::json!({}),
            at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        }
    }

    /// The event insert cannot abort half-way (`OR IGNORE`), so a row the database skipped
    /// must fail the whole ingest: nothing of the batch is stored, no cell counts it.
    #[tokio::test]
    async fn a_row_the_database_skips_fails_the_whole_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER skip_refused BEFORE INSERT ON events WHEN NEW.prompt = 'refused' \
             BEGIN SELECT RAISE(IGNORE); END",
        )
        .execute(&db.write)
        .await
        .unwrap();
        let batch: Vec<EventRecord> = (0..10)
            .map(|i| record(i, if i == 7 { "refused" } else { "fine" }))
            .collect();
        let mut cache = CellCache::default();
        let mut tx = crate::tx::begin(&db.write).await.unwrap();
        let result = ingest(&mut tx, &mut cache, batch).await;
        let result = crate::tx::finish(tx, result).await;
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("refused by the database")),
            "{result:?}"
        );
        for table in ["events", "cells_hour", "cells_day"] {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&db.read)
                .await
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
        // The same batch without the refused row goes in whole.
        let mut tx = crate::tx::begin(&db.write).await.unwrap();
        let batch: Vec<EventRecord> = (0..10).map(|i| record(i, "fine")).collect();
        let result = ingest(&mut tx, &mut cache, batch).await;
        let (outcomes, _) = crate::tx::finish(tx, result).await.unwrap();
        assert_eq!(outcomes.len(), 10);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, IngestOutcome::Inserted(_)))
        );
    }
}
