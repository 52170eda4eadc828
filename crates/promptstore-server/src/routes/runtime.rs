//! The hot path: resolve, bulk resolve and render, served from the in-memory snapshot with
//! ETags and `If-None-Match` → 304. A label under a running experiment is resolved for the
//! caller's unit id (sticky arm assignment), and the assignment is offered to the exposure
//! buffer without waiting.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptstore_core::model::{Actor, LATEST_LABEL, ProjectId};
use promptstore_core::runtime::assignment::ArmAssignment;
use promptstore_core::runtime::{ProjectSnapshot, RuntimeError};
use promptstore_types::{
    BulkResolved, ErrorBody, ErrorCode, RenderRequest, RenderedPrompt, ResolvedPrompt, Role,
    Selector,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, JsonBytes, Query, decode_json};
use crate::metrics::RuntimeOp;
use crate::routes::common::if_none_match;
use crate::state::{AppState, ProjectRuntime};

/// How many times a resolve may load a non-live version and retry before giving up (each
/// retry only happens when a concurrent write replaced the prompt in between).
const MAX_LOAD_RETRIES: usize = 4;

/// The longest a runtime request waits for its project's warm-up (see `on_snapshot`).
const WARM_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn selector(label: Option<String>, version: Option<u32>) -> Result<Selector, ApiError> {
    match (label, version) {
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "give either label or version, not both",
        )
        .with_details(serde_json::json!({ "fields": ["label", "version"] }))),
        (None, Some(n)) => Ok(Selector::Version(n)),
        (Some(label), None) => {
            promptstore_core::names::validate_label_name(&label)?;
            Ok(Selector::Label(label))
        }
        (None, None) => Ok(Selector::Label(LATEST_LABEL.to_owned())),
    }
}

/// Run `op` on the project's snapshot; on `NeedVersion` load that version from the store
/// into the snapshot's shared cache and retry.
/// Counts a hit when the first attempt is served from memory, a miss when a version had to
/// be loaded from the store.
async fn on_snapshot<T>(
    state: &AppState,
    project: &ProjectId,
    kind: RuntimeOp,
    op: impl Fn(&ProjectSnapshot) -> Result<T, RuntimeError>,
) -> ApiResult<T> {
    on_runtime(state, project, state.runtime_now(project), kind, op).await
}

/// [`on_snapshot`] with the project's runtime when the caller already looked it up
/// (`state.runtime_now`), so that a render looks it up once.
async fn on_runtime<T>(
    state: &AppState,
    project: &ProjectId,
    runtime: Option<Arc<ProjectRuntime>>,
    kind: RuntimeOp,
    op: impl Fn(&ProjectSnapshot) -> Result<T, RuntimeError>,
) -> ApiResult<T> {
    let runtime = match runtime {
        Some(rt) => rt,
        None => state.runtime(project).await?,
    };
    for attempt in 0..MAX_LOAD_RETRIES {
        let need = match op(&runtime.snapshot()) {
            Ok(v) => {
                if attempt == 0 {
                    state.metrics().snapshot_read(kind, true);
                }
                return Ok(v);
            }
            Err(RuntimeError::Failed(e)) => return Err(e.into()),
            Err(RuntimeError::NeedVersion(need)) => need,
        };
        if attempt == 0 {
            state.metrics().snapshot_read(kind, false);
        }
        // While a large project warms up after start, a request that needs several versions
        // (a bulk resolve, a render through includes) waits for the warm-up instead of
        // loading them one by one and running out of attempts. The wait is bounded so that a
        // warm-up that keeps failing cannot hang requests: they fall back to loading.
        if attempt >= 1 && !runtime.is_warm() {
            let warmed = tokio::time::timeout(WARM_UP_WAIT, runtime.warmed()).await;
            if warmed.is_ok() {
                continue;
            }
        }
        let version = state
            .store()
            .get_version(project, &need.prompt, need.number)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!(
                        "version {} of prompt '{}' not found",
                        need.number, need.prompt
                    ),
                )
            })?;
        runtime.snapshot().add_version(version);
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the prompt changed while it was being resolved; retry",
    ))
}

/// A 200 JSON response with `ETag`, or 304 when the client already has it.
fn cached_json(request_headers: &HeaderMap, etag: &str, body: Vec<u8>) -> Response {
    answer_response(
        request_headers,
        &quoted_etag(etag),
        axum::body::Bytes::from(body),
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(serialising_failed)
}

/// The 500 for an answer that could not be serialised (the cause goes to the log).
fn serialising_failed(e: serde_json::Error) -> ApiError {
    tracing::error!(error = %e, "serialising a response failed");
    ApiError::new(
        ErrorCode::Internal,
        "internal error; the cause is in the server log",
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// Prompt name (not encoded: it is a query value).
    pub name: String,
    /// Label to resolve (default `latest`).
    pub label: Option<String>,
    /// Version number instead of a label.
    pub version: Option<u32>,
    /// User/session id for sticky experiment assignment: with it, a label under a running
    /// experiment resolves to the unit's arm (named in `assignment`); without it, to the
    /// control.
    pub unit_id: Option<String>,
}

/// Longest unit id accepted (the same bound as ids on events).
const MAX_UNIT_ID_LEN: usize = 200;

fn unit_id(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    match raw {
        Some(u) if u.len() > MAX_UNIT_ID_LEN => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("unit_id is longer than {MAX_UNIT_ID_LEN} bytes"),
        )
        .with_details(serde_json::json!({ "field": "unit_id" }))),
        Some(u) if !u.is_empty() => Ok(Some(u)),
        _ => Ok(None),
    }
}

/// Count an assignment and offer the unit's exposure to the buffer (never waits).
fn expose(state: &AppState, project: &ProjectId, assignment: &ArmAssignment, unit: &str) {
    state.metrics().assignments.increment(1);
    state.exposures().offer(project, assignment, unit);
}

#[utoipa::path(get, path = "/api/v1/resolve", tag = "runtime", params(ResolveQuery,
        ("If-None-Match" = Option<String>, Header, description = "ETag of a cached answer")),
    responses((status = 200, body = ResolvedPrompt, headers(("ETag" = String))), (status = 304, description = "not modified"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<ResolveQuery>,
) -> ApiResult<Response> {
    let actor = auth.require(Role::Runtime)?;
    let selector = selector(q.label, q.version)?;
    let unit = unit_id(q.unit_id.as_deref())?;
    let resolved = on_snapshot(&state, &actor.project, RuntimeOp::Resolve, |s| {
        s.resolve_for(&q.name, &selector, unit)
    })
    .await?;
    if let (Some(assignment), Some(unit)) = (&resolved.assignment, unit) {
        expose(&state, &actor.project, assignment, unit);
    }
    let p = resolved.prompt();
    let v = resolved.version();
    // Versions are immutable, so id + number + hash + status + label (+ the assignment)
    // pin the answer.
    let (experiment, arm) = resolved
        .assignment
        .as_ref()
        .map_or(("", ""), |a| (a.experiment().id(), a.arm_name()));
    let etag = format!(
        "{}-{}-{}-{}-{}-{experiment}-{arm}",
        p.id,
        v.number,
        v.content_hash.get(..16).unwrap_or(&v.content_hash),
        p.status.as_str(),
        resolved.label.as_deref().unwrap_or("")
    );
    if if_none_match(&headers, &etag) {
        return Ok(cached_json(&headers, &etag, Vec::new()));
    }
    let body = to_json(&resolved.to_wire())?;
    Ok(cached_json(&headers, &etag, body))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkQuery {
    /// Label to resolve every prompt at (default `latest`).
    pub label: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/resolve/bulk", tag = "runtime", params(BulkQuery,
        ("If-None-Match" = Option<String>, Header, description = "ETag of a cached answer")),
    responses((status = 200, body = BulkResolved, headers(("ETag" = String))), (status = 304, description = "not modified"),
        (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn resolve_bulk(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<BulkQuery>,
) -> ApiResult<Response> {
    let actor = auth.require(Role::Runtime)?;
    let label = q.label.unwrap_or_else(|| LATEST_LABEL.to_owned());
    promptstore_core::names::validate_label_name(&label)?;
    let resolved = on_snapshot(&state, &actor.project, RuntimeOp::Bulk, |s| s.bulk(&label)).await?;
    let body = to_json(&BulkResolved {
        label: label.clone(),
        prompts: resolved.iter().map(|r| r.to_wire()).collect(),
    })?;
    let etag = quoted_body_etag(&body);
    Ok(answer_response(
        &headers,
        &etag,
        axum::body::Bytes::from(body),
    ))
}

#[utoipa::path(post, path = "/api/v1/render", tag = "runtime", request_body = RenderRequest,
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a cached answer")),
    responses((status = 200, body = RenderedPrompt, headers(("ETag" = String))), (status = 304, description = "not modified"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn render(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBytes(request): JsonBytes,
) -> ApiResult<Response> {
    let actor = auth.require(Role::Runtime)?;
    render_answer(&state, actor, &headers, &request).await
}

/// The render of `request` (a JSON `RenderRequest`, undecoded) for `actor`: from the answer
/// cache when this exact request was answered from the current snapshot, else rendered
/// (and then kept, unless it assigned an experiment arm). Shared by the axum handler and
/// the runtime fast path (`routes::fast`), so both answer the same.
pub(crate) async fn render_answer(
    state: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    request: &[u8],
) -> ApiResult<Response> {
    let project = &actor.project;
    let answers = state.answers();
    let cache_key = answers.key(project, request);
    let runtime = state.runtime_now(project);
    if let Some(key) = cache_key
        && let Some(runtime) = &runtime
    {
        let snapshot = runtime.snapshot().id();
        if let Some(answer) = answers.get(key, project, snapshot, request) {
            state.metrics().render_cache[0].increment(1);
            state.metrics().snapshot_read(RuntimeOp::Render, true);
            return Ok(answer_response(headers, &answer.etag, answer.body.clone()));
        }
    }
    if cache_key.is_some() {
        state.metrics().render_cache[1].increment(1);
    }

    let req: RenderRequest = decode_json(request)?;
    let selector = selector(req.label, req.version)?;
    let unit = unit_id(req.unit_id.as_deref())?;
    let (snapshot, rendered) = on_runtime(state, project, runtime, RuntimeOp::Render, |s| {
        s.render_for(&req.name, &selector, &req.variables, unit)
            .map(|rendered| (s.id(), rendered))
    })
    .await?;
    let assigned = rendered.resolved.assignment.is_some();
    if let (Some(assignment), Some(unit)) = (&rendered.resolved.assignment, unit) {
        expose(state, project, assignment, unit);
    }
    let body = rendered.to_json().map_err(serialising_failed)?;
    let body = axum::body::Bytes::from(body);
    let etag = quoted_body_etag(&body);
    // An answer that assigned an arm is not kept: a repeat must offer its exposure again.
    if let Some(key) = cache_key
        && !assigned
    {
        answers.insert(key, project, snapshot, request, body.clone(), etag.clone());
    }
    Ok(answer_response(headers, &etag, body))
}

/// The quoted ETag of a body: its 128-bit xxh3 in hex. Used where the answer depends on
/// more than one version (renders through includes, bulk), so only the bytes can say. An
/// ETag is a cache validator, not a signature: a fast non-cryptographic hash is enough, and
/// hashing every rendered answer with SHA-256 cost more than rendering it. Written into a
/// stack buffer: a render that missed the answer cache spent more on formatting its ETag
/// through intermediate strings than on hashing its body.
fn quoted_body_etag(body: &[u8]) -> HeaderValue {
    let digest = xxhash_rust::xxh3::xxh3_128(body).to_be_bytes();
    let mut quoted = [b'"'; 34];
    if hex::encode_to_slice(digest, &mut quoted[1..33]).is_err() {
        return HeaderValue::from_static("\"0\"");
    }
    HeaderValue::from_bytes(&quoted).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn quoted_etag(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A 200 JSON response with the (quoted) `etag`, or 304 when the client already has it.
fn answer_response(
    request_headers: &HeaderMap,
    etag: &HeaderValue,
    body: axum::body::Bytes,
) -> Response {
    let unquoted = etag.to_str().unwrap_or("").trim_matches('"');
    if if_none_match(request_headers, unquoted) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.clone())]).into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag.clone()),
        ],
        Body::from(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quoted_body_etag_is_the_body_etag_in_quotes() {
        for body in [&b""[..], b"{}", &[7u8; 1500]] {
            let body_etag = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(body));
            let expected = format!("\"{body_etag}\"");
            assert_eq!(quoted_body_etag(body).to_str().unwrap(), expected);
        }
    }
}
