//! Analytics records: a validated event ready to store, the key of an aggregate cell, and
//! the stored forms of prices and alert rules.

use std::collections::BTreeMap;

use promptstore_types::{AlertRuleIn, CostSource, Feedback};
use time::OffsetDateTime;

use crate::model::ProjectId;

/// A validated, normalised event: every field the aggregates need is resolved (version,
/// model, cost), so storing it is a plain insert.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub project: ProjectId,
    pub client_id: Option<String>,
    pub prompt_id: String,
    pub prompt: String,
    pub version: u32,
    pub label: Option<String>,
    pub experiment: Option<String>,
    pub arm: Option<String>,
    pub unit_id: Option<String>,
    /// Empty when the client did not say.
    pub model: String,
    pub provider: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub cost: Option<f64>,
    pub cost_source: CostSource,
    pub success: bool,
    pub error_type: Option<String>,
    pub scores: BTreeMap<String, f64>,
    pub feedback: Option<Feedback>,
    /// A JSON object (empty when none was sent).
    pub metadata: serde_json::Value,
    pub at: OffsetDateTime,
}

/// A stored event: the record and its server id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub event: EventRecord,
}

/// What happened to one event of an ingested batch, in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Inserted(i64),
    /// Its client id was already stored (earlier, or earlier in the same batch): this is
    /// the id of the stored event, and nothing was written or counted again.
    Duplicate(i64),
}

/// Names an event for late scores and feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRef {
    Id(i64),
    ClientId(String),
}

/// Granularity of the aggregate cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// Cells of one UTC hour.
    Hour,
    /// Cells of one UTC day.
    Day,
}

/// The key of one aggregate cell: one bucket of time × one combination of dimensions.
/// Absent dimensions are empty strings, so the key is total and sortable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    /// Start of the bucket, Unix seconds (UTC), aligned to the granularity.
    pub bucket: i64,
    pub prompt_id: String,
    pub prompt: String,
    pub version: u32,
    pub label: String,
    pub model: String,
    pub experiment: String,
    pub arm: String,
}

/// Which cells or events a query reads. `None` = any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsFilter {
    pub prompt: Option<String>,
    pub version: Option<u32>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub experiment: Option<String>,
    pub arm: Option<String>,
}

/// A project's own price entry for a model (the shipped defaults live in `cost`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRecord {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cached_input_per_mtok: Option<f64>,
    pub effective_from: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleRecord {
    pub id: i64,
    pub project: ProjectId,
    pub rule: AlertRuleIn,
    /// `ok`, `firing`, `insufficient_data`.
    pub state: String,
    pub last_value: Option<f64>,
    pub last_evaluated_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A state change of an alert rule; also the notification to deliver later.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventRecord {
    pub id: i64,
    pub project: ProjectId,
    pub rule_id: i64,
    pub rule_name: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub value: f64,
    pub threshold: f64,
    pub sample: u64,
    pub at: OffsetDateTime,
}

/// The outcome of evaluating one rule, to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvaluation {
    pub rule_id: i64,
    /// New state: `ok`, `firing`, `insufficient_data`.
    pub state: String,
    pub value: Option<f64>,
    pub sample: u64,
    pub at: OffsetDateTime,
    /// Set when the state changed between `ok` and `firing`: the event to append (its id is
    /// assigned by the store).
    pub transition: Option<String>,
}
