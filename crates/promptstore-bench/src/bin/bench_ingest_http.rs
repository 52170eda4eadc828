//! Event ingestion over HTTP against its baseline, measured in the same run.
//!
//! Each round, on fresh files: (1) the baseline, `bench_ingest_raw`, inserts generated
//! events straight into SQLite for `--seconds`, pinned to the server core; (2) `promptstore
//! serve`, pinned to the same core, receives batches of `--batch` of the same kind of
//! events from `--clients` concurrent keep-alive clients (this process, on the other core)
//! for `--seconds`; the server is then killed with SIGKILL and the events file is opened:
//! it must hold exactly the events the server acknowledged, and its day cells must add up
//! to the same count. Rounds alternate so a burst of load from elsewhere hits both sides.
//!
//! Usage: `bench_ingest_http --promptstore BIN --raw BIN --work DIR --seconds S --rounds R
//!         [--clients 8] [--batch 1000] [--server-cpu 0|none]
//!         [--client-ids sequential|uuid-v4|uuid-v7]`
//! `--server-cpu none` runs the baseline and the server on every online core instead (the
//! server's request handling then runs beside its writer; the baseline is one thread
//! whatever it is given), while this process stays where it was started.
//! `--client-ids` gives both sides' events random or time-ordered UUIDs instead of ordered
//! ids (BENCHMARKS.md, "Client event ids"); the benchmark proper uses the default.
//! Prints one line per measurement and `RESULT ingest_* ...` lines for bench/analytics.sh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::eventgen::{BodyTemplate, ClientIds, EventGen, Spread};
use promptstore_bench::eventsdb;
use promptstore_bench::loadgen::{self, IngestRun, Target, Until};
use promptstore_bench::pinned::{self, ServeSpec};
use promptstore_bench::seed::{SeedPlan, seed};
use promptstore_bench::stats::summarize;

const PROMPTS: usize = 100;
const VERSIONS: u32 = 3;

struct Settings {
    promptstore: PathBuf,
    raw: PathBuf,
    work: PathBuf,
    seconds: f64,
    rounds: u32,
    clients: usize,
    batch: usize,
    cpu: Option<u32>,
    client_ids: ClientIds,
}

fn settings() -> anyhow::Result<Settings> {
    let flags = Flags::from_env(&[
        "promptstore",
        "raw",
        "work",
        "seconds",
        "rounds",
        "clients",
        "batch",
        "server-cpu",
        "client-ids",
    ])?;
    let cpu = match flags.optional("server-cpu").as_deref() {
        None => Some(0),
        Some("none") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|e| anyhow::anyhow!("invalid `--server-cpu {n}`: {e}"))?,
        ),
    };
    let s = Settings {
        promptstore: flags.required("promptstore")?.into(),
        raw: flags.required("raw")?.into(),
        work: flags.required("work")?.into(),
        seconds: flags.required_parsed("seconds")?,
        rounds: flags.required_parsed("rounds")?,
        clients: flags.parsed_or("clients", 8)?,
        batch: flags.parsed_or("batch", 1000)?,
        cpu,
        client_ids: ClientIds::from_flags(&flags)?,
    };
    let valid = s.seconds > 0.0
        && s.seconds <= 600.0
        && (1..=20).contains(&s.rounds)
        && (1..=64).contains(&s.clients)
        && (1..=1000).contains(&s.batch);
    if !valid {
        bail!("need 0 < --seconds ≤ 600, --rounds 1..=20, --clients 1..=64, --batch 1..=1000");
    }
    Ok(s)
}

/// One baseline measurement: events per second, and CPU µs per event.
fn raw_round(s: &Settings, round: u32) -> anyhow::Result<(f64, f64)> {
    let db = s.work.join(format!("raw-{round}.db"));
    let out = pinned::on_cores(&s.raw, s.cpu)?
        .arg("--db")
        .arg(&db)
        .args(["--seconds", &s.seconds.to_string()])
        .args(["--batch", &s.batch.to_string()])
        .args(["--prompts", &PROMPTS.to_string()])
        .args(["--versions", &VERSIONS.to_string()])
        .args(["--client-ids", s.client_ids.name()])
        .output()
        .with_context(|| format!("cannot run {}", s.raw.display()))?;
    remove_db_files(&db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the baseline failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let fields: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT raw_events_per_s "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.parse::<f64>().ok())
                .collect()
        })
        .unwrap_or_default();
    match fields.as_slice() {
        [rate, _, cpu_us, ..] => Ok((*rate, *cpu_us)),
        _ => bail!("the baseline printed no result: {stdout}"),
    }
}

fn remove_db_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

struct HttpRound {
    run: IngestRun,
    found: eventsdb::Contents,
    server_cpu_pct: f64,
    /// Server CPU per acknowledged event, µs.
    server_cpu_us: f64,
    /// This driver's CPU per acknowledged event, µs (it must stay well below its core).
    driver_cpu_us: f64,
    rss_kib: u64,
}

async fn http_round(s: &Settings, http: &reqwest::Client, round: u32) -> anyhow::Result<HttpRound> {
    let dir = s.work.join(format!("http-{round}"));
    let seeded = seed(
        &dir,
        SeedPlan {
            prompts: PROMPTS,
            versions: VERSIONS,
            batch: PROMPTS,
        },
    )
    .await?;
    let server = pinned::start(&ServeSpec {
        bin: s.promptstore.clone(),
        data_dir: dir.clone(),
        cpu: s.cpu,
        extra: vec!["--log".to_owned(), "warn".to_owned()],
        log: s.work.join(format!("server-ingest-{round}.log")),
    })?;
    // Bodies are spliced from events serialised before the timed window (the driver's cost
    // per event is a copy and a timestamp): the run measures the server, not the client.
    // The window is 50 s so that events are at most a minute old when a 10 s round ends.
    let generator = EventGen {
        prompts: PROMPTS,
        versions: VERSIONS,
        batch_size: s.batch,
        spread: Spread::Live {
            window: time::Duration::seconds(50),
        },
        experiment: None,
        run_tag: format!("r{round}"),
    };
    let bodies = loadgen::Bodies::Spliced(Arc::new(
        BodyTemplate::new(&generator, 8)?.with_client_ids(s.client_ids),
    ));
    let target = Target {
        url: server.url.clone(),
        key: seeded.runtime_key.clone(),
    };
    let cpu_before = server.cpu_time()?;
    let driver_before = pinned::cpu_time_of(std::process::id())?;
    let run = loadgen::ingest(
        http,
        &target,
        bodies,
        s.clients,
        Until::Elapsed(Duration::from_secs_f64(s.seconds)),
        None,
    )
    .await?;
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let driver_cpu = pinned::cpu_time_of(std::process::id())?.saturating_sub(driver_before);
    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / run.acknowledged.max(1) as f64;
    let rss_kib = server.memory()?.hwm_kib;
    server.kill_hard()?;
    let found =
        eventsdb::contents(&dir.join(promptstore_store_sqlite::DEFAULT_EVENTS_FILE_NAME)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(HttpRound {
        server_cpu_pct: 100.0 * cpu.as_secs_f64() / run.elapsed.as_secs_f64(),
        server_cpu_us: per_event(cpu),
        driver_cpu_us: per_event(driver_cpu),
        run,
        found,
        rss_kib,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let s = settings()?;
    std::fs::create_dir_all(&s.work)
        .with_context(|| format!("cannot create {}", s.work.display()))?;
    let http = loadgen::client()?;
    let mut raw_rates = Vec::new();
    let mut http_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut latencies = Vec::new();
    let mut cpu = Vec::new();
    let mut raw_cpu_us = Vec::new();
    let mut server_cpu_us = Vec::new();
    let mut driver_cpu_us = Vec::new();
    let mut rss_max = 0;
    let (mut acknowledged, mut stored, mut in_cells, mut durable_rounds) = (0u64, 0u64, 0u64, 0);
    for round in 1..=s.rounds {
        let (raw, raw_cpu) = raw_round(&s, round)?;
        println!(
            "  raw SQLite inserts  round {round}: {raw:>9.0} events/s  CPU {raw_cpu:.2} µs/event"
        );
        let h = http_round(&s, &http, round).await?;
        let rate = h.run.events_per_second();
        let p50 = loadgen::percentile(&h.run.latencies_ms, 50.0).unwrap_or(f64::NAN);
        let p99 = loadgen::percentile(&h.run.latencies_ms, 99.0).unwrap_or(f64::NAN);
        let durable =
            h.found.events == h.run.acknowledged && h.found.day_cell_events == h.run.acknowledged;
        println!(
            "  HTTP ingestion      round {round}: {rate:>9.0} events/s ({:.0}% of raw)  batch p50 {p50:.1} ms p99 {p99:.1} ms  server CPU {:.0}% = {:.2} µs/event (driver {:.2} µs/event)  acknowledged {} / in events.db after SIGKILL {} / in day cells {}{}",
            100.0 * rate / raw,
            h.server_cpu_pct,
            h.server_cpu_us,
            h.driver_cpu_us,
            h.run.acknowledged,
            h.found.events,
            h.found.day_cell_events,
            if durable { "" } else { "  ** MISMATCH **" }
        );
        raw_rates.push(raw);
        http_rates.push(rate);
        ratios.push(100.0 * rate / raw);
        latencies.extend(h.run.latencies_ms);
        cpu.push(h.server_cpu_pct);
        raw_cpu_us.push(raw_cpu);
        server_cpu_us.push(h.server_cpu_us);
        driver_cpu_us.push(h.driver_cpu_us);
        rss_max = rss_max.max(h.rss_kib);
        acknowledged += h.run.acknowledged;
        stored += h.found.events;
        in_cells += h.found.day_cell_events;
        durable_rounds += u32::from(durable);
    }
    let median = |v: &[f64]| summarize(v).map_or(f64::NAN, |s| s.median);
    let raw_s = summarize(&raw_rates).context("no baseline sample")?;
    let http_s = summarize(&http_rates).context("no HTTP sample")?;
    println!(
        "RESULT ingest_raw_eps {:.0} {:.0} {:.0}",
        raw_s.median, raw_s.min, raw_s.max
    );
    println!(
        "RESULT ingest_http_eps {:.0} {:.0} {:.0}",
        http_s.median, http_s.min, http_s.max
    );
    println!("RESULT ingest_ratio_pct {:.0}", median(&ratios));
    println!(
        "RESULT ingest_batch_ms {:.1} {:.1}",
        loadgen::percentile(&latencies, 50.0).unwrap_or(f64::NAN),
        loadgen::percentile(&latencies, 99.0).unwrap_or(f64::NAN)
    );
    println!("RESULT ingest_server_cpu_pct {:.0}", median(&cpu));
    println!(
        "RESULT ingest_cpu_us_per_event {:.2} {:.2} {:.2}",
        median(&raw_cpu_us),
        median(&server_cpu_us),
        median(&driver_cpu_us)
    );
    println!("RESULT ingest_rss_kib {rss_max}");
    println!(
        "RESULT ingest_durable {durable_rounds} {} {acknowledged} {stored} {in_cells}",
        s.rounds
    );
    if durable_rounds != s.rounds {
        bail!("acknowledged events are missing from the database (see above)");
    }
    Ok(())
}
