//! Client-crate cached resolve: how long `CachedClient::get` takes when the prompt is in
//! memory, next to a plain `RwLock<HashMap<String, Arc<_>>>` lookup of the same prompts
//! measured in the same run (the least any in-memory cache can cost).
//!
//! Against a running server: pre-warms the cache with a bulk resolve at the label, checks
//! every prompt is cached, then alternates rounds of the baseline, `get_cached` (the
//! synchronous hit path) and `get` (the async API agents call), reporting the median
//! ns/op. The cache's miss counter must not move during the timed loops, which proves no
//! call went to the network.
//!
//! Usage: `bench_client_cache --url URL --key KEY [--label production] [--prompts 8]
//! [--iters 10000000] [--rounds 5]`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::stats::summarize;
use promptstore_bench::workload;
use promptstore_client::types::ResolvedPrompt;
use promptstore_client::{CacheConfig, CachedClient, Client, Selector};

fn ns_per_op(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_secs_f64() * 1e9 / ops as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&["url", "key", "label", "prompts", "iters", "rounds"])?;
    let url = flags.required("url")?;
    let key = flags.required("key")?;
    let label = flags
        .optional("label")
        .unwrap_or_else(|| workload::LABEL.to_owned());
    let prompts: usize = flags.parsed_or("prompts", 8)?;
    let iters: usize = flags.parsed_or("iters", 10_000_000)?;
    let rounds: usize = flags.parsed_or("rounds", 5)?;
    if prompts == 0 || rounds == 0 || iters < rounds {
        bail!("--prompts and --rounds must be at least 1 and --iters at least --rounds");
    }

    let client = Client::new(url, key).context("building the client")?;
    // A TTL far beyond the run: every timed call must be a fresh hit.
    let config = CacheConfig {
        ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    let cache = CachedClient::new(client, config).context("building the cache")?;
    let loaded = cache
        .prewarm(&label)
        .await
        .context("pre-warming the cache")?;
    let names: Vec<String> = (1..=prompts).map(workload::prompt_name).collect();
    let selector = Selector::Label(label.clone());

    let mut baseline: HashMap<String, Arc<ResolvedPrompt>> = HashMap::new();
    for name in &names {
        let value = cache.get_cached(name, &selector).with_context(|| {
            format!("{name}@{label} is not in the cache after pre-warming {loaded} prompts")
        })?;
        baseline.insert(name.clone(), value);
    }
    let baseline = RwLock::new(baseline);
    let before = cache.stats();

    let per_round = iters / rounds;
    let (mut base_ns, mut cached_ns, mut get_ns) = (Vec::new(), Vec::new(), Vec::new());
    let mut missing = 0usize;
    for _ in 0..rounds {
        let started = Instant::now();
        for i in 0..per_round {
            let name = black_box(names[i % prompts].as_str());
            let map = baseline
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            black_box(map.get(name).cloned());
        }
        base_ns.push(ns_per_op(started.elapsed(), per_round));

        let started = Instant::now();
        for i in 0..per_round {
            let name = black_box(names[i % prompts].as_str());
            if black_box(cache.get_cached(name, &selector)).is_none() {
                missing += 1;
            }
        }
        cached_ns.push(ns_per_op(started.elapsed(), per_round));

        let started = Instant::now();
        for i in 0..per_round {
            let name = black_box(names[i % prompts].as_str());
            black_box(cache.get(name, &selector).await?);
        }
        get_ns.push(ns_per_op(started.elapsed(), per_round));
    }
    let after = cache.stats();
    let misses = after.misses - before.misses;
    let stale = after.stale_hits - before.stale_hits;
    if missing > 0 || misses > 0 || stale > 0 {
        bail!(
            "invalid run: {missing} cache lookups missed, {misses} went to the server, {stale} were stale"
        );
    }

    let [base, cached, get] = [&base_ns, &cached_ns, &get_ns].map(|s| summarize(s));
    let (Some(base), Some(cached), Some(get)) = (base, cached, get) else {
        bail!("no measurement");
    };
    println!(
        "client cache: {prompts} prompts, {rounds} rounds x {per_round} calls each; hits counted {}",
        after.hits - before.hits
    );
    println!(
        "  baseline RwLock<HashMap> lookup + Arc clone: median {:.1} ns/op (min {:.1}, max {:.1})",
        base.median, base.min, base.max
    );
    println!(
        "  CachedClient::get_cached:                    median {:.1} ns/op (min {:.1}, max {:.1})",
        cached.median, cached.min, cached.max
    );
    println!(
        "  CachedClient::get (async):                   median {:.1} ns/op (min {:.1}, max {:.1})",
        get.median, get.min, get.max
    );
    println!("RESULT cache_baseline_ns {:.1}", base.median);
    println!("RESULT cache_get_cached_ns {:.1}", cached.median);
    println!("RESULT cache_get_ns {:.1}", get.median);
    println!("RESULT cache_calls {}", per_round * rounds);
    Ok(())
}
