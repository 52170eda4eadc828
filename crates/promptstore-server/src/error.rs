//! The one error type of the HTTP layer: every failure becomes `{code, message, details}`
//! with the status of its `ErrorCode`, including axum's own extractor rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use promptstore_core::store::StoreError;
use promptstore_types::{ErrorBody, ErrorCode};

#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(ErrorBody::new(code, message))
    }

    pub fn with_details(self, details: serde_json::Value) -> Self {
        ApiError(self.0.with_details(details))
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<promptstore_core::Error> for ApiError {
    fn from(e: promptstore_core::Error) -> Self {
        if let promptstore_core::Error::Store(StoreError::Backend(cause)) = &e {
            tracing::error!(error = %cause, "storage failure");
        }
        ApiError(e.to_body())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        promptstore_core::Error::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match &r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON with 'Content-Type: application/json'",
            ),
            JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
                ApiError::new(ErrorCode::InvalidJson, r.body_text())
            }
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
            _ => ApiError::new(ErrorCode::InvalidRequest, r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, r.body_text())
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "the request body is larger than the server accepts",
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.0)).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The JSON body extractor of every route, with our error shape on rejection.
///
/// A well-formed body is decoded with one `serde_json::from_slice`; only a body that fails
/// is decoded again by axum's extractor, whose message names the path of the bad field.
/// (axum's path-tracking decoder on every request cost more than the rest of a warm render.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        decode_json(&bytes).map(Json)
    }
}

/// A JSON request body as bytes, not yet decoded: the `Content-Type` is checked and the
/// body limit applied as for [`Json`]. For handlers that look at the bytes first (the
/// render answer cache); decode with [`decode_json`].
#[derive(Debug, Clone)]
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        require_json_content_type(req.headers())?;
        axum::body::Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else {
                    ApiError::new(ErrorCode::InvalidRequest, r.body_text())
                }
            })
    }
}

/// Decode a JSON body the way [`Json`] does: one fast `serde_json::from_slice`, and only
/// for a body that fails, axum's decoder again for a message naming the bad field's path.
pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => match axum::Json::<T>::from_bytes(bytes) {
            Ok(axum::Json(value)) => Ok(value),
            Err(rejection) => Err(rejection.into()),
        },
    }
}

/// The 415 for a body that is not declared as JSON.
pub(crate) fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if is_json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be JSON with 'Content-Type: application/json'",
        ))
    }
}

/// `application/json` or any `application/*+json`, parameters (`; charset=utf-8`) ignored.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    // Compared without a lower-cased copy: this runs on every render.
    let starts = |prefix: &str| {
        essence
            .get(..prefix.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
    };
    let ends = |suffix: &str| {
        essence
            .len()
            .checked_sub(suffix.len())
            .and_then(|at| essence.get(at..))
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
    };
    essence.eq_ignore_ascii_case("application/json") || (starts("application/") && ends("+json"))
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters with our error shape on rejection.
#[derive(Debug, Clone, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters with our error shape on rejection.
#[derive(Debug, Clone, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// For error responses produced outside our handlers (unknown route, wrong method, timeout,
/// body limit enforced by a layer): the code that matches a bare status.
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 | 405 => ErrorCode::NotFound,
        408 | 503 | 504 => ErrorCode::Unavailable,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidJson,
        429 => ErrorCode::RateLimited,
        _ if status.is_client_error() => ErrorCode::InvalidRequest,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::is_json_content_type;

    fn check(content_type: Option<&str>, expected: bool) {
        let mut headers = HeaderMap::new();
        if let Some(v) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        }
        assert_eq!(is_json_content_type(&headers), expected, "{content_type:?}");
    }

    #[test]
    fn json_content_types() {
        check(Some("application/json"), true);
        check(Some("Application/JSON; charset=utf-8"), true);
        check(Some("application/merge-patch+json"), true);
        check(Some("APPLICATION/Problem+JSON ; q=1"), true);
        check(Some("application/+json"), true);
        check(Some("application/json5"), false);
        check(Some("applicatio"), false);
        check(Some("+json"), false);
        check(Some("é+json"), false);
        check(Some("text/json"), false);
        check(Some("application/x-ndjson"), false);
        check(Some("text/plain"), false);
        check(None, false);
    }
}
