//! What sticky arm assignment adds to a warm resolve: `ProjectSnapshot::resolve_for`, the
//! call behind `GET /api/v1/resolve`, timed in-process (an HTTP round trip's noise is a
//! thousand times the effect being measured).
//!
//! The snapshot is built from a seeded store (`--prompts` benchmark prompts × 3 versions);
//! the experiment is a running one on `bench/chat-00001` at `production` with two arms.
//! Variants, each called `--iters` times per round with unit ids cycling through 4,096
//! distinct ids, rounds alternating:
//! - `baseline`: no experiment on the snapshot, resolve with a unit id (the same call);
//! - `assigned`: the experiment runs on the label, resolve with a unit id (SHA-256 of
//!   `"{experiment}:{unit}"`, the walk over the weights, the assignment in the answer);
//! - `control`: the experiment runs, no unit id (the control's version, no assignment);
//! - `baseline_wire` / `assigned_wire`: the same plus `Resolved::to_wire()`, the response
//!   body the handler serialises (with the assignment's experiment id and arm name).
//!
//! Usage: `bench_abtest_assign --work DIR [--prompts 100] [--iters 2000000] [--rounds 5]`
//! Prints `RESULT abtest_assign_ns <variant> <median> <min> <max>` lines.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use promptstore_bench::args::Flags;
use promptstore_bench::seed::{SeedPlan, seed};
use promptstore_bench::stats::summarize;
use promptstore_bench::workload;
use promptstore_core::experiments::model::ExperimentRecord;
use promptstore_core::runtime::ProjectSnapshot;
use promptstore_core::store::Store;
use promptstore_core::template::RenderLimits;
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{Arm, ExperimentStatus, MetricSpec, OnConclusion, Selector};

const UNITS: usize = 4096;

fn arm(name: &str, version: u32) -> Arm {
    Arm {
        name: name.to_owned(),
        version,
        weight: 1.0,
        stopped: false,
        stopped_reason: None,
    }
}

async fn snapshot(work: &Path, prompts: usize) -> anyhow::Result<ProjectSnapshot> {
    let dir = work.join("abtest-assign");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    seed(
        &dir,
        SeedPlan {
            prompts,
            versions: 3,
            batch: 200,
        },
    )
    .await?;
    let store = SqliteStore::open_in(&dir).await?;
    let project = store
        .list_projects()
        .await?
        .into_iter()
        .next()
        .context("the seeded store has no project")?
        .id;
    let snapshot = ProjectSnapshot::build(
        store.all_prompts(&project).await?,
        store.live_versions(&project, None).await?,
        RenderLimits::default(),
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(snapshot)
}

fn experiment_on(snapshot: &ProjectSnapshot, name: &str) -> anyhow::Result<ExperimentRecord> {
    let prompt = snapshot.prompt(name).context("no benchmark prompt")?;
    let now = time::OffsetDateTime::now_utc();
    Ok(ExperimentRecord {
        id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned(),
        project: prompt.project.clone(),
        name: "shorter reply".to_owned(),
        description: String::new(),
        prompt_id: prompt.id.clone(),
        prompt: prompt.name.clone(),
        label: workload::LABEL.to_owned(),
        arms: vec![arm("control", 2), arm("treatment", 3)],
        primary_metric: MetricSpec {
            metric: "success_rate".to_owned(),
            direction: None,
        },
        guardrails: Vec::new(),
        min_sample_per_arm: 100,
        max_duration_hours: None,
        on_conclusion: OnConclusion::Nothing,
        alpha: 0.05,
        sequential_tuning: 5000.0,
        prior: None,
        mde: 0.05,
        status: ExperimentStatus::Running,
        conclusion: None,
        revision: 1,
        phase: 1,
        created_by: "bench".to_owned(),
        created_at: now,
        started_at: Some(now),
        phase_started_at: Some(now),
        ended_at: None,
    })
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Baseline,
    Assigned,
    Control,
    BaselineWire,
    AssignedWire,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Baseline,
        Variant::Assigned,
        Variant::Control,
        Variant::BaselineWire,
        Variant::AssignedWire,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Baseline => "baseline",
            Variant::Assigned => "assigned",
            Variant::Control => "control",
            Variant::BaselineWire => "baseline_wire",
            Variant::AssignedWire => "assigned_wire",
        }
    }
}

/// ns per call of one variant over `iters` calls.
fn time_variant(
    variant: Variant,
    plain: &ProjectSnapshot,
    running: &ProjectSnapshot,
    name: &str,
    selector: &Selector,
    units: &[String],
    iters: usize,
) -> anyhow::Result<f64> {
    let (snapshot, with_unit, wire) = match variant {
        Variant::Baseline => (plain, true, false),
        Variant::Assigned => (running, true, false),
        Variant::Control => (running, false, false),
        Variant::BaselineWire => (plain, true, true),
        Variant::AssignedWire => (running, true, true),
    };
    let mut assigned = 0usize;
    let started = Instant::now();
    for i in 0..iters {
        let unit = with_unit.then(|| units[i % UNITS].as_str());
        let resolved = snapshot
            .resolve_for(black_box(name), black_box(selector), black_box(unit))
            .map_err(|e| anyhow::anyhow!("resolve failed: {e:?}"))?;
        if wire {
            let answer = resolved.to_wire();
            assigned += usize::from(answer.assignment.is_some());
            black_box(answer);
        } else {
            assigned += usize::from(resolved.assignment.is_some());
            black_box(resolved);
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / iters as f64;
    // The variants must do what they claim: assignment exactly when an experiment runs
    // and a unit id is given.
    let expect_assigned = matches!(variant, Variant::Assigned | Variant::AssignedWire);
    if (assigned == iters) != expect_assigned || (assigned != 0 && assigned != iters) {
        bail!(
            "variant {}: {assigned} of {iters} calls were assigned",
            variant.name()
        );
    }
    Ok(ns)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::from_env(&["work", "prompts", "iters", "rounds"])?;
    let work = PathBuf::from(flags.required("work")?);
    let prompts: usize = flags.parsed_or("prompts", 100)?;
    let iters: usize = flags.parsed_or("iters", 2_000_000)?;
    let rounds: usize = flags.parsed_or("rounds", 5)?;
    if !(1..=100_000).contains(&prompts)
        || !(1_000..=100_000_000).contains(&iters)
        || !(1..=50).contains(&rounds)
    {
        bail!("need --prompts 1..=100000, --iters 1000..=100000000, --rounds 1..=50");
    }
    std::fs::create_dir_all(&work)?;
    let plain = snapshot(&work, prompts).await?;
    let name = workload::prompt_name(1);
    let running = plain.with_experiments(&[experiment_on(&plain, &name)?]);
    let selector = Selector::Label(workload::LABEL.to_owned());
    let units: Vec<String> = (0..UNITS).map(|i| format!("user-{i:06}")).collect();

    // Warm-up: caches, branch predictors, the CPU's clock.
    for v in Variant::ALL {
        time_variant(v, &plain, &running, &name, &selector, &units, iters / 10)?;
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Variant::ALL.len()];
    for round in 1..=rounds {
        let mut line = format!("  round {round}:");
        for (i, v) in Variant::ALL.into_iter().enumerate() {
            let ns = time_variant(v, &plain, &running, &name, &selector, &units, iters)?;
            line.push_str(&format!("  {} {ns:.0} ns", v.name()));
            samples[i].push(ns);
        }
        println!("{line}");
    }
    for (v, s) in Variant::ALL.into_iter().zip(&samples) {
        let s = summarize(s).context("no samples")?;
        println!(
            "RESULT abtest_assign_ns {} {:.1} {:.1} {:.1}",
            v.name(),
            s.median,
            s.min,
            s.max
        );
    }
    Ok(())
}
