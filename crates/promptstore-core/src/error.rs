//! The error of every use case: a refusal with a stable code, or a storage failure.

use promptstore_types::{ErrorBody, ErrorCode};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was understood and refused; `code` says why, `details` names specifics
    /// (the variable, the line, the dependents…).
    #[error("{message}")]
    Rejected {
        code: ErrorCode,
        message: String,
        details: serde_json::Value,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Rejected {
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(self, details: serde_json::Value) -> Self {
        match self {
            Error::Rejected { code, message, .. } => Error::Rejected {
                code,
                message,
                details,
            },
            other => other,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::Store(StoreError::NotFound { what: what.into() })
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Rejected { code, .. } => *code,
            Error::Store(e) => match e {
                StoreError::NotFound { .. } => ErrorCode::NotFound,
                StoreError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
                StoreError::Conflict { .. } => ErrorCode::Conflict,
                StoreError::Archived { .. } => ErrorCode::PromptArchived,
                StoreError::HasLabels { .. } => ErrorCode::HasDependents,
                StoreError::InvalidCursor { .. } => ErrorCode::InvalidRequest,
                StoreError::Backend(_) => ErrorCode::Internal,
            },
        }
    }

    /// The client-facing body. A backend failure never leaks its cause: that goes to the log.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            Error::Rejected {
                code,
                message,
                details,
            } => ErrorBody::new(*code, message.clone()).with_details(details.clone()),
            Error::Store(StoreError::Backend(_)) => ErrorBody::new(
                ErrorCode::Internal,
                "internal error; the cause is in the server log",
            ),
            Error::Store(StoreError::HasLabels { prompt, labels }) => ErrorBody::new(
                ErrorCode::HasDependents,
                format!(
                    "prompt '{prompt}' still holds labels ({}); remove them first or pass force",
                    labels.join(", ")
                ),
            )
            .with_details(serde_json::json!({ "labels": labels })),
            Error::Store(e) => ErrorBody::new(self.code(), e.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
