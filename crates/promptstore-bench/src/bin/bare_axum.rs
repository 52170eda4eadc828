//! The baseline of the HTTP benchmarks: a bare axum handler returning a fixed 1 KB JSON body.
//!
//! Built with the same profile and runtime settings as `promptstore serve` (multi-threaded
//! tokio, TCP_NODELAY) and measured in the same run, so `BENCHMARKS.md` can state the
//! render path's throughput as a ratio that survives a noisy shared machine.
//!
//! Usage: `bare_axum [PORT]` (default 0); prints `listening on http://127.0.0.1:PORT`.

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

/// A 1 KB body shaped like a rendered chat prompt, so serialisation-free baseline and the
/// real render answer carry the same number of bytes.
fn fixed_body() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        let filler = "x".repeat(1024 - 120);
        format!(
            r#"{{"prompt":"bench/chat","type":"chat","version":1,"messages":[{{"role":"system","content":"{filler}"}}],"model_config":{{}}}}"#
        )
    })
}

async fn handler() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], fixed_body())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let app = Router::new()
        .route("/", get(handler))
        .route("/api/v1/render", post(handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Nagle's algorithm would hold small responses back for up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
