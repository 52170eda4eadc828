//! Opening the analytics database file: its own connection settings (a larger page cache
//! for the writer, which folds batches into cells), its own pools and its own migrations,
//! so that ingestion never touches the registry file or its write lock.
//!
//! Architecture invariant: as for the registry, every write goes through the one-connection
//! write pool inside `BEGIN IMMEDIATE`, so concurrent ingests queue on the pool instead of
//! failing with SQLITE_BUSY; readers (WAL) never wait for the writer.

use std::path::Path;
use std::time::Duration;

use promptstore_core::store::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a connection waits on a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a pooled connection (ingests queue here).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// Readers: dashboards, the alert worker and event listings.
const READ_CONNECTIONS: u32 = 4;
/// Page cache of the writer, in KiB (negative = KiB for SQLite): the indexes of recent
/// events and the touched cells stay in memory across batches.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// WAL size (pages) at which a commit checkpoints. Ingests checkpoint after themselves, off
/// the commit (`AnalyticsDb::checkpoint_soon`), so this only bounds the WAL against other
/// writes and an ingest larger than this on its own.
const WAL_CHECKPOINT_PAGES: i64 = 4000;
/// Page cache of each reader, in KiB.
const READER_CACHE_KIB: i64 = 8 * 1024;

/// The analytics schema, in order. Embedded in the binary; each runs once, in its own
/// transaction, and is recorded in `schema_migrations` of the analytics file. Never edit one
/// that has shipped: add the next.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "analytics",
        include_str!("../../migrations/analytics/0001_analytics.sql"),
    ),
    (
        2,
        "exposures",
        include_str!("../../migrations/analytics/0002_exposures.sql"),
    ),
    (
        3,
        "events_layout",
        include_str!("../../migrations/analytics/0003_events_layout.sql"),
    ),
    (
        4,
        "rollup levels",
        include_str!("../../migrations/analytics/0004_rollup_levels.sql"),
    ),
    (
        5,
        "event blocks",
        include_str!("../../migrations/analytics/0005_event_blocks.sql"),
    ),
];

pub(crate) struct Pools {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
}

fn options(path: &Path, cache_kib: i64) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // FULL: an ingest acknowledged by commit survives a process kill and a power cut.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("cache_size", (-cache_kib).to_string())
        .pragma("temp_store", "memory")
        // Multi-row inserts and cell upserts reuse a handful of statement shapes.
        .statement_cache_capacity(128)
}

pub(crate) async fn open(path: &Path) -> Result<Pools, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let open_error = |e: sqlx::Error| {
        StoreError::Backend(format!(
            "cannot open the analytics database {}: {e}",
            path.display()
        ))
    };

    // The writer sets WAL, which is a property of the file; readers then find it set.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // One long-lived connection: the cell cache is tied to it (a new connection, which
        // `after_connect` marks with a new token, empties the cache).
        .max_lifetime(None)
        .idle_timeout(None)
        .after_connect(|conn, _| Box::pin(super::cache::mark_connection(conn)))
        .connect_with(
            options(path, WRITER_CACHE_KIB)
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string()),
        )
        .await
        .map_err(open_error)?;
    migrate(&write).await.map_err(|e| {
        StoreError::Backend(format!(
            "cannot migrate the analytics database {}: {e}",
            path.display()
        ))
    })?;
    // Roll-up levels of a file that had cells before they existed (migration 4).
    super::cells::backfill_levels(&write).await?;
    // Events stored as rows before blocks existed (migration 5).
    super::events::convert_rows(&write).await?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options(path, READER_CACHE_KIB))
        .await
        .map_err(open_error)?;
    Ok(Pools { write, read })
}

/// Apply the migrations the analytics database has not seen yet.
async fn migrate(write: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(write)
    .await?;
    for (version, name, sql) in MIGRATIONS {
        let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_none() {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(name)
            .bind(crate::codec::now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
