//! Analytics queries over millions of stored events, and the server's memory meanwhile.
//!
//! Seeds a data directory (100 prompts × 3 versions, labels `production` and `latest`),
//! starts `promptstore serve` pinned to the server core, and ingests `--events` events over
//! HTTP (`POST /api/v1/events`, batches of 1,000, `--clients` concurrent keep-alive
//! clients) spread over the last 30 days in arrival order — 100 prompts × 3 versions × 3
//! models × 2 labels — sampling the server's RSS every 2 s. Then it times, over HTTP, with
//! the baseline `GET /api/v1/project` (the fixed cost of an authenticated request)
//! interleaved: the project summary over the 30 days, the same grouped by prompt, version,
//! label and model, and the hourly time series of one prompt over the 30 days. Finally the
//! server is killed with SIGKILL and the events file must hold every acknowledged event.
//!
//! Usage: `bench_analytics --promptstore BIN --work DIR [--events 10000000] [--clients 8]
//!         [--runs 21] [--server-cpu 0|none] [--reuse yes]`
//! `--reuse yes` keeps and reuses `WORK/analytics` when it was seeded before (to re-time the
//! queries without ingesting again). Prints `RESULT analytics_* ...` lines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::eventgen::{EventGen, Spread};
use promptstore_bench::loadgen::{self, Target, Until};
use promptstore_bench::pinned::{self, ServeSpec};
use promptstore_bench::querybench::{Query, encode, rfc3339, time_queries};
use promptstore_bench::seed::{self, SeedPlan};
use promptstore_bench::{eventsdb, workload};

const PROMPTS: usize = 100;
const VERSIONS: u32 = 3;
const BATCH: usize = 1000;
/// Where the seeded range is written down, for `--reuse`: `start end events` (Unix s).
const RANGE_FILE: &str = "bench-events-range.txt";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&[
        "promptstore",
        "work",
        "events",
        "clients",
        "runs",
        "server-cpu",
        "reuse",
    ])?;
    let bin = PathBuf::from(flags.required("promptstore")?);
    let work = PathBuf::from(flags.required("work")?);
    let events: u64 = flags.parsed_or("events", 10_000_000)?;
    let clients: usize = flags.parsed_or("clients", 8)?;
    let runs: usize = flags.parsed_or("runs", 21)?;
    let reuse = flags.optional("reuse").as_deref() == Some("yes");
    let cpu = match flags.optional("server-cpu").as_deref() {
        None => Some(0),
        Some("none") => None,
        Some(n) => Some(n.parse().context("--server-cpu is a core number or none")?),
    };
    if events == 0 || !events.is_multiple_of(BATCH as u64) || events > 100_000_000 {
        bail!("--events must be a positive multiple of {BATCH}, at most 100,000,000");
    }
    if !(1..=64).contains(&clients) || !(1..=1000).contains(&runs) {
        bail!("--clients must be in 1..=64 and --runs in 1..=1000");
    }
    let dir = work.join("analytics");
    let seeded_before = reuse && dir.join(RANGE_FILE).exists();
    if !seeded_before && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    if !seeded_before {
        seed::seed(
            &dir,
            SeedPlan {
                prompts: PROMPTS,
                versions: VERSIONS,
                batch: PROMPTS,
            },
        )
        .await?;
    }
    let admin = seed::read_key(&dir, seed::ADMIN_KEY_FILE)?;
    let runtime = seed::read_key(&dir, seed::RUNTIME_KEY_FILE)?;
    let mut extra = vec!["--log".to_owned(), "warn".to_owned()];
    if seeded_before {
        // Reused data ages: keep the retention worker from pruning it between runs.
        extra.extend(["--events-retention-days".to_owned(), "365".to_owned()]);
    }
    let server = pinned::start(&ServeSpec {
        bin,
        data_dir: dir.clone(),
        cpu,
        extra,
        log: work.join("server-analytics.log"),
    })?;
    let http = loadgen::client()?;

    let peak_rss = Arc::new(AtomicU64::new(0));
    let (start, end, acknowledged) = if seeded_before {
        let text = std::fs::read_to_string(dir.join(RANGE_FILE))?;
        let parts: Vec<i64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .context("unreadable range file")?;
        let [start, end, n] = parts[..] else {
            bail!("unreadable range file: {text:?}")
        };
        println!("reusing {} ({n} events seeded before)", dir.display());
        (
            time::OffsetDateTime::from_unix_timestamp(start)?,
            time::OffsetDateTime::from_unix_timestamp(end)?,
            n as u64,
        )
    } else {
        // The 30 days end now; 2 h of margin keeps the oldest events inside the default
        // 30-day retention until the last batch is in.
        let end = time::OffsetDateTime::now_utc();
        let start = end - time::Duration::days(30) + time::Duration::hours(2);
        let generator = Arc::new(EventGen {
            prompts: PROMPTS,
            versions: VERSIONS,
            batch_size: BATCH,
            spread: Spread::Chronological {
                start,
                end,
                batches: events / BATCH as u64,
            },
            experiment: None,
            run_tag: "seed".to_owned(),
        });
        let pid = server.pid();
        let peak = peak_rss.clone();
        let report = move |done: u64, elapsed: Duration| {
            let rss = pinned::memory_of(pid).map(|m| m.rss_kib).unwrap_or(0);
            peak.fetch_max(rss, Ordering::Relaxed);
            println!(
                "  ingested {done:>10} events in {:>6.1} s ({:>7.0} events/s)  server RSS {:.1} MB",
                elapsed.as_secs_f64(),
                done as f64 / elapsed.as_secs_f64().max(1e-9),
                rss as f64 * 1024.0 / 1e6
            );
        };
        let started = Instant::now();
        let run = loadgen::ingest(
            &http,
            &Target {
                url: server.url.clone(),
                key: runtime,
            },
            loadgen::Bodies::Generated(generator),
            clients,
            Until::Batches(events / BATCH as u64),
            Some((Duration::from_secs(2), Box::new(report))),
        )
        .await?;
        let took = started.elapsed();
        println!(
            "RESULT analytics_seed {} {:.1} {:.0} http",
            run.acknowledged,
            took.as_secs_f64(),
            run.acknowledged as f64 / took.as_secs_f64()
        );
        std::fs::write(
            dir.join(RANGE_FILE),
            format!(
                "{} {} {}\n",
                start.unix_timestamp(),
                end.unix_timestamp(),
                run.acknowledged
            ),
        )?;
        (start, end, run.acknowledged)
    };
    let after_ingest = server.memory()?;
    peak_rss.fetch_max(after_ingest.rss_kib, Ordering::Relaxed);

    // Whole hours around the seeded range: 30 days (and the hour the last event is in).
    let from = rfc3339(start - time::Duration::hours(1))?;
    let to = rfc3339(end.max(time::OffsetDateTime::now_utc()) + time::Duration::hours(1))?;
    let range = format!("from={from}&to={to}");
    let prompt = encode(&workload::prompt_name(1));
    let queries = [
        Query {
            name: "baseline_project".to_owned(),
            path: "/api/v1/project".to_owned(),
        },
        Query {
            name: "summary".to_owned(),
            path: format!("/api/v1/analytics/summary?{range}"),
        },
        Query {
            name: "summary_grouped".to_owned(),
            path: format!("/api/v1/analytics/summary?{range}&group_by=prompt,version,label,model"),
        },
        Query {
            name: "timeseries_hourly".to_owned(),
            path: format!("/api/v1/analytics/timeseries?interval=hour&prompt={prompt}&{range}"),
        },
    ];
    let timed = time_queries(&http, &server.url, &admin, &queries, 3, runs).await?;
    let after_queries = server.memory()?;
    for t in &timed {
        println!(
            "RESULT analytics_ms {} {:.2} {:.2} {:.2} {}",
            t.name,
            t.ms.median,
            t.ms.min,
            t.ms.max,
            t.last_body.len()
        );
    }
    // The summary must have seen every event: a fast answer over nothing proves nothing.
    let summary: serde_json::Value = serde_json::from_slice(&timed[1].last_body)?;
    let counted = summary
        .pointer("/metrics/count")
        .and_then(serde_json::Value::as_u64)
        .context("the summary has no metrics.count")?;
    let groups = timed[2].last_body.len();
    println!("RESULT analytics_summary_count {counted} {acknowledged}");
    println!(
        "RESULT analytics_rss_kib {} {} {}",
        peak_rss.load(Ordering::Relaxed),
        after_queries.rss_kib,
        after_queries.hwm_kib
    );
    server.kill_hard()?;
    let found =
        eventsdb::contents(&dir.join(promptstore_store_sqlite::DEFAULT_EVENTS_FILE_NAME)).await?;
    println!(
        "RESULT analytics_durable {acknowledged} {} {}",
        found.events, found.day_cell_events
    );
    let db_bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("RESULT analytics_db_bytes {db_bytes} grouped_answer_bytes {groups}");
    if counted != acknowledged || found.events != acknowledged {
        bail!(
            "the summary counted {counted} and the file holds {} of {acknowledged} acknowledged events",
            found.events
        );
    }
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
