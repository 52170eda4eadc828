//! First exposures of units to experiment arms, in the caller's analytics write transaction:
//! multi-row `INSERT OR IGNORE` (a unit already exposed in the phase is skipped, also within
//! the batch), whose `RETURNING` rows are the new ones, folded into the per-arm totals that
//! the sample-ratio-mismatch check reads. Also the raw events of an experiment's partial
//! first hour, folded per arm for its results.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use promptstore_core::analytics::model::AnalyticsFilter;
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::experiments::model::Exposure;
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use sqlx::{AssertSqlSafe, SqliteConnection};
use time::OffsetDateTime;

use super::multirow::MultiRow;
use crate::codec::{to_ms, to_u64};
use crate::error::backend;

static INSERT_EXPOSURES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT OR IGNORE INTO exposures (project, experiment, phase, unit_id, arm, at)",
        6,
        // Only rows actually inserted are returned: the ignored ones were exposed before.
        "RETURNING project, experiment, phase, arm",
    )
});

/// (project, experiment, phase, arm): the key of a total.
type TotalKey = (String, String, i64, String);

/// Store `exposures`; returns how many were new. See `AnalyticsStore::record_exposures`.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    exposures: Vec<Exposure>,
) -> Result<u64, StoreError> {
    let mut added: HashMap<TotalKey, i64> = HashMap::new();
    let mut rows = exposures.into_iter();
    for (n, sql) in INSERT_EXPOSURES.plan(rows.len()) {
        let mut q = sqlx::query_as::<_, TotalKey>(AssertSqlSafe(sql));
        for e in rows.by_ref().take(n) {
            q = q
                .bind(e.project.0)
                .bind(e.experiment_id)
                .bind(i64::from(e.phase))
                .bind(e.unit_id)
                .bind(e.arm)
                .bind(to_ms(e.at));
        }
        for key in q.fetch_all(&mut *conn).await.map_err(backend)? {
            *added.entry(key).or_default() += 1;
        }
    }
    let mut new = 0u64;
    for ((project, experiment, phase, arm), units) in added {
        sqlx::query(
            "INSERT INTO exposure_totals (project, experiment, phase, arm, units) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (project, experiment, phase, arm) DO UPDATE SET units = units + excluded.units",
        )
        .bind(project)
        .bind(experiment)
        .bind(phase)
        .bind(arm)
        .bind(units)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        new += to_u64("exposure count", units)?;
    }
    Ok(new)
}

/// Units exposed per arm in one phase of an experiment.
pub(crate) async fn counts(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    experiment: &str,
    phase: u32,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT arm, units FROM exposure_totals WHERE project = ? AND experiment = ? AND phase = ?",
    )
    .bind(&project.0)
    .bind(experiment)
    .bind(i64::from(phase))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter()
        .map(|(arm, units)| Ok((arm, to_u64("exposure total", units)?)))
        .collect()
}

/// The raw events of `experiment` with `at` in `[from, to)`, folded per arm (see
/// `AnalyticsStore::experiment_window`): the experiment's blocks of those hours
/// (`event_blocks_by_experiment`), decoded into one reused record.
pub(crate) async fn window(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    experiment: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<BTreeMap<String, Rollup>, StoreError> {
    let filter = AnalyticsFilter {
        experiment: Some(experiment.to_owned()),
        ..AnalyticsFilter::default()
    };
    let mut arms: BTreeMap<String, Rollup> = BTreeMap::new();
    super::events::for_each_in_window(conn, project, &filter, from, to, |record| {
        let Some(arm) = record.arm.as_deref() else {
            return;
        };
        match arms.get_mut(arm) {
            Some(rollup) => rollup.add(record),
            None => {
                arms.insert(arm.to_owned(), Rollup::of([record]));
            }
        }
    })
    .await?;
    Ok(arms)
}

#[cfg(test)]
mod tests {
    use promptstore_core::analytics::model::AnalyticsFilter;
    use time::OffsetDateTime;

    use super::*;
    use crate::analytics::AnalyticsDb;

    /// Experiment results read one experiment's cells, raw events and exposure totals; each
    /// must probe an index rather than scan the project's data.
    #[tokio::test]
    async fn experiment_reads_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let filter = AnalyticsFilter {
            experiment: Some("exp".into()),
            arm: Some("control".into()),
            ..AnalyticsFilter::default()
        };
        let now = OffsetDateTime::now_utc();
        let mut c = super::super::events::block_conditions(&ProjectId("p".into()), &filter);
        let now_ms = now.unix_timestamp() * 1000;
        super::super::events::push_block_time(&mut c, now_ms, now_ms);
        let events = db
            .query_plan(&format!(
                "SELECT b.id FROM event_blocks AS b {}",
                c.where_sql()
            ))
            .await;
        assert!(
            events.contains("INDEX event_blocks_by_experiment"),
            "{events}"
        );

        let cells = db
            .query_plan(
                "SELECT c.rollup FROM cells_hour AS c WHERE c.project = ? AND c.bucket >= ? \
             AND c.bucket < ? AND c.experiment = ? AND c.arm = ?",
            )
            .await;
        assert!(cells.contains("INDEX cells_hour_by_experiment"), "{cells}");

        let totals = db
            .query_plan(
                "SELECT arm, units FROM exposure_totals WHERE project = ? AND experiment = ? \
             AND phase = ?",
            )
            .await;
        assert!(totals.contains("PRIMARY KEY"), "{totals}");
    }
}
