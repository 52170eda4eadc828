//! Measures the cache hit path (`CachedClient::get_cached`), whose target is well under
//! 1 µs: `cargo run -p promptstore-client --example cache_hit --release`. No server needed:
//! the cache is filled from an offline bundle.

use std::hint::black_box;
use std::time::Instant;

use promptstore_client::types::{BulkResolved, PromptKind, PromptStatus, ResolvedPrompt, Template};
use promptstore_client::{CacheConfig, CachedClient, Client, ClientError, Selector};

const PROMPTS: usize = 1_000;
const LOOKUPS: usize = 2_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let cache = CachedClient::new(
        Client::new("http://127.0.0.1:9", "")?,
        CacheConfig::default(),
    )?;
    let prompts = (0..PROMPTS)
        .map(|i| ResolvedPrompt {
            prompt: format!("team/prompt-{i}"),
            kind: PromptKind::Text,
            version: 1,
            label: Some("production".into()),
            status: PromptStatus::Active,
            template: Template::Text {
                text: "Hello {{ name }}".into(),
            },
            variables: vec![],
            model_config: serde_json::json!({}),
            content_hash: String::new(),
            assignment: None,
        })
        .collect();
    cache.load_bundle(&BulkResolved {
        label: "production".into(),
        prompts,
    });

    let names: Vec<String> = (0..PROMPTS).map(|i| format!("team/prompt-{i}")).collect();
    let selector = Selector::Label("production".into());
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..LOOKUPS {
        if black_box(cache.get_cached(&names[i % PROMPTS], &selector)).is_some() {
            found += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{LOOKUPS} cached lookups over {PROMPTS} prompts: {:.0} ns each ({found} hits)",
        elapsed.as_nanos() as f64 / LOOKUPS as f64
    );
    Ok(())
}
