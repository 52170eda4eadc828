//! API keys of the caller's project: list, create, revoke.

use axum::extract::State;
use axum::http::StatusCode;
use promptstore_core::convert;
use promptstore_core::service::keys;
use promptstore_types::{ApiKey, ApiKeyCreated, CreateApiKey, ErrorBody, Role};

use crate::auth::Auth;
use crate::error::{ApiResult, Json, Path};
use crate::secrets::new_key_material;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<ApiKey>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_keys(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<ApiKey>>> {
    let actor = auth.require(Role::Admin)?;
    let list = keys::list(state.store(), actor).await?;
    Ok(Json(list.iter().map(convert::api_key).collect()))
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    let actor = auth.require(Role::Admin)?;
    let material = new_key_material()?;
    let key = keys::create(state.store(), actor, &req, &material).await?;
    state.reload_keys().await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            key: convert::api_key(&key),
            secret: material.secret,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key id")),
    responses((status = 200, body = ApiKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let actor = auth.require(Role::Admin)?;
    let key = keys::revoke(state.store(), actor, &id).await?;
    state.reload_keys().await?;
    Ok(Json(convert::api_key(&key)))
}
