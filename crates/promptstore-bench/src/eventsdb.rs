//! Direct access to an analytics database file (`events.db`) for the benchmarks: the
//! raw-insert baseline (the same schema, rows and durability as the product, without the
//! product), and the durability check that counts what a killed server left behind.
//!
//! The baseline is deliberately minimal: one sqlx connection, WAL and `synchronous=FULL`
//! like the product's analytics writer, the product's own migration files for the schema
//! (so the same indexes are maintained), and one prepared 1,000-row `INSERT` per
//! transaction. It does not deduplicate client ids, fold aggregate cells, parse HTTP or
//! validate: that is the work whose cost the comparison shows.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use promptstore_core::analytics::rollup::Rollup;
use promptstore_types::EventIn;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

/// The product's analytics schema, from its migration files.
const SCHEMA: [&str; 3] = [
    include_str!("../../promptstore-store-sqlite/migrations/analytics/0001_analytics.sql"),
    include_str!("../../promptstore-store-sqlite/migrations/analytics/0002_exposures.sql"),
    include_str!("../../promptstore-store-sqlite/migrations/analytics/0003_events_layout.sql"),
];

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

/// Create the product's analytics tables and indexes in an empty database.
pub async fn create_schema(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    for sql in SCHEMA {
        sqlx::raw_sql(sql)
            .execute(&mut *conn)
            .await
            .context("creating the analytics schema")?;
    }
    Ok(())
}

/// Drop one index of `events` (by name, checked against the schema: never another table's).
pub async fn drop_events_index(conn: &mut SqliteConnection, name: &str) -> anyhow::Result<()> {
    let known: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name = ?",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .context("reading the schema")?;
    let Some(name) = known else {
        anyhow::bail!("'{name}' is not an index of the events table");
    };
    sqlx::raw_sql(AssertSqlSafe(format!("DROP INDEX \"{name}\"")))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("dropping {name}"))?;
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

/// Count the events of a database file (read only; WAL frames a killed writer committed
/// are read like the product reads them).
pub async fn contents(path: &Path) -> anyhow::Result<Contents> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .context("sqlite options")?
        .filename(path)
        .read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .context("counting events")?;
    let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT rollup FROM cells_day")
        .fetch_all(&mut conn)
        .await
        .context("reading day cells")?;
    let mut day_cell_events = 0;
    for blob in blobs {
        day_cell_events += Rollup::decode(&blob)
            .map_err(|e| anyhow::anyhow!("undecodable day cell: {e}"))?
            .count;
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

    #[tokio::test]
    async fn the_baseline_stores_every_row_of_a_batch_in_the_product_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut conn = open_like_the_product(&path).await.unwrap();
        create_schema(&mut conn).await.unwrap();
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
    async fn an_index_of_events_can_be_dropped_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_like_the_product(&dir.path().join("events.db"))
            .await
            .unwrap();
        create_schema(&mut conn).await.unwrap();
        drop_events_index(&mut conn, "events_by_prompt_hour")
            .await
            .unwrap();
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            left,
            [
                "events_by_client_id",
                "events_by_experiment",
                "events_by_second"
            ]
        );
        // Gone already, another table's index, or no index at all: refused by name.
        for name in [
            "events_by_prompt_hour",
            "cells_hour_by_prompt",
            "x\"; DROP TABLE events; --",
        ] {
            let err = drop_events_index(&mut conn, name).await.unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not an index of the events table"),
                "{err}"
            );
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }
}
