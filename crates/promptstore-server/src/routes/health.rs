//! Liveness and readiness, for load balancers and orchestrators (no key needed).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use promptstore_types::{ErrorBody, ErrorCode, HealthStatus};

use crate::error::{ApiError, Json};
use crate::state::AppState;

fn status(s: &str) -> HealthStatus {
    HealthStatus {
        status: s.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = HealthStatus)))]
pub async fn health() -> Json<HealthStatus> {
    Json(status("ok"))
}

#[utoipa::path(get, path = "/ready", tag = "health",
    responses((status = 200, body = HealthStatus), (status = 503, body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store().ping().await {
        tracing::warn!(error = %e, "readiness: store unreachable");
        return ApiError::new(ErrorCode::Unavailable, "the database is not reachable")
            .into_response();
    }
    if !state.snapshots_loaded() {
        return ApiError::new(
            ErrorCode::Unavailable,
            "the runtime snapshot is not loaded yet",
        )
        .into_response();
    }
    (StatusCode::OK, Json(status("ready"))).into_response()
}
