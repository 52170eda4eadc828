//! Projects and API keys: creation, settings, lookup and revocation, each write with its
//! audit record in the same transaction.

use promptstore_core::audit;
use promptstore_core::model::{Actor, ApiKeyRecord, NewApiKey, ProjectId, ProjectRecord};
use promptstore_core::store::StoreError;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::audit_log;
use crate::codec::to_json_text;
use crate::error::{backend, db_error};
use crate::rows::{KEY_COLUMNS, KeyRow, PROJECT_COLUMNS, ProjectRow};
use crate::tx::write_time;

pub(crate) async fn get_project(
    conn: &mut SqliteConnection,
    id: &ProjectId,
) -> Result<Option<ProjectRecord>, StoreError> {
    let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?");
    let row: Option<ProjectRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(ProjectRow::into_record).transpose()
}

pub(crate) async fn require_project(
    conn: &mut SqliteConnection,
    id: &ProjectId,
) -> Result<ProjectRecord, StoreError> {
    get_project(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("project '{id}'"),
        })
}

pub(crate) async fn list_projects(
    conn: &mut SqliteConnection,
) -> Result<Vec<ProjectRecord>, StoreError> {
    let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name, id");
    let rows: Vec<ProjectRow> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(ProjectRow::into_record).collect()
}

pub(crate) async fn create_project(
    conn: &mut SqliteConnection,
    actor: &Actor,
    name: &str,
    protected_labels: &[String],
    first_key: NewApiKey,
) -> Result<(ProjectRecord, ApiKeyRecord), StoreError> {
    let now = write_time(conn).await?;
    let id = ProjectId(uuid::Uuid::new_v4().to_string());
    sqlx::query(
        "INSERT INTO projects (id, name, protected_labels, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&id.0)
    .bind(name)
    .bind(to_json_text("protected labels", &protected_labels)?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(|| format!("project '{name}'"), e))?;
    let project = require_project(conn, &id).await?;
    audit_log::insert(
        conn,
        &id,
        &actor.key_id,
        now,
        audit::project_created(&project),
    )
    .await?;
    let key = insert_key(conn, &id, &actor.key_id, now, first_key).await?;
    Ok((project, key))
}

pub(crate) async fn set_protected_labels(
    conn: &mut SqliteConnection,
    actor: &Actor,
    labels: &[String],
) -> Result<ProjectRecord, StoreError> {
    let before = require_project(conn, &actor.project).await?;
    let now = write_time(conn).await?;
    sqlx::query("UPDATE projects SET protected_labels = ? WHERE id = ?")
        .bind(to_json_text("protected labels", &labels)?)
        .bind(&actor.project.0)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let after = require_project(conn, &actor.project).await?;
    let entry = audit::project_settings_changed(&before, &after);
    audit_log::insert(conn, &actor.project, &actor.key_id, now, entry).await?;
    Ok(after)
}

/// Insert a key into `project` and audit it (`key.created`).
async fn insert_key(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    created_by: &str,
    now: i64,
    key: NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, project_id, name, role, secret_hash, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(&project.0)
    .bind(&key.name)
    .bind(key.role.as_str())
    .bind(&key.secret_hash)
    .bind(created_by)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(|| format!("api key '{}'", key.id), e))?;
    let record = find_key(conn, &key.id).await?.ok_or_else(|| {
        StoreError::Backend(format!("api key '{}' vanished after insert", key.id))
    })?;
    audit_log::insert(conn, project, created_by, now, audit::key_created(&record)).await?;
    Ok(record)
}

pub(crate) async fn create_api_key(
    conn: &mut SqliteConnection,
    actor: &Actor,
    key: NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    require_project(conn, &actor.project).await?;
    let now = write_time(conn).await?;
    insert_key(conn, &actor.project, &actor.key_id, now, key).await
}

pub(crate) async fn find_key(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?");
    let row: Option<KeyRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(KeyRow::into_record).transpose()
}

pub(crate) async fn list_keys(
    conn: &mut SqliteConnection,
    project: &ProjectId,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = ? ORDER BY created_at, rowid"
    );
    let rows: Vec<KeyRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(KeyRow::into_record).collect()
}

pub(crate) async fn active_keys(
    conn: &mut SqliteConnection,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, rowid"
    );
    let rows: Vec<KeyRow> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(KeyRow::into_record).collect()
}

/// Revoke a key of the actor's project. Revoking a revoked key changes nothing and answers
/// the key as it is (no audit record: nothing changed).
pub(crate) async fn revoke_key(
    conn: &mut SqliteConnection,
    actor: &Actor,
    id: &str,
) -> Result<ApiKeyRecord, StoreError> {
    let not_found = || StoreError::NotFound {
        what: format!("api key '{id}'"),
    };
    let before = find_key(conn, id).await?.ok_or_else(not_found)?;
    if before.project != actor.project {
        return Err(not_found());
    }
    if before.revoked_at.is_some() {
        return Ok(before);
    }
    let now = write_time(conn).await?;
    sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let after = find_key(conn, id).await?.ok_or_else(not_found)?;
    audit_log::insert(
        conn,
        &actor.project,
        &actor.key_id,
        now,
        audit::key_revoked(&before, &after),
    )
    .await?;
    Ok(after)
}
