//! Direct access to an analytics database file (`events.db`) for the benchmarks: the
//! raw-insert baseline (the same rows and durability as the product, without the product),
//! and the durability check that counts what a killed server left behind.
//!
//! The baseline is deliberately minimal: one sqlx connection, WAL and `synchronous=FULL`
//! like the product's analytics writer, a table with the product's event columns and no
//! index beyond its integer key, and one prepared 1,000-row `INSERT` per transaction. It
//! does not deduplicate client ids, index anything for reads, fold aggregate cells, parse
//! HTTP or validate: that is the work whose cost the comparison shows. `--indexes
//! row-layout` adds the four indexes the product kept on such a table before it stored
//! events in blocks, to measure what they cost.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use promptstore_core::analytics::rollup::Rollup;
use promptstore_types::EventIn;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

/// One row per event: the product's event columns, as its row layout stored them
/// (migration 1 of the analytics schema).
const TABLE: &str = "CREATE TABLE events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project             TEXT NOT NULL,
    client_id           TEXT,
    prompt_id           TEXT NOT NULL,
    prompt              TEXT NOT NULL,
    version             INTEGER NOT NULL,
    label               TEXT,
    experiment          TEXT,
    arm                 TEXT,
    unit_id             TEXT,
    model               TEXT NOT NULL,
    provider            TEXT,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    latency_ms          REAL,
    ttft_ms             REAL,
    cost                REAL,
    cost_source         TEXT NOT NULL,
    success             INTEGER NOT NULL,
    error_type          TEXT,
    scores              TEXT,
    feedback            TEXT,
    metadata            TEXT,
    at                  INTEGER NOT NULL
)";

/// The indexes the product kept on that table before event blocks (migrations 1 to 4).
const ROW_LAYOUT_INDEXES: &str = "
CREATE UNIQUE INDEX events_by_client_id ON events(project, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX events_by_second ON events(project, at / 1000, id, at);
CREATE INDEX events_by_prompt_hour ON events(project, prompt, at / 3600000, id, at);
CREATE INDEX events_by_experiment ON events(project, experiment, at / 3600000, id, at)
    WHERE experiment IS NOT NULL;";

/// Which indexes the baseline's table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineIndexes {
    /// None beyond the integer key: the minimal program, the benchmark proper.
    None,
    /// The product's indexes of its former row layout.
    RowLayout,
}

impl FromStr for BaselineIndexes {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "none" => Ok(BaselineIndexes::None),
            "row-layout" => Ok(BaselineIndexes::RowLayout),
            other => anyhow::bail!("--indexes must be none or row-layout, not '{other}'"),
        }
    }
}

/// Columns the baseline writes: exactly the product's `events` columns.
const COLUMNS: &str = "id, project, client_id, prompt_id, prompt, version, label, experiment, \
     arm, unit_id, model, provider, input_tokens, output_tokens, cached_input_tokens, \
     latency_ms, ttft_ms, cost, cost_source, success, error_type, scores, feedback, metadata, at";
const COLUMN_COUNT: usize = 25;

/// Open (creating) a database with the product's analytics-writer settings.
pub async fn open_like_the_product(path: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .context("sqlite options")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("cache_size", "-32768")
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", "4000");
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Create the baseline's table (and `indexes`) in an empty database.
pub async fn create_schema(
    conn: &mut SqliteConnection,
    indexes: BaselineIndexes,
) -> anyhow::Result<()> {
    sqlx::raw_sql(TABLE)
        .execute(&mut *conn)
        .await
        .context("creating the events table")?;
    if indexes == BaselineIndexes::RowLayout {
        sqlx::raw_sql(ROW_LAYOUT_INDEXES)
            .execute(&mut *conn)
            .await
            .context("creating the row layout's indexes")?;
    }
    Ok(())
}

/// The multi-row `INSERT` for `rows` events, in the form the product uses (`OR IGNORE`: a
/// statement that cannot abort half-way needs no statement journal); `insert_batch` checks
/// that every row went in.
pub fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; COLUMN_COUNT].join(","));
    format!(
        "INSERT OR IGNORE INTO events ({COLUMNS}) VALUES {}",
        vec![row.as_str(); rows].join(",")
    )
}

/// A stand-in for a prompt id (the product stores the prompt's UUID): 36 characters.
fn prompt_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

/// Insert one batch in one transaction (`BEGIN IMMEDIATE` … `COMMIT`, durable when it
/// returns), ids `first_id..`. Costs are computed inline from a flat price so the row holds
/// a number, as the product's computed costs do.
pub async fn insert_batch(
    conn: &mut SqliteConnection,
    sql: &str,
    project: &str,
    first_id: i64,
    events: &[EventIn],
) -> anyhow::Result<()> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
    for (offset, e) in events.iter().enumerate() {
        let input = e.input_tokens.unwrap_or(0);
        let output = e.output_tokens.unwrap_or(0);
        let cost = (input as f64 * 0.15 + output as f64 * 0.60) / 1e6;
        let scores = if e.scores.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&e.scores)?)
        };
        let feedback = e.feedback.as_ref().map(serde_json::to_string).transpose()?;
        let metadata = e.metadata.as_ref().map(serde_json::to_string).transpose()?;
        let at_ms = e
            .timestamp
            .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
        q = q
            .bind(first_id + offset as i64)
            .bind(project)
            .bind(e.id.clone())
            .bind(prompt_id(&e.prompt))
            .bind(e.prompt.clone())
            .bind(i64::from(e.version.unwrap_or(1)))
            .bind(e.label.clone())
            .bind(e.experiment.clone())
            .bind(e.arm.clone())
            .bind(e.unit_id.clone())
            .bind(e.model.clone().unwrap_or_default())
            .bind(e.provider.clone())
            .bind(input as i64)
            .bind(output as i64)
            .bind(e.cached_input_tokens.unwrap_or(0) as i64)
            .bind(e.latency_ms)
            .bind(e.ttft_ms)
            .bind(cost)
            .bind("computed")
            .bind(e.success.unwrap_or(true))
            .bind(e.error_type.clone())
            .bind(scores)
            .bind(feedback)
            .bind(metadata)
            .bind(at_ms);
    }
    let done = q.execute(&mut *tx).await.context("inserting a batch")?;
    if done.rows_affected() != events.len() as u64 {
        anyhow::bail!(
            "only {} of {} rows were inserted",
            done.rows_affected(),
            events.len()
        );
    }
    tx.commit().await.context("committing a batch")?;
    Ok(())
}

/// What a database holds: raw events, and the event count its day cells add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    pub events: u64,
    pub day_cell_events: u64,
}

async fn has_table(conn: &mut SqliteConnection, name: &str) -> anyhow::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .context("reading the schema")?;
    Ok(found.is_some())
}

/// Count the events of a database file — the product's (events in blocks) or the
/// baseline's (rows) — read only; WAL frames a killed writer committed are read like the
/// product reads them.
pub async fn contents(path: &Path) -> anyhow::Result<Contents> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .context("sqlite options")?
        .filename(path)
        .read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let events: i64 = if has_table(&mut conn, "event_blocks").await? {
        sqlx::query_scalar("SELECT COALESCE(SUM(events), 0) FROM event_blocks")
            .fetch_one(&mut conn)
            .await
            .context("counting events")?
    } else {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .context("counting events")?
    };
    let mut day_cell_events = 0;
    if has_table(&mut conn, "cells_day").await? {
        let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT rollup FROM cells_day")
            .fetch_all(&mut conn)
            .await
            .context("reading day cells")?;
        for blob in blobs {
            day_cell_events += Rollup::decode(&blob)
                .map_err(|e| anyhow::anyhow!("undecodable day cell: {e}"))?
                .count;
        }
    }
    conn.close().await.ok();
    Ok(Contents {
        events: u64::try_from(events).unwrap_or(0),
        day_cell_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventgen::{EventGen, Spread};

    async fn index_names(conn: &mut SqliteConnection) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(conn)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_baseline_stores_every_row_of_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut conn = open_like_the_product(&path).await.unwrap();
        create_schema(&mut conn, BaselineIndexes::None)
            .await
            .unwrap();
        assert!(index_names(&mut conn).await.is_empty());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let generator = EventGen {
            prompts: 10,
            versions: 3,
            batch_size: 100,
            spread: Spread::Live {
                window: time::Duration::seconds(60),
            },
            experiment: None,
            run_tag: "t".to_owned(),
        };
        let sql = insert_sql(100);
        let now = time::OffsetDateTime::now_utc();
        for k in 0..3 {
            let batch = generator.batch(k, now);
            insert_batch(&mut conn, &sql, "p", 1 + k as i64 * 100, &batch)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
        let seen = contents(&path).await.unwrap();
        assert_eq!(seen.events, 300);
        // The baseline folds no cells: that is the product's extra work.
        assert_eq!(seen.day_cell_events, 0);
        assert_eq!(prompt_id("bench/chat-00001").len(), 36);
    }

    #[tokio::test]
    async fn the_row_layout_adds_the_four_former_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_like_the_product(&dir.path().join("events.db"))
            .await
            .unwrap();
        create_schema(&mut conn, "row-layout".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            index_names(&mut conn).await,
            [
                "events_by_client_id",
                "events_by_experiment",
                "events_by_prompt_hour",
                "events_by_second"
            ]
        );
        let err = "some".parse::<BaselineIndexes>().unwrap_err();
        assert!(err.to_string().contains("none or row-layout"), "{err}");
    }

    /// The durability check counts the product's events in blocks.
    #[tokio::test]
    async fn contents_counts_the_events_of_the_products_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = promptstore_store_sqlite::SqliteStore::open_in(dir.path())
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let records = (0..500)
            .map(|i| {
                let mut e =
                    promptstore_core::analytics::testutil::event(now.unix_timestamp() - i % 90);
                e.client_id = Some(format!("c-{i}"));
                e.prompt = format!("p{}", i % 7);
                e.prompt_id = prompt_id(&e.prompt);
                e
            })
            .collect();
        use promptstore_core::analytics::store::AnalyticsStore as _;
        store.ingest(records).await.unwrap();
        let path = store.events_path().to_owned();
        store.close().await;
        let seen = contents(&path).await.unwrap();
        assert_eq!(seen.events, 500);
        assert_eq!(seen.day_cell_events, 500);
    }
}
