//! End-to-end tests of the binary: a real `promptstore serve` on port 0 in a temporary
//! directory, driven by real CLI invocations, exactly as an operator would.

// Test helpers outside #[test] functions fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, Server};

/// A failed run: its exit code and its stderr, which must be exactly one `error:` line.
fn failure(output: &Output) -> (i32, String) {
    assert!(
        !output.status.success(),
        "expected a failure, got: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    (output.status.code().unwrap_or(-1), lines[0].to_string())
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push((
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const TRIAGE_V1: &str = "\
description: Sorts support tickets
tags: [support]
template: |
  You triage tickets for {{ product }}.
  Ticket: {{ ticket }}
variables:
  - name: product
    type: string
  - name: ticket
    type: string
model_config:
  model: small-model
  temperature: 0.1
";

const TRIAGE_V2: &str = "\
template: |
  You triage tickets for {{ product }}. Answer with one word.
  Ticket: {{ ticket }}
variables:
  - name: product
    type: string
  - name: ticket
    type: string
model_config:
  model: small-model
  temperature: 0.0
";

const CHAT: &str = r#"{
  "description": "Chat greeter",
  "messages": [
    {"role": "system", "content": "You greet {{ name }} in {{ count }} words."},
    {"role": "user", "content": "Hello!"}
  ],
  "variables": [
    {"name": "name", "type": "string"},
    {"name": "count", "type": "number", "required": false, "default": 3}
  ]
}"#;

/// Creates the same small project on any server.
fn seed(server: &Server, files: &Path) {
    let v1 = write(files, "triage.yaml", TRIAGE_V1);
    let v2 = write(files, "triage-v2.yaml", TRIAGE_V2);
    let chat = write(files, "greeter.json", CHAT);
    server.ok(&[
        "prompt",
        "create",
        "support/triage",
        "--file",
        v1.to_str().unwrap(),
        "-m",
        "first cut",
    ]);
    server.ok(&[
        "prompt",
        "push",
        "support/triage",
        "--file",
        v2.to_str().unwrap(),
        "-m",
        "one word",
        "--base",
        "1",
    ]);
    server.ok(&[
        "prompt",
        "create",
        "greeter",
        "--file",
        chat.to_str().unwrap(),
    ]);
    server.ok(&[
        "prompt",
        "create",
        "quick",
        "--text",
        "Just {{ x }}",
        "--tag",
        "misc",
    ]);
    server.ok(&[
        "label",
        "set",
        "support/triage",
        "production",
        "1",
        "--reason",
        "initial deploy",
    ]);
    server.ok(&["label", "set", "support/triage", "staging", "2"]);
}

#[test]
fn help_is_available_everywhere() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["prompt", "--help"],
        vec!["prompt", "render", "--help"],
        vec!["label", "set", "--help"],
        vec!["key", "--help"],
        vec!["export", "--help"],
        vec!["import", "--help"],
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let render = Command::new(BIN)
        .args(["prompt", "render", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&render.stdout).contains("--var"));

    let (code, line) = failure(&Command::new(BIN).args(["frobnicate"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(line.contains("frobnicate"), "{line}");
    let (code, line) = failure(
        &Command::new(BIN)
            .args(["label", "set", "only-a-name"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2);
    assert!(line.contains("<LABEL>"), "{line}");
}

#[test]
fn authoring_workflow_create_push_label_render_diff_history() {
    let server = Server::start();
    let files = tempfile::tempdir().unwrap();
    seed(&server, files.path());

    let list = server.ok(&["prompt", "list"]);
    assert!(
        list.contains("support/triage") && list.contains("greeter") && list.contains("quick"),
        "{list}"
    );
    let searched = server.json(&["prompt", "list", "--prefix", "support/"]);
    assert_eq!(searched.as_array().unwrap().len(), 1, "{searched}");

    let shown = server.json(&["prompt", "show", "support/triage", "--label", "production"]);
    assert_eq!(shown["version"]["number"], 1);
    assert_eq!(shown["prompt"]["labels"]["production"], 1);
    assert_eq!(shown["prompt"]["labels"]["latest"], 2);
    let human = server.ok(&["prompt", "show", "support/triage"]);
    assert!(human.contains("Answer with one word."), "{human}");

    let rendered = server.ok(&[
        "prompt",
        "render",
        "support/triage",
        "--label",
        "production",
        "--var",
        "product=Acme",
        "--var",
        "ticket=My printer is on fire",
    ]);
    assert_eq!(
        rendered,
        "You triage tickets for Acme.\nTicket: My printer is on fire\n"
    );

    let vars = write(files.path(), "vars.yaml", "name: Ada\n");
    let chat = server.json(&[
        "prompt",
        "render",
        "greeter",
        "--vars-file",
        vars.to_str().unwrap(),
        "--var",
        "count=5",
    ]);
    assert_eq!(chat["messages"][0]["content"], "You greet Ada in 5 words.");
    assert_eq!(chat["messages"][1]["role"], "user");

    let diff = server.ok(&["prompt", "diff", "support/triage", "1", "2"]);
    assert!(
        diff.contains("+You triage tickets for {{ product }}. Answer with one word."),
        "{diff}"
    );
    assert!(diff.contains("temperature"), "{diff}");

    server.ok(&[
        "label",
        "set",
        "support/triage",
        "production",
        "2",
        "--reason",
        "better",
    ]);
    let rolled = server.json(&["label", "rollback", "support/triage", "production"]);
    assert_eq!(rolled["to_version"], 1);
    let history = server.json(&[
        "prompt",
        "history",
        "support/triage",
        "--label",
        "production",
    ]);
    let moves: Vec<(serde_json::Value, serde_json::Value)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["from_version"].clone(), m["to_version"].clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (serde_json::json!(2), serde_json::json!(1)),
            (serde_json::json!(1), serde_json::json!(2)),
            (serde_json::Value::Null, serde_json::json!(1)),
        ]
    );

    let edited = server.json(&[
        "prompt",
        "edit",
        "support/triage",
        "-d",
        "Routes tickets",
        "--tag",
        "a",
        "--tag",
        "b",
    ]);
    assert_eq!(edited["description"], "Routes tickets");
    assert_eq!(edited["tags"], serde_json::json!(["a", "b"]));
    let label_now = server.json(&["label", "show", "support/triage", "production"]);
    assert_eq!(label_now["version"], 1);
    let label_then = server.json(&[
        "label",
        "show",
        "support/triage",
        "production",
        "--as-of",
        "2000-01-01T00:00:00Z",
    ]);
    assert_eq!(
        label_then["version"],
        serde_json::Value::Null,
        "{label_then}"
    );
    let (code, _) = failure(&server.run(&[
        "label",
        "show",
        "support/triage",
        "production",
        "--as-of",
        "yesterday",
    ]));
    assert_eq!(code, 2);

    let unchanged = server.ok(&["prompt", "push", "quick", "--text", "Just {{ x }}"]);
    assert!(unchanged.starts_with("unchanged"), "{unchanged}");

    let status = server.json(&["prompt", "status", "quick", "active"]);
    assert_eq!(status["status"], "active");
    server.ok(&["label", "remove", "support/triage", "staging"]);
    server.ok(&["prompt", "delete", "quick", "--force"]);
    let (code, line) = failure(&server.run(&["prompt", "show", "quick"]));
    assert_eq!(code, 1);
    assert!(line.ends_with("(not_found)"), "{line}");
}

#[test]
fn keys_can_be_created_listed_and_revoked() {
    let server = Server::start();
    let created = server.json(&["key", "create", "agent", "--role", "runtime"]);
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let listed = server.ok(&["key", "list"]);
    assert!(
        listed.contains(&id) && !listed.contains(&secret),
        "{listed}"
    );

    // A runtime key may not use the registry.
    let (code, line) = failure(&server.run_with_key(&secret, &["prompt", "list"]));
    assert_eq!(code, 1);
    assert!(line.ends_with("(forbidden)"), "{line}");

    server.ok(&["key", "revoke", &id]);
    let (_, line) = failure(&server.run_with_key(&secret, &["prompt", "list"]));
    assert!(line.ends_with("(unauthorized)"), "{line}");
}

#[test]
fn export_import_round_trip_is_identical_and_idempotent() {
    let first = Server::start();
    let files = tempfile::tempdir().unwrap();
    seed(&first, files.path());

    let exported = tempfile::tempdir().unwrap();
    first.ok(&["export", exported.path().to_str().unwrap()]);
    let original = files_under(exported.path());
    let names: Vec<String> = original
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["greeter.yaml", "quick.yaml", "support/triage.yaml"]
    );
    let triage = &original[2].1;
    assert!(triage.contains("production: 1"), "{triage}");
    assert!(
        triage.contains("text: |"),
        "templates are block strings:\n{triage}"
    );

    let second = Server::start();
    let report = second.json(&["import", exported.path().to_str().unwrap()]);
    assert_eq!(
        report["prompts_created"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    let again = second.ok(&["import", exported.path().to_str().unwrap()]);
    assert!(again.starts_with("nothing changed"), "{again}");
    let again_json = second.json(&["import", exported.path().to_str().unwrap()]);
    for field in [
        "prompts_created",
        "prompts_updated",
        "versions_created",
        "labels_moved",
    ] {
        assert_eq!(
            again_json[field],
            serde_json::json!([]),
            "{field}: {again_json}"
        );
    }

    let re_exported = tempfile::tempdir().unwrap();
    second.ok(&["export", re_exported.path().to_str().unwrap()]);
    assert_eq!(files_under(re_exported.path()), original);

    let rendered = second.ok(&[
        "prompt",
        "render",
        "support/triage",
        "--label",
        "production",
        "--var",
        "product=A",
        "--var",
        "ticket=t",
    ]);
    assert_eq!(rendered, "You triage tickets for A.\nTicket: t\n");
}

#[test]
fn failures_are_one_line_with_an_exit_code() {
    let server = Server::start();
    let files = tempfile::tempdir().unwrap();

    let (code, line) = failure(&server.run(&["prompt", "show", "no/such/prompt"]));
    assert_eq!(code, 1);
    assert!(line.contains("(not_found)"), "{line}");

    let (code, line) = failure(&server.run_with_key("ps_aaaaaaaaaaaa_bad", &["prompt", "list"]));
    assert_eq!(code, 1);
    assert!(line.ends_with("(unauthorized)"), "{line}");

    let bad = write(files.path(), "bad.yaml", "template: hi\nsurprise: true\n");
    let (code, line) =
        failure(&server.run(&["prompt", "create", "x", "--file", bad.to_str().unwrap()]));
    assert_eq!(code, 1);
    assert!(line.contains("bad.yaml"), "{line}");

    // An import with one bad file sends nothing.
    let bundle = tempfile::tempdir().unwrap();
    write(
        bundle.path(),
        "ok.yaml",
        "name: fine\ntype: text\nstatus: draft\nversions:\n  - number: 1\n    template: {type: text, text: hi}\n",
    );
    write(bundle.path(), "broken.yaml", "name: [unclosed\n");
    let (code, line) = failure(&server.run(&["import", bundle.path().to_str().unwrap()]));
    assert_eq!(code, 1);
    assert!(line.contains("broken.yaml"), "{line}");
    let listed = server.json(&["prompt", "list"]);
    assert_eq!(listed, serde_json::json!([]));

    let (code, line) = failure(&server.run(&["prompt", "render", "x", "--var", "novalue"]));
    assert_eq!(code, 2, "{line}");
    let (code, _) = failure(&server.run(&["prompt", "status", "x", "sideways"]));
    assert_eq!(code, 2);

    server.ok(&["prompt", "create", "needs", "--text", "Hi {{ who }}"]);
    let (code, line) = failure(&server.run(&["prompt", "render", "needs"]));
    assert_eq!(code, 1);
    assert!(line.contains("who"), "{line}");

    let unreachable = Command::new(BIN)
        .args(["prompt", "list", "--url", "http://127.0.0.1:9"])
        .env("PROMPTSTORE_API_KEY", &server.admin_key)
        .output()
        .unwrap();
    let (code, line) = failure(&unreachable);
    assert_eq!(code, 1);
    assert!(line.contains("cannot reach the server"), "{line}");
}
