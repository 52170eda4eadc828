//! Alert rules (the rule as JSON plus its evaluation state) and their state changes.

use promptstore_core::analytics::model::{AlertEvaluation, AlertEventRecord, AlertRuleRecord};
use promptstore_core::model::ProjectId;
use promptstore_core::store::{Page, PageRequest, StoreError};
use promptstore_types::AlertRuleIn;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::codec::{
    Cursor, decode_cursor, from_json_text, from_ms, into_page, now_ms, page_limit, to_json_text,
    to_ms, to_u64,
};
use crate::error::backend;

/// The state of a rule that was never evaluated: nothing is firing, and its first firing
/// is a transition that gets recorded.
pub(crate) const INITIAL_STATE: &str = "ok";

pub(crate) fn rule_not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: format!("alert rule {id}"),
    }
}

const RULE_COLUMNS: &str = "id, project, rule, state, last_value, last_evaluated_at, created_at";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    project: String,
    rule: String,
    state: String,
    last_value: Option<f64>,
    last_evaluated_at: Option<i64>,
    created_at: i64,
}

impl RuleRow {
    fn into_record(self) -> Result<AlertRuleRecord, StoreError> {
        Ok(AlertRuleRecord {
            id: self.id,
            project: ProjectId(self.project),
            rule: from_json_text("alert rule", &self.rule)?,
            state: self.state,
            last_value: self.last_value,
            last_evaluated_at: self.last_evaluated_at.map(from_ms).transpose()?,
            created_at: from_ms(self.created_at)?,
        })
    }
}

pub(crate) async fn get(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: i64,
) -> Result<Option<AlertRuleRecord>, StoreError> {
    let row: Option<RuleRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE project = ? AND id = ?"
    )))
    .bind(project.0.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    row.map(RuleRow::into_record).transpose()
}

pub(crate) async fn require(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: i64,
) -> Result<AlertRuleRecord, StoreError> {
    get(conn, project, id)
        .await?
        .ok_or_else(|| rule_not_found(id))
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
) -> Result<Vec<AlertRuleRecord>, StoreError> {
    let rows: Vec<RuleRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE project = ? ORDER BY id"
    )))
    .bind(project.0.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(RuleRow::into_record).collect()
}

pub(crate) async fn enabled(
    conn: &mut SqliteConnection,
) -> Result<Vec<AlertRuleRecord>, StoreError> {
    let rows: Vec<RuleRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled = 1 ORDER BY id"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(RuleRow::into_record).collect()
}

pub(crate) async fn create(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    rule: AlertRuleIn,
) -> Result<AlertRuleRecord, StoreError> {
    let row: RuleRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO alert_rules (project, rule, enabled, state, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING {RULE_COLUMNS}"
    )))
    .bind(project.0.as_str())
    .bind(to_json_text("alert rule", &rule)?)
    .bind(rule.enabled)
    .bind(INITIAL_STATE)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    row.into_record()
}

/// Replace the rule's definition (its evaluation state stays); returns before and after.
pub(crate) async fn update(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: i64,
    rule: AlertRuleIn,
) -> Result<(AlertRuleRecord, AlertRuleRecord), StoreError> {
    let before = require(conn, project, id).await?;
    let row: RuleRow = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE alert_rules SET rule = ?, enabled = ? WHERE project = ? AND id = ? \
         RETURNING {RULE_COLUMNS}"
    )))
    .bind(to_json_text("alert rule", &rule)?)
    .bind(rule.enabled)
    .bind(project.0.as_str())
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok((before, row.into_record()?))
}

/// Delete the rule (its history of state changes is kept); returns what was deleted.
pub(crate) async fn delete(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: i64,
) -> Result<AlertRuleRecord, StoreError> {
    let before = require(conn, project, id).await?;
    sqlx::query("DELETE FROM alert_rules WHERE project = ? AND id = ?")
        .bind(project.0.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(before)
}

/// Store the evaluation's state on the rule and append the transition event, if any.
pub(crate) async fn record_evaluation(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    evaluation: AlertEvaluation,
) -> Result<Option<AlertEventRecord>, StoreError> {
    let rule = require(conn, project, evaluation.rule_id).await?;
    let at = to_ms(evaluation.at);
    sqlx::query(
        "UPDATE alert_rules SET state = ?, last_value = ?, last_evaluated_at = ? \
         WHERE project = ? AND id = ?",
    )
    .bind(evaluation.state.as_str())
    .bind(evaluation.value.filter(|v| v.is_finite()))
    .bind(at)
    .bind(project.0.as_str())
    .bind(rule.id)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(transition) = evaluation.transition else {
        return Ok(None);
    };
    // A transition is decided on a value; without one (which the worker does not produce)
    // the event still records the change, with the threshold as the value seen.
    let value = evaluation
        .value
        .filter(|v| v.is_finite())
        .unwrap_or(rule.rule.threshold);
    let sample = i64::try_from(evaluation.sample).unwrap_or(i64::MAX);
    let row: EventRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO alert_events (project, rule_id, rule_name, state, value, threshold, sample, at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {EVENT_COLUMNS}"
    )))
    .bind(project.0.as_str())
    .bind(rule.id)
    .bind(rule.rule.name.as_str())
    .bind(transition)
    .bind(value)
    .bind(rule.rule.threshold)
    .bind(sample)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    row.into_record().map(Some)
}

const EVENT_COLUMNS: &str = "id, project, rule_id, rule_name, state, value, threshold, sample, at";

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    project: String,
    rule_id: i64,
    rule_name: String,
    state: String,
    value: f64,
    threshold: f64,
    sample: i64,
    at: i64,
}

impl EventRow {
    fn into_record(self) -> Result<AlertEventRecord, StoreError> {
        Ok(AlertEventRecord {
            id: self.id,
            project: ProjectId(self.project),
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            state: self.state,
            value: self.value,
            threshold: self.threshold,
            sample: to_u64("alert sample", self.sample)?,
            at: from_ms(self.at)?,
        })
    }
}

/// State changes newest first, paginated by id.
pub(crate) async fn list_events(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    rule: Option<i64>,
    page: &PageRequest,
) -> Result<Page<AlertEventRecord>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let before_id = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Id(id) => Some(id),
        _ => None,
    })?;
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM alert_events WHERE project = ?");
    if rule.is_some() {
        sql.push_str(" AND rule_id = ?");
    }
    if before_id.is_some() {
        sql.push_str(" AND id < ?");
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let mut q = sqlx::query_as::<_, EventRow>(AssertSqlSafe(sql)).bind(project.0.as_str());
    if let Some(rule) = rule {
        q = q.bind(rule);
    }
    if let Some(id) = before_id {
        q = q.bind(id);
    }
    let rows = q.bind(fetch).fetch_all(&mut *conn).await.map_err(backend)?;
    into_page(rows, limit, EventRow::into_record, |e| {
        Cursor::Id(e.id).encode()
    })
}
