//! The write transaction: `BEGIN IMMEDIATE` on the single write connection, committed when
//! the work succeeded and rolled back (explicitly, before the connection is reused) when not.

use promptstore_core::store::StoreError;
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::error::backend;

pub(crate) async fn begin(write: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    write.begin_with("BEGIN IMMEDIATE").await.map_err(backend)
}

pub(crate) async fn finish<T>(
    tx: Transaction<'static, Sqlite>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(backend)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// The time of a write, in milliseconds: the clock, but never before the last recorded label
/// move, so that moves are ordered the same by time and by id even if the clock steps back.
pub(crate) async fn write_time(conn: &mut sqlx::SqliteConnection) -> Result<i64, StoreError> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT at FROM label_moves ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    Ok(crate::codec::now_ms().max(last.unwrap_or(i64::MIN)))
}
