//! The include graph around one prompt: what it includes and who includes it.

use promptstore_types::Dependencies;

use crate::error::Result;
use crate::model::ProjectId;
use crate::service::prompt_or_404;
use crate::service::prompts::dependents_of;
use crate::store::Store;

/// Both directions of the include graph of prompt `name`, over live versions.
pub async fn of(store: &dyn Store, project: &ProjectId, name: &str) -> Result<Dependencies> {
    let prompt = prompt_or_404(store, project, name).await?;
    let edges = store.live_include_edges(project).await?;
    let includes = crate::graph::dependencies(&edges, name);
    let included_by = dependents_of(store, &prompt).await?.prompts;
    Ok(Dependencies {
        prompt: name.to_owned(),
        includes,
        included_by,
    })
}
