//! Projects: creating a tenant with its first admin key, reading it, and its settings.

use promptstore_types::{CreateProject, SetProtectedLabels};

use crate::error::{Error, Result};
use crate::model::{Actor, ApiKeyRecord, NewApiKey, ProjectId, ProjectRecord};
use crate::service::checks;
use crate::service::keys::KeyMaterial;
use crate::store::Store;

/// Labels protected in a new project unless the operator changes them.
pub const DEFAULT_PROTECTED_LABELS: &[&str] = &["production"];

/// Name of the first key of a project.
pub const FIRST_KEY_NAME: &str = "admin";

/// Create a project with the default protected labels and its first admin key.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    req: &CreateProject,
    first_key: &KeyMaterial,
) -> Result<(ProjectRecord, ApiKeyRecord)> {
    crate::names::validate_project_name(&req.name)?;
    let protected: Vec<String> = DEFAULT_PROTECTED_LABELS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let key = NewApiKey {
        id: first_key.id.clone(),
        name: FIRST_KEY_NAME.to_owned(),
        role: promptstore_types::Role::Admin,
        secret_hash: first_key.secret_hash.clone(),
    };
    Ok(store
        .create_project(actor, &req.name, &protected, key)
        .await?)
}

/// The project a key belongs to.
pub async fn get(store: &dyn Store, project: &ProjectId) -> Result<ProjectRecord> {
    store
        .get_project(project)
        .await?
        .ok_or_else(|| Error::not_found(format!("project '{project}'")))
}

/// Replace the protected labels of the actor's project.
pub async fn set_protected_labels(
    store: &dyn Store,
    actor: &Actor,
    req: &SetProtectedLabels,
) -> Result<ProjectRecord> {
    let mut labels = Vec::with_capacity(req.labels.len());
    for label in &req.labels {
        let label = checks::label_name(label)?;
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    Ok(store.set_protected_labels(actor, &labels).await?)
}
