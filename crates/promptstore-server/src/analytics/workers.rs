//! The background workers: alert evaluation, retention of raw events, and metrics upkeep.
//! Each runs on an interval until the server begins to shut down. A worker holds the state
//! only while it runs (a weak reference in between), so a state that is dropped without a
//! shutdown does not live on in its workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::state::AppState;

/// How often histogram samples are drained into buckets when nobody scrapes `/metrics`.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// What one retention run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRun {
    /// Raw events older than this were deleted.
    pub before: OffsetDateTime,
    pub deleted: u64,
}

/// Start the workers the config asks for.
pub fn spawn(state: &AppState) {
    let config = state.config().analytics.clone();
    if let Some(every) = config.alert_interval {
        every_interval(state, every, |state| async move {
            if let Err(e) = state.evaluate_alerts().await {
                tracing::error!(error = %e, "alert evaluation failed");
            }
        });
    }
    if let Some(every) = config.retention_interval {
        every_interval(state, every, |state| async move {
            if let Err(e) = state.prune_old_events(OffsetDateTime::now_utc()).await {
                tracing::error!(error = %e, "pruning old events failed");
            }
        });
    }
    every_interval(state, METRICS_UPKEEP, |state| async move {
        state.metrics().upkeep();
    });
}

/// Run `job` now and then every `every` (a run that overruns delays the next one) until
/// shutdown begins or the state is gone.
pub(crate) fn every_interval<F, Fut>(state: &AppState, every: Duration, job: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(&state.0);
    let stop = state.shutdown_signal();
    let every = every.max(Duration::from_millis(10));
    tokio::spawn(async move {
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticker.tick() => {}
            }
            let Some(inner) = weak.upgrade() else { break };
            job(AppState(inner)).await;
        }
    });
}

impl AppState {
    /// Delete raw events older than the retention age as of `now` (every project); the
    /// aggregates keep their contribution. The retention worker calls this on its interval;
    /// tests call it directly.
    pub async fn prune_old_events(
        &self,
        now: OffsetDateTime,
    ) -> Result<RetentionRun, promptstore_core::store::StoreError> {
        let age = self.config().analytics.events_retention;
        // An age too large to subtract keeps everything (nothing is that old).
        let before = time::Duration::try_from(age)
            .ok()
            .and_then(|age| now.checked_sub(age))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let deleted = self.analytics().prune_events(before).await?;
        self.metrics().events_pruned.increment(deleted);
        if deleted > 0 {
            tracing::info!(deleted, before = %before, "pruned raw events past retention");
        }
        Ok(RetentionRun { before, deleted })
    }
}
