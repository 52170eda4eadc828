//! Domain records: what the registry holds, as the store returns it.
//!
//! Value objects that are themselves the API contract (templates, variable specs, include
//! references, breaking changes) come from `promptstore-types`; the entities here do not
//! derive `Serialize`, so a refactor of the domain cannot silently change the API.

use std::collections::BTreeMap;

use promptstore_types::{
    BreakingChange, IncludeRef, PromptKind, PromptStatus, Role, Template, VariableSpec,
};
use time::OffsetDateTime;

/// The label every prompt has: it follows the newest version and is moved only by the store.
pub const LATEST_LABEL: &str = "latest";

/// A project id (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(pub String);

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who performs a change: an authenticated key of one project, or the server itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub project: ProjectId,
    /// The key id (`system` for the server's own writes, such as bootstrap).
    pub key_id: String,
    pub role: Role,
}

impl Actor {
    pub fn system(project: ProjectId) -> Self {
        Actor {
            project,
            key_id: "system".to_owned(),
            role: Role::Admin,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub name: String,
    pub protected_labels: Vec<String>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public id, also the visible part of the secret.
    pub id: String,
    pub project: ProjectId,
    pub name: String,
    pub role: Role,
    /// SHA-256 (hex) of the whole secret. The secret itself is never stored.
    pub secret_hash: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key to be stored: the caller generated the secret and hashed it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromptRecord {
    pub id: String,
    pub project: ProjectId,
    pub name: String,
    pub kind: PromptKind,
    pub description: String,
    pub tags: Vec<String>,
    pub status: PromptStatus,
    /// Bumped by every metadata or status change.
    pub revision: u64,
    pub latest_version: u32,
    /// Label name → version number, `latest` included.
    pub labels: BTreeMap<String, u32>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub prompt_id: String,
    pub prompt: String,
    pub number: u32,
    pub template: Template,
    pub variables: Vec<VariableSpec>,
    pub model_config: serde_json::Value,
    pub commit_message: String,
    pub author: String,
    /// (prompt name, version number) this version was edited or forked from.
    pub parent: Option<(String, u32)>,
    pub content_hash: String,
    pub includes: Vec<IncludeRef>,
    pub breaking_changes: Vec<BreakingChange>,
    pub created_at: OffsetDateTime,
}

/// The content of a version to be stored; the store assigns the number and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub template: Template,
    pub variables: Vec<VariableSpec>,
    pub model_config: serde_json::Value,
    pub commit_message: String,
    pub parent: Option<(String, u32)>,
    pub content_hash: String,
    pub includes: Vec<IncludeRef>,
    pub breaking_changes: Vec<BreakingChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelRecord {
    pub name: String,
    pub version: u32,
    pub updated_by: String,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelMoveRecord {
    pub id: i64,
    pub prompt: String,
    pub label: String,
    pub from_version: Option<u32>,
    pub to_version: Option<u32>,
    pub actor: String,
    pub reason: Option<String>,
    pub at: OffsetDateTime,
}

/// An edge of the include graph: `from_prompt@from_version` includes `target`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IncludeEdge {
    pub from_prompt: String,
    pub from_version: u32,
    pub target: IncludeRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub project: ProjectId,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub at: OffsetDateTime,
}

/// An audit record to be written; the store adds id, project and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub action: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}
