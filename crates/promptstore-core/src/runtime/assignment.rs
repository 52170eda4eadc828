//! Running experiments as the runtime snapshot holds them, and sticky arm assignment: the
//! table answers "which experiment runs on this prompt + label" in one hash lookup, and
//! each experiment carries its traffic weights prepared once, so assigning a unit is one
//! SHA-256 of `"{experiment}:{unit}"` and a walk over at most ten weights — no allocation.

use std::collections::HashMap;
use std::sync::Arc;

use promptstore_stats::ArmWeights;
use promptstore_types::ExperimentStatus;

use crate::experiments::model::ExperimentRecord;

/// One arm of a running experiment: its name and the version it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningArm {
    pub name: String,
    pub version: u32,
    /// A stopped arm gets no traffic (its weight counts as 0).
    pub stopped: bool,
}

/// An experiment that assigns traffic now.
#[derive(Debug)]
pub struct RunningExperiment {
    id: String,
    prompt_id: String,
    prompt: String,
    label: String,
    phase: u32,
    /// The first arm is the control.
    arms: Vec<RunningArm>,
    /// Stopped arms at weight 0; built once here, not per request.
    weights: ArmWeights,
}

impl RunningExperiment {
    /// The runtime form of a running experiment record. `None` when it cannot assign
    /// anything: no arms, or no arm with a positive weight left (every arm stopped).
    pub fn from_record(record: &ExperimentRecord) -> Option<Self> {
        let weights: Vec<f64> = record
            .arms
            .iter()
            .map(|a| if a.stopped { 0.0 } else { a.weight })
            .collect();
        let weights = ArmWeights::new(&weights).ok()?;
        Some(RunningExperiment {
            id: record.id.clone(),
            prompt_id: record.prompt_id.clone(),
            prompt: record.prompt.clone(),
            label: record.label.clone(),
            phase: record.phase,
            arms: record
                .arms
                .iter()
                .map(|a| RunningArm {
                    name: a.name.clone(),
                    version: a.version,
                    stopped: a.stopped,
                })
                .collect(),
            weights,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    pub fn prompt_id(&self) -> &str {
        &self.prompt_id
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The analysis phase the current arms and weights belong to.
    pub fn phase(&self) -> u32 {
        self.phase
    }

    pub fn arms(&self) -> &[RunningArm] {
        &self.arms
    }

    /// The arm called `name`, if the experiment has one.
    pub fn arm(&self, name: &str) -> Option<&RunningArm> {
        self.arms.iter().find(|a| a.name == name)
    }

    /// The index of the arm `unit_id` is assigned to (the documented hash of
    /// `promptstore_stats::assign_arm`; never a stopped arm).
    pub fn assign(&self, unit_id: &str) -> usize {
        self.weights.assign(&self.id, unit_id)
    }
}

/// The arm a resolve was assigned to.
#[derive(Debug, Clone)]
pub struct ArmAssignment {
    experiment: Arc<RunningExperiment>,
    arm: usize,
}

impl ArmAssignment {
    pub(crate) fn new(experiment: Arc<RunningExperiment>, arm: usize) -> Self {
        ArmAssignment { experiment, arm }
    }

    pub fn experiment(&self) -> &Arc<RunningExperiment> {
        &self.experiment
    }

    pub fn arm_index(&self) -> usize {
        self.arm
    }

    pub fn arm_name(&self) -> &str {
        self.experiment
            .arms
            .get(self.arm)
            .map_or("", |a| a.name.as_str())
    }

    /// The wire form: the experiment id and the arm name the caller's events should carry.
    pub fn to_wire(&self) -> promptstore_types::Assignment {
        promptstore_types::Assignment {
            experiment: self.experiment.id.clone(),
            arm: self.arm_name().to_owned(),
        }
    }
}

/// The running experiments of a project, by prompt name and by id.
#[derive(Debug, Default)]
pub(crate) struct ExperimentTable {
    /// Prompt name → its running experiments (one per label; labels are few).
    by_prompt: HashMap<String, Vec<Arc<RunningExperiment>>>,
    by_id: HashMap<String, Arc<RunningExperiment>>,
}

impl ExperimentTable {
    /// The table of the `running` records (others are skipped).
    pub(crate) fn build(records: &[ExperimentRecord]) -> Self {
        let mut table = ExperimentTable::default();
        for record in records {
            if record.status != ExperimentStatus::Running {
                continue;
            }
            let Some(running) = RunningExperiment::from_record(record) else {
                continue;
            };
            let running = Arc::new(running);
            table
                .by_prompt
                .entry(running.prompt.clone())
                .or_default()
                .push(running.clone());
            table.by_id.insert(running.id.clone(), running);
        }
        table
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The experiment running on `prompt` (whose id must be `prompt_id`, so a prompt deleted
    /// and re-created under the same name never inherits one) at `label`.
    pub(crate) fn on(
        &self,
        prompt: &str,
        prompt_id: &str,
        label: &str,
    ) -> Option<&Arc<RunningExperiment>> {
        self.by_prompt
            .get(prompt)?
            .iter()
            .find(|e| e.label == label && e.prompt_id == prompt_id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<RunningExperiment>> {
        self.by_id.get(id)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<RunningExperiment>> {
        self.by_id.values()
    }
}
