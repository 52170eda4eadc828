//! The runtime cache against a scripted in-process HTTP server: misses, hits, background
//! refresh with ETags, serving stale while the server fails, dropping deleted prompts,
//! pre-warming, and invalidation through the change stream.

// Test helpers outside #[test] functions fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptstore_client::types::{PromptKind, PromptStatus, ResolvedPrompt, Template};
use promptstore_client::{CacheConfig, CachedClient, Client, Selector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    Fail,
    Gone,
}

struct State {
    mode: Mode,
    version: u32,
    /// Request line and `If-None-Match` of every resolve.
    resolves: Vec<(String, Option<String>)>,
}

struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<String>,
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Serve,
            version: 1,
            resolves: Vec::new(),
        }));
        let (events, _) = broadcast::channel(16);
        let (s, e) = (state.clone(), events.clone());
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(socket, s.clone(), e.clone()));
            }
        });
        Fake { url, state, events }
    }

    fn set(&self, mode: Mode, version: u32) {
        let mut state = self.state.lock().unwrap();
        state.mode = mode;
        state.version = version;
    }

    fn resolves(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().resolves.clone()
    }
}

fn resolved(name: &str, version: u32) -> ResolvedPrompt {
    ResolvedPrompt {
        prompt: name.into(),
        kind: PromptKind::Text,
        version,
        label: Some("production".into()),
        status: PromptStatus::Active,
        template: Template::Text {
            text: format!("v{version}"),
        },
        variables: vec![],
        model_config: serde_json::json!({}),
        content_hash: format!("h{version}"),
        assignment: None,
    }
}

async fn connection(
    mut socket: TcpStream,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<String>,
) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        buffer.drain(..head_end + 4);
        let request_line = head.lines().next().unwrap_or_default().to_string();
        let if_none_match = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("if-none-match:")
                .then(|| l[14..].trim().to_string())
        });
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();

        if path.starts_with("/api/v1/changes") {
            let mut receiver = events.subscribe();
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while let Ok(frame) = receiver.recv().await {
                if socket.write_all(frame.as_bytes()).await.is_err() {
                    return;
                }
            }
            return;
        }

        let (mode, version) = {
            let mut s = state.lock().unwrap();
            if path.starts_with("/api/v1/resolve?") {
                s.resolves
                    .push((request_line.clone(), if_none_match.clone()));
            }
            (s.mode, s.version)
        };
        let etag = format!("\"v{version}\"");
        let (status, body, extra) = match mode {
            Mode::Fail => (
                "503 Service Unavailable",
                r#"{"code":"unavailable","message":"down"}"#.to_string(),
                String::new(),
            ),
            Mode::Gone => (
                "404 Not Found",
                r#"{"code":"not_found","message":"gone"}"#.to_string(),
                String::new(),
            ),
            Mode::Serve if path.starts_with("/api/v1/resolve/bulk") => {
                let bulk = serde_json::json!({"label": "production", "prompts": [resolved("a", version), resolved("b", version)]});
                ("200 OK", bulk.to_string(), String::new())
            }
            Mode::Serve if if_none_match.as_deref() == Some(etag.as_str()) => (
                "304 Not Modified",
                String::new(),
                format!("etag: {etag}\r\n"),
            ),
            Mode::Serve => {
                let name = if path.contains("name=b") { "b" } else { "a" };
                (
                    "200 OK",
                    serde_json::to_string(&resolved(name, version)).unwrap(),
                    format!("etag: {etag}\r\n"),
                )
            }
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn config(ttl: Duration) -> CacheConfig {
    CacheConfig {
        ttl,
        retry_interval: Duration::from_millis(20),
        reconnect_min: Duration::from_millis(20),
        ..CacheConfig::default()
    }
}

fn production() -> Selector {
    Selector::Label("production".into())
}

/// Polls until `check` holds (background work is asynchronous), failing after 5 s.
async fn eventually(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in time");
}

#[tokio::test]
async fn hits_are_served_from_memory_and_stale_entries_refresh_in_the_background() {
    let fake = Fake::start().await;
    let cache = CachedClient::new(
        Client::new(&fake.url, "ps_test_key").unwrap(),
        config(Duration::from_millis(300)),
    )
    .unwrap();

    let first = cache.get("a", &production()).await.unwrap();
    assert_eq!(first.version, 1);
    let again = cache.get("a", &production()).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "a hit is the same Arc, not a copy"
    );
    assert_eq!(
        fake.resolves().len(),
        1,
        "the hit did not touch the network"
    );
    assert_eq!(fake.resolves()[0].1, None);

    // Past the TTL, unchanged on the server: the refresh sends the ETag and gets a 304.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stale = cache.get("a", &production()).await.unwrap();
    assert_eq!(stale.version, 1);
    eventually(|| cache.stats().refreshes == 1).await;
    assert_eq!(fake.resolves()[1].1.as_deref(), Some("\"v1\""));

    // Changed on the server: the stale value is served at once, the new one right after.
    fake.set(Mode::Serve, 2);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(cache.get_cached("a", &production()).unwrap().version, 1);
    eventually(|| {
        cache
            .get_cached("a", &production())
            .is_some_and(|p| p.version == 2)
    })
    .await;

    let stats = cache.stats();
    assert_eq!((stats.entries, stats.misses), (1, 1));
    assert!(stats.hits >= 1 && stats.stale_hits >= 2, "{stats:?}");
}

#[tokio::test]
async fn a_failing_server_gets_the_stale_entry_and_counts_it() {
    let fake = Fake::start().await;
    let cache = CachedClient::new(
        Client::new(&fake.url, "k").unwrap(),
        config(Duration::from_millis(50)),
    )
    .unwrap();
    cache.get("a", &production()).await.unwrap();

    fake.set(Mode::Fail, 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.get("a", &production()).await.unwrap().version, 1);
    eventually(|| cache.stats().refresh_failures >= 1).await;
    assert_eq!(cache.get("a", &production()).await.unwrap().version, 1);
    let stats = cache.stats();
    assert!(stats.served_stale >= 1, "{stats:?}");
    assert!(stats.served_stale_for.is_some(), "{stats:?}");

    // A miss while the server fails is an error, not an invented value.
    let err = cache.get("b", &production()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));

    // Back up: the next refresh clears the failure.
    fake.set(Mode::Serve, 3);
    tokio::time::sleep(Duration::from_millis(30)).await;
    cache.get("a", &production()).await.unwrap();
    eventually(|| {
        cache
            .get_cached("a", &production())
            .is_some_and(|p| p.version == 3)
    })
    .await;
    assert_eq!(cache.stats().served_stale_for, None);
}

#[tokio::test]
async fn prompts_that_no_longer_resolve_are_dropped() {
    let fake = Fake::start().await;
    let cache = CachedClient::new(
        Client::new(&fake.url, "k").unwrap(),
        config(Duration::from_millis(30)),
    )
    .unwrap();
    cache.get("a", &production()).await.unwrap();
    fake.set(Mode::Gone, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.get_cached("a", &production());
    eventually(|| cache.stats().entries == 0).await;
    let err = cache.get("a", &production()).await.unwrap_err();
    assert_eq!(err.code(), Some(promptstore_client::ErrorCode::NotFound));
}

#[tokio::test]
async fn prewarm_loads_a_label_in_one_call() {
    let fake = Fake::start().await;
    let cache = CachedClient::new(
        Client::new(&fake.url, "k").unwrap(),
        config(Duration::from_secs(3600)),
    )
    .unwrap();
    assert_eq!(cache.prewarm("production").await.unwrap(), 2);
    assert_eq!(cache.get_cached("b", &production()).unwrap().prompt, "b");
    assert!(cache.get_cached("b", &Selector::Version(1)).is_none());
    assert!(fake.resolves().is_empty());
}

#[tokio::test]
async fn change_events_refresh_affected_entries() {
    let fake = Fake::start().await;
    let cache = CachedClient::new(
        Client::new(&fake.url, "k").unwrap(),
        config(Duration::from_secs(3600)),
    )
    .unwrap();
    cache.get("a", &production()).await.unwrap();
    cache.get("b", &production()).await.unwrap();

    let subscription = cache.subscribe();
    eventually(|| subscription.is_connected()).await;
    // Connecting refreshes everything once (changes may have been missed before).
    eventually(|| cache.stats().refreshes >= 2).await;

    fake.set(Mode::Serve, 2);
    let event = r#"{"kind":"label_moved","prompt":"a","label":"production","version":2,"at":"2026-01-02T03:04:05Z"}"#;
    fake.events
        .send(format!("event: label_moved\ndata: {event}\n\n"))
        .unwrap();
    eventually(|| {
        cache
            .get_cached("a", &production())
            .is_some_and(|p| p.version == 2)
    })
    .await;
    assert_eq!(
        cache.get_cached("b", &production()).unwrap().version,
        1,
        "other prompts untouched"
    );

    let deleted = r#"{"kind":"prompt_deleted","prompt":"b","at":"2026-01-02T03:04:05Z"}"#;
    fake.events
        .send(format!("event: prompt_deleted\ndata: {deleted}\n\n"))
        .unwrap();
    eventually(|| cache.get_cached("b", &production()).is_none()).await;
    assert!(cache.stats().change_events >= 2);
}

#[tokio::test]
async fn the_raw_change_stream_yields_events() {
    use futures_util::StreamExt;
    let fake = Fake::start().await;
    let client = Client::new(&fake.url, "k").unwrap();
    let mut stream = client.changes().await.unwrap();
    // The subscription registers when the fake reads the request; give it a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.events.send(": keep-alive\n\n".into()).unwrap();
    fake.events
        .send(
            "event: resync\ndata: {\"kind\":\"resync\",\"at\":\"2026-01-02T03:04:05Z\"}\n\n".into(),
        )
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kind, "resync");
}
