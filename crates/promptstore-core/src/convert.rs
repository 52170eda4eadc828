//! Domain records → wire types. Used by the server for responses and by the stores for the
//! before/after JSON of audit records, so both show an object the same way.

use promptstore_types as wire;

use crate::model::{
    ApiKeyRecord, AuditEntry, LabelMoveRecord, ProjectRecord, PromptRecord, VersionRecord,
};

pub fn project(p: &ProjectRecord) -> wire::Project {
    wire::Project {
        id: p.id.0.clone(),
        name: p.name.clone(),
        protected_labels: p.protected_labels.clone(),
        created_at: p.created_at,
    }
}

pub fn api_key(k: &ApiKeyRecord) -> wire::ApiKey {
    wire::ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        role: k.role,
        created_at: k.created_at,
        created_by: k.created_by.clone(),
        revoked_at: k.revoked_at,
    }
}

pub fn prompt(p: &PromptRecord) -> wire::Prompt {
    wire::Prompt {
        id: p.id.clone(),
        name: p.name.clone(),
        kind: p.kind,
        description: p.description.clone(),
        tags: p.tags.clone(),
        status: p.status,
        labels: p.labels.clone(),
        latest_version: p.latest_version,
        revision: p.revision,
        created_by: p.created_by.clone(),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

pub fn version(v: &VersionRecord) -> wire::Version {
    wire::Version {
        prompt: v.prompt.clone(),
        number: v.number,
        template: v.template.clone(),
        variables: v.variables.clone(),
        model_config: v.model_config.clone(),
        commit_message: v.commit_message.clone(),
        author: v.author.clone(),
        parent: v.parent.as_ref().map(|(prompt, number)| wire::VersionRef {
            prompt: prompt.clone(),
            number: *number,
        }),
        content_hash: v.content_hash.clone(),
        includes: v.includes.clone(),
        breaking_changes: v.breaking_changes.clone(),
        created_at: v.created_at,
    }
}

/// A version as listed; `labels` are the labels of its prompt that point to it.
pub fn version_summary(v: &VersionRecord, prompt: &PromptRecord) -> wire::VersionSummary {
    wire::VersionSummary {
        number: v.number,
        commit_message: v.commit_message.clone(),
        author: v.author.clone(),
        content_hash: v.content_hash.clone(),
        breaking: !v.breaking_changes.is_empty(),
        labels: prompt
            .labels
            .iter()
            .filter(|(_, n)| **n == v.number)
            .map(|(l, _)| l.clone())
            .collect(),
        created_at: v.created_at,
    }
}

pub fn label_move(m: &LabelMoveRecord) -> wire::LabelMove {
    wire::LabelMove {
        id: m.id,
        prompt: m.prompt.clone(),
        label: m.label.clone(),
        from_version: m.from_version,
        to_version: m.to_version,
        actor: m.actor.clone(),
        reason: m.reason.clone(),
        at: m.at,
    }
}

pub fn audit(a: &AuditEntry) -> wire::AuditRecord {
    wire::AuditRecord {
        id: a.id,
        actor: a.actor.clone(),
        action: a.action.clone(),
        object_type: a.object_type.clone(),
        object_id: a.object_id.clone(),
        before: a.before.clone(),
        after: a.after.clone(),
        at: a.at,
    }
}

/// JSON of a wire value for audit records; serialising these plain data types cannot fail,
/// and if it ever did the audit keeps a null rather than failing the write.
pub fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
