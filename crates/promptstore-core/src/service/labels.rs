//! Labels: move, remove and roll back (with the protected-label and variable-contract
//! rules), read them now or at a point in time, and list their history.

use promptstore_types::{ErrorCode, PromptStatus, Role, RollbackLabel, SetLabel};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::model::{Actor, LATEST_LABEL, LabelMoveRecord, LabelRecord, ProjectId, PromptRecord};
use crate::service::prompts::unexpected;
use crate::service::{checks, prompt_or_404, version_or_404};
use crate::store::{Page, PageRequest, Store, StoreError, WriteOp, WriteOutcome};

/// A label with whether the project protects it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelView {
    pub label: LabelRecord,
    pub protected: bool,
}

/// A label name that may be moved by a caller: valid and not `latest`.
fn movable_label(label: &str) -> Result<String> {
    if label == LATEST_LABEL {
        return Err(Error::rejected(
            ErrorCode::ReservedLabel,
            "the 'latest' label follows the newest version automatically and cannot be moved",
        )
        .with_details(serde_json::json!({ "label": label })));
    }
    checks::label_name(label)
}

async fn is_protected(store: &dyn Store, project: &ProjectId, label: &str) -> Result<bool> {
    let project = crate::service::projects::get(store, project).await?;
    Ok(project.protected_labels.iter().any(|l| l == label))
}

fn require_admin_for_protected(actor: &Actor, protected: bool, label: &str) -> Result<()> {
    if protected && actor.role != Role::Admin {
        return Err(Error::rejected(
            ErrorCode::ProtectedLabel,
            format!("label '{label}' is protected; only an admin key may move or remove it"),
        )
        .with_details(serde_json::json!({ "label": label })));
    }
    Ok(())
}

struct Move<'a> {
    label: &'a str,
    target: u32,
    expected_from: Option<Option<u32>>,
    allow_breaking: bool,
    reason: Option<String>,
}

/// The shared rules of set and rollback.
async fn move_label(
    store: &dyn Store,
    actor: &Actor,
    prompt: &PromptRecord,
    m: Move<'_>,
) -> Result<LabelMoveRecord> {
    let name = prompt.name.as_str();
    if prompt.status == PromptStatus::Archived {
        return Err(Error::rejected(
            ErrorCode::PromptArchived,
            format!("prompt '{name}' is archived and cannot hold labels"),
        ));
    }
    let target = version_or_404(store, &actor.project, name, m.target).await?;
    let protected = is_protected(store, &actor.project, m.label).await?;
    require_admin_for_protected(actor, protected, m.label)?;
    let current = prompt.labels.get(m.label).copied();
    if let Some(expected) = m.expected_from
        && expected != current
    {
        return Err(label_conflict(name, m.label, expected, current));
    }
    if protected
        && !m.allow_breaking
        && let Some(current_n) = current.filter(|c| *c != m.target)
    {
        let current_v = version_or_404(store, &actor.project, name, current_n).await?;
        let breaking = checks::breaking_changes(&current_v.variables, &target.variables);
        if !breaking.is_empty() {
            return Err(Error::rejected(
                ErrorCode::BreakingChange,
                format!(
                    "version {} breaks the variable contract of version {current_n} that protected label '{}' serves; pass allow_breaking to move it anyway",
                    m.target, m.label
                ),
            )
            .with_details(serde_json::json!({ "from_version": current_n, "to_version": m.target, "breaking_changes": breaking })));
        }
    }
    let op = WriteOp::MoveLabel {
        name: name.to_owned(),
        label: m.label.to_owned(),
        to: Some(m.target),
        expected_from: Some(current),
        reason: m.reason,
    };
    let outcome = apply_move(store, actor, op, name, m.label, current).await?;
    match outcome {
        Some(record) => Ok(record),
        // Already there: answer with the move that put it there.
        None => last_move(store, &actor.project, name, m.label).await,
    }
}

async fn apply_move(
    store: &dyn Store,
    actor: &Actor,
    op: WriteOp,
    name: &str,
    label: &str,
    read: Option<u32>,
) -> Result<Option<LabelMoveRecord>> {
    let outcomes = store.apply(actor, vec![op]).await.map_err(|e| match e {
        StoreError::Conflict { .. } => label_conflict(name, label, read, None),
        other => other.into(),
    })?;
    match outcomes.into_iter().next() {
        Some(WriteOutcome::LabelMoved(record)) => Ok(record),
        other => Err(unexpected("MoveLabel", &other)),
    }
}

fn label_conflict(name: &str, label: &str, expected: Option<u32>, current: Option<u32>) -> Error {
    Error::rejected(
        ErrorCode::Conflict,
        format!("label '{label}' of '{name}' moved since it was read; reload and retry"),
    )
    .with_details(serde_json::json!({ "label": label, "expected_version": expected.unwrap_or(0), "current_version": current }))
}

async fn last_move(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    label: &str,
) -> Result<LabelMoveRecord> {
    let page = store
        .label_history(
            project,
            name,
            Some(label),
            &PageRequest {
                cursor: None,
                limit: 1,
            },
        )
        .await?;
    page.items
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(format!("history of label '{label}' of prompt '{name}'")))
}

/// Point `label` at `req.version` (create or move it).
pub async fn set(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    label: &str,
    req: &SetLabel,
) -> Result<LabelMoveRecord> {
    let label = movable_label(label)?;
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    let expected_from = req.expected_version.map(|n| (n != 0).then_some(n));
    move_label(
        store,
        actor,
        &prompt,
        Move {
            label: &label,
            target: req.version,
            expected_from,
            allow_breaking: req.allow_breaking,
            reason: req.reason.clone(),
        },
    )
    .await
}

/// Remove `label` from prompt `name`.
pub async fn remove(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    label: &str,
) -> Result<LabelMoveRecord> {
    let label = movable_label(label)?;
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    let Some(current) = prompt.labels.get(&label).copied() else {
        return Err(Error::not_found(format!(
            "label '{label}' of prompt '{name}'"
        )));
    };
    let protected = is_protected(store, &actor.project, &label).await?;
    require_admin_for_protected(actor, protected, &label)?;
    let op = WriteOp::MoveLabel {
        name: name.to_owned(),
        label: label.clone(),
        to: None,
        expected_from: Some(Some(current)),
        reason: None,
    };
    match apply_move(store, actor, op, name, &label, Some(current)).await? {
        Some(record) => Ok(record),
        None => Err(Error::not_found(format!(
            "label '{label}' of prompt '{name}'"
        ))),
    }
}

/// Move `label` back to where it pointed before its most recent move, or to `req.version`.
pub async fn rollback(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    label: &str,
    req: &RollbackLabel,
) -> Result<LabelMoveRecord> {
    let label = movable_label(label)?;
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    let target = match req.version {
        Some(v) => v,
        None => {
            let last = last_move(store, &actor.project, name, &label).await?;
            last.from_version.ok_or_else(|| {
                Error::rejected(
                    ErrorCode::Conflict,
                    format!("label '{label}' of '{name}' has no earlier version to roll back to"),
                )
                .with_details(serde_json::json!({ "label": label }))
            })?
        }
    };
    let current = prompt.labels.get(&label).copied();
    move_label(
        store,
        actor,
        &prompt,
        Move {
            label: &label,
            target,
            expected_from: Some(current),
            allow_breaking: req.allow_breaking,
            reason: req.reason.clone(),
        },
    )
    .await
}

/// Every label of a prompt (`latest` included), with whether it is protected.
pub async fn list(store: &dyn Store, project: &ProjectId, name: &str) -> Result<Vec<LabelView>> {
    prompt_or_404(store, project, name).await?;
    let protected = crate::service::projects::get(store, project)
        .await?
        .protected_labels;
    Ok(store
        .list_labels(project, name)
        .await?
        .into_iter()
        .map(|label| LabelView {
            protected: protected.contains(&label.name),
            label,
        })
        .collect())
}

/// One label as it is now.
pub async fn get(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    label: &str,
) -> Result<LabelView> {
    list(store, project, name)
        .await?
        .into_iter()
        .find(|l| l.label.name == label)
        .ok_or_else(|| Error::not_found(format!("label '{label}' of prompt '{name}'")))
}

/// The version `label` pointed to at `at` (`None`: it did not exist then).
pub async fn at(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    label: &str,
    at: OffsetDateTime,
) -> Result<Option<u32>> {
    checks::label_name(label)?;
    prompt_or_404(store, project, name).await?;
    Ok(store.label_at(project, name, label, at).await?)
}

/// Label moves of a prompt, newest first (`label = None`: all labels).
pub async fn history(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    label: Option<&str>,
    page: &PageRequest,
) -> Result<Page<LabelMoveRecord>> {
    prompt_or_404(store, project, name).await?;
    Ok(store.label_history(project, name, label, page).await?)
}
