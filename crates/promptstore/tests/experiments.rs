//! A/B tests through the real binary: the calculator checked against the reference oracle
//! (`check.py` over `shared/abstats-reference/cases.json`), and the experiment commands on a
//! real server, with assignment that stays the same after a restart on the same data.

// A failed unwrap is a failed test with its location: exactly what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, Server};

/// `shared/abstats-reference` beside the repository (the workspace layout, also in CI).
fn reference_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/abstats-reference");
    assert!(
        dir.join("cases.json").is_file() && dir.join("check.py").is_file(),
        "the reference cases are missing: expected cases.json and check.py in {}",
        dir.display()
    );
    dir
}

/// `promptstore … | head`: the reader closes the pipe early. The command ends quietly with
/// the SIGPIPE status, never with a panic and a backtrace.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(reference_dir().join("cases.json"))
        // About 85 KB: more than a Linux pipe buffers (64 KiB), so the writer meets the
        // closed pipe.
        .args(["--format", "reference"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe is closed with most of the report unread.
    assert!(!first.is_empty());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_calculator_matches_every_reference_case() {
    let dir = reference_dir();
    let output = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(dir.join("cases.json"))
        .args(["--format", "reference"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "abtest analyze failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        results.as_array().is_some_and(|cases| cases.len() > 10),
        "{results}"
    );
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("results.json");
    std::fs::write(&file, &output.stdout).unwrap();
    let check = Command::new("python3")
        .arg(dir.join("check.py"))
        .arg(&file)
        .arg("--cases")
        .arg(dir.join("cases.json"))
        .output()
        .expect("python3 must be installed to check the calculator against the reference");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains(" 0 failed"),
        "check.py found differences:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{report}");
}

#[test]
fn the_calculator_reads_one_case_and_explains_bad_input() {
    let work = tempfile::tempdir().unwrap();
    let case = work.path().join("case.json");
    std::fs::write(
        &case,
        r#"{"id": "signup", "input": {"arms": [{"n": 1000, "successes": 100}, {"n": 1000, "successes": 150}]}}"#,
    )
    .unwrap();
    let report = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(&case)
        .output()
        .unwrap();
    assert!(report.status.success());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("signup"), "{text}");
    let json = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(&case)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value[0]["id"], "signup");

    let bad = work.path().join("bad.json");
    std::fs::write(&bad, r#"{"input": {"arms": [{"n": 10, "successes": 20}]}}"#).unwrap();
    let refused = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bad.json"), "{stderr}");
    let not_json = work.path().join("x.json");
    std::fs::write(&not_json, "{oops").unwrap();
    let refused = Command::new(BIN)
        .args(["abtest", "analyze"])
        .arg(&not_json)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not valid JSON"));
}

const EXPERIMENT: &str = "\
name: shorter answers
prompt: support/triage
label: production
arms:
  - {name: control, version: 1, weight: 1}
  - {name: short, version: 2, weight: 1}
primary_metric: {metric: success_rate}
guardrails:
  - {metric: latency_ms, tolerance: 0.1}
";

/// The arm each of `units` is assigned when rendering the production label.
fn arms_of(server: &Server, units: &[String]) -> BTreeMap<String, String> {
    units
        .iter()
        .map(|unit| {
            let rendered = server.json(&[
                "prompt",
                "render",
                "support/triage",
                "--label",
                "production",
                "--unit-id",
                unit,
            ]);
            let arm = rendered["assignment"]["arm"].as_str().unwrap().to_owned();
            let text = rendered["text"].as_str().unwrap();
            assert_eq!(text, if arm == "control" { "v1" } else { "v2" });
            (unit.clone(), arm)
        })
        .collect()
}

#[test]
fn experiments_from_the_command_line_with_sticky_assignment_across_a_restart() {
    let server = Server::start();
    server.ok(&["prompt", "create", "support/triage", "--text", "v1"]);
    server.ok(&["prompt", "push", "support/triage", "--text", "v2"]);
    server.ok(&["label", "set", "support/triage", "production", "1"]);
    let files = tempfile::tempdir().unwrap();
    let definition = files.path().join("experiment.yaml");
    std::fs::write(&definition, EXPERIMENT).unwrap();

    let created = server.json(&[
        "experiment",
        "create",
        "--file",
        definition.to_str().unwrap(),
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "draft");
    let started = server.ok(&["experiment", "start", &id]);
    assert!(started.contains("running"), "{started}");
    // Starting twice is refused with the lifecycle's reason, exit 1.
    let again = server.run(&["experiment", "start", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("invalid_transition"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let units: Vec<String> = (0..12).map(|i| format!("user-{i}")).collect();
    let before = arms_of(&server, &units);
    assert!(
        before.values().any(|a| a == "control") && before.values().any(|a| a == "short"),
        "{before:?}"
    );

    // The same units get the same arms after a restart on the same data directory.
    let key = server.admin_key.clone();
    let dir = server.kill_hard();
    let server = Server::start_in(dir, Some(&key));
    assert_eq!(arms_of(&server, &units), before);

    let listed = server.ok(&["experiment", "list", "--status", "running"]);
    assert!(listed.contains("shorter answers"), "{listed}");
    let results = server.ok(&["experiment", "results", &id]);
    assert!(results.contains("verdict:"), "{results}");
    assert!(results.contains("success_rate"), "{results}");
    let json = server.json(&["experiment", "results", &id]);
    assert_eq!(json["experiment"], id.as_str());

    // New weights with a reason; then conclude with promotion.
    let arms = files.path().join("arms.yaml");
    std::fs::write(
        &arms,
        "- {name: control, version: 1, weight: 1}\n- {name: short, version: 2, weight: 3}\n",
    )
    .unwrap();
    server.ok(&[
        "experiment",
        "arms",
        &id,
        "--file",
        arms.to_str().unwrap(),
        "--reason",
        "more traffic to short",
    ]);
    let concluded = server.json(&[
        "experiment",
        "conclude",
        &id,
        "--winner",
        "short",
        "--promote",
        "--reason",
        "short wins",
    ]);
    assert_eq!(concluded["status"], "concluded");
    assert_eq!(concluded["conclusion"]["promoted"], true);
    let label = server.json(&["label", "show", "support/triage", "production"]);
    assert_eq!(label["version"], 2);
    let history = server.ok(&["experiment", "history", &id]);
    for kind in ["created", "started", "arms_changed", "concluded"] {
        assert!(history.contains(kind), "{history}");
    }
    assert!(history.contains("more traffic to short"), "{history}");
    let shown = server.ok(&["experiment", "show", &id]);
    assert!(shown.contains("short wins"), "{shown}");
}
