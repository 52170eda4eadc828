//! The audit log table: records are written by the transaction that makes the change, and
//! listed newest first with filters.

use promptstore_core::model::{AuditEntry, NewAuditEntry, ProjectId};
use promptstore_core::store::{AuditFilter, Page, PageRequest, StoreError};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::codec::{Cursor, decode_cursor, into_page, page_limit, to_json_text, to_ms};
use crate::error::backend;
use crate::rows::{AUDIT_COLUMNS, AuditRow};

/// Write one audit record in the caller's transaction.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    actor: &str,
    at: i64,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    let before = entry
        .before
        .as_ref()
        .map(|v| to_json_text("audit before", v))
        .transpose()?;
    let after = entry
        .after
        .as_ref()
        .map(|v| to_json_text("audit after", v))
        .transpose()?;
    sqlx::query(
        "INSERT INTO audit_log (project_id, actor, action, object_type, object_id, before, after, at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&project.0)
    .bind(actor)
    .bind(entry.action)
    .bind(entry.object_type)
    .bind(&entry.object_id)
    .bind(before)
    .bind(after)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEntry>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let after_id = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Id(id) => Some(id),
        _ => None,
    })?;
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE project_id = ?1 \
         AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR object_type = ?3) \
         AND (?4 IS NULL OR object_id = ?4) AND (?5 IS NULL OR actor = ?5) \
         AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at <= ?7) \
         AND (?8 IS NULL OR id < ?8) ORDER BY id DESC LIMIT ?9"
    );
    let rows: Vec<AuditRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .bind(filter.action.as_deref())
        .bind(filter.object_type.as_deref())
        .bind(filter.object_id.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.since.map(to_ms))
        .bind(filter.until.map(to_ms))
        .bind(after_id)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    into_page(rows, limit, AuditRow::into_record, |e| {
        Cursor::Id(e.id).encode()
    })
}
