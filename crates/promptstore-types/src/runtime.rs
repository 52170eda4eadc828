//! Wire types of the runtime path: resolve, render, bulk resolve and the change stream.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::registry::{PromptStatus, VersionRef};
use crate::template::{PromptKind, RenderedMessage, Template, VariableSpec};

/// Which version of a prompt to use: by label (default `latest`) or by number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    Label(String),
    Version(u32),
}

/// The experiment arm a resolve was assigned to (set by A/B tests, a later capability).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assignment {
    pub experiment: String,
    pub arm: String,
}

/// A prompt resolved to the version to use, with everything needed to render it locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolvedPrompt {
    pub prompt: String,
    #[serde(rename = "type")]
    pub kind: PromptKind,
    pub version: u32,
    /// The label that was resolved; absent when a version number was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub status: PromptStatus,
    pub template: Template,
    pub variables: Vec<VariableSpec>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_config: serde_json::Value,
    pub content_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

/// Render a prompt with variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    pub name: String,
    /// Label to resolve (default `latest`); give `label` or `version`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// User, session or conversation id, for sticky experiment assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
}

/// A rendered prompt: `text` for text prompts, `messages` for chat prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedPrompt {
    pub prompt: String,
    #[serde(rename = "type")]
    pub kind: PromptKind,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<RenderedMessage>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_config: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

/// Every prompt of the project at one label, for an agent to load its prompt set at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkResolved {
    pub label: String,
    pub prompts: Vec<ResolvedPrompt>,
}

/// One change on the server-sent event stream (`GET /api/v1/changes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeEvent {
    /// `prompt_created`, `prompt_updated`, `prompt_status_changed`, `prompt_deleted`,
    /// `version_created`, `label_moved`, `label_removed`; and `resync` when the stream
    /// dropped events and the client should reload what it cached.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A whole project as exported: prompts as code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectExport {
    pub prompts: Vec<PromptExport>,
}

/// One prompt with all its versions and its labels (`latest` excluded: it is derived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PromptExport {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PromptKind,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub status: PromptStatus,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, u32>,
    pub versions: Vec<VersionExport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VersionExport {
    pub number: u32,
    pub template: Template,
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_config: serde_json::Value,
    #[serde(default)]
    pub commit_message: String,
    /// Informational on import: the importer becomes the author of re-created versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<VersionRef>,
    /// Informational on import: checked against the recomputed hash when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// What an import did. Importing the same bundle twice reports nothing changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub prompts_created: Vec<String>,
    pub prompts_updated: Vec<String>,
    /// `name@number` of every version created.
    pub versions_created: Vec<String>,
    /// `name#label → number` of every label moved.
    pub labels_moved: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Liveness/readiness answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    pub status: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_label_and_version_are_distinct_on_the_wire() {
        let label =
            serde_json::to_string(&Selector::Label("production".into())).unwrap_or_default();
        let version = serde_json::to_string(&Selector::Version(3)).unwrap_or_default();
        assert_eq!(label, r#"{"label":"production"}"#);
        assert_eq!(version, r#"{"version":3}"#);
    }
}
