//! Opening the database file: connection settings, the two pools, and the embedded
//! migrations.
//!
//! Architecture invariant: every write goes through the one-connection write pool inside a
//! `BEGIN IMMEDIATE` transaction, so writers queue on the pool instead of failing with
//! SQLITE_BUSY, and readers (WAL) never wait for them.

use std::path::Path;
use std::time::Duration;

use promptstore_core::store::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a connection waits on a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a pooled connection (writes queue here).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Readers: WAL lets them run beside the writer; the machine has few cores.
const READ_CONNECTIONS: u32 = 4;

/// The schema, in order. Embedded in the binary; each runs once, in its own transaction,
/// and is recorded in `schema_migrations`. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "experiments",
        include_str!("../migrations/0002_experiments.sql"),
    ),
];

pub(crate) struct Pools {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        // FULL: a write acknowledged by commit survives a process kill and a power cut.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
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
    let open_error =
        |e: sqlx::Error| StoreError::Backend(format!("cannot open {}: {e}", path.display()));

    // The writer sets WAL, which is a property of the file; readers then find it set.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options(path).journal_mode(SqliteJournalMode::Wal))
        .await
        .map_err(open_error)?;
    migrate(&write).await.map_err(|e| {
        StoreError::Backend(format!(
            "cannot migrate the database {}: {e}",
            path.display()
        ))
    })?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options(path))
        .await
        .map_err(open_error)?;
    Ok(Pools { write, read })
}

/// Apply the migrations the database has not seen yet.
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

/// The migrations recorded as applied, oldest first.
pub(crate) async fn applied_migrations(pool: &SqlitePool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(pool)
        .await
}
