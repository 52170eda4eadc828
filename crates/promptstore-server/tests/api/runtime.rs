//! The runtime path: includes, strict variables, render limits, ETags and the change stream.

use std::time::Duration;

use futures_util::StreamExt;
use promptstore_client::types::{RenderRequest, VarType, VariableSpec};
use promptstore_client::{ErrorCode, Fetched, Selector};

use crate::harness::*;

fn render_req(name: &str, label: Option<&str>, vars: serde_json::Value) -> RenderRequest {
    RenderRequest {
        name: name.to_owned(),
        label: label.map(str::to_owned),
        version: None,
        variables: vars.as_object().cloned().unwrap_or_default(),
        unit_id: None,
    }
}

#[tokio::test]
async fn includes_by_label_and_by_version() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("parts/header", text("HEADER v1"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_version("parts/header", &new_version(text("HEADER v2"), vec![]))
        .await
        .unwrap();
    s.admin
        .set_label("parts/header", "production", &to(1))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt(
            "main",
            text(r#"{% include "parts/header@production" %} | {% include "parts/header@2" %} | {{ x }}"#),
            vec![var("x", VarType::String)],
        ))
        .await
        .unwrap();
    let out = s
        .admin
        .render(&render_req("main", None, serde_json::json!({"x": "body"})))
        .await
        .unwrap();
    assert_eq!(out.text.as_deref(), Some("HEADER v1 | HEADER v2 | body"));

    // Moving the included label changes the render at once.
    s.admin
        .set_label("parts/header", "production", &to(2))
        .await
        .unwrap();
    let out = s
        .admin
        .render(&render_req("main", None, serde_json::json!({"x": "body"})))
        .await
        .unwrap();
    assert_eq!(out.text.as_deref(), Some("HEADER v2 | HEADER v2 | body"));

    let deps = s.admin.dependencies("main").await.unwrap();
    assert_eq!(deps.includes.len(), 2);
    let used_by = s.admin.dependencies("parts/header").await.unwrap();
    assert_eq!(used_by.included_by.len(), 2);
    assert!(used_by.included_by.iter().all(|d| d.prompt == "main"));

    // Including something that does not exist is refused on save.
    let r = s
        .admin
        .create_prompt(&new_prompt(
            "broken",
            text(r#"{% include "nope@latest" %}"#),
            vec![],
        ))
        .await;
    assert_eq!(code(r), ErrorCode::InvalidRequest);
    let r = s
        .admin
        .create_prompt(&new_prompt(
            "broken",
            text(r#"{% include "parts/header@9" %}"#),
            vec![],
        ))
        .await;
    assert_eq!(code(r), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn include_cycles_are_refused_on_save() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("a", text("A"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt(
            "b",
            text(r#"B {% include "a@latest" %}"#),
            vec![],
        ))
        .await
        .unwrap();
    let (st, body) = api_error(
        s.admin
            .create_version(
                "a",
                &new_version(text(r#"A {% include "b@latest" %}"#), vec![]),
            )
            .await,
    );
    assert_eq!((st, body.code), (409, ErrorCode::IncludeCycle));
    assert!(body.message.contains("a → b → a"), "{}", body.message);
    let (_, body) = api_error(
        s.admin
            .create_version("a", &new_version(text(r#"{% include "a@1" %}"#), vec![]))
            .await,
    );
    assert_eq!(body.code, ErrorCode::IncludeCycle);
    assert_eq!(s.admin.get_prompt("a").await.unwrap().latest_version, 1);
}

#[tokio::test]
async fn variables_are_strict_and_named() {
    let s = TestServer::start().await;
    let mut optional = var("tone", VarType::String);
    optional.required = false;
    optional.default = Some(serde_json::json!("friendly"));
    let count = VariableSpec {
        allowed: None,
        ..var("count", VarType::Number)
    };
    s.admin
        .create_prompt(&new_prompt(
            "v",
            text("{{ name }} x{{ count }} ({{ tone }})"),
            vec![var("name", VarType::String), count, optional],
        ))
        .await
        .unwrap();
    let (st, body) = api_error(
        s.admin
            .render(&render_req("v", None, serde_json::json!({"count": 2})))
            .await,
    );
    assert_eq!((st, body.code), (422, ErrorCode::MissingVariable));
    assert!(body.message.contains("name"), "{}", body.message);
    let (st, body) = api_error(
        s.admin
            .render(&render_req(
                "v",
                None,
                serde_json::json!({"name": "a", "count": "two"}),
            ))
            .await,
    );
    assert_eq!((st, body.code), (422, ErrorCode::VariableType));
    assert!(body.message.contains("count"), "{}", body.message);
    let ok = s
        .admin
        .render(&render_req(
            "v",
            None,
            serde_json::json!({"name": "a", "count": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(ok.text.as_deref(), Some("a x2 (friendly)"));

    // An undeclared name printed is an error, not an empty string.
    let created = s
        .admin
        .create_prompt(&new_prompt("undeclared", text("Hi {{ ghost }}"), vec![]))
        .await
        .unwrap();
    assert!(
        created
            .warnings
            .iter()
            .any(|w| w.code == "undeclared_variable" && w.variable.as_deref() == Some("ghost")),
        "{:?}",
        created.warnings
    );
    let (st, body) = api_error(
        s.admin
            .render(&render_req("undeclared", None, serde_json::json!({})))
            .await,
    );
    assert_eq!((st, body.code), (422, ErrorCode::RenderFailed));

    // Label and version together are ambiguous.
    let mut both = render_req("v", Some("latest"), serde_json::json!({}));
    both.version = Some(1);
    assert_eq!(code(s.admin.render(&both).await), ErrorCode::InvalidRequest);
    assert_eq!(
        code(
            s.admin
                .render(&render_req("nope", None, serde_json::json!({})))
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            s.admin
                .render(&render_req("v", Some("missing"), serde_json::json!({})))
                .await
        ),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn runaway_templates_are_stopped() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("loop", text("{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}"), vec![]))
        .await
        .unwrap();
    let (st, body) = api_error(
        s.admin
            .render(&render_req("loop", None, serde_json::json!({})))
            .await,
    );
    assert_eq!((st, body.code), (422, ErrorCode::RenderLimit));
}

#[tokio::test]
async fn etags_and_304_on_resolve_render_and_bulk() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            "e",
            text("v1 {{ x }}"),
            vec![var("x", VarType::String)],
        ))
        .await
        .unwrap();
    s.admin.set_label("e", "production", &to(1)).await.unwrap();
    let sel = Selector::Label("production".into());

    let Fetched::Modified(first) = s
        .admin
        .resolve_conditional("e", &sel, None, None)
        .await
        .unwrap()
    else {
        panic!("first fetch must be a 200")
    };
    let etag = first.etag.clone().expect("resolve has an ETag");
    assert!(matches!(
        s.admin
            .resolve_conditional("e", &sel, None, Some(&etag))
            .await
            .unwrap(),
        Fetched::NotModified
    ));

    let Fetched::Modified(bulk) = s
        .admin
        .bulk_resolve_conditional("production", None)
        .await
        .unwrap()
    else {
        panic!("first bulk must be a 200")
    };
    let bulk_etag = bulk.etag.clone().expect("bulk has an ETag");
    assert_eq!(bulk.value.prompts.len(), 1);
    assert!(matches!(
        s.admin
            .bulk_resolve_conditional("production", Some(&bulk_etag))
            .await
            .unwrap(),
        Fetched::NotModified
    ));

    let req = render_req("e", Some("production"), serde_json::json!({"x": "a"}));
    let rendered = s.admin.render_tagged(&req).await.unwrap();
    let render_etag = rendered.etag.clone().expect("render has an ETag");
    let body = serde_json::to_vec(&req).unwrap();
    let r = s
        .admin
        .raw(
            promptstore_client::Method::POST,
            "/api/v1/render",
            &[
                ("content-type", "application/json"),
                ("if-none-match", &render_etag),
            ],
            Some(body.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 304);
    // Other variables, other answer.
    let other = s
        .admin
        .render_tagged(&render_req(
            "e",
            Some("production"),
            serde_json::json!({"x": "b"}),
        ))
        .await
        .unwrap();
    assert_ne!(other.etag, rendered.etag);

    // Moving the label changes all three tags.
    s.admin
        .create_version(
            "e",
            &new_version(text("v2 {{ x }}"), vec![var("x", VarType::String)]),
        )
        .await
        .unwrap();
    s.admin.set_label("e", "production", &to(2)).await.unwrap();
    assert!(matches!(
        s.admin
            .resolve_conditional("e", &sel, None, Some(&etag))
            .await
            .unwrap(),
        Fetched::Modified(_)
    ));
    assert!(matches!(
        s.admin
            .bulk_resolve_conditional("production", Some(&bulk_etag))
            .await
            .unwrap(),
        Fetched::Modified(_)
    ));
    let r = s
        .admin
        .raw(
            promptstore_client::Method::POST,
            "/api/v1/render",
            &[
                ("content-type", "application/json"),
                ("if-none-match", &render_etag),
            ],
            Some(body),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn change_stream_delivers_a_label_move_within_a_second() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("live", text("x"), vec![]))
        .await
        .unwrap();
    let (runtime, _) = s.key(promptstore_client::types::Role::Runtime).await;
    let mut stream = runtime.changes().await.unwrap();
    // Let the subscription register before the write.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.admin
        .set_label("live", "production", &to(1))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let e = stream
                .next()
                .await
                .expect("stream open")
                .expect("event decodes");
            if e.kind == "label_moved" && e.label.as_deref() == Some("production") {
                return e;
            }
        }
    })
    .await
    .expect("label move arrives within a second");
    assert_eq!(event.prompt.as_deref(), Some("live"));
    assert_eq!(event.version, Some(1));
    drop(stream);
    // Without a key the stream is refused.
    assert_eq!(
        s.client("").changes().await.err().and_then(|e| e.code()),
        Some(ErrorCode::Unauthorized)
    );
    // Shutdown does not wait for open streams.
    let _open = runtime.changes().await.unwrap();
    s.stop().await;
}

/// The value of one series in the `/metrics` text, 0 when it is not there yet.
async fn metric(s: &TestServer, series: &str) -> f64 {
    let text = s.admin.metrics_text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

const CACHE_HIT: &str = r#"promptstore_render_cache_total{result="hit"}"#;
const CACHE_MISS: &str = r#"promptstore_render_cache_total{result="miss"}"#;

#[tokio::test]
async fn a_repeated_render_is_answered_from_the_cache_until_the_prompt_changes() {
    let s = TestServer::start().await;
    let (runtime, _) = s.key(promptstore_client::types::Role::Runtime).await;
    s.admin
        .create_prompt(&new_prompt(
            "greet",
            text("Hello {{ name }} (v1)"),
            vec![var("name", VarType::String)],
        ))
        .await
        .unwrap();
    s.admin
        .set_label("greet", "production", &to(1))
        .await
        .unwrap();
    let ada = render_req(
        "greet",
        Some("production"),
        serde_json::json!({"name": "Ada"}),
    );

    let first = runtime.render_tagged(&ada).await.unwrap();
    assert_eq!(first.value.text.as_deref(), Some("Hello Ada (v1)"));
    // The second sighting of a request is still rendered (and its answer kept from then on).
    let (hits, misses) = (metric(&s, CACHE_HIT).await, metric(&s, CACHE_MISS).await);
    let second = runtime.render_tagged(&ada).await.unwrap();
    assert_eq!(second.value, first.value);
    assert_eq!(
        metric(&s, CACHE_HIT).await,
        hits,
        "the second sighting misses"
    );
    assert_eq!(metric(&s, CACHE_MISS).await, misses + 1.0);
    let (hits, misses) = (metric(&s, CACHE_HIT).await, metric(&s, CACHE_MISS).await);
    let again = runtime.render_tagged(&ada).await.unwrap();
    assert_eq!(again.value, first.value);
    assert_eq!(again.etag, first.etag);
    assert_eq!(
        metric(&s, CACHE_HIT).await,
        hits + 1.0,
        "the repeat is a hit"
    );
    assert_eq!(metric(&s, CACHE_MISS).await, misses);

    // Another key of the same project gets the same answer; other variables are rendered.
    assert_eq!(s.admin.render(&ada).await.unwrap(), first.value);
    let bob = render_req(
        "greet",
        Some("production"),
        serde_json::json!({"name": "Bob"}),
    );
    assert_eq!(
        runtime.render(&bob).await.unwrap().text.as_deref(),
        Some("Hello Bob (v1)")
    );

    // A new version alone changes nothing at `production`; moving the label does, at once.
    s.admin
        .create_version(
            "greet",
            &new_version(
                text("Hi {{ name }} (v2)"),
                vec![var("name", VarType::String)],
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        runtime.render(&ada).await.unwrap().text.as_deref(),
        Some("Hello Ada (v1)")
    );
    s.admin
        .set_label("greet", "production", &to(2))
        .await
        .unwrap();
    let moved = runtime.render_tagged(&ada).await.unwrap();
    assert_eq!(moved.value.text.as_deref(), Some("Hi Ada (v2)"));
    assert_ne!(moved.etag, first.etag);

    // A removed label is refused, not served from an earlier answer.
    s.admin.remove_label("greet", "production").await.unwrap();
    let gone = runtime.render(&ada).await;
    assert_eq!(code(gone), ErrorCode::NotFound);

    // A request the server refuses is never cached: the same bad request fails again.
    let bad = render_req("greet", Some("latest"), serde_json::json!({"name": 5}));
    for _ in 0..2 {
        assert_eq!(code(runtime.render(&bad).await), ErrorCode::VariableType);
    }
}

#[tokio::test]
async fn the_render_fast_path_refuses_like_every_route() {
    let mut config = test_config();
    config.body_limit_bytes = 2_048;
    let s = TestServer::start_with(config).await;
    s.admin
        .create_prompt(&new_prompt("p", text("x"), vec![]))
        .await
        .unwrap();
    let body = br#"{"name":"p"}"#.to_vec();
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.admin
                .raw(
                    promptstore_client::Method::POST,
                    "/api/v1/render",
                    &headers,
                    Some(body),
                )
                .await
                .unwrap()
        }
    };
    let json = || ("content-type", "application/json".to_owned());

    let ok = post(vec![json()], body.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let wrong_type = post(
        vec![("content-type", "text/plain".to_owned())],
        body.clone(),
    )
    .await;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());
    assert_eq!(
        wrong_type.error().unwrap().code,
        ErrorCode::UnsupportedMediaType
    );
    let mut large = br#"{"name":"p","variables":{"pad":""#.to_vec();
    large.extend(std::iter::repeat_n(b'a', 4_096));
    large.extend(br#""}}"#);
    let too_large = post(vec![json()], large).await;
    assert_eq!(too_large.status, 413, "{}", too_large.text());
    assert_eq!(too_large.error().unwrap().code, ErrorCode::PayloadTooLarge);
    let not_json = post(vec![json()], b"{nope".to_vec()).await;
    assert_eq!(not_json.status, 400, "{}", not_json.text());
    assert_eq!(not_json.error().unwrap().code, ErrorCode::InvalidJson);
    let missing = post(vec![json()], br#"{"label":"latest"}"#.to_vec()).await;
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert!(missing.text().contains("name"), "{}", missing.text());

    // Without a key: 401, before the body is looked at.
    let anonymous = s.admin.with_api_key("").unwrap();
    let r = anonymous
        .raw(
            promptstore_client::Method::POST,
            "/api/v1/render",
            &[("content-type", "application/json")],
            Some(body.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.error().unwrap().code, ErrorCode::Unauthorized);

    // Other methods on the path still get the router's 405, and requests are counted.
    let get = s
        .admin
        .raw(promptstore_client::Method::GET, "/api/v1/render", &[], None)
        .await
        .unwrap();
    assert_eq!(get.status, 405);
    let counted = metric(
        &s,
        r#"promptstore_http_requests_total{route="/api/v1/render",method="POST",status="200"}"#,
    )
    .await;
    assert!(counted >= 1.0, "{counted}");
}
