//! "Nothing acknowledged is lost": writers hammer a real server, the server is killed with
//! SIGKILL in the middle of it, and a new server on the same data directory must hold every
//! write that had been acknowledged — and a consistent database (no half-applied write).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use promptstore_client::Client;
use promptstore_types::{CreatePrompt, CreateVersion, SetLabel, Template};

/// What a writer saw acknowledged: (prompt name, newest acknowledged version, label target).
#[derive(Debug, Default, Clone)]
struct Acknowledged {
    prompt: String,
    version: u32,
    staging: Option<u32>,
}

fn text(body: String) -> Template {
    Template::Text { text: body }
}

/// Keeps writing to one prompt until an error (the server died) and records every answer.
async fn writer(client: Client, name: String, log: Arc<Mutex<Vec<Acknowledged>>>) {
    let created = client
        .create_prompt(&CreatePrompt {
            name: name.clone(),
            description: String::new(),
            tags: vec![],
            status: None,
            template: text(format!("{name} v1 {{{{ x }}}}")),
            variables: vec![],
            model_config: None,
            commit_message: "v1".into(),
        })
        .await;
    let Ok(_) = created else { return };
    let mut ack = Acknowledged {
        prompt: name.clone(),
        version: 1,
        staging: None,
    };
    log.lock().unwrap().push(ack.clone());
    for n in 2..=200u32 {
        let saved = client
            .create_version(
                &name,
                &CreateVersion {
                    template: text(format!("{name} v{n} {{{{ x }}}}")),
                    variables: vec![],
                    model_config: None,
                    commit_message: format!("v{n}"),
                    base_version: None,
                },
            )
            .await;
        let Ok(saved) = saved else { return };
        ack.version = saved.version.number;
        log.lock().unwrap().push(ack.clone());
        let moved = client
            .set_label(
                &name,
                "staging",
                &SetLabel {
                    version: saved.version.number,
                    expected_version: None,
                    allow_breaking: false,
                    reason: None,
                },
            )
            .await;
        let Ok(_) = moved else { return };
        ack.staging = Some(saved.version.number);
        log.lock().unwrap().push(ack.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let server = Server::start();
    let admin_key = server.admin_key.clone();
    let client = Client::builder(&server.url, &admin_key)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let log = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|i| tokio::spawn(writer(client.clone(), format!("durable/p{i}"), log.clone())))
        .collect();

    // Let the writers get going, then pull the plug while they are mid-flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.lock().unwrap().len() < 40 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = tokio::task::spawn_blocking(move || server.kill_hard())
        .await
        .unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = log.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 40,
        "the writers made progress before the kill"
    );

    let restarted = Server::start_in(dir, Some(&admin_key));
    let client = Client::new(&restarted.url, &admin_key).unwrap();
    for ack in &acknowledged {
        let prompt = client.get_prompt(&ack.prompt).await.unwrap();
        assert!(
            prompt.latest_version >= ack.version,
            "{}: version {} was acknowledged, the restarted server has {}",
            ack.prompt,
            ack.version,
            prompt.latest_version
        );
        let version = client.get_version(&ack.prompt, ack.version).await.unwrap();
        assert_eq!(
            version.template,
            text(format!("{} v{} {{{{ x }}}}", ack.prompt, ack.version))
        );
        if let Some(staging) = ack.staging {
            let label = prompt.labels.get("staging").copied().unwrap_or(0);
            assert!(
                label >= staging,
                "{}: staging → {staging} was acknowledged, found {label}",
                ack.prompt
            );
        }
    }

    // Consistency: every stored version is complete and `latest` follows the newest one.
    let export = client.export().await.unwrap();
    for prompt in &export.prompts {
        let numbers: Vec<u32> = prompt.versions.iter().map(|v| v.number).collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        assert_eq!(numbers, expected, "{}: versions have no gaps", prompt.name);
        let current = client.get_prompt(&prompt.name).await.unwrap();
        assert_eq!(current.labels.get("latest"), Some(&(numbers.len() as u32)));
    }
}
