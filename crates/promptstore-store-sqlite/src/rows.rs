//! Rows as SQLite returns them, the SELECT lists that produce them, and their conversion to
//! domain records (which fails with a backend error, never a panic, on corrupt data).

use std::collections::BTreeMap;

use promptstore_core::model::{
    ApiKeyRecord, AuditEntry, LabelMoveRecord, LabelRecord, ProjectId, ProjectRecord, PromptRecord,
    VersionRecord,
};
use promptstore_core::store::StoreError;
use promptstore_types::{PromptKind, PromptStatus, Role};

use crate::codec::{from_json_text, from_ms, to_u32, to_u64};
use crate::error::corrupt;

pub(crate) const PROJECT_COLUMNS: &str = "id, name, protected_labels, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    id: String,
    name: String,
    protected_labels: String,
    created_at: i64,
}

impl ProjectRow {
    pub(crate) fn into_record(self) -> Result<ProjectRecord, StoreError> {
        Ok(ProjectRecord {
            id: ProjectId(self.id),
            name: self.name,
            protected_labels: from_json_text("protected labels", &self.protected_labels)?,
            created_at: from_ms(self.created_at)?,
        })
    }
}

pub(crate) const KEY_COLUMNS: &str =
    "id, project_id, name, role, secret_hash, created_by, created_at, revoked_at";

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    id: String,
    project_id: String,
    name: String,
    role: String,
    secret_hash: String,
    created_by: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl KeyRow {
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            role: Role::parse(&self.role).ok_or_else(|| corrupt("key role", &self.role))?,
            id: self.id,
            project: ProjectId(self.project_id),
            name: self.name,
            secret_hash: self.secret_hash,
            created_by: self.created_by,
            created_at: from_ms(self.created_at)?,
            revoked_at: self.revoked_at.map(from_ms).transpose()?,
        })
    }
}

/// Prompt columns, with the labels folded into one JSON object so that a prompt is one row.
/// The prompts table must be aliased `p`.
pub(crate) const PROMPT_COLUMNS: &str = "p.pk, p.id, p.project_id, p.name, p.kind, p.description, \
     p.tags, p.status, p.revision, p.latest_version, p.created_by, p.created_at, p.updated_at, \
     (SELECT json_group_object(l.name, l.version) FROM labels l WHERE l.prompt_pk = p.pk) AS labels";

#[derive(sqlx::FromRow)]
pub(crate) struct PromptRow {
    pub(crate) pk: i64,
    id: String,
    project_id: String,
    pub(crate) name: String,
    kind: String,
    description: String,
    tags: String,
    status: String,
    revision: i64,
    latest_version: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    labels: Option<String>,
}

impl PromptRow {
    pub(crate) fn into_record(self) -> Result<PromptRecord, StoreError> {
        PromptFields {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            kind: &self.kind,
            description: self.description,
            tags: &self.tags,
            status: &self.status,
            revision: self.revision,
            latest_version: self.latest_version,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            labels: self.labels.as_deref(),
        }
        .into_record()
    }
}

/// Prompt columns for reading a whole project (prompts aliased `p`). The short text columns
/// travel packed in one JSON array, so that a row is three text values instead of ten: sqlx
/// copies every value of every row in its worker thread and hands it over, and for
/// thousands of prompts that per-value cost, not SQLite, was most of the read.
pub(crate) const PROMPT_BULK_COLUMNS: &str = "json_array(p.id, p.project_id, p.name, p.kind, \
     p.description, p.status, p.created_by) AS texts, p.tags, p.revision, p.latest_version, \
     p.created_at, p.updated_at, \
     (SELECT json_group_object(l.name, l.version) FROM labels l WHERE l.prompt_pk = p.pk) AS labels";

/// A row of [`PROMPT_BULK_COLUMNS`], read in place (the text borrowed from the row).
#[derive(sqlx::FromRow)]
pub(crate) struct PromptBulkRow<'r> {
    texts: &'r str,
    tags: &'r str,
    revision: i64,
    latest_version: i64,
    created_at: i64,
    updated_at: i64,
    labels: Option<&'r str>,
}

impl PromptBulkRow<'_> {
    pub(crate) fn into_record(self) -> Result<PromptRecord, StoreError> {
        let (id, project_id, name, kind, description, status, created_by): (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = from_json_text("prompt columns", self.texts)?;
        PromptFields {
            id,
            project_id,
            name,
            kind: &kind,
            description,
            tags: self.tags,
            status: &status,
            revision: self.revision,
            latest_version: self.latest_version,
            created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            labels: self.labels,
        }
        .into_record()
    }
}

/// A prompt's columns, whichever way they were read; owned where the record keeps them.
struct PromptFields<'a> {
    id: String,
    project_id: String,
    name: String,
    kind: &'a str,
    description: String,
    tags: &'a str,
    status: &'a str,
    revision: i64,
    latest_version: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    labels: Option<&'a str>,
}

impl PromptFields<'_> {
    fn into_record(self) -> Result<PromptRecord, StoreError> {
        let labels: BTreeMap<String, u32> = match self.labels {
            Some(text) => from_json_text("labels", text)?,
            None => BTreeMap::new(),
        };
        Ok(PromptRecord {
            kind: PromptKind::parse(self.kind).ok_or_else(|| corrupt("prompt kind", self.kind))?,
            status: PromptStatus::parse(self.status)
                .ok_or_else(|| corrupt("prompt status", self.status))?,
            id: self.id,
            project: ProjectId(self.project_id),
            name: self.name,
            description: self.description,
            tags: json_list("tags", self.tags)?,
            revision: to_u64("revision", self.revision)?,
            latest_version: to_u32("latest version", self.latest_version)?,
            labels,
            created_by: self.created_by,
            created_at: from_ms(self.created_at)?,
            updated_at: from_ms(self.updated_at)?,
        })
    }
}

/// A JSON list column: `[]`, what most rows hold, without running the parser.
fn json_list<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<Vec<T>, StoreError> {
    if text == "[]" {
        return Ok(Vec::new());
    }
    from_json_text(what, text)
}

/// Version columns joined with their prompt; versions aliased `v`, prompts `p`.
pub(crate) const VERSION_COLUMNS: &str = "p.id AS prompt_id, p.name AS prompt_name, v.number, \
     v.template, v.variables, v.model_config, v.commit_message, v.author, v.parent_prompt, \
     v.parent_number, v.content_hash, v.includes, v.breaking_changes, v.created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct VersionRow {
    prompt_id: String,
    prompt_name: String,
    number: i64,
    template: String,
    variables: String,
    model_config: String,
    commit_message: String,
    author: String,
    parent_prompt: Option<String>,
    parent_number: Option<i64>,
    content_hash: String,
    includes: String,
    breaking_changes: String,
    created_at: i64,
}

impl VersionRow {
    pub(crate) fn into_record(self) -> Result<VersionRecord, StoreError> {
        VersionRowRef {
            prompt_id: &self.prompt_id,
            prompt_name: &self.prompt_name,
            number: self.number,
            template: &self.template,
            variables: &self.variables,
            model_config: &self.model_config,
            commit_message: &self.commit_message,
            author: &self.author,
            parent_prompt: self.parent_prompt.as_deref(),
            parent_number: self.parent_number,
            content_hash: &self.content_hash,
            includes: &self.includes,
            breaking_changes: &self.breaking_changes,
            created_at: self.created_at,
        }
        .into_record()
    }
}

/// A version row read in place (the text borrowed from SQLite's row): the JSON columns are
/// parsed where SQLite holds them instead of being copied into a `String` first. This is
/// what loading every live version at start costs most.
#[derive(sqlx::FromRow)]
pub(crate) struct VersionRowRef<'r> {
    prompt_id: &'r str,
    prompt_name: &'r str,
    number: i64,
    template: &'r str,
    variables: &'r str,
    model_config: &'r str,
    commit_message: &'r str,
    author: &'r str,
    parent_prompt: Option<&'r str>,
    parent_number: Option<i64>,
    content_hash: &'r str,
    includes: &'r str,
    breaking_changes: &'r str,
    created_at: i64,
}

impl VersionRowRef<'_> {
    pub(crate) fn into_record(self) -> Result<VersionRecord, StoreError> {
        let parent = match (self.parent_prompt, self.parent_number) {
            (Some(prompt), Some(n)) => Some((prompt.to_owned(), to_u32("parent version", n)?)),
            _ => None,
        };
        Ok(VersionRecord {
            prompt_id: self.prompt_id.to_owned(),
            prompt: self.prompt_name.to_owned(),
            number: to_u32("version number", self.number)?,
            template: from_json_text("template", self.template)?,
            variables: json_list("variables", self.variables)?,
            model_config: from_json_text("model config", self.model_config)?,
            commit_message: self.commit_message.to_owned(),
            author: self.author.to_owned(),
            parent,
            content_hash: self.content_hash.to_owned(),
            includes: json_list("includes", self.includes)?,
            breaking_changes: json_list("breaking changes", self.breaking_changes)?,
            created_at: from_ms(self.created_at)?,
        })
    }
}

pub(crate) const LABEL_COLUMNS: &str = "name, version, updated_by, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct LabelRow {
    name: String,
    version: i64,
    updated_by: String,
    updated_at: i64,
}

impl LabelRow {
    pub(crate) fn into_record(self) -> Result<LabelRecord, StoreError> {
        Ok(LabelRecord {
            name: self.name,
            version: to_u32("label version", self.version)?,
            updated_by: self.updated_by,
            updated_at: from_ms(self.updated_at)?,
        })
    }
}

pub(crate) const MOVE_COLUMNS: &str =
    "id, prompt_name, label, from_version, to_version, actor, reason, at";

#[derive(sqlx::FromRow)]
pub(crate) struct MoveRow {
    id: i64,
    prompt_name: String,
    label: String,
    from_version: Option<i64>,
    to_version: Option<i64>,
    actor: String,
    reason: Option<String>,
    at: i64,
}

impl MoveRow {
    pub(crate) fn into_record(self) -> Result<LabelMoveRecord, StoreError> {
        Ok(LabelMoveRecord {
            id: self.id,
            prompt: self.prompt_name,
            label: self.label,
            from_version: self
                .from_version
                .map(|n| to_u32("label move", n))
                .transpose()?,
            to_version: self
                .to_version
                .map(|n| to_u32("label move", n))
                .transpose()?,
            actor: self.actor,
            reason: self.reason,
            at: from_ms(self.at)?,
        })
    }
}

pub(crate) const AUDIT_COLUMNS: &str =
    "id, project_id, actor, action, object_type, object_id, before, after, at";

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    project_id: String,
    actor: String,
    action: String,
    object_type: String,
    object_id: String,
    before: Option<String>,
    after: Option<String>,
    at: i64,
}

impl AuditRow {
    pub(crate) fn into_record(self) -> Result<AuditEntry, StoreError> {
        Ok(AuditEntry {
            id: self.id,
            project: ProjectId(self.project_id),
            actor: self.actor,
            action: self.action,
            object_type: self.object_type,
            object_id: self.object_id,
            before: self
                .before
                .as_deref()
                .map(|t| from_json_text("audit before", t))
                .transpose()?,
            after: self
                .after
                .as_deref()
                .map(|t| from_json_text("audit after", t))
                .transpose()?,
            at: from_ms(self.at)?,
        })
    }
}
