//! Versions: save a new one (deduplicated, conflict-checked, contract-checked), read, list
//! and diff.

use promptstore_types::{CreateVersion, ErrorCode, PromptStatus, VersionDiff, Warning};

use crate::error::{Error, Result};
use crate::model::{Actor, NewVersion, ProjectId, VersionRecord};
use crate::service::prompts::unexpected;
use crate::service::{checks, prompt_or_404, version_or_404};
use crate::store::{Page, PageRequest, Store, StoreError, WriteOp, WriteOutcome};

/// The result of a save. `created` is false when the content equalled the newest version:
/// nothing was written and `version` is that newest version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionCreated {
    pub created: bool,
    pub version: VersionRecord,
    pub warnings: Vec<Warning>,
}

/// Save a new version of prompt `name`.
///
/// When `model_config` is omitted the newest version's config is kept: editing a template
/// should not silently drop the model settings.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    req: &CreateVersion,
) -> Result<VersionCreated> {
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    if prompt.status == PromptStatus::Archived {
        return Err(Error::rejected(
            ErrorCode::PromptArchived,
            format!("prompt '{name}' is archived; restore it before adding versions"),
        ));
    }
    if req.template.kind() != prompt.kind {
        return Err(Error::rejected(
            ErrorCode::InvalidRequest,
            format!(
                "prompt '{name}' is a {} prompt; a version cannot change it to {}",
                prompt.kind.as_str(),
                req.template.kind().as_str()
            ),
        )
        .with_details(serde_json::json!({ "field": "template.type" })));
    }
    let latest = prompt.latest_version;
    if let Some(base) = req.base_version
        && base != latest
    {
        return Err(Error::rejected(
            ErrorCode::Conflict,
            format!("version {base} is no longer the newest of '{name}' (now {latest}); rebase your edit on it"),
        )
        .with_details(serde_json::json!({ "base_version": base, "latest_version": latest })));
    }
    let newest = version_or_404(store, &actor.project, name, latest).await?;
    let model_config = match &req.model_config {
        Some(c) => checks::model_config(Some(c.clone()))?,
        None => newest.model_config.clone(),
    };
    let checked = checks::content(
        store,
        &actor.project,
        name,
        &req.template,
        &req.variables,
        &model_config,
    )
    .await?;
    if checked.content_hash == newest.content_hash {
        return Ok(VersionCreated {
            created: false,
            version: newest,
            warnings: checked.warnings,
        });
    }
    let breaking_changes = checks::breaking_changes(&newest.variables, &req.variables);
    let op = WriteOp::CreateVersion {
        name: name.to_owned(),
        expected_latest: Some(latest),
        version: NewVersion {
            template: req.template.clone(),
            variables: req.variables.clone(),
            model_config,
            commit_message: req.commit_message.clone(),
            parent: Some((name.to_owned(), latest)),
            content_hash: checked.content_hash,
            includes: checked.includes,
            breaking_changes,
        },
    };
    let outcomes = store.apply(actor, vec![op]).await.map_err(|e| match e {
        StoreError::Conflict { .. } => Error::rejected(
            ErrorCode::Conflict,
            format!("another version of '{name}' was saved meanwhile; reload and retry"),
        )
        .with_details(serde_json::json!({ "latest_version": latest })),
        other => other.into(),
    })?;
    match outcomes.into_iter().next() {
        Some(WriteOutcome::Version(version)) => Ok(VersionCreated {
            created: true,
            version,
            warnings: checked.warnings,
        }),
        other => Err(unexpected("CreateVersion", &other)),
    }
}

/// One version.
pub async fn get(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    number: u32,
) -> Result<VersionRecord> {
    prompt_or_404(store, project, name).await?;
    version_or_404(store, project, name, number).await
}

/// A page of versions, newest first.
pub async fn list(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    page: &PageRequest,
) -> Result<(crate::model::PromptRecord, Page<VersionRecord>)> {
    let prompt = prompt_or_404(store, project, name).await?;
    let versions = store.list_versions(project, name, page).await?;
    Ok((prompt, versions))
}

/// Diff two versions of one prompt.
pub async fn diff(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    from: u32,
    to: u32,
) -> Result<VersionDiff> {
    prompt_or_404(store, project, name).await?;
    let a = version_or_404(store, project, name, from).await?;
    let b = version_or_404(store, project, name, to).await?;
    Ok(checks::diff(&a, &b))
}
