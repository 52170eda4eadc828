//! API key authentication from an in-memory key table, and per-route role checks.
//!
//! The table (key id → secret hash, project, role) is loaded at start and reloaded after
//! every key creation or revocation, so authenticating a request never waits on the
//! database. Hashes are compared in constant time.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use promptstore_core::model::{Actor, ApiKeyRecord, ProjectId};
use promptstore_core::service::keys::{key_id_of, parse_secret_hash, secret_digest};
use promptstore_core::store::Store;
use promptstore_types::{API_KEY_HEADER, ErrorCode, Role};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
struct KeyEntry {
    secret_hash: [u8; 32],
    project: ProjectId,
    role: Role,
}

/// The active keys of every project, swapped whole on reload.
#[derive(Debug, Default)]
pub struct KeyTable {
    /// foldhash: looked up by key digest on every request; digests are SHA-256 outputs,
    /// nothing a caller can aim at one bucket.
    keys: ArcSwap<foldhash::HashMap<String, KeyEntry>>,
}

impl KeyTable {
    /// Replace the table with the store's active keys.
    pub async fn reload(
        &self,
        store: &dyn Store,
    ) -> Result<(), promptstore_core::store::StoreError> {
        let keys = store.active_api_keys().await?;
        self.keys.store(Arc::new(table_of(keys)));
        Ok(())
    }

    /// The actor a presented secret authenticates, if any.
    pub fn authenticate(&self, secret: &str) -> Option<Actor> {
        let id = key_id_of(secret)?;
        let keys = self.keys.load();
        let entry = keys.get(id)?;
        let presented = secret_digest(secret);
        if bool::from(presented.ct_eq(&entry.secret_hash)) {
            Some(Actor {
                project: entry.project.clone(),
                key_id: id.to_owned(),
                role: entry.role,
            })
        } else {
            None
        }
    }
}

fn table_of(keys: Vec<ApiKeyRecord>) -> foldhash::HashMap<String, KeyEntry> {
    keys.into_iter()
        .filter(|k| k.revoked_at.is_none())
        .filter_map(|k| {
            let Some(secret_hash) = parse_secret_hash(&k.secret_hash) else {
                // Only a damaged database row can get here: that key cannot authenticate.
                tracing::error!(key = %k.id, "stored key hash is not 64 hex digits; key disabled");
                return None;
            };
            Some((
                k.id,
                KeyEntry {
                    secret_hash,
                    project: k.project,
                    role: k.role,
                },
            ))
        })
        .collect()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

impl Auth {
    /// Refuse unless the key's role includes `needed` (admin ⊃ editor ⊃ viewer ⊃ runtime,
    /// where `runtime` reaches only the runtime endpoints).
    pub fn require(&self, needed: Role) -> Result<&Actor, ApiError> {
        if self.0.role >= needed {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this needs a key with role '{}' or higher; this key is '{}'", needed.as_str(), self.0.role.as_str()),
            )
            .with_details(serde_json::json!({ "required_role": needed.as_str(), "role": self.0.role.as_str() })))
        }
    }
}

fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state.keys(), &parts.headers).map(Auth)
    }
}

/// The caller named by a request's API key header, or the 401 to answer.
pub fn authenticate(keys: &KeyTable, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let Some(secret) = presented_secret(headers) else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "an API key is required: send 'Authorization: Bearer ps_…' or 'X-API-Key: ps_…'",
        ));
    };
    keys.authenticate(secret)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the API key is unknown or revoked"))
}
