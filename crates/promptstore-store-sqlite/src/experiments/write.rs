//! The experiment writes of `Store::apply`, in the caller's transaction: each checks the
//! state the use case decided on (`expected_revision`) and the lifecycle rules that keep the
//! invariants (see `ExperimentChange`), writes the row, appends the history entry and the
//! audit record (a bare note appends only the history entry). A refusal returns before anything of its own is written, and the caller
//! rolls back the whole op list.

use promptstore_core::experiments::audit;
use promptstore_core::experiments::model::{
    ExperimentChange, ExperimentRecord, HistoryNote, NewExperiment,
};
use promptstore_core::model::{Actor, NewAuditEntry};
use promptstore_core::store::{StoreError, WriteOutcome};
use promptstore_types::{Arm, ExperimentStatus};
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::read::{by_pk, experiment_not_found, find};
use super::rows::{EXPERIMENT_COLUMNS, EXPERIMENT_FROM, ExperimentRow, to_word};
use crate::audit_log;
use crate::codec::to_json_text;
use crate::error::backend;
use crate::lookup::require_prompt_pk;

/// What every experiment write needs: the transaction's connection, who writes, and the time
/// of the write (milliseconds).
pub(crate) struct Ctx<'a> {
    pub(crate) conn: &'a mut SqliteConnection,
    pub(crate) actor: &'a Actor,
    pub(crate) now: i64,
}

impl Ctx<'_> {
    async fn audit(&mut self, entry: NewAuditEntry) -> Result<(), StoreError> {
        audit_log::insert(
            self.conn,
            &self.actor.project,
            &self.actor.key_id,
            self.now,
            entry,
        )
        .await
    }

    async fn history(&mut self, experiment_pk: i64, note: &HistoryNote) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO experiment_history (experiment_pk, kind, message, details, actor, at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(experiment_pk)
        .bind(&note.kind)
        .bind(&note.message)
        .bind(to_json_text("history details", &note.details)?)
        .bind(&self.actor.key_id)
        .bind(self.now)
        .execute(&mut *self.conn)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// The experiment's row key and record; `NotFound` outside the actor's project.
    async fn experiment(&mut self, id: &str) -> Result<(i64, ExperimentRecord), StoreError> {
        let row = find(self.conn, &self.actor.project, id)
            .await?
            .ok_or_else(|| experiment_not_found(id))?;
        let pk = row.pk;
        Ok((pk, row.into_record()?))
    }

    /// Every arm must name an existing version of the prompt.
    async fn require_versions(
        &mut self,
        prompt_pk: i64,
        prompt: &str,
        arms: &[Arm],
    ) -> Result<(), StoreError> {
        for arm in arms {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM versions WHERE prompt_pk = ? AND number = ?")
                    .bind(prompt_pk)
                    .bind(i64::from(arm.version))
                    .fetch_optional(&mut *self.conn)
                    .await
                    .map_err(backend)?;
            if found.is_none() {
                return Err(StoreError::NotFound {
                    what: format!(
                        "version {} of prompt '{prompt}' (arm '{}')",
                        arm.version, arm.name
                    ),
                });
            }
        }
        Ok(())
    }
}

pub(crate) async fn create(
    ctx: &mut Ctx<'_>,
    new: NewExperiment,
    note: HistoryNote,
) -> Result<WriteOutcome, StoreError> {
    let prompt_pk = require_prompt_pk(ctx.conn, &ctx.actor.project, &new.prompt).await?;
    ctx.require_versions(prompt_pk, &new.prompt, &new.arms)
        .await?;
    let pk: i64 = sqlx::query_scalar(
        "INSERT INTO experiments (id, project_id, prompt_pk, name, description, label, arms, \
         primary_metric, guardrails, min_sample_per_arm, max_duration_hours, on_conclusion, \
         alpha, sequential_tuning, prior, mde, status, conclusion, revision, phase, created_by, \
         created_at, started_at, phase_started_at, ended_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', NULL, 1, 0, ?, ?, \
         NULL, NULL, NULL) RETURNING pk",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&ctx.actor.project.0)
    .bind(prompt_pk)
    .bind(&new.name)
    .bind(&new.description)
    .bind(&new.label)
    .bind(to_json_text("experiment arms", &new.arms)?)
    .bind(to_json_text("primary metric", &new.primary_metric)?)
    .bind(to_json_text("guardrails", &new.guardrails)?)
    .bind(sample_column(new.min_sample_per_arm)?)
    .bind(new.max_duration_hours.map(i64::from))
    .bind(to_word("on conclusion", &new.on_conclusion)?)
    .bind(new.alpha)
    .bind(new.sequential_tuning)
    .bind(
        new.prior
            .as_ref()
            .map(|p| to_json_text("prior", p))
            .transpose()?,
    )
    .bind(new.mde)
    .bind(&ctx.actor.key_id)
    .bind(ctx.now)
    .fetch_one(&mut *ctx.conn)
    .await
    .map_err(backend)?;
    ctx.history(pk, &note).await?;
    let created = by_pk(ctx.conn, pk).await?;
    ctx.audit(audit::experiment_created(&created)).await?;
    Ok(WriteOutcome::Experiment(created))
}

pub(crate) async fn update(
    ctx: &mut Ctx<'_>,
    id: &str,
    expected_revision: Option<u64>,
    change: ExperimentChange,
    note: HistoryNote,
) -> Result<WriteOutcome, StoreError> {
    let (pk, before) = ctx.experiment(id).await?;
    if let Some(expected) = expected_revision
        && expected != before.revision
    {
        return Err(StoreError::Conflict {
            message: format!(
                "experiment '{}' changed: its revision is {}, the update expected {expected}",
                before.name, before.revision
            ),
        });
    }
    match &change {
        ExperimentChange::ReplaceDraft(new) => {
            require_status(
                &before,
                &[ExperimentStatus::Draft],
                "only a draft can be edited",
            )?;
            replace_draft(ctx, pk, new).await?;
        }
        ExperimentChange::Start => {
            require_status(
                &before,
                &[ExperimentStatus::Draft],
                "only a draft can be started",
            )?;
            start(ctx, pk, &before).await?;
        }
        ExperimentChange::SetArms(arms) => {
            require_status(
                &before,
                &[ExperimentStatus::Draft, ExperimentStatus::Running],
                "only a draft or a running experiment can change its arms",
            )?;
            let prompt_pk = prompt_pk_of(ctx.conn, pk).await?;
            ctx.require_versions(prompt_pk, &before.prompt, arms)
                .await?;
            // A running experiment's new arms or weights start a new phase: the analysis of
            // the current phase must not mix data collected under the old split.
            sqlx::query(
                "UPDATE experiments SET arms = ?1, revision = revision + 1, \
                 phase = CASE WHEN status = 'running' THEN phase + 1 ELSE phase END, \
                 phase_started_at = CASE WHEN status = 'running' THEN ?2 ELSE phase_started_at END \
                 WHERE pk = ?3",
            )
            .bind(to_json_text("experiment arms", arms)?)
            .bind(ctx.now)
            .bind(pk)
            .execute(&mut *ctx.conn)
            .await
            .map_err(backend)?;
        }
        ExperimentChange::Stop => {
            require_status(
                &before,
                &[ExperimentStatus::Running],
                "only a running experiment can be stopped",
            )?;
            sqlx::query(
                "UPDATE experiments SET status = 'stopped', ended_at = ?, \
                 revision = revision + 1 WHERE pk = ?",
            )
            .bind(ctx.now)
            .bind(pk)
            .execute(&mut *ctx.conn)
            .await
            .map_err(backend)?;
        }
        ExperimentChange::Conclude(conclusion) => {
            require_status(
                &before,
                &[ExperimentStatus::Running, ExperimentStatus::Stopped],
                "only a running or stopped experiment can be concluded",
            )?;
            // A stopped experiment ended when it stopped: concluding it later keeps that time.
            sqlx::query(
                "UPDATE experiments SET status = 'concluded', conclusion = ?, \
                 ended_at = COALESCE(ended_at, ?), revision = revision + 1 WHERE pk = ?",
            )
            .bind(to_json_text("conclusion", conclusion)?)
            .bind(ctx.now)
            .bind(pk)
            .execute(&mut *ctx.conn)
            .await
            .map_err(backend)?;
        }
    }
    ctx.history(pk, &note).await?;
    let after = by_pk(ctx.conn, pk).await?;
    ctx.audit(audit::experiment_changed(&change, &before, &after))
        .await?;
    Ok(WriteOutcome::Experiment(after))
}

/// Append a note to the history without changing the experiment: no new revision and no
/// audit record (nothing about the experiment changed).
pub(crate) async fn note(
    ctx: &mut Ctx<'_>,
    id: &str,
    note: HistoryNote,
) -> Result<WriteOutcome, StoreError> {
    let (pk, record) = ctx.experiment(id).await?;
    ctx.history(pk, &note).await?;
    Ok(WriteOutcome::Experiment(record))
}

pub(crate) async fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<WriteOutcome, StoreError> {
    let (pk, before) = ctx.experiment(id).await?;
    require_status(
        &before,
        &[ExperimentStatus::Draft],
        "only a draft can be deleted (stop or conclude it instead)",
    )?;
    // Its history goes with it (ON DELETE CASCADE); the audit log keeps the record.
    sqlx::query("DELETE FROM experiments WHERE pk = ?")
        .bind(pk)
        .execute(&mut *ctx.conn)
        .await
        .map_err(backend)?;
    ctx.audit(audit::experiment_deleted(&before)).await?;
    Ok(WriteOutcome::Deleted)
}

/// Audit the deletion of every experiment of a prompt that is being deleted; the rows (and
/// their history) go with the prompt's row by ON DELETE CASCADE.
pub(crate) async fn audit_prompt_deletion(
    ctx: &mut Ctx<'_>,
    prompt_pk: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM {EXPERIMENT_FROM} WHERE x.prompt_pk = ? ORDER BY x.pk"
    );
    let rows: Vec<ExperimentRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(prompt_pk)
        .fetch_all(&mut *ctx.conn)
        .await
        .map_err(backend)?;
    for row in rows {
        let record = row.into_record()?;
        ctx.audit(audit::experiment_deleted(&record)).await?;
    }
    Ok(())
}

fn require_status(
    e: &ExperimentRecord,
    allowed: &[ExperimentStatus],
    rule: &str,
) -> Result<(), StoreError> {
    if allowed.contains(&e.status) {
        return Ok(());
    }
    Err(StoreError::Conflict {
        message: format!("experiment '{}' is {}: {rule}", e.name, e.status.as_str()),
    })
}

/// The database column of `min_sample_per_arm` (SQLite integers are signed).
fn sample_column(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Conflict {
        message: format!("a minimum sample per arm of {n} is too large to store"),
    })
}

async fn prompt_pk_of(conn: &mut SqliteConnection, pk: i64) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT prompt_pk FROM experiments WHERE pk = ?")
        .bind(pk)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

async fn replace_draft(ctx: &mut Ctx<'_>, pk: i64, new: &NewExperiment) -> Result<(), StoreError> {
    let prompt_pk = require_prompt_pk(ctx.conn, &ctx.actor.project, &new.prompt).await?;
    ctx.require_versions(prompt_pk, &new.prompt, &new.arms)
        .await?;
    sqlx::query(
        "UPDATE experiments SET prompt_pk = ?, name = ?, description = ?, label = ?, arms = ?, \
         primary_metric = ?, guardrails = ?, min_sample_per_arm = ?, max_duration_hours = ?, \
         on_conclusion = ?, alpha = ?, sequential_tuning = ?, prior = ?, mde = ?, \
         revision = revision + 1 WHERE pk = ?",
    )
    .bind(prompt_pk)
    .bind(&new.name)
    .bind(&new.description)
    .bind(&new.label)
    .bind(to_json_text("experiment arms", &new.arms)?)
    .bind(to_json_text("primary metric", &new.primary_metric)?)
    .bind(to_json_text("guardrails", &new.guardrails)?)
    .bind(sample_column(new.min_sample_per_arm)?)
    .bind(new.max_duration_hours.map(i64::from))
    .bind(to_word("on conclusion", &new.on_conclusion)?)
    .bind(new.alpha)
    .bind(new.sequential_tuning)
    .bind(
        new.prior
            .as_ref()
            .map(|p| to_json_text("prior", p))
            .transpose()?,
    )
    .bind(new.mde)
    .bind(pk)
    .execute(&mut *ctx.conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// `draft → running`, refused while another experiment runs on the same prompt + label.
async fn start(ctx: &mut Ctx<'_>, pk: i64, before: &ExperimentRecord) -> Result<(), StoreError> {
    let running = |who: &str| StoreError::Conflict {
        message: format!(
            "{who} is already running on label '{}' of prompt '{}'; \
             stop or conclude it before starting '{}'",
            before.label, before.prompt, before.name
        ),
    };
    let other: Option<(String, String)> = sqlx::query_as(
        "SELECT o.name, o.id FROM experiments o JOIN experiments x ON o.prompt_pk = x.prompt_pk \
         AND o.label = x.label WHERE x.pk = ?1 AND o.pk <> ?1 AND o.status = 'running' LIMIT 1",
    )
    .bind(pk)
    .fetch_optional(&mut *ctx.conn)
    .await
    .map_err(backend)?;
    if let Some((name, id)) = other {
        return Err(running(&format!("experiment '{name}' ({id})")));
    }
    sqlx::query(
        "UPDATE experiments SET status = 'running', started_at = ?1, phase = 1, \
         phase_started_at = ?1, revision = revision + 1 WHERE pk = ?2",
    )
    .bind(ctx.now)
    .bind(pk)
    .execute(&mut *ctx.conn)
    .await
    .map_err(|e| match e.as_database_error() {
        // The partial unique index: another writer got there (cannot happen with the single
        // writer connection, but the invariant must not rest on that).
        Some(db) if db.is_unique_violation() => running("another experiment"),
        _ => backend(e),
    })?;
    Ok(())
}
