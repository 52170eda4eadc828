//! The aggregate queries behind dashboards: summary (with breakdowns), time series, version
//! comparison, top lists and recommendations. All read aggregate cells, never raw events.
//! Every parameter is read as text and parsed here, so a bad value is a 400
//! `invalid_request` naming the parameter.

use axum::extract::State;
use promptstore_core::analytics::metrics::parse_group_by;
use promptstore_core::analytics::model::AnalyticsFilter;
use promptstore_core::analytics::range::Range;
use promptstore_core::analytics::timeseries::{Interval, parse_utc_offset};
use promptstore_core::analytics::top::TopBy;
use promptstore_core::service::analytics as service;
use promptstore_types::{
    ErrorBody, ErrorCode, Recommendation, Role, Summary, TimeSeries, TopEntry, VersionComparison,
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::routes::common::parse_time;
use crate::state::AppState;

/// A parameter that failed to parse, named.
pub(crate) fn bad_param(field: &str, message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
        .with_details(serde_json::json!({ "field": field }))
}

fn parse_u32(field: &str, value: Option<&str>) -> ApiResult<Option<u32>> {
    value
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                bad_param(
                    field,
                    format!("{field} must be a whole number ≥ 0, got '{v}'"),
                )
            })
        })
        .transpose()
}

/// `from`/`to` (RFC 3339, default: the last 24 hours), aligned to whole hours.
fn range(from: Option<&str>, to: Option<&str>) -> ApiResult<Range> {
    let from = from.map(|s| parse_time("from", s)).transpose()?;
    let to = to.map(|s| parse_time("to", s)).transpose()?;
    Ok(service::query_range(from, to, OffsetDateTime::now_utc())?)
}

/// Range and filters shared by summary and time series.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// RFC 3339 start (default: 24 hours before `to`); rounded down to the hour.
    pub from: Option<String>,
    /// RFC 3339 end (default: now); rounded up to the hour.
    pub to: Option<String>,
    /// Only this prompt.
    pub prompt: Option<String>,
    /// Only this version (with `prompt`).
    pub version: Option<String>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub experiment: Option<String>,
    /// Breakdown: comma-separated, any of `prompt`, `version`, `label`, `model`, `arm`.
    pub group_by: Option<String>,
}

pub(crate) fn filter(
    prompt: Option<String>,
    version: Option<&str>,
    label: Option<String>,
    model: Option<String>,
    experiment: Option<String>,
) -> ApiResult<AnalyticsFilter> {
    Ok(AnalyticsFilter {
        prompt,
        version: parse_u32("version", version)?,
        label,
        model,
        experiment,
        arm: None,
    })
}

#[utoipa::path(get, path = "/api/v1/analytics/summary", tag = "analytics", params(SummaryQuery),
    responses((status = 200, body = Summary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn summary(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Json<Summary>> {
    let actor = auth.require(Role::Viewer)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let filter = filter(
        q.prompt,
        q.version.as_deref(),
        q.label,
        q.model,
        q.experiment,
    )?;
    let dims = parse_group_by(q.group_by.as_deref().unwrap_or(""))?;
    let summary = service::summary(state.analytics(), actor, range, &filter, &dims).await?;
    Ok(Json(summary))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeSeriesQuery {
    /// `hour` (default) or `day`.
    pub interval: Option<String>,
    /// The UTC offset buckets align to: `Z` (default) or `±HH:00` (whole hours only).
    pub utc_offset: Option<String>,
    /// RFC 3339 start (default: 24 hours before `to`).
    pub from: Option<String>,
    /// RFC 3339 end (default: now).
    pub to: Option<String>,
    pub prompt: Option<String>,
    pub version: Option<String>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub experiment: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/analytics/timeseries", tag = "analytics", params(TimeSeriesQuery),
    responses((status = 200, body = TimeSeries), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn timeseries(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<TimeSeriesQuery>,
) -> ApiResult<Json<TimeSeries>> {
    let actor = auth.require(Role::Viewer)?;
    let interval = Interval::parse(q.interval.as_deref().unwrap_or("hour"))?;
    let offset = parse_utc_offset(q.utc_offset.as_deref().unwrap_or("Z"))?;
    let from = q
        .from
        .as_deref()
        .map(|s| parse_time("from", s))
        .transpose()?;
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?;
    let (from, to) = service::with_defaults(from, to, OffsetDateTime::now_utc())?;
    let filter = filter(
        q.prompt,
        q.version.as_deref(),
        q.label,
        q.model,
        q.experiment,
    )?;
    let series = service::timeseries(
        state.analytics(),
        actor,
        interval,
        offset,
        from,
        to,
        &filter,
    )
    .await?;
    Ok(Json(series))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// The prompt whose versions are compared.
    pub prompt: Option<String>,
    /// The baseline version.
    pub a: Option<String>,
    /// The version compared to `a`.
    pub b: Option<String>,
    /// RFC 3339 start (default: 24 hours before `to`).
    pub from: Option<String>,
    /// RFC 3339 end (default: now).
    pub to: Option<String>,
}

fn required<'a>(field: &str, value: Option<&'a str>) -> ApiResult<&'a str> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(bad_param(
            field,
            format!("the parameter '{field}' is required"),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/analytics/compare", tag = "analytics", params(CompareQuery),
    responses((status = 200, body = VersionComparison), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn compare(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<CompareQuery>,
) -> ApiResult<Json<VersionComparison>> {
    let actor = auth.require(Role::Viewer)?;
    let prompt = required("prompt", q.prompt.as_deref())?;
    let a = parse_u32("a", Some(required("a", q.a.as_deref())?))?.unwrap_or_default();
    let b = parse_u32("b", Some(required("b", q.b.as_deref())?))?.unwrap_or_default();
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let comparison =
        service::compare_versions(state.analytics(), actor, prompt, a, b, range).await?;
    Ok(Json(comparison))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// `use` (default), `cost`, `error_rate` or `worst_feedback`.
    pub by: Option<String>,
    /// 1..=100, default 10.
    pub limit: Option<String>,
    /// RFC 3339 start (default: 24 hours before `to`).
    pub from: Option<String>,
    /// RFC 3339 end (default: now).
    pub to: Option<String>,
}

/// Length of a top list when the query names none.
const DEFAULT_TOP: u32 = 10;

#[utoipa::path(get, path = "/api/v1/analytics/top", tag = "analytics", params(TopQuery),
    responses((status = 200, body = Vec<TopEntry>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn top(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<TopQuery>,
) -> ApiResult<Json<Vec<TopEntry>>> {
    let actor = auth.require(Role::Viewer)?;
    let by = TopBy::parse(q.by.as_deref().unwrap_or("use"))?;
    let limit = parse_u32("limit", q.limit.as_deref())?.unwrap_or(DEFAULT_TOP);
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Json(
        service::top(state.analytics(), actor, by, limit, range).await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// RFC 3339 start (default: 24 hours before `to`).
    pub from: Option<String>,
    /// RFC 3339 end (default: now).
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/analytics/recommendations", tag = "analytics", params(RangeQuery),
    description = "Rule-based suggestions (no LLM), each with its rationale and the numbers behind it. Trends compare the range with the period of the same length before it.",
    responses((status = 200, body = Vec<Recommendation>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn recommendations(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<Vec<Recommendation>>> {
    let actor = auth.require(Role::Viewer)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    Ok(Json(
        service::recommendations(state.analytics(), actor, range).await?,
    ))
}
