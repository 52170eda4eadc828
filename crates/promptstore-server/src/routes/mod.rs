//! The route table (docs/http-api.md) and the middleware around it.

pub mod abtest;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod changes;
pub mod common;
pub mod events;
pub mod experiments;
pub mod fast;
pub mod health;
pub mod keys;
pub mod labels;
pub mod metrics;
pub mod prices;
pub mod projects;
pub mod prompts;
pub mod runtime;
pub mod transfer;
pub mod versions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use promptstore_types::{ErrorBody, ErrorCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, code_for_status};
use crate::metrics::ServerMetrics;
use crate::state::AppState;

/// The whole HTTP surface: API routes, OpenAPI document, docs page, health.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    let metrics = state.metrics_handle();
    let api = Router::new()
        .route("/api/v1/project", get(projects::get_project))
        .route("/api/v1/projects", post(projects::create_project))
        .route(
            "/api/v1/project/protected-labels",
            put(projects::set_protected_labels),
        )
        .route("/api/v1/keys", get(keys::list_keys).post(keys::create_key))
        .route("/api/v1/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route(
            "/api/v1/prompts",
            get(prompts::list_prompts).post(prompts::create_prompt),
        )
        .route(
            "/api/v1/prompts/{name}",
            get(prompts::get_prompt)
                .patch(prompts::update_prompt)
                .delete(prompts::delete_prompt),
        )
        .route(
            "/api/v1/prompts/{name}/status",
            post(prompts::transition_prompt),
        )
        .route(
            "/api/v1/prompts/{name}/versions",
            get(versions::list_versions).post(versions::create_version),
        )
        .route(
            "/api/v1/prompts/{name}/versions/{n}",
            get(versions::get_version),
        )
        .route(
            "/api/v1/prompts/{name}/versions/{n}/fork",
            post(versions::fork_version),
        )
        .route("/api/v1/prompts/{name}/diff", get(versions::diff_versions))
        .route(
            "/api/v1/prompts/{name}/dependencies",
            get(versions::get_dependencies),
        )
        .route("/api/v1/prompts/{name}/labels", get(labels::list_labels))
        .route(
            "/api/v1/prompts/{name}/labels/{label}",
            get(labels::get_label)
                .put(labels::set_label)
                .delete(labels::remove_label),
        )
        .route(
            "/api/v1/prompts/{name}/labels/{label}/rollback",
            post(labels::rollback_label),
        )
        .route("/api/v1/prompts/{name}/history", get(labels::label_history))
        .route("/api/v1/changes", get(changes::changes))
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/export", get(transfer::export_project))
        .route("/api/v1/import", post(transfer::import_project))
        .route(
            "/api/v1/events",
            post(events::ingest_events)
                // Batches are larger than other bodies: this route has its own limit.
                .layer(DefaultBodyLimit::max(
                    config.analytics.ingest_body_limit_bytes,
                ))
                .get(events::list_events),
        )
        .route("/api/v1/events/{id}", get(events::get_event))
        .route("/api/v1/events/{id}/attach", post(events::attach_by_id))
        .route(
            "/api/v1/events/by-client-id/{client_id}/attach",
            post(events::attach_by_client_id),
        )
        .route("/api/v1/analytics/summary", get(analytics::summary))
        .route("/api/v1/analytics/timeseries", get(analytics::timeseries))
        .route("/api/v1/analytics/compare", get(analytics::compare))
        .route("/api/v1/analytics/top", get(analytics::top))
        .route(
            "/api/v1/analytics/recommendations",
            get(analytics::recommendations),
        )
        .route("/api/v1/prices", get(prices::list_prices))
        .route(
            "/api/v1/prices/{model}",
            put(prices::set_price).delete(prices::delete_price),
        )
        .route(
            "/api/v1/alerts",
            get(alerts::list_alerts).post(alerts::create_alert),
        )
        .route("/api/v1/alerts/events", get(alerts::alert_events))
        .route(
            "/api/v1/alerts/{id}",
            get(alerts::get_alert)
                .put(alerts::update_alert)
                .delete(alerts::delete_alert),
        )
        .route(
            "/api/v1/experiments",
            get(experiments::list_experiments).post(experiments::create_experiment),
        )
        .route(
            "/api/v1/experiments/{id}",
            get(experiments::get_experiment)
                .put(experiments::update_experiment)
                .delete(experiments::delete_experiment),
        )
        .route(
            "/api/v1/experiments/{id}/start",
            post(experiments::start_experiment),
        )
        .route(
            "/api/v1/experiments/{id}/stop",
            post(experiments::stop_experiment),
        )
        .route(
            "/api/v1/experiments/{id}/conclude",
            post(experiments::conclude_experiment),
        )
        .route("/api/v1/experiments/{id}/arms", put(experiments::set_arms))
        .route("/api/v1/abtest/analyze", post(abtest::analyze))
        .route(
            "/api/v1/experiments/{id}/results",
            get(experiments::experiment_results),
        )
        .route(
            "/api/v1/experiments/{id}/history",
            get(experiments::experiment_history),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed);
    let api = with_middleware(api, &config, metrics.clone()).with_state(state.clone());

    // The runtime path answers from memory: a render is bounded by its fuel and output
    // limits, so it does without the request timeout, whose timer costs a warm render
    // more than a tenth of its time.
    let runtime = Router::new()
        .route("/api/v1/resolve", get(runtime::resolve))
        .route("/api/v1/resolve/bulk", get(runtime::resolve_bulk))
        .route("/api/v1/render", post(runtime::render))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(metrics, observe))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state);

    Router::new()
        .merge(
            SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", crate::openapi::document()),
        )
        .merge(runtime)
        .merge(api)
}

/// The layers around every route, innermost first: the timeout (inside `observe`, so its
/// bare 503 gets our JSON body and is counted), `observe`, the body limit, and panic → 500
/// JSON outermost.
fn with_middleware<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &crate::config::ServerConfig,
    metrics: Arc<ServerMetrics>,
) -> Router<S> {
    routes
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .route_layer(middleware::from_fn_with_state(metrics, observe))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
}

async fn unknown_route(State(state): State<AppState>, request: Request) -> ApiError {
    state
        .metrics()
        .request("unmatched", request.method().as_str(), 404, Duration::ZERO);
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    let body = ErrorBody::new(
        ErrorCode::InvalidRequest,
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    );
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

pub(crate) fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let body = ErrorBody::new(
        ErrorCode::Internal,
        "internal error; the cause is in the server log",
    );
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// The one middleware around every matched route (the runtime path pays for it on every
/// call, so it does everything in one place): the request's latency and counter by route
/// template (raw paths would make the number of series unbounded), a debug-level span,
/// an error log for 5xx answers, and a JSON body for error statuses made without one (a
/// timeout, a body limit enforced by an extractor).
async fn observe(
    State(metrics): State<Arc<ServerMetrics>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    // Disabled (and then nearly free) unless the log filter asks for debug.
    let span = tracing::debug_span!("request", method = %method, route);
    let response = next.run(request).instrument(span).await;
    let response = with_json_error_body(response);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics.request(route, method.as_str(), status, elapsed);
    if status >= 500 {
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        tracing::error!(%method, route, status, latency_us, "request failed");
    }
    response
}

/// Error responses made outside our handlers come without our JSON body: give them one.
fn with_json_error_body(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let code = code_for_status(status);
    let message = match code {
        ErrorCode::PayloadTooLarge => {
            "the request body is larger than the server accepts".to_owned()
        }
        ErrorCode::Unavailable => "the request took too long or the server is not ready".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::config::ServerConfig;

    async fn call(app: Router, path: &str) -> (StatusCode, ErrorBody) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn panics() -> &'static str {
        panic!("boom")
    }

    fn app(config: &ServerConfig) -> Router {
        let routes = Router::new()
            .route("/panic", get(panics))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }));
        with_middleware(routes, config, Arc::new(ServerMetrics::new().unwrap()))
    }

    #[tokio::test]
    async fn a_panic_is_a_500_in_our_shape_without_details() {
        let (status, body) = call(app(&ServerConfig::default()), "/panic").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.code, ErrorCode::Internal);
        assert!(!body.message.contains("boom"));
        assert!(body.details.is_null());
    }

    #[tokio::test]
    async fn a_timeout_is_a_503_in_our_shape() {
        let config = ServerConfig {
            request_timeout: Duration::from_millis(20),
            ..ServerConfig::default()
        };
        let (status, body) = call(app(&config), "/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body.code, ErrorCode::Unavailable);
    }

    #[tokio::test]
    async fn bare_error_statuses_get_a_json_body() {
        let (status, body) = call(app(&ServerConfig::default()), "/teapot").await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(body.code, ErrorCode::InvalidRequest);
    }
}
