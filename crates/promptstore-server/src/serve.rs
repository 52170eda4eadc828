//! Starting the server: first-start bootstrap, building the state, and the accept loop.

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::model::{Actor, ProjectId};
use promptstore_core::service::projects;
use promptstore_core::store::Store;
use promptstore_types::CreateProject;

use crate::config::ServerConfig;
use crate::secrets::new_key_material;
use crate::state::AppState;

/// What the first start created: shown once to the operator.
#[derive(Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub project_name: String,
    pub admin_secret: String,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("project_name", &self.project_name)
            .field("admin_secret", &"<redacted>")
            .finish()
    }
}

/// Name of the project created on first start.
pub const DEFAULT_PROJECT: &str = "default";

/// On first start (no project exists), create the `default` project and its admin key.
/// Returns `None` when a project already exists.
pub async fn bootstrap(store: &dyn Store) -> anyhow::Result<Option<Bootstrap>> {
    if !store.list_projects().await?.is_empty() {
        return Ok(None);
    }
    let material = new_key_material().map_err(|e| anyhow::anyhow!("{e}"))?;
    // The server itself creates the first project; there is no project to attribute it to
    // yet, so the actor's project is empty and the store files the audit record under the
    // new project.
    let actor = Actor::system(ProjectId(String::new()));
    projects::create(
        store,
        &actor,
        &CreateProject {
            name: DEFAULT_PROJECT.to_owned(),
        },
        &material,
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the default project failed: {e}"))?;
    tracing::info!(
        project = DEFAULT_PROJECT,
        "created the default project and its admin key"
    );
    Ok(Some(Bootstrap {
        project_name: DEFAULT_PROJECT.to_owned(),
        admin_secret: material.secret,
    }))
}

/// Load the key table, every project's runtime snapshot and price book, and start the
/// analytics writer and workers. `analytics` is the events store (a separate database).
pub async fn build_state(
    store: Arc<dyn Store>,
    analytics: Arc<dyn AnalyticsStore>,
    config: ServerConfig,
) -> anyhow::Result<AppState> {
    AppState::load(store, analytics, config).await
}

/// Serve `state` on `listener` until `shutdown` resolves; open change streams are ended
/// then, so graceful shutdown does not wait on them. Sets TCP_NODELAY on every connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::routes::fast::App::new(crate::routes::router(state.clone()), state.clone());
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set tcp_nodelay");
        }
    });
    let stopping = state.clone();
    let served = axum::serve(listener, axum::ServiceExt::into_make_service(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.begin_shutdown();
        })
        .await;
    // No request is running any more: what they buffered can be written for good.
    state.finish().await;
    served
}
