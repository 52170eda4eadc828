//! Memory with the whole registry in use: starts `promptstore serve` on a seeded data
//! directory, touches every prompt once (a render of each prompt at `production`, then a
//! bulk resolve at `latest`), and reads `VmRSS`/`VmHWM` from `/proc/<pid>/status` after the
//! start, after the renders and after the bulk resolve. The baseline is the bare axum server
//! after its first answer.
//!
//! Usage: `bench_footprint --promptstore BIN --bare BIN --data-dir DIR --work DIR
//! --prompts N [--body-bytes 1024] [--key KEY]` (the key defaults to the seeded runtime key)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::process::{Memory, ServerKind, start};
use promptstore_bench::seed::{RUNTIME_KEY_FILE, read_key};
use promptstore_bench::workload;
use promptstore_client::Client;
use promptstore_client::types::RenderRequest;

const DEADLINE: Duration = Duration::from_secs(60);

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(what: &str, m: Memory) {
    println!(
        "  {what:<40} VmRSS {:>7.1} MiB   VmHWM {:>7.1} MiB",
        mib(m.rss_kib),
        mib(m.hwm_kib)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&[
        "promptstore",
        "bare",
        "data-dir",
        "work",
        "prompts",
        "body-bytes",
        "key",
    ])?;
    let data_dir = PathBuf::from(flags.required("data-dir")?);
    let work = PathBuf::from(flags.required("work")?);
    let prompts: usize = flags.required_parsed("prompts")?;
    let key = match flags.optional("key") {
        Some(k) => k,
        None => read_key(&data_dir, RUNTIME_KEY_FILE)?,
    };
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let first_body = workload::render_body(&workload::prompt_name(1));

    let bare = ServerKind::Bare {
        bin: flags.required("bare")?.into(),
        body_bytes: flags.parsed_or("body-bytes", 1024)?,
    };
    let mut server = start(&bare, &work.join("footprint-bare.log"))?;
    server.wait_first_success("/api/v1/render", &headers, first_body.as_bytes(), DEADLINE)?;
    let bare_memory = server.memory()?;
    server.stop()?;

    let promptstore = ServerKind::Promptstore {
        bin: flags.required("promptstore")?.into(),
        data_dir,
    };
    let mut server = start(&promptstore, &work.join("footprint-promptstore.log"))?;
    let first =
        server.wait_first_success("/api/v1/render", &headers, first_body.as_bytes(), DEADLINE)?;
    let started_memory = server.memory()?;

    let client = Client::new(format!("http://{}", server.addr), key.clone())
        .context("building the client")?;
    let touch_started = Instant::now();
    let variables = match workload::render_variables() {
        serde_json::Value::Object(map) => map,
        _ => bail!("the workload variables are not an object"),
    };
    for index in 1..=prompts {
        let request = RenderRequest {
            name: workload::prompt_name(index),
            label: Some(workload::LABEL.to_owned()),
            version: None,
            variables: variables.clone(),
            unit_id: None,
        };
        client
            .render(&request)
            .await
            .with_context(|| format!("rendering {}", request.name))?;
    }
    let rendered_memory = server.memory()?;
    let bulk = client
        .bulk_resolve("latest")
        .await
        .context("bulk resolve at latest")?;
    if bulk.prompts.len() != prompts {
        bail!(
            "bulk resolve returned {} prompts, expected {prompts}",
            bulk.prompts.len()
        );
    }
    drop(bulk);
    let touch = touch_started.elapsed();
    let touched_memory = server.memory()?;
    server.stop()?;

    println!(
        "memory with {prompts} prompts loaded (first render after {:.0} ms; {prompts} renders + bulk took {:.1} s):",
        first.as_secs_f64() * 1e3,
        touch.as_secs_f64()
    );
    report("bare_axum after its first answer", bare_memory);
    report("promptstore after its first render", started_memory);
    report("promptstore after rendering every prompt", rendered_memory);
    report("promptstore after a bulk resolve of all", touched_memory);
    for (name, m) in [
        ("bare", bare_memory),
        ("started", started_memory),
        ("rendered", rendered_memory),
        ("touched", touched_memory),
    ] {
        println!("RESULT rss_{name}_kib {} {}", m.rss_kib, m.hwm_kib);
    }
    Ok(())
}
