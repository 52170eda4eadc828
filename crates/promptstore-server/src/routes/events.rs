//! Events: batch ingestion (JSON array or NDJSON, answered once durable), the raw event
//! list, one event, and late scores/feedback by server id or client id.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptstore_core::analytics::model::{AnalyticsFilter, EventRef};
use promptstore_core::analytics::validate::validate_attach;
use promptstore_core::service::analytics as service;
use promptstore_types::{
    AttachToEvent, ErrorBody, ErrorCode, Event, EventIn, IngestReport, Page, Role,
};
use serde::Deserialize;

use crate::analytics::body;
use crate::analytics::ingest::{IngestFailure, ingest};
use crate::analytics::writer::SubmitError;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Path, Query, payload_too_large};
use crate::routes::common::{page, parse_time, wire_page};
use crate::state::AppState;

/// Who may record events and attach judgements: runtime keys (the applications), editors
/// and admins. A viewer key stays read-only even though it may call the runtime reads.
fn recorder(auth: &Auth) -> ApiResult<&promptstore_core::model::Actor> {
    if auth.0.role == Role::Viewer {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a viewer key is read-only: record events with a runtime, editor or admin key",
        )
        .with_details(serde_json::json!({ "required_role": "runtime", "role": "viewer" })));
    }
    auth.require(Role::Runtime)
}

#[utoipa::path(post, path = "/api/v1/events", tag = "analytics",
    request_body(content(
        (Vec<EventIn> = "application/json"),
        (String = "application/x-ndjson"),
    )),
    description = "A batch of events: a JSON array of EventIn, or NDJSON (one EventIn per line, `Content-Type: application/x-ndjson`). Runtime keys may record.",
    responses(
        (status = 200, body = IngestReport, description = "answered once the valid events are durable; refused items are listed in `errors` with their index (NDJSON: line number − 1)"),
        (status = 400, body = ErrorBody, description = "the body is not a readable batch"),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "the ingest queue stayed full; retry after `Retry-After` seconds", headers(("Retry-After" = u64)))),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ingest_events(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let actor = recorder(&auth)?;
    let bytes = bytes.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::invalid_request(r.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let format = body::format_of(content_type)?;
    let items = body::items(format, &bytes)?;
    drop(bytes);
    match ingest(&state, actor, items).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(IngestFailure::Api(e)) => Err(e),
        Err(IngestFailure::Submit(SubmitError::Busy { retry_after })) => {
            let seconds = retry_after.as_secs().max(1);
            let error = ApiError::new(
                ErrorCode::Unavailable,
                format!("the server is busy storing other events; retry in {seconds} s (nothing of this batch was stored)"),
            )
            .with_details(serde_json::json!({ "retry_after_seconds": seconds }));
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
        Err(IngestFailure::Submit(SubmitError::Stopped)) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "the server is stopping; retry against another instance or after the restart",
        )),
        Err(IngestFailure::Submit(SubmitError::Store(e))) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    pub prompt: Option<String>,
    pub version: Option<u32>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub experiment: Option<String>,
    /// RFC 3339: events at or after.
    pub from: Option<String>,
    /// RFC 3339: events before.
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "analytics", params(EventsQuery),
    responses((status = 200, body = Page<Event>, description = "raw events, newest first"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Page<Event>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let from = q
        .from
        .as_deref()
        .map(|s| parse_time("from", s))
        .transpose()?;
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?;
    let filter = AnalyticsFilter {
        prompt: q.prompt,
        version: q.version,
        label: q.label,
        model: q.model,
        experiment: q.experiment,
        arm: None,
    };
    let found = state
        .analytics()
        .list_events(&actor.project, &filter, from, to, &page)
        .await?;
    Ok(Json(wire_page(found, service::event)))
}

fn event_not_found(event: &EventRef) -> ApiError {
    let what = match event {
        EventRef::Id(id) => format!("event {id} not found"),
        EventRef::ClientId(cid) => format!("no event with client id '{cid}'"),
    };
    ApiError::new(ErrorCode::NotFound, what)
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "analytics",
    params(("id" = i64, Path, description = "The server's event id")),
    responses((status = 200, body = Event), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Event>> {
    let actor = auth.require(Role::Viewer)?;
    let event = EventRef::Id(id);
    let found = state.analytics().get_event(&actor.project, &event).await?;
    found
        .map(|e| Json(service::event(&e)))
        .ok_or_else(|| event_not_found(&event))
}

async fn attach(
    state: &AppState,
    auth: &Auth,
    event: EventRef,
    body: AttachToEvent,
) -> ApiResult<Json<Event>> {
    let actor = recorder(auth)?;
    let body = validate_attach(body)?;
    let stored = state
        .analytics()
        .attach(&actor.project, &event, &body.scores, body.feedback.as_ref())
        .await?;
    Ok(Json(service::event(&stored)))
}

#[utoipa::path(post, path = "/api/v1/events/{id}/attach", tag = "analytics", request_body = AttachToEvent,
    params(("id" = i64, Path, description = "The server's event id")),
    responses((status = 200, body = Event, description = "the event with its scores and feedback now"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn attach_by_id(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(body): Json<AttachToEvent>,
) -> ApiResult<Json<Event>> {
    attach(&state, &auth, EventRef::Id(id), body).await
}

#[utoipa::path(post, path = "/api/v1/events/by-client-id/{client_id}/attach", tag = "analytics", request_body = AttachToEvent,
    params(("client_id" = String, Path, description = "The client's event id (`id` of the EventIn)")),
    responses((status = 200, body = Event, description = "the event with its scores and feedback now"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn attach_by_client_id(
    State(state): State<AppState>,
    auth: Auth,
    Path(client_id): Path<String>,
    Json(body): Json<AttachToEvent>,
) -> ApiResult<Json<Event>> {
    attach(&state, &auth, EventRef::ClientId(client_id), body).await
}
