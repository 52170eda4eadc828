//! Prompts: list and search, create, read, update metadata (If-Match), lifecycle, delete.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use promptstore_core::convert;
use promptstore_core::service::{lifecycle, prompts};
use promptstore_core::store::PromptFilter;
use promptstore_types::{
    CreatePrompt, ErrorBody, ErrorCode, Page, Prompt, PromptCreated, PromptStatus, Role,
    TransitionPrompt, UpdatePrompt,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::common::{etag_header, page, wire_page};
use crate::state::{AppState, Change};

/// Filters of the prompt list; all given filters must hold.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPromptsQuery {
    /// Prompts carrying this tag.
    pub tag: Option<String>,
    /// Prompts that have this label.
    pub label: Option<String>,
    pub status: Option<PromptStatus>,
    /// Prompts whose name starts with this.
    pub prefix: Option<String>,
    /// Full-text search over names, descriptions, templates and tags.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/prompts", tag = "prompts", params(ListPromptsQuery),
    responses((status = 200, body = Page<Prompt>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_prompts(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListPromptsQuery>,
) -> ApiResult<Json<Page<Prompt>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let text = q.q.filter(|t| !t.trim().is_empty());
    let filter = PromptFilter {
        tag: q.tag,
        label: q.label,
        status: q.status,
        name_prefix: q.prefix,
        text,
    };
    let found = prompts::list(state.store(), &actor.project, &filter, &page).await?;
    Ok(Json(wire_page(found, convert::prompt)))
}

#[utoipa::path(post, path = "/api/v1/prompts", tag = "prompts", request_body = CreatePrompt,
    responses((status = 201, body = PromptCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_prompt(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreatePrompt>,
) -> ApiResult<(StatusCode, Json<PromptCreated>)> {
    let actor = auth.require(Role::Editor)?;
    let created = prompts::create(state.store(), actor, &req).await?;
    state
        .after_write(
            &actor.project,
            vec![Change::prompt(
                "prompt_created",
                &created.prompt.name,
                Some(created.version.number),
            )],
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(PromptCreated {
            prompt: convert::prompt(&created.prompt),
            version: convert::version(&created.version),
            warnings: created.warnings,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}", tag = "prompts",
    params(("name" = String, Path, description = "Prompt name, percent-encoded (support%2Ftriage)")),
    responses((status = 200, body = Prompt, headers(("ETag" = String, description = "\"<revision>\""))),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_prompt(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<(HeaderMap, Json<Prompt>)> {
    let actor = auth.require(Role::Viewer)?;
    let p = prompts::get(state.store(), &actor.project, &name).await?;
    Ok((
        etag_header(&p.revision.to_string()),
        Json(convert::prompt(&p)),
    ))
}

fn expected_revision(headers: &HeaderMap) -> Result<u64, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            ErrorCode::PreconditionRequired,
            "updating a prompt needs 'If-Match: \"<revision>\"' with the ETag of the prompt you read",
        ));
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<u64>().map_err(|_| {
        ApiError::new(
            ErrorCode::PreconditionFailed,
            format!("If-Match '{text}' is not a revision of this prompt"),
        )
    })
}

#[utoipa::path(patch, path = "/api/v1/prompts/{name}", tag = "prompts", request_body = UpdatePrompt,
    params(("name" = String, Path, description = "Prompt name, percent-encoded"),
        ("If-Match" = String, Header, description = "\"<revision>\" as read from the ETag")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 428, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_prompt(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(req): Json<UpdatePrompt>,
) -> ApiResult<(HeaderMap, Json<Prompt>)> {
    let actor = auth.require(Role::Editor)?;
    let expected = expected_revision(&headers)?;
    let p = prompts::update(state.store(), actor, &name, expected, &req).await?;
    state
        .after_write(
            &actor.project,
            vec![Change::prompt("prompt_updated", &name, None)],
        )
        .await;
    Ok((
        etag_header(&p.revision.to_string()),
        Json(convert::prompt(&p)),
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even while labels or other prompts depend on it.
    pub force: Option<bool>,
}

#[utoipa::path(delete, path = "/api/v1/prompts/{name}", tag = "prompts",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let actor = auth.require(Role::Editor)?;
    prompts::delete(state.store(), actor, &name, q.force.unwrap_or(false)).await?;
    state
        .after_write(
            &actor.project,
            vec![Change::prompt("prompt_deleted", &name, None)],
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/prompts/{name}/status", tag = "prompts", request_body = TransitionPrompt,
    params(("name" = String, Path, description = "Prompt name, percent-encoded")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn transition_prompt(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Json(req): Json<TransitionPrompt>,
) -> ApiResult<Json<Prompt>> {
    let actor = auth.require(Role::Editor)?;
    let before = state.store().get_prompt(&actor.project, &name).await?;
    let p = lifecycle::transition(state.store(), actor, &name, &req).await?;
    let mut changes = vec![Change::prompt("prompt_status_changed", &name, None)];
    // Labels removed by a forced archive are moves the runtime caches must hear about too.
    if let Some(before) = before {
        for label in before.labels.keys().filter(|l| !p.labels.contains_key(*l)) {
            changes.push(Change::label("label_removed", &name, label, None));
        }
    }
    state.after_write(&actor.project, changes).await;
    Ok(Json(convert::prompt(&p)))
}
