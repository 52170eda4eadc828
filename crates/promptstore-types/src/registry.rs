//! Wire types of the registry: projects, keys, prompts, versions, labels, diffs, audit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::template::{PromptKind, Template, VariableSpec};

/// A page of a cursor-paginated list. `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A project: the tenant boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: String,
    pub name: String,
    /// Labels that only an admin key may move or remove (default: `production`).
    pub protected_labels: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
}

/// The answer to project creation: the project and its first admin key, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectCreated {
    pub project: Project,
    pub admin_key: ApiKeyCreated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetProtectedLabels {
    pub labels: Vec<String>,
}

/// What a key may do. `runtime` may only resolve and render (and, later, record events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Runtime,
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Runtime => "runtime",
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "runtime" => Some(Role::Runtime),
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// The public key id; also the visible prefix of the secret (`ps_<id>_…`).
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub role: Role,
}

/// A newly created key: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyCreated {
    pub key: ApiKey,
    /// The full secret, `ps_<id>_<random>`. Stored hashed; it cannot be shown again.
    pub secret: String,
}

/// Lifecycle of a prompt: `draft → active → deprecated → archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PromptStatus {
    Draft,
    Active,
    Deprecated,
    Archived,
}

impl PromptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PromptStatus::Draft => "draft",
            PromptStatus::Active => "active",
            PromptStatus::Deprecated => "deprecated",
            PromptStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(PromptStatus::Draft),
            "active" => Some(PromptStatus::Active),
            "deprecated" => Some(PromptStatus::Deprecated),
            "archived" => Some(PromptStatus::Archived),
            _ => None,
        }
    }
}

/// A prompt's metadata, its labels and its newest version number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prompt {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PromptKind,
    pub description: String,
    pub tags: Vec<String>,
    pub status: PromptStatus,
    /// Label name → version number, `latest` included.
    pub labels: BTreeMap<String, u32>,
    pub latest_version: u32,
    /// Bumped by every metadata change; the ETag of the prompt is `"<revision>"`.
    pub revision: u64,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Create a prompt together with its version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePrompt {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Initial status: `draft` (default) or `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PromptStatus>,
    pub template: Template,
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    /// Free JSON object: model, temperature, max_tokens, tools, response_format…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub model_config: Option<serde_json::Value>,
    #[serde(default)]
    pub commit_message: String,
}

/// Change a prompt's metadata. Needs `If-Match: "<revision>"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdatePrompt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Move a prompt through its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransitionPrompt {
    pub status: PromptStatus,
    /// Archiving a prompt that still holds labels removes them when set; refused otherwise.
    #[serde(default)]
    pub force: bool,
}

/// A note attached to a version: something worth knowing that did not stop the save.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warning {
    /// `undeclared_variable`, `unused_variable`, …
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
}

/// Why a version breaks the variable contract of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakingChange {
    /// `variable_removed`, `variable_type_changed`, `variable_now_required`,
    /// `required_variable_added`, `allowed_values_narrowed`.
    pub code: String,
    pub variable: String,
    pub message: String,
}

/// A reference from one prompt to another used by `{% include "name@label" %}` or
/// `{% include "name@3" %}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncludeRef {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// An immutable version of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Version {
    pub prompt: String,
    pub number: u32,
    pub template: Template,
    pub variables: Vec<VariableSpec>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_config: serde_json::Value,
    pub commit_message: String,
    pub author: String,
    /// The version this one was edited or forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<VersionRef>,
    /// SHA-256 over the template, variables and model config (hex).
    pub content_hash: String,
    /// Other prompts this version includes.
    pub includes: Vec<IncludeRef>,
    /// How this version breaks its parent's variable contract (empty when it does not).
    pub breaking_changes: Vec<BreakingChange>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionRef {
    pub prompt: String,
    pub number: u32,
}

/// A version as listed: everything but the template body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    pub number: u32,
    pub commit_message: String,
    pub author: String,
    pub content_hash: String,
    pub breaking: bool,
    /// Labels that point to this version now.
    pub labels: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Create a new version of an existing prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    pub template: Template,
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub model_config: Option<serde_json::Value>,
    #[serde(default)]
    pub commit_message: String,
    /// The version this edit started from. When it is no longer the newest, the save is
    /// refused with `conflict` so that two editors never overwrite each other unknowingly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u32>,
}

/// The answer to a version save. `created` is false when the content was identical to the
/// newest version: nothing was written and `version` is that newest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionCreated {
    pub created: bool,
    pub version: Version,
    pub warnings: Vec<Warning>,
}

/// The answer to prompt creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptCreated {
    pub prompt: Prompt,
    pub version: Version,
    pub warnings: Vec<Warning>,
}

/// Fork a version into a new prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForkVersion {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

/// A label pointing at a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Label {
    pub name: String,
    pub version: u32,
    pub protected: bool,
    pub updated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a label pointed to at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelAt {
    pub label: String,
    /// Absent when the label did not exist at that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

/// Point a label at a version (create it or move it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetLabel {
    pub version: u32,
    /// Compare-and-set: refuse with `conflict` unless the label points here now
    /// (`0` = the label must not exist yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u32>,
    /// Move a protected label to a version that breaks the variable contract.
    #[serde(default)]
    pub allow_breaking: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Move a label back to where it pointed before its last move (or to `version`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackLabel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default)]
    pub allow_breaking: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One entry of the deployment log: a label moved from one version to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelMove {
    pub id: i64,
    pub prompt: String,
    pub label: String,
    /// Absent when the label was created by this move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u32>,
    /// Absent when the label was removed by this move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<u32>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A line-level diff of two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionDiff {
    pub prompt: String,
    pub from: u32,
    pub to: u32,
    /// Unified diff of the template (chat templates are laid out one message per block).
    pub template_diff: String,
    pub variables: VariablesDiff,
    /// Changes of the model config, one per JSON path.
    pub model_config: Vec<JsonChange>,
    /// How `to` breaks the variable contract of `from`.
    pub breaking_changes: Vec<BreakingChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariablesDiff {
    pub added: Vec<VariableSpec>,
    pub removed: Vec<VariableSpec>,
    pub changed: Vec<VariableChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableChange {
    pub name: String,
    pub from: VariableSpec,
    pub to: VariableSpec,
}

/// One changed JSON path: `from` absent = added, `to` absent = removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JsonChange {
    /// JSON Pointer (RFC 6901) of the changed value.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub from: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub to: Option<serde_json::Value>,
}

/// The include graph around one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dependencies {
    pub prompt: String,
    /// What this prompt's live versions (labelled or latest) include.
    pub includes: Vec<IncludeRef>,
    /// Prompts whose live versions include this prompt.
    pub included_by: Vec<Dependent>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dependent {
    pub prompt: String,
    pub version: u32,
    /// How the dependent refers to this prompt: a label name or a version number.
    pub reference: IncludeRef,
}

/// One audit record: who changed what, when, with the state before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    /// Key id of the actor (`system` for the server itself).
    pub actor: String,
    /// `prompt.created`, `prompt.updated`, `prompt.status_changed`, `prompt.deleted`,
    /// `version.created`, `label.moved`, `label.removed`, `key.created`, `key.revoked`,
    /// `project.created`, `project.settings_changed`.
    pub action: String,
    /// `prompt`, `version`, `label`, `key`, `project`.
    pub object_type: String,
    /// e.g. `support/triage`, `support/triage@3`, `support/triage#production`.
    pub object_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
