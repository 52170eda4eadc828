//! The key's project, project creation and project settings.

use axum::extract::State;
use axum::http::StatusCode;
use promptstore_core::convert;
use promptstore_core::service::{keys::KeyMaterial, projects};
use promptstore_types::{
    ApiKeyCreated, CreateProject, ErrorBody, Project, ProjectCreated, Role, SetProtectedLabels,
};

use crate::auth::Auth;
use crate::error::{ApiResult, Json};
use crate::secrets::new_key_material;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/project", tag = "projects",
    responses((status = 200, body = Project), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_project(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Project>> {
    let actor = auth.require(Role::Viewer)?;
    let p = projects::get(state.store(), &actor.project).await?;
    Ok(Json(convert::project(&p)))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectCreated>)> {
    let actor = auth.require(Role::Admin)?;
    let material: KeyMaterial = new_key_material()?;
    let (project, key) = projects::create(state.store(), actor, &req, &material).await?;
    state.project_added(&project.id).await?;
    state.reload_keys().await?;
    Ok((
        StatusCode::CREATED,
        Json(ProjectCreated {
            project: convert::project(&project),
            admin_key: ApiKeyCreated {
                key: convert::api_key(&key),
                secret: material.secret,
            },
        }),
    ))
}

#[utoipa::path(put, path = "/api/v1/project/protected-labels", tag = "projects", request_body = SetProtectedLabels,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_protected_labels(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<SetProtectedLabels>,
) -> ApiResult<Json<Project>> {
    let actor = auth.require(Role::Admin)?;
    let p = projects::set_protected_labels(state.store(), actor, &req).await?;
    Ok(Json(convert::project(&p)))
}
