//! Small helpers shared by the route modules: pagination parameters, ETag headers, and
//! list conversions.

use axum::http::{HeaderMap, HeaderValue, header};
use promptstore_core::service::MAX_PAGE_LIMIT;
use promptstore_core::store::{Page, PageRequest};
use promptstore_types::ErrorCode;
use serde::Deserialize;

use crate::error::ApiError;

/// `?cursor=&limit=` of every list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub limit: Option<u32>,
}

/// Validate a page request: `limit` in 1..=200.
pub fn page(cursor: Option<String>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"),
        )
        .with_details(serde_json::json!({ "field": "limit" })));
    }
    Ok(PageRequest { cursor, limit })
}

pub fn wire_page<T, U>(page: Page<T>, f: impl FnMut(&T) -> U) -> promptstore_types::Page<U> {
    promptstore_types::Page {
        items: page.items.iter().map(f).collect(),
        next_cursor: page.next_cursor,
    }
}

/// A header map holding one strong ETag.
pub fn etag_header(tag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{tag}\"")) {
        headers.insert(header::ETAG, v);
    }
    headers
}

/// Whether `If-None-Match` names `tag` (or `*`).
pub fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').map(str::trim).any(|t| {
                let t = t.strip_prefix("W/").unwrap_or(t);
                t == "*" || t.trim_matches('"') == tag
            })
        })
}

/// Parse an RFC 3339 timestamp parameter, naming it on failure.
pub fn parse_time(field: &str, value: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(
        |e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("{field} must be an RFC 3339 time such as 2024-05-01T14:02:00Z: {e}"),
            )
            .with_details(serde_json::json!({ "field": field, "value": value }))
        },
    )
}
