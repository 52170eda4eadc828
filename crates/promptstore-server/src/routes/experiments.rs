//! Experiments (A/B tests): create, list, read, edit and delete drafts, start, change arms,
//! stop, conclude (with promotion), results and history. Every write refreshes the runtime
//! snapshot so assignment follows at once, and announces the change on the change stream.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use promptstore_core::experiments::audit::wire;
use promptstore_core::experiments::model::{
    ExperimentFilter, ExperimentHistoryRecord, ExperimentRecord,
};
use promptstore_core::model::Actor;
use promptstore_core::service::experiments::{self, ResultsOptions};
use promptstore_types::{
    CreateExperiment, EndExperiment, ErrorBody, ErrorCode, Experiment, ExperimentHistoryEntry,
    ExperimentResults, ExperimentStatus, Page, Role, UpdateArms,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::common::{PageQuery, etag_header, page, wire_page};
use crate::state::{AppState, Change};

fn history_entry(h: &ExperimentHistoryRecord) -> ExperimentHistoryEntry {
    ExperimentHistoryEntry {
        id: h.id,
        kind: h.kind.clone(),
        message: h.message.clone(),
        details: h.details.clone(),
        actor: h.actor.clone(),
        at: h.at,
    }
}

/// The experiment with its revision as ETag.
fn tagged(record: &ExperimentRecord) -> (HeaderMap, Json<Experiment>) {
    (
        etag_header(&record.revision.to_string()),
        Json(wire(record)),
    )
}

/// `If-Match: "<revision>"`: required (`precondition_required`) when `required`.
fn if_match(headers: &HeaderMap, required: bool) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        if required {
            return Err(ApiError::new(
                ErrorCode::PreconditionRequired,
                "editing an experiment needs 'If-Match: \"<revision>\"' with the ETag of the experiment you read",
            ));
        }
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "If-Match '{}' is not a revision of this experiment",
                text.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// After a write that changes what the label serves: refresh the snapshot and tell
/// change-stream subscribers (their cached resolves of the label are refreshed).
async fn announce(state: &AppState, actor: &Actor, record: &ExperimentRecord, extra: Vec<Change>) {
    let mut changes = vec![Change::label(
        "experiment_changed",
        &record.prompt,
        &record.label,
        None,
    )];
    changes.extend(extra);
    state.after_write(&actor.project, changes).await;
}

#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = CreateExperiment,
    responses((status = 201, body = Experiment, headers(("ETag" = String, description = "\"<revision>\""))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateExperiment>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let record = experiments::create(state.store(), actor, req).await?;
    let (headers, body) = tagged(&record);
    Ok((StatusCode::CREATED, headers, body))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListExperimentsQuery {
    /// Only experiments on this prompt.
    pub prompt: Option<String>,
    /// Only experiments in this status: draft, running, stopped, concluded.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", params(ListExperimentsQuery),
    responses((status = 200, body = Page<Experiment>), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_experiments(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListExperimentsQuery>,
) -> ApiResult<Json<Page<Experiment>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            ExperimentStatus::parse(s).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "status must be draft, running, stopped or concluded, got '{}'",
                        s.chars().take(40).collect::<String>()
                    ),
                )
                .with_details(serde_json::json!({ "field": "status" }))
            })
        })
        .transpose()?;
    let filter = ExperimentFilter {
        prompt: q.prompt,
        status,
    };
    let found = experiments::list(state.store(), &actor.project, &filter, &page).await?;
    Ok(Json(wire_page(found, wire)))
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = Experiment, headers(("ETag" = String, description = "\"<revision>\""))),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Viewer)?;
    let record = experiments::get(state.store(), &actor.project, &id).await?;
    Ok(tagged(&record))
}

#[utoipa::path(put, path = "/api/v1/experiments/{id}", tag = "experiments", request_body = CreateExperiment,
    params(("id" = String, Path, description = "Experiment id"),
        ("If-Match" = String, Header, description = "\"<revision>\" as read from the ETag")),
    responses((status = 200, body = Experiment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody), (status = 428, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<CreateExperiment>,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = if_match(&headers, true)?;
    let record = experiments::replace_draft(state.store(), actor, &id, expected, req).await?;
    Ok(tagged(&record))
}

#[utoipa::path(delete, path = "/api/v1/experiments/{id}", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = auth.require(Role::Editor)?;
    experiments::delete(state.store(), actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/experiments/{id}/start", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id"),
        ("If-Match" = Option<String>, Header, description = "\"<revision>\": only if unchanged")),
    responses((status = 200, body = Experiment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn start_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = if_match(&headers, false)?;
    let record = experiments::start(state.store(), actor, &id, expected).await?;
    announce(&state, actor, &record, Vec::new()).await;
    Ok(tagged(&record))
}

#[utoipa::path(post, path = "/api/v1/experiments/{id}/stop", tag = "experiments", request_body = EndExperiment,
    params(("id" = String, Path, description = "Experiment id"),
        ("If-Match" = Option<String>, Header, description = "\"<revision>\": only if unchanged")),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn stop_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<EndExperiment>,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = if_match(&headers, false)?;
    let record = experiments::stop(state.store(), actor, &id, expected, &req).await?;
    announce(&state, actor, &record, Vec::new()).await;
    Ok(tagged(&record))
}

#[utoipa::path(post, path = "/api/v1/experiments/{id}/conclude", tag = "experiments", request_body = EndExperiment,
    params(("id" = String, Path, description = "Experiment id"),
        ("If-Match" = Option<String>, Header, description = "\"<revision>\": only if unchanged")),
    responses((status = 200, body = Experiment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn conclude_experiment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<EndExperiment>,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = if_match(&headers, false)?;
    let concluded = experiments::conclude(state.store(), actor, &id, expected, &req).await?;
    let record = &concluded.experiment;
    let moved = concluded
        .label_move
        .iter()
        .map(|m| Change::label("label_moved", &m.prompt, &m.label, m.to_version))
        .collect();
    announce(&state, actor, record, moved).await;
    Ok(tagged(record))
}

#[utoipa::path(put, path = "/api/v1/experiments/{id}/arms", tag = "experiments", request_body = UpdateArms,
    params(("id" = String, Path, description = "Experiment id"),
        ("If-Match" = Option<String>, Header, description = "\"<revision>\": only if unchanged")),
    responses((status = 200, body = Experiment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_arms(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<UpdateArms>,
) -> ApiResult<(HeaderMap, Json<Experiment>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = if_match(&headers, false)?;
    let record = experiments::set_arms(state.store(), actor, &id, expected, req).await?;
    announce(&state, actor, &record, Vec::new()).await;
    Ok(tagged(&record))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Analyse every phase instead of the current one (arms or weights changed since the
    /// start).
    pub all_phases: Option<bool>,
    /// Minimum detectable relative effect for the sample-size estimate (default: the
    /// experiment's).
    pub mde: Option<f64>,
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}/results", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id"), ResultsQuery),
    responses((status = 200, body = ExperimentResults), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn experiment_results(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Json<ExperimentResults>> {
    let actor = auth.require(Role::Viewer)?;
    let options = ResultsOptions {
        all_phases: q.all_phases.unwrap_or(false),
        mde: q.mde,
    };
    let results = experiments::results(
        state.store(),
        state.analytics(),
        &actor.project,
        &id,
        options,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(results))
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}/history", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id"), PageQuery),
    responses((status = 200, body = Page<ExperimentHistoryEntry>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn experiment_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ExperimentHistoryEntry>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let found = experiments::history(state.store(), &actor.project, &id, &page).await?;
    Ok(Json(wire_page(found, history_entry)))
}
