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
    /// Bytes of render answers kept to answer a repeated render request without rendering
    /// it again (see `answers.rs`); 0 turns the cache off.
    pub render_cache_bytes: u64,
    /// How often the change stream sends a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// Events buffered per project for slow change-stream subscribers before they get `resync`.
    pub change_buffer: usize,
    /// Usage analytics: ingestion, workers.
    pub analytics: AnalyticsConfig,
    /// A/B tests: the exposure buffer and the decision worker.
    pub experiments: ExperimentConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            render_limits: promptstore_core::template::RenderLimits::default(),
            render_cache_bytes: 8 * 1024 * 1024,
            sse_keep_alive: Duration::from_secs(15),
            change_buffer: 1024,
            analytics: AnalyticsConfig::default(),
            experiments: ExperimentConfig::default(),
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

/// Settings of A/B tests: how exposures are buffered and how often decisions are taken.
#[derive(Debug, Clone)]
pub struct ExperimentConfig {
    /// How often the decision worker evaluates every running experiment (conclusion,
    /// guardrail stops); `None` = no worker (tests call `AppState::evaluate_experiments`).
    pub decision_interval: Option<Duration>,
    /// Exposures waiting to be written; when full, new ones are dropped and counted
    /// (resolve never waits for them).
    pub exposure_queue: usize,
    /// How often buffered exposures are written.
    pub exposure_flush_interval: Duration,
    /// Exposures written at once when the buffer fills before the interval.
    pub exposure_batch: usize,
    /// Units remembered to skip repeated exposures before they reach the store.
    pub exposure_dedup: usize,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            decision_interval: Some(Duration::from_secs(60)),
            exposure_queue: 65_536,
            exposure_flush_interval: Duration::from_secs(1),
            exposure_batch: 5_000,
            exposure_dedup: 200_000,
        }
    }
}
