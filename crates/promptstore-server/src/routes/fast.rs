//! The runtime fast path: `POST /api/v1/render` is answered before the router.
//!
//! Through the router, every request pays for axum's generic machinery: each layer (panic
//! catching, the body limit, the metrics middleware) boxes the route's service and clones
//! that box for every call, and the handler's extractors copy the header map. For most
//! routes that is noise; for a render answered from memory in a few microseconds it was
//! a third of the server's time per request (profiles in BENCHMARKS.md). This service does
//! the same steps inline for that one route: authentication, the JSON content type and the
//! body limit, the render (`runtime::render_answer`, shared with the routed handler), the
//! request metrics under the same route label, and a panic answered as a 500 in our JSON
//! shape. Every other request, and any other method on that path, goes to the router.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use http_body_util::{BodyExt as _, Limited};
use promptstore_types::{ErrorCode, Role};
use tower::Service;
use tracing::Instrument as _;

use crate::auth::{Auth, authenticate};
use crate::error::{ApiError, ApiResult, payload_too_large, require_json_content_type};
use crate::routes::runtime::render_answer;
use crate::state::AppState;

/// The route template the fast path serves, as the router's metrics would label it.
const RENDER_ROUTE: &str = "/api/v1/render";

/// The application: the fast path in front of the router.
#[derive(Clone)]
pub struct App {
    router: Router,
    state: AppState,
}

impl App {
    pub fn new(router: Router, state: AppState) -> Self {
        App { router, state }
    }
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<<Router as Service<Request>>::Future, Boxed>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::POST && request.uri().path() == RENDER_ROUTE {
            let state = self.state.clone();
            return futures_util::future::Either::Right(Box::pin(render(state, request)));
        }
        futures_util::future::Either::Left(self.router.call(request))
    }
}

async fn render(state: AppState, request: Request) -> Result<Response, Infallible> {
    let started = Instant::now();
    // Instrumented, not entered: an entered span guard held across `.await` would stay
    // entered on the worker thread for whatever task runs there while this one waits.
    let span = tracing::debug_span!("request", method = "POST", route = RENDER_ROUTE);
    let response = match AssertUnwindSafe(answer(&state, request))
        .catch_unwind()
        .instrument(span)
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(panic) => super::panic_response(panic),
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics()
        .request(RENDER_ROUTE, "POST", status, elapsed);
    if status >= 500 {
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        tracing::error!(
            method = "POST",
            route = RENDER_ROUTE,
            status,
            latency_us,
            "request failed"
        );
    }
    Ok(response)
}

/// The routed handler's steps, in its order: key, role, content type, body, render.
async fn answer(state: &AppState, request: Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let auth = Auth(authenticate(state.keys(), &parts.headers)?);
    let actor = auth.require(Role::Runtime)?;
    require_json_content_type(&parts.headers)?;
    let bytes = read_body(body, state.config().body_limit_bytes)
        .await
        .map_err(|e| {
            if is_length_limit(&*e) {
                payload_too_large()
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the request body could not be read: {e}"),
                )
            }
        })?;
    render_answer(state, actor, &parts.headers, &bytes).await
}

/// The body, at most `limit` bytes of it. A small body usually arrives as one data frame:
/// its bytes are returned as they are, without the collecting buffer (a queue of frames)
/// that `axum::body::to_bytes` allocates for every request.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, BoxError> {
    let mut body = Limited::new(body, limit);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        match (&mut joined, first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(before)) => {
                let mut both = Vec::with_capacity(before.len() + data.len());
                both.extend_from_slice(&before);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(match joined {
        Some(joined) => Bytes::from(joined),
        None => first.unwrap_or_default(),
    })
}

/// Whether reading a body failed on the size limit (the error is or wraps
/// `LengthLimitError`).
fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: &[&'static str]) -> axum::body::Body {
        let frames: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        axum::body::Body::from_stream(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many_and_refused_past_the_limit() {
        // (frames, limit, what is read or None for the limit error)
        let cases: [(&[&'static str], usize, Option<&str>); 7] = [
            (&[], 10, Some("")),
            (&["{\"name\":\"p\"}"], 64, Some("{\"name\":\"p\"}")),
            (&["ab", "cd", "e"], 64, Some("abcde")),
            (&["ab", "", "cd"], 4, Some("abcd")),
            (&["abcde"], 4, None),
            (&["ab", "cd", "e"], 4, None),
            (&["abcd"], 4, Some("abcd")),
        ];
        for (frames, limit, expected) in cases {
            let read = read_body(chunked(frames), limit).await;
            match (read, expected) {
                (Ok(bytes), Some(want)) => assert_eq!(&bytes[..], want.as_bytes(), "{frames:?}"),
                (Err(e), None) => assert!(is_length_limit(&*e), "{frames:?}: {e}"),
                (got, want) => panic!("{frames:?} at {limit}: got {got:?}, want {want:?}"),
            }
        }
        // The same through `Body::from`, as hyper hands over a small body: one frame.
        let read = read_body(axum::body::Body::from("xyz"), 3).await;
        assert_eq!(read.ok().as_deref(), Some(&b"xyz"[..]));
    }
}
