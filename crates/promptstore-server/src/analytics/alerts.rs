//! One run of alert evaluation: every enabled rule of every project is measured on the raw
//! events of its window and its new state recorded; a flip between `ok` and `firing` is
//! appended as an alert event — the notification record that delivery (webhooks, a later
//! issue) will read.

use promptstore_core::analytics::alerts;
use promptstore_core::store::StoreError;
use time::OffsetDateTime;

use crate::state::AppState;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRun {
    /// Rules evaluated and recorded.
    pub evaluated: usize,
    /// Of those, the ones that fired or resolved.
    pub transitions: usize,
    /// Rules whose evaluation failed (logged; the others still ran).
    pub failed: usize,
}

impl AppState {
    /// Evaluate every enabled rule now. The alert worker calls this on its interval; tests
    /// call it directly. Runs never overlap, so a transition is recorded once.
    pub async fn evaluate_alerts(&self) -> Result<AlertRun, StoreError> {
        let _one_at_a_time = self.0.alert_evaluation.lock().await;
        let store = self.analytics();
        let rules = store.enabled_alert_rules().await?;
        let mut run = AlertRun::default();
        for rule in rules {
            let now = OffsetDateTime::now_utc();
            let (from, to) = alerts::window(&rule.rule, now);
            let filter = alerts::filter(&rule.rule);
            let outcome = match store.window(&rule.project, &filter, from, to).await {
                Ok(rollup) => {
                    let evaluation = alerts::evaluate(&rule, &rollup, now);
                    store
                        .record_alert_evaluation(&rule.project, evaluation)
                        .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(transition) => {
                    run.evaluated += 1;
                    if let Some(event) = transition {
                        run.transitions += 1;
                        self.metrics().alert_transitions.increment(1);
                        tracing::warn!(
                            project = %rule.project,
                            rule = %event.rule_name,
                            state = %event.state,
                            value = event.value,
                            threshold = event.threshold,
                            sample = event.sample,
                            "alert state changed"
                        );
                    }
                }
                // Deleted since it was listed: nothing to record.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => {
                    run.failed += 1;
                    tracing::error!(project = %rule.project, rule_id = rule.id, error = %e, "alert evaluation failed");
                }
            }
        }
        self.metrics().alert_runs.increment(1);
        Ok(run)
    }
}
