//! Aggregate cells: bucketing, the cell key of an event, reading and upserting encoded
//! rollups, the roll-up levels kept beside them, and the range queries dashboards run. Hour
//! and day cells live in two tables of the same shape; `Granularity` picks the table.
//!
//! Architecture invariant: every write of fine cells (`Merges::write`, `replace_judgements`)
//! writes the same change to the roll-up levels (`rollups_hour`, `rollups_day`: per project,
//! per prompt name) in the same transaction, so a level cell always equals the merge of the
//! fine cells it covers. Only `fold` reads the levels, when the query needs no finer key.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::LazyLock;

use futures_util::TryStreamExt;
use promptstore_core::analytics::model::{AnalyticsFilter, CellKey, EventRecord, Granularity};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::analytics::store::{CellQuery, CellSink, KeyDetail};
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use promptstore_types::Feedback;
use sqlx::{AssertSqlSafe, FromRow, Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::cache::{Cached, CellCache, CellMap, Staged};
use super::filter::{Conditions, Param, bind_all_as};
use super::multirow::{MultiRow, SqliteQuery};
use crate::codec::{to_json_text, to_ms, to_u32};
use crate::error::{backend, corrupt};

/// Milliseconds per hour: hour cells, and the hour a block of raw events covers.
pub(crate) const HOUR_MS: i64 = 3_600_000;
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
        let (key, _) = self.into_key_and_bytes()?;
        Ok((key, rollup))
    }

    /// The cell's key and its rollup as stored (not decoded).
    fn into_key_and_bytes(self) -> Result<(ProjectCell, Vec<u8>), StoreError> {
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
        Ok(((self.project, key), self.rollup))
    }
}

/// The stored rollups of the given cells (those that exist) with their rowids, in one
/// statement: the keys go in as one JSON array, joined against the cell table's unique index.
pub(crate) async fn read_cells(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    keys: &[&ProjectCell],
) -> Result<HashMap<ProjectCell, Cached>, StoreError> {
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
    let rows: Vec<(i64, CellRow)> = sqlx::query(AssertSqlSafe(read_sql_for(granularity)))
        .bind(json)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        .iter()
        .map(|row| Ok((row.try_get("rowid")?, CellRow::from_row(row)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(backend)?;
    rows.into_iter()
        .map(|(rowid, row)| {
            let (key, bytes) = row.into_key_and_bytes()?;
            Ok((key, Cached { rowid, bytes }))
        })
        .collect()
}

fn read_sql(table: &str) -> String {
    format!(
        "SELECT c.rowid AS rowid, c.project, c.bucket, c.prompt_id, c.prompt, c.version, c.label, c.model, \
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

/// `UPDATE` of cells by rowid, many per statement: `(rowid, rollup)` rows joined by rowid.
/// `OR IGNORE`, like the event insert: a statement that cannot abort half-way needs no
/// statement journal; `update_rollups` checks that every row was updated.
fn update_by_rowid(table: &str) -> MultiRow {
    MultiRow::new(
        &format!("UPDATE OR IGNORE {table} SET rollup = v.column2 FROM ("),
        2,
        &format!(") AS v WHERE {table}.rowid = v.column1"),
    )
}

static UPDATE_HOUR: LazyLock<MultiRow> = LazyLock::new(|| update_by_rowid("cells_hour"));
static UPDATE_DAY: LazyLock<MultiRow> = LazyLock::new(|| update_by_rowid("cells_day"));
static UPDATE_LEVELS_HOUR: LazyLock<MultiRow> = LazyLock::new(|| update_by_rowid("rollups_hour"));
static UPDATE_LEVELS_DAY: LazyLock<MultiRow> = LazyLock::new(|| update_by_rowid("rollups_day"));

/// The statement `update_rollups` runs for `rows` cells of the fine (`levels = false`) or
/// level table (tests read its plan).
#[cfg(test)]
pub(crate) fn update_sql_for(granularity: Granularity, levels: bool, rows: usize) -> String {
    let statements = update_statements(granularity, levels);
    statements
        .plan(rows)
        .first()
        .map(|(_, sql)| sql.to_string())
        .unwrap_or_default()
}

fn update_statements(granularity: Granularity, levels: bool) -> &'static MultiRow {
    match (granularity, levels) {
        (Granularity::Hour, false) => &UPDATE_HOUR,
        (Granularity::Day, false) => &UPDATE_DAY,
        (Granularity::Hour, true) => &UPDATE_LEVELS_HOUR,
        (Granularity::Day, true) => &UPDATE_LEVELS_DAY,
    }
}

/// Replace the rollups of existing cells, by rowid.
async fn update_rollups(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    levels: bool,
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<(), StoreError> {
    update_statements(granularity, levels)
        .execute(
            conn,
            rows,
            |q, (rowid, rollup)| q.bind(rowid).bind(rollup),
            Some("aggregate cells to update were not found"),
        )
        .await
        .map(drop)
}

/// The largest rowid of a cell table (0 when empty): new cells get the ones after it, so
/// that their rowids are known without reading them back.
async fn max_rowid(conn: &mut SqliteConnection, table: &str) -> Result<i64, StoreError> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COALESCE(MAX(rowid), 0) FROM {table}"
    )))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)
}

fn insert_cells_sql(table: &str) -> MultiRow {
    MultiRow::new(
        &format!("INSERT OR IGNORE INTO {table} (rowid, {KEY_COLUMNS}, rollup)"),
        11,
        "",
    )
}

static INSERT_HOUR: LazyLock<MultiRow> = LazyLock::new(|| insert_cells_sql("cells_hour"));
static INSERT_DAY: LazyLock<MultiRow> = LazyLock::new(|| insert_cells_sql("cells_day"));

/// Create new fine cells with the given rowids (none of them exists: the caller read them).
async fn insert_cells(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    cells: Vec<(i64, ProjectCell, Vec<u8>)>,
) -> Result<(), StoreError> {
    let statements = match granularity {
        Granularity::Hour => &*INSERT_HOUR,
        Granularity::Day => &*INSERT_DAY,
    };
    statements
        .execute(
            conn,
            cells,
            |q, (rowid, cell, rollup)| bind_cell(q.bind(rowid), cell).bind(rollup),
            Some("new aggregate cells were refused by the database"),
        )
        .await
        .map(drop)
}

/// The key columns of a fine cell, in `KEY_COLUMNS` order.
fn bind_cell(q: SqliteQuery, (project, k): ProjectCell) -> SqliteQuery {
    q.bind(project)
        .bind(k.bucket)
        .bind(k.prompt_id)
        .bind(k.prompt)
        .bind(i64::from(k.version))
        .bind(k.label)
        .bind(k.model)
        .bind(k.experiment)
        .bind(k.arm)
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
async fn write_cells(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    cells: Vec<(ProjectCell, Rollup)>,
) -> Result<(), StoreError> {
    let statements = match granularity {
        Granularity::Hour => &*UPSERT_HOUR,
        Granularity::Day => &*UPSERT_DAY,
    };
    statements
        .execute(
            conn,
            cells,
            |q, (cell, rollup)| bind_cell(q, cell).bind(rollup.encode()),
            None,
        )
        .await
        .map(drop)
}

/// One touched cell during a merge: its key, the stored cell (from the cache or the file;
/// `None` when new) and the batch's contribution.
type Work<K> = (K, Option<Cached>, Rollup);

/// The batch's cells, each with its stored value when the cache holds it (taken out: it
/// comes back only after the commit).
fn take_cached<K: Hash + Eq>(map: &mut CellMap<K>, fresh: HashMap<K, Rollup>) -> Vec<Work<K>> {
    fresh
        .into_iter()
        .map(|(key, delta)| {
            let cached = map.take(&key);
            (key, cached, delta)
        })
        .collect()
}

/// The keys whose stored value is not known yet (to read from the file).
fn uncached<K>(work: &[Work<K>]) -> Vec<&K> {
    work.iter()
        .filter(|w| w.1.is_none())
        .map(|w| &w.0)
        .collect()
}

/// Put the values read from the file in; cells still without one are new.
fn fill_stored<K: Hash + Eq>(work: &mut [Work<K>], mut stored: HashMap<K, Cached>) {
    for w in work.iter_mut().filter(|w| w.1.is_none()) {
        w.1 = stored.remove(&w.0);
    }
}

/// The first rowid for the new cells of `work` in `table` (0, unused, when there are none).
async fn first_new_rowid<K>(
    conn: &mut SqliteConnection,
    work: &[Work<K>],
    table: &str,
) -> Result<i64, StoreError> {
    if work.iter().any(|w| w.1.is_none()) {
        Ok(max_rowid(conn, table).await? + 1)
    } else {
        Ok(0)
    }
}

/// What a merge writes: rollups of existing cells by rowid, new cells, and every touched
/// cell's new value for the cache.
struct Merged<K> {
    updates: Vec<(i64, Vec<u8>)>,
    inserts: Vec<(i64, K, Vec<u8>)>,
    staged: Vec<(K, Cached)>,
}

/// Cells merged between two yields of `Touched::merge`: a few milliseconds of work.
const MERGE_STEP: usize = 64;

/// Merge each cell's contribution into its stored value; new cells get rowids from
/// `next_rowid` on. The stored bytes are folded into the contribution (every field of a
/// rollup is a sum, so this is the same value as the stored rollup plus the contribution).
/// Yields to the runtime every `MERGE_STEP` cells (see `Touched::merge`).
async fn merge_work<K: Clone>(
    work: Vec<Work<K>>,
    mut next_rowid: i64,
) -> Result<Merged<K>, StoreError> {
    let mut merged = Merged {
        updates: Vec::with_capacity(work.len()),
        inserts: Vec::new(),
        staged: Vec::with_capacity(work.len()),
    };
    for (i, (key, stored, mut sum)) in work.into_iter().enumerate() {
        if i > 0 && i % MERGE_STEP == 0 {
            tokio::task::yield_now().await;
        }
        let cached = match stored {
            Some(stored) => {
                sum.merge_encoded(&stored.bytes)
                    .map_err(|e| corrupt("aggregate cell", e))?;
                let cached = Cached {
                    rowid: stored.rowid,
                    bytes: sum.encode(),
                };
                merged.updates.push((cached.rowid, cached.bytes.clone()));
                cached
            }
            None => {
                let cached = Cached {
                    rowid: next_rowid,
                    bytes: sum.encode(),
                };
                next_rowid += 1;
                merged
                    .inserts
                    .push((cached.rowid, key.clone(), cached.bytes.clone()));
                cached
            }
        };
        merged.staged.push((key, cached));
    }
    Ok(merged)
}

/// One table's share of a commit: the touched cells with their stored values, and the
/// first rowid for the new ones.
struct Gathered<K> {
    granularity: Granularity,
    work: Vec<Work<K>>,
    next_rowid: i64,
}

/// The cells a commit touches — hour and day cells and their roll-up levels — with their
/// stored values, from the cache or, when not cached, read from the file.
///
/// Merging them (`merge`) issues no statement, so the ingest runs it while SQLite writes
/// the commit's events: the two halves of a commit's work then overlap on two cores.
pub(crate) struct Touched {
    cells: Vec<Gathered<ProjectCell>>,
    levels: Vec<Gathered<LevelKey>>,
}

/// The roll-up level cells a commit's hour and day cells feed.
#[derive(Default)]
pub(crate) struct Levels {
    pub(crate) hour: HashMap<LevelKey, Rollup>,
    pub(crate) day: HashMap<LevelKey, Rollup>,
}

impl Levels {
    /// The levels of a commit's hour cells: each fine cell merged into its level cells, and
    /// each day level the merge of the hour levels inside it (equal to the merge of the day's
    /// fine cells, for far fewer merges).
    pub(crate) fn of(hours: &HashMap<ProjectCell, Rollup>) -> Levels {
        let mut hour: HashMap<LevelKey, Rollup> = HashMap::new();
        for ((project, key), rollup) in hours {
            for level in level_keys(project, &key.prompt, key.bucket) {
                hour.entry(level).or_default().merge(rollup);
            }
        }
        let mut day: HashMap<LevelKey, Rollup> = HashMap::new();
        for ((project, level, prompt, bucket), rollup) in &hour {
            // An hour bucket (seconds) lies inside one UTC day.
            let day_bucket = bucket_of(Granularity::Day, bucket.saturating_mul(1000));
            day.entry((project.clone(), *level, prompt.clone(), day_bucket))
                .or_default()
                .merge(rollup);
        }
        Levels { hour, day }
    }
}

/// A commit's contribution at one granularity: to its fine cells, and to their levels.
pub(crate) type Fold = (
    Granularity,
    HashMap<ProjectCell, Rollup>,
    HashMap<LevelKey, Rollup>,
);

/// Look up the stored values of the cells and roll-up levels `folds` touch. The touched
/// cells leave the cache; the merged values come back with `Staged` only once the
/// transaction has committed.
pub(crate) async fn touch(
    conn: &mut SqliteConnection,
    cache: &mut CellCache,
    folds: [Fold; 2],
) -> Result<Touched, StoreError> {
    let mut touched = Touched {
        cells: Vec::with_capacity(2),
        levels: Vec::with_capacity(2),
    };
    for (granularity, fresh, fresh_levels) in folds {
        let levels = gather(conn, cache.levels(granularity), granularity, fresh_levels).await?;
        touched.levels.push(levels);
        let cells = gather(conn, cache.cells(granularity), granularity, fresh).await?;
        touched.cells.push(cells);
    }
    Ok(touched)
}

/// The two kinds of cell a commit merges into: fine cells and roll-up level cells.
trait CellKind: Hash + Eq + Clone {
    fn table(granularity: Granularity) -> &'static str;

    /// The stored cells among `keys` (those that exist), with their rowids.
    async fn read(
        conn: &mut SqliteConnection,
        granularity: Granularity,
        keys: &[&Self],
    ) -> Result<HashMap<Self, Cached>, StoreError>;
}

impl CellKind for ProjectCell {
    fn table(granularity: Granularity) -> &'static str {
        table(granularity)
    }

    async fn read(
        conn: &mut SqliteConnection,
        granularity: Granularity,
        keys: &[&Self],
    ) -> Result<HashMap<Self, Cached>, StoreError> {
        read_cells(conn, granularity, keys).await
    }
}

impl CellKind for LevelKey {
    fn table(granularity: Granularity) -> &'static str {
        level_table(granularity)
    }

    async fn read(
        conn: &mut SqliteConnection,
        granularity: Granularity,
        keys: &[&Self],
    ) -> Result<HashMap<Self, Cached>, StoreError> {
        read_levels(conn, granularity, keys).await
    }
}

/// One table's touched cells: from the cache, or read from the file when not cached.
async fn gather<K: CellKind>(
    conn: &mut SqliteConnection,
    map: &mut CellMap<K>,
    granularity: Granularity,
    fresh: HashMap<K, Rollup>,
) -> Result<Gathered<K>, StoreError> {
    let mut work = take_cached(map, fresh);
    let missing = uncached(&work);
    if !missing.is_empty() {
        let stored = K::read(conn, granularity, &missing).await?;
        fill_stored(&mut work, stored);
    }
    let next_rowid = first_new_rowid(conn, &work, K::table(granularity)).await?;
    Ok(Gathered {
        granularity,
        work,
        next_rowid,
    })
}

/// The merged cells of a commit, to write.
pub(crate) struct Merges {
    cells: Vec<(Granularity, Merged<ProjectCell>)>,
    levels: Vec<(Granularity, Merged<LevelKey>)>,
}

impl Touched {
    /// Merge every touched cell: computation only, yielding to the runtime every few cells
    /// so that statements awaited beside it (`futures_util::future::join`) are sent to
    /// SQLite as soon as the previous one is done.
    pub(crate) async fn merge(self) -> Result<Merges, StoreError> {
        let mut merges = Merges {
            cells: Vec::with_capacity(self.cells.len()),
            levels: Vec::with_capacity(self.levels.len()),
        };
        for g in self.levels {
            let merged = merge_work(g.work, g.next_rowid).await?;
            merges.levels.push((g.granularity, merged));
        }
        for g in self.cells {
            let merged = merge_work(g.work, g.next_rowid).await?;
            merges.cells.push((g.granularity, merged));
        }
        Ok(merges)
    }
}

impl Merges {
    /// Write the merged cells by rowid (new ones inserted) and stage them for the cache.
    pub(crate) async fn write(
        self,
        conn: &mut SqliteConnection,
        staged: &mut Staged,
    ) -> Result<(), StoreError> {
        for (granularity, merged) in self.levels {
            update_rollups(conn, granularity, true, merged.updates).await?;
            insert_levels(conn, granularity, merged.inserts).await?;
            match granularity {
                Granularity::Hour => staged.levels_hour = merged.staged,
                Granularity::Day => staged.levels_day = merged.staged,
            }
        }
        for (granularity, merged) in self.cells {
            update_rollups(conn, granularity, false, merged.updates).await?;
            insert_cells(conn, granularity, merged.inserts).await?;
            match granularity {
                Granularity::Hour => staged.hour = merged.staged,
                Granularity::Day => staged.day = merged.staged,
            }
        }
        Ok(())
    }
}

// ---- roll-up levels ----------------------------------------------------------------------

/// Level 0: one cell per project and bucket (prompt `''`).
const LEVEL_PROJECT: i64 = 0;
/// Level 1: one cell per project, prompt name and bucket.
const LEVEL_PROMPT: i64 = 1;

/// A roll-up level cell: (project, level, prompt name or `''`, bucket).
pub(crate) type LevelKey = (String, i64, String, i64);

fn level_table(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "rollups_hour",
        Granularity::Day => "rollups_day",
    }
}

/// The level cells a fine cell of `prompt` in `bucket` counts in.
fn level_keys(project: &str, prompt: &str, bucket: i64) -> [LevelKey; 2] {
    [
        (project.to_owned(), LEVEL_PROJECT, String::new(), bucket),
        (project.to_owned(), LEVEL_PROMPT, prompt.to_owned(), bucket),
    ]
}

fn read_levels_sql(table: &str) -> String {
    format!(
        "SELECT c.rowid, c.project, c.level, c.prompt, c.bucket, c.rollup FROM json_each(?1) AS j \
         CROSS JOIN {table} AS c ON c.project = j.value ->> 0 AND c.level = j.value ->> 1 \
         AND c.prompt = j.value ->> 2 AND c.bucket = j.value ->> 3"
    )
}

static READ_LEVELS_HOUR: LazyLock<String> = LazyLock::new(|| read_levels_sql("rollups_hour"));
static READ_LEVELS_DAY: LazyLock<String> = LazyLock::new(|| read_levels_sql("rollups_day"));

fn upsert_levels(table: &str) -> MultiRow {
    MultiRow::new(
        &format!("INSERT INTO {table} (project, level, prompt, bucket, rollup)"),
        5,
        "ON CONFLICT (project, level, prompt, bucket) DO UPDATE SET rollup = excluded.rollup",
    )
}

static UPSERT_LEVELS_HOUR: LazyLock<MultiRow> = LazyLock::new(|| upsert_levels("rollups_hour"));
static UPSERT_LEVELS_DAY: LazyLock<MultiRow> = LazyLock::new(|| upsert_levels("rollups_day"));

fn insert_levels_sql(table: &str) -> MultiRow {
    MultiRow::new(
        &format!("INSERT OR IGNORE INTO {table} (rowid, project, level, prompt, bucket, rollup)"),
        6,
        "",
    )
}

static INSERT_LEVELS_HOUR: LazyLock<MultiRow> = LazyLock::new(|| insert_levels_sql("rollups_hour"));
static INSERT_LEVELS_DAY: LazyLock<MultiRow> = LazyLock::new(|| insert_levels_sql("rollups_day"));

/// The stored level cells among `keys` (those that exist) with their rowids, encoded, in
/// one statement.
async fn read_levels(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    keys: &[&LevelKey],
) -> Result<HashMap<LevelKey, Cached>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let json: Vec<serde_json::Value> = keys
        .iter()
        .map(|(project, level, prompt, bucket)| serde_json::json!([project, level, prompt, bucket]))
        .collect();
    let sql = match granularity {
        Granularity::Hour => READ_LEVELS_HOUR.as_str(),
        Granularity::Day => READ_LEVELS_DAY.as_str(),
    };
    let rows: Vec<(i64, String, i64, String, i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(to_json_text("level keys", &json)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(rowid, project, level, prompt, bucket, bytes)| {
            ((project, level, prompt, bucket), Cached { rowid, bytes })
        })
        .collect())
}

/// Create or replace the given level cells.
async fn write_levels(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    cells: Vec<(LevelKey, Rollup)>,
) -> Result<(), StoreError> {
    let statements = match granularity {
        Granularity::Hour => &*UPSERT_LEVELS_HOUR,
        Granularity::Day => &*UPSERT_LEVELS_DAY,
    };
    statements
        .execute(
            conn,
            cells,
            |q, (level, rollup)| bind_level(q, level).bind(rollup.encode()),
            None,
        )
        .await
        .map(drop)
}

/// The key columns of a level cell: project, level, prompt, bucket.
fn bind_level(q: SqliteQuery, (project, level, prompt, bucket): LevelKey) -> SqliteQuery {
    q.bind(project).bind(level).bind(prompt).bind(bucket)
}

/// Create new level cells with the given rowids (none of them exists: the caller read them).
async fn insert_levels(
    conn: &mut SqliteConnection,
    granularity: Granularity,
    cells: Vec<(i64, LevelKey, Vec<u8>)>,
) -> Result<(), StoreError> {
    let statements = match granularity {
        Granularity::Hour => &*INSERT_LEVELS_HOUR,
        Granularity::Day => &*INSERT_LEVELS_DAY,
    };
    statements
        .execute(
            conn,
            cells,
            |q, (rowid, level, rollup)| bind_level(q.bind(rowid), level).bind(rollup),
            Some("new roll-up level cells were refused by the database"),
        )
        .await
        .map(drop)
}

/// Late judgements of a stored event: adjust its hour and day cells, and their roll-up level
/// cells, by the difference (`Rollup::replace_judgements`). Part of the caller's transaction.
/// The touched cells leave the cache (they are read from the file when next needed), so a
/// failed transaction cannot leave the cache ahead of the file.
pub(crate) async fn replace_judgements(
    conn: &mut SqliteConnection,
    cache: &mut CellCache,
    project: &ProjectId,
    event_id: i64,
    event: &EventRecord,
    old: (&BTreeMap<String, f64>, Option<&Feedback>),
    new: (&BTreeMap<String, f64>, Option<&Feedback>),
) -> Result<(), StoreError> {
    let missing = |granularity: Granularity, what: &str| {
        corrupt(
            "aggregate cells",
            format!("event {event_id} has no {granularity:?} {what}"),
        )
    };
    for granularity in [Granularity::Hour, Granularity::Day] {
        let key = (project.0.clone(), cell_key(granularity, event));
        let levels = level_keys(&project.0, &key.1.prompt, key.1.bucket);
        cache.cells(granularity).take(&key);
        for level in &levels {
            cache.levels(granularity).take(level);
        }
        let mut cells = read_cells(conn, granularity, &[&key]).await?;
        let stored = cells
            .remove(&key)
            .ok_or_else(|| missing(granularity, "cell"))?;
        let mut rollup = decode(&stored.bytes)?;
        rollup.replace_judgements(old.0, old.1, new.0, new.1);
        write_cells(conn, granularity, vec![(key, rollup)]).await?;

        let stored = read_levels(conn, granularity, &levels.iter().collect::<Vec<_>>()).await?;
        let mut adjusted = Vec::with_capacity(levels.len());
        for level in levels {
            let cell = stored
                .get(&level)
                .ok_or_else(|| missing(granularity, "roll-up level cell"))?;
            let mut rollup =
                Rollup::decode(&cell.bytes).map_err(|e| corrupt("roll-up level cell", e))?;
            rollup.replace_judgements(old.0, old.1, new.0, new.1);
            adjusted.push((level, rollup));
        }
        write_levels(conn, granularity, adjusted).await?;
    }
    Ok(())
}

/// Compute the roll-up levels from the fine cells when migration 4 found cells written
/// before the levels existed: one `BEGIN IMMEDIATE` transaction, one bucket at a time (memory:
/// one bucket's level cells). Nothing to do on every later open.
pub(crate) async fn backfill_levels(write: &SqlitePool) -> Result<(), StoreError> {
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM rollup_levels_backfill")
        .fetch_one(write)
        .await
        .map_err(backend)?;
    if pending == 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut tx = crate::tx::begin(write).await?;
    let result = async {
        let mut cells = 0u64;
        for granularity in [Granularity::Hour, Granularity::Day] {
            let levels = level_table(granularity);
            let fine = table(granularity);
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {levels}")))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let buckets: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT DISTINCT project, bucket FROM {fine} ORDER BY project, bucket"
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            for (project, bucket) in buckets {
                let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT prompt, rollup FROM {fine} WHERE project = ? AND bucket = ?"
                )))
                .bind(&project)
                .bind(bucket)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
                let mut folded: HashMap<LevelKey, Rollup> = HashMap::new();
                for (prompt, bytes) in &rows {
                    for key in level_keys(&project, prompt, bucket) {
                        folded
                            .entry(key)
                            .or_default()
                            .merge_encoded(bytes)
                            .map_err(|e| corrupt("aggregate cell", e))?;
                    }
                }
                cells += rows.len() as u64;
                write_levels(&mut tx, granularity, folded.into_iter().collect()).await?;
            }
        }
        sqlx::query("DELETE FROM rollup_levels_backfill")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(cells)
    }
    .await;
    let cells = crate::tx::finish(tx, result).await?;
    tracing::info!(
        cells,
        ms = started.elapsed().as_millis() as u64,
        "roll-up levels computed from the existing cells"
    );
    Ok(())
}

/// The roll-up level that answers `query`, if any: the filter names nothing finer than the
/// prompt, and the query needs nothing finer than the level keeps.
fn level_for(query: &CellQuery<'_>) -> Option<i64> {
    let f = query.filter;
    let only_prompt = f.version.is_none()
        && f.label.is_none()
        && f.model.is_none()
        && f.experiment.is_none()
        && f.arm.is_none();
    if !only_prompt {
        return None;
    }
    match query.detail {
        KeyDetail::Bucket if f.prompt.is_none() => Some(LEVEL_PROJECT),
        KeyDetail::Bucket | KeyDetail::Prompt => Some(LEVEL_PROMPT),
        KeyDetail::Full => None,
    }
}

/// Feed the cells `query` names to `sink` row by row (see `AnalyticsStore::fold_cells`): from
/// a roll-up level when one answers it, from the fine cells otherwise.
pub(crate) async fn fold(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    query: &CellQuery<'_>,
    sink: &mut CellSink<'_>,
) -> Result<(), StoreError> {
    let mut c = Conditions::new();
    c.push("c.project = ?", [Param::Text(project.0.clone())]);
    let level = level_for(query);
    let sql = match level {
        Some(level) => {
            c.push("c.level = ?", [Param::Int(level)]);
            if let Some(prompt) = &query.filter.prompt {
                c.push("c.prompt = ?", [Param::Text(prompt.clone())]);
            }
            c.push(
                "c.bucket >= ? AND c.bucket < ?",
                [
                    Param::Int(ceil_seconds(query.from)),
                    Param::Int(ceil_seconds(query.to)),
                ],
            );
            format!(
                "SELECT c.bucket, c.prompt, c.rollup FROM {} AS c {}",
                level_table(query.granularity),
                c.where_sql()
            )
        }
        None => {
            c.push(
                "c.bucket >= ? AND c.bucket < ?",
                [
                    Param::Int(ceil_seconds(query.from)),
                    Param::Int(ceil_seconds(query.to)),
                ],
            );
            c.filter("c", query.filter);
            format!(
                "SELECT c.bucket, c.prompt, c.rollup, c.prompt_id, c.version, c.label, c.model, \
                 c.experiment, c.arm FROM {} AS c {}",
                table(query.granularity),
                c.where_sql()
            )
        }
    };
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for p in c.params() {
        q = match p {
            Param::Text(s) => q.bind(s.clone()),
            Param::Int(n) => q.bind(*n),
        };
    }
    // One key, refilled for every row: no allocation per cell once its strings have grown.
    let mut key = CellKey {
        bucket: 0,
        prompt_id: String::new(),
        prompt: String::new(),
        version: 0,
        label: String::new(),
        model: String::new(),
        experiment: String::new(),
        arm: String::new(),
    };
    let set = |slot: &mut String, value: &str| {
        slot.clear();
        slot.push_str(value);
    };
    let mut rows = q.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(backend)? {
        key.bucket = row.try_get(0).map_err(backend)?;
        set(&mut key.prompt, row.try_get(1).map_err(backend)?);
        if level.is_none() {
            set(&mut key.prompt_id, row.try_get(3).map_err(backend)?);
            key.version = to_u32("cell version", row.try_get(4).map_err(backend)?)?;
            set(&mut key.label, row.try_get(5).map_err(backend)?);
            set(&mut key.model, row.try_get(6).map_err(backend)?);
            set(&mut key.experiment, row.try_get(7).map_err(backend)?);
            set(&mut key.arm, row.try_get(8).map_err(backend)?);
        }
        let rollup: &[u8] = row.try_get(2).map_err(backend)?;
        sink(&key, rollup).map_err(|e| corrupt("aggregate cell", e))?;
    }
    Ok(())
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
    c.filter("c", filter);
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
