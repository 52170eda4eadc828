//! Export and import of a whole project (prompts as code).

use axum::extract::State;
use promptstore_core::service::transfer;
use promptstore_types::{ErrorBody, ImportReport, ProjectExport, Role};

use crate::auth::Auth;
use crate::error::{ApiResult, Json};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/export", tag = "transfer",
    responses((status = 200, body = ProjectExport), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn export_project(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<ProjectExport>> {
    let actor = auth.require(Role::Viewer)?;
    Ok(Json(transfer::export(state.store(), &actor.project).await?))
}

#[utoipa::path(post, path = "/api/v1/import", tag = "transfer", request_body = ProjectExport,
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn import_project(
    State(state): State<AppState>,
    auth: Auth,
    Json(bundle): Json<ProjectExport>,
) -> ApiResult<Json<ImportReport>> {
    let actor = auth.require(Role::Editor)?;
    let report = transfer::import(state.store(), actor, &bundle).await?;
    let touched: Vec<&String> = report
        .prompts_created
        .iter()
        .chain(report.prompts_updated.iter())
        .collect();
    if !touched.is_empty() {
        state.after_import(&actor.project, &report).await;
    }
    Ok(Json(report))
}
