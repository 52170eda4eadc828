//! `Store::apply`: the registry writes. Each op checks the state its caller decided on
//! (`expected_*`) against the current rows, writes, and records its label moves and audit
//! records — all inside the one transaction the caller opened, so a failing op leaves
//! nothing of the ops before it.

use promptstore_core::audit;
use promptstore_core::model::{
    Actor, LATEST_LABEL, LabelMoveRecord, NewVersion, PromptRecord, VersionRecord,
};
use promptstore_core::store::{StoreError, WriteOp, WriteOutcome};
use promptstore_types::{PromptKind, PromptStatus};
use sqlx::SqliteConnection;

use crate::accounts::require_project;
use crate::audit_log;
use crate::codec::{from_ms, to_json_text};
use crate::error::{backend, db_error};
use crate::experiments;
use crate::lookup::{find_prompt, label_version, require_prompt, version};
use crate::search;
use crate::tx::write_time;

/// One apply: the connection inside the transaction, who writes, and the time of the write.
struct Writer<'a> {
    conn: &'a mut SqliteConnection,
    actor: &'a Actor,
    now: i64,
}

pub(crate) async fn apply(
    conn: &mut SqliteConnection,
    actor: &Actor,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteOutcome>, StoreError> {
    require_project(conn, &actor.project).await?;
    let now = write_time(conn).await?;
    let mut w = Writer { conn, actor, now };
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(w.op(op).await?);
    }
    Ok(outcomes)
}

impl Writer<'_> {
    async fn op(&mut self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        match op {
            WriteOp::CreatePrompt {
                name,
                kind,
                description,
                tags,
                status,
                first_version,
            } => {
                self.create_prompt(&name, kind, &description, &tags, status, first_version)
                    .await
            }
            WriteOp::UpdatePrompt {
                name,
                expected_revision,
                description,
                tags,
            } => {
                self.update_prompt(&name, expected_revision, description, tags)
                    .await
            }
            WriteOp::SetStatus {
                name,
                expected_status,
                status,
                remove_labels,
            } => {
                self.set_status(&name, expected_status, status, remove_labels)
                    .await
            }
            WriteOp::CreateVersion {
                name,
                expected_latest,
                version,
            } => self.create_version(&name, expected_latest, version).await,
            WriteOp::MoveLabel {
                name,
                label,
                to,
                expected_from,
                reason,
            } => {
                self.move_label(&name, &label, to, expected_from, reason)
                    .await
            }
            WriteOp::DeletePrompt { name } => self.delete_prompt(&name).await,
            WriteOp::CreateExperiment { experiment, note } => {
                experiments::write::create(&mut self.experiments(), experiment, note).await
            }
            WriteOp::UpdateExperiment {
                id,
                expected_revision,
                change,
                note,
            } => {
                experiments::write::update(
                    &mut self.experiments(),
                    &id,
                    expected_revision,
                    change,
                    note,
                )
                .await
            }
            WriteOp::DeleteExperiment { id } => {
                experiments::write::delete(&mut self.experiments(), &id).await
            }
            WriteOp::NoteExperiment { id, note } => {
                experiments::write::note(&mut self.experiments(), &id, note).await
            }
        }
    }

    /// The experiment writes' view of this apply (same transaction, actor and time).
    fn experiments(&mut self) -> experiments::write::Ctx<'_> {
        experiments::write::Ctx {
            conn: &mut *self.conn,
            actor: self.actor,
            now: self.now,
        }
    }

    async fn audit(
        &mut self,
        entry: promptstore_core::model::NewAuditEntry,
    ) -> Result<(), StoreError> {
        audit_log::insert(
            self.conn,
            &self.actor.project,
            &self.actor.key_id,
            self.now,
            entry,
        )
        .await
    }

    async fn prompt(&mut self, name: &str) -> Result<(i64, PromptRecord), StoreError> {
        require_prompt(self.conn, &self.actor.project, name).await
    }

    async fn create_prompt(
        &mut self,
        name: &str,
        kind: PromptKind,
        description: &str,
        tags: &[String],
        status: PromptStatus,
        first_version: NewVersion,
    ) -> Result<WriteOutcome, StoreError> {
        let exists = || StoreError::AlreadyExists {
            what: format!("prompt '{name}'"),
        };
        if find_prompt(self.conn, &self.actor.project, name)
            .await?
            .is_some()
        {
            return Err(exists());
        }
        let pk: i64 = sqlx::query_scalar(
            "INSERT INTO prompts (id, project_id, name, kind, description, tags, status, revision, \
             latest_version, created_by, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?) RETURNING pk",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&self.actor.project.0)
        .bind(name)
        .bind(kind.as_str())
        .bind(description)
        .bind(to_json_text("tags", &tags)?)
        .bind(status.as_str())
        .bind(&self.actor.key_id)
        .bind(self.now)
        .bind(self.now)
        .fetch_one(&mut *self.conn)
        .await
        .map_err(|e| db_error(|| format!("prompt '{name}'"), e))?;
        let first = self.insert_version(pk, 1, &first_version).await?;
        self.set_label(pk, name, LATEST_LABEL, None, Some(1), None)
            .await?;
        search::reindex(self.conn, pk).await?;
        let (_, prompt) = self.prompt(name).await?;
        self.audit(audit::prompt_created(&prompt)).await?;
        self.audit(audit::version_created(&first)).await?;
        Ok(WriteOutcome::Prompt {
            prompt,
            first_version: Some(first),
        })
    }

    async fn update_prompt(
        &mut self,
        name: &str,
        expected_revision: Option<u64>,
        description: Option<String>,
        tags: Option<Vec<String>>,
    ) -> Result<WriteOutcome, StoreError> {
        let (pk, before) = self.prompt(name).await?;
        if let Some(expected) = expected_revision
            && expected != before.revision
        {
            return Err(StoreError::Conflict {
                message: format!(
                    "prompt '{name}' changed: its revision is {}, the update expected {expected}",
                    before.revision
                ),
            });
        }
        let tags = tags.map(|t| to_json_text("tags", &t)).transpose()?;
        sqlx::query(
            "UPDATE prompts SET description = COALESCE(?, description), tags = COALESCE(?, tags), \
             revision = revision + 1, updated_at = ? WHERE pk = ?",
        )
        .bind(description)
        .bind(tags)
        .bind(self.now)
        .bind(pk)
        .execute(&mut *self.conn)
        .await
        .map_err(backend)?;
        search::reindex(self.conn, pk).await?;
        let (_, after) = self.prompt(name).await?;
        self.audit(audit::prompt_updated(&before, &after)).await?;
        Ok(WriteOutcome::Prompt {
            prompt: after,
            first_version: None,
        })
    }

    async fn set_status(
        &mut self,
        name: &str,
        expected_status: PromptStatus,
        status: PromptStatus,
        remove_labels: bool,
    ) -> Result<WriteOutcome, StoreError> {
        let (pk, before) = self.prompt(name).await?;
        if before.status != expected_status {
            return Err(StoreError::Conflict {
                message: format!(
                    "prompt '{name}' changed: its status is {}, expected {}",
                    before.status.as_str(),
                    expected_status.as_str()
                ),
            });
        }
        if status == PromptStatus::Archived {
            let held: Vec<(String, u32)> = before
                .labels
                .iter()
                .filter(|(label, _)| label.as_str() != LATEST_LABEL)
                .map(|(label, n)| (label.clone(), *n))
                .collect();
            if !held.is_empty() && !remove_labels {
                return Err(StoreError::HasLabels {
                    prompt: name.to_owned(),
                    labels: held.into_iter().map(|(label, _)| label).collect(),
                });
            }
            for (label, from) in held {
                let reason = Some("prompt archived".to_owned());
                let m = self
                    .set_label(pk, name, &label, Some(from), None, reason)
                    .await?;
                self.audit(audit::label_change(&m)).await?;
            }
        }
        sqlx::query(
            "UPDATE prompts SET status = ?, revision = revision + 1, updated_at = ? WHERE pk = ?",
        )
        .bind(status.as_str())
        .bind(self.now)
        .bind(pk)
        .execute(&mut *self.conn)
        .await
        .map_err(backend)?;
        let (_, after) = self.prompt(name).await?;
        self.audit(audit::prompt_status_changed(&before, &after))
            .await?;
        Ok(WriteOutcome::Prompt {
            prompt: after,
            first_version: None,
        })
    }

    async fn create_version(
        &mut self,
        name: &str,
        expected_latest: Option<u32>,
        new: NewVersion,
    ) -> Result<WriteOutcome, StoreError> {
        let (pk, prompt) = self.prompt(name).await?;
        if let Some(expected) = expected_latest
            && expected != prompt.latest_version
        {
            return Err(StoreError::Conflict {
                message: format!(
                    "prompt '{name}' changed: its newest version is {}, the edit started from {expected}",
                    prompt.latest_version
                ),
            });
        }
        let number = prompt
            .latest_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Conflict {
                message: format!("prompt '{name}' has reached the highest version number"),
            })?;
        let created = self.insert_version(pk, number, &new).await?;
        sqlx::query("UPDATE prompts SET latest_version = ?, updated_at = ? WHERE pk = ?")
            .bind(i64::from(number))
            .bind(self.now)
            .bind(pk)
            .execute(&mut *self.conn)
            .await
            .map_err(backend)?;
        let from = prompt.labels.get(LATEST_LABEL).copied();
        self.set_label(pk, name, LATEST_LABEL, from, Some(number), None)
            .await?;
        search::reindex(self.conn, pk).await?;
        self.audit(audit::version_created(&created)).await?;
        Ok(WriteOutcome::Version(created))
    }

    async fn move_label(
        &mut self,
        name: &str,
        label: &str,
        to: Option<u32>,
        expected_from: Option<Option<u32>>,
        reason: Option<String>,
    ) -> Result<WriteOutcome, StoreError> {
        if label == LATEST_LABEL {
            return Err(StoreError::Conflict {
                message: format!(
                    "the label '{LATEST_LABEL}' follows the newest version and cannot be moved"
                ),
            });
        }
        let (pk, prompt) = self.prompt(name).await?;
        if to.is_some() && prompt.status == PromptStatus::Archived {
            return Err(StoreError::Archived {
                prompt: name.to_owned(),
            });
        }
        let current = label_version(self.conn, pk, label).await?;
        if let Some(expected) = expected_from
            && expected != current
        {
            let show = |v: Option<u32>| {
                v.map_or_else(|| "nowhere (absent)".to_owned(), |n| format!("version {n}"))
            };
            return Err(StoreError::Conflict {
                message: format!(
                    "label '{label}' of prompt '{name}' points to {}, expected {}",
                    show(current),
                    show(expected)
                ),
            });
        }
        match to {
            Some(n) => {
                if version(self.conn, pk, n).await?.is_none() {
                    return Err(StoreError::NotFound {
                        what: format!("version {n} of prompt '{name}'"),
                    });
                }
                if current == Some(n) {
                    return Ok(WriteOutcome::LabelMoved(None));
                }
            }
            None if current.is_none() => {
                return Err(StoreError::NotFound {
                    what: format!("label '{label}' of prompt '{name}'"),
                });
            }
            None => {}
        }
        let m = self.set_label(pk, name, label, current, to, reason).await?;
        self.audit(audit::label_change(&m)).await?;
        Ok(WriteOutcome::LabelMoved(Some(m)))
    }

    async fn delete_prompt(&mut self, name: &str) -> Result<WriteOutcome, StoreError> {
        let (pk, before) = self.prompt(name).await?;
        search::remove(self.conn, pk).await?;
        experiments::write::audit_prompt_deletion(&mut self.experiments(), pk).await?;
        // Versions, labels, label moves and experiments (with their history) go with the
        // prompt (ON DELETE CASCADE).
        sqlx::query("DELETE FROM prompts WHERE pk = ?")
            .bind(pk)
            .execute(&mut *self.conn)
            .await
            .map_err(backend)?;
        self.audit(audit::prompt_deleted(&before)).await?;
        Ok(WriteOutcome::Deleted)
    }

    async fn insert_version(
        &mut self,
        pk: i64,
        number: u32,
        v: &NewVersion,
    ) -> Result<VersionRecord, StoreError> {
        let (parent_prompt, parent_number) = match &v.parent {
            Some((p, n)) => (Some(p.as_str()), Some(i64::from(*n))),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO versions (prompt_pk, number, template, variables, model_config, \
             commit_message, author, parent_prompt, parent_number, content_hash, includes, \
             breaking_changes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(pk)
        .bind(i64::from(number))
        .bind(to_json_text("template", &v.template)?)
        .bind(to_json_text("variables", &v.variables)?)
        .bind(to_json_text("model config", &v.model_config)?)
        .bind(&v.commit_message)
        .bind(&self.actor.key_id)
        .bind(parent_prompt)
        .bind(parent_number)
        .bind(&v.content_hash)
        .bind(to_json_text("includes", &v.includes)?)
        .bind(to_json_text("breaking changes", &v.breaking_changes)?)
        .bind(self.now)
        .execute(&mut *self.conn)
        .await
        .map_err(|e| db_error(|| format!("version {number}"), e))?;
        version(self.conn, pk, number)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("version {number} vanished after insert")))
    }

    /// Point `label` at `to` (or remove it) and record the move in the label history.
    async fn set_label(
        &mut self,
        pk: i64,
        prompt: &str,
        label: &str,
        from: Option<u32>,
        to: Option<u32>,
        reason: Option<String>,
    ) -> Result<LabelMoveRecord, StoreError> {
        match to {
            Some(n) => {
                sqlx::query(
                    "INSERT INTO labels (prompt_pk, name, version, updated_by, updated_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (prompt_pk, name) DO UPDATE SET \
                     version = excluded.version, updated_by = excluded.updated_by, \
                     updated_at = excluded.updated_at",
                )
                .bind(pk)
                .bind(label)
                .bind(i64::from(n))
                .bind(&self.actor.key_id)
                .bind(self.now)
                .execute(&mut *self.conn)
                .await
                .map_err(backend)?;
            }
            None => {
                sqlx::query("DELETE FROM labels WHERE prompt_pk = ? AND name = ?")
                    .bind(pk)
                    .bind(label)
                    .execute(&mut *self.conn)
                    .await
                    .map_err(backend)?;
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO label_moves (prompt_pk, prompt_name, label, from_version, to_version, \
             actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(pk)
        .bind(prompt)
        .bind(label)
        .bind(from.map(i64::from))
        .bind(to.map(i64::from))
        .bind(&self.actor.key_id)
        .bind(&reason)
        .bind(self.now)
        .fetch_one(&mut *self.conn)
        .await
        .map_err(backend)?;
        Ok(LabelMoveRecord {
            id,
            prompt: prompt.to_owned(),
            label: label.to_owned(),
            from_version: from,
            to_version: to,
            actor: self.actor.key_id.clone(),
            reason,
            at: from_ms(self.now)?,
        })
    }
}
