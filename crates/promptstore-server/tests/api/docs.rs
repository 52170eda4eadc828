//! The OpenAPI document, the docs page, health and readiness.

use promptstore_client::Method;

use crate::harness::*;

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let s = TestServer::start().await;
    let doc = s.client("").openapi().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/api/v1/project", "get"),
        ("/api/v1/projects", "post"),
        ("/api/v1/project/protected-labels", "put"),
        ("/api/v1/keys", "get"),
        ("/api/v1/keys", "post"),
        ("/api/v1/keys/{id}", "delete"),
        ("/api/v1/prompts", "get"),
        ("/api/v1/prompts", "post"),
        ("/api/v1/prompts/{name}", "get"),
        ("/api/v1/prompts/{name}", "patch"),
        ("/api/v1/prompts/{name}", "delete"),
        ("/api/v1/prompts/{name}/status", "post"),
        ("/api/v1/prompts/{name}/versions", "get"),
        ("/api/v1/prompts/{name}/versions", "post"),
        ("/api/v1/prompts/{name}/versions/{n}", "get"),
        ("/api/v1/prompts/{name}/versions/{n}/fork", "post"),
        ("/api/v1/prompts/{name}/diff", "get"),
        ("/api/v1/prompts/{name}/labels", "get"),
        ("/api/v1/prompts/{name}/labels/{label}", "get"),
        ("/api/v1/prompts/{name}/labels/{label}", "put"),
        ("/api/v1/prompts/{name}/labels/{label}", "delete"),
        ("/api/v1/prompts/{name}/labels/{label}/rollback", "post"),
        ("/api/v1/prompts/{name}/history", "get"),
        ("/api/v1/prompts/{name}/dependencies", "get"),
        ("/api/v1/resolve", "get"),
        ("/api/v1/resolve/bulk", "get"),
        ("/api/v1/render", "post"),
        ("/api/v1/changes", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/export", "get"),
        ("/api/v1/import", "post"),
        ("/api/v1/experiments", "get"),
        ("/api/v1/experiments", "post"),
        ("/api/v1/experiments/{id}", "get"),
        ("/api/v1/experiments/{id}", "put"),
        ("/api/v1/experiments/{id}", "delete"),
        ("/api/v1/experiments/{id}/start", "post"),
        ("/api/v1/experiments/{id}/stop", "post"),
        ("/api/v1/experiments/{id}/conclude", "post"),
        ("/api/v1/experiments/{id}/arms", "put"),
        ("/api/v1/experiments/{id}/results", "get"),
        ("/api/v1/experiments/{id}/history", "get"),
        ("/api/v1/abtest/analyze", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("api_key"));
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "CreatePrompt",
        "ErrorBody",
        "ResolvedPrompt",
        "ProjectExport",
        "Experiment",
        "ExperimentResults",
        "CreateExperiment",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    // Every $ref points at a schema that exists.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}

#[tokio::test]
async fn docs_page_health_and_ready() {
    let s = TestServer::start().await;
    let anon = s.client("");
    let page = anon
        .raw(Method::GET, "/api/v1/docs/", &[], None)
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.text().to_lowercase().contains("swagger"),
        "{}",
        page.text()
    );
    let health = anon.health().await.unwrap();
    assert_eq!(health.status, "ok");
    let ready = anon.ready().await.unwrap();
    assert_eq!(ready.status, "ready");
}
