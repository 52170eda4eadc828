//! Wire types of usage analytics: events in, prices, aggregated metrics out, alerts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One use of a prompt version (a generation), as an application reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The client's id for this event: an event sent twice with the same id is stored once.
    /// Prefer time-ordered ids (UUIDv7, ULID, a per-process counter): random ones (UUIDv4)
    /// each cost a page of the deduplication index once it outgrows the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Prompt name.
    pub prompt: String,
    /// Version used. When absent, the version `label` points to at ingest time (or `latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// User, session or conversation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens served from the provider's prompt cache (part of `input_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Time to first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Cost in USD. When absent it is computed from the price table in force at `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Kind of failure (`timeout`, `rate_limit`, `invalid_output`…); implies `success: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Named numeric scores (evaluations, heuristics…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// Free JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
    /// When the generation happened (default: when it is received).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<OffsetDateTime>,
}

/// A person's judgement of a generation: thumbs, a 1–5 rating, or both, and a comment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// `true` = thumbs up, `false` = thumbs down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbs_up: Option<bool>,
    /// 1 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The answer to a batch: how many were stored, which were duplicates, which were refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReport {
    pub accepted: u64,
    /// Events whose client id was already stored (not stored again).
    pub duplicates: u64,
    pub rejected: u64,
    /// Server ids of the events of the batch, in order (`null` for refused items); a
    /// duplicate gets the id of the stored event.
    pub ids: Vec<Option<i64>>,
    pub errors: Vec<ItemError>,
}

/// Why one item of a batch was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemError {
    /// Position of the item in the batch (0-based; for NDJSON, the line number minus one).
    pub index: usize,
    pub code: crate::ErrorCode,
    pub message: String,
    /// The offending field, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Scores and/or feedback that arrive after the generation. The event is named by its server
/// id (`/events/123/...`) or by its client id (`/events/by-client-id/{id}/...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AttachToEvent {
    /// Added to (or replacing, per name) the event's scores.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f64>,
    /// Replaces the event's feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// A stored event as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub prompt: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Absent when the model has no price (`cost_source: unpriced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    pub cost_source: CostSource,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    pub scores: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
}

/// Where an event's cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// Sent by the client.
    Reported,
    /// Computed at ingest from the price table.
    Computed,
    /// Not sent and the model has no price: never counted as zero.
    Unpriced,
}

/// The price of a model, in USD per million tokens, from `effective_from` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelPrice {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Price of cached input tokens; absent = same as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_from: OffsetDateTime,
    /// `default` for the shipped table, `project` for the project's own entries.
    pub source: String,
}

/// Set a model's price (a new entry; older entries stay in force for older events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// Default: now. May be in the past, so that events already received are not re-priced
    /// (costs are fixed at ingest) but later ones with older timestamps are.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub effective_from: Option<OffsetDateTime>,
}

/// Percentiles of a distribution from a mergeable sketch with a stated relative error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Distribution {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The percentiles are within this relative error of the exact values (e.g. 0.01).
    pub relative_error: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreSummary {
    pub count: u64,
    pub mean: f64,
    /// Sample standard deviation (absent below 2 values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackSummary {
    pub thumbs_up: u64,
    pub thumbs_down: u64,
    /// Count of ratings 1..=5 (index 0 = rating 1).
    pub ratings: [u64; 5],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_rating: Option<f64>,
    /// Thumbs down plus ratings of 1 or 2, over all feedback given (absent without feedback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_rate: Option<f64>,
}

/// The numbers of one slice of events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metrics {
    pub count: u64,
    pub successes: u64,
    pub errors: u64,
    /// Absent when there is no event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Error type → count.
    pub error_types: BTreeMap<String, u64>,
    pub latency_ms: Distribution,
    pub ttft_ms: Distribution,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    /// Total cost of the priced events, USD.
    pub cost: f64,
    /// Cost per priced event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_call: Option<f64>,
    pub priced_events: u64,
    /// Events whose model has no price: their cost is unknown, not zero.
    pub unpriced_events: u64,
    /// Models seen without a price.
    pub unpriced_models: Vec<String>,
    pub scores: BTreeMap<String, ScoreSummary>,
    pub feedback: FeedbackSummary,
}

/// One group of a breakdown (`by=prompt|version|label|model|arm`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMetrics {
    /// The group's values: e.g. `{"prompt": "a"}`, `{"prompt": "a", "version": "3"}`.
    pub key: BTreeMap<String, String>,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub metrics: Metrics,
    /// Present when a breakdown was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeBucket {
    /// Start of the bucket, in the requested UTC offset.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeSeries {
    /// `hour` or `day`.
    pub interval: String,
    /// The UTC offset buckets are aligned to, e.g. `+02:00`.
    pub utc_offset: String,
    pub buckets: Vec<TimeBucket>,
}

/// How version `b` differs from version `a` of one prompt, metric by metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionComparison {
    pub prompt: String,
    pub a: u32,
    pub b: u32,
    pub metrics_a: Metrics,
    pub metrics_b: Metrics,
    pub differences: Vec<MetricDifference>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricDifference {
    /// `success_rate`, `latency_ms_mean`, `cost_per_call`, `score:<name>`, `negative_feedback_rate`…
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<f64>,
    /// `b − a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<f64>,
    /// `(b − a) / a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_difference: Option<f64>,
    /// Two-sided p-value of the test named in `test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// `welch_t`, `two_proportion_z`, or absent when there is too little data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// True when p < 0.05: the difference is beyond noise.
    pub significant: bool,
}

/// One entry of a top list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopEntry {
    pub prompt: String,
    /// The value ranked by (`use`: count, `cost`: USD, `error_rate`, `worst_feedback`:
    /// negative feedback rate).
    pub value: f64,
    pub metrics: Metrics,
}

/// A rule-based suggestion with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    /// `costlier_version_no_better`, `cheaper_model_equal_success`, `rising_latency`,
    /// `rising_error_rate`, `token_heavy_template`, …
    pub kind: String,
    pub prompt: String,
    /// `info`, `warning`.
    pub severity: String,
    pub title: String,
    pub rationale: String,
    /// The numbers behind it, named.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub evidence: serde_json::Value,
}

/// An alert rule: fire when `metric` over the last `window_minutes` compares to
/// `threshold`, once at least `min_sample` events are in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRuleIn {
    pub name: String,
    /// `error_rate`, `latency_p50_ms`, `latency_p95_ms`, `latency_p99_ms`, `cost` (USD in the
    /// window), `cost_per_day`, `score_mean:<name>`, `negative_feedback_rate`, `count`.
    pub metric: String,
    /// Default: the whole project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Only with `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `gt`, `gte`, `lt`, `lte`.
    pub comparison: String,
    pub threshold: f64,
    pub window_minutes: u32,
    #[serde(default)]
    pub min_sample: u64,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_enabled() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRule {
    pub id: i64,
    #[serde(flatten)]
    pub rule: AlertRuleIn,
    /// `ok`, `firing`, or `insufficient_data`.
    pub state: String,
    /// The value seen at the last evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_evaluated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A state change of an alert rule (also the notification to deliver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub value: f64,
    pub threshold: f64,
    pub sample: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
