//! `GET /metrics`: the server's Prometheus text. Any key of viewer role or higher may read
//! it — the numbers are instance-wide and hold no project data.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use promptstore_types::{ErrorBody, Role};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::state::AppState;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String,
            description = "Prometheus text format: requests by route and status, latency histograms, ingest queue depth, events ingested/duplicate/rejected, group-commit sizes, runtime snapshot hits/misses, alert and retention runs"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn metrics(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    auth.require(Role::Viewer)?;
    Ok((
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics().render(),
    )
        .into_response())
}
