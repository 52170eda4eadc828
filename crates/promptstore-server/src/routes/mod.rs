//! The route table (docs/http-api.md) and the middleware around it.

pub mod abtest;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod changes;
pub mod common;
pub mod events;
pub mod experiments;
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
use std::time::Instant;

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
        .route("/api/v1/resolve", get(runtime::resolve))
        .route("/api/v1/resolve/bulk", get(runtime::resolve_bulk))
        .route("/api/v1/render", post(runtime::render))
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
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(remember_route))
        .with_state(state);

    let app = Router::new()
        .merge(
            SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", crate::openapi::document()),
        )
        .merge(api);
    with_middleware(app, &config, metrics)
}

/// The layers around every route, outermost last: body limit, timeout, panic → 500 JSON,
/// JSON bodies for bare error statuses, and the request span.
fn with_middleware(
    app: Router,
    config: &crate::config::ServerConfig,
    metrics: Arc<ServerMetrics>,
) -> Router {
    app.layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(metrics, trace_request))
}

async fn unknown_route(request: Request) -> ApiError {
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

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let body = ErrorBody::new(
        ErrorCode::Internal,
        "internal error; the cause is in the server log",
    );
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// Error responses made outside our handlers (a layer's timeout, a body limit enforced
/// before the extractor) come without our JSON body: give them one.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
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

/// One span per request (method, route), one log line with status and latency, and the
/// request's counter and latency sample (by route template: raw paths would make the
/// number of series unbounded).
async fn trace_request(
    State(metrics): State<Arc<ServerMetrics>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let method = request.method().clone();
    // The route template is known only after routing; `remember_route` hands it back on
    // the response. Until then (and for unrouted requests) the span shows the path.
    let span = tracing::info_span!("request", method = %method, route = tracing::field::Empty);
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or(path.as_str(), |p| p.as_str());
    span.record("route", route);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let template = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    metrics.request(template, method.as_str(), status, elapsed);
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, latency_us, "request failed");
        } else {
            tracing::debug!(status, latency_us, "request");
        }
    });
    response
}

/// Copy the matched route template onto the response, for `trace_request`.
async fn remember_route(request: Request<Body>, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
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
