//! Events as rows, the layout of versions before event blocks (`0005_event_blocks.sql`):
//! the column list and decoding a row into a `StoredEvent` (a backend error, never a panic,
//! on corrupt data), read once to move the rows into blocks; and the JSON texts of scores,
//! feedback and metadata, which blocks and judgements store as the rows did (absent ones
//! as NULL).

use std::collections::BTreeMap;

use promptstore_core::analytics::model::{EventRecord, StoredEvent};
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use promptstore_types::{CostSource, Feedback};

use crate::codec::{from_json_text, from_ms, to_json_text, to_u32, to_u64};
use crate::error::corrupt;

/// The columns of a stored row.
pub(crate) const EVENT_COLUMNS: &str = "id, project, client_id, prompt_id, prompt, version, \
     label, experiment, arm, unit_id, model, provider, input_tokens, output_tokens, \
     cached_input_tokens, latency_ms, ttft_ms, cost, cost_source, success, error_type, scores, \
     feedback, metadata, at";
fn parse_cost_source(text: &str) -> Result<CostSource, StoreError> {
    match text {
        "reported" => Ok(CostSource::Reported),
        "computed" => Ok(CostSource::Computed),
        "unpriced" => Ok(CostSource::Unpriced),
        other => Err(corrupt("event cost source", other)),
    }
}

pub(crate) fn scores_text(scores: &BTreeMap<String, f64>) -> Result<Option<String>, StoreError> {
    if scores.is_empty() {
        Ok(None)
    } else {
        to_json_text("event scores", scores).map(Some)
    }
}

pub(crate) fn feedback_text(feedback: Option<&Feedback>) -> Result<Option<String>, StoreError> {
    feedback
        .map(|f| to_json_text("event feedback", f))
        .transpose()
}

pub(crate) fn metadata_text(metadata: &serde_json::Value) -> Result<Option<String>, StoreError> {
    match metadata {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(map) if map.is_empty() => Ok(None),
        other => to_json_text("event metadata", other).map(Some),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    project: String,
    client_id: Option<String>,
    prompt_id: String,
    prompt: String,
    version: i64,
    label: Option<String>,
    experiment: Option<String>,
    arm: Option<String>,
    unit_id: Option<String>,
    model: String,
    provider: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    cost: Option<f64>,
    cost_source: String,
    success: bool,
    error_type: Option<String>,
    scores: Option<String>,
    feedback: Option<String>,
    metadata: Option<String>,
    at: i64,
}

impl EventRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_stored(self) -> Result<StoredEvent, StoreError> {
        let scores = match &self.scores {
            Some(text) => from_json_text("event scores", text)?,
            None => BTreeMap::new(),
        };
        let feedback = self
            .feedback
            .as_deref()
            .map(|text| from_json_text("event feedback", text))
            .transpose()?;
        let metadata = match &self.metadata {
            Some(text) => from_json_text("event metadata", text)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        Ok(StoredEvent {
            id: self.id,
            event: EventRecord {
                project: ProjectId(self.project),
                client_id: self.client_id,
                prompt_id: self.prompt_id,
                prompt: self.prompt,
                version: to_u32("event version", self.version)?,
                label: self.label,
                experiment: self.experiment,
                arm: self.arm,
                unit_id: self.unit_id,
                model: self.model,
                provider: self.provider,
                input_tokens: to_u64("event input tokens", self.input_tokens)?,
                output_tokens: to_u64("event output tokens", self.output_tokens)?,
                cached_input_tokens: to_u64("event cached tokens", self.cached_input_tokens)?,
                latency_ms: self.latency_ms,
                ttft_ms: self.ttft_ms,
                cost: self.cost,
                cost_source: parse_cost_source(&self.cost_source)?,
                success: self.success,
                error_type: self.error_type,
                scores,
                feedback,
                metadata,
                at: from_ms(self.at)?,
            },
        })
    }
}
