//! Experiment records as the store keeps them, the changes the store applies to them, and
//! first exposures of units to arms.

use promptstore_types::{
    Arm, Conclusion, ExperimentStatus, GuardrailSpec, MetricSpec, OnConclusion, PriorSpec,
};
use time::OffsetDateTime;

use crate::model::ProjectId;

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRecord {
    /// A UUID; also what resolve/render answer as the assignment's `experiment` and what
    /// events carry, so analytics cells are keyed by it.
    pub id: String,
    pub project: ProjectId,
    pub name: String,
    pub description: String,
    pub prompt_id: String,
    pub prompt: String,
    pub label: String,
    /// The first arm is the control.
    pub arms: Vec<Arm>,
    pub primary_metric: MetricSpec,
    pub guardrails: Vec<GuardrailSpec>,
    pub min_sample_per_arm: u64,
    pub max_duration_hours: Option<u32>,
    pub on_conclusion: OnConclusion,
    pub alpha: f64,
    pub sequential_tuning: f64,
    pub prior: Option<PriorSpec>,
    pub mde: f64,
    pub status: ExperimentStatus,
    pub conclusion: Option<Conclusion>,
    /// Bumped by every change.
    pub revision: u64,
    /// Starts at 1 when the experiment starts; every change of arms or weights while running
    /// starts a new phase (analysis and SRM look at the current phase by default).
    pub phase: u32,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub phase_started_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
}

/// A validated experiment definition (defaults applied), to create or to replace a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExperiment {
    pub name: String,
    pub description: String,
    pub prompt: String,
    pub label: String,
    pub arms: Vec<Arm>,
    pub primary_metric: MetricSpec,
    pub guardrails: Vec<GuardrailSpec>,
    pub min_sample_per_arm: u64,
    pub max_duration_hours: Option<u32>,
    pub on_conclusion: OnConclusion,
    pub alpha: f64,
    pub sequential_tuning: f64,
    pub prior: Option<PriorSpec>,
    pub mde: f64,
}

/// A change of an experiment, applied by the store in the same transaction as its history
/// entry and audit record.
#[derive(Debug, Clone, PartialEq)]
pub enum ExperimentChange {
    /// Only in `draft`.
    ReplaceDraft(NewExperiment),
    /// `draft → running`: `started_at` = `phase_started_at` = now, phase 1. Refused with
    /// `Conflict` while another experiment runs on the same prompt + label.
    Start,
    /// New arms/weights (a guardrail stopping an arm is also this). While running: a new
    /// phase, `phase_started_at` = now.
    SetArms(Vec<Arm>),
    /// `running → stopped`.
    Stop,
    /// `running → concluded` (or `stopped → concluded`).
    Conclude(Conclusion),
}

/// The history entry written with a change: what happened and why.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryNote {
    /// `created`, `updated`, `started`, `arms_changed`, `arm_stopped`, `stopped`,
    /// `concluded`, `promoted`.
    pub kind: String,
    pub message: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentHistoryRecord {
    pub id: i64,
    pub experiment_id: String,
    pub kind: String,
    pub message: String,
    pub details: serde_json::Value,
    pub actor: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentFilter {
    pub prompt: Option<String>,
    pub status: Option<ExperimentStatus>,
}

/// The first time a unit was assigned an arm in a phase of an experiment (SRM counts these).
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    pub project: ProjectId,
    pub experiment_id: String,
    pub phase: u32,
    pub unit_id: String,
    pub arm: String,
    pub at: OffsetDateTime,
}
