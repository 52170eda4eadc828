//! A project's own model prices: one row per (model, effective date); the entry in force
//! for an event is the latest one effective at its time (decided by the cost module).

use promptstore_core::analytics::model::PriceRecord;
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use sqlx::SqliteConnection;

use crate::codec::{from_ms, to_ms};
use crate::error::backend;

#[derive(sqlx::FromRow)]
struct PriceRow {
    project: String,
    model: String,
    effective_from: i64,
    input_per_mtok: f64,
    output_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
}

impl PriceRow {
    fn into_parts(self) -> Result<(ProjectId, PriceRecord), StoreError> {
        Ok((
            ProjectId(self.project),
            PriceRecord {
                model: self.model,
                input_per_mtok: self.input_per_mtok,
                output_per_mtok: self.output_per_mtok,
                cached_input_per_mtok: self.cached_input_per_mtok,
                effective_from: from_ms(self.effective_from)?,
            },
        ))
    }
}

const COLUMNS: &str =
    "project, model, effective_from, input_per_mtok, output_per_mtok, cached_input_per_mtok";

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
) -> Result<Vec<PriceRecord>, StoreError> {
    let rows: Vec<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM prices WHERE project = ? ORDER BY model, effective_from"
    )))
    .bind(project.0.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter()
        .map(|r| r.into_parts().map(|(_, p)| p))
        .collect()
}

pub(crate) async fn all(
    conn: &mut SqliteConnection,
) -> Result<Vec<(ProjectId, PriceRecord)>, StoreError> {
    let rows: Vec<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM prices ORDER BY project, model, effective_from"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(PriceRow::into_parts).collect()
}

/// Add or replace (same model and effective time) an entry; returns the entry it replaced
/// and the stored one (at the stored precision: whole milliseconds).
pub(crate) async fn set(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    price: PriceRecord,
) -> Result<(Option<PriceRecord>, PriceRecord), StoreError> {
    let at = to_ms(price.effective_from);
    let before: Option<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM prices WHERE project = ? AND model = ? AND effective_from = ?"
    )))
    .bind(project.0.as_str())
    .bind(price.model.as_str())
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(
        "INSERT INTO prices (project, model, effective_from, input_per_mtok, output_per_mtok, \
         cached_input_per_mtok) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (project, model, effective_from) DO UPDATE SET \
         input_per_mtok = excluded.input_per_mtok, output_per_mtok = excluded.output_per_mtok, \
         cached_input_per_mtok = excluded.cached_input_per_mtok",
    )
    .bind(project.0.as_str())
    .bind(price.model.as_str())
    .bind(at)
    .bind(price.input_per_mtok)
    .bind(price.output_per_mtok)
    .bind(price.cached_input_per_mtok)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    let stored = PriceRecord {
        effective_from: from_ms(at)?,
        ..price
    };
    let before = before.map(|r| r.into_parts().map(|(_, p)| p)).transpose()?;
    Ok((before, stored))
}

/// Delete the project's entries for `model`; returns them (empty: there were none).
pub(crate) async fn delete(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    model: &str,
) -> Result<Vec<PriceRecord>, StoreError> {
    let rows: Vec<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM prices WHERE project = ? AND model = ? RETURNING {COLUMNS}"
    )))
    .bind(project.0.as_str())
    .bind(model)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut deleted = rows
        .into_iter()
        .map(|r| r.into_parts().map(|(_, p)| p))
        .collect::<Result<Vec<_>, _>>()?;
    deleted.sort_by_key(|p| p.effective_from);
    Ok(deleted)
}
