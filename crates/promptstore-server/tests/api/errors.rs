//! Bad input of every kind gets a 4xx in the one JSON error shape, never a 500.

use promptstore_client::types::VarType;
use promptstore_client::{ErrorCode, Method, RawResponse};
use promptstore_server::ServerConfig;

use crate::harness::*;

async fn post(s: &TestServer, path: &str, content_type: Option<&str>, body: &[u8]) -> RawResponse {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| vec![("content-type", c)])
        .unwrap_or_default();
    s.admin
        .raw(Method::POST, path, &headers, Some(body.to_vec()))
        .await
        .unwrap()
}

fn check(r: &RawResponse, status: u16, code: ErrorCode, fragment: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    let e = r.error().unwrap();
    assert_eq!(e.code, code, "{}", r.text());
    assert!(
        e.message.contains(fragment),
        "message {:?} lacks {fragment:?}",
        e.message
    );
}

#[tokio::test]
async fn malformed_bodies() {
    let s = TestServer::start().await;
    let json = Some("application/json");
    check(
        &post(&s, "/api/v1/prompts", json, b"{not json").await,
        400,
        ErrorCode::InvalidJson,
        "",
    );
    check(
        &post(
            &s,
            "/api/v1/prompts",
            json,
            br#"{"name": 5, "template": {"type":"text","text":"x"}}"#,
        )
        .await,
        400,
        ErrorCode::InvalidJson,
        "name",
    );
    check(
        &post(
            &s,
            "/api/v1/prompts",
            json,
            br#"{"name": "a", "template": {"type":"text","text":"x"}, "colour": 1}"#,
        )
        .await,
        400,
        ErrorCode::InvalidJson,
        "colour",
    );
    check(
        &post(
            &s,
            "/api/v1/prompts",
            json,
            br#"{"template": {"type":"text","text":"x"}}"#,
        )
        .await,
        400,
        ErrorCode::InvalidJson,
        "name",
    );
    check(
        &post(
            &s,
            "/api/v1/prompts",
            Some("text/plain"),
            br#"{"name":"a","template":{"type":"text","text":"x"}}"#,
        )
        .await,
        415,
        ErrorCode::UnsupportedMediaType,
        "application/json",
    );
    check(
        &post(&s, "/api/v1/prompts", None, b"{}").await,
        415,
        ErrorCode::UnsupportedMediaType,
        "",
    );
    // Nothing was written by any of these.
    assert!(
        s.admin
            .list_prompts(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn oversized_body_is_413_in_our_shape() {
    let config = ServerConfig {
        body_limit_bytes: 4096,
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(config).await;
    let big = format!(
        r#"{{"name":"big","template":{{"type":"text","text":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    check(
        &post(
            &s,
            "/api/v1/prompts",
            Some("application/json"),
            big.as_bytes(),
        )
        .await,
        413,
        ErrorCode::PayloadTooLarge,
        "larger",
    );
    // Under the limit it works.
    let small = r#"{"name":"small","template":{"type":"text","text":"ok"}}"#;
    assert_eq!(
        post(
            &s,
            "/api/v1/prompts",
            Some("application/json"),
            small.as_bytes()
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_objects() {
    let s = TestServer::start().await;
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/nope", &[], None)
        .await
        .unwrap();
    check(&r, 404, ErrorCode::NotFound, "no route");
    let r = s
        .admin
        .raw(Method::PATCH, "/api/v1/keys", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 405);
    assert!(r.error().is_some());
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    // The runtime routes live in their own router (no request timeout): same answer.
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/render", &[], None)
        .await
        .unwrap();
    check(&r, 405, ErrorCode::InvalidRequest, "not allowed");

    assert_eq!(
        code(s.admin.get_prompt("missing").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.get_version("missing", 1).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.get_label("missing", "production").await),
        ErrorCode::NotFound
    );
    s.admin
        .create_prompt(&new_prompt("here", text("x"), vec![]))
        .await
        .unwrap();
    assert_eq!(
        code(s.admin.get_version("here", 2).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.get_label("here", "production").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.set_label("here", "production", &to(7)).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.remove_label("here", "staging").await),
        ErrorCode::NotFound
    );

    // A version number that is not a number is a path error, not a 500.
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/prompts/here/versions/abc", &[], None)
        .await
        .unwrap();
    check(&r, 400, ErrorCode::InvalidRequest, "");
    // Query parameters of the wrong type too.
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/prompts?limit=lots", &[], None)
        .await
        .unwrap();
    check(&r, 400, ErrorCode::InvalidRequest, "");
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/prompts?status=sleeping", &[], None)
        .await
        .unwrap();
    check(&r, 400, ErrorCode::InvalidRequest, "");
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/prompts/here/diff?from=1", &[], None)
        .await
        .unwrap();
    check(&r, 400, ErrorCode::InvalidRequest, "to");
}

#[tokio::test]
async fn invalid_names_and_templates() {
    let s = TestServer::start().await;
    for bad in [
        "",
        "/lead",
        "trail/",
        "a//b",
        "sp ace",
        "../up",
        &"x".repeat(201),
    ] {
        let (status, body) = api_error(
            s.admin
                .create_prompt(&new_prompt(bad, text("x"), vec![]))
                .await,
        );
        assert_eq!(
            (status, body.code),
            (400, ErrorCode::InvalidName),
            "{bad:?}"
        );
    }
    s.admin
        .create_prompt(&new_prompt("ok", text("x"), vec![]))
        .await
        .unwrap();
    assert_eq!(
        code(
            s.admin
                .create_prompt(&new_prompt("ok", text("y"), vec![]))
                .await
        ),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        code(s.admin.set_label("ok", "Bad Label", &to(1)).await),
        ErrorCode::InvalidName
    );
    assert_eq!(
        code(s.admin.set_label("ok", "latest", &to(1)).await),
        ErrorCode::ReservedLabel
    );
    let mut tagged = new_prompt("tags", text("x"), vec![]);
    tagged.tags = vec!["has space".into()];
    assert_eq!(
        code(s.admin.create_prompt(&tagged).await),
        ErrorCode::InvalidName
    );

    let (status, body) = api_error(
        s.admin
            .create_prompt(&new_prompt("syntax", text("Hello {{ name"), vec![]))
            .await,
    );
    assert_eq!((status, body.code), (422, ErrorCode::TemplateSyntax));
    assert!(body.details.get("line").is_some(), "{body:?}");
    let (_, body) = api_error(
        s.admin
            .create_version(
                "ok",
                &new_version(text("{% if x %}open"), vec![var("x", VarType::Boolean)]),
            )
            .await,
    );
    assert_eq!(body.code, ErrorCode::TemplateSyntax);
    let mut bad_status = new_prompt("archived-at-birth", text("x"), vec![]);
    bad_status.status = Some(promptstore_client::types::PromptStatus::Archived);
    assert_eq!(
        code(s.admin.create_prompt(&bad_status).await),
        ErrorCode::InvalidRequest
    );
    let mut bad_config = new_prompt("config", text("x"), vec![]);
    bad_config.model_config = Some(serde_json::json!([1, 2]));
    assert_eq!(
        code(s.admin.create_prompt(&bad_config).await),
        ErrorCode::InvalidRequest
    );
}
