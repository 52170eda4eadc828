//! Builders of audit records, one per kind of change, so that every backend writes the same
//! action names, object ids and before/after JSON for the same change.
//!
//! The JSON is built from the wire types (`crate::convert`), which is what an API client sees
//! of the object. Architecture invariant: key secrets and their hashes never reach an audit
//! record — the wire `ApiKey` has neither.

use serde_json::json;

use crate::convert::{api_key, label_move, project, prompt, to_json, version};
use crate::model::{
    ApiKeyRecord, LabelMoveRecord, NewAuditEntry, ProjectRecord, PromptRecord, VersionRecord,
};

/// The action names, as stored and as filtered on (`GET /audit?action=`).
pub mod actions {
    pub const PROJECT_CREATED: &str = "project.created";
    pub const PROJECT_SETTINGS_CHANGED: &str = "project.settings_changed";
    pub const KEY_CREATED: &str = "key.created";
    pub const KEY_REVOKED: &str = "key.revoked";
    pub const PROMPT_CREATED: &str = "prompt.created";
    pub const PROMPT_UPDATED: &str = "prompt.updated";
    pub const PROMPT_STATUS_CHANGED: &str = "prompt.status_changed";
    pub const PROMPT_DELETED: &str = "prompt.deleted";
    pub const VERSION_CREATED: &str = "version.created";
    pub const LABEL_MOVED: &str = "label.moved";
    pub const LABEL_REMOVED: &str = "label.removed";
}

/// The object types of audit records.
pub mod object_types {
    pub const PROJECT: &str = "project";
    pub const KEY: &str = "key";
    pub const PROMPT: &str = "prompt";
    pub const VERSION: &str = "version";
    pub const LABEL: &str = "label";
}

/// Object id of a version: `support/triage@3`.
pub fn version_object_id(prompt: &str, number: u32) -> String {
    format!("{prompt}@{number}")
}

/// Object id of a label: `support/triage#production`.
pub fn label_object_id(prompt: &str, label: &str) -> String {
    format!("{prompt}#{label}")
}

pub fn project_created(p: &ProjectRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROJECT_CREATED,
        object_type: object_types::PROJECT,
        object_id: p.id.0.clone(),
        before: None,
        after: Some(to_json(&project(p))),
    }
}

pub fn project_settings_changed(before: &ProjectRecord, after: &ProjectRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROJECT_SETTINGS_CHANGED,
        object_type: object_types::PROJECT,
        object_id: after.id.0.clone(),
        before: Some(to_json(&project(before))),
        after: Some(to_json(&project(after))),
    }
}

pub fn key_created(k: &ApiKeyRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::KEY_CREATED,
        object_type: object_types::KEY,
        object_id: k.id.clone(),
        before: None,
        after: Some(to_json(&api_key(k))),
    }
}

pub fn key_revoked(before: &ApiKeyRecord, after: &ApiKeyRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::KEY_REVOKED,
        object_type: object_types::KEY,
        object_id: after.id.clone(),
        before: Some(to_json(&api_key(before))),
        after: Some(to_json(&api_key(after))),
    }
}

pub fn prompt_created(p: &PromptRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROMPT_CREATED,
        object_type: object_types::PROMPT,
        object_id: p.name.clone(),
        before: None,
        after: Some(to_json(&prompt(p))),
    }
}

pub fn prompt_updated(before: &PromptRecord, after: &PromptRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROMPT_UPDATED,
        object_type: object_types::PROMPT,
        object_id: after.name.clone(),
        before: Some(to_json(&prompt(before))),
        after: Some(to_json(&prompt(after))),
    }
}

pub fn prompt_status_changed(before: &PromptRecord, after: &PromptRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROMPT_STATUS_CHANGED,
        object_type: object_types::PROMPT,
        object_id: after.name.clone(),
        before: Some(to_json(&prompt(before))),
        after: Some(to_json(&prompt(after))),
    }
}

pub fn prompt_deleted(before: &PromptRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PROMPT_DELETED,
        object_type: object_types::PROMPT,
        object_id: before.name.clone(),
        before: Some(to_json(&prompt(before))),
        after: None,
    }
}

pub fn version_created(v: &VersionRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::VERSION_CREATED,
        object_type: object_types::VERSION,
        object_id: version_object_id(&v.prompt, v.number),
        before: None,
        after: Some(to_json(&version(v))),
    }
}

/// Where a label pointed before a move: `{"label": .., "version": n}`, or `None` when the
/// move created it.
fn label_state(m: &LabelMoveRecord) -> Option<serde_json::Value> {
    m.from_version
        .map(|v| json!({ "label": m.label, "version": v }))
}

/// A label created or moved (`m.to_version` is set). `after` is the recorded move.
pub fn label_moved(m: &LabelMoveRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::LABEL_MOVED,
        object_type: object_types::LABEL,
        object_id: label_object_id(&m.prompt, &m.label),
        before: label_state(m),
        after: Some(to_json(&label_move(m))),
    }
}

/// A label removed (`m.to_version` is `None`). `after` is the recorded move.
pub fn label_removed(m: &LabelMoveRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::LABEL_REMOVED,
        object_type: object_types::LABEL,
        object_id: label_object_id(&m.prompt, &m.label),
        before: label_state(m),
        after: Some(to_json(&label_move(m))),
    }
}

/// `label_moved` or `label_removed`, whichever the move is.
pub fn label_change(m: &LabelMoveRecord) -> NewAuditEntry {
    if m.to_version.is_some() {
        label_moved(m)
    } else {
        label_removed(m)
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::Role;
    use time::OffsetDateTime;

    use super::*;
    use crate::model::ProjectId;

    fn key() -> ApiKeyRecord {
        ApiKeyRecord {
            id: "abc123def456".to_owned(),
            project: ProjectId("p1".to_owned()),
            name: "ci".to_owned(),
            role: Role::Editor,
            secret_hash: "deadbeefsecrethash".to_owned(),
            created_by: "system".to_owned(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn key_records_never_carry_the_secret_hash() {
        let k = key();
        let mut revoked = k.clone();
        revoked.revoked_at = Some(OffsetDateTime::UNIX_EPOCH);
        for entry in [key_created(&k), key_revoked(&k, &revoked)] {
            let text = format!("{:?}{:?}", entry.before, entry.after);
            assert!(!text.contains("deadbeefsecrethash"), "{text}");
            assert_eq!(entry.object_id, "abc123def456");
            assert_eq!(entry.object_type, "key");
        }
    }

    #[test]
    fn label_moves_name_the_label_and_their_kind() {
        let mut m = LabelMoveRecord {
            id: 7,
            prompt: "support/triage".to_owned(),
            label: "production".to_owned(),
            from_version: Some(2),
            to_version: Some(3),
            actor: "k1".to_owned(),
            reason: None,
            at: OffsetDateTime::UNIX_EPOCH,
        };
        let moved = label_change(&m);
        assert_eq!(moved.action, "label.moved");
        assert_eq!(moved.object_id, "support/triage#production");
        assert_eq!(
            moved.before,
            Some(json!({"label": "production", "version": 2}))
        );
        assert_eq!(
            moved.after.as_ref().and_then(|a| a.get("to_version")),
            Some(&json!(3))
        );

        m.to_version = None;
        let removed = label_change(&m);
        assert_eq!(removed.action, "label.removed");

        m.from_version = None;
        m.to_version = Some(1);
        assert_eq!(label_change(&m).before, None);
    }

    #[test]
    fn object_ids_follow_the_documented_shapes() {
        assert_eq!(version_object_id("support/triage", 3), "support/triage@3");
        assert_eq!(label_object_id("a/b", "staging"), "a/b#staging");
    }
}
