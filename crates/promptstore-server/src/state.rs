//! Shared server state: the stores, the key table, per project the runtime snapshot and the
//! change broadcast, for analytics the group-commit writer, the price books and the
//! server's metrics, and for A/B tests the exposure buffer.
//!
//! Architecture invariant: resolve/render read only the snapshot (an `ArcSwap`, so readers
//! never take a lock). Every successful write refreshes the prompts it touched from the
//! store and swaps in a new snapshot; refreshes of one project are serialized and load
//! after taking the lock, so an older load can never overwrite a newer one. Every refresh
//! also reloads the project's running experiments (and loads their arms' versions), so a
//! started, changed or ended experiment — or a deleted prompt's — is served at once.
//!
//! Start: a project of up to [`EAGER_PROMPTS`] prompts is loaded whole before the server
//! answers. A larger one answers as soon as its prompts, labels and running experiments
//! are known, and *warms up* in the background: its live versions (most of the bytes: 20,000
//! of them take several hundred milliseconds to read) are loaded by a full rebuild under
//! the refresh lock. Until then a version is read from the store on first use, the path a
//! non-live version always takes; [`ProjectRuntime::warmed`] waits for the end of it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::model::{LATEST_LABEL, ProjectId};
use promptstore_core::runtime::ProjectSnapshot;
use promptstore_core::store::{Store, StoreError};
use promptstore_types::{ChangeEvent, ImportReport};
use tokio::sync::{Mutex, broadcast, watch};

use crate::analytics::prices::PriceCache;
use crate::analytics::writer::IngestWriter;
use crate::answers::AnswerCache;
use crate::auth::KeyTable;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::experiments::exposures::ExposureSink;
use crate::metrics::ServerMetrics;

/// Projects with up to this many prompts are loaded whole before the server answers (that
/// takes a few tens of milliseconds); larger ones warm up in the background (module docs).
const EAGER_PROMPTS: usize = 1_000;

/// How many times a failed warm-up is tried again, and how long it waits before each retry.
const WARM_UP_RETRIES: u32 = 3;
const WARM_UP_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// One project's runtime: what resolve/render serve, and who listens for changes.
pub struct ProjectRuntime {
    snapshot: ArcSwap<ProjectSnapshot>,
    refresh: Mutex<()>,
    changes: broadcast::Sender<ChangeEvent>,
    /// True once the snapshot holds every live version (see the module docs on warm-up).
    warm: watch::Sender<bool>,
}

impl ProjectRuntime {
    fn new(snapshot: ProjectSnapshot, buffer: usize, warm: bool) -> Self {
        let (changes, _) = broadcast::channel(buffer.max(1));
        ProjectRuntime {
            snapshot: ArcSwap::from_pointee(snapshot),
            refresh: Mutex::new(()),
            changes,
            warm: watch::Sender::new(warm),
        }
    }

    /// Whether the snapshot holds every live version, so no resolve of a live version
    /// waits on the store (false only while a large project warms up after start).
    pub fn is_warm(&self) -> bool {
        *self.warm.borrow()
    }

    /// Resolves once the project is warm (at once if it is). For requests that would
    /// otherwise load many versions one by one, such as a bulk resolve during warm-up.
    pub async fn warmed(&self) {
        let mut rx = self.warm.subscribe();
        // The sender lives as long as `self`: the wait ends with warmth, not an error.
        let _ = rx.wait_for(|warm| *warm).await;
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<ProjectSnapshot>> {
        self.snapshot.load()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.changes.subscribe()
    }
}

/// A committed change, announced on the change stream and refreshed in the snapshot.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: &'static str,
    pub prompt: String,
    pub version: Option<u32>,
    pub label: Option<String>,
}

impl Change {
    pub fn prompt(kind: &'static str, prompt: &str, version: Option<u32>) -> Self {
        Change {
            kind,
            prompt: prompt.to_owned(),
            version,
            label: None,
        }
    }

    pub fn label(kind: &'static str, prompt: &str, label: &str, version: Option<u32>) -> Self {
        Change {
            kind,
            prompt: prompt.to_owned(),
            version,
            label: Some(label.to_owned()),
        }
    }
}

pub(crate) struct Inner {
    store: Arc<dyn Store>,
    analytics: Arc<dyn AnalyticsStore>,
    metrics: Arc<ServerMetrics>,
    /// The group-commit writer of event ingestion (the only caller of `ingest`).
    writer: IngestWriter,
    /// Each project's price book, for costing events at ingest without a store read.
    prices: PriceCache,
    /// Serializes alert evaluations (the worker's and `evaluate_alerts`), so a rule's
    /// transition is never recorded twice.
    pub(crate) alert_evaluation: Mutex<()>,
    /// Buffers first exposures of units to experiment arms for the background writer.
    exposures: ExposureSink,
    /// Render answers of the current snapshots, for repeated render requests.
    answers: AnswerCache,
    /// Serializes experiment decision runs (the worker's and `evaluate_experiments`), so a
    /// decision is never taken twice.
    pub(crate) experiment_evaluation: Mutex<()>,
    config: ServerConfig,
    keys: KeyTable,
    /// foldhash: looked up on every runtime request (see `ProjectSnapshot`'s prompt map).
    projects: ArcSwap<foldhash::HashMap<ProjectId, Arc<ProjectRuntime>>>,
    /// Serializes adding projects to the map (rare), never taken by readers.
    projects_write: Mutex<()>,
    loaded: AtomicBool,
    shutdown: watch::Sender<bool>,
}

/// The state every handler receives; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl AppState {
    /// Load the key table, every project's snapshot and price book from the stores, and
    /// start the group-commit writer and the analytics workers (they stop with the server).
    pub async fn load(
        store: Arc<dyn Store>,
        analytics: Arc<dyn AnalyticsStore>,
        config: ServerConfig,
    ) -> anyhow::Result<AppState> {
        let (shutdown, _) = watch::channel(false);
        let metrics = Arc::new(ServerMetrics::new()?);
        let writer = IngestWriter::spawn(analytics.clone(), &config.analytics, metrics.clone());
        let exposures =
            ExposureSink::spawn(analytics.clone(), &config.experiments, metrics.clone());
        let prices = PriceCache::load(analytics.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("loading the price tables: {e}"))?;
        let state = AppState(Arc::new(Inner {
            store,
            analytics,
            metrics,
            writer,
            prices,
            alert_evaluation: Mutex::new(()),
            exposures,
            experiment_evaluation: Mutex::new(()),
            answers: AnswerCache::new(config.render_cache_bytes),
            config,
            keys: KeyTable::default(),
            projects: ArcSwap::from_pointee(foldhash::HashMap::default()),
            projects_write: Mutex::new(()),
            loaded: AtomicBool::new(false),
            shutdown,
        }));
        state.reload_keys_inner().await?;
        for project in state.store().list_projects().await? {
            state
                .project_added(&project.id)
                .await
                .map_err(|e| anyhow::anyhow!("loading project {}: {e}", project.id))?;
        }
        state.0.loaded.store(true, Ordering::Release);
        crate::analytics::workers::spawn(&state);
        crate::experiments::worker::spawn(&state);
        Ok(state)
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn analytics(&self) -> &dyn AnalyticsStore {
        self.0.analytics.as_ref()
    }

    pub(crate) fn metrics(&self) -> &ServerMetrics {
        &self.0.metrics
    }

    pub(crate) fn answers(&self) -> &AnswerCache {
        &self.0.answers
    }

    pub(crate) fn metrics_handle(&self) -> Arc<ServerMetrics> {
        self.0.metrics.clone()
    }

    pub(crate) fn writer(&self) -> &IngestWriter {
        &self.0.writer
    }

    pub(crate) fn prices(&self) -> &PriceCache {
        &self.0.prices
    }

    pub(crate) fn exposures(&self) -> &ExposureSink {
        &self.0.exposures
    }

    /// Write every exposure buffered so far (the background writer does this every second;
    /// tests call it to read exposure counts at once).
    pub async fn flush_exposures(&self) {
        self.0.exposures.flush().await;
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    pub fn keys(&self) -> &KeyTable {
        &self.0.keys
    }

    pub fn snapshots_loaded(&self) -> bool {
        self.0.loaded.load(Ordering::Acquire)
    }

    async fn reload_keys_inner(&self) -> Result<(), StoreError> {
        self.0.keys.reload(self.0.store.as_ref()).await
    }

    /// Reload the key table after a key was created or revoked.
    pub async fn reload_keys(&self) -> Result<(), ApiError> {
        Ok(self.reload_keys_inner().await?)
    }

    async fn build_snapshot(&self, project: &ProjectId) -> Result<ProjectSnapshot, StoreError> {
        let store = self.store();
        let started = std::time::Instant::now();
        // Two reads on two reader connections, each with its own SQLite thread: the prompts
        // load while the versions do (they were never one transaction: a write in between
        // is refreshed by the writer's own `after_write`).
        let (prompts, versions) = tokio::try_join!(
            store.all_prompts(project),
            store.live_versions(project, None)
        )?;
        let read = started.elapsed();
        let counts = (prompts.len(), versions.len());
        let snapshot = ProjectSnapshot::build(prompts, versions, self.0.config.render_limits);
        let snapshot = self.with_running_experiments(project, &snapshot).await?;
        tracing::info!(
            project = %project,
            prompts = counts.0,
            live_versions = counts.1,
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "runtime snapshot built (every live version)"
        );
        Ok(snapshot)
    }

    /// `snapshot` with the project's running experiments as the store has them now, the
    /// versions of their arms loaded (arms are often not live), so the first assignment to
    /// an arm does not wait on the store.
    async fn with_running_experiments(
        &self,
        project: &ProjectId,
        snapshot: &ProjectSnapshot,
    ) -> Result<ProjectSnapshot, StoreError> {
        let running = self.store().running_experiments(Some(project)).await?;
        let snapshot = snapshot.with_experiments(&running);
        for experiment in snapshot.running_experiments() {
            for arm in experiment.arms() {
                let loaded = snapshot
                    .resolve(
                        experiment.prompt(),
                        &promptstore_types::Selector::Version(arm.version),
                    )
                    .is_ok();
                if loaded {
                    continue;
                }
                if let Some(version) = self
                    .store()
                    .get_version(project, experiment.prompt(), arm.version)
                    .await?
                {
                    snapshot.add_version(version);
                }
            }
        }
        Ok(snapshot)
    }

    /// Load a project's snapshot and register it: whole for a small project; for a large
    /// one its prompts now and its live versions by a background warm-up (module docs).
    pub async fn project_added(
        &self,
        project: &ProjectId,
    ) -> Result<Arc<ProjectRuntime>, ApiError> {
        let _guard = self.0.projects_write.lock().await;
        if let Some(rt) = self.0.projects.load().get(project) {
            return Ok(rt.clone());
        }
        let (snapshot, warm) = self.first_snapshot(project).await?;
        let rt = Arc::new(ProjectRuntime::new(
            snapshot,
            self.0.config.change_buffer,
            warm,
        ));
        let mut map = foldhash::HashMap::clone(&self.0.projects.load());
        map.insert(project.clone(), rt.clone());
        self.0.projects.store(Arc::new(map));
        if !warm {
            let (state, project, rt) = (self.clone(), project.clone(), rt.clone());
            tokio::spawn(async move { state.warm_up(&project, &rt).await });
        }
        Ok(rt)
    }

    /// The snapshot a project starts with, and whether it is warm: every live version for
    /// a project of up to [`EAGER_PROMPTS`] prompts, none for a larger one.
    async fn first_snapshot(
        &self,
        project: &ProjectId,
    ) -> Result<(ProjectSnapshot, bool), StoreError> {
        let store = self.store();
        let started = std::time::Instant::now();
        let prompts = store.all_prompts(project).await?;
        let warm = prompts.len() <= EAGER_PROMPTS;
        let versions = if warm {
            store.live_versions(project, None).await?
        } else {
            Vec::new()
        };
        let counts = (prompts.len(), versions.len());
        let snapshot = ProjectSnapshot::build(prompts, versions, self.0.config.render_limits);
        let snapshot = self.with_running_experiments(project, &snapshot).await?;
        tracing::info!(
            project = %project,
            prompts = counts.0,
            live_versions = counts.1,
            warm,
            total_ms = started.elapsed().as_millis() as u64,
            "runtime snapshot loaded"
        );
        Ok((snapshot, warm))
    }

    /// Load every live version of a project that started cold: a full rebuild under the
    /// refresh lock (so it cannot overwrite a newer refresh, and writes wait for it), tried
    /// again a few times if the store fails. Until it succeeds the project is served with
    /// versions read on first use.
    async fn warm_up(&self, project: &ProjectId, rt: &ProjectRuntime) {
        for attempt in 0..=WARM_UP_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(WARM_UP_RETRY_DELAY).await;
            }
            let _guard = rt.refresh.lock().await;
            match self.build_snapshot(project).await {
                Ok(snapshot) => {
                    rt.snapshot.store(Arc::new(snapshot));
                    rt.warm.send_replace(true);
                    return;
                }
                Err(e) => {
                    tracing::warn!(project = %project, error = %e, attempt, "runtime warm-up failed")
                }
            }
        }
        tracing::error!(project = %project, "runtime warm-up gave up; versions are read from the store on first use");
    }

    /// The runtime of a project, loading it if this instance has not seen it yet.
    pub async fn runtime(&self, project: &ProjectId) -> Result<Arc<ProjectRuntime>, ApiError> {
        if let Some(rt) = self.0.projects.load().get(project) {
            return Ok(rt.clone());
        }
        self.project_added(project).await
    }

    /// The runtime of a project if loaded (the hot path: no await, no lock).
    pub fn runtime_now(&self, project: &ProjectId) -> Option<Arc<ProjectRuntime>> {
        self.0.projects.load().get(project).cloned()
    }

    /// After a committed write: refresh the touched prompts and the running experiments in
    /// the snapshot, then announce the changes. A failed refresh is logged and falls back to
    /// a full rebuild.
    pub async fn after_write(&self, project: &ProjectId, changes: Vec<Change>) {
        let prompts: BTreeSet<String> = changes.iter().map(|c| c.prompt.clone()).collect();
        let rt = match self.runtime(project).await {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(project = %project, error = %e, "runtime snapshot unavailable after write");
                return;
            }
        };
        self.refresh_prompts(project, &rt, Some(&prompts)).await;
        let at = time::OffsetDateTime::now_utc();
        for c in changes {
            // No subscriber is not an error: nobody listens right now.
            let _ = rt.changes.send(ChangeEvent {
                kind: c.kind.to_owned(),
                prompt: Some(c.prompt),
                version: c.version,
                label: c.label,
                at,
            });
        }
    }

    /// After an import: rebuild the snapshot and announce what the report says changed.
    pub async fn after_import(&self, project: &ProjectId, report: &ImportReport) {
        let mut changes = Vec::new();
        for p in &report.prompts_created {
            changes.push(Change::prompt("prompt_created", p, None));
        }
        for p in &report.prompts_updated {
            changes.push(Change::prompt("prompt_updated", p, None));
        }
        for v in &report.versions_created {
            if let Some((p, n)) = v.rsplit_once('@') {
                let n = n.parse().ok();
                changes.push(Change::prompt("version_created", p, n));
                changes.push(Change::label("label_moved", p, LATEST_LABEL, n));
            }
        }
        for m in &report.labels_moved {
            // `name#label → n`
            if let Some((p, rest)) = m.split_once('#') {
                let (label, n) = rest.split_once(" → ").unwrap_or((rest, ""));
                changes.push(Change::label("label_moved", p, label, n.parse().ok()));
            }
        }
        let rt = match self.runtime(project).await {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(project = %project, error = %e, "runtime snapshot unavailable after import");
                return;
            }
        };
        self.refresh_prompts(project, &rt, None).await;
        let at = time::OffsetDateTime::now_utc();
        for c in changes {
            let _ = rt.changes.send(ChangeEvent {
                kind: c.kind.to_owned(),
                prompt: Some(c.prompt),
                version: c.version,
                label: c.label,
                at,
            });
        }
    }

    /// Refresh `prompts` (all when `None`) under the project's refresh lock.
    async fn refresh_prompts(
        &self,
        project: &ProjectId,
        rt: &ProjectRuntime,
        prompts: Option<&BTreeSet<String>>,
    ) {
        let _guard = rt.refresh.lock().await;
        let refreshed = match prompts {
            Some(names) => match self.refresh_some(project, rt, names).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(project = %project, error = %e, "incremental snapshot refresh failed; rebuilding");
                    false
                }
            },
            None => false,
        };
        if !refreshed {
            match self.build_snapshot(project).await {
                Ok(s) => {
                    rt.snapshot.store(Arc::new(s));
                    rt.warm.send_replace(true);
                }
                Err(e) => {
                    tracing::error!(project = %project, error = %e, "snapshot rebuild failed; serving the previous one")
                }
            }
        }
    }

    async fn refresh_some(
        &self,
        project: &ProjectId,
        rt: &ProjectRuntime,
        names: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let mut snapshot = ProjectSnapshot::clone(&rt.snapshot.load());
        for name in names {
            snapshot = match self.store().get_prompt(project, name).await? {
                Some(prompt) => {
                    let versions = self.store().live_versions(project, Some(name)).await?;
                    snapshot.with_prompt(prompt, versions)
                }
                None => snapshot.without_prompt(name),
            };
        }
        let snapshot = self.with_running_experiments(project, &snapshot).await?;
        rt.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Tell long-lived responses (change streams) to end: the server is stopping.
    pub fn begin_shutdown(&self) {
        let _ = self.0.shutdown.send(true);
    }

    /// After the last request: write the buffered exposures and stop their writer.
    pub async fn finish(&self) {
        self.0.exposures.stop().await;
    }

    /// Resolves when shutdown begins.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.0.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_core::model::{Actor, NewVersion};
    use promptstore_core::store::WriteOp;
    use promptstore_store_sqlite::SqliteStore;
    use promptstore_types::{PromptKind, PromptStatus, Selector, Template};

    fn create(index: usize) -> WriteOp {
        let template = Template::Text {
            text: format!("prompt {index} for {{{{ who }}}}"),
        };
        let variables = vec![promptstore_types::VariableSpec::new(
            "who",
            promptstore_types::VarType::String,
        )];
        let model_config = serde_json::json!({});
        WriteOp::CreatePrompt {
            name: format!("p{index:05}"),
            kind: PromptKind::Text,
            description: String::new(),
            tags: Vec::new(),
            status: PromptStatus::Active,
            first_version: NewVersion {
                content_hash: promptstore_core::hash::content_hash(
                    &template,
                    &variables,
                    &model_config,
                ),
                template,
                variables,
                model_config,
                commit_message: String::new(),
                parent: None,
                includes: Vec::new(),
                breaking_changes: Vec::new(),
            },
        }
    }

    /// A state over a fresh store whose default project has `prompts` text prompts.
    async fn state_with(prompts: usize) -> (AppState, ProjectId, tempfile::TempDir) {
        let (state, project, dir, _key) = state_and_key_with(prompts).await;
        (state, project, dir)
    }

    /// The same, with the default project's admin key.
    async fn state_and_key_with(
        prompts: usize,
    ) -> (AppState, ProjectId, tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteStore::open(&dir.path().join("test.db"))
                .await
                .unwrap(),
        );
        let store: Arc<dyn Store> = sqlite.clone();
        let key = crate::bootstrap(store.as_ref())
            .await
            .unwrap()
            .unwrap()
            .admin_secret;
        let project = store.list_projects().await.unwrap().remove(0).id;
        let ops: Vec<WriteOp> = (0..prompts).map(create).collect();
        store
            .apply(&Actor::system(project.clone()), ops)
            .await
            .unwrap();
        let mut config = ServerConfig::default();
        config.analytics.alert_interval = None;
        config.analytics.retention_interval = None;
        let state = AppState::load(store, sqlite, config).await.unwrap();
        (state, project, dir, key)
    }

    fn render(
        rt: &ProjectRuntime,
        name: &str,
    ) -> Result<String, promptstore_core::runtime::RuntimeError> {
        let vars = serde_json::json!({"who": "you"});
        let vars = vars.as_object().cloned().unwrap_or_default();
        rt.snapshot()
            .render(name, &Selector::Label(LATEST_LABEL.into()), &vars)
            .map(|r| match r.output {
                promptstore_core::runtime::RenderOutput::Text(t) => t,
                other => format!("{other:?}"),
            })
    }

    #[tokio::test]
    async fn a_small_project_is_warm_at_start() {
        let (state, project, _dir) = state_with(3).await;
        let rt = state.runtime_now(&project).unwrap();
        assert!(rt.is_warm());
        assert_eq!(render(&rt, "p00002").unwrap(), "prompt 2 for you");
    }

    #[tokio::test]
    async fn a_large_project_answers_at_once_and_warms_up() {
        let (state, project, _dir) = state_with(EAGER_PROMPTS + 1).await;
        let rt = state.runtime_now(&project).unwrap();
        // Every prompt is known from the start; a version not loaded yet is asked for.
        assert_eq!(rt.snapshot().len(), EAGER_PROMPTS + 1);
        match render(&rt, "p00007") {
            Ok(text) => assert_eq!(text, "prompt 7 for you"),
            Err(promptstore_core::runtime::RuntimeError::NeedVersion(need)) => {
                assert_eq!((need.prompt.as_str(), need.number), ("p00007", 1));
                assert!(!rt.is_warm());
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::timeout(std::time::Duration::from_secs(60), rt.warmed())
            .await
            .expect("the warm-up finishes");
        assert!(rt.is_warm());
        for name in ["p00000", "p00007", "p01000"] {
            let index: usize = name[1..].parse().unwrap();
            assert_eq!(
                render(&rt, name).unwrap(),
                format!("prompt {index} for you")
            );
        }
    }

    #[tokio::test]
    async fn a_bulk_resolve_during_the_warm_up_answers_every_prompt() {
        use tower::ServiceExt;

        let (state, _project, _dir, key) = state_and_key_with(EAGER_PROMPTS + 1).await;
        // Right after start: the warm-up may still be running. The bulk answer needs every
        // live version; it must wait for them rather than run out of load attempts.
        let response = crate::router(state)
            .oneshot(
                axum::http::Request::get("/api/v1/resolve/bulk?label=latest")
                    .header("authorization", format!("Bearer {key}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        let bulk: promptstore_types::BulkResolved = serde_json::from_slice(&body).unwrap();
        assert_eq!(bulk.prompts.len(), EAGER_PROMPTS + 1);
    }
}
