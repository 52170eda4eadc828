//! The embedded SQLite backend of promptstore: one database file, opened with WAL and
//! `synchronous=FULL`, migrated at open, implementing `promptstore_core::store::Store`.
//!
//! Architecture invariant: every write runs in one `BEGIN IMMEDIATE` transaction on the
//! single write connection, together with its audit records and label moves; reads use a
//! separate pool and never wait for writers. SQL is hand-written for SQLite and checked by
//! the shared conformance suite (`promptstore_core::store_tests`).
//!
//! Usage analytics live in a second file beside the first (`events.db`), with their own
//! writer and migrations, so ingestion never holds the registry's write lock; the same
//! `SqliteStore` implements `promptstore_core::analytics::store::AnalyticsStore` on it.
//!
//! Experiments and their history are registry rows (written by `apply` like any registry
//! change); the exposures of units to their arms are analytics rows.

mod accounts;
mod analytics;
mod audit_log;
mod codec;
mod connect;
mod error;
mod experiments;
mod lookup;
mod read;
mod rows;
mod search;
mod tx;
mod write;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use promptstore_core::experiments::model::{
    ExperimentFilter, ExperimentHistoryRecord, ExperimentRecord,
};
use promptstore_core::model::{
    Actor, ApiKeyRecord, AuditEntry, IncludeEdge, LabelMoveRecord, LabelRecord, NewApiKey,
    ProjectId, ProjectRecord, PromptRecord, VersionRecord,
};
use promptstore_core::store::{
    AuditFilter, Page, PageRequest, PromptFilter, Store, StoreError, WriteOp, WriteOutcome,
};
use sqlx::SqlitePool;
use sqlx::pool::PoolConnection;
use time::OffsetDateTime;

use crate::error::backend;

pub use analytics::{DEFAULT_EVENTS_FILE_NAME, events_path_for};

/// The file name `open_in` uses inside its directory.
pub const DEFAULT_FILE_NAME: &str = "promptstore.db";

/// The SQLite store: the registry file and the analytics file beside it. Cheap to clone:
/// the pools are shared.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    path: PathBuf,
    analytics: analytics::AnalyticsDb,
}

impl SqliteStore {
    /// Open (creating the files and their parent directory if needed) and migrate the
    /// registry database at `path` and its analytics database beside it
    /// ([`events_path_for`]).
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, &events_path_for(path)).await
    }

    /// Open the registry database at `path` and the analytics database at `events`.
    pub async fn open_with(path: &Path, events: &Path) -> Result<SqliteStore, StoreError> {
        let pools = connect::open(path).await?;
        let analytics = match analytics::AnalyticsDb::open(events).await {
            Ok(analytics) => analytics,
            Err(e) => {
                pools.write.close().await;
                pools.read.close().await;
                return Err(e);
            }
        };
        Ok(SqliteStore {
            write: pools.write,
            read: pools.read,
            path: path.to_owned(),
            analytics,
        })
    }

    /// Open `promptstore.db` inside `dir`.
    pub async fn open_in(dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open(&dir.join(DEFAULT_FILE_NAME)).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The analytics database file.
    pub fn events_path(&self) -> &Path {
        &self.analytics.path
    }

    /// The schema migrations applied to the analytics database, oldest first.
    pub async fn analytics_schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        connect::applied_migrations(&self.analytics.read)
            .await
            .map_err(backend)
    }

    /// The journal mode the database reports (`wal` once open).
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&self.read)
            .await
            .map_err(backend)
    }

    /// The schema migrations applied to this database, oldest first.
    pub async fn schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        connect::applied_migrations(&self.read)
            .await
            .map_err(backend)
    }

    /// Close every pool of both files, waiting for running queries; later calls fail.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
        self.analytics.close().await;
    }

    async fn reader(&self) -> Result<PoolConnection<sqlx::Sqlite>, StoreError> {
        self.read.acquire().await.map_err(backend)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        protected_labels: &[String],
        first_key: NewApiKey,
    ) -> Result<(ProjectRecord, ApiKeyRecord), StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result =
            accounts::create_project(&mut tx, actor, name, protected_labels, first_key).await;
        tx::finish(tx, result).await
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>, StoreError> {
        accounts::get_project(&mut *self.reader().await?, id).await
    }

    async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        accounts::list_projects(&mut *self.reader().await?).await
    }

    async fn set_protected_labels(
        &self,
        actor: &Actor,
        labels: &[String],
    ) -> Result<ProjectRecord, StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result = accounts::set_protected_labels(&mut tx, actor, labels).await;
        tx::finish(tx, result).await
    }

    async fn create_api_key(
        &self,
        actor: &Actor,
        key: NewApiKey,
    ) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result = accounts::create_api_key(&mut tx, actor, key).await;
        tx::finish(tx, result).await
    }

    async fn list_api_keys(&self, project: &ProjectId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        accounts::list_keys(&mut *self.reader().await?, project).await
    }

    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        accounts::find_key(&mut *self.reader().await?, id).await
    }

    async fn active_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        accounts::active_keys(&mut *self.reader().await?).await
    }

    async fn revoke_api_key(&self, actor: &Actor, id: &str) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result = accounts::revoke_key(&mut tx, actor, id).await;
        tx::finish(tx, result).await
    }

    async fn apply(
        &self,
        actor: &Actor,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut tx = tx::begin(&self.write).await?;
        let result = write::apply(&mut tx, actor, ops).await;
        tx::finish(tx, result).await
    }

    async fn get_prompt(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Option<PromptRecord>, StoreError> {
        read::get_prompt(&mut *self.reader().await?, project, name).await
    }

    async fn list_prompts(
        &self,
        project: &ProjectId,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<PromptRecord>, StoreError> {
        read::list_prompts(&mut *self.reader().await?, project, filter, page).await
    }

    async fn all_prompts(&self, project: &ProjectId) -> Result<Vec<PromptRecord>, StoreError> {
        read::all_prompts(&mut *self.reader().await?, project).await
    }

    async fn get_version(
        &self,
        project: &ProjectId,
        prompt: &str,
        number: u32,
    ) -> Result<Option<VersionRecord>, StoreError> {
        read::get_version(&mut *self.reader().await?, project, prompt, number).await
    }

    async fn list_versions(
        &self,
        project: &ProjectId,
        prompt: &str,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        read::list_versions(&mut *self.reader().await?, project, prompt, page).await
    }

    async fn all_versions(
        &self,
        project: &ProjectId,
        prompt: &str,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        read::all_versions(&mut *self.reader().await?, project, prompt).await
    }

    async fn live_versions(
        &self,
        project: &ProjectId,
        prompt: Option<&str>,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        read::live_versions(&mut *self.reader().await?, project, prompt).await
    }

    async fn list_labels(
        &self,
        project: &ProjectId,
        prompt: &str,
    ) -> Result<Vec<LabelRecord>, StoreError> {
        read::list_labels(&mut *self.reader().await?, project, prompt).await
    }

    async fn label_history(
        &self,
        project: &ProjectId,
        prompt: &str,
        label: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LabelMoveRecord>, StoreError> {
        read::label_history(&mut *self.reader().await?, project, prompt, label, page).await
    }

    async fn label_at(
        &self,
        project: &ProjectId,
        prompt: &str,
        label: &str,
        at: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        read::label_at(&mut *self.reader().await?, project, prompt, label, at).await
    }

    async fn live_include_edges(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<IncludeEdge>, StoreError> {
        read::live_include_edges(&mut *self.reader().await?, project).await
    }

    async fn get_experiment(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> Result<Option<ExperimentRecord>, StoreError> {
        experiments::read::get(&mut *self.reader().await?, project, id).await
    }

    async fn list_experiments(
        &self,
        project: &ProjectId,
        filter: &ExperimentFilter,
        page: &PageRequest,
    ) -> Result<Page<ExperimentRecord>, StoreError> {
        experiments::read::list(&mut *self.reader().await?, project, filter, page).await
    }

    async fn running_experiments(
        &self,
        project: Option<&ProjectId>,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        experiments::read::running(&mut *self.reader().await?, project).await
    }

    async fn experiment_history(
        &self,
        project: &ProjectId,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<ExperimentHistoryRecord>, StoreError> {
        experiments::read::history(&mut *self.reader().await?, project, id, page).await
    }

    async fn list_audit(
        &self,
        project: &ProjectId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        audit_log::list(&mut *self.reader().await?, project, filter, page).await
    }
}
