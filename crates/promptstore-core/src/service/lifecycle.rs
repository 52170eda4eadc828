//! Lifecycle transitions of a prompt (`draft → active → deprecated → archived`).

use promptstore_types::{ErrorCode, PromptStatus, TransitionPrompt};

use crate::error::{Error, Result};
use crate::model::{Actor, LATEST_LABEL, PromptRecord};
use crate::service::prompts::unexpected;
use crate::service::{checks, prompt_or_404};
use crate::store::{Store, StoreError, WriteOp, WriteOutcome};

/// Move prompt `name` to `req.status`. Archiving a prompt that holds labels (other than
/// `latest`) is refused with `has_dependents` unless `force`, which removes them.
pub async fn transition(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    req: &TransitionPrompt,
) -> Result<PromptRecord> {
    let prompt = prompt_or_404(store, &actor.project, name).await?;
    checks::transition(prompt.status, req.status)?;
    let labels: Vec<&String> = prompt
        .labels
        .keys()
        .filter(|l| l.as_str() != LATEST_LABEL)
        .collect();
    if req.status == PromptStatus::Archived && !labels.is_empty() && !req.force {
        return Err(Error::rejected(
            ErrorCode::HasDependents,
            format!(
                "prompt '{name}' still holds labels ({}); an archived prompt cannot hold labels — pass force to remove them",
                labels.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_details(serde_json::json!({ "labels": labels })));
    }
    let op = WriteOp::SetStatus {
        name: name.to_owned(),
        expected_status: prompt.status,
        status: req.status,
        remove_labels: req.force,
    };
    let outcomes = store.apply(actor, vec![op]).await.map_err(|e| match e {
        StoreError::Conflict { .. } => Error::rejected(
            ErrorCode::Conflict,
            format!("prompt '{name}' changed status meanwhile; reload and retry"),
        ),
        other => other.into(),
    })?;
    match outcomes.into_iter().next() {
        Some(WriteOutcome::Prompt { prompt, .. }) => Ok(prompt),
        other => Err(unexpected("SetStatus", &other)),
    }
}
