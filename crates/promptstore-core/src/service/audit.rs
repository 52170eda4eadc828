//! Listing the audit log of a project.

use crate::error::Result;
use crate::model::{Actor, AuditEntry};
use crate::store::{AuditFilter, Page, PageRequest, Store};

/// Audit records of the actor's project, newest first.
pub async fn list(
    store: &dyn Store,
    actor: &Actor,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEntry>> {
    Ok(store.list_audit(&actor.project, filter, page).await?)
}
