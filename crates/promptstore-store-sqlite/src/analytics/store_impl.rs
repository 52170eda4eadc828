//! `AnalyticsStore` for `SqliteStore`: every analytics write is one `BEGIN IMMEDIATE`
//! transaction on the analytics writer; configuration changes (prices, alert rules) are
//! then audited in the registry file's audit log, so one audit log lists every change.

use std::any::Any;
use std::collections::BTreeMap;

use async_trait::async_trait;
use promptstore_core::analytics::audit;
use promptstore_core::analytics::model::{
    AlertEvaluation, AlertEventRecord, AlertRuleRecord, AnalyticsFilter, CellKey, EventRecord,
    EventRef, Granularity, IngestOutcome, PriceRecord, StoredEvent,
};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::analytics::store::{
    AnalyticsStore, CellQuery, CellSink, OpenCommit, PreparedBatch,
};
use promptstore_core::experiments::model::Exposure;
use promptstore_core::model::{Actor, NewAuditEntry, ProjectId};
use promptstore_core::store::{Page, PageRequest, StoreError};
use promptstore_types::{AlertRuleIn, Feedback};
use sqlx::pool::PoolConnection;
use time::OffsetDateTime;

use super::planner::{self, PendingCommit};
use super::{alerts, cells, events, exposures, ingest, prices};
use crate::error::backend;
use crate::{SqliteStore, audit_log, tx};

impl SqliteStore {
    async fn analytics_reader(&self) -> Result<PoolConnection<sqlx::Sqlite>, StoreError> {
        self.analytics.read.acquire().await.map_err(backend)
    }

    /// Write the audit record of an analytics change that has just been committed.
    ///
    /// The change and its record live in two files, so they cannot share a transaction;
    /// writing the record right after the commit (rather than before) means a record never
    /// describes a change that did not happen. If this write fails the caller gets the
    /// error although the change is stored, and a retry of these idempotent-by-key writes
    /// records it.
    async fn audit_committed(&self, actor: &Actor, entry: NewAuditEntry) -> Result<(), StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result = async {
            let at = tx::write_time(&mut tx).await?;
            audit_log::insert(&mut tx, &actor.project, &actor.key_id, at, entry).await
        }
        .await;
        tx::finish(tx, result).await.inspect_err(|e| {
            tracing::error!(error = %e, "an analytics change was stored but its audit record was not");
        })
    }
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn ingest(&self, events: Vec<EventRecord>) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest_prepared(vec![self.prepare(events)]).await
    }

    fn prepare(&self, events: Vec<EventRecord>) -> PreparedBatch {
        planner::prepare(events)
    }

    async fn ingest_prepared(
        &self,
        batches: Vec<PreparedBatch>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut commit = self.open_commit();
        for batch in batches {
            commit.add(batch);
        }
        self.ingest_open(commit).await
    }

    fn open_commit(&self) -> Box<dyn OpenCommit> {
        Box::new(PendingCommit::default())
    }

    async fn ingest_open(
        &self,
        commit: Box<dyn OpenCommit>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        if commit.events() == 0 {
            return Ok(Vec::new());
        }
        // An open commit this store did not open has planned nothing: plan it here.
        if !(commit.as_ref() as &dyn Any).is::<PendingCommit>() {
            return self.ingest_prepared(commit.into_batches()).await;
        }
        let commit: Box<dyn Any + Send> = commit;
        let commit = match commit.downcast::<PendingCommit>() {
            Ok(commit) => *commit,
            Err(_) => {
                return Err(StoreError::Backend(
                    "an open commit changed type while being stored".into(),
                ));
            }
        };
        // The cache lock first, then the write connection: the order every writer of
        // cells takes them in.
        let mut cache = self.analytics.cells.lock().await;
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = async {
            cache.validate(&mut tx).await?;
            ingest::ingest(&mut tx, &mut cache, commit).await
        }
        .await;
        match tx::finish(tx, result).await {
            Ok((outcomes, staged, batches)) => {
                cache.commit(staged);
                self.analytics.checkpoint_soon();
                // Freeing a commit's events (tens of thousands of allocations) takes
                // milliseconds that the writer's next commit would otherwise wait for.
                tokio::task::spawn_blocking(move || drop(batches));
                Ok(outcomes)
            }
            Err(e) => {
                // The touched cells already left the cache; forget the rest too, in case
                // the failure left the file in a state the cache cannot tell.
                cache.clear();
                Err(e)
            }
        }
    }

    async fn attach(
        &self,
        project: &ProjectId,
        event: &EventRef,
        scores: &BTreeMap<String, f64>,
        feedback: Option<&Feedback>,
    ) -> Result<StoredEvent, StoreError> {
        let mut cache = self.analytics.cells.lock().await;
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = events::attach(&mut tx, &mut cache, project, event, scores, feedback).await;
        tx::finish(tx, result).await
    }

    async fn get_event(
        &self,
        project: &ProjectId,
        event: &EventRef,
    ) -> Result<Option<StoredEvent>, StoreError> {
        events::get(&mut *self.analytics_reader().await?, project, event).await
    }

    async fn list_events(
        &self,
        project: &ProjectId,
        filter: &AnalyticsFilter,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        page: &PageRequest,
    ) -> Result<Page<StoredEvent>, StoreError> {
        events::list(
            &mut *self.analytics_reader().await?,
            project,
            filter,
            from,
            to,
            page,
        )
        .await
    }

    async fn cells(
        &self,
        project: &ProjectId,
        granularity: Granularity,
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &AnalyticsFilter,
    ) -> Result<Vec<(CellKey, Rollup)>, StoreError> {
        cells::query(
            &mut *self.analytics_reader().await?,
            project,
            granularity,
            from,
            to,
            filter,
        )
        .await
    }

    async fn fold_cells(
        &self,
        project: &ProjectId,
        query: &CellQuery<'_>,
        sink: &mut CellSink<'_>,
    ) -> Result<(), StoreError> {
        cells::fold(&mut *self.analytics_reader().await?, project, query, sink).await
    }

    async fn window(
        &self,
        project: &ProjectId,
        filter: &AnalyticsFilter,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Rollup, StoreError> {
        events::window(&self.analytics.read, project, filter, from, to).await
    }

    async fn experiment_window(
        &self,
        project: &ProjectId,
        experiment: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        exposures::window(
            &mut *self.analytics_reader().await?,
            project,
            experiment,
            from,
            to,
        )
        .await
    }

    async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = events::prune_bound(before);
        let mut deleted = 0;
        let mut after: Option<String> = None;
        loop {
            let project = {
                let mut conn = self.analytics_reader().await?;
                events::next_project(&mut conn, after.as_deref()).await?
            };
            let Some(project) = project else {
                return Ok(deleted);
            };
            // One short transaction per chunk: an ingest queued behind retention waits for
            // one chunk, never for the whole backlog.
            loop {
                let mut tx = tx::begin(&self.analytics.write).await?;
                let result = events::prune_chunk(&mut tx, &project, before).await;
                let pruned = tx::finish(tx, result).await?;
                deleted += pruned.events;
                if pruned.blocks < events::PRUNE_BLOCKS as usize {
                    break;
                }
                tokio::task::yield_now().await;
            }
            after = Some(project);
        }
    }

    async fn list_prices(&self, project: &ProjectId) -> Result<Vec<PriceRecord>, StoreError> {
        prices::list(&mut *self.analytics_reader().await?, project).await
    }

    async fn all_prices(&self) -> Result<Vec<(ProjectId, PriceRecord)>, StoreError> {
        prices::all(&mut *self.analytics_reader().await?).await
    }

    async fn set_price(
        &self,
        actor: &Actor,
        price: PriceRecord,
    ) -> Result<PriceRecord, StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = prices::set(&mut tx, &actor.project, price).await;
        let (before, after) = tx::finish(tx, result).await?;
        self.audit_committed(actor, audit::price_set(before.as_ref(), &after))
            .await?;
        Ok(after)
    }

    async fn delete_price(&self, actor: &Actor, model: &str) -> Result<(), StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = match prices::delete(&mut tx, &actor.project, model).await {
            Ok(deleted) if deleted.is_empty() => Err(StoreError::NotFound {
                what: format!("price entries for model '{model}'"),
            }),
            other => other,
        };
        let deleted = tx::finish(tx, result).await?;
        self.audit_committed(actor, audit::price_deleted(model, &deleted))
            .await
    }

    async fn create_alert_rule(
        &self,
        actor: &Actor,
        rule: AlertRuleIn,
    ) -> Result<AlertRuleRecord, StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = alerts::create(&mut tx, &actor.project, rule).await;
        let created = tx::finish(tx, result).await?;
        self.audit_committed(actor, audit::alert_rule_created(&created))
            .await?;
        Ok(created)
    }

    async fn update_alert_rule(
        &self,
        actor: &Actor,
        id: i64,
        rule: AlertRuleIn,
    ) -> Result<AlertRuleRecord, StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = alerts::update(&mut tx, &actor.project, id, rule).await;
        let (before, after) = tx::finish(tx, result).await?;
        self.audit_committed(actor, audit::alert_rule_updated(&before, &after))
            .await?;
        Ok(after)
    }

    async fn delete_alert_rule(&self, actor: &Actor, id: i64) -> Result<(), StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = alerts::delete(&mut tx, &actor.project, id).await;
        let before = tx::finish(tx, result).await?;
        self.audit_committed(actor, audit::alert_rule_deleted(&before))
            .await
    }

    async fn get_alert_rule(
        &self,
        project: &ProjectId,
        id: i64,
    ) -> Result<Option<AlertRuleRecord>, StoreError> {
        alerts::get(&mut *self.analytics_reader().await?, project, id).await
    }

    async fn list_alert_rules(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<AlertRuleRecord>, StoreError> {
        alerts::list(&mut *self.analytics_reader().await?, project).await
    }

    async fn enabled_alert_rules(&self) -> Result<Vec<AlertRuleRecord>, StoreError> {
        alerts::enabled(&mut *self.analytics_reader().await?).await
    }

    async fn record_alert_evaluation(
        &self,
        project: &ProjectId,
        evaluation: AlertEvaluation,
    ) -> Result<Option<AlertEventRecord>, StoreError> {
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = alerts::record_evaluation(&mut tx, project, evaluation).await;
        tx::finish(tx, result).await
    }

    async fn list_alert_events(
        &self,
        project: &ProjectId,
        rule: Option<i64>,
        page: &PageRequest,
    ) -> Result<Page<AlertEventRecord>, StoreError> {
        alerts::list_events(&mut *self.analytics_reader().await?, project, rule, page).await
    }

    async fn record_exposures(&self, exposures: Vec<Exposure>) -> Result<u64, StoreError> {
        if exposures.is_empty() {
            return Ok(0);
        }
        let mut tx = tx::begin(&self.analytics.write).await?;
        let result = exposures::record(&mut tx, exposures).await;
        tx::finish(tx, result).await
    }

    async fn exposure_counts(
        &self,
        project: &ProjectId,
        experiment_id: &str,
        phase: u32,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        exposures::counts(
            &mut *self.analytics_reader().await?,
            project,
            experiment_id,
            phase,
        )
        .await
    }
}
