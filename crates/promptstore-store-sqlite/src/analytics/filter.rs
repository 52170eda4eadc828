//! `AnalyticsFilter` → SQL conditions. Queries are built with only the conditions that are
//! set (rather than `? IS NULL OR col = ?`), so that SQLite plans each shape with the
//! `(project, prompt, …)` indexes when a prompt is named.

use promptstore_core::analytics::model::AnalyticsFilter;
use sqlx::Sqlite;
use sqlx::query::QueryAs;
use sqlx::sqlite::SqliteArguments;

/// A value bound to a placeholder of a built query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// Conditions joined with AND, and their parameters in placeholder order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    pub(crate) fn new() -> Self {
        Conditions::default()
    }

    /// Add `clause` (with `?` placeholders) and its parameters.
    pub(crate) fn push(
        &mut self,
        clause: impl Into<String>,
        params: impl IntoIterator<Item = Param>,
    ) {
        self.clauses.push(clause.into());
        self.params.extend(params);
    }

    /// The filter's conditions on cells, which keep absent dimensions as empty strings, so
    /// that an empty filter value ("absent") is a plain equality like any other, and SQLite
    /// can use the indexes on those columns (`cells_hour_by_experiment`).
    pub(crate) fn filter(&mut self, alias: &str, filter: &AnalyticsFilter) {
        let equals = |col: &str| format!("{alias}.{col} = ?");
        if let Some(prompt) = &filter.prompt {
            self.push(equals("prompt"), [Param::Text(prompt.clone())]);
        }
        if let Some(version) = filter.version {
            self.push(equals("version"), [Param::Int(i64::from(version))]);
        }
        if let Some(label) = &filter.label {
            self.push(equals("label"), [Param::Text(label.clone())]);
        }
        if let Some(model) = &filter.model {
            self.push(equals("model"), [Param::Text(model.clone())]);
        }
        if let Some(experiment) = &filter.experiment {
            self.push(equals("experiment"), [Param::Text(experiment.clone())]);
        }
        if let Some(arm) = &filter.arm {
            self.push(equals("arm"), [Param::Text(arm.clone())]);
        }
    }

    /// `WHERE a AND b …` (empty when there is no condition).
    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub(crate) fn params(&self) -> &[Param] {
        &self.params
    }
}

pub(crate) fn bind_all_as<'q, O>(
    mut q: QueryAs<'q, Sqlite, O, SqliteArguments>,
    params: &[Param],
) -> QueryAs<'q, Sqlite, O, SqliteArguments> {
    for p in params {
        q = match p {
            Param::Text(s) => q.bind(s.clone()),
            Param::Int(n) => q.bind(*n),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_filters_become_conditions() {
        let mut c = Conditions::new();
        c.push("e.project = ?", [Param::Text("p".into())]);
        c.filter(
            "e",
            &AnalyticsFilter {
                prompt: Some("a".into()),
                label: Some("production".into()),
                ..AnalyticsFilter::default()
            },
        );
        assert_eq!(
            c.where_sql(),
            "WHERE e.project = ? AND e.prompt = ? AND e.label = ?"
        );
        assert_eq!(c.params().len(), 3);

        // An empty value asks for the cells without that dimension (stored as '').
        let mut absent = Conditions::new();
        absent.filter(
            "c",
            &AnalyticsFilter {
                experiment: Some(String::new()),
                arm: Some("control".into()),
                ..AnalyticsFilter::default()
            },
        );
        assert_eq!(absent.where_sql(), "WHERE c.experiment = ? AND c.arm = ?");
        assert_eq!(
            absent.params(),
            [Param::Text(String::new()), Param::Text("control".into())]
        );
        assert_eq!(Conditions::new().where_sql(), "");
    }
}
