//! The decision worker: on its interval, every running experiment of every project is
//! analysed and `experiments::decision::decide` says what to do — record a sample-ratio
//! mismatch once, stop arms that breach a guardrail, stop the experiment, or conclude it
//! (moving the label to the winner in the same transaction when configured). It acts as
//! the system (admin) of the experiment's project; every decision is a history entry with
//! its numbers. Runs never overlap (`evaluate_experiments` holds a lock).

use promptstore_core::experiments::decision::{self, Decision, SRM_WARNING_KIND};
use promptstore_core::experiments::model::{ExperimentChange, ExperimentRecord, HistoryNote};
use promptstore_core::model::Actor;
use promptstore_core::service::experiments as service;
use promptstore_core::store::{PageRequest, StoreError};
use time::OffsetDateTime;

use crate::state::{AppState, Change};

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentRun {
    /// Running experiments analysed.
    pub evaluated: usize,
    /// Decisions applied (SRM warnings, arm stops, stops, conclusions).
    pub decisions: usize,
    /// Experiments whose evaluation failed (logged; the others still ran).
    pub failed: usize,
}

/// Start the worker when the config asks for one.
pub fn spawn(state: &AppState) {
    if let Some(every) = state.config().experiments.decision_interval {
        crate::analytics::workers::every_interval(state, every, |state| async move {
            if let Err(e) = state.evaluate_experiments(OffsetDateTime::now_utc()).await {
                tracing::error!(error = %e, "experiment evaluation failed");
            }
        });
    }
}

impl AppState {
    /// Analyse every running experiment as of `now` and apply the automatic decisions. The
    /// worker calls this on its interval; tests call it directly.
    pub async fn evaluate_experiments(
        &self,
        now: OffsetDateTime,
    ) -> Result<ExperimentRun, StoreError> {
        let _one_at_a_time = self.0.experiment_evaluation.lock().await;
        let running = self.store().running_experiments(None).await?;
        let mut run = ExperimentRun::default();
        for record in running {
            match self.decide_one(&record, now).await {
                Ok(decided) => {
                    run.evaluated += 1;
                    if decided {
                        run.decisions += 1;
                        self.metrics().decisions.increment(1);
                    }
                }
                Err(e) => {
                    run.failed += 1;
                    tracing::error!(project = %record.project, experiment = %record.id, error = %e, "experiment decision failed");
                }
            }
        }
        self.metrics().decision_runs.increment(1);
        Ok(run)
    }

    /// Analyse one experiment and apply its decision; true when something was written.
    async fn decide_one(
        &self,
        record: &ExperimentRecord,
        now: OffsetDateTime,
    ) -> promptstore_core::Result<bool> {
        let results = service::analyze_record(self.analytics(), record, false, now).await?;
        let srm_recorded = if results.srm.mismatch {
            self.srm_recorded(record).await?
        } else {
            false
        };
        let actor = Actor::system(record.project.clone());
        let store = self.store();
        let changed =
            |kind: &'static str| vec![Change::label(kind, &record.prompt, &record.label, None)];
        match decision::decide(record, &results, now, srm_recorded) {
            Decision::Nothing => return Ok(false),
            Decision::SrmWarning(note) => {
                tracing::warn!(experiment = %record.id, name = %record.name, "sample-ratio mismatch");
                service::annotate(store, &actor, record, note).await?;
                // Nothing served changes: no snapshot refresh needed.
                return Ok(true);
            }
            Decision::StopArms {
                arms,
                stopped,
                note,
            } => {
                tracing::warn!(experiment = %record.id, arms = ?stopped, "guardrail breach: stopping arms");
                service::change(store, &actor, record, ExperimentChange::SetArms(arms), note)
                    .await?;
                self.after_write(&record.project, changed("experiment_changed"))
                    .await;
            }
            Decision::StopExperiment(note) => {
                tracing::warn!(experiment = %record.id, "guardrail breach on every treatment: stopping");
                service::change(store, &actor, record, ExperimentChange::Stop, note).await?;
                self.after_write(&record.project, changed("experiment_changed"))
                    .await;
            }
            Decision::Conclude {
                mut conclusion,
                mut note,
                promotion,
            } => {
                let mut label_move = None;
                if let Some(p) = promotion {
                    match service::promotion_move(store, &actor, record, &p.arm, true).await {
                        Ok(m) => label_move = Some((m, p.reason)),
                        Err(e @ promptstore_core::Error::Rejected { .. }) => {
                            // Not promoted after all (e.g. the winner breaks the label's
                            // variable contract): the conclusion stands and says why.
                            conclusion.promoted = false;
                            refused_note(&mut note, &p.arm, &e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                tracing::info!(experiment = %record.id, winner = ?conclusion.winner, promoted = conclusion.promoted, "experiment concluded");
                let concluded =
                    service::apply_conclusion(store, &actor, record, conclusion, note, label_move)
                        .await?;
                let mut changes = changed("experiment_changed");
                if let Some(m) = &concluded.label_move {
                    changes.push(Change::label(
                        "label_moved",
                        &m.prompt,
                        &m.label,
                        m.to_version,
                    ));
                }
                self.after_write(&record.project, changes).await;
            }
        }
        Ok(true)
    }

    /// Whether the SRM warning is already in the history of the current phase.
    async fn srm_recorded(&self, record: &ExperimentRecord) -> promptstore_core::Result<bool> {
        let since = record.phase_started_at.or(record.started_at);
        let mut page = PageRequest {
            cursor: None,
            limit: 200,
        };
        loop {
            let found = self
                .store()
                .experiment_history(&record.project, &record.id, &page)
                .await?;
            if found
                .items
                .iter()
                .any(|h| h.kind == SRM_WARNING_KIND && since.is_none_or(|s| h.at >= s))
            {
                return Ok(true);
            }
            match found.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return Ok(false),
            }
        }
    }
}

/// Say in the conclusion's history why the winner was not promoted.
fn refused_note(note: &mut HistoryNote, arm: &str, why: &promptstore_core::Error) {
    let body = why.to_body();
    note.message.push_str(&format!(
        " The label was not moved to '{arm}': {}",
        body.message
    ));
    if let Some(details) = note.details.as_object_mut() {
        details.insert("promoted".into(), serde_json::json!(false));
        details.insert(
            "promotion_refused".into(),
            serde_json::json!({ "code": body.code.as_str(), "message": body.message, "details": body.details }),
        );
    }
}
