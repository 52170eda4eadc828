//! Labels: list, read (now or as of a time), move, remove, roll back, and their history.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use promptstore_core::convert;
use promptstore_core::model::LabelMoveRecord;
use promptstore_core::service::labels::{self, LabelView};
use promptstore_types::{
    ErrorBody, Label, LabelAt, LabelMove, Page, Role, RollbackLabel, SetLabel,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiResult, Json, Path, Query};
use crate::routes::common::{page, parse_time, wire_page};
use crate::state::{AppState, Change};

fn label(v: &LabelView) -> Label {
    Label {
        name: v.label.name.clone(),
        version: v.label.version,
        protected: v.protected,
        updated_by: v.label.updated_by.clone(),
        updated_at: v.label.updated_at,
    }
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/labels", tag = "labels",
    params(("name" = String, Path, description = "Prompt name, percent-encoded")),
    responses((status = 200, body = Vec<Label>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_labels(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Label>>> {
    let actor = auth.require(Role::Viewer)?;
    let found = labels::list(state.store(), &actor.project, &name).await?;
    Ok(Json(found.iter().map(label).collect()))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelQuery {
    /// RFC 3339 time: answer what the label pointed to then (`LabelAt`).
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/labels/{label}", tag = "labels",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("label" = String, Path, description = "Label name"), LabelQuery),
    responses((status = 200, description = "`Label` now, or `LabelAt` with `as_of`", body = Label),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_label(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, label_name)): Path<(String, String)>,
    Query(q): Query<LabelQuery>,
) -> ApiResult<Response> {
    let actor = auth.require(Role::Viewer)?;
    match q.as_of {
        Some(as_of) => {
            let at = parse_time("as_of", &as_of)?;
            let version = labels::at(state.store(), &actor.project, &name, &label_name, at).await?;
            Ok(Json(LabelAt {
                label: label_name,
                version,
                as_of: at,
            })
            .into_response())
        }
        None => {
            let found = labels::get(state.store(), &actor.project, &name, &label_name).await?;
            Ok(Json(label(&found)).into_response())
        }
    }
}

async fn announce(state: &AppState, actor: &promptstore_core::model::Actor, m: &LabelMoveRecord) {
    let kind = if m.to_version.is_some() {
        "label_moved"
    } else {
        "label_removed"
    };
    state
        .after_write(
            &actor.project,
            vec![Change::label(kind, &m.prompt, &m.label, m.to_version)],
        )
        .await;
}

#[utoipa::path(put, path = "/api/v1/prompts/{name}/labels/{label}", tag = "labels", request_body = SetLabel,
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("label" = String, Path, description = "Label name")),
    responses((status = 200, body = LabelMove), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_label(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, label_name)): Path<(String, String)>,
    Json(req): Json<SetLabel>,
) -> ApiResult<Json<LabelMove>> {
    let actor = auth.require(Role::Editor)?;
    let m = labels::set(state.store(), actor, &name, &label_name, &req).await?;
    announce(&state, actor, &m).await;
    Ok(Json(convert::label_move(&m)))
}

#[utoipa::path(delete, path = "/api/v1/prompts/{name}/labels/{label}", tag = "labels",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("label" = String, Path, description = "Label name")),
    responses((status = 200, body = LabelMove), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn remove_label(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, label_name)): Path<(String, String)>,
) -> ApiResult<Json<LabelMove>> {
    let actor = auth.require(Role::Editor)?;
    let m = labels::remove(state.store(), actor, &name, &label_name).await?;
    announce(&state, actor, &m).await;
    Ok(Json(convert::label_move(&m)))
}

#[utoipa::path(post, path = "/api/v1/prompts/{name}/labels/{label}/rollback", tag = "labels", request_body = RollbackLabel,
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), ("label" = String, Path, description = "Label name")),
    responses((status = 200, body = LabelMove), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn rollback_label(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, label_name)): Path<(String, String)>,
    Json(req): Json<RollbackLabel>,
) -> ApiResult<Json<LabelMove>> {
    let actor = auth.require(Role::Editor)?;
    let m = labels::rollback(state.store(), actor, &name, &label_name, &req).await?;
    announce(&state, actor, &m).await;
    Ok(Json(convert::label_move(&m)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only moves of this label.
    pub label: Option<String>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/prompts/{name}/history", tag = "labels",
    params(("name" = String, Path, description = "Prompt name, percent-encoded"), HistoryQuery),
    responses((status = 200, body = Page<LabelMove>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn label_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Page<LabelMove>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let found = labels::history(
        state.store(),
        &actor.project,
        &name,
        q.label.as_deref(),
        &page,
    )
    .await?;
    Ok(Json(wire_page(found, convert::label_move)))
}
