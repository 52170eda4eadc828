//! Multi-row statements for the hot path: `INSERT … VALUES (…),(…)` with as many rows as fit
//! under SQLite's bound-parameter limit. A batch of any size is split into a few statements
//! of fixed sizes (powers of four), so that only a handful of SQL texts exist and every one
//! of them stays prepared in the connection's statement cache.

use std::sync::Arc;

use promptstore_core::store::StoreError;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};

use crate::error::backend;

/// A statement being bound.
pub(crate) type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// SQLite's default limit on bound parameters per statement (since 3.32).
const MAX_PARAMS: usize = 32_766;

/// Statement sizes, largest first; the smallest is 1 so that any count decomposes.
const SIZES: [usize; 6] = [1024, 256, 64, 16, 4, 1];

/// The SQL texts of one multi-row statement, one per size that fits the parameter limit.
pub(crate) struct MultiRow {
    /// (rows, SQL), largest first.
    shapes: Vec<(usize, Arc<str>)>,
}

impl MultiRow {
    /// `head` is everything before `VALUES`, `tail` what follows the rows (e.g. an
    /// `ON CONFLICT` clause); each row has `columns` placeholders.
    pub(crate) fn new(head: &str, columns: usize, tail: &str) -> MultiRow {
        let row = format!("({})", vec!["?"; columns].join(","));
        let shapes = SIZES
            .iter()
            .filter(|&&n| n * columns <= MAX_PARAMS)
            .map(|&n| {
                let rows = vec![row.as_str(); n].join(",");
                (n, Arc::from(format!("{head} VALUES {rows} {tail}")))
            })
            .collect();
        MultiRow { shapes }
    }

    /// Split `total` rows into statements: `(rows, SQL)` in order, covering all of them.
    pub(crate) fn plan(&self, total: usize) -> Vec<(usize, Arc<str>)> {
        let mut left = total;
        let mut plan = Vec::new();
        for (n, sql) in &self.shapes {
            while left >= *n {
                plan.push((*n, sql.clone()));
                left -= n;
            }
        }
        plan
    }

    /// Write `rows` with this statement's plan, each bound by `bind` (in order, filling the
    /// row's placeholders). With `refused`, every statement must change as many rows as it
    /// bound; a shortfall fails the call with "`missing` of `n` `refused`" (the caller's
    /// transaction then rolls back whole). Returns how many rows the statements changed.
    pub(crate) async fn execute<T>(
        &self,
        conn: &mut SqliteConnection,
        rows: impl IntoIterator<Item = T, IntoIter: ExactSizeIterator>,
        bind: impl Fn(SqliteQuery, T) -> SqliteQuery,
        refused: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut rows = rows.into_iter();
        let mut changed = 0;
        for (n, sql) in self.plan(rows.len()) {
            let q = rows
                .by_ref()
                .take(n)
                .fold(sqlx::query(AssertSqlSafe(sql)), &bind);
            let done = q.execute(&mut *conn).await.map_err(backend)?;
            changed += done.rows_affected();
            if let Some(what) = refused
                && done.rows_affected() != n as u64
            {
                return Err(StoreError::Backend(format!(
                    "{} of {n} {what}",
                    n as u64 - done.rows_affected().min(n as u64)
                )));
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_row_with_few_statements() {
        let m = MultiRow::new("INSERT INTO t (a, b)", 2, "");
        for total in [0usize, 1, 3, 5, 999, 1000, 1024, 1025, 5000] {
            let plan = m.plan(total);
            assert_eq!(plan.iter().map(|(n, _)| n).sum::<usize>(), total);
            assert!(plan.len() <= total / 1024 + 15, "{total}: {}", plan.len());
            for (n, sql) in &plan {
                assert_eq!(sql.matches('?').count(), n * 2);
            }
        }
    }

    #[test]
    fn wide_rows_stay_under_the_parameter_limit() {
        let m = MultiRow::new("INSERT INTO t", 40, "");
        let plan = m.plan(2000);
        assert!(plan.iter().all(|(n, _)| n * 40 <= MAX_PARAMS));
        assert_eq!(plan.iter().map(|(n, _)| n).sum::<usize>(), 2000);
    }
}
