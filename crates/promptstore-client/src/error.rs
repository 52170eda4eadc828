//! The one error type of the SDK: what the server refused, what the network broke, and what
//! could not be decoded, kept apart so callers can react to each (retry, fix input, report).

use promptstore_types::{ErrorBody, ErrorCode};

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status. `body` is the server's `{code, message,
    /// details}`; when the body was not that shape (a proxy page, an empty body) one is
    /// synthesized from the status so callers always have a code.
    #[error("{body}")]
    Api { status: u16, body: ErrorBody },
    /// The request did not complete: connection refused, timeout, TLS, reset…
    #[error("cannot reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered with success but the body is not what the API promises.
    #[error("unexpected response from the server: {0}")]
    Decode(String),
    /// The client was given something it cannot send (a bad base URL, an empty prompt name,
    /// an API key that is not a valid header value…).
    #[error("{0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The API error code, when the server refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed (the server was unreachable,
    /// overloaded or failed internally), as opposed to a refusal that will not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
            ClientError::Decode(_) | ClientError::InvalidArgument(_) => false,
        }
    }

    /// Builds the error for a non-success response from its status and raw body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> ClientError {
        let body = decode_error_body(status, body);
        ClientError::Api { status, body }
    }
}

/// Decodes the server's error shape, or synthesizes one from the status when the body is
/// something else, so that every API error carries a code and a readable message.
pub fn decode_error_body(status: u16, body: &[u8]) -> ErrorBody {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        return parsed;
    }
    let code = code_for_status(status);
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("the server answered HTTP {status}")
    } else {
        // A proxy's HTML page can be long; one line of it is enough to recognize it.
        let snippet: String = text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        format!("the server answered HTTP {status}: {snippet}")
    };
    ErrorBody::new(code, message)
}

/// The closest stable code for a bare HTTP status.
fn code_for_status(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 | 405 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        410 => ErrorCode::PromptArchived,
        412 => ErrorCode::PreconditionFailed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidRequest,
        428 => ErrorCode::PreconditionRequired,
        429 => ErrorCode::RateLimited,
        502..=504 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_server_error_shape() {
        let body = br#"{"code":"missing_variable","message":"variable `name` is required","details":{"variable":"name"}}"#;
        let err = ClientError::from_response(422, body);
        assert_eq!(err.code(), Some(ErrorCode::MissingVariable));
        assert_eq!(err.status(), Some(422));
        assert_eq!(
            err.to_string(),
            "variable `name` is required (missing_variable)"
        );
        match err {
            ClientError::Api { body, .. } => assert_eq!(body.details["variable"], "name"),
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn synthesizes_a_body_for_foreign_errors() {
        let check = |status: u16, body: &[u8], code: ErrorCode, message: &str| {
            let parsed = decode_error_body(status, body);
            assert_eq!(parsed.code, code, "status {status}");
            assert_eq!(parsed.message, message, "status {status}");
        };
        check(
            502,
            b"<html>Bad Gateway</html>\n<body>...</body>",
            ErrorCode::Unavailable,
            "the server answered HTTP 502: <html>Bad Gateway</html>",
        );
        check(
            404,
            b"",
            ErrorCode::NotFound,
            "the server answered HTTP 404",
        );
        check(
            401,
            b"{\"error\":\"nope\"}",
            ErrorCode::Unauthorized,
            "the server answered HTTP 401: {\"error\":\"nope\"}",
        );
        check(
            500,
            b"  ",
            ErrorCode::Internal,
            "the server answered HTTP 500",
        );
        check(
            429,
            b"slow down",
            ErrorCode::RateLimited,
            "the server answered HTTP 429: slow down",
        );
    }

    #[test]
    fn retryable_only_for_server_side_trouble() {
        assert!(ClientError::from_response(503, b"").is_retryable());
        assert!(ClientError::from_response(429, b"").is_retryable());
        assert!(!ClientError::from_response(404, b"").is_retryable());
        assert!(!ClientError::Decode("x".into()).is_retryable());
    }
}
