//! The exposure buffer: the hot path hands each assignment to a bounded channel without
//! waiting (`try_send`; a full queue drops it and counts the drop), and one background task
//! removes repeats with a bounded in-memory set, batches the rest and writes them with
//! `AnalyticsStore::record_exposures` every `flush_interval` or `batch` items. The store
//! keeps only a unit's first exposure per phase, so a repeat that slips through (after the
//! set was cleared, or on another instance) costs a write, never a wrong count.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::experiments::model::Exposure;
use promptstore_core::model::ProjectId;
use promptstore_core::runtime::assignment::{ArmAssignment, RunningExperiment};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::config::ExperimentConfig;
use crate::metrics::ServerMetrics;

/// Exposures kept for a retry when writes fail; beyond this the oldest are dropped (and
/// counted) so a database outage cannot exhaust memory.
const MAX_PENDING: usize = 100_000;

/// An exposure as the hot path hands it over: the experiment is shared with the snapshot
/// (no copy of its id or arm names); the writer turns it into an `Exposure`.
struct Offered {
    project: ProjectId,
    experiment: Arc<RunningExperiment>,
    arm: usize,
    unit: String,
    at: OffsetDateTime,
}

impl Offered {
    fn into_exposure(self) -> Exposure {
        let arm = self
            .experiment
            .arms()
            .get(self.arm)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        Exposure {
            project: self.project,
            experiment_id: self.experiment.id().to_owned(),
            phase: self.experiment.phase(),
            unit_id: self.unit,
            arm,
            at: self.at,
        }
    }
}

enum Control {
    /// Write everything received so far, then answer.
    Flush(oneshot::Sender<()>),
    /// Write everything received so far, answer, and end.
    Stop(oneshot::Sender<()>),
}

/// The handle the hot path offers exposures to; cheap to clone.
#[derive(Clone)]
pub struct ExposureSink {
    tx: mpsc::Sender<Offered>,
    control: mpsc::Sender<Control>,
    metrics: Arc<ServerMetrics>,
}

impl ExposureSink {
    /// Start the writer task on the current runtime.
    pub fn spawn(
        store: Arc<dyn AnalyticsStore>,
        config: &ExperimentConfig,
        metrics: Arc<ServerMetrics>,
    ) -> ExposureSink {
        let (tx, rx) = mpsc::channel(config.exposure_queue.max(1));
        let (control, control_rx) = mpsc::channel(4);
        let writer = Writer {
            store,
            metrics: metrics.clone(),
            pending: Vec::new(),
            seen: HashSet::new(),
            seen_cap: config.exposure_dedup.max(1),
            batch: config.exposure_batch.max(1),
        };
        tokio::spawn(writer.run(rx, control_rx, config.exposure_flush_interval));
        ExposureSink {
            tx,
            control,
            metrics,
        }
    }

    /// Queue the exposure of `unit` to its assigned arm without waiting; when the queue is
    /// full (or the writer has stopped) it is dropped and counted.
    pub fn offer(&self, project: &ProjectId, assignment: &ArmAssignment, unit: &str) {
        let offered = Offered {
            project: project.clone(),
            experiment: assignment.experiment().clone(),
            arm: assignment.arm_index(),
            unit: unit.to_owned(),
            at: OffsetDateTime::now_utc(),
        };
        if self.tx.try_send(offered).is_err() {
            self.metrics.exposures_dropped.increment(1);
        }
    }

    /// Write everything offered so far; returns once it is stored (or the write failed and
    /// was logged). For shutdown and tests.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.control.send(Control::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Write everything offered so far and stop the writer.
    pub async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.control.send(Control::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

struct Writer {
    store: Arc<dyn AnalyticsStore>,
    metrics: Arc<ServerMetrics>,
    pending: Vec<Exposure>,
    /// Hashes of (project, experiment, phase, unit) already queued; cleared when full.
    seen: HashSet<u64>,
    seen_cap: usize,
    batch: usize,
}

fn key(e: &Offered) -> u64 {
    let mut h = DefaultHasher::new();
    e.project.0.hash(&mut h);
    e.experiment.id().hash(&mut h);
    e.experiment.phase().hash(&mut h);
    e.unit.hash(&mut h);
    h.finish()
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Offered>,
        mut control: mpsc::Receiver<Control>,
        every: Duration,
    ) {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = control.recv() => {
                    self.drain(&mut rx);
                    self.write().await;
                    match command {
                        Some(Control::Flush(ack)) => {
                            let _ = ack.send(());
                        }
                        Some(Control::Stop(ack)) => {
                            let _ = ack.send(());
                            break;
                        }
                        None => break,
                    }
                }
                exposure = rx.recv() => match exposure {
                    Some(e) => {
                        self.accept(e);
                        if self.pending.len() >= self.batch {
                            self.write().await;
                        }
                    }
                    None => {
                        self.write().await;
                        break;
                    }
                },
                _ = ticker.tick() => self.write().await,
            }
        }
        tracing::debug!("exposure writer stopped");
    }

    fn accept(&mut self, e: Offered) {
        if self.seen.len() >= self.seen_cap {
            self.seen.clear();
        }
        if self.seen.insert(key(&e)) {
            self.pending.push(e.into_exposure());
        }
    }

    fn drain(&mut self, rx: &mut mpsc::Receiver<Offered>) {
        while let Ok(e) = rx.try_recv() {
            self.accept(e);
        }
    }

    async fn write(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let count = batch.len();
        // The store call runs in its own task so a backend panic fails this write only.
        let store = self.store.clone();
        let retry = batch.clone();
        match tokio::spawn(async move { store.record_exposures(batch).await }).await {
            Ok(Ok(new)) => {
                self.metrics.exposures_recorded.increment(new);
            }
            Ok(Err(e)) => self.failed(retry, count, &e.to_string()),
            Err(e) => self.failed(retry, count, &e.to_string()),
        }
    }

    /// Keep a failed batch for the next write, within `MAX_PENDING`.
    fn failed(&mut self, mut batch: Vec<Exposure>, count: usize, cause: &str) {
        tracing::error!(error = %cause, exposures = count, "writing exposures failed; retrying later");
        self.metrics.exposure_write_failures.increment(1);
        batch.append(&mut self.pending);
        if batch.len() > MAX_PENDING {
            let excess = batch.len() - MAX_PENDING;
            batch.drain(..excess);
            self.metrics.exposures_dropped.increment(excess as u64);
        }
        self.pending = batch;
    }
}
