//! Events as rows: the column list, binding an event into a statement, and decoding a row
//! back into a `StoredEvent` (a backend error, never a panic, on corrupt data). Absent
//! scores, feedback and metadata are NULL, which keeps rows small at ingest rates.

use std::collections::BTreeMap;

use promptstore_core::analytics::model::{EventRecord, StoredEvent};
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use promptstore_types::{CostSource, Feedback};
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;

use crate::codec::{from_json_text, from_ms, to_json_text, to_ms, to_u32, to_u64};
use crate::error::corrupt;

/// The stored columns, in the order `bind_event` binds them.
pub(crate) const EVENT_COLUMNS: &str = "id, project, client_id, prompt_id, prompt, version, \
     label, experiment, arm, unit_id, model, provider, input_tokens, output_tokens, \
     cached_input_tokens, latency_ms, ttft_ms, cost, cost_source, success, error_type, scores, \
     feedback, metadata, at";
/// How many columns `EVENT_COLUMNS` names.
pub(crate) const EVENT_COLUMN_COUNT: usize = 25;

pub(crate) fn cost_source_str(source: CostSource) -> &'static str {
    match source {
        CostSource::Reported => "reported",
        CostSource::Computed => "computed",
        CostSource::Unpriced => "unpriced",
    }
}

fn parse_cost_source(text: &str) -> Result<CostSource, StoreError> {
    match text {
        "reported" => Ok(CostSource::Reported),
        "computed" => Ok(CostSource::Computed),
        "unpriced" => Ok(CostSource::Unpriced),
        other => Err(corrupt("event cost source", other)),
    }
}

/// Token counts are validated upstream; a count beyond i64 (no real call has one) is kept
/// at the largest storable value rather than wrapping negative.
fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

fn metadata_text(metadata: &serde_json::Value) -> Result<Option<String>, StoreError> {
    match metadata {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(map) if map.is_empty() => Ok(None),
        other => to_json_text("event metadata", other).map(Some),
    }
}

/// The encoded JSON columns of an event, computed before binding so that an encoding
/// failure is an error before any statement runs.
pub(crate) struct EncodedJson {
    scores: Option<String>,
    feedback: Option<String>,
    metadata: Option<String>,
}

pub(crate) fn encode_json(e: &EventRecord) -> Result<EncodedJson, StoreError> {
    Ok(EncodedJson {
        scores: scores_text(&e.scores)?,
        feedback: feedback_text(e.feedback.as_ref())?,
        metadata: metadata_text(&e.metadata)?,
    })
}

/// Bind one event's `EVENT_COLUMN_COUNT` values, in `EVENT_COLUMNS` order.
pub(crate) fn bind_event<'q>(
    q: Query<'q, Sqlite, SqliteArguments>,
    id: i64,
    e: EventRecord,
    json: EncodedJson,
) -> Query<'q, Sqlite, SqliteArguments> {
    q.bind(id)
        .bind(e.project.0)
        .bind(e.client_id)
        .bind(e.prompt_id)
        .bind(e.prompt)
        .bind(i64::from(e.version))
        .bind(e.label)
        .bind(e.experiment)
        .bind(e.arm)
        .bind(e.unit_id)
        .bind(e.model)
        .bind(e.provider)
        .bind(tokens(e.input_tokens))
        .bind(tokens(e.output_tokens))
        .bind(tokens(e.cached_input_tokens))
        .bind(e.latency_ms)
        .bind(e.ttft_ms)
        .bind(e.cost)
        .bind(cost_source_str(e.cost_source))
        .bind(e.success)
        .bind(e.error_type)
        .bind(json.scores)
        .bind(json.feedback)
        .bind(json.metadata)
        .bind(to_ms(e.at))
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
