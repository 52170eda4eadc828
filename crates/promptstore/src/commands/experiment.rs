//! `promptstore experiment …`: the lifecycle of A/B tests (create from a file, start, change
//! arms, stop, conclude with promotion), their results as tables, and their history.

use std::path::Path;

use anyhow::anyhow;
use promptstore_client::types::{
    ArmSpec, CreateExperiment, EndExperiment, Experiment, ExperimentResults, ExperimentStatus,
    MetricResult, Outcome, UpdateArms,
};
use promptstore_client::{ExperimentFilter, PageRequest};

use super::connect;
use crate::cli::ExperimentCommand;
use crate::failure::Failure;
use crate::files::{parse_structured, read_text};
use crate::output::{Table, print_json, when};

/// An arms file: a list of arms, or an object with `arms`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ArmsFile {
    List(Vec<ArmSpec>),
    Object { arms: Vec<ArmSpec> },
}

fn read_arms(path: &Path) -> anyhow::Result<Vec<ArmSpec>> {
    let file: ArmsFile = parse_structured(path, &read_text(path)?).map_err(|e| {
        anyhow!("{e} (expected a list of arms [{{name, version, weight}}] or {{arms: [...]}})")
    })?;
    Ok(match file {
        ArmsFile::List(arms) | ArmsFile::Object { arms } => arms,
    })
}

fn print_experiment(e: &Experiment, json: bool) -> Result<(), Failure> {
    if json {
        return Ok(print_json(e)?);
    }
    outln!("experiment {} ({})", e.name, e.id);
    outln!("  on:        {}@{}", e.prompt, e.label);
    outln!("  status:    {}", e.status.as_str());
    let direction = e.primary_metric.direction.map_or(String::new(), |d| {
        format!(" ({d:?} is better)").to_lowercase()
    });
    outln!("  primary:   {}{direction}", e.primary_metric.metric);
    for g in &e.guardrails {
        outln!("  guardrail: {} (tolerance {})", g.metric, g.tolerance);
    }
    outln!(
        "  decisions: {} events per arm, alpha {}{}, on conclusion: {:?}",
        e.min_sample_per_arm,
        e.alpha,
        e.max_duration_hours
            .map_or(String::new(), |h| format!(", at most {h} h")),
        e.on_conclusion
    );
    if let Some(at) = e.started_at {
        outln!("  started:   {}", when(at));
    }
    if let Some(at) = e.phase_started_at {
        outln!("  phase:     since {}", when(at));
    }
    if let Some(at) = e.ended_at {
        outln!("  ended:     {}", when(at));
    }
    if let Some(c) = &e.conclusion {
        outln!(
            "  conclusion: {} ({}){} — {}",
            c.winner.as_deref().unwrap_or("no winner"),
            c.decided_by,
            if c.promoted { ", promoted" } else { "" },
            c.reason
        );
    }
    let mut table = Table::new(&["arm", "version", "weight", "state"]);
    for (i, a) in e.arms.iter().enumerate() {
        let state = match (&a.stopped, &a.stopped_reason) {
            (true, Some(r)) => format!("stopped: {r}"),
            (true, None) => "stopped".to_owned(),
            (false, _) if i == 0 => "control".to_owned(),
            (false, _) => "active".to_owned(),
        };
        table.row(vec![
            a.name.clone(),
            a.version.to_string(),
            a.weight.to_string(),
            state,
        ]);
    }
    outln!();
    table.print();
    Ok(())
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
}

fn pct(v: f64) -> String {
    format!("{:+.2}%", v * 100.0)
}

fn print_metric(m: &MetricResult) {
    outln!(
        "{} ({} is better)",
        m.metric,
        format!("{:?}", m.direction).to_lowercase()
    );
    let mut arms = Table::new(&["arm", "n", "mean", "variance"]);
    for a in &m.arms {
        arms.row(vec![
            a.arm.clone(),
            a.n.to_string(),
            num(a.mean),
            num(a.variance),
        ]);
    }
    arms.print();
    let mut comparisons = Table::new(&[
        "arm vs control",
        "lift",
        "always-valid CI",
        "p (sequential)",
        "p (fixed)",
        "P(beat control)",
        "call",
    ]);
    for c in &m.comparisons {
        let (lift, ci, p_seq) = match &c.sequential {
            Outcome::Defined(t) => (
                pct(t.estimate),
                format!("{} to {}", pct(t.ci_lower), pct(t.ci_upper)),
                format!("{:.4}", t.p_value),
            ),
            Outcome::Undefined { undefined } => ("-".into(), undefined.clone(), "-".into()),
        };
        let p_fixed = match &c.frequentist_relative {
            Outcome::Defined(t) => format!("{:.4}", t.p_value),
            Outcome::Undefined { .. } => "-".into(),
        };
        let beat = match &c.bayesian {
            Outcome::Defined(b) => format!("{:.1}%", b.chance_to_beat_control * 100.0),
            Outcome::Undefined { .. } => "-".into(),
        };
        comparisons.row(vec![
            format!("{} vs {}", c.arm, c.control),
            lift,
            ci,
            p_seq,
            p_fixed,
            beat,
            c.call.clone(),
        ]);
    }
    comparisons.print();
}

fn print_results(r: &ExperimentResults) {
    outln!(
        "results of {} ({}), {} to {}",
        r.experiment,
        r.status.as_str(),
        r.from.map_or_else(|| "-".to_owned(), when),
        when(r.to)
    );
    outln!("verdict: {} — {}", r.verdict.code, r.verdict.message);
    outln!();
    print_metric(&r.primary);
    for g in &r.guardrails {
        outln!();
        outln!("guardrail:");
        print_metric(g);
    }
    outln!();
    outln!(
        "sample-ratio check: units {:?}, expected {:?}, chi² {:.3}, p {:.4}{}",
        r.srm.observed,
        r.srm.expected.iter().map(|e| e.round()).collect::<Vec<_>>(),
        r.srm.chi2,
        r.srm.p_value,
        if r.srm.mismatch {
            " — MISMATCH: the split is not what the weights say; do not trust the results"
        } else {
            ""
        }
    );
    let s = &r.sample_size;
    match (&s.undefined, s.required_per_arm, s.remaining_per_arm) {
        (Some(why), _, _) => outln!("sample size: undefined — {why}"),
        (None, Some(required), remaining) => outln!(
            "sample size for a {} change at {:.0}% power: {required} per arm ({} still to collect)",
            pct(s.mde).trim_start_matches('+'),
            s.power * 100.0,
            remaining.unwrap_or(0)
        ),
        (None, None, _) => outln!("sample size: -"),
    }
}

fn status_of(raw: Option<&str>) -> Result<Option<ExperimentStatus>, Failure> {
    raw.map(|s| {
        ExperimentStatus::parse(s).ok_or_else(|| {
            Failure::usage(format!(
                "unknown status `{s}`: use draft, running, stopped or concluded"
            ))
        })
    })
    .transpose()
}

pub async fn run(command: ExperimentCommand) -> Result<(), Failure> {
    match command {
        ExperimentCommand::Create { client, file } => {
            let api = connect(&client)?;
            let request: CreateExperiment = parse_structured(&file, &read_text(&file)?)?;
            let created = api.create_experiment(&request).await?;
            if client.json {
                return Ok(print_json(&created)?);
            }
            outln!(
                "created experiment {} ({}) on {}@{} as a draft; start it with `promptstore experiment start {}`",
                created.name,
                created.id,
                created.prompt,
                created.label,
                created.id
            );
            Ok(())
        }
        ExperimentCommand::List {
            client,
            prompt,
            status,
        } => {
            let api = connect(&client)?;
            let filter = ExperimentFilter {
                prompt,
                status: status_of(status.as_deref())?,
                page: PageRequest {
                    cursor: None,
                    limit: Some(200),
                },
            };
            let page = api.list_experiments(&filter).await?;
            if client.json {
                return Ok(print_json(&page.items)?);
            }
            let mut table = Table::new(&["id", "name", "on", "status", "arms", "created"]);
            for e in &page.items {
                table.row(vec![
                    e.id.clone(),
                    e.name.clone(),
                    format!("{}@{}", e.prompt, e.label),
                    e.status.as_str().to_owned(),
                    e.arms
                        .iter()
                        .map(|a| format!("{}=v{}", a.name, a.version))
                        .collect::<Vec<_>>()
                        .join(" "),
                    when(e.created_at),
                ]);
            }
            table.print();
            Ok(())
        }
        ExperimentCommand::Show { client, id } => {
            let api = connect(&client)?;
            let e = api.get_experiment(&id).await?;
            print_experiment(&e, client.json)
        }
        ExperimentCommand::Start { client, id } => {
            let api = connect(&client)?;
            let e = api.start_experiment(&id, None).await?;
            print_experiment(&e, client.json)
        }
        ExperimentCommand::Stop { client, id, reason } => {
            let api = connect(&client)?;
            let request = EndExperiment {
                reason: reason.unwrap_or_default(),
                ..EndExperiment::default()
            };
            let e = api.stop_experiment(&id, &request).await?;
            print_experiment(&e, client.json)
        }
        ExperimentCommand::Conclude {
            client,
            id,
            winner,
            promote,
            reason,
        } => {
            let api = connect(&client)?;
            let request = EndExperiment {
                winner,
                promote,
                reason: reason.unwrap_or_default(),
            };
            let e = api.conclude_experiment(&id, &request).await?;
            print_experiment(&e, client.json)
        }
        ExperimentCommand::Arms {
            client,
            id,
            file,
            reason,
        } => {
            let api = connect(&client)?;
            let arms = read_arms(&file)?;
            // The arms replace what was read: refuse if someone changed them meanwhile.
            let current = api.get_experiment(&id).await?;
            let e = api
                .set_experiment_arms(&id, Some(current.revision), &UpdateArms { arms, reason })
                .await?;
            print_experiment(&e, client.json)
        }
        ExperimentCommand::Results {
            client,
            id,
            all_phases,
            mde,
        } => {
            let api = connect(&client)?;
            let results = api.experiment_results(&id, all_phases, mde).await?;
            if client.json {
                return Ok(print_json(&results)?);
            }
            print_results(&results);
            Ok(())
        }
        ExperimentCommand::History { client, id } => {
            let api = connect(&client)?;
            let mut entries = Vec::new();
            let mut page = PageRequest {
                cursor: None,
                limit: Some(200),
            };
            loop {
                let found = api.experiment_history(&id, &page).await?;
                entries.extend(found.items);
                match found.next_cursor {
                    Some(cursor) => page.cursor = Some(cursor),
                    None => break,
                }
            }
            if client.json {
                return Ok(print_json(&entries)?);
            }
            let mut table = Table::new(&["at", "kind", "actor", "message"]);
            for h in &entries {
                table.row(vec![
                    when(h.at),
                    h.kind.clone(),
                    h.actor.clone(),
                    h.message.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
        ExperimentCommand::Delete { client, id } => {
            let api = connect(&client)?;
            api.delete_experiment(&id).await?;
            outln!("deleted experiment {id}");
            Ok(())
        }
    }
}
