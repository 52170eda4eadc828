//! The audit log of the caller's project.

use axum::extract::State;
use promptstore_core::convert;
use promptstore_core::service::audit;
use promptstore_core::store::AuditFilter;
use promptstore_types::{AuditRecord, ErrorBody, Page, Role};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiResult, Json, Query};
use crate::routes::common::{page, parse_time, wire_page};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `label.moved`.
    pub action: Option<String>,
    /// `prompt`, `version`, `label`, `key`, `project`.
    pub object_type: Option<String>,
    /// e.g. `support/triage#production`.
    pub object_id: Option<String>,
    /// Key id of the actor.
    pub actor: Option<String>,
    /// RFC 3339: records at or after.
    pub since: Option<String>,
    /// RFC 3339: records before.
    pub until: Option<String>,
    pub cursor: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let actor = auth.require(Role::Admin)?;
    let page = page(q.cursor, q.limit)?;
    let filter = AuditFilter {
        action: q.action,
        object_type: q.object_type,
        object_id: q.object_id,
        actor: q.actor,
        since: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
    };
    let found = audit::list(state.store(), actor, &filter, &page).await?;
    Ok(Json(wire_page(found, convert::audit)))
}
