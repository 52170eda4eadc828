//! Wire types of A/B tests: experiments on a prompt + label, their arms, lifecycle,
//! history and statistical results.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// A metric an experiment is judged on.
///
/// `metric`: `success_rate`, `error_rate`, `latency_ms`, `ttft_ms`, `cost` (per call),
/// `score:<name>`, `thumbs_up_rate`, `negative_feedback_rate`. `direction` defaults to the
/// metric's natural one (lower for error rate, latency, cost and negative feedback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// A metric that must not get worse: an arm whose regression on it is significantly beyond
/// `tolerance` (relative, e.g. 0.05 = 5 % worse than the control) is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub tolerance: f64,
}

/// One arm: a version of the prompt and its share of the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Unique within the experiment, e.g. `control`, `shorter`.
    pub name: String,
    pub version: u32,
    /// Positive; weights are relative (they need not sum to 1).
    pub weight: f64,
}

/// What happens when the experiment concludes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnConclusion {
    #[default]
    Nothing,
    /// Move the experiment's label to the winning arm's version.
    PromoteWinner,
}

/// An optional proper Gaussian prior on the relative effect (Bayesian analysis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    pub mean: f64,
    pub stddev: f64,
}

/// Create an experiment (in `draft`), or replace a draft's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub prompt: String,
    pub label: String,
    /// 2..=10 arms; the first is the control.
    pub arms: Vec<ArmSpec>,
    pub primary_metric: MetricSpec,
    #[serde(default)]
    pub guardrails: Vec<GuardrailSpec>,
    /// Events per arm before an automatic decision (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sample_per_arm: Option<u64>,
    /// The experiment concludes when this is reached, whatever the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_hours: Option<u32>,
    #[serde(default)]
    pub on_conclusion: OnConclusion,
    /// Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Tuning parameter of the sequential test (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_tuning: Option<f64>,
    /// Default: a flat prior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSpec>,
    /// Minimum detectable relative effect for the sample-size estimate (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    Draft,
    Running,
    Stopped,
    Concluded,
}

impl ExperimentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Draft => "draft",
            ExperimentStatus::Running => "running",
            ExperimentStatus::Stopped => "stopped",
            ExperimentStatus::Concluded => "concluded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(ExperimentStatus::Draft),
            "running" => Some(ExperimentStatus::Running),
            "stopped" => Some(ExperimentStatus::Stopped),
            "concluded" => Some(ExperimentStatus::Concluded),
            _ => None,
        }
    }
}

/// An arm as it stands, including whether a guardrail (or a person) stopped it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Arm {
    pub name: String,
    pub version: u32,
    pub weight: f64,
    /// A stopped arm gets no more traffic (its weight is treated as 0).
    pub stopped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
}

/// How an experiment ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conclusion {
    /// The winning arm; absent when no arm won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    pub reason: String,
    /// Whether the label was moved to the winner's version.
    pub promoted: bool,
    /// `manual` or `automatic`.
    pub decided_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub description: String,
    pub prompt: String,
    pub label: String,
    pub arms: Vec<Arm>,
    pub primary_metric: MetricSpec,
    pub guardrails: Vec<GuardrailSpec>,
    pub min_sample_per_arm: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_hours: Option<u32>,
    pub on_conclusion: OnConclusion,
    pub alpha: f64,
    pub sequential_tuning: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSpec>,
    pub mde: f64,
    pub status: ExperimentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    /// Bumped by every change; the ETag of the experiment.
    pub revision: u64,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When the current arms and weights took effect (the start of the analysed phase).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub phase_started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
}

/// Change the arms or weights of an experiment. On a running experiment this starts a new
/// analysis phase and is recorded with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateArms {
    pub arms: Vec<ArmSpec>,
    pub reason: String,
}

/// Stop or conclude by hand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndExperiment {
    /// For `conclude`: the winning arm (absent = no winner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// For `conclude`: move the label to the winner's version.
    #[serde(default)]
    pub promote: bool,
    #[serde(default)]
    pub reason: String,
}

/// One entry of an experiment's history: every lifecycle step and every decision, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExperimentHistoryEntry {
    pub id: i64,
    /// `created`, `updated`, `started`, `arms_changed`, `arm_stopped`, `stopped`,
    /// `concluded`, `promoted`.
    pub kind: String,
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    /// Key id, or `system` for the decision worker.
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A number that may be undefined for the data at hand; `reason` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Undefined {
    pub reason: String,
}

/// Sufficient statistics and summary of one arm on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArmMetric {
    pub arm: String,
    pub n: u64,
    pub sum: f64,
    pub sum_squares: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<f64>,
}

/// A two-sided test of treatment vs control: estimate, interval and p-value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestResult {
    pub estimate: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub p_value: f64,
    pub stddev: f64,
}

/// Bayesian analysis of treatment vs control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BayesianResult {
    /// Posterior mean of the (relative) effect.
    pub estimate: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// Probability the treatment is better than the control (direction applied).
    pub chance_to_beat_control: f64,
    /// Expected loss of shipping the control.
    pub risk_control: f64,
    /// Expected loss of shipping the treatment.
    pub risk_treatment: f64,
}

/// Each analysis of one comparison is either a result or an explanation of why it is
/// undefined — never NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Outcome<T> {
    Defined(T),
    Undefined { undefined: String },
}

/// Treatment arm vs the control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArmComparison {
    pub arm: String,
    pub control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_diff: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_diff: Option<f64>,
    /// Welch t-test, relative lift with a delta-method interval.
    pub frequentist_relative: Outcome<TestResult>,
    pub frequentist_absolute: Outcome<TestResult>,
    /// Always-valid (asymptotic confidence sequence) on the relative lift.
    pub sequential: Outcome<TestResult>,
    pub bayesian: Outcome<BayesianResult>,
    /// Two-proportion z-tests, for rate metrics only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_pooled: Option<Outcome<TestResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_unpooled: Option<Outcome<TestResult>>,
    /// `better`, `worse` or `inconclusive` by the sequential test, direction applied.
    pub call: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricResult {
    pub metric: String,
    pub direction: Direction,
    pub arms: Vec<ArmMetric>,
    pub comparisons: Vec<ArmComparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SrmCheck {
    /// Units exposed per arm, in arm order.
    pub observed: Vec<u64>,
    pub expected: Vec<f64>,
    pub chi2: f64,
    pub p_value: f64,
    /// p < 0.001: the split is not what the weights say; no verdict can be trusted.
    pub mismatch: bool,
}

/// The sample still needed to detect the experiment's minimum detectable effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SampleSize {
    pub mde: f64,
    pub power: f64,
    /// Per arm, in total, for the primary metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_per_arm: Option<u64>,
    /// Still to collect in the smallest arm (0 when reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_per_arm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undefined: Option<String>,
}

/// The plain-language conclusion of the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verdict {
    /// `keep_running`, `treatment_wins`, `control_wins`, `no_detectable_difference`,
    /// `untrustworthy`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExperimentResults {
    pub experiment: String,
    pub status: ExperimentStatus,
    /// Start of the analysed data (the current phase, or the start with `all_phases`).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub primary: MetricResult,
    pub guardrails: Vec<MetricResult>,
    pub srm: SrmCheck,
    pub sample_size: SampleSize,
    pub verdict: Verdict,
}
