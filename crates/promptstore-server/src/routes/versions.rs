//! Versions: list, save, read, fork, diff, and the include graph of a prompt.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use promptstore_core::convert;
use promptstore_core::service::{dependencies, prompts, versions};
use promptstore_types::{
    CreateVersion, Dependencies, ErrorBody, ForkVersion, Page, PromptCreated, Role, Version,
    VersionCreated, VersionDiff, VersionSummary,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiResult, Json, Path, Query};
use crate::routes::common::{PageQuery, page};
use crate::state::{AppState, Change};

#[utoipa::path(get, path = "/api/v1/prompts/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), PageQuery),
    responses((status = 200, body = Page<VersionSummary>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<VersionSummary>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let (prompt, found) = versions::list(state.store(), &actor.project, &name, &page).await?;
    Ok(Json(Page {
        items: found
            .items
            .iter()
            .map(|v| convert::version_summary(v, &prompt))
            .collect(),
        next_cursor: found.next_cursor,
    }))
}

#[utoipa::path(post, path = "/api/v1/prompts/{name}/versions", tag = "versions", request_body = CreateVersion,
    params(("name" = String, Path, description = "Prompt name, percent-encoded")),
    responses((status = 201, body = VersionCreated), (status = 200, body = VersionCreated, description = "identical to the newest: nothing written"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_version(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Json(req): Json<CreateVersion>,
) -> ApiResult<Response> {
    let actor = auth.require(Role::Editor)?;
    let saved = versions::create(state.store(), actor, &name, &req).await?;
    if saved.created {
        state
            .after_write(
                &actor.project,
                vec![
                    Change::prompt("version_created", &name, Some(saved.version.number)),
                    Change::label(
                        "label_moved",
                        &name,
                        promptstore_core::model::LATEST_LABEL,
                        Some(saved.version.number),
                    ),
                ],
            )
            .await;
    }
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = VersionCreated {
        created: saved.created,
        version: convert::version(&saved.version),
        warnings: saved.warnings,
    };
    Ok((status, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/versions/{n}", tag = "versions",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("n" = u32, Path, description = "Version number")),
    responses((status = 200, body = Version), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_version(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, n)): Path<(String, u32)>,
) -> ApiResult<Json<Version>> {
    let actor = auth.require(Role::Viewer)?;
    let v = versions::get(state.store(), &actor.project, &name, n).await?;
    Ok(Json(convert::version(&v)))
}

#[utoipa::path(post, path = "/api/v1/prompts/{name}/versions/{n}/fork", tag = "versions", request_body = ForkVersion,
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("n" = u32, Path, description = "Version number")),
    responses((status = 201, body = PromptCreated), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn fork_version(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, n)): Path<(String, u32)>,
    Json(req): Json<ForkVersion>,
) -> ApiResult<(StatusCode, Json<PromptCreated>)> {
    let actor = auth.require(Role::Editor)?;
    let created = prompts::fork(state.store(), actor, &name, n, &req).await?;
    state
        .after_write(
            &actor.project,
            vec![Change::prompt(
                "prompt_created",
                &created.prompt.name,
                Some(1),
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older version.
    pub from: u32,
    /// The newer version.
    pub to: u32,
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/diff", tag = "versions",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), DiffQuery),
    responses((status = 200, body = VersionDiff), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn diff_versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<VersionDiff>> {
    let actor = auth.require(Role::Viewer)?;
    Ok(Json(
        versions::diff(state.store(), &actor.project, &name, q.from, q.to).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/dependencies", tag = "versions",
    params(("name" = String, Path, description = "Prompt name, percent-encoded")),
    responses((status = 200, body = Dependencies), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_dependencies(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Dependencies>> {
    let actor = auth.require(Role::Viewer)?;
    Ok(Json(
        dependencies::of(state.store(), &actor.project, &name).await?,
    ))
}
