//! Experiment reads: one by id, the project's list (newest first, filtered, paginated), the
//! running ones (the runtime snapshot and the decision worker), and an experiment's history
//! (oldest first, paginated).

use promptstore_core::experiments::model::{
    ExperimentFilter, ExperimentHistoryRecord, ExperimentRecord,
};
use promptstore_core::model::ProjectId;
use promptstore_core::store::{Page, PageRequest, StoreError};
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::rows::{
    EXPERIMENT_COLUMNS, EXPERIMENT_FROM, ExperimentRow, HISTORY_COLUMNS, HistoryRow,
};
use crate::codec::{Cursor, decode_cursor, into_page, page_limit};
use crate::error::backend;

pub(crate) fn experiment_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("experiment '{id}'"),
    }
}

/// The row of an experiment of the project, by public id.
pub(crate) async fn find(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: &str,
) -> Result<Option<ExperimentRow>, StoreError> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM {EXPERIMENT_FROM} WHERE x.project_id = ? AND x.id = ?"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// The experiment by its internal key (a row the caller knows exists).
pub(crate) async fn by_pk(
    conn: &mut SqliteConnection,
    pk: i64,
) -> Result<ExperimentRecord, StoreError> {
    let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM {EXPERIMENT_FROM} WHERE x.pk = ?");
    let row: Option<ExperimentRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.ok_or_else(|| StoreError::Backend(format!("experiment row {pk} vanished")))?
        .into_record()
}

pub(crate) async fn get(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: &str,
) -> Result<Option<ExperimentRecord>, StoreError> {
    find(conn, project, id)
        .await?
        .map(ExperimentRow::into_record)
        .transpose()
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &ExperimentFilter,
    page: &PageRequest,
) -> Result<Page<ExperimentRecord>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let before = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Experiment(pk) => Some(pk),
        _ => None,
    })?;
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM {EXPERIMENT_FROM} WHERE x.project_id = ?1 \
         AND (?2 IS NULL OR p.name = ?2) AND (?3 IS NULL OR x.status = ?3) \
         AND (?4 IS NULL OR x.pk < ?4) ORDER BY x.pk DESC LIMIT ?5"
    );
    let rows: Vec<ExperimentRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .bind(filter.prompt.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(before)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    // The cursor is the internal key of the last row kept, which the record does not carry.
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        last = Some(row.pk);
        items.push(row.into_record()?);
    }
    let next_cursor = last
        .filter(|_| more)
        .map(|pk| Cursor::Experiment(pk).encode());
    Ok(Page { items, next_cursor })
}

pub(crate) async fn running(
    conn: &mut SqliteConnection,
    project: Option<&ProjectId>,
) -> Result<Vec<ExperimentRecord>, StoreError> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM {EXPERIMENT_FROM} WHERE x.status = 'running' \
         AND (?1 IS NULL OR x.project_id = ?1) ORDER BY x.pk"
    );
    let rows: Vec<ExperimentRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(project.map(|p| p.0.as_str()))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(ExperimentRow::into_record).collect()
}

pub(crate) async fn history(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: &str,
    page: &PageRequest,
) -> Result<Page<ExperimentHistoryRecord>, StoreError> {
    let pk = find(conn, project, id)
        .await?
        .ok_or_else(|| experiment_not_found(id))?
        .pk;
    let (limit, fetch) = page_limit(page.limit);
    let after = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::HistoryEntry(id) => Some(id),
        _ => None,
    })?;
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM experiment_history h JOIN experiments x \
         ON x.pk = h.experiment_pk WHERE h.experiment_pk = ?1 AND (?2 IS NULL OR h.id > ?2) \
         ORDER BY h.id LIMIT ?3"
    );
    let rows: Vec<HistoryRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    into_page(rows, limit, HistoryRow::into_record, |h| {
        Cursor::HistoryEntry(h.id).encode()
    })
}
