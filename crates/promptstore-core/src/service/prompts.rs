//! Prompts: create (with version 1), read, list, update metadata, fork and delete.

use promptstore_types::{
    CreatePrompt, ErrorCode, ForkVersion, PromptStatus, UpdatePrompt, Warning,
};

use crate::error::{Error, Result};
use crate::model::{Actor, LATEST_LABEL, NewVersion, ProjectId, PromptRecord, VersionRecord};
use crate::service::{checks, prompt_or_404, version_or_404};
use crate::store::{Page, PageRequest, PromptFilter, Store, StoreError, WriteOp, WriteOutcome};

/// A prompt just created, with its version 1 and what the template analysis noticed.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptCreated {
    pub prompt: PromptRecord,
    pub version: VersionRecord,
    pub warnings: Vec<Warning>,
}

/// Create a prompt and its version 1.
pub async fn create(store: &dyn Store, actor: &Actor, req: &CreatePrompt) -> Result<PromptCreated> {
    let name = checks::prompt_name(&req.name)?;
    let description = checks::description(&req.description)?;
    let tags = checks::tags(&req.tags)?;
    let status = match req.status {
        None => PromptStatus::Draft,
        Some(s @ (PromptStatus::Draft | PromptStatus::Active)) => s,
        Some(other) => {
            return Err(Error::rejected(
                ErrorCode::InvalidRequest,
                format!(
                    "a new prompt starts as 'draft' or 'active', not '{}'",
                    other.as_str()
                ),
            )
            .with_details(serde_json::json!({ "field": "status" })));
        }
    };
    let model_config = checks::model_config(req.model_config.clone())?;
    let checked = checks::content(
        store,
        &actor.project,
        &name,
        &req.template,
        &req.variables,
        &model_config,
    )
    .await?;
    let first_version = NewVersion {
        template: req.template.clone(),
        variables: req.variables.clone(),
        model_config,
        commit_message: req.commit_message.clone(),
        parent: None,
        content_hash: checked.content_hash,
        includes: checked.includes,
        breaking_changes: Vec::new(),
    };
    let op = WriteOp::CreatePrompt {
        name,
        kind: req.template.kind(),
        description,
        tags,
        status,
        first_version,
    };
    let (prompt, version) = created_prompt(store.apply(actor, vec![op]).await?)?;
    Ok(PromptCreated {
        prompt,
        version,
        warnings: checked.warnings,
    })
}

fn created_prompt(outcomes: Vec<WriteOutcome>) -> Result<(PromptRecord, VersionRecord)> {
    match outcomes.into_iter().next() {
        Some(WriteOutcome::Prompt {
            prompt,
            first_version: Some(version),
        }) => Ok((prompt, version)),
        other => Err(unexpected("CreatePrompt", &other)),
    }
}

pub(crate) fn unexpected(op: &str, outcome: &dyn std::fmt::Debug) -> Error {
    Error::Store(StoreError::Backend(format!(
        "store answered {op} with {outcome:?}"
    )))
}

/// One prompt of the project.
pub async fn get(store: &dyn Store, project: &ProjectId, name: &str) -> Result<PromptRecord> {
    prompt_or_404(store, project, name).await
}

/// A page of the project's prompts matching `filter`.
pub async fn list(
    store: &dyn Store,
    project: &ProjectId,
    filter: &PromptFilter,
    page: &PageRequest,
) -> Result<Page<PromptRecord>> {
    Ok(store.list_prompts(project, filter, page).await?)
}

/// Change description and/or tags. `expected_revision` is what the caller read (If-Match):
/// when the prompt changed since, nothing is written and the answer is `precondition_failed`.
pub async fn update(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    expected_revision: u64,
    req: &UpdatePrompt,
) -> Result<PromptRecord> {
    let description = req
        .description
        .as_deref()
        .map(checks::description)
        .transpose()?;
    let tags = req.tags.as_deref().map(checks::tags).transpose()?;
    let current = prompt_or_404(store, &actor.project, name).await?;
    if current.revision != expected_revision {
        return Err(stale_revision(name, expected_revision, current.revision));
    }
    let op = WriteOp::UpdatePrompt {
        name: name.to_owned(),
        expected_revision: Some(expected_revision),
        description,
        tags,
    };
    match store.apply(actor, vec![op]).await {
        Ok(outcomes) => match outcomes.into_iter().next() {
            Some(WriteOutcome::Prompt { prompt, .. }) => Ok(prompt),
            other => Err(unexpected("UpdatePrompt", &other)),
        },
        // The revision moved between our read and the write: same answer as a stale read.
        Err(StoreError::Conflict { .. }) => Err(stale_revision(
            name,
            expected_revision,
            current.revision + 1,
        )),
        Err(e) => Err(e.into()),
    }
}

fn stale_revision(name: &str, expected: u64, current: u64) -> Error {
    Error::rejected(
        ErrorCode::PreconditionFailed,
        format!("prompt '{name}' changed since it was read (revision {expected}, now {current}); reload and retry"),
    )
    .with_details(serde_json::json!({ "expected_revision": expected, "current_revision": current }))
}

/// Fork version `number` of prompt `name` into a new prompt whose version 1 copies it and
/// records it as its parent.
pub async fn fork(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    number: u32,
    req: &ForkVersion,
) -> Result<PromptCreated> {
    let source_prompt = prompt_or_404(store, &actor.project, name).await?;
    let source = version_or_404(store, &actor.project, name, number).await?;
    let new_name = checks::prompt_name(&req.name)?;
    let description = match &req.description {
        Some(d) => checks::description(d)?,
        None => source_prompt.description.clone(),
    };
    let tags = match &req.tags {
        Some(t) => checks::tags(t)?,
        None => source_prompt.tags.clone(),
    };
    let checked = checks::content(
        store,
        &actor.project,
        &new_name,
        &source.template,
        &source.variables,
        &source.model_config,
    )
    .await?;
    let commit_message = req
        .commit_message
        .clone()
        .unwrap_or_else(|| format!("forked from {name}@{number}"));
    let op = WriteOp::CreatePrompt {
        name: new_name,
        kind: source_prompt.kind,
        description,
        tags,
        status: PromptStatus::Draft,
        first_version: NewVersion {
            template: source.template.clone(),
            variables: source.variables.clone(),
            model_config: source.model_config.clone(),
            commit_message,
            parent: Some((name.to_owned(), number)),
            content_hash: checked.content_hash,
            includes: checked.includes,
            breaking_changes: Vec::new(),
        },
    };
    let (prompt, version) = created_prompt(store.apply(actor, vec![op]).await?)?;
    Ok(PromptCreated {
        prompt,
        version,
        warnings: checked.warnings,
    })
}

/// What still depends on a prompt: its labels (other than `latest`) and the live versions
/// of other prompts that include it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependents {
    pub labels: Vec<String>,
    pub prompts: Vec<promptstore_types::Dependent>,
}

impl Dependents {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.prompts.is_empty()
    }
}

pub(crate) async fn dependents_of(store: &dyn Store, prompt: &PromptRecord) -> Result<Dependents> {
    let labels = prompt
        .labels
        .keys()
        .filter(|l| l.as_str() != LATEST_LABEL)
        .cloned()
        .collect();
    let edges = store.live_include_edges(&prompt.project).await?;
    let prompts = crate::graph::dependents(&edges, &prompt.name)
        .into_iter()
        .filter(|d| d.prompt != prompt.name)
        .collect();
    Ok(Dependents { labels, prompts })
}

/// Delete a prompt. Refused with `has_dependents` (naming them) while a label other than
/// `latest` or another prompt's live version depends on it, unless `force`.
pub async fn delete(store: &dyn Store, actor: &Actor, name: &str, force: bool) -> Result<()> {
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    let dependents = dependents_of(store, &prompt).await?;
    if !dependents.is_empty() && !force {
        return Err(Error::rejected(
            ErrorCode::HasDependents,
            format!(
                "prompt '{name}' is still in use ({} label(s), {} dependent prompt version(s)); pass force=true to delete anyway",
                dependents.labels.len(),
                dependents.prompts.len()
            ),
        )
        .with_details(serde_json::json!({
            "labels": dependents.labels,
            "dependents": dependents.prompts,
        })));
    }
    store
        .apply(
            actor,
            vec![WriteOp::DeletePrompt {
                name: name.to_owned(),
            }],
        )
        .await?;
    Ok(())
}
