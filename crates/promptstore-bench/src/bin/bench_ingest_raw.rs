//! The baseline of the ingestion benchmark: the same generated events inserted straight
//! into SQLite by a minimal program — a table of the product's event columns with no index
//! beyond its integer key, WAL + `synchronous=FULL`, one prepared multi-row `INSERT` and one
//! transaction per batch of `--batch` events — for `--seconds`, then the rows counted.
//! `bench_ingest_http` runs it on the server's cores, alternating with the server.
//!
//! Usage: `bench_ingest_raw --db FILE --seconds S [--batch 1000] [--prompts 100] [--versions 3]
//!         [--indexes none|row-layout] [--client-ids sequential|uuid-v4|uuid-v7]`
//! Prints `RESULT raw_events_per_s <rate> <rows> <CPU µs per row>`.
//!
//! `--indexes row-layout` gives the table the four indexes the product kept on its events
//! before it stored them in blocks: what they cost the inserts (BENCHMARKS.md, "Ingestion,
//! session 6"). `--client-ids` gives the events random or time-ordered UUIDs instead of
//! the generator's ordered ids: what the shape of client ids costs the dedup index
//! (BENCHMARKS.md, "Client event ids").
//! The benchmark proper passes neither.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use promptstore_bench::args::Flags;
use promptstore_bench::eventgen::{ClientIds, EventGen, Spread};
use promptstore_bench::eventsdb;
use promptstore_bench::pinned::cpu_time_of;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&[
        "db",
        "seconds",
        "batch",
        "prompts",
        "versions",
        "indexes",
        "client-ids",
    ])?;
    let db = PathBuf::from(flags.required("db")?);
    let client_ids = ClientIds::from_flags(&flags)?;
    let seconds: f64 = flags.required_parsed("seconds")?;
    let batch: usize = flags.parsed_or("batch", 1000)?;
    if !(seconds > 0.0 && seconds <= 3600.0 && (1..=1000).contains(&batch)) {
        bail!("--seconds must be in (0, 3600] and --batch in 1..=1000");
    }
    if db.exists() {
        bail!(
            "{} exists: the baseline starts from an empty file",
            db.display()
        );
    }
    let generator = EventGen {
        prompts: flags.parsed_or("prompts", 100)?,
        versions: flags.parsed_or("versions", 3)?,
        batch_size: batch,
        spread: Spread::Live {
            // As `bench_ingest_http` generates them: at most a minute old by a round's end.
            window: time::Duration::seconds(50),
        },
        experiment: None,
        run_tag: "raw".to_owned(),
    };
    let mut conn = eventsdb::open_like_the_product(&db).await?;
    let indexes = flags
        .optional("indexes")
        .map_or(Ok(eventsdb::BaselineIndexes::None), |s| s.parse())?;
    eventsdb::create_schema(&mut conn, indexes).await?;
    let sql = eventsdb::insert_sql(batch);
    let project = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    // Only the inserts are timed: generating the events is the load generator's work (on
    // the HTTP side it runs on the other core), not the database's.
    let deadline = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut inserting = Duration::ZERO;
    // CPU time of this process (every thread: sqlx runs SQLite on a worker) during the
    // inserts only, in clock ticks read around each batch: the differences add up to the
    // inserts' CPU without the generator's.
    let mut cpu = Duration::ZERO;
    let me = std::process::id();
    let mut k = 0u64;
    let mut inserted = 0u64;
    while started.elapsed() < deadline {
        let mut events = generator.batch(k, time::OffsetDateTime::now_utc());
        client_ids.apply(&mut events);
        let cpu_before = cpu_time_of(me)?;
        let t = Instant::now();
        eventsdb::insert_batch(&mut conn, &sql, project, 1 + inserted as i64, &events).await?;
        inserting += t.elapsed();
        cpu += cpu_time_of(me)?.saturating_sub(cpu_before);
        inserted += events.len() as u64;
        k += 1;
    }
    let elapsed = inserting;
    drop(conn);
    let rows = eventsdb::contents(&db).await?.events;
    if rows != inserted {
        bail!("the baseline committed {inserted} rows but the file holds {rows}");
    }
    println!(
        "RESULT raw_events_per_s {:.0} {rows} {:.2}",
        inserted as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / inserted.max(1) as f64
    );
    Ok(())
}
