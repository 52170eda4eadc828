//! The one error shape of the API and its closed set of stable, machine-readable codes.

use serde::{Deserialize, Serialize};

/// Every error the API returns has one of these codes. They are part of the contract:
/// a code is never renamed or reused for another meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, or not of the expected shape.
    InvalidJson,
    /// A field or parameter has an invalid value (details name it).
    InvalidRequest,
    /// A prompt, label, project or key name breaks the naming rules.
    InvalidName,
    /// No or an unknown/revoked API key.
    Unauthorized,
    /// The key's role may not do this.
    Forbidden,
    /// The object does not exist (in this project).
    NotFound,
    /// An object with this name already exists.
    AlreadyExists,
    /// The object changed since it was read (If-Match / expected version mismatch).
    Conflict,
    /// The `If-Match` precondition did not hold.
    PreconditionFailed,
    /// The update needs an `If-Match` header (or an expected revision) and had none.
    PreconditionRequired,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The request body has a content type the endpoint does not take.
    UnsupportedMediaType,
    /// The template does not parse (details give the line).
    TemplateSyntax,
    /// Rendering failed: a template runtime error (details give the line).
    RenderFailed,
    /// A required variable was not provided (details name it).
    MissingVariable,
    /// A variable has a value of the wrong type (details name it).
    VariableType,
    /// Rendering took more work or produced more output than allowed.
    RenderLimit,
    /// Including this prompt would create an include cycle.
    IncludeCycle,
    /// The target version breaks the variable contract of the label's current version.
    BreakingChange,
    /// Only an admin key may move or remove a protected label.
    ProtectedLabel,
    /// The prompt is used by a label or another prompt; pass `force` to proceed.
    HasDependents,
    /// The lifecycle transition is not allowed from the current status.
    InvalidTransition,
    /// The prompt is archived and cannot be served or labelled.
    PromptArchived,
    /// The label name is reserved (`latest` is maintained automatically).
    ReservedLabel,
    /// Too many requests.
    RateLimited,
    /// The server is not ready (database unreachable, still starting).
    Unavailable,
    /// An unexpected server-side failure; the cause is in the server log.
    Internal,
}

impl ErrorCode {
    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::PreconditionRequired => "precondition_required",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::TemplateSyntax => "template_syntax",
            ErrorCode::RenderFailed => "render_failed",
            ErrorCode::MissingVariable => "missing_variable",
            ErrorCode::VariableType => "variable_type",
            ErrorCode::RenderLimit => "render_limit",
            ErrorCode::IncludeCycle => "include_cycle",
            ErrorCode::BreakingChange => "breaking_change",
            ErrorCode::ProtectedLabel => "protected_label",
            ErrorCode::HasDependents => "has_dependents",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::PromptArchived => "prompt_archived",
            ErrorCode::ReservedLabel => "reserved_label",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidName
            | ErrorCode::ReservedLabel => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::ProtectedLabel => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists
            | ErrorCode::Conflict
            | ErrorCode::IncludeCycle
            | ErrorCode::BreakingChange
            | ErrorCode::HasDependents
            | ErrorCode::InvalidTransition => 409,
            ErrorCode::PromptArchived => 410,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::TemplateSyntax
            | ErrorCode::RenderFailed
            | ErrorCode::MissingVariable
            | ErrorCode::VariableType
            | ErrorCode::RenderLimit => 422,
            ErrorCode::PreconditionRequired => 428,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response: `{code, message, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A sentence for a person: what was wrong and, where it helps, what to do.
    pub message: String,
    /// Machine-readable specifics: the variable, the line, the dependents…
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorBody {}
