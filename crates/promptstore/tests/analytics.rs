//! End-to-end tests of the analytics commands against a real `promptstore serve`:
//! `events import`, `stats`, `prices` and `alerts`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::Server;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn write_file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn server_with_prompt() -> Server {
    let server = Server::start();
    server.ok(&[
        "prompt",
        "create",
        "support/triage",
        "--text",
        "Sort: {{ t }}",
    ]);
    server.ok(&[
        "prompt",
        "push",
        "support/triage",
        "--text",
        "Sort, one word: {{ t }}",
    ]);
    server
}

/// Line `n` of an events file: version 1 or 2, a model, a latency.
fn line(id: &str, version: u32, model: &str, latency: u32) -> String {
    format!(
        r#"{{"id":"{id}","prompt":"support/triage","version":{version},"model":"{model}","latency_ms":{latency},"input_tokens":100,"output_tokens":20}}"#
    )
}

#[test]
fn events_import_reports_lines_and_fails_on_rejections() {
    let server = server_with_prompt();
    let dir = tempfile::tempdir().unwrap();
    let content = [
        line("e1", 1, "gpt-4o-mini", 100),
        line("e2", 2, "gpt-4o-mini", 200),
        r#"{"prompt":"no/such/prompt"}"#.to_owned(),
        String::new(),
        "this is not json".to_owned(),
        line("e1", 1, "gpt-4o-mini", 100),
        line("e3", 2, "in-house", 300),
    ]
    .join("\n");
    let file = write_file(&dir, "events.ndjson", &content);
    // Small batches, so that line numbers must be carried across requests.
    let output = server.run(&["events", "import", file.to_str().unwrap(), "--batch", "2"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    assert!(
        out.contains("3 accepted, 1 duplicates, 2 rejected"),
        "{out}"
    );
    assert!(
        out.contains("line 3: prompt 'no/such/prompt' does not exist"),
        "{out}"
    );
    assert!(out.contains("(not_found, field prompt)"), "{out}");
    assert!(out.contains("line 5: "), "{out}");
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: 2 of 6 events were rejected"),
        "{err}"
    );

    // A clean file: everything already stored is a duplicate, exit 0.
    let clean = write_file(
        &dir,
        "clean.ndjson",
        &format!(
            "{}\n{}\n",
            line("e1", 1, "gpt-4o-mini", 100),
            line("e4", 1, "gpt-4o-mini", 150)
        ),
    );
    let report = server.json(&["events", "import", clean.to_str().unwrap()]);
    assert_eq!(report["accepted"], 1);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["rejected"], 0);

    // A missing file is one clear error line.
    let output = server.run(&[
        "events",
        "import",
        dir.path().join("nope.ndjson").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot open"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn stats_prints_a_summary_table_and_breakdowns() {
    let server = server_with_prompt();
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..10)
        .map(|i| line(&format!("a{i}"), 1, "gpt-4o-mini", 100 + i))
        .collect();
    lines.extend((0..5).map(|i| line(&format!("b{i}"), 2, "in-house", 400 + i)));
    lines.push(
        r#"{"id":"f1","prompt":"support/triage","version":2,"model":"in-house","error_type":"timeout","scores":{"accuracy":0.5},"feedback":{"thumbs_up":false,"rating":2}}"#
            .to_owned(),
    );
    let file = write_file(&dir, "events.ndjson", &lines.join("\n"));
    server.ok(&["events", "import", file.to_str().unwrap()]);

    let out = server.ok(&["stats", "--prompt", "support/triage"]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("prompt support/triage, "), "{out}");
    assert!(
        rows[1].starts_with("COUNT  SUCCESS  P50 MS  P95 MS  P99 MS"),
        "{out}"
    );
    let cells: Vec<&str> = rows[2].split_whitespace().collect();
    assert_eq!(cells[0], "16", "{out}");
    assert_eq!(cells[1], "93.8%", "{out}");
    assert!(out.contains("accuracy=0.500 (n=1)"), "{out}");
    assert!(out.contains("up 0 / down 1, rating 2.00 (n=1)"), "{out}");
    assert!(
        out.contains("unpriced models (cost unknown, not zero): in-house"),
        "{out}"
    );
    assert!(out.contains("errors by type: timeout 1"), "{out}");

    let grouped = server.ok(&[
        "stats",
        "--prompt",
        "support/triage",
        "--group-by",
        "version,model",
        "--from",
        "2d",
    ]);
    let rows: Vec<&str> = grouped.lines().collect();
    assert!(
        rows[1].starts_with("PROMPT          VERSION  MODEL        COUNT"),
        "{grouped}"
    );
    assert!(
        rows[2].starts_with("support/triage  1        gpt-4o-mini  10"),
        "{grouped}"
    );
    assert!(
        rows[3].starts_with("support/triage  2        in-house     6"),
        "{grouped}"
    );
    assert!(
        rows[4].starts_with("TOTAL                                 16"),
        "{grouped}"
    );

    let json = server.json(&["stats", "--group-by", "model"]);
    assert_eq!(json["metrics"]["count"], 16);
    assert_eq!(json["groups"].as_array().unwrap().len(), 2);

    // Bad input is a usage error (exit 2) or the server's refusal (exit 1), on one line.
    let output = server.run(&["stats", "--from", "last tuesday"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid --from"),
        "{}",
        stderr(&output)
    );
    let output = server.run(&["stats", "--group-by", "colour"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown group_by dimension 'colour'"),
        "{}",
        stderr(&output)
    );
    let empty = server.ok(&["stats", "--prompt", "other"]);
    assert!(empty.contains("no events in this range"), "{empty}");
}

#[test]
fn prices_and_alerts_commands() {
    let server = server_with_prompt();
    server.ok(&[
        "prices", "set", "in-house", "--input", "1.5", "--output", "3",
    ]);
    let listed = server.ok(&["prices", "list", "--model", "in-house"]);
    assert!(listed.contains("in-house"), "{listed}");
    assert!(
        listed.contains("1.5000") && listed.contains("project"),
        "{listed}"
    );
    server.ok(&["prices", "delete", "in-house"]);
    let listed = server.json(&["prices", "list", "--model", "in-house"]);
    assert_eq!(listed.as_array().unwrap().len(), 0);

    let created = server.json(&[
        "alerts",
        "create",
        "triage errors",
        "--metric",
        "error_rate",
        "--threshold",
        "0.2",
        "--prompt",
        "support/triage",
        "--min-sample",
        "10",
    ]);
    let id = created["id"].as_i64().unwrap();
    let listed = server.ok(&["alerts", "list"]);
    assert!(
        listed.contains("triage errors") && listed.contains("error_rate gt 0.2"),
        "{listed}"
    );
    let history = server.json(&["alerts", "history", "--rule", &id.to_string()]);
    assert_eq!(history.as_array().unwrap().len(), 0);
    server.ok(&["alerts", "delete", &id.to_string()]);
    let output = server.run(&["alerts", "delete", &id.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let output = server.run(&[
        "alerts",
        "create",
        "bad",
        "--metric",
        "happiness",
        "--threshold",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid_request"),
        "{}",
        stderr(&output)
    );
}
