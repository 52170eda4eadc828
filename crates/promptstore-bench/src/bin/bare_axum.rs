//! The baseline of the HTTP benchmarks: a bare axum handler returning a fixed JSON body.
//!
//! Built with the same profile and runtime settings as `promptstore serve` (multi-threaded
//! tokio, TCP_NODELAY) and measured in the same run, so `BENCHMARKS.md` can state the
//! render path's throughput as a ratio that survives a noisy shared machine. `bench/run.sh`
//! gives it the byte size of the real render answer, so both send the same payload.
//!
//! Usage: `bare_axum [PORT] [BODY_BYTES]` (defaults 0 and 1024); prints
//! `listening on http://127.0.0.1:PORT`.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

static BODY: OnceLock<String> = OnceLock::new();

/// A body of exactly `bytes` bytes (at least the JSON frame) shaped like a rendered chat
/// prompt, so the baseline and the real render answer carry the same number of bytes.
fn body_of(bytes: usize) -> String {
    let frame = r#"{"prompt":"bench/chat","type":"chat","version":1,"messages":[{"role":"system","content":""}],"model_config":{}}"#;
    let filler = "x".repeat(bytes.saturating_sub(frame.len()));
    format!(
        r#"{{"prompt":"bench/chat","type":"chat","version":1,"messages":[{{"role":"system","content":"{filler}"}}],"model_config":{{}}}}"#
    )
}

async fn handler() -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        BODY.get().map_or("{}", String::as_str),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let bytes: usize = args.next().and_then(|b| b.parse().ok()).unwrap_or(1024);
    let _ = BODY.set(body_of(bytes));
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

#[cfg(test)]
mod tests {
    use super::body_of;

    #[test]
    fn the_body_has_the_asked_size_and_is_json() {
        for bytes in [200, 1024, 1333] {
            let body = body_of(bytes);
            assert_eq!(body.len(), bytes);
            assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
        }
    }
}
