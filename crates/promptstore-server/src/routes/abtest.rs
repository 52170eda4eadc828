//! The A/B calculator over HTTP: the same pure computation as `promptstore abtest analyze`,
//! on data from anywhere (a case, a list of cases, or a document shaped like the reference
//! `cases.json`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use promptstore_core::experiments::calculator::{self, CalcFormat, CalcOutput};
use promptstore_types::{ErrorBody, ErrorCode, Role};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Json, Query};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyzeQuery {
    /// `report` (default: readable text), `reference` (`[{"id", "expected": {...}}]` with
    /// the reference cases' field names, for `check.py`) or `json` (the same results as
    /// JSON).
    pub format: Option<String>,
}

fn format_of(raw: Option<&str>) -> Result<CalcFormat, ApiError> {
    match raw.unwrap_or("report") {
        "report" | "text" => Ok(CalcFormat::Text),
        "reference" | "json" => Ok(CalcFormat::Reference),
        other => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "format must be report, reference or json, got '{}'",
                other.chars().take(40).collect::<String>()
            ),
        )
        .with_details(serde_json::json!({ "field": "format" }))),
    }
}

#[utoipa::path(post, path = "/api/v1/abtest/analyze", tag = "experiments", params(AnalyzeQuery),
    request_body(content = Object, description = "A case `{id?, kind?, input}`, a bare input, a list of them, or `{\"cases\": [...]}`"),
    responses((status = 200, description = "The analysis: text for `report`, JSON otherwise"),
        (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn analyze(
    auth: Auth,
    Query(q): Query<AnalyzeQuery>,
    Json(doc): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.require(Role::Viewer)?;
    let format = format_of(q.format.as_deref())?;
    // Pure and bounded by the body limit, but CPU work: keep it off the async workers.
    let output = tokio::task::spawn_blocking(move || calculator::analyze_json(&doc, format))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the calculator task failed");
            ApiError::new(
                ErrorCode::Internal,
                "internal error; the cause is in the server log",
            )
        })??;
    Ok(match output {
        CalcOutput::Reference(value) => axum::Json(value).into_response(),
        CalcOutput::Text(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
    })
}
