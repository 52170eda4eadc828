//! The use cases: each public function is one thing a caller can ask of the registry,
//! orchestrating the pure domain rules over a `&dyn Store`. The server maps HTTP onto these
//! and nothing else; no use case knows about HTTP, SQL or where randomness comes from.

pub mod analytics;
pub mod audit;
pub mod dependencies;
pub mod experiments;
pub mod keys;
pub mod labels;
pub mod lifecycle;
pub mod projects;
pub mod prompts;
pub mod transfer;
pub mod versions;

mod checks;

use crate::error::{Error, Result};
use crate::model::{ProjectId, PromptRecord, VersionRecord};
use crate::store::Store;

/// The most a list page may hold; larger requests are refused rather than silently cut.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// Load a prompt of the project or answer `not_found` naming it.
pub async fn prompt_or_404(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
) -> Result<PromptRecord> {
    store
        .get_prompt(project, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("prompt '{name}'")))
}

/// Load one version of a prompt of the project or answer `not_found` naming it.
pub async fn version_or_404(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    number: u32,
) -> Result<VersionRecord> {
    store
        .get_version(project, name, number)
        .await?
        .ok_or_else(|| Error::not_found(format!("version {number} of prompt '{name}'")))
}
