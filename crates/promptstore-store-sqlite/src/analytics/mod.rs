//! Usage analytics in SQLite: a second database file beside the registry's (`events.db`
//! next to `promptstore.db`) with its own write connection, pools and migrations, so that
//! heavy ingestion never holds the registry's write lock. `SqliteStore` implements
//! `AnalyticsStore` on it (see `store_impl`).
//!
//! Architecture invariant: raw events and the hour and day cells they feed are written in
//! one `BEGIN IMMEDIATE` transaction of the analytics writer, so the cells always equal a
//! fold of the stored events (plus the contribution of pruned ones). Audit records of price
//! and alert-rule changes go to the registry file's audit log, written right after the
//! analytics commit (two files cannot share one durable transaction in WAL mode).

mod alerts;
mod blocks;
mod cache;
mod cells;
mod connect;
mod events;
mod exposures;
mod filter;
mod ingest;
mod multirow;
mod planner;
mod prices;
mod rows;
mod store_impl;

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use promptstore_core::store::StoreError;
use sqlx::SqlitePool;

/// The analytics file `open_in` uses inside its directory.
pub const DEFAULT_EVENTS_FILE_NAME: &str = "events.db";

/// Where the analytics file of a registry file lives: `events.db` beside the default
/// `promptstore.db`, and `<stem>.events.db` beside any other name, so that several stores
/// in one directory (tests) never share an analytics file.
pub fn events_path_for(registry: &Path) -> PathBuf {
    let name = registry.file_name().and_then(|n| n.to_str());
    let events = match name {
        Some(crate::DEFAULT_FILE_NAME) | None => DEFAULT_EVENTS_FILE_NAME.to_owned(),
        Some(name) => {
            let stem = Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name);
            format!("{stem}.events.db")
        }
    };
    registry.with_file_name(events)
}

/// The analytics database: its two pools, its file, and the writer's cache of cells.
#[derive(Clone, Debug)]
pub(crate) struct AnalyticsDb {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
    pub(crate) path: PathBuf,
    /// Held by every writer of cells from before its transaction until after its commit
    /// (see `cache`); writers that touch no cell (retention, prices, alerts) never take it.
    pub(crate) cells: Arc<tokio::sync::Mutex<cache::CellCache>>,
    /// Set while a checkpoint started by `checkpoint_soon` is waiting or running.
    checkpoint_pending: Arc<AtomicBool>,
}

impl AnalyticsDb {
    pub(crate) async fn open(path: &Path) -> Result<AnalyticsDb, StoreError> {
        let pools = connect::open(path).await?;
        Ok(AnalyticsDb {
            write: pools.write,
            read: pools.read,
            path: path.to_owned(),
            cells: Arc::default(),
            checkpoint_pending: Arc::default(),
        })
    }

    /// Copy the WAL back into the database file on the write connection, in the background,
    /// right after an ingest has committed.
    ///
    /// Left to SQLite, the checkpoint runs inside whichever commit finds the WAL past
    /// `wal_autocheckpoint` pages: that commit's requests, and every batch queued behind
    /// them, wait for it. Run here, it takes the write connection while the writer is
    /// answering the requests and collecting the next batches, when the connection is idle;
    /// the next transaction waits for it only if it is not done by then. It checkpoints
    /// everything (nothing else writes meanwhile), so the WAL restarts at the next commit
    /// and stays about one commit long. SQLite's own checkpoint still guards the size of
    /// the WAL for every other write.
    pub(crate) fn checkpoint_soon(&self) {
        if self.checkpoint_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let write = self.write.clone();
        let pending = self.checkpoint_pending.clone();
        tokio::spawn(async move {
            let result: Result<(i64, i64, i64), sqlx::Error> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&write)
                    .await;
            pending.store(false, Ordering::Release);
            if let Err(e) = result {
                tracing::warn!(error = %e, "the analytics WAL checkpoint failed; SQLite will retry it");
            }
        });
    }

    pub(crate) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// `EXPLAIN QUERY PLAN` of `sql`, its steps joined by ` | `: tests check that the hot
    /// and dashboard queries probe the indexes they were written for.
    #[cfg(test)]
    pub(crate) async fn query_plan(&self, sql: &str) -> String {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&self.read)
                .await
                .unwrap();
        rows.into_iter()
            .map(|r| r.3)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_file_sits_beside_the_registry_file() {
        assert_eq!(
            events_path_for(Path::new("/data/promptstore.db")),
            Path::new("/data/events.db")
        );
        assert_eq!(
            events_path_for(Path::new("/tmp/x/conformance.db")),
            Path::new("/tmp/x/conformance.events.db")
        );
        assert_eq!(
            events_path_for(Path::new("plain")),
            Path::new("plain.events.db")
        );
    }
}
