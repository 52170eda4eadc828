//! Builders of the audit records of experiment changes, so that every backend writes the same
//! action names, object ids and before/after JSON for the same change (as `crate::audit`
//! does for the registry).
//!
//! The JSON is the wire `Experiment`: what an API client sees of the object.

use promptstore_types::Experiment;

use super::model::{ExperimentChange, ExperimentRecord};
use crate::convert::to_json;
use crate::model::NewAuditEntry;

/// The action names, as stored and as filtered on (`GET /audit?action=`).
pub mod actions {
    pub const EXPERIMENT_CREATED: &str = "experiment.created";
    pub const EXPERIMENT_UPDATED: &str = "experiment.updated";
    pub const EXPERIMENT_STARTED: &str = "experiment.started";
    pub const EXPERIMENT_ARMS_CHANGED: &str = "experiment.arms_changed";
    pub const EXPERIMENT_STOPPED: &str = "experiment.stopped";
    pub const EXPERIMENT_CONCLUDED: &str = "experiment.concluded";
    pub const EXPERIMENT_DELETED: &str = "experiment.deleted";
}

/// The object type of experiment audit records; the object id is the experiment id.
pub const OBJECT_TYPE: &str = "experiment";

/// The wire form of an experiment record (what audit records and API answers show).
pub fn wire(e: &ExperimentRecord) -> Experiment {
    Experiment {
        id: e.id.clone(),
        name: e.name.clone(),
        description: e.description.clone(),
        prompt: e.prompt.clone(),
        label: e.label.clone(),
        arms: e.arms.clone(),
        primary_metric: e.primary_metric.clone(),
        guardrails: e.guardrails.clone(),
        min_sample_per_arm: e.min_sample_per_arm,
        max_duration_hours: e.max_duration_hours,
        on_conclusion: e.on_conclusion,
        alpha: e.alpha,
        sequential_tuning: e.sequential_tuning,
        prior: e.prior.clone(),
        mde: e.mde,
        status: e.status,
        conclusion: e.conclusion.clone(),
        revision: e.revision,
        created_by: e.created_by.clone(),
        created_at: e.created_at,
        started_at: e.started_at,
        phase_started_at: e.phase_started_at,
        ended_at: e.ended_at,
    }
}

fn entry(
    action: &'static str,
    id: &str,
    before: Option<&ExperimentRecord>,
    after: Option<&ExperimentRecord>,
) -> NewAuditEntry {
    NewAuditEntry {
        action,
        object_type: OBJECT_TYPE,
        object_id: id.to_owned(),
        before: before.map(|e| to_json(&wire(e))),
        after: after.map(|e| to_json(&wire(e))),
    }
}

pub fn experiment_created(e: &ExperimentRecord) -> NewAuditEntry {
    entry(actions::EXPERIMENT_CREATED, &e.id, None, Some(e))
}

/// The action of a change: `updated` (a draft replaced), `started`, `arms_changed`,
/// `stopped`, `concluded`.
pub fn change_action(change: &ExperimentChange) -> &'static str {
    match change {
        ExperimentChange::ReplaceDraft(_) => actions::EXPERIMENT_UPDATED,
        ExperimentChange::Start => actions::EXPERIMENT_STARTED,
        ExperimentChange::SetArms(_) => actions::EXPERIMENT_ARMS_CHANGED,
        ExperimentChange::Stop => actions::EXPERIMENT_STOPPED,
        ExperimentChange::Conclude(_) => actions::EXPERIMENT_CONCLUDED,
    }
}

/// The record of one `ExperimentChange`, with the experiment before and after it.
pub fn experiment_changed(
    change: &ExperimentChange,
    before: &ExperimentRecord,
    after: &ExperimentRecord,
) -> NewAuditEntry {
    entry(change_action(change), &after.id, Some(before), Some(after))
}

/// An experiment deleted (a draft by hand, or any experiment with its prompt).
pub fn experiment_deleted(before: &ExperimentRecord) -> NewAuditEntry {
    entry(actions::EXPERIMENT_DELETED, &before.id, Some(before), None)
}

#[cfg(test)]
mod tests {
    use promptstore_types::{Arm, Conclusion, ExperimentStatus, MetricSpec, OnConclusion};
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::model::ProjectId;

    fn record() -> ExperimentRecord {
        let arm = |name: &str, version| Arm {
            name: name.to_owned(),
            version,
            weight: 1.0,
            stopped: false,
            stopped_reason: None,
        };
        ExperimentRecord {
            id: "0b7c".to_owned(),
            project: ProjectId("p1".to_owned()),
            name: "shorter".to_owned(),
            description: String::new(),
            prompt_id: "pid".to_owned(),
            prompt: "support/triage".to_owned(),
            label: "production".to_owned(),
            arms: vec![arm("control", 1), arm("shorter", 2)],
            primary_metric: MetricSpec {
                metric: "success_rate".to_owned(),
                direction: None,
            },
            guardrails: vec![],
            min_sample_per_arm: 100,
            max_duration_hours: None,
            on_conclusion: OnConclusion::Nothing,
            alpha: 0.05,
            sequential_tuning: 5000.0,
            prior: None,
            mde: 0.05,
            status: ExperimentStatus::Running,
            conclusion: None,
            revision: 2,
            phase: 1,
            created_by: "k1".to_owned(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: Some(OffsetDateTime::UNIX_EPOCH),
            phase_started_at: Some(OffsetDateTime::UNIX_EPOCH),
            ended_at: None,
        }
    }

    #[test]
    fn each_change_has_its_action() {
        let cases = [
            (ExperimentChange::Start, "experiment.started"),
            (ExperimentChange::SetArms(vec![]), "experiment.arms_changed"),
            (ExperimentChange::Stop, "experiment.stopped"),
            (
                ExperimentChange::Conclude(Conclusion {
                    winner: None,
                    reason: "r".to_owned(),
                    promoted: false,
                    decided_by: "manual".to_owned(),
                }),
                "experiment.concluded",
            ),
        ];
        for (change, action) in cases {
            assert_eq!(change_action(&change), action);
        }
    }

    #[test]
    fn records_carry_the_wire_experiment() {
        let before = record();
        let mut after = before.clone();
        after.status = ExperimentStatus::Stopped;
        after.revision = 3;
        let e = experiment_changed(&ExperimentChange::Stop, &before, &after);
        assert_eq!(e.object_type, "experiment");
        assert_eq!(e.object_id, "0b7c");
        assert_eq!(
            e.before.as_ref().and_then(|b| b.get("status")),
            Some(&json!("running"))
        );
        assert_eq!(
            e.after.as_ref().and_then(|a| a.get("revision")),
            Some(&json!(3))
        );
        let created = experiment_created(&before);
        assert_eq!(created.before, None);
        assert_eq!(created.action, "experiment.created");
        let deleted = experiment_deleted(&before);
        assert_eq!(deleted.after, None);
        assert_eq!(
            deleted.before.as_ref().and_then(|b| b.get("prompt")),
            Some(&json!("support/triage"))
        );
    }
}
