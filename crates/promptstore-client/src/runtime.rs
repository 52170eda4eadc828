//! Typed calls of the runtime path (resolve, bulk resolve, render) and of the unauthenticated
//! service routes (health, readiness, the OpenAPI document).

use promptstore_types::{
    BulkResolved, HealthStatus, RenderRequest, RenderedPrompt, ResolvedPrompt, Selector,
};
use reqwest::Method;

use crate::client::{Client, Fetched, Tagged, encode_body};
use crate::encode::query_string;
use crate::error::ClientError;

pub(crate) fn resolve_path(name: &str, selector: &Selector, unit_id: Option<&str>) -> String {
    let (label, version) = match selector {
        Selector::Label(label) => (Some(label.clone()), None),
        Selector::Version(number) => (None, Some(number.to_string())),
    };
    let query = query_string([
        ("name", Some(name.to_string())),
        ("label", label),
        ("version", version),
        ("unit_id", unit_id.map(str::to_string)),
    ]);
    format!("/api/v1/resolve{query}")
}

impl Client {
    /// Liveness.
    pub async fn health(&self) -> Result<HealthStatus, ClientError> {
        self.get_json("/health").await
    }

    /// Readiness: an error (503 `unavailable`) while the server cannot serve.
    pub async fn ready(&self) -> Result<HealthStatus, ClientError> {
        self.get_json("/ready").await
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/api/v1/openapi.json").await
    }

    /// The version of `name` to use, by label or number; `unit_id` makes experiment
    /// assignment sticky for a user or session.
    pub async fn resolve(
        &self,
        name: &str,
        selector: &Selector,
        unit_id: Option<&str>,
    ) -> Result<ResolvedPrompt, ClientError> {
        self.get_json(&resolve_path(name, selector, unit_id)).await
    }

    /// [`Client::resolve`] with `If-None-Match`: `NotModified` when `etag` is still current.
    pub async fn resolve_conditional(
        &self,
        name: &str,
        selector: &Selector,
        unit_id: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Fetched<ResolvedPrompt>, ClientError> {
        self.get_conditional(&resolve_path(name, selector, unit_id), etag)
            .await
    }

    /// Every non-archived prompt that has `label`, in one call (to pre-warm a cache).
    pub async fn bulk_resolve(&self, label: &str) -> Result<BulkResolved, ClientError> {
        self.get_json(&format!(
            "/api/v1/resolve/bulk{}",
            query_string([("label", Some(label.to_string()))])
        ))
        .await
    }

    /// [`Client::bulk_resolve`] with `If-None-Match`.
    pub async fn bulk_resolve_conditional(
        &self,
        label: &str,
        etag: Option<&str>,
    ) -> Result<Fetched<BulkResolved>, ClientError> {
        let path = format!(
            "/api/v1/resolve/bulk{}",
            query_string([("label", Some(label.to_string()))])
        );
        self.get_conditional(&path, etag).await
    }

    /// Renders a prompt with variables on the server.
    pub async fn render(&self, request: &RenderRequest) -> Result<RenderedPrompt, ClientError> {
        self.send_json(Method::POST, "/api/v1/render", request)
            .await
    }

    /// [`Client::render`] with the answer's `ETag`.
    pub async fn render_tagged(
        &self,
        request: &RenderRequest,
    ) -> Result<Tagged<RenderedPrompt>, ClientError> {
        let answer = self
            .call(
                Method::POST,
                "/api/v1/render",
                &[],
                Some(encode_body(request)?),
            )
            .await?
            .ok()?;
        Ok(Tagged {
            value: answer.decode("/api/v1/render")?,
            etag: answer.etag(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_paths_carry_the_selector() {
        assert_eq!(
            resolve_path(
                "support/triage",
                &Selector::Label("production".into()),
                None
            ),
            "/api/v1/resolve?name=support%2Ftriage&label=production"
        );
        assert_eq!(
            resolve_path("a", &Selector::Version(3), Some("user 7")),
            "/api/v1/resolve?name=a&version=3&unit_id=user%207"
        );
    }
}
