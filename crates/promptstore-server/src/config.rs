//! The server's settings, resolved once by the binary and passed in whole.

use std::time::Duration;

/// Limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones get 413 `payload_too_large`.
    pub body_limit_bytes: usize,
    /// A request that takes longer is answered 503 `unavailable`. Does not bound SSE streams.
    pub request_timeout: Duration,
    /// Work and output bounds of template rendering.
    pub render_limits: promptstore_core::template::RenderLimits,
    /// How often the change stream sends a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// Events buffered per project for slow change-stream subscribers before they get `resync`.
    pub change_buffer: usize,
    /// Usage analytics: ingestion, workers.
    pub analytics: AnalyticsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            render_limits: promptstore_core::template::RenderLimits::default(),
            sse_keep_alive: Duration::from_secs(15),
            change_buffer: 1024,
            analytics: AnalyticsConfig::default(),
        }
    }
}

/// Settings of event ingestion and of the analytics background workers.
#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    /// Largest body `POST /api/v1/events` accepts (batches are larger than other bodies).
    pub ingest_body_limit_bytes: usize,
    /// Batches waiting for the group-commit writer; when full, requests wait (backpressure).
    pub ingest_queue_batches: usize,
    /// How long a request may wait for room in the queue before it is answered 503.
    pub ingest_enqueue_timeout: Duration,
    /// The most events one group commit takes from the queue (a single larger batch is
    /// still committed whole).
    pub group_commit_max_events: usize,
    /// How often the alert worker evaluates every enabled rule; `None` = no worker (tests
    /// drive evaluation through `AppState::evaluate_alerts`).
    pub alert_interval: Option<Duration>,
    /// Raw events older than this are pruned (the aggregates are kept).
    pub events_retention: Duration,
    /// How often the retention worker runs; `None` = no worker.
    pub retention_interval: Option<Duration>,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            ingest_body_limit_bytes: 16 * 1024 * 1024,
            ingest_queue_batches: 256,
            ingest_enqueue_timeout: Duration::from_secs(10),
            group_commit_max_events: 20_000,
            alert_interval: Some(Duration::from_secs(30)),
            events_retention: Duration::from_secs(30 * 24 * 3600),
            retention_interval: Some(Duration::from_secs(3600)),
        }
    }
}
