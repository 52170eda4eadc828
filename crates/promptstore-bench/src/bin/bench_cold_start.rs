//! Cold start to first served request: the time from spawning the server process until its
//! first `POST /api/v1/render` answers 200, for `promptstore serve` on an existing data
//! directory and for the bare axum baseline, alternated run by run on the same machine.
//!
//! "Cold" is the process (a new process opens the database, loads the key table and builds
//! the runtime snapshot of every prompt); the OS page cache is warm, as it is when a
//! service restarts. The client polls the port every 200 µs.
//!
//! Usage: `bench_cold_start --promptstore BIN --bare BIN --data-dir DIR --work DIR
//! [--runs 10] [--body-bytes 1024] [--key KEY]` (the key defaults to the seeded runtime key)

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use promptstore_bench::args::Flags;
use promptstore_bench::process::{ServerKind, start};
use promptstore_bench::seed::{RUNTIME_KEY_FILE, read_key};
use promptstore_bench::stats::summarize;
use promptstore_bench::workload;

/// The most one start may take before the run is declared failed.
const DEADLINE: Duration = Duration::from_secs(20);

fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&[
        "promptstore",
        "bare",
        "data-dir",
        "work",
        "runs",
        "body-bytes",
        "key",
        "tag",
    ])?;
    let data_dir = PathBuf::from(flags.required("data-dir")?);
    let work = PathBuf::from(flags.required("work")?);
    let runs: usize = flags.parsed_or("runs", 10)?;
    let tag = flags.optional("tag").unwrap_or_else(|| "cold".to_owned());
    let key = match flags.optional("key") {
        Some(k) => k,
        None => read_key(&data_dir, RUNTIME_KEY_FILE)?,
    };
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let promptstore = ServerKind::Promptstore {
        bin: flags.required("promptstore")?.into(),
        data_dir,
    };
    let bare = ServerKind::Bare {
        bin: flags.required("bare")?.into(),
        body_bytes: flags.parsed_or("body-bytes", 1024)?,
    };
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = workload::render_body(&workload::prompt_name(1));

    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..runs {
        // Alternate which one goes first, so neither always follows the other's exit.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let kind = if which == 0 { &bare } else { &promptstore };
            let log = work.join(format!("{tag}-{}-{run}.log", kind.name()));
            let mut server = start(kind, &log)?;
            let elapsed =
                server.wait_first_success("/api/v1/render", &headers, body.as_bytes(), DEADLINE)?;
            server.stop()?;
            times[which].push(elapsed.as_secs_f64() * 1e3);
        }
    }
    let (Some(b), Some(p)) = (summarize(&times[0]), summarize(&times[1])) else {
        bail!("no measurement");
    };
    println!("cold start to first 200 render, {runs} runs each:");
    println!(
        "  bare_axum:   median {:.1} ms (min {:.1}, max {:.1})",
        b.median, b.min, b.max
    );
    println!(
        "  promptstore: median {:.1} ms (min {:.1}, max {:.1})",
        p.median, p.min, p.max
    );
    println!(
        "RESULT {tag}_bare_ms {:.1} {:.1} {:.1}",
        b.median, b.min, b.max
    );
    println!(
        "RESULT {tag}_promptstore_ms {:.1} {:.1} {:.1}",
        p.median, p.min, p.max
    );
    Ok(())
}
