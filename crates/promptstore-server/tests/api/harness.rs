//! Starting a server for one test, and small builders for request bodies.

use std::sync::Arc;

use promptstore_client::Client;
use promptstore_client::types::{
    ChatMessage, CreateApiKey, CreatePrompt, CreateVersion, Role, SetLabel, Template, VarType,
    VariableSpec,
};
use promptstore_client::{ClientError, ErrorCode};
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_server::{AppState, ServerConfig, bootstrap, build_state, serve};
use promptstore_store_sqlite::SqliteStore;
use tokio::sync::oneshot;

pub struct TestServer {
    /// A client with the default project's admin key.
    pub admin: Client,
    pub admin_secret: String,
    /// The server's state, so tests can run the background jobs (alert evaluation,
    /// retention) at once instead of waiting for their interval.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The default config with the interval workers off: tests run alert evaluation and
/// retention themselves (`state.evaluate_alerts()`, `state.prune_old_events()`), so no
/// test depends on a timer.
pub fn test_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.analytics.alert_interval = None;
    config.analytics.retention_interval = None;
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteStore::open(&dir.path().join("test.db"))
                .await
                .unwrap(),
        );
        let store: Arc<dyn promptstore_core::store::Store> = sqlite.clone();
        let analytics: Arc<dyn AnalyticsStore> = sqlite;
        let boot = bootstrap(store.as_ref())
            .await
            .unwrap()
            .expect("first start creates the default project");
        assert_eq!(boot.project_name, "default");
        assert!(
            bootstrap(store.as_ref()).await.unwrap().is_none(),
            "second start creates nothing"
        );
        let state = build_state(store, analytics, config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        let admin = Client::new(base.clone(), boot.admin_secret.clone()).unwrap();
        TestServer {
            admin,
            admin_secret: boot.admin_secret,
            state,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A client with another key (or none, with "").
    pub fn client(&self, secret: &str) -> Client {
        self.admin.with_api_key(secret).unwrap()
    }

    /// A new key of the default project with `role`, as a client.
    pub async fn key(&self, role: Role) -> (Client, String) {
        let created = self
            .admin
            .create_key(&CreateApiKey {
                name: format!("{} key", role.as_str()),
                role,
            })
            .await
            .unwrap();
        (self.client(&created.secret), created.key.id)
    }

    /// Stop the server and wait for it (open change streams must not hold it up).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("server stops within 5 s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn text(t: &str) -> Template {
    Template::Text { text: t.to_owned() }
}

pub fn chat(messages: &[(&str, &str)]) -> Template {
    Template::Chat {
        messages: messages
            .iter()
            .map(|(role, content)| {
                if *role == "placeholder" {
                    ChatMessage::Placeholder {
                        placeholder: (*content).to_owned(),
                    }
                } else {
                    ChatMessage::Message {
                        role: (*role).to_owned(),
                        content: (*content).to_owned(),
                    }
                }
            })
            .collect(),
    }
}

pub fn var(name: &str, var_type: VarType) -> VariableSpec {
    VariableSpec {
        name: name.to_owned(),
        var_type,
        required: true,
        default: None,
        allowed: None,
        description: None,
    }
}

pub fn new_prompt(name: &str, template: Template, variables: Vec<VariableSpec>) -> CreatePrompt {
    CreatePrompt {
        name: name.to_owned(),
        description: String::new(),
        tags: Vec::new(),
        status: None,
        template,
        variables,
        model_config: None,
        commit_message: "first".to_owned(),
    }
}

pub fn new_version(template: Template, variables: Vec<VariableSpec>) -> CreateVersion {
    CreateVersion {
        template,
        variables,
        model_config: None,
        commit_message: "edit".to_owned(),
        base_version: None,
    }
}

pub fn to(version: u32) -> SetLabel {
    SetLabel {
        version,
        expected_version: None,
        allow_breaking: false,
        reason: None,
    }
}

/// The API error code of a failed call; panics on success so a test cannot pass silently.
pub fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("expected an API error, got {e}")),
    }
}

/// The full API error of a failed call.
pub fn api_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
) -> (u16, promptstore_client::ErrorBody) {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(ClientError::Api { status, body }) => (status, body),
        Err(e) => panic!("expected an API error, got {e}"),
    }
}
