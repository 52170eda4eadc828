//! Experiment results over millions of events attributed to its arms.
//!
//! 1. Seeds a data directory (100 prompts × 3 versions), starts `promptstore serve` and
//!    creates and starts, over HTTP, an experiment on `bench/chat-00001` at `production`
//!    with three arms (versions 2, 3, 1), `success_rate` as the primary metric and
//!    `latency_ms` and `cost` as guardrails; stops the server.
//! 2. Moves the experiment's start 30 days back (a SQL `UPDATE` of `started_at` /
//!    `phase_started_at`: time travel is the only way to have a month-old experiment in a
//!    benchmark), to the middle of an hour, so results read both paths: whole hours from
//!    the hourly cells and the partial first hour from the raw events.
//! 3. Stores `--events` events of the experiment's arms spread over those 30 days through
//!    `AnalyticsStore::ingest` in transactions of 20,000 (the group-commit cap of the HTTP
//!    path, whose speed `bench_ingest_http` measures), each validated by the product's
//!    `validate_event`, plus one exposure per unit (50,000 units).
//! 4. Restarts the server pinned to the server core and times over HTTP, interleaved:
//!    `GET /api/v1/project` (the fixed cost of an authenticated request), `GET
//!    /api/v1/experiments/{id}` (the same record, no analysis) and `GET
//!    /api/v1/experiments/{id}/results`. The results must count every stored event.
//!
//! Usage: `bench_abtest_results --promptstore BIN --work DIR [--events 10000000]
//!         [--runs 21] [--server-cpu 0|none] [--reuse yes]`
//! `--reuse yes` keeps `WORK/abtest` and reuses it when it was seeded before (to re-time the
//! results, or another build's, without storing the events again).
//! Prints `RESULT abtest_* ...` lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::eventgen::{EventGen, ExperimentArms, Spread};
use promptstore_bench::loadgen::{self, send_json};
use promptstore_bench::pinned::{self, ServeSpec};
use promptstore_bench::querybench::{Query, time_queries};
use promptstore_bench::seed::{self, SeedPlan};
use promptstore_bench::workload;
use promptstore_core::analytics::cost::PriceBook;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::analytics::validate::{IngestContext, validate_event};
use promptstore_core::experiments::model::Exposure;
use promptstore_core::model::PromptRecord;
use promptstore_core::store::Store;
use promptstore_store_sqlite::SqliteStore;
use serde_json::json;
use sqlx::Connection;
use time::OffsetDateTime;

const PROMPTS: usize = 100;
const VERSIONS: u32 = 3;
const BATCH: usize = 1000;
/// Batches per `AnalyticsStore::ingest` call: 20,000 events, the HTTP path's group-commit cap.
const BATCHES_PER_COMMIT: u64 = 20;
const UNITS: u64 = 50_000;
const ARMS: [(&str, u32); 3] = [("control", 2), ("treatment", 3), ("legacy", 1)];
/// Where a seeded directory records its experiment, for `--reuse`: `id stored-events`.
const SEEDED_FILE: &str = "bench-abtest-seeded.txt";

fn serve_spec(bin: &Path, dir: &Path, cpu: Option<u32>, log: PathBuf) -> ServeSpec {
    ServeSpec {
        bin: bin.to_owned(),
        data_dir: dir.to_owned(),
        cpu,
        // The decision worker would analyse the experiment in the background while the
        // benchmark times the same analysis; one run a day keeps it out of the way.
        extra: ["--log", "warn", "--experiment-interval-secs", "86400"]
            .map(str::to_owned)
            .to_vec(),
        log,
    }
}

/// Create and start the experiment over HTTP; its id.
async fn create_experiment(url: &str, admin: &str) -> anyhow::Result<String> {
    let http = loadgen::client()?;
    let arms: Vec<_> = ARMS
        .iter()
        .map(|(name, version)| json!({"name": name, "version": version, "weight": 1.0}))
        .collect();
    let created = send_json(
        &http,
        reqwest::Method::POST,
        &format!("{url}/api/v1/experiments"),
        admin,
        Some(&json!({
            "name": "shorter first reply",
            "prompt": workload::prompt_name(1),
            "label": workload::LABEL,
            "arms": arms,
            "primary_metric": {"metric": "success_rate"},
            "guardrails": [
                {"metric": "latency_ms", "tolerance": 0.10},
                {"metric": "cost", "tolerance": 0.10}
            ],
            "min_sample_per_arm": 1_000_000_000_000u64
        })),
    )
    .await?;
    let id = created
        .get("id")
        .and_then(serde_json::Value::as_str)
        .context("the created experiment has no id")?
        .to_owned();
    send_json(
        &http,
        reqwest::Method::POST,
        &format!("{url}/api/v1/experiments/{id}/start"),
        admin,
        None,
    )
    .await?;
    Ok(id)
}

/// Move the experiment's start to `start` (milliseconds in the registry file).
async fn backdate(dir: &Path, id: &str, start: OffsetDateTime) -> anyhow::Result<()> {
    let path = dir.join(promptstore_store_sqlite::DEFAULT_FILE_NAME);
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let ms = (start.unix_timestamp_nanos() / 1_000_000) as i64;
    let changed = sqlx::query(
        "UPDATE experiments SET created_at = ?1, started_at = ?1, phase_started_at = ?1 \
         WHERE id = ?2 AND status = 'running'",
    )
    .bind(ms)
    .bind(id)
    .execute(&mut conn)
    .await
    .context("moving the experiment's start back")?
    .rows_affected();
    conn.close().await.ok();
    if changed != 1 {
        bail!("the running experiment {id} was not found in the registry file");
    }
    Ok(())
}

/// Store the events through the analytics store, validated as the server validates them.
async fn store_events(
    dir: &Path,
    experiment: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    events: u64,
) -> anyhow::Result<(u64, f64)> {
    let store = SqliteStore::open_in(dir).await?;
    let project = store
        .list_projects()
        .await?
        .into_iter()
        .next()
        .context("no project")?
        .id;
    let prompts: HashMap<String, PromptRecord> = store
        .all_prompts(&project)
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let book = PriceBook::new(&[]);
    let batches = events / BATCH as u64;
    let generator = EventGen {
        prompts: PROMPTS,
        versions: VERSIONS,
        batch_size: BATCH,
        spread: Spread::Chronological {
            start,
            end,
            batches,
        },
        experiment: Some(ExperimentArms {
            id: experiment.to_owned(),
            prompt: workload::prompt_name(1),
            label: workload::LABEL.to_owned(),
            arms: ARMS.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
        }),
        run_tag: "ab".to_owned(),
    };
    let started = Instant::now();
    let mut stored = 0u64;
    let mut k = 0u64;
    while k < batches {
        let now = OffsetDateTime::now_utc();
        let ctx = IngestContext {
            project: &project,
            prompts: &prompts,
            prices: &book,
            now,
            oldest: None,
        };
        let mut records = Vec::with_capacity(BATCH * BATCHES_PER_COMMIT as usize);
        let last = (k + BATCHES_PER_COMMIT).min(batches);
        for b in k..last {
            for (i, e) in generator.batch(b, now).into_iter().enumerate() {
                records.push(
                    validate_event(&ctx, i, e)
                        .map_err(|e| anyhow::anyhow!("a generated event was refused: {e:?}"))?,
                );
            }
        }
        let outcomes = store.ingest(records).await?;
        stored += outcomes.len() as u64;
        k = last;
        if k.is_multiple_of(1000) {
            println!(
                "  stored {stored:>10} events in {:>6.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let exposures = (0..UNITS)
        .map(|u| Exposure {
            project: project.clone(),
            experiment_id: experiment.to_owned(),
            phase: 1,
            unit_id: format!("user-{u}"),
            arm: ARMS[(u % ARMS.len() as u64) as usize].0.to_owned(),
            at: start,
        })
        .collect();
    store.record_exposures(exposures).await?;
    store.close().await;
    Ok((stored, started.elapsed().as_secs_f64()))
}

/// Seed `dir`: the registry, the experiment (started 30 days back) and its events; returns
/// the experiment's id and the number of stored events.
async fn seed_experiment(
    bin: &Path,
    work: &Path,
    dir: &Path,
    cpu: Option<u32>,
    events: u64,
) -> anyhow::Result<(String, u64)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    seed::seed(
        dir,
        SeedPlan {
            prompts: PROMPTS,
            versions: VERSIONS,
            batch: PROMPTS,
        },
    )
    .await?;
    let admin = seed::read_key(dir, seed::ADMIN_KEY_FILE)?;

    let server = pinned::start(&serve_spec(
        bin,
        dir,
        cpu,
        work.join("server-abtest-setup.log"),
    ))?;
    let id = create_experiment(&server.url, &admin).await?;
    server.kill_hard()?;

    let end = OffsetDateTime::now_utc();
    let start = (end - time::Duration::days(30) + time::Duration::hours(2))
        .replace_minute(30)
        .context("mid-hour start")?;
    backdate(dir, &id, start).await?;
    let (stored, took) = store_events(dir, &id, start, end, events).await?;
    println!(
        "RESULT abtest_seed {stored} {took:.1} {:.0} store",
        stored as f64 / took
    );
    Ok((id, stored))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&[
        "promptstore",
        "work",
        "events",
        "runs",
        "server-cpu",
        "reuse",
    ])?;
    let reuse = flags.optional("reuse").as_deref() == Some("yes");
    let bin = PathBuf::from(flags.required("promptstore")?);
    let work = PathBuf::from(flags.required("work")?);
    let events: u64 = flags.parsed_or("events", 10_000_000)?;
    let runs: usize = flags.parsed_or("runs", 21)?;
    let cpu = match flags.optional("server-cpu").as_deref() {
        None => Some(0),
        Some("none") => None,
        Some(n) => Some(n.parse().context("--server-cpu is a core number or none")?),
    };
    if events == 0 || !events.is_multiple_of(BATCH as u64) || events > 100_000_000 {
        bail!("--events must be a positive multiple of {BATCH}, at most 100,000,000");
    }
    if !(1..=1000).contains(&runs) {
        bail!("--runs must be in 1..=1000");
    }
    let dir = work.join("abtest");
    let seeded = std::fs::read_to_string(dir.join(SEEDED_FILE))
        .ok()
        .filter(|_| reuse);
    let (id, stored) = match seeded {
        Some(text) => {
            let mut parts = text.split_whitespace();
            let (Some(id), Some(stored)) = (parts.next(), parts.next()) else {
                bail!("unreadable {SEEDED_FILE}: {text:?}");
            };
            println!("reusing {} (experiment {id})", dir.display());
            (
                id.to_owned(),
                stored.parse::<u64>().context("unreadable stored count")?,
            )
        }
        None => {
            let (id, stored) = seed_experiment(&bin, &work, &dir, cpu, events).await?;
            std::fs::write(dir.join(SEEDED_FILE), format!("{id} {stored}\n"))?;
            (id, stored)
        }
    };
    let admin = seed::read_key(&dir, seed::ADMIN_KEY_FILE)?;

    let server = pinned::start(&serve_spec(&bin, &dir, cpu, work.join("server-abtest.log")))?;
    let http = loadgen::client()?;
    let queries = [
        Query {
            name: "baseline_project".to_owned(),
            path: "/api/v1/project".to_owned(),
        },
        Query {
            name: "experiment".to_owned(),
            path: format!("/api/v1/experiments/{id}"),
        },
        Query {
            name: "results".to_owned(),
            path: format!("/api/v1/experiments/{id}/results"),
        },
    ];
    let timed = time_queries(&http, &server.url, &admin, &queries, 3, runs).await?;
    let memory = server.memory()?;
    for t in &timed {
        println!(
            "RESULT abtest_ms {} {:.2} {:.2} {:.2} {}",
            t.name,
            t.ms.median,
            t.ms.min,
            t.ms.max,
            t.last_body.len()
        );
    }
    let results: serde_json::Value = serde_json::from_slice(&timed[2].last_body)?;
    let counted: u64 = results
        .pointer("/primary/arms")
        .and_then(serde_json::Value::as_array)
        .context("the results have no primary.arms")?
        .iter()
        .filter_map(|a| a.get("n").and_then(serde_json::Value::as_u64))
        .sum();
    let verdict = results
        .pointer("/verdict")
        .map(|v| v.to_string())
        .unwrap_or_default();
    println!("RESULT abtest_results_count {counted} {stored}");
    println!(
        "RESULT abtest_rss_kib {} {}",
        memory.rss_kib, memory.hwm_kib
    );
    println!(
        "  verdict: {}",
        verdict.chars().take(300).collect::<String>()
    );
    server.kill_hard()?;
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if counted != stored {
        bail!("the results counted {counted} of {stored} stored events");
    }
    Ok(())
}
