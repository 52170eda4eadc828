//! What only the SQLite backend promises: the file survives a reopen with everything in it,
//! WAL is on, migrations run once, and concurrent writers queue rather than fail.

use std::sync::Arc;

use promptstore_core::model::{Actor, NewApiKey, NewVersion, ProjectId};
use promptstore_core::store::{PromptFilter, Store, WriteOp, WriteOutcome};
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{PromptKind, PromptStatus, Role, Template};

fn version(text: &str) -> NewVersion {
    NewVersion {
        template: Template::Text {
            text: text.to_owned(),
        },
        variables: vec![],
        model_config: serde_json::json!({"model": "m"}),
        commit_message: String::new(),
        parent: None,
        content_hash: text.to_owned(),
        includes: vec![],
        breaking_changes: vec![],
    }
}

fn create(name: &str, text: &str) -> WriteOp {
    WriteOp::CreatePrompt {
        name: name.to_owned(),
        kind: PromptKind::Text,
        description: format!("about {name}"),
        tags: vec!["t".into()],
        status: PromptStatus::Draft,
        first_version: version(text),
    }
}

async fn project(store: &SqliteStore) -> Actor {
    let key = NewApiKey {
        id: "adminkey0001".into(),
        name: "admin".into(),
        role: Role::Admin,
        secret_hash: "h".into(),
    };
    let (project, key) = store
        .create_project(
            &Actor::system(ProjectId("bootstrap".into())),
            "acme",
            &["production".into()],
            key,
        )
        .await
        .expect("project created");
    Actor {
        project: project.id,
        key_id: key.id,
        role: Role::Admin,
    }
}

#[tokio::test]
async fn data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/promptstore.db");
    let (actor, prompt, label_move) = {
        let store = SqliteStore::open(&path).await.unwrap();
        let actor = project(&store).await;
        store
            .apply(&actor, vec![create("support/triage", "classify tickets")])
            .await
            .unwrap();
        let outcomes = store
            .apply(
                &actor,
                vec![WriteOp::MoveLabel {
                    name: "support/triage".into(),
                    label: "production".into(),
                    to: Some(1),
                    expected_from: None,
                    reason: Some("ship".into()),
                }],
            )
            .await
            .unwrap();
        let WriteOutcome::LabelMoved(Some(m)) = outcomes[0].clone() else {
            panic!("{outcomes:?}")
        };
        let prompt = store
            .get_prompt(&actor.project, "support/triage")
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        (actor, prompt, m)
    };
    assert!(
        path.exists(),
        "the parent directories and the file were created"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store
            .get_prompt(&actor.project, "support/triage")
            .await
            .unwrap(),
        Some(prompt)
    );
    assert_eq!(
        store
            .find_api_key(&actor.key_id)
            .await
            .unwrap()
            .unwrap()
            .project,
        actor.project
    );
    let at = store
        .label_at(
            &actor.project,
            "support/triage",
            "production",
            label_move.at,
        )
        .await
        .unwrap();
    assert_eq!(at, Some(1));
    let filter = PromptFilter {
        text: Some("tickets".into()),
        ..PromptFilter::default()
    };
    let found = store
        .list_prompts(&actor.project, &filter, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        found.items.len(),
        1,
        "the full-text index is in the file too"
    );
    // Numbering carries on.
    let outcomes = store
        .apply(
            &actor,
            vec![WriteOp::CreateVersion {
                name: "support/triage".into(),
                expected_latest: Some(1),
                version: version("v2"),
            }],
        )
        .await
        .unwrap();
    assert!(matches!(&outcomes[0], WriteOutcome::Version(v) if v.number == 2));
}

#[tokio::test]
async fn wal_mode_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    assert_eq!(store.journal_mode().await.unwrap(), "wal");
    assert_eq!(
        store.path(),
        dir.path().join(promptstore_store_sqlite::DEFAULT_FILE_NAME)
    );
    store.ping().await.unwrap();
}

#[tokio::test]
async fn migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let actor = project(&store).await;
    assert_eq!(store.schema_versions().await.unwrap(), vec![1, 2]);
    store.close().await;
    for _ in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_versions().await.unwrap(), vec![1, 2]);
        assert!(store.get_project(&actor.project).await.unwrap().is_some());
        store.close().await;
    }
}

#[tokio::test]
async fn concurrent_writers_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_in(dir.path()).await.unwrap());
    let actor = project(&store).await;
    store
        .apply(&actor, vec![create("hot", "v1")])
        .await
        .unwrap();

    // Two clones of the store (sharing pools) and a second store on the same file.
    let other = Arc::new(SqliteStore::open_in(dir.path()).await.unwrap());
    let mut tasks = vec![];
    for i in 0..16 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            let op = WriteOp::CreateVersion {
                name: "hot".into(),
                expected_latest: None,
                version: version(&format!("v{i}")),
            };
            store
                .apply(&actor, vec![op, create(&format!("p{i}"), "x")])
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let prompt = store
        .get_prompt(&actor.project, "hot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prompt.latest_version, 17, "every writer got its own number");
    let all = store.all_versions(&actor.project, "hot").await.unwrap();
    assert_eq!(
        all.iter().map(|v| v.number).collect::<Vec<_>>(),
        (1..=17).collect::<Vec<_>>()
    );
    assert_eq!(store.all_prompts(&actor.project).await.unwrap().len(), 17);
}

#[tokio::test]
async fn a_path_that_cannot_be_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = SqliteStore::open(&blocker.join("x.db")).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot create the directory"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).await.unwrap_err();
    assert!(err.to_string().contains("garbage.db"), "{err}");
}

#[tokio::test]
async fn acknowledged_writes_are_in_the_file_without_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let actor = project(&store).await;
    store
        .apply(&actor, vec![create("kept", "acknowledged")])
        .await
        .unwrap();
    // No close, no checkpoint: the pools are leaked as a killed process would leave them.
    std::mem::forget(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    let prompt = reopened.get_prompt(&actor.project, "kept").await.unwrap();
    assert_eq!(prompt.map(|p| p.latest_version), Some(1));
}
