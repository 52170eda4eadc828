//! Aggregate cells: bucketing, the cell key of an event, reading and upserting encoded
//! rollups, and the range query dashboards run. Hour and day cells live in two tables of
//! the same shape; `Granularity` picks the table.

use std::collections::HashMap;
use std::sync::LazyLock;

use promptstore_core::analytics::model::{AnalyticsFilter, CellKey, EventRecord, Granularity};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use sqlx::{AssertSqlSafe, SqliteConnection};
use time::OffsetDateTime;

use super::filter::{Conditions, Param, bind_all_as};
use super::multirow::MultiRow;
use crate::codec::{to_json_text, to_ms, to_u32};
use crate::error::{backend, corrupt};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A cell of one project: cells of several projects are folded together in one ingest.
pub(crate) type ProjectCell = (String, CellKey);

pub(crate) fn table(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "cells_hour",
        Granularity::Day => "cells_day",
    }
}

/// Start of the UTC bucket holding `at_ms`, in Unix seconds.
pub(crate) fn bucket_of(granularity: Granularity, at_ms: i64) -> i64 {
    let size = match granularity {
        Granularity::Hour => HOUR_MS,
        Granularity::Day => DAY_MS,
    };
    at_ms.div_euclid(size) * size / 1000
}

/// The cell an event counts in (the time as stored: whole milliseconds).
pub(crate) fn cell_key(granularity: Granularity, e: &EventRecord) -> CellKey {
    CellKey {
        bucket: bucket_of(granularity, to_ms(e.at)),
        prompt_id: e.prompt_id.clone(),
        prompt: e.prompt.clone(),
        version: e.version,
        label: e.label.clone().unwrap_or_default(),
        model: e.model.clone(),
        experiment: e.experiment.clone().unwrap_or_default(),
        arm: e.arm.clone().unwrap_or_default(),
    }
}

fn decode(blob: &[u8]) -> Result<Rollup, StoreError> {
    Rollup::decode(blob).map_err(|e| corrupt("aggregate cell", e))
}

const KEY_COLUMNS: &str =
    "project, bucket, prompt_id, prompt, version, label, model, experiment, arm";

#[derive(sqlx::FromRow)]
struct CellRow {
    project: String,
    bucket: i64,
    prompt_id: String,
    prompt: String,
    version: i64,
    label: String,
    model: String,
    experiment: String,
    arm: String,
    rollup: Vec<u8>,
}

impl CellRow {
    fn into_parts(self) -> Result<(ProjectCell, Rollup), StoreError> {
        let rollup = decode(&self.rollup)?;
        let key = CellKey {
            bucket: self.bucket,
            prompt_id: self.prompt_id,
            prompt: self.prompt,
            version: to_u32("cell version", self.version)?,
            label: self.label,
            model: self.model,
            experiment: self.experiment,
            arm: self.arm,
        };
        Ok(((self.project, key), rollup))
    }
}

/// The stored rollups of the given cells (those that exist), in one statement: the keys go
/// in as one JSON array, joined against the cell table's unique index.
pub(crate) async fn read_cells(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    keys: &[&ProjectCell],
) -> Result<HashMap<ProjectCell, Rollup>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let json: Vec<serde_json::Value> = keys
        .iter()
        .map(|(project, k)| {
            serde_json::json!([
                project,
                k.bucket,
                k.prompt_id,
                k.prompt,
                k.version,
                k.label,
                k.model,
                k.experiment,
                k.arm
            ])
        })
        .collect();
    let json = to_json_text("cell keys", &json)?;
    let rows: Vec<CellRow> = sqlx::query_as(AssertSqlSafe(read_sql_for(granularity)))
        .bind(json)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(CellRow::into_parts).collect()
}

fn read_sql(table: &str) -> String {
    format!(
        "SELECT c.project, c.bucket, c.prompt_id, c.prompt, c.version, c.label, c.model, \
         c.experiment, c.arm, c.rollup FROM json_each(?1) AS j CROSS JOIN {table} AS c \
         ON c.project = j.value ->> 0 AND c.bucket = j.value ->> 1 \
         AND c.prompt_id = j.value ->> 2 AND c.prompt = j.value ->> 3 \
         AND c.version = j.value ->> 4 AND c.label = j.value ->> 5 \
         AND c.model = j.value ->> 6 AND c.experiment = j.value ->> 7 AND c.arm = j.value ->> 8"
    )
}

// CROSS JOIN fixes json_each as the outer loop, so each key is one unique-index lookup.
static READ_HOUR: LazyLock<String> = LazyLock::new(|| read_sql("cells_hour"));
static READ_DAY: LazyLock<String> = LazyLock::new(|| read_sql("cells_day"));

/// The statement `read_cells` runs (one bound parameter: the keys as a JSON array).
pub(crate) fn read_sql_for(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => READ_HOUR.as_str(),
        Granularity::Day => READ_DAY.as_str(),
    }
}

fn upsert(table: &str) -> MultiRow {
    MultiRow::new(
        &format!("INSERT INTO {table} ({KEY_COLUMNS}, rollup)"),
        10,
        &format!("ON CONFLICT ({KEY_COLUMNS}) DO UPDATE SET rollup = excluded.rollup"),
    )
}

static UPSERT_HOUR: LazyLock<MultiRow> = LazyLock::new(|| upsert("cells_hour"));
static UPSERT_DAY: LazyLock<MultiRow> = LazyLock::new(|| upsert("cells_day"));

/// Write the given cells' rollups, creating or replacing them.
pub(crate) async fn write_cells(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    cells: Vec<(ProjectCell, Rollup)>,
) -> Result<(), StoreError> {
    let statements = match granularity {
        Granularity::Hour => &*UPSERT_HOUR,
        Granularity::Day => &*UPSERT_DAY,
    };
    let mut cells = cells.into_iter();
    for (n, sql) in statements.plan(cells.len()) {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((project, k), rollup) in cells.by_ref().take(n) {
            q = q
                .bind(project)
                .bind(k.bucket)
                .bind(k.prompt_id)
                .bind(k.prompt)
                .bind(i64::from(k.version))
                .bind(k.label)
                .bind(k.model)
                .bind(k.experiment)
                .bind(k.arm)
                .bind(rollup.encode());
        }
        q.execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Fold `fresh` into the stored cells: read the touched cells, merge, write back.
pub(crate) async fn merge_into(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    fresh: HashMap<ProjectCell, Rollup>,
) -> Result<(), StoreError> {
    let keys: Vec<&ProjectCell> = fresh.keys().collect();
    let mut stored = read_cells(conn, granularity, &keys).await?;
    let merged: Vec<(ProjectCell, Rollup)> = fresh
        .into_iter()
        .map(|(key, rollup)| match stored.remove(&key) {
            Some(mut existing) => {
                existing.merge(&rollup);
                (key, existing)
            }
            None => (key, rollup),
        })
        .collect();
    write_cells(conn, granularity, merged).await
}

/// Seconds `s` such that `s * 1000 ms` is at or after `t` (bucket starts are whole seconds).
fn ceil_seconds(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    let secs = nanos.div_euclid(1_000_000_000) + i128::from(nanos.rem_euclid(1_000_000_000) != 0);
    i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

/// Cells of the project whose bucket starts in `[from, to)` and that match `filter`.
pub(crate) async fn query(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    granularity: Granularity,
    from: OffsetDateTime,
    to: OffsetDateTime,
    filter: &AnalyticsFilter,
) -> Result<Vec<(CellKey, Rollup)>, StoreError> {
    let mut c = Conditions::new();
    c.push("c.project = ?", [Param::Text(project.0.clone())]);
    c.push(
        "c.bucket >= ? AND c.bucket < ?",
        [Param::Int(ceil_seconds(from)), Param::Int(ceil_seconds(to))],
    );
    c.filter("c", filter, false);
    let sql = format!(
        "SELECT {KEY_COLUMNS}, rollup FROM {} AS c {} ORDER BY bucket, prompt, version, label, \
         model, experiment, arm, prompt_id",
        table(granularity),
        c.where_sql()
    );
    let rows: Vec<CellRow> = bind_all_as(sqlx::query_as(AssertSqlSafe(sql)), c.params())
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|row| row.into_parts().map(|((_, key), rollup)| (key, rollup)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_utc_hours_and_days() {
        let at = 1_700_000_123_456; // 2023-11-14T22:15:23.456Z
        assert_eq!(bucket_of(Granularity::Hour, at), 1_699_999_200);
        assert_eq!(bucket_of(Granularity::Day, at), 1_699_920_000);
        assert_eq!(
            bucket_of(Granularity::Hour, -1),
            -3600,
            "before the epoch rounds down"
        );
    }

    #[test]
    fn range_bounds_round_up_to_whole_seconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(10_000_000_001).unwrap();
        assert_eq!(ceil_seconds(t), 11);
        assert_eq!(
            ceil_seconds(OffsetDateTime::from_unix_timestamp(10).unwrap()),
            10
        );
        let neg = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000_000).unwrap();
        assert_eq!(ceil_seconds(neg), -1);
    }
}
