//! The storage contract of analytics. Every backend implements `AnalyticsStore` and passes
//! the analytics part of the conformance suite.
//!
//! Architecture invariant: raw events and the aggregate cells they feed are written in the
//! same transaction, so the aggregates always equal a fold of the stored events (minus the
//! events pruned by retention, whose contribution the aggregates keep).

use async_trait::async_trait;
use promptstore_types::{AlertRuleIn, Feedback};
use time::OffsetDateTime;

use super::model::{
    AlertEvaluation, AlertEventRecord, AlertRuleRecord, AnalyticsFilter, CellKey, EventRecord,
    EventRef, Granularity, IngestOutcome, PriceRecord, StoredEvent,
};
use super::rollup::{Rollup, RollupDecodeError};
use crate::experiments::model::Exposure;
use crate::model::{Actor, ProjectId};
use crate::store::{Page, PageRequest, StoreError};

/// How much of a cell's key a fold reads besides the bucket. Below `Full`, a store may answer
/// from coarser roll-up levels it keeps (one cell per bucket and project, or per bucket and
/// prompt): fewer cells, the same merged result for every distinct (bucket, needed key parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyDetail {
    /// Only the bucket: the other key parts may come as empty strings and version 0.
    Bucket,
    /// The bucket and the prompt name: the other key parts may come empty (and version 0).
    Prompt,
    /// Every key part, as stored.
    Full,
}

/// Which cells a fold reads: those of `granularity` whose bucket starts in `[from, to)` and
/// that match `filter`, with the key detail the reader needs.
#[derive(Debug, Clone, Copy)]
pub struct CellQuery<'a> {
    pub granularity: Granularity,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub filter: &'a AnalyticsFilter,
    pub detail: KeyDetail,
}

/// Receives each cell of a fold: its key and its rollup in [`Rollup::encode`]'s format (fold
/// it with `Rollup::merge_encoded`). An error (a corrupt cell) stops the fold.
pub type CellSink<'s> = dyn FnMut(&CellKey, &[u8]) -> Result<(), RollupDecodeError> + Send + 's;

/// A batch of events with the work a store did on it ahead of its commit
/// ([`AnalyticsStore::prepare`]).
pub struct PreparedBatch {
    pub events: Vec<EventRecord>,
    /// The store's own work on the batch, which only that store reads; None when it did
    /// none (then the commit does it all).
    pub work: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl PreparedBatch {
    /// A batch with no work done ahead.
    pub fn plain(events: Vec<EventRecord>) -> PreparedBatch {
        PreparedBatch { events, work: None }
    }
}

impl std::fmt::Debug for PreparedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBatch")
            .field("events", &self.events.len())
            .field("prepared", &self.work.is_some())
            .finish()
    }
}

/// A group commit being put together while its batches arrive
/// ([`AnalyticsStore::open_commit`]): the store may do its work on each batch (grouping,
/// folding) as the batch is added, in the gaps between arrivals, so that less of it is left
/// for the commit itself.
pub trait OpenCommit: std::any::Any + Send {
    /// Add a batch: its events come after those of the batches added before.
    fn add(&mut self, batch: PreparedBatch);

    /// Events added so far.
    fn events(&self) -> usize;

    /// The batches as added, for a store that keeps nothing else.
    fn into_batches(self: Box<Self>) -> Vec<PreparedBatch>;
}

/// The default [`OpenCommit`]: the batches, kept as they come.
#[derive(Debug, Default)]
pub struct CollectedBatches {
    batches: Vec<PreparedBatch>,
}

impl OpenCommit for CollectedBatches {
    fn add(&mut self, batch: PreparedBatch) {
        self.batches.push(batch);
    }

    fn events(&self) -> usize {
        self.batches.iter().map(|b| b.events.len()).sum()
    }

    fn into_batches(self: Box<Self>) -> Vec<PreparedBatch> {
        self.batches
    }
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Store a batch (events of any projects) in ONE transaction: skip events whose
    /// (project, client id) is already stored — or appears earlier in the batch — and fold
    /// every inserted event into its hourly and daily cells (`Rollup::add`) in the same
    /// transaction. Returns one outcome per event, in order. Durable when it returns.
    async fn ingest(&self, events: Vec<EventRecord>) -> Result<Vec<IngestOutcome>, StoreError>;

    /// The part of storing a batch that needs no database (encoding, for one), done by
    /// the caller — each request on its own task — so that the one writer that commits
    /// batches one transaction at a time has less to do. Never fails: what cannot be done
    /// ahead is left to the commit. By default nothing is done ahead.
    fn prepare(&self, events: Vec<EventRecord>) -> PreparedBatch {
        PreparedBatch::plain(events)
    }

    /// `ingest` of the batches' events, in order, in ONE transaction, using the work
    /// `prepare` did on them. Returns one outcome per event of every batch, in order.
    async fn ingest_prepared(
        &self,
        batches: Vec<PreparedBatch>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let events = batches.into_iter().flat_map(|b| b.events).collect();
        self.ingest(events).await
    }

    /// A group commit to add prepared batches to as they arrive, then store with
    /// [`AnalyticsStore::ingest_open`]. By default it only collects them.
    fn open_commit(&self) -> Box<dyn OpenCommit> {
        Box::new(CollectedBatches::default())
    }

    /// `ingest_prepared` of an open commit's batches, in the order they were added, in ONE
    /// transaction, using the work the commit did as they were added.
    async fn ingest_open(
        &self,
        commit: Box<dyn OpenCommit>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest_prepared(commit.into_batches()).await
    }

    /// Late scores/feedback: merge `scores` into the event's scores (same name = replace),
    /// replace its feedback when given, and adjust its cells by the difference
    /// (`Rollup::replace_judgements`), in one transaction. `NotFound` for an unknown event.
    async fn attach(
        &self,
        project: &ProjectId,
        event: &EventRef,
        scores: &std::collections::BTreeMap<String, f64>,
        feedback: Option<&Feedback>,
    ) -> Result<StoredEvent, StoreError>;

    async fn get_event(
        &self,
        project: &ProjectId,
        event: &EventRef,
    ) -> Result<Option<StoredEvent>, StoreError>;

    /// Raw events newest first.
    async fn list_events(
        &self,
        project: &ProjectId,
        filter: &AnalyticsFilter,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        page: &PageRequest,
    ) -> Result<Page<StoredEvent>, StoreError>;

    /// Aggregate cells whose bucket starts in `[from, to)` and that match `filter`.
    async fn cells(
        &self,
        project: &ProjectId,
        granularity: Granularity,
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &AnalyticsFilter,
    ) -> Result<Vec<(CellKey, Rollup)>, StoreError>;

    /// Feed every cell `query` names to `sink`, one at a time, without collecting them: a
    /// query's memory is then what its sink keeps (one accumulator per group), not one
    /// rollup per cell. With `query.detail` below `Full` the store may feed merged cells of a
    /// roll-up level instead (see [`KeyDetail`]); merging what the sink receives per bucket
    /// and needed key parts gives the same rollups as merging the fine cells. Cells come in
    /// no particular order. A sink error is returned as a `Backend` error (corrupt data).
    ///
    /// The default reads [`cells`](Self::cells) and encodes each; backends override it.
    async fn fold_cells(
        &self,
        project: &ProjectId,
        query: &CellQuery<'_>,
        sink: &mut CellSink<'_>,
    ) -> Result<(), StoreError> {
        let cells = self
            .cells(
                project,
                query.granularity,
                query.from,
                query.to,
                query.filter,
            )
            .await?;
        for (key, rollup) in cells {
            sink(&key, &rollup.encode())
                .map_err(|e| StoreError::Backend(format!("corrupt aggregate cell: {e}")))?;
        }
        Ok(())
    }

    /// A rollup computed from the RAW events with `at` in `[from, to)` matching `filter`
    /// (alert windows need minute precision that hourly cells do not have).
    async fn window(
        &self,
        project: &ProjectId,
        filter: &AnalyticsFilter,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Rollup, StoreError>;

    /// The RAW events of `experiment` with `at` in `[from, to)`, folded per arm (events
    /// without an arm are left out): what experiment results read for a partial first hour,
    /// in one pass. Only the counts and moments are promised: the sketches may be empty.
    async fn experiment_window(
        &self,
        project: &ProjectId,
        experiment: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<std::collections::BTreeMap<String, Rollup>, StoreError>;

    /// Delete raw events with `at < before` (all projects), in bounded chunks; the cells
    /// keep their contribution. Returns how many were deleted.
    async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    // ---- experiment exposures ------------------------------------------------------------

    /// Record first exposures: a (project, experiment, phase, unit) already stored is
    /// ignored. Returns how many were new. Durable when it returns.
    async fn record_exposures(&self, exposures: Vec<Exposure>) -> Result<u64, StoreError>;
    /// Units exposed per arm in one phase of an experiment.
    async fn exposure_counts(
        &self,
        project: &ProjectId,
        experiment_id: &str,
        phase: u32,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError>;

    // ---- prices ------------------------------------------------------------------------

    /// The project's own price entries, all of them (every model, every effective date).
    async fn list_prices(&self, project: &ProjectId) -> Result<Vec<PriceRecord>, StoreError>;
    /// Every project's price entries (the server caches them for ingest).
    async fn all_prices(&self) -> Result<Vec<(ProjectId, PriceRecord)>, StoreError>;
    /// Add a price entry (audited as `price.set`). Same model and effective date = replace.
    async fn set_price(&self, actor: &Actor, price: PriceRecord)
    -> Result<PriceRecord, StoreError>;
    /// Remove all of the project's entries for a model (audited as `price.deleted`);
    /// `NotFound` when it has none.
    async fn delete_price(&self, actor: &Actor, model: &str) -> Result<(), StoreError>;

    // ---- alerts ------------------------------------------------------------------------

    async fn create_alert_rule(
        &self,
        actor: &Actor,
        rule: AlertRuleIn,
    ) -> Result<AlertRuleRecord, StoreError>;
    async fn update_alert_rule(
        &self,
        actor: &Actor,
        id: i64,
        rule: AlertRuleIn,
    ) -> Result<AlertRuleRecord, StoreError>;
    async fn delete_alert_rule(&self, actor: &Actor, id: i64) -> Result<(), StoreError>;
    async fn get_alert_rule(
        &self,
        project: &ProjectId,
        id: i64,
    ) -> Result<Option<AlertRuleRecord>, StoreError>;
    async fn list_alert_rules(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<AlertRuleRecord>, StoreError>;
    /// Enabled rules of every project (the evaluation worker).
    async fn enabled_alert_rules(&self) -> Result<Vec<AlertRuleRecord>, StoreError>;
    /// Record an evaluation: update the rule's state, value and time, and append the
    /// transition event when there is one — one transaction. Returns the appended event.
    async fn record_alert_evaluation(
        &self,
        project: &ProjectId,
        evaluation: AlertEvaluation,
    ) -> Result<Option<AlertEventRecord>, StoreError>;
    /// State changes newest first; `rule = None` for all rules of the project.
    async fn list_alert_events(
        &self,
        project: &ProjectId,
        rule: Option<i64>,
        page: &PageRequest,
    ) -> Result<Page<AlertEventRecord>, StoreError>;
}
