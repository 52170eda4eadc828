//! Lookups shared by the write transaction and the read side: a prompt by name within a
//! project, a version, a label.

use promptstore_core::model::{ProjectId, PromptRecord, VersionRecord};
use promptstore_core::store::StoreError;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::codec::to_u32;
use crate::error::backend;
use crate::rows::{PROMPT_COLUMNS, PromptRow, VERSION_COLUMNS, VersionRow};

pub(crate) fn prompt_not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("prompt '{name}'"),
    }
}

pub(crate) async fn find_prompt(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    name: &str,
) -> Result<Option<PromptRow>, StoreError> {
    let sql =
        format!("SELECT {PROMPT_COLUMNS} FROM prompts p WHERE p.project_id = ? AND p.name = ?");
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// The prompt's row and record; `NotFound` when the project has no such prompt.
pub(crate) async fn require_prompt(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    name: &str,
) -> Result<(i64, PromptRecord), StoreError> {
    let row = find_prompt(conn, project, name)
        .await?
        .ok_or_else(|| prompt_not_found(name))?;
    let pk = row.pk;
    Ok((pk, row.into_record()?))
}

/// The internal key of a prompt; `NotFound` when the project has no such prompt.
pub(crate) async fn require_prompt_pk(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    name: &str,
) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT pk FROM prompts WHERE project_id = ? AND name = ?")
        .bind(&project.0)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| prompt_not_found(name))
}

pub(crate) async fn version(
    conn: &mut SqliteConnection,
    prompt_pk: i64,
    number: u32,
) -> Result<Option<VersionRecord>, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN prompts p ON p.pk = v.prompt_pk \
         WHERE v.prompt_pk = ? AND v.number = ?"
    );
    let row: Option<VersionRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(prompt_pk)
        .bind(i64::from(number))
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(VersionRow::into_record).transpose()
}

/// Where a label of a prompt points now.
pub(crate) async fn label_version(
    conn: &mut SqliteConnection,
    prompt_pk: i64,
    label: &str,
) -> Result<Option<u32>, StoreError> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT version FROM labels WHERE prompt_pk = ? AND name = ?")
            .bind(prompt_pk)
            .bind(label)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    n.map(|n| to_u32("label version", n)).transpose()
}
