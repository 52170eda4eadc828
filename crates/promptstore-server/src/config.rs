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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            render_limits: promptstore_core::template::RenderLimits::default(),
            sse_keep_alive: Duration::from_secs(15),
            change_buffer: 1024,
        }
    }
}
