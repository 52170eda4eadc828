//! The model price table: the project's entries over the shipped defaults. A write
//! refreshes the project's in-memory price book, so the next ingested event uses it.

use axum::extract::State;
use axum::http::StatusCode;
use promptstore_core::analytics::cost;
use promptstore_types::{ErrorBody, ModelPrice, Role, SetModelPrice};

use crate::auth::Auth;
use crate::error::{ApiResult, Json, Path};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/prices", tag = "analytics",
    responses((status = 200, body = Vec<ModelPrice>, description = "the project's entries, then the shipped defaults"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_prices(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ModelPrice>>> {
    let actor = auth.require(Role::Viewer)?;
    let entries = state.analytics().list_prices(&actor.project).await?;
    Ok(Json(cost::price_list(&entries)))
}

#[utoipa::path(put, path = "/api/v1/prices/{model}", tag = "analytics", request_body = SetModelPrice,
    params(("model" = String, Path, description = "Model name (percent-encoded when it holds `/`)")),
    responses((status = 200, body = ModelPrice), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn set_price(
    State(state): State<AppState>,
    auth: Auth,
    Path(model): Path<String>,
    Json(body): Json<SetModelPrice>,
) -> ApiResult<Json<ModelPrice>> {
    let actor = auth.require(Role::Admin)?;
    let entry = cost::validate_price(&model, &body, time::OffsetDateTime::now_utc())?;
    let stored = state.analytics().set_price(actor, entry).await?;
    state
        .prices()
        .refresh(state.analytics(), &actor.project)
        .await?;
    Ok(Json(ModelPrice {
        model: stored.model,
        input_per_mtok: stored.input_per_mtok,
        output_per_mtok: stored.output_per_mtok,
        cached_input_per_mtok: stored.cached_input_per_mtok,
        effective_from: stored.effective_from,
        source: cost::PriceSource::Project.as_str().to_owned(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/prices/{model}", tag = "analytics",
    params(("model" = String, Path, description = "Model name (percent-encoded when it holds `/`)")),
    responses((status = 204, description = "the project's entries for the model are gone; a default applies again"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_price(
    State(state): State<AppState>,
    auth: Auth,
    Path(model): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = auth.require(Role::Admin)?;
    cost::validate_model_name(&model)?;
    state.analytics().delete_price(actor, &model).await?;
    state
        .prices()
        .refresh(state.analytics(), &actor.project)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
