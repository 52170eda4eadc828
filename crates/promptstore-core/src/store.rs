//! The storage contract. Every backend (SQLite now, PostgreSQL later) implements `Store`
//! and passes the one conformance suite in `store_tests`.
//!
//! Architecture invariant: all registry writes go through [`Store::apply`], which runs a list
//! of operations in ONE transaction together with their audit records — all or nothing. Use
//! cases decide (validation, lifecycle, protected labels, breaking changes) on what they
//! read, and pass the state they decided on (`expected_*`) so the store can refuse with
//! [`StoreError::Conflict`] when it changed in between.

use async_trait::async_trait;
use promptstore_types::{PromptKind, PromptStatus};
use time::OffsetDateTime;

use crate::experiments::model::{
    ExperimentChange, ExperimentFilter, ExperimentHistoryRecord, ExperimentRecord, HistoryNote,
    NewExperiment,
};
use crate::model::{
    Actor, ApiKeyRecord, AuditEntry, IncludeEdge, LabelMoveRecord, LabelRecord, NewApiKey,
    NewVersion, ProjectId, ProjectRecord, PromptRecord, VersionRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `what` names the missing object, e.g. `prompt 'support/triage'`.
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    /// A compare-and-set failed: the object changed since it was read.
    #[error("{message}")]
    Conflict { message: String },
    #[error("prompt '{prompt}' is archived")]
    Archived { prompt: String },
    /// Archiving (without removing labels) a prompt that still holds labels.
    #[error("prompt '{prompt}' still holds labels: {}", labels.join(", "))]
    HasLabels { prompt: String, labels: Vec<String> },
    /// A pagination cursor that this store did not issue (or for another list).
    #[error("invalid cursor: {message}")]
    InvalidCursor { message: String },
    /// The database failed; the message is for the log, not for the client.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// One registry write. A list of them is applied in one transaction by [`Store::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create a prompt with version 1; `latest` points to it.
    CreatePrompt {
        name: String,
        kind: PromptKind,
        description: String,
        tags: Vec<String>,
        status: PromptStatus,
        first_version: NewVersion,
    },
    /// Change metadata; `None` fields stay as they are. Bumps the revision.
    UpdatePrompt {
        name: String,
        expected_revision: Option<u64>,
        description: Option<String>,
        tags: Option<Vec<String>>,
    },
    /// Change the lifecycle status. To `archived`: refused with `HasLabels` while labels
    /// other than `latest` exist, unless `remove_labels` (each removal is a recorded move).
    SetStatus {
        name: String,
        expected_status: PromptStatus,
        status: PromptStatus,
        remove_labels: bool,
    },
    /// Append version `latest + 1` and move `latest` to it (recorded in the label history).
    /// Refused with `Conflict` when `expected_latest` is given and differs.
    CreateVersion {
        name: String,
        expected_latest: Option<u32>,
        version: NewVersion,
    },
    /// Point `label` at `to` (or remove it when `to` is `None`). `expected_from`:
    /// `Some(None)` = the label must not exist, `Some(Some(n))` = it must point to n.
    /// Moving to where it already points writes nothing. Refused on archived prompts and
    /// for the `latest` label.
    MoveLabel {
        name: String,
        label: String,
        to: Option<u32>,
        expected_from: Option<Option<u32>>,
        reason: Option<String>,
    },
    /// Delete the prompt, its versions, labels, label history and experiments (the audit log
    /// keeps them).
    DeletePrompt { name: String },
    /// Create an experiment in `draft` on an existing prompt (`NotFound` otherwise).
    CreateExperiment {
        experiment: NewExperiment,
        note: HistoryNote,
    },
    /// Change an experiment (see `ExperimentChange` for the rules the store enforces) and
    /// append `note` to its history. `Conflict` when `expected_revision` is given and differs.
    UpdateExperiment {
        id: String,
        expected_revision: Option<u64>,
        change: ExperimentChange,
        note: HistoryNote,
    },
    /// Delete a draft experiment (`Conflict` when it is not a draft).
    DeleteExperiment { id: String },
    /// Append `note` to an experiment's history without changing the experiment (no new
    /// revision, no audit record): the decision worker's sample-ratio-mismatch warning.
    /// `NotFound` for an unknown experiment. Outcome: `Experiment` (as it is).
    NoteExperiment { id: String, note: HistoryNote },
}

/// What one [`WriteOp`] did, in the same order as the ops.
// Outcomes are few and short-lived (one per op of a request), so their size does not matter
// and boxing the records would only make every match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// `CreatePrompt` (with its version 1), `UpdatePrompt`, `SetStatus`.
    Prompt {
        prompt: PromptRecord,
        first_version: Option<VersionRecord>,
    },
    Version(VersionRecord),
    /// `None` when the label already pointed there.
    LabelMoved(Option<LabelMoveRecord>),
    Deleted,
    /// `CreateExperiment`, `UpdateExperiment`, `NoteExperiment`.
    Experiment(ExperimentRecord),
}

/// Filters of the prompt list. All given filters must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptFilter {
    pub tag: Option<String>,
    /// The prompt has this label.
    pub label: Option<String>,
    pub status: Option<PromptStatus>,
    pub name_prefix: Option<String>,
    /// Full-text query over names, descriptions, templates (of the newest version) and tags.
    /// When set, results are ordered by relevance; otherwise by name.
    pub text: Option<String>,
}

/// Cursor pagination: `cursor` is the opaque `next_cursor` of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            cursor: None,
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub actor: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip to the database, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- projects and keys -------------------------------------------------------------

    /// Create a project and its first admin key in one transaction (audited).
    /// `actor.project` is the project the creating key belongs to (the audit record goes
    /// to the new project).
    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        protected_labels: &[String],
        first_key: NewApiKey,
    ) -> Result<(ProjectRecord, ApiKeyRecord), StoreError>;
    async fn get_project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>, StoreError>;
    async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError>;
    async fn set_protected_labels(
        &self,
        actor: &Actor,
        labels: &[String],
    ) -> Result<ProjectRecord, StoreError>;

    async fn create_api_key(
        &self,
        actor: &Actor,
        key: NewApiKey,
    ) -> Result<ApiKeyRecord, StoreError>;
    /// Keys of the actor's project, revoked ones included, oldest first.
    async fn list_api_keys(&self, project: &ProjectId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Look a key up by its public id, in any project (authentication).
    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Every key of every project that is not revoked (the server caches them).
    async fn active_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    async fn revoke_api_key(&self, actor: &Actor, id: &str) -> Result<ApiKeyRecord, StoreError>;

    // ---- registry writes ---------------------------------------------------------------

    /// Apply `ops` in one transaction in the actor's project, with an audit record for each
    /// change. On any error nothing is written.
    async fn apply(
        &self,
        actor: &Actor,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteOutcome>, StoreError>;

    // ---- registry reads ----------------------------------------------------------------

    async fn get_prompt(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Option<PromptRecord>, StoreError>;
    async fn list_prompts(
        &self,
        project: &ProjectId,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<PromptRecord>, StoreError>;
    /// Every prompt of the project, ordered by name (snapshot building and export).
    async fn all_prompts(&self, project: &ProjectId) -> Result<Vec<PromptRecord>, StoreError>;
    async fn get_version(
        &self,
        project: &ProjectId,
        prompt: &str,
        number: u32,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// Versions newest first.
    async fn list_versions(
        &self,
        project: &ProjectId,
        prompt: &str,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError>;
    /// Every version of a prompt, oldest first (export).
    async fn all_versions(
        &self,
        project: &ProjectId,
        prompt: &str,
    ) -> Result<Vec<VersionRecord>, StoreError>;
    /// Versions that some label (including `latest`) points to: the set the runtime serves.
    /// `prompt = None` for the whole project.
    async fn live_versions(
        &self,
        project: &ProjectId,
        prompt: Option<&str>,
    ) -> Result<Vec<VersionRecord>, StoreError>;
    async fn list_labels(
        &self,
        project: &ProjectId,
        prompt: &str,
    ) -> Result<Vec<LabelRecord>, StoreError>;
    /// Label moves newest first; `label = None` for all labels of the prompt.
    async fn label_history(
        &self,
        project: &ProjectId,
        prompt: &str,
        label: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LabelMoveRecord>, StoreError>;
    /// The version `label` pointed to at time `at` (`None`: it did not exist then).
    async fn label_at(
        &self,
        project: &ProjectId,
        prompt: &str,
        label: &str,
        at: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError>;
    /// Include edges of every live version of the project (see `live_versions`).
    async fn live_include_edges(&self, project: &ProjectId)
    -> Result<Vec<IncludeEdge>, StoreError>;

    // ---- experiments -------------------------------------------------------------------

    async fn get_experiment(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> Result<Option<ExperimentRecord>, StoreError>;
    /// Newest first.
    async fn list_experiments(
        &self,
        project: &ProjectId,
        filter: &ExperimentFilter,
        page: &PageRequest,
    ) -> Result<Page<ExperimentRecord>, StoreError>;
    /// Running experiments of one project, or of all projects (`None`: the decision worker).
    async fn running_experiments(
        &self,
        project: Option<&ProjectId>,
    ) -> Result<Vec<ExperimentRecord>, StoreError>;
    /// History entries oldest first.
    async fn experiment_history(
        &self,
        project: &ProjectId,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<ExperimentHistoryRecord>, StoreError>;

    // ---- audit -------------------------------------------------------------------------

    /// Audit records newest first.
    async fn list_audit(
        &self,
        project: &ProjectId,
        filter: &crate::store::AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError>;
}
