//! Alert rules (CRUD, with their current state) and their firing/resolved history. The
//! rules are evaluated by the alert worker (`analytics::alerts`).

use axum::extract::State;
use axum::http::StatusCode;
use promptstore_core::analytics::alerts::validate_rule;
use promptstore_core::service::analytics as service;
use promptstore_types::{AlertEvent, AlertRule, AlertRuleIn, ErrorBody, ErrorCode, Page, Role};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::common::{page, wire_page};
use crate::state::AppState;

fn rule_not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("alert rule {id} not found"))
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "analytics",
    responses((status = 200, body = Vec<AlertRule>, description = "every rule with its current state"),
        (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<AlertRule>>> {
    let actor = auth.require(Role::Viewer)?;
    let rules = state.analytics().list_alert_rules(&actor.project).await?;
    Ok(Json(rules.iter().map(service::alert_rule).collect()))
}

#[utoipa::path(post, path = "/api/v1/alerts", tag = "analytics", request_body = AlertRuleIn,
    responses((status = 201, body = AlertRule), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_alert(
    State(state): State<AppState>,
    auth: Auth,
    Json(rule): Json<AlertRuleIn>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    let actor = auth.require(Role::Editor)?;
    let rule = validate_rule(rule)?;
    let created = state.analytics().create_alert_rule(actor, rule).await?;
    Ok((StatusCode::CREATED, Json(service::alert_rule(&created))))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "analytics",
    params(("id" = i64, Path, description = "The rule id")),
    responses((status = 200, body = AlertRule), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlertRule>> {
    let actor = auth.require(Role::Viewer)?;
    let rule = state
        .analytics()
        .get_alert_rule(&actor.project, id)
        .await?
        .ok_or_else(|| rule_not_found(id))?;
    Ok(Json(service::alert_rule(&rule)))
}

#[utoipa::path(put, path = "/api/v1/alerts/{id}", tag = "analytics", request_body = AlertRuleIn,
    params(("id" = i64, Path, description = "The rule id")),
    responses((status = 200, body = AlertRule), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(rule): Json<AlertRuleIn>,
) -> ApiResult<Json<AlertRule>> {
    let actor = auth.require(Role::Editor)?;
    let rule = validate_rule(rule)?;
    let updated = state.analytics().update_alert_rule(actor, id, rule).await?;
    Ok(Json(service::alert_rule(&updated)))
}

#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = "analytics",
    params(("id" = i64, Path, description = "The rule id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = auth.require(Role::Editor)?;
    state.analytics().delete_alert_rule(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertEventsQuery {
    /// Only this rule's history.
    pub rule: Option<i64>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/alerts/events", tag = "analytics", params(AlertEventsQuery),
    responses((status = 200, body = Page<AlertEvent>, description = "firing/resolved transitions, newest first"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn alert_events(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AlertEventsQuery>,
) -> ApiResult<Json<Page<AlertEvent>>> {
    let actor = auth.require(Role::Viewer)?;
    let page = page(q.cursor, q.limit)?;
    let found = state
        .analytics()
        .list_alert_events(&actor.project, q.rule, &page)
        .await?;
    Ok(Json(wire_page(found, service::alert_event)))
}
