//! Seeds a data directory for the benchmarks: the default project, an admin and a runtime
//! key (written to `bench-admin.key` and `bench-runtime.key` inside it, with the render
//! request body in `bench-render-body.json`), and N benchmark
//! prompts with V versions each, `production` on version V-1.
//!
//! Usage: `bench_seed --data-dir DIR --prompts N --versions V [--batch 200]`

use std::path::PathBuf;
use std::time::Instant;

use promptstore_bench::args::Flags;
use promptstore_bench::seed::{SeedPlan, seed};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&["data-dir", "prompts", "versions", "batch"])?;
    let dir = PathBuf::from(flags.required("data-dir")?);
    let plan = SeedPlan {
        prompts: flags.required_parsed("prompts")?,
        versions: flags.required_parsed("versions")?,
        batch: flags.parsed_or("batch", 200)?,
    };
    let started = Instant::now();
    let seeded = seed(&dir, plan).await?;
    println!(
        "seeded {} prompts, {} versions into {} in {:.1} s",
        seeded.prompts,
        seeded.versions,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
