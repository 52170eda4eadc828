//! The Rust SDK against the real binary: a runtime key, a pre-warmed cache following the
//! change stream, and conditional resolves with ETags.

// Test helpers outside #[test] functions fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Server;
use promptstore_client::types::{
    CreateApiKey, CreatePrompt, CreateVersion, Role, SetLabel, Template,
};
use promptstore_client::{CacheConfig, CachedClient, Client, Fetched, Selector};

fn text(t: &str) -> Template {
    Template::Text { text: t.into() }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_client_follows_label_moves_within_a_second() {
    let server = tokio::task::spawn_blocking(Server::start).await.unwrap();
    let admin = Client::new(&server.url, &server.admin_key).unwrap();
    admin
        .create_prompt(&CreatePrompt {
            name: "agent/system".into(),
            description: String::new(),
            tags: vec![],
            status: None,
            template: text("You are v1."),
            variables: vec![],
            model_config: None,
            commit_message: String::new(),
        })
        .await
        .unwrap();
    let v2 = CreateVersion {
        template: text("You are v2."),
        variables: vec![],
        model_config: None,
        commit_message: "v2".into(),
        base_version: Some(1),
    };
    admin.create_version("agent/system", &v2).await.unwrap();
    let set = |version| SetLabel {
        version,
        expected_version: None,
        allow_breaking: false,
        reason: None,
    };
    admin
        .set_label("agent/system", "production", &set(1))
        .await
        .unwrap();

    let runtime_key = admin
        .create_key(&CreateApiKey {
            name: "agent".into(),
            role: Role::Runtime,
        })
        .await
        .unwrap();
    let runtime = Client::new(&server.url, &runtime_key.secret).unwrap();
    let config = CacheConfig {
        ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    let cache = CachedClient::new(runtime.clone(), config).unwrap();
    assert_eq!(cache.prewarm("production").await.unwrap(), 1);
    let production = Selector::Label("production".into());
    assert_eq!(
        cache
            .get("agent/system", &production)
            .await
            .unwrap()
            .version,
        1
    );

    let subscription = cache.subscribe();
    eventually("subscribed", || subscription.is_connected()).await;
    admin
        .set_label("agent/system", "production", &set(2))
        .await
        .unwrap();
    eventually("the moved label reached the cache", || {
        cache
            .get_cached("agent/system", &production)
            .is_some_and(|p| p.version == 2)
    })
    .await;
    assert_eq!(
        cache.stats().misses,
        0,
        "everything came from prewarm and the stream"
    );

    // Conditional resolve: the ETag of the answer makes the next identical one a 304.
    let Fetched::Modified(first) = runtime
        .resolve_conditional("agent/system", &production, None, None)
        .await
        .unwrap()
    else {
        panic!("an unconditional resolve returns the prompt");
    };
    let etag = first.etag.expect("resolve answers with an ETag");
    let again = runtime
        .resolve_conditional("agent/system", &production, None, Some(&etag))
        .await
        .unwrap();
    assert_eq!(again, Fetched::NotModified);

    // The runtime key may not touch the registry.
    let err = runtime.list_prompts(&Default::default()).await.unwrap_err();
    assert_eq!(err.code(), Some(promptstore_client::ErrorCode::Forbidden));
}
