//! A write-through cache of the aggregate cells the writer touches most: the encoded rollup
//! and the rowid of the fine cells and roll-up level cells of the newest buckets, so that a
//! commit merges its batch into memory and writes each touched cell by rowid, instead of
//! first reading (and decoding) every one of them back from the file.
//!
//! Architecture invariant: a cached entry always equals the committed row it names. That
//! holds because
//! - the cache lives behind an async mutex that every writer of cells (`ingest`, late
//!   judgements) holds from before `BEGIN IMMEDIATE` until after the commit;
//! - a transaction takes the entries it touches *out* of the cache and puts the new values
//!   back only once its commit succeeded; on any failure (or a dropped future) they are
//!   simply gone and are read from the file next time;
//! - late judgements remove the entries they adjust;
//! - a commit by any other connection (another process on the same file) or a new write
//!   connection empties the cache: each transaction first compares `PRAGMA data_version`
//!   and the connection's token (`CONNECTION_TOKEN_SQL`) with those it saw last;
//! - the roll-up backfill runs when the file is opened, before the cache holds anything.
//!
//! The cache is bounded: only the newest bucket it has seen and the one before are kept
//! (live traffic touches the current hour and day, and a little of the previous), and a map
//! that still grows past `MAX_ENTRIES` is emptied.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};

use promptstore_core::analytics::model::Granularity;
use promptstore_core::store::StoreError;
use sqlx::SqliteConnection;

use super::cells::{LevelKey, ProjectCell};
use crate::error::backend;

/// Entries per map beyond which the map is emptied rather than grown (a project with very
/// many combinations; live traffic over 1,800 combinations needs ~3,600). With cells kept
/// encoded (~200–600 B in the benchmarks, a few KiB for the widest sketches) this also
/// bounds the cache's memory whatever the cardinality: a few MiB per map.
const MAX_ENTRIES: usize = 8_000;

/// Buckets older than the newest seen by more than this many bucket widths are dropped:
/// live events are at most minutes late, so the current and the previous hour (and day)
/// are the working set: at most ~7,000 cells of a 1,800-combination project at a bucket
/// boundary (fine cells of two hours and two days).
const KEEP_BUCKETS: i64 = 1;

/// A stored cell: its rowid in its table and its rollup as committed, encoded. Kept encoded
/// (a few hundred bytes) rather than decoded (~3.5 KiB: the sketches are B-trees): a commit
/// folds the stored bytes into the batch's contribution (`Rollup::merge_encoded`, which
/// only adds) and encodes the sum, which it must write anyway.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) rowid: i64,
    pub(crate) bytes: Vec<u8>,
}

/// The cells of one table.
#[derive(Debug)]
pub(crate) struct CellMap<K> {
    entries: HashMap<K, Cached>,
    /// The newest bucket put in, in Unix seconds.
    newest: i64,
    width: i64,
}

impl<K: Hash + Eq> CellMap<K> {
    fn new(granularity: Granularity) -> Self {
        CellMap {
            entries: HashMap::new(),
            newest: i64::MIN,
            width: match granularity {
                Granularity::Hour => 3_600,
                Granularity::Day => 86_400,
            },
        }
    }

    /// Take the entry of `key` out (see the module comment: taken entries come back only
    /// after a commit).
    pub(crate) fn take(&mut self, key: &K) -> Option<Cached> {
        self.entries.remove(key)
    }

    /// Put committed cells back, then drop the buckets that fell out of the window.
    fn put_back(&mut self, cells: Vec<(K, Cached)>, bucket: impl Fn(&K) -> i64) {
        for (key, cached) in cells {
            self.newest = self.newest.max(bucket(&key));
            self.entries.insert(key, cached);
        }
        let oldest = self
            .newest
            .saturating_sub(KEEP_BUCKETS.saturating_mul(self.width));
        self.entries.retain(|key, _| bucket(key) >= oldest);
        if self.entries.len() > MAX_ENTRIES {
            self.entries.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The cells of both granularities and their levels.
#[derive(Debug)]
pub(crate) struct CellCache {
    pub(crate) hour: CellMap<ProjectCell>,
    pub(crate) day: CellMap<ProjectCell>,
    pub(crate) levels_hour: CellMap<LevelKey>,
    pub(crate) levels_day: CellMap<LevelKey>,
    /// (connection token, data_version) at the last transaction that used the cache.
    seen: Option<(i64, i64)>,
}

impl Default for CellCache {
    fn default() -> Self {
        CellCache {
            hour: CellMap::new(Granularity::Hour),
            day: CellMap::new(Granularity::Day),
            levels_hour: CellMap::new(Granularity::Hour),
            levels_day: CellMap::new(Granularity::Day),
            seen: None,
        }
    }
}

/// What a transaction wrote, to put in the cache once it has committed.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub(crate) hour: Vec<(ProjectCell, Cached)>,
    pub(crate) day: Vec<(ProjectCell, Cached)>,
    pub(crate) levels_hour: Vec<(LevelKey, Cached)>,
    pub(crate) levels_day: Vec<(LevelKey, Cached)>,
}

impl CellCache {
    pub(crate) fn cells(&mut self, granularity: Granularity) -> &mut CellMap<ProjectCell> {
        match granularity {
            Granularity::Hour => &mut self.hour,
            Granularity::Day => &mut self.day,
        }
    }

    pub(crate) fn levels(&mut self, granularity: Granularity) -> &mut CellMap<LevelKey> {
        match granularity {
            Granularity::Hour => &mut self.levels_hour,
            Granularity::Day => &mut self.levels_day,
        }
    }

    /// Forget everything (a failed transaction, or a change the cache did not see).
    pub(crate) fn clear(&mut self) {
        self.hour.clear();
        self.day.clear();
        self.levels_hour.clear();
        self.levels_day.clear();
        self.seen = None;
    }

    /// Inside the write transaction, before the cache is used: empty it if the file was
    /// changed by another connection, or the writer's connection is not the one it saw.
    pub(crate) async fn validate(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        let now = connection_state(conn).await?;
        if self.seen != Some(now) {
            self.clear();
            self.seen = Some(now);
        }
        Ok(())
    }

    /// After the commit: the staged cells are now what the file holds.
    pub(crate) fn commit(&mut self, staged: Staged) {
        let cell_bucket = |k: &ProjectCell| k.1.bucket;
        let level_bucket = |k: &LevelKey| k.3;
        self.hour.put_back(staged.hour, cell_bucket);
        self.day.put_back(staged.day, cell_bucket);
        self.levels_hour.put_back(staged.levels_hour, level_bucket);
        self.levels_day.put_back(staged.levels_day, level_bucket);
    }

    /// Cached entries, all maps together (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.hour.len() + self.day.len() + self.levels_hour.len() + self.levels_day.len()
    }
}

/// Tokens that tell write connections apart: each new connection stores the next one in a
/// temporary (per-connection) table when it is opened.
static NEXT_TOKEN: AtomicI64 = AtomicI64::new(1);

/// Run on every new write connection (`connect::open`).
pub(crate) async fn mark_connection(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS cell_cache_connection (token INTEGER NOT NULL)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM temp.cell_cache_connection")
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO temp.cell_cache_connection (token) VALUES (?)")
        .bind(token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The connection's token and `data_version` (which changes when another connection has
/// committed to the file since this one last looked).
pub(crate) const CONNECTION_STATE_SQL: &str = "SELECT \
     COALESCE((SELECT token FROM temp.cell_cache_connection), 0), \
     (SELECT data_version FROM pragma_data_version())";

async fn connection_state(conn: &mut SqliteConnection) -> Result<(i64, i64), StoreError> {
    sqlx::query_as(CONNECTION_STATE_SQL)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use promptstore_core::analytics::model::{AnalyticsFilter, EventRecord};
    use promptstore_core::analytics::store::AnalyticsStore;
    use promptstore_core::model::ProjectId;
    use sqlx::AssertSqlSafe;
    use time::OffsetDateTime;

    use crate::SqliteStore;

    fn event(i: usize) -> EventRecord {
        EventRecord {
            project: ProjectId("p".into()),
            client_id: Some(format!("c-{i}")),
            prompt_id: "pid".into(),
            prompt: format!("prompt-{}", i % 3),
            version: 1,
            label: None,
            experiment: None,
            arm: None,
            unit_id: None,
            model: "m".into(),
            provider: None,
            input_tokens: i as u64,
            output_tokens: 1,
            cached_input_tokens: 0,
            latency_ms: Some(10.0 + i as f64),
            ttft_ms: None,
            cost: None,
            cost_source: promptstore_types::CostSource::Unpriced,
            success: true,
            error_type: None,
            scores: BTreeMap::new(),
            feedback: None,
            metadata: serde_json::json!({}),
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).unwrap(),
        }
    }

    /// (count, input tokens) summed over every fine cell and every level cell of a table
    /// set, as stored.
    async fn stored_totals(store: &SqliteStore) -> Vec<(u64, u64)> {
        let mut totals = Vec::new();
        for granularity in [
            promptstore_core::analytics::model::Granularity::Hour,
            promptstore_core::analytics::model::Granularity::Day,
        ] {
            let cells = store
                .cells(
                    &ProjectId("p".into()),
                    granularity,
                    OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap(),
                    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
                    &AnalyticsFilter::default(),
                )
                .await
                .unwrap();
            totals.push(
                cells
                    .iter()
                    .fold((0, 0), |(c, t), (_, r)| (c + r.count, t + r.input_tokens)),
            );
            for level in ["rollups_hour", "rollups_day"] {
                let blobs: Vec<Vec<u8>> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT rollup FROM {level} WHERE level = 0"
                )))
                .fetch_all(&store.analytics.read)
                .await
                .unwrap();
                let mut sum = (0, 0);
                for blob in blobs {
                    let r = promptstore_core::analytics::rollup::Rollup::decode(&blob).unwrap();
                    sum = (sum.0 + r.count, sum.1 + r.input_tokens);
                }
                totals.push(sum);
            }
        }
        totals
    }

    fn expected(events: impl Iterator<Item = usize> + Clone) -> (u64, u64) {
        (
            events.clone().count() as u64,
            events.map(|i| i as u64).sum(),
        )
    }

    /// A commit that fails after it merged cached cells must leave neither the file nor the
    /// cache with its events: the next commit builds on the committed values only.
    #[tokio::test]
    async fn a_failed_commit_leaves_no_trace_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        store.ingest((0..50).map(event).collect()).await.unwrap();
        store.ingest((50..100).map(event).collect()).await.unwrap();
        assert!(store.analytics.cells.lock().await.len() > 0, "cells cached");

        // Fail the last write of a commit (the day cells, after every hour cell and level
        // was merged and written), on the writer's own connection so that the cache does
        // not see a foreign change.
        sqlx::query(
            "CREATE TEMP TRIGGER fail_day_cells BEFORE UPDATE ON main.cells_day \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&store.analytics.write)
        .await
        .unwrap();
        let failed = store.ingest((100..150).map(event).collect()).await;
        assert!(
            matches!(&failed, Err(e) if e.to_string().contains("injected failure")),
            "{failed:?}"
        );
        assert_eq!(store.analytics.cells.lock().await.len(), 0, "cache emptied");
        sqlx::query("DROP TRIGGER temp.fail_day_cells")
            .execute(&store.analytics.write)
            .await
            .unwrap();

        store.ingest((150..200).map(event).collect()).await.unwrap();
        store.ingest((200..250).map(event).collect()).await.unwrap();
        let want = expected((0..100).chain(150..250));
        for (n, total) in stored_totals(&store).await.into_iter().enumerate() {
            assert_eq!(total, want, "table {n}");
        }
        // The failed events are not stored either: their client ids go in fresh.
        let outcomes = store.ingest((100..150).map(event).collect()).await.unwrap();
        assert!(outcomes.iter().all(|o| matches!(
            o,
            promptstore_core::analytics::model::IngestOutcome::Inserted(_)
        )));
        let want = expected(0..250);
        for (n, total) in stored_totals(&store).await.into_iter().enumerate() {
            assert_eq!(total, want, "table {n} after the retry");
        }
        store.close().await;
    }

    /// The cache keeps the newest buckets only.
    #[tokio::test]
    async fn old_buckets_leave_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let at = |i: usize, hours: i64| {
            let mut e = event(i);
            // 1_699_920_000 starts a UTC day.
            e.at = OffsetDateTime::from_unix_timestamp(1_699_920_000 + hours * 3_600).unwrap();
            e
        };
        store.ingest(vec![at(0, 0)]).await.unwrap();
        // Event 3 has event 0's prompt: the same combination, ten hours later.
        store.ingest(vec![at(3, 10)]).await.unwrap();
        let cache = store.analytics.cells.lock().await;
        let hours: Vec<i64> = cache.hour.entries.keys().map(|k| k.1.bucket).collect();
        assert_eq!(hours.len(), 1, "{hours:?}");
        // Both events fall in one UTC day: its cell stays.
        assert_eq!(cache.day.len(), 1);
        drop(cache);
        store.close().await;
    }
}
