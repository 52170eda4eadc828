//! The group-commit writer: the one task that calls the analytics store's
//! `ingest_open`.
//!
//! Requests prepare their validated events (`AnalyticsStore::prepare`: the store's work
//! that needs no database, done by each request on its own task) and hand them to a
//! bounded queue together with a oneshot reply. The writer adds everything waiting (up to
//! a cap of events) to an open commit (`AnalyticsStore::open_commit`) as it arrives — the
//! store plans each batch into the commit as it is added, while the rest are still on
//! their way — then stores it with ONE `ingest_open` call — one transaction — and only
//! then answers each waiting request with its own slice of the outcomes. Many concurrent
//! batches therefore share one transaction, and no request is answered before its events
//! are durable.
//!
//! Every commit costs a fixed part (the hour and day cells it touches, the fsync) beside
//! its events, so a commit of one lone batch while the others are on their way costs
//! nearly as much as one of all of them. When fewer events are waiting than the previous
//! commit took (the load is what it was, and the rest of it is arriving), the writer waits
//! for them a little — at most half the previous commit's duration, and never more than
//! `MAX_LINGER` — then commits whatever it has. Under a steady or falling load of single
//! batches it never waits.
//!
//! The queue is bounded: when it is full a request waits (backpressure), and after
//! `ingest_enqueue_timeout` it is answered 503 with retry advice instead of waiting forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use promptstore_core::analytics::model::{EventRecord, IngestOutcome};
use promptstore_core::analytics::store::{AnalyticsStore, OpenCommit, PreparedBatch};
use promptstore_core::store::StoreError;
use tokio::sync::{mpsc, oneshot};

use crate::config::AnalyticsConfig;
use crate::metrics::ServerMetrics;

type Reply = Result<Vec<IngestOutcome>, StoreError>;

/// The longest a commit waits for more batches to arrive (see the module comment).
const MAX_LINGER: Duration = Duration::from_millis(50);

/// A new open commit: the store's `open_commit`.
type Open = Arc<dyn Fn() -> Box<dyn OpenCommit> + Send + Sync>;

/// One store transaction over an open commit's batches: the store's `ingest_open`.
type Commit =
    Arc<dyn Fn(Box<dyn OpenCommit>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// The store's work on a batch ahead of its commit (`AnalyticsStore::prepare`), done on the
/// submitting request's task so that requests do it in parallel, not the writer in turn.
type Prepare = Arc<dyn Fn(Vec<EventRecord>) -> PreparedBatch + Send + Sync>;

struct Job {
    batch: PreparedBatch,
    reply: oneshot::Sender<Reply>,
}

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue stayed full for the whole enqueue timeout.
    #[error("the ingest queue is full")]
    Busy { retry_after: Duration },
    /// The writer is gone (the server is stopping).
    #[error("the ingest writer has stopped")]
    Stopped,
    /// The store refused or failed the commit.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The handle requests submit through; cheap to clone.
#[derive(Clone)]
pub struct IngestWriter {
    tx: mpsc::Sender<Job>,
    prepare: Prepare,
    /// Events waiting in the queue (not yet taken by the writer).
    queued: Arc<AtomicI64>,
    metrics: Arc<ServerMetrics>,
    enqueue_timeout: Duration,
}

impl IngestWriter {
    /// Start the writer task on the current runtime. It ends when every handle is dropped,
    /// after committing what is still queued.
    pub fn spawn(
        store: Arc<dyn AnalyticsStore>,
        config: &AnalyticsConfig,
        metrics: Arc<ServerMetrics>,
    ) -> IngestWriter {
        let prepare: Prepare = {
            let store = store.clone();
            Arc::new(move |events| store.prepare(events))
        };
        let open: Open = {
            let store = store.clone();
            Arc::new(move || store.open_commit())
        };
        let commit: Commit = Arc::new(move |open_commit| {
            let store = store.clone();
            Box::pin(async move { store.ingest_open(open_commit).await })
        });
        Self::spawn_with(prepare, open, commit, config, metrics)
    }

    /// The writer over any prepare, open and commit functions (the store's, or a test's).
    fn spawn_with(
        prepare: Prepare,
        open: Open,
        commit: Commit,
        config: &AnalyticsConfig,
        metrics: Arc<ServerMetrics>,
    ) -> IngestWriter {
        let (tx, rx) = mpsc::channel(config.ingest_queue_batches.max(1));
        let queued = Arc::new(AtomicI64::new(0));
        tokio::spawn(run(
            open,
            commit,
            rx,
            queued.clone(),
            metrics.clone(),
            config.group_commit_max_events.max(1),
        ));
        IngestWriter {
            tx,
            prepare,
            queued,
            metrics,
            enqueue_timeout: config.ingest_enqueue_timeout,
        }
    }

    /// Commit `events` (in one transaction shared with whatever else is queued) and return
    /// one outcome per event, in order, once they are durable.
    pub async fn submit(
        &self,
        events: Vec<EventRecord>,
    ) -> Result<Vec<IngestOutcome>, SubmitError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let permit = match tokio::time::timeout(self.enqueue_timeout, self.tx.reserve()).await {
            Err(_) => {
                return Err(SubmitError::Busy {
                    retry_after: Duration::from_secs(1),
                });
            }
            Ok(Err(_)) => return Err(SubmitError::Stopped),
            Ok(Ok(permit)) => permit,
        };
        let (reply, answer) = oneshot::channel();
        let depth = self.queued.fetch_add(count, Ordering::AcqRel) + count;
        self.metrics.ingest_queue_depth.set(depth as f64);
        let batch = (self.prepare)(events);
        permit.send(Job { batch, reply });
        // If this request is cancelled now (client gone, timeout), the job still commits:
        // the events are stored, and a retry with the same client ids is deduplicated.
        match answer.await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(SubmitError::Stopped),
        }
    }
}

async fn run(
    open: Open,
    commit_fn: Commit,
    mut rx: mpsc::Receiver<Job>,
    queued: Arc<AtomicI64>,
    metrics: Arc<ServerMetrics>,
    max_events: usize,
) {
    // The size and duration of the previous commit: how many events to expect, and what a
    // commit costs.
    let mut last_events = 0usize;
    let mut last_took = Duration::ZERO;
    while let Some(first) = rx.recv().await {
        let mut pending = Pending::new(open());
        pending.add(first);
        take_waiting(&mut rx, &mut pending, max_events);
        let expected = last_events.min(max_events);
        if pending.total() < expected {
            let deadline = Instant::now() + (last_took / 2).min(MAX_LINGER);
            while pending.total() < expected {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => {
                        pending.add(job);
                        take_waiting(&mut rx, &mut pending, max_events);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let total = pending.total();
        let taken = i64::try_from(total).unwrap_or(i64::MAX);
        let depth = queued.fetch_sub(taken, Ordering::AcqRel) - taken;
        metrics.ingest_queue_depth.set(depth.max(0) as f64);
        let started = Instant::now();
        commit(&commit_fn, pending, &metrics).await;
        last_took = started.elapsed();
        last_events = total;
    }
    tracing::debug!("ingest writer stopped");
}

/// The commit being put together: its open commit, and the requests waiting on it.
struct Pending {
    commit: Box<dyn OpenCommit>,
    /// Each request's reply and how many events it sent, in the order they were added.
    replies: Vec<(oneshot::Sender<Reply>, usize)>,
}

impl Pending {
    fn new(commit: Box<dyn OpenCommit>) -> Pending {
        Pending {
            commit,
            replies: Vec::new(),
        }
    }

    fn add(&mut self, job: Job) {
        self.replies.push((job.reply, job.batch.events.len()));
        self.commit.add(job.batch);
    }

    /// Events added so far.
    fn total(&self) -> usize {
        self.commit.events()
    }
}

/// Add the jobs already queued, while the commit holds fewer than `max_events` (a batch is
/// never split, so a commit may exceed the cap by its last batch).
fn take_waiting(rx: &mut mpsc::Receiver<Job>, pending: &mut Pending, max_events: usize) {
    while pending.total() < max_events {
        match rx.try_recv() {
            Ok(job) => pending.add(job),
            Err(_) => break,
        }
    }
}

/// One transaction for every job; then each job gets its slice of the outcomes.
async fn commit(commit_fn: &Commit, pending: Pending, metrics: &ServerMetrics) {
    let total = pending.total();
    let Pending {
        commit: open_commit,
        replies,
    } = pending;
    metrics.group_commit_events.record(total as f64);
    // Run the store call in its own task so that a panic inside the backend fails this
    // commit's requests (500) instead of killing the writer for every later request.
    let started = Instant::now();
    let result = tokio::spawn(commit_fn(open_commit)).await;
    metrics
        .group_commit_seconds
        .record(started.elapsed().as_secs_f64());
    let outcomes = match result {
        Ok(Ok(outcomes)) if outcomes.len() == total => outcomes,
        Ok(Ok(outcomes)) => {
            fail_all(
                replies,
                metrics,
                &format!(
                    "the store returned {} outcomes for {total} events",
                    outcomes.len()
                ),
            );
            return;
        }
        Ok(Err(e)) => {
            fail_all(replies, metrics, &e.to_string());
            return;
        }
        Err(e) => {
            fail_all(replies, metrics, &format!("the ingest task failed: {e}"));
            return;
        }
    };
    let mut inserted = 0u64;
    for outcome in &outcomes {
        if matches!(outcome, IngestOutcome::Inserted(_)) {
            inserted += 1;
        }
    }
    metrics.events_ingested.increment(inserted);
    metrics
        .events_duplicate
        .increment(outcomes.len() as u64 - inserted);
    let mut rest = outcomes.into_iter();
    for (reply, size) in replies {
        let mine: Vec<IngestOutcome> = rest.by_ref().take(size).collect();
        // The requester may have gone away; its events are stored all the same.
        let _ = reply.send(Ok(mine));
    }
}

fn fail_all(replies: Vec<(oneshot::Sender<Reply>, usize)>, metrics: &ServerMetrics, cause: &str) {
    tracing::error!(error = %cause, batches = replies.len(), "group commit failed");
    metrics.group_commit_failures.increment(1);
    for (reply, _) in replies {
        let _ = reply.send(Err(StoreError::Backend(cause.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicI64;

    use promptstore_core::analytics::store::CollectedBatches;
    use promptstore_core::model::ProjectId;
    use promptstore_types::CostSource;
    use tokio::sync::Semaphore;

    use super::*;

    fn records(n: usize) -> Vec<EventRecord> {
        (0..n)
            .map(|_| EventRecord {
                project: ProjectId("p".into()),
                client_id: None,
                prompt_id: "id".into(),
                prompt: "p".into(),
                version: 1,
                label: None,
                experiment: None,
                arm: None,
                unit_id: None,
                model: String::new(),
                provider: None,
                input_tokens: 0,
                output_tokens: 0,
                cached_input_tokens: 0,
                latency_ms: None,
                ttft_ms: None,
                cost: None,
                cost_source: CostSource::Unpriced,
                success: true,
                error_type: None,
                scores: Default::default(),
                feedback: None,
                metadata: serde_json::json!({}),
                at: time::OffsetDateTime::UNIX_EPOCH,
            })
            .collect()
    }

    /// A commit that records each transaction's size, waits for a permit of `gate`, and
    /// fails the calls whose number is in `fail`.
    struct Fake {
        gate: Arc<Semaphore>,
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    fn fake(fail: &'static [usize]) -> (Commit, Fake) {
        let gate = Arc::new(Semaphore::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let next_id = Arc::new(AtomicI64::new(1));
        let (g, s) = (gate.clone(), sizes.clone());
        let commit: Commit = Arc::new(move |open_commit: Box<dyn OpenCommit>| {
            let (gate, sizes, next_id) = (g.clone(), s.clone(), next_id.clone());
            let events: Vec<EventRecord> = open_commit
                .into_batches()
                .into_iter()
                .flat_map(|b| b.events)
                .collect();
            Box::pin(async move {
                let call = {
                    let mut sizes = sizes.lock().unwrap();
                    sizes.push(events.len());
                    sizes.len()
                };
                gate.acquire().await.unwrap().forget();
                if fail.contains(&call) {
                    return Err(StoreError::Backend("disk full".into()));
                }
                Ok(events
                    .iter()
                    .map(|_| IngestOutcome::Inserted(next_id.fetch_add(1, Ordering::SeqCst)))
                    .collect())
            })
        });
        (commit, Fake { gate, sizes })
    }

    /// Batches go to the commit as they are (the fake commit prepares nothing).
    fn plain() -> Prepare {
        Arc::new(PreparedBatch::plain)
    }

    /// Open commits that only collect their batches.
    fn collect() -> Open {
        Arc::new(|| Box::new(CollectedBatches::default()))
    }

    fn config(queue: usize, max_events: usize, enqueue_timeout: Duration) -> AnalyticsConfig {
        AnalyticsConfig {
            ingest_queue_batches: queue,
            group_commit_max_events: max_events,
            ingest_enqueue_timeout: enqueue_timeout,
            ..AnalyticsConfig::default()
        }
    }

    /// Yield until `done` holds (bounded: a broken writer fails the test, never hangs it).
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("condition never held");
    }

    fn submit(
        w: &IngestWriter,
        n: usize,
    ) -> tokio::task::JoinHandle<Result<Vec<IngestOutcome>, SubmitError>> {
        let w = w.clone();
        tokio::spawn(async move { w.submit(records(n)).await })
    }

    fn ids(outcomes: &[IngestOutcome]) -> Vec<i64> {
        outcomes
            .iter()
            .map(|o| match o {
                IngestOutcome::Inserted(id) | IngestOutcome::Duplicate(id) => *id,
            })
            .collect()
    }

    #[tokio::test]
    async fn waiting_batches_share_one_commit_and_each_gets_its_own_outcomes() {
        let (commit, f) = fake(&[]);
        let metrics = Arc::new(ServerMetrics::new().unwrap());
        let w = IngestWriter::spawn_with(
            plain(),
            collect(),
            commit,
            &config(16, 1000, Duration::from_secs(5)),
            metrics.clone(),
        );
        let first = submit(&w, 2);
        until(|| f.sizes.lock().unwrap().len() == 1).await;
        // While the first commit is in progress, three more requests queue up.
        let (a, b, c) = (submit(&w, 3), submit(&w, 4), submit(&w, 5));
        until(|| w.queued.load(Ordering::SeqCst) == 12).await;
        assert!(
            metrics
                .render()
                .contains("promptstore_ingest_queue_events 12")
        );
        f.gate.add_permits(2);
        assert_eq!(ids(&first.await.unwrap().unwrap()), vec![1, 2]);
        assert_eq!(ids(&a.await.unwrap().unwrap()), vec![3, 4, 5]);
        assert_eq!(ids(&b.await.unwrap().unwrap()), vec![6, 7, 8, 9]);
        assert_eq!(ids(&c.await.unwrap().unwrap()), vec![10, 11, 12, 13, 14]);
        assert_eq!(
            *f.sizes.lock().unwrap(),
            vec![2, 12],
            "one transaction for the three"
        );
        let text = metrics.render();
        assert!(
            text.contains("promptstore_events_ingested_total 14"),
            "{text}"
        );
        assert!(
            text.contains("promptstore_ingest_group_commit_events_count 2"),
            "{text}"
        );
        assert!(
            text.contains("promptstore_ingest_group_commit_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("promptstore_ingest_queue_events 0"), "{text}");
    }

    #[tokio::test]
    async fn a_commit_takes_at_most_the_cap_but_never_splits_a_batch() {
        let (commit, f) = fake(&[]);
        let w = IngestWriter::spawn_with(
            plain(),
            collect(),
            commit,
            &config(16, 5, Duration::from_secs(5)),
            Arc::new(ServerMetrics::new().unwrap()),
        );
        let first = submit(&w, 1);
        until(|| f.sizes.lock().unwrap().len() == 1).await;
        let rest = [submit(&w, 3), submit(&w, 3), submit(&w, 3), submit(&w, 9)];
        until(|| w.queued.load(Ordering::SeqCst) == 18).await;
        f.gate.add_permits(10);
        first.await.unwrap().unwrap();
        for r in rest {
            r.await.unwrap().unwrap();
        }
        assert_eq!(*f.sizes.lock().unwrap(), vec![1, 6, 12]);
    }

    /// After a commit of several batches, a batch that arrives alone waits (briefly) for the
    /// others instead of paying a commit of its own; when nothing else comes it is
    /// committed alone all the same. On tokio's paused clock, so the waits it compares are
    /// exact however busy the machine is.
    #[tokio::test(start_paused = true)]
    async fn a_lone_batch_after_a_large_commit_waits_for_the_rest_of_the_load() {
        let (commit, f) = fake(&[]);
        let w = IngestWriter::spawn_with(
            plain(),
            collect(),
            commit,
            &config(16, 1000, Duration::from_secs(5)),
            Arc::new(ServerMetrics::new().unwrap()),
        );
        let first = submit(&w, 1);
        until(|| f.sizes.lock().unwrap().len() == 1).await;
        let load = [submit(&w, 3), submit(&w, 3), submit(&w, 3)];
        until(|| w.queued.load(Ordering::SeqCst) == 9).await;
        f.gate.add_permits(1);
        first.await.unwrap().unwrap();
        until(|| f.sizes.lock().unwrap().len() == 2).await;
        // The commit of the three takes a while (so the writer may wait up to MAX_LINGER).
        tokio::time::sleep(MAX_LINGER * 3).await;
        f.gate.add_permits(1);
        for r in load {
            r.await.unwrap().unwrap();
        }
        // One batch arrives and is taken by the writer, which waits; two more follow.
        let lone = submit(&w, 1);
        until(|| w.queued.load(Ordering::SeqCst) == 1).await;
        // A moment passes (a fifth of the wait): without the wait it would be committed.
        tokio::time::sleep(MAX_LINGER / 5).await;
        assert_eq!(f.sizes.lock().unwrap().len(), 2, "the lone batch waits");
        let rest = [submit(&w, 4), submit(&w, 4)];
        until(|| f.sizes.lock().unwrap().len() == 3).await;
        assert_eq!(
            f.sizes.lock().unwrap()[2],
            9,
            "one commit for the lone batch and the two that followed"
        );
        f.gate.add_permits(1);
        lone.await.unwrap().unwrap();
        for r in rest {
            r.await.unwrap().unwrap();
        }
        assert_eq!(*f.sizes.lock().unwrap(), vec![1, 9, 9]);

        // Nothing else comes: the next lone batch is committed after the wait.
        f.gate.add_permits(1);
        assert_eq!(w.submit(records(1)).await.unwrap().len(), 1);
        assert_eq!(*f.sizes.lock().unwrap(), vec![1, 9, 9, 1]);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_after_the_enqueue_timeout() {
        let (commit, f) = fake(&[]);
        let w = IngestWriter::spawn_with(
            plain(),
            collect(),
            commit,
            &config(1, 1000, Duration::from_millis(20)),
            Arc::new(ServerMetrics::new().unwrap()),
        );
        let first = submit(&w, 1);
        until(|| f.sizes.lock().unwrap().len() == 1).await;
        let queued = submit(&w, 1);
        until(|| w.queued.load(Ordering::SeqCst) == 1).await;
        // The writer is busy and the queue (one batch) is full.
        let refused = w.submit(records(1)).await;
        assert!(
            matches!(refused, Err(SubmitError::Busy { .. })),
            "{refused:?}"
        );
        f.gate.add_permits(2);
        assert_eq!(first.await.unwrap().unwrap().len(), 1);
        assert_eq!(queued.await.unwrap().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_requests_and_the_writer_goes_on() {
        let (commit, f) = fake(&[1]);
        let metrics = Arc::new(ServerMetrics::new().unwrap());
        let w = IngestWriter::spawn_with(
            plain(),
            collect(),
            commit,
            &config(16, 1000, Duration::from_secs(5)),
            metrics.clone(),
        );
        f.gate.add_permits(2);
        let failed = w.submit(records(2)).await;
        assert!(
            matches!(failed, Err(SubmitError::Store(StoreError::Backend(_)))),
            "{failed:?}"
        );
        assert_eq!(w.submit(records(1)).await.unwrap().len(), 1);
        assert!(
            metrics
                .render()
                .contains("promptstore_ingest_group_commit_failures_total 1")
        );
        assert!(
            w.submit(Vec::new()).await.unwrap().is_empty(),
            "an empty batch is no commit"
        );
        assert_eq!(f.sizes.lock().unwrap().len(), 2);
    }
}
