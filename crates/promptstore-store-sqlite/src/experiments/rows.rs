//! Experiment and history rows as SQLite returns them, the SELECT lists that produce them,
//! and their conversion to domain records (a backend error, never a panic, on corrupt data).

use promptstore_core::experiments::model::{ExperimentHistoryRecord, ExperimentRecord};
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use promptstore_types::ExperimentStatus;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{from_json_text, from_ms, to_u32, to_u64};
use crate::error::corrupt;

/// Experiment columns joined with their prompt; experiments aliased `x`, prompts `p`.
pub(crate) const EXPERIMENT_COLUMNS: &str = "x.pk, x.id, x.project_id, p.id AS prompt_id, \
     p.name AS prompt, x.name, x.description, x.label, x.arms, x.primary_metric, x.guardrails, \
     x.min_sample_per_arm, x.max_duration_hours, x.on_conclusion, x.alpha, x.sequential_tuning, \
     x.prior, x.mde, x.status, x.conclusion, x.revision, x.phase, x.created_by, x.created_at, \
     x.started_at, x.phase_started_at, x.ended_at";

/// `FROM` clause matching [`EXPERIMENT_COLUMNS`].
pub(crate) const EXPERIMENT_FROM: &str = "experiments x JOIN prompts p ON p.pk = x.prompt_pk";

#[derive(sqlx::FromRow)]
pub(crate) struct ExperimentRow {
    pub(crate) pk: i64,
    id: String,
    project_id: String,
    prompt_id: String,
    prompt: String,
    name: String,
    description: String,
    label: String,
    arms: String,
    primary_metric: String,
    guardrails: String,
    min_sample_per_arm: i64,
    max_duration_hours: Option<i64>,
    on_conclusion: String,
    alpha: f64,
    sequential_tuning: f64,
    prior: Option<String>,
    mde: f64,
    status: String,
    conclusion: Option<String>,
    revision: i64,
    phase: i64,
    created_by: String,
    created_at: i64,
    started_at: Option<i64>,
    phase_started_at: Option<i64>,
    ended_at: Option<i64>,
}

impl ExperimentRow {
    pub(crate) fn into_record(self) -> Result<ExperimentRecord, StoreError> {
        Ok(ExperimentRecord {
            status: ExperimentStatus::parse(&self.status)
                .ok_or_else(|| corrupt("experiment status", &self.status))?,
            id: self.id,
            project: ProjectId(self.project_id),
            name: self.name,
            description: self.description,
            prompt_id: self.prompt_id,
            prompt: self.prompt,
            label: self.label,
            arms: from_json_text("experiment arms", &self.arms)?,
            primary_metric: from_json_text("primary metric", &self.primary_metric)?,
            guardrails: from_json_text("guardrails", &self.guardrails)?,
            min_sample_per_arm: to_u64("minimum sample", self.min_sample_per_arm)?,
            max_duration_hours: self
                .max_duration_hours
                .map(|h| to_u32("maximum duration", h))
                .transpose()?,
            on_conclusion: from_word("on conclusion", &self.on_conclusion)?,
            alpha: self.alpha,
            sequential_tuning: self.sequential_tuning,
            prior: self
                .prior
                .as_deref()
                .map(|t| from_json_text("prior", t))
                .transpose()?,
            mde: self.mde,
            conclusion: self
                .conclusion
                .as_deref()
                .map(|t| from_json_text("conclusion", t))
                .transpose()?,
            revision: to_u64("experiment revision", self.revision)?,
            phase: to_u32("experiment phase", self.phase)?,
            created_by: self.created_by,
            created_at: from_ms(self.created_at)?,
            started_at: self.started_at.map(from_ms).transpose()?,
            phase_started_at: self.phase_started_at.map(from_ms).transpose()?,
            ended_at: self.ended_at.map(from_ms).transpose()?,
        })
    }
}

/// A unit enum as its serde spelling, stored as plain text (`promote_winner`, not JSON).
pub(crate) fn to_word<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(StoreError::Backend(format!(
            "cannot encode {what}: {other} is not a word"
        ))),
        Err(e) => Err(StoreError::Backend(format!("cannot encode {what}: {e}"))),
    }
}

fn from_word<T: DeserializeOwned>(what: &str, word: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).map_err(|e| corrupt(what, e))
}

pub(crate) const HISTORY_COLUMNS: &str = "h.id, x.id AS experiment_id, h.kind, h.message, \
     h.details, h.actor, h.at";

#[derive(sqlx::FromRow)]
pub(crate) struct HistoryRow {
    id: i64,
    experiment_id: String,
    kind: String,
    message: String,
    details: String,
    actor: String,
    at: i64,
}

impl HistoryRow {
    pub(crate) fn into_record(self) -> Result<ExperimentHistoryRecord, StoreError> {
        Ok(ExperimentHistoryRecord {
            id: self.id,
            experiment_id: self.experiment_id,
            kind: self.kind,
            message: self.message,
            details: from_json_text("history details", &self.details)?,
            actor: self.actor,
            at: from_ms(self.at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::OnConclusion;

    use super::*;

    #[test]
    fn words_round_trip_as_plain_text() {
        let word = to_word("on conclusion", &OnConclusion::PromoteWinner).unwrap();
        assert_eq!(word, "promote_winner");
        let back: OnConclusion = from_word("on conclusion", &word).unwrap();
        assert_eq!(back, OnConclusion::PromoteWinner);
        assert!(from_word::<OnConclusion>("on conclusion", "sometimes").is_err());
    }
}
