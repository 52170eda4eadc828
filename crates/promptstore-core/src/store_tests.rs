//! The storage conformance suite: what every `Store` backend must do, written once against
//! `&dyn Store` and run by each backend crate through [`store_test_suite!`](crate::store_test_suite).
//!
//! Each test gets a fresh, empty store. Tests rely only on the contract in `store.rs`, never
//! on a backend's time precision: times are taken from what the store returned.

// This is test code compiled as a library (feature `testing`): a failed expectation must
// stop the test with a message, which is what unwrap and panic do.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use promptstore_types::{
    BreakingChange, ChatMessage, IncludeRef, PromptKind, PromptStatus, Role, Template, VarType,
    VariableSpec,
};
use serde_json::json;

use crate::model::{
    Actor, LATEST_LABEL, LabelMoveRecord, NewApiKey, NewVersion, ProjectId, PromptRecord,
    VersionRecord,
};
use crate::store::{
    AuditFilter, PageRequest, PromptFilter, Store, StoreError, WriteOp, WriteOutcome,
};

/// What a backend's test constructor returns: something that holds a store (and whatever
/// must live as long as it, such as a temporary directory).
pub trait Fixture {
    fn store(&self) -> &dyn Store;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// Expand to one `#[tokio::test]` per conformance test. `$make` is an expression (it may
/// `.await`) evaluating to a [`Fixture`] around a fresh, empty store:
///
/// ```text
/// promptstore_core::store_test_suite!(fresh_store().await);
/// ```
#[macro_export]
macro_rules! store_test_suite {
    ($make:expr) => {
        $crate::store_test_suite!(@each $make;
            projects_and_keys,
            keys_are_scoped_and_unique,
            prompt_create_and_read,
            update_checks_the_revision,
            versions_are_numbered_and_move_latest,
            labels_set_move_remove_and_compare,
            latest_label_cannot_be_moved,
            label_history_and_label_at,
            archiving_refuses_or_removes_labels,
            status_changes_bump_the_revision,
            delete_removes_the_prompt_but_not_its_audit,
            list_filters,
            pagination_has_no_duplicates_or_gaps,
            invalid_cursors_are_refused,
            full_text_search,
            full_text_follows_the_newest_version,
            live_versions_and_include_edges,
            audit_records_every_change_and_filters,
            apply_is_all_or_nothing,
            apply_runs_several_ops_in_order,
            projects_are_isolated,
        );
        $crate::experiment_store_test_suite!($make);
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $make;
                $crate::store_tests::$name($crate::store_tests::Fixture::store(&fixture)).await;
            }
        )+
    };
}

// ---- fixtures ------------------------------------------------------------------------------

fn new_key(id: &str, role: Role) -> NewApiKey {
    NewApiKey {
        id: id.to_owned(),
        name: format!("key {id}"),
        role,
        secret_hash: format!("hash-of-{id}"),
    }
}

/// A project with an admin key; returns the actor of that key.
async fn project(store: &dyn Store, name: &str) -> Actor {
    let creator = Actor::system(ProjectId("bootstrap".to_owned()));
    let key_id = format!("{name}admin");
    let (project, key) = store
        .create_project(
            &creator,
            name,
            &["production".to_owned()],
            new_key(&key_id, Role::Admin),
        )
        .await
        .unwrap();
    Actor {
        project: project.id,
        key_id: key.id,
        role: Role::Admin,
    }
}

fn text_version(text: &str) -> NewVersion {
    NewVersion {
        template: Template::Text {
            text: text.to_owned(),
        },
        variables: vec![],
        model_config: json!({}),
        commit_message: format!("set text to {text}"),
        parent: None,
        content_hash: format!("hash:{text}"),
        includes: vec![],
        breaking_changes: vec![],
    }
}

fn create_op(name: &str, text: &str) -> WriteOp {
    WriteOp::CreatePrompt {
        name: name.to_owned(),
        kind: PromptKind::Text,
        description: String::new(),
        tags: vec![],
        status: PromptStatus::Draft,
        first_version: text_version(text),
    }
}

async fn one(store: &dyn Store, actor: &Actor, op: WriteOp) -> Result<WriteOutcome, StoreError> {
    let mut outcomes = store.apply(actor, vec![op]).await?;
    assert_eq!(outcomes.len(), 1, "one op, one outcome");
    Ok(outcomes.remove(0))
}

async fn create(store: &dyn Store, actor: &Actor, name: &str, text: &str) -> PromptRecord {
    match one(store, actor, create_op(name, text)).await.unwrap() {
        WriteOutcome::Prompt { prompt, .. } => prompt,
        other => panic!("create answered {other:?}"),
    }
}

async fn create_tagged(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    description: &str,
    tags: &[&str],
    text: &str,
) -> PromptRecord {
    let op = WriteOp::CreatePrompt {
        name: name.to_owned(),
        kind: PromptKind::Text,
        description: description.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        status: PromptStatus::Draft,
        first_version: text_version(text),
    };
    match one(store, actor, op).await.unwrap() {
        WriteOutcome::Prompt { prompt, .. } => prompt,
        other => panic!("create answered {other:?}"),
    }
}

async fn new_version(store: &dyn Store, actor: &Actor, name: &str, text: &str) -> VersionRecord {
    let op = WriteOp::CreateVersion {
        name: name.to_owned(),
        expected_latest: None,
        version: text_version(text),
    };
    match one(store, actor, op).await.unwrap() {
        WriteOutcome::Version(v) => v,
        other => panic!("create version answered {other:?}"),
    }
}

fn move_op(
    name: &str,
    label: &str,
    to: Option<u32>,
    expected_from: Option<Option<u32>>,
) -> WriteOp {
    WriteOp::MoveLabel {
        name: name.to_owned(),
        label: label.to_owned(),
        to,
        expected_from,
        reason: Some(format!("test moves {label}")),
    }
}

async fn move_label(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    label: &str,
    to: Option<u32>,
) -> Result<Option<LabelMoveRecord>, StoreError> {
    match one(store, actor, move_op(name, label, to, None)).await? {
        WriteOutcome::LabelMoved(m) => Ok(m),
        other => panic!("move answered {other:?}"),
    }
}

fn page(limit: u32) -> PageRequest {
    PageRequest {
        cursor: None,
        limit,
    }
}

async fn names(store: &dyn Store, actor: &Actor, filter: PromptFilter) -> Vec<String> {
    let page = store
        .list_prompts(&actor.project, &filter, &page(200))
        .await
        .unwrap();
    page.items.into_iter().map(|p| p.name).collect()
}

async fn search(store: &dyn Store, actor: &Actor, text: &str) -> Vec<String> {
    let filter = PromptFilter {
        text: Some(text.to_owned()),
        ..PromptFilter::default()
    };
    let mut found = names(store, actor, filter).await;
    found.sort();
    found
}

async fn audit(
    store: &dyn Store,
    actor: &Actor,
    filter: AuditFilter,
) -> Vec<crate::model::AuditEntry> {
    store
        .list_audit(&actor.project, &filter, &page(200))
        .await
        .unwrap()
        .items
}

async fn actions_for(store: &dyn Store, actor: &Actor, object_id: &str) -> Vec<String> {
    let filter = AuditFilter {
        object_id: Some(object_id.to_owned()),
        ..AuditFilter::default()
    };
    let mut actions: Vec<String> = audit(store, actor, filter)
        .await
        .into_iter()
        .map(|a| a.action)
        .collect();
    actions.reverse(); // oldest first reads better in assertions
    actions
}

/// Let the clock move on, so that two writes get different times on any backend precision.
fn tick() {
    std::thread::sleep(Duration::from_millis(5));
}

fn labels(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(l, v)| ((*l).to_owned(), *v)).collect()
}

// ---- projects and keys ---------------------------------------------------------------------

pub async fn projects_and_keys(store: &dyn Store) {
    store.ping().await.unwrap();
    let admin = project(store, "acme").await;
    let acme = store.get_project(&admin.project).await.unwrap().unwrap();
    assert_eq!(acme.name, "acme");
    assert_eq!(acme.protected_labels, vec!["production".to_owned()]);
    assert!(
        store
            .get_project(&ProjectId("no-such-project".into()))
            .await
            .unwrap()
            .is_none()
    );

    let other = project(store, "globex").await;
    let creator = Actor::system(ProjectId("bootstrap".to_owned()));
    let taken = store
        .create_project(&creator, "acme", &[], new_key("acmeclone001", Role::Admin))
        .await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists { .. })),
        "project names are unique: {taken:?}"
    );
    assert!(
        store.find_api_key("acmeclone001").await.unwrap().is_none(),
        "nothing of the refused project"
    );
    let listed: Vec<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(listed, vec!["acme".to_owned(), "globex".to_owned()]);

    let first = store.find_api_key(&admin.key_id).await.unwrap().unwrap();
    assert_eq!(first.project, admin.project);
    assert_eq!(first.role, Role::Admin);
    assert_eq!(first.secret_hash, "hash-of-acmeadmin");
    assert!(first.revoked_at.is_none());

    let runtime = store
        .create_api_key(&admin, new_key("acmeruntime1", Role::Runtime))
        .await
        .unwrap();
    assert_eq!(runtime.created_by, admin.key_id);
    assert_eq!(runtime.project, admin.project);
    let keys: Vec<String> = store
        .list_api_keys(&admin.project)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        keys,
        vec![admin.key_id.clone(), "acmeruntime1".to_owned()],
        "oldest first, own project only"
    );

    let active: Vec<String> = store
        .active_api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    for id in [&admin.key_id, &other.key_id, &"acmeruntime1".to_owned()] {
        assert!(active.contains(id), "{id} active");
    }

    let revoked = store.revoke_api_key(&admin, "acmeruntime1").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let active: Vec<String> = store
        .active_api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert!(!active.contains(&"acmeruntime1".to_owned()));
    assert_eq!(
        store
            .find_api_key("acmeruntime1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        revoked.revoked_at
    );
    assert_eq!(
        store.list_api_keys(&admin.project).await.unwrap().len(),
        2,
        "revoked keys are still listed"
    );
    // Revoking again changes nothing.
    assert_eq!(
        store.revoke_api_key(&admin, "acmeruntime1").await.unwrap(),
        revoked
    );
    assert!(matches!(
        store.revoke_api_key(&admin, "nosuchkey").await,
        Err(StoreError::NotFound { .. })
    ));

    let changed = store
        .set_protected_labels(&admin, &["production".to_owned(), "staging".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        changed.protected_labels,
        vec!["production".to_owned(), "staging".to_owned()]
    );
    assert_eq!(
        store.get_project(&admin.project).await.unwrap().unwrap(),
        changed
    );

    let actions: Vec<String> = audit(store, &admin, AuditFilter::default())
        .await
        .into_iter()
        .rev()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            "project.created",
            "key.created",
            "key.created",
            "key.revoked",
            "project.settings_changed"
        ]
    );
}

pub async fn keys_are_scoped_and_unique(store: &dyn Store) {
    let a = project(store, "a").await;
    let b = project(store, "b").await;
    assert!(matches!(
        store
            .create_api_key(&a, new_key(&b.key_id, Role::Viewer))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // A key of project B cannot be revoked through project A.
    assert!(matches!(
        store.revoke_api_key(&a, &b.key_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .find_api_key(&b.key_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // No key material in the audit log.
    for entry in audit(store, &a, AuditFilter::default()).await {
        let text = format!("{:?} {:?}", entry.before, entry.after);
        assert!(!text.contains("hash-of-"), "audit leaks a key hash: {text}");
    }
    // A key for a project that does not exist is refused.
    let ghost = Actor {
        project: ProjectId("ghost".into()),
        key_id: "x".into(),
        role: Role::Admin,
    };
    assert!(matches!(
        store
            .create_api_key(&ghost, new_key("ghostkey0001", Role::Viewer))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---- prompts and versions ------------------------------------------------------------------

pub async fn prompt_create_and_read(store: &dyn Store) {
    let actor = project(store, "p").await;
    let first = NewVersion {
        template: Template::Chat {
            messages: vec![
                ChatMessage::Message {
                    role: "system".into(),
                    content: "You triage {{ topic }}.".into(),
                },
                ChatMessage::Placeholder {
                    placeholder: "history".into(),
                },
            ],
        },
        variables: vec![VariableSpec {
            name: "topic".into(),
            var_type: VarType::String,
            required: true,
            default: None,
            allowed: Some(vec![json!("billing"), json!("tech")]),
            description: Some("what the ticket is about".into()),
        }],
        model_config: json!({"model": "gpt-x", "temperature": 0.2}),
        commit_message: "first".into(),
        parent: Some(("support/base".into(), 4)),
        content_hash: "abc".into(),
        includes: vec![IncludeRef {
            prompt: "support/header".into(),
            label: Some("production".into()),
            version: None,
        }],
        breaking_changes: vec![BreakingChange {
            code: "variable_removed".into(),
            variable: "old".into(),
            message: "old was removed".into(),
        }],
    };
    let op = WriteOp::CreatePrompt {
        name: "support/triage".into(),
        kind: PromptKind::Chat,
        description: "Routes tickets".into(),
        tags: vec!["support".into(), "routing".into()],
        status: PromptStatus::Active,
        first_version: first.clone(),
    };
    let (prompt, v1) = match one(store, &actor, op).await.unwrap() {
        WriteOutcome::Prompt {
            prompt,
            first_version: Some(v1),
        } => (prompt, v1),
        other => panic!("create answered {other:?}"),
    };
    assert_eq!(prompt.name, "support/triage");
    assert_eq!(prompt.project, actor.project);
    assert_eq!(prompt.kind, PromptKind::Chat);
    assert_eq!(prompt.description, "Routes tickets");
    assert_eq!(
        prompt.tags,
        vec!["support".to_owned(), "routing".to_owned()]
    );
    assert_eq!(prompt.status, PromptStatus::Active);
    assert_eq!(prompt.revision, 1);
    assert_eq!(prompt.latest_version, 1);
    assert_eq!(prompt.labels, labels(&[(LATEST_LABEL, 1)]));
    assert_eq!(prompt.created_by, actor.key_id);
    assert!(!prompt.id.is_empty());

    assert_eq!(v1.number, 1);
    assert_eq!(v1.prompt, "support/triage");
    assert_eq!(v1.prompt_id, prompt.id);
    assert_eq!(v1.author, actor.key_id);
    assert_eq!(v1.template, first.template);
    assert_eq!(v1.variables, first.variables);
    assert_eq!(v1.model_config, first.model_config);
    assert_eq!(v1.commit_message, "first");
    assert_eq!(v1.parent, first.parent);
    assert_eq!(v1.content_hash, "abc");
    assert_eq!(v1.includes, first.includes);
    assert_eq!(v1.breaking_changes, first.breaking_changes);

    // What the write answered is what a read finds.
    assert_eq!(
        store
            .get_prompt(&actor.project, "support/triage")
            .await
            .unwrap(),
        Some(prompt.clone())
    );
    assert_eq!(
        store
            .get_version(&actor.project, "support/triage", 1)
            .await
            .unwrap(),
        Some(v1)
    );
    assert!(
        store
            .get_version(&actor.project, "support/triage", 2)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_version(&actor.project, "nope", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_prompt(&actor.project, "nope")
            .await
            .unwrap()
            .is_none()
    );
    let listed = store
        .list_labels(&actor.project, "support/triage")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].version),
        (LATEST_LABEL, 1)
    );

    let duplicate = one(store, &actor, create_op("support/triage", "again")).await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists { .. })),
        "{duplicate:?}"
    );
    assert_eq!(
        store.all_prompts(&actor.project).await.unwrap(),
        vec![prompt]
    );
}

pub async fn update_checks_the_revision(store: &dyn Store) {
    let actor = project(store, "p").await;
    let created = create_tagged(store, &actor, "a", "old", &["x"], "hello").await;
    let update = |expected: Option<u64>, description: Option<&str>| WriteOp::UpdatePrompt {
        name: "a".into(),
        expected_revision: expected,
        description: description.map(str::to_owned),
        tags: None,
    };
    let updated = match one(store, &actor, update(Some(1), Some("new")))
        .await
        .unwrap()
    {
        WriteOutcome::Prompt {
            prompt,
            first_version: None,
        } => prompt,
        other => panic!("update answered {other:?}"),
    };
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.description, "new");
    assert_eq!(updated.tags, vec!["x".to_owned()], "tags not given stay");
    assert_eq!(updated.created_at, created.created_at);

    let stale = one(store, &actor, update(Some(1), Some("lost"))).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store
            .get_prompt(&actor.project, "a")
            .await
            .unwrap()
            .unwrap()
            .description,
        "new"
    );

    let tags = WriteOp::UpdatePrompt {
        name: "a".into(),
        expected_revision: None,
        description: None,
        tags: Some(vec!["y".into(), "z".into()]),
    };
    let unchecked = match one(store, &actor, tags).await.unwrap() {
        WriteOutcome::Prompt { prompt, .. } => prompt,
        other => panic!("update answered {other:?}"),
    };
    assert_eq!(unchecked.revision, 3);
    assert_eq!(unchecked.description, "new");
    assert_eq!(unchecked.tags, vec!["y".to_owned(), "z".to_owned()]);

    let missing = WriteOp::UpdatePrompt {
        name: "zz".into(),
        expected_revision: None,
        description: None,
        tags: None,
    };
    assert!(matches!(
        one(store, &actor, missing).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn versions_are_numbered_and_move_latest(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    let v2 = new_version(store, &actor, "a", "two").await;
    let v3 = new_version(store, &actor, "a", "three").await;
    assert_eq!((v2.number, v3.number), (2, 3));
    let prompt = store
        .get_prompt(&actor.project, "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prompt.latest_version, 3);
    assert_eq!(prompt.labels, labels(&[(LATEST_LABEL, 3)]));
    assert_eq!(prompt.revision, 1, "a new version is not a metadata change");

    let stale = WriteOp::CreateVersion {
        name: "a".into(),
        expected_latest: Some(2),
        version: text_version("four"),
    };
    assert!(matches!(
        one(store, &actor, stale).await,
        Err(StoreError::Conflict { .. })
    ));
    let fresh = WriteOp::CreateVersion {
        name: "a".into(),
        expected_latest: Some(3),
        version: text_version("four"),
    };
    assert!(
        matches!(one(store, &actor, fresh).await.unwrap(), WriteOutcome::Version(v) if v.number == 4)
    );
    let missing = WriteOp::CreateVersion {
        name: "zz".into(),
        expected_latest: None,
        version: text_version("x"),
    };
    assert!(matches!(
        one(store, &actor, missing).await,
        Err(StoreError::NotFound { .. })
    ));

    let all: Vec<u32> = store
        .all_versions(&actor.project, "a")
        .await
        .unwrap()
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(all, vec![1, 2, 3, 4], "oldest first");

    let mut seen = vec![];
    let mut request = page(3);
    loop {
        let got = store
            .list_versions(&actor.project, "a", &request)
            .await
            .unwrap();
        seen.extend(got.items.iter().map(|v| v.number));
        match got.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, vec![4, 3, 2, 1], "newest first, across pages");
    assert!(matches!(
        store.list_versions(&actor.project, "zz", &page(10)).await,
        Err(StoreError::NotFound { .. })
    ));

    // Every latest move is in the history.
    let history = store
        .label_history(&actor.project, "a", Some(LATEST_LABEL), &page(50))
        .await
        .unwrap();
    let moves: Vec<(Option<u32>, Option<u32>)> = history
        .items
        .iter()
        .map(|m| (m.from_version, m.to_version))
        .collect();
    assert_eq!(
        moves,
        vec![
            (Some(3), Some(4)),
            (Some(2), Some(3)),
            (Some(1), Some(2)),
            (None, Some(1))
        ]
    );
}

// ---- labels --------------------------------------------------------------------------------

pub async fn labels_set_move_remove_and_compare(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    new_version(store, &actor, "a", "two").await;

    let created = move_label(store, &actor, "a", "production", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((created.from_version, created.to_version), (None, Some(1)));
    assert_eq!(created.label, "production");
    assert_eq!(created.prompt, "a");
    assert_eq!(created.actor, actor.key_id);
    assert_eq!(created.reason.as_deref(), Some("test moves production"));

    // Moving to where it points writes nothing.
    assert_eq!(
        move_label(store, &actor, "a", "production", Some(1))
            .await
            .unwrap(),
        None
    );
    let history = store
        .label_history(&actor.project, "a", Some("production"), &page(50))
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1);

    // Compare-and-set.
    let wrong = one(
        store,
        &actor,
        move_op("a", "production", Some(2), Some(Some(2))),
    )
    .await;
    assert!(
        matches!(wrong, Err(StoreError::Conflict { .. })),
        "{wrong:?}"
    );
    let must_be_absent = one(
        store,
        &actor,
        move_op("a", "production", Some(2), Some(None)),
    )
    .await;
    assert!(
        matches!(must_be_absent, Err(StoreError::Conflict { .. })),
        "{must_be_absent:?}"
    );
    let moved = match one(
        store,
        &actor,
        move_op("a", "production", Some(2), Some(Some(1))),
    )
    .await
    .unwrap()
    {
        WriteOutcome::LabelMoved(Some(m)) => m,
        other => panic!("move answered {other:?}"),
    };
    assert_eq!((moved.from_version, moved.to_version), (Some(1), Some(2)));
    let staged = one(store, &actor, move_op("a", "staging", Some(1), Some(None)))
        .await
        .unwrap();
    assert!(matches!(staged, WriteOutcome::LabelMoved(Some(_))));

    // To a version that does not exist; on a prompt that does not exist.
    assert!(matches!(
        move_label(store, &actor, "a", "production", Some(9)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        move_label(store, &actor, "zz", "production", Some(1)).await,
        Err(StoreError::NotFound { .. })
    ));

    let prompt = store
        .get_prompt(&actor.project, "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        prompt.labels,
        labels(&[(LATEST_LABEL, 2), ("production", 2), ("staging", 1)])
    );
    let listed: Vec<(String, u32)> = store
        .list_labels(&actor.project, "a")
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.version))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("latest".to_owned(), 2),
            ("production".to_owned(), 2),
            ("staging".to_owned(), 1)
        ]
    );

    let removed = move_label(store, &actor, "a", "staging", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((removed.from_version, removed.to_version), (Some(1), None));
    assert!(matches!(
        move_label(store, &actor, "a", "staging", None).await,
        Err(StoreError::NotFound { .. })
    ));
    let prompt = store
        .get_prompt(&actor.project, "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        prompt.labels,
        labels(&[(LATEST_LABEL, 2), ("production", 2)])
    );
}

pub async fn latest_label_cannot_be_moved(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    new_version(store, &actor, "a", "two").await;
    let refused = move_label(store, &actor, "a", LATEST_LABEL, Some(1)).await;
    assert!(refused.is_err(), "{refused:?}");
    let removed = move_label(store, &actor, "a", LATEST_LABEL, None).await;
    assert!(removed.is_err(), "{removed:?}");
    let prompt = store
        .get_prompt(&actor.project, "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prompt.labels, labels(&[(LATEST_LABEL, 2)]));
}

pub async fn label_history_and_label_at(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    new_version(store, &actor, "a", "two").await;
    new_version(store, &actor, "a", "three").await;
    tick();
    let m1 = move_label(store, &actor, "a", "production", Some(1))
        .await
        .unwrap()
        .unwrap();
    tick();
    let m2 = move_label(store, &actor, "a", "production", Some(3))
        .await
        .unwrap()
        .unwrap();
    tick();
    let m3 = move_label(store, &actor, "a", "production", Some(2))
        .await
        .unwrap()
        .unwrap();
    tick();
    let m4 = move_label(store, &actor, "a", "production", None)
        .await
        .unwrap()
        .unwrap();
    tick();
    let m5 = move_label(store, &actor, "a", "production", Some(3))
        .await
        .unwrap()
        .unwrap();
    assert!(
        m1.at < m2.at && m2.at < m3.at && m3.at < m4.at && m4.at < m5.at,
        "times follow the moves"
    );
    assert!(
        m1.id < m2.id && m2.id < m3.id && m3.id < m4.id && m4.id < m5.id,
        "ids follow the moves"
    );

    let history = store
        .label_history(&actor.project, "a", Some("production"), &page(50))
        .await
        .unwrap();
    assert_eq!(
        history.items,
        vec![m5.clone(), m4.clone(), m3.clone(), m2.clone(), m1.clone()]
    );
    assert!(history.next_cursor.is_none());

    // All labels, newest first, paginated.
    let mut all = vec![];
    let mut request = page(2);
    loop {
        let got = store
            .label_history(&actor.project, "a", None, &request)
            .await
            .unwrap();
        all.extend(got.items);
        match got.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(all.len(), 8, "3 latest moves + 5 production moves");
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "newest first without duplicates"
    );

    let at = |t| store.label_at(&actor.project, "a", "production", t);
    let ms = time::Duration::milliseconds(1);
    assert_eq!(
        at(m1.at - ms).await.unwrap(),
        None,
        "before the label existed"
    );
    assert_eq!(at(m1.at).await.unwrap(), Some(1), "at the move itself");
    assert_eq!(at(m2.at - ms).await.unwrap(), Some(1), "between moves");
    assert_eq!(at(m2.at).await.unwrap(), Some(3));
    assert_eq!(at(m3.at).await.unwrap(), Some(2));
    assert_eq!(at(m4.at).await.unwrap(), None, "after its removal");
    assert_eq!(at(m5.at - ms).await.unwrap(), None);
    assert_eq!(
        at(m5.at + time::Duration::days(1)).await.unwrap(),
        Some(3),
        "now and later"
    );
    assert_eq!(
        store
            .label_at(&actor.project, "a", "nope", m5.at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .label_at(&actor.project, "a", LATEST_LABEL, m5.at)
            .await
            .unwrap(),
        Some(3)
    );
    assert!(matches!(
        store
            .label_at(&actor.project, "zz", "production", m5.at)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---- lifecycle and deletion ----------------------------------------------------------------

fn status_op(
    name: &str,
    expected: PromptStatus,
    status: PromptStatus,
    remove_labels: bool,
) -> WriteOp {
    WriteOp::SetStatus {
        name: name.into(),
        expected_status: expected,
        status,
        remove_labels,
    }
}

pub async fn archiving_refuses_or_removes_labels(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    move_label(store, &actor, "a", "production", Some(1))
        .await
        .unwrap();
    move_label(store, &actor, "a", "beta", Some(1))
        .await
        .unwrap();

    let refused = one(
        store,
        &actor,
        status_op("a", PromptStatus::Draft, PromptStatus::Archived, false),
    )
    .await;
    match refused {
        Err(StoreError::HasLabels { prompt, mut labels }) => {
            labels.sort();
            assert_eq!(prompt, "a");
            assert_eq!(labels, vec!["beta".to_owned(), "production".to_owned()]);
        }
        other => panic!("archiving with labels answered {other:?}"),
    }
    let stale = one(
        store,
        &actor,
        status_op("a", PromptStatus::Active, PromptStatus::Archived, true),
    )
    .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );

    let archived = match one(
        store,
        &actor,
        status_op("a", PromptStatus::Draft, PromptStatus::Archived, true),
    )
    .await
    .unwrap()
    {
        WriteOutcome::Prompt { prompt, .. } => prompt,
        other => panic!("archive answered {other:?}"),
    };
    assert_eq!(archived.status, PromptStatus::Archived);
    assert_eq!(archived.labels, labels(&[(LATEST_LABEL, 1)]));
    let history = store
        .label_history(&actor.project, "a", Some("production"), &page(10))
        .await
        .unwrap();
    assert_eq!(
        history.items[0].to_version, None,
        "the removal is a recorded move"
    );
    let removals = audit(
        store,
        &actor,
        AuditFilter {
            action: Some("label.removed".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(removals.len(), 2);

    // An archived prompt cannot be labelled.
    let moved = move_label(store, &actor, "a", "production", Some(1)).await;
    assert!(
        matches!(moved, Err(StoreError::Archived { .. })),
        "{moved:?}"
    );

    // Without labels, archiving needs no removal.
    create(store, &actor, "b", "one").await;
    let plain = one(
        store,
        &actor,
        status_op("b", PromptStatus::Draft, PromptStatus::Archived, false),
    )
    .await;
    assert!(
        matches!(plain, Ok(WriteOutcome::Prompt { .. })),
        "{plain:?}"
    );
}

pub async fn status_changes_bump_the_revision(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    let active = match one(
        store,
        &actor,
        status_op("a", PromptStatus::Draft, PromptStatus::Active, false),
    )
    .await
    .unwrap()
    {
        WriteOutcome::Prompt { prompt, .. } => prompt,
        other => panic!("status answered {other:?}"),
    };
    assert_eq!(active.status, PromptStatus::Active);
    assert_eq!(active.revision, 2);
    let deprecated = one(
        store,
        &actor,
        status_op("a", PromptStatus::Active, PromptStatus::Deprecated, false),
    )
    .await
    .unwrap();
    assert!(
        matches!(deprecated, WriteOutcome::Prompt { prompt, .. } if prompt.revision == 3 && prompt.status == PromptStatus::Deprecated)
    );
    let missing = one(
        store,
        &actor,
        status_op("zz", PromptStatus::Draft, PromptStatus::Active, false),
    )
    .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    assert_eq!(
        actions_for(store, &actor, "a").await,
        vec![
            "prompt.created",
            "prompt.status_changed",
            "prompt.status_changed"
        ]
    );
}

pub async fn delete_removes_the_prompt_but_not_its_audit(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "one").await;
    new_version(store, &actor, "a", "two").await;
    move_label(store, &actor, "a", "production", Some(1))
        .await
        .unwrap();
    create(store, &actor, "b", "keep me").await;

    let deleted = one(store, &actor, WriteOp::DeletePrompt { name: "a".into() })
        .await
        .unwrap();
    assert_eq!(deleted, WriteOutcome::Deleted);
    assert!(
        store
            .get_prompt(&actor.project, "a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_version(&actor.project, "a", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        names(store, &actor, PromptFilter::default()).await,
        vec!["b".to_owned()]
    );
    assert_eq!(
        search(store, &actor, "two").await,
        Vec::<String>::new(),
        "gone from the search index"
    );
    assert!(
        store
            .live_versions(&actor.project, Some("a"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        one(store, &actor, WriteOp::DeletePrompt { name: "a".into() }).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        actions_for(store, &actor, "a").await,
        vec!["prompt.created", "prompt.deleted"]
    );
    let deleted_entry = audit(
        store,
        &actor,
        AuditFilter {
            action: Some("prompt.deleted".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(
        deleted_entry[0].before.as_ref().and_then(|b| b.get("name")),
        Some(&json!("a"))
    );

    // The name is free again, with a fresh history.
    let again = create(store, &actor, "a", "new life").await;
    assert_eq!(again.latest_version, 1);
    assert_eq!(again.labels, labels(&[(LATEST_LABEL, 1)]));
    let history = store
        .label_history(&actor.project, "a", None, &page(50))
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1);
    assert_eq!(
        store
            .get_prompt(&actor.project, "b")
            .await
            .unwrap()
            .unwrap()
            .name,
        "b"
    );
}

// ---- listing -------------------------------------------------------------------------------

pub async fn list_filters(store: &dyn Store) {
    let actor = project(store, "p").await;
    create_tagged(
        store,
        &actor,
        "support/triage",
        "",
        &["support", "prod"],
        "t",
    )
    .await;
    create_tagged(store, &actor, "support/reply", "", &["support"], "t").await;
    create_tagged(store, &actor, "sales/pitch", "", &["sales"], "t").await;
    create_tagged(store, &actor, "supportive", "", &[], "t").await;
    move_label(store, &actor, "support/reply", "production", Some(1))
        .await
        .unwrap();
    move_label(store, &actor, "sales/pitch", "production", Some(1))
        .await
        .unwrap();
    one(
        store,
        &actor,
        status_op(
            "sales/pitch",
            PromptStatus::Draft,
            PromptStatus::Active,
            false,
        ),
    )
    .await
    .unwrap();

    let f = PromptFilter::default;
    assert_eq!(
        names(store, &actor, f()).await,
        vec![
            "sales/pitch",
            "support/reply",
            "support/triage",
            "supportive"
        ],
        "ordered by name"
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                tag: Some("support".into()),
                ..f()
            }
        )
        .await,
        vec!["support/reply", "support/triage"]
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                label: Some("production".into()),
                ..f()
            }
        )
        .await,
        vec!["sales/pitch", "support/reply"]
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                label: Some(LATEST_LABEL.into()),
                ..f()
            }
        )
        .await
        .len(),
        4
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                status: Some(PromptStatus::Active),
                ..f()
            }
        )
        .await,
        vec!["sales/pitch"]
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                name_prefix: Some("support/".into()),
                ..f()
            }
        )
        .await,
        vec!["support/reply", "support/triage"]
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                name_prefix: Some("support".into()),
                ..f()
            }
        )
        .await
        .len(),
        3
    );
    // Prefixes are literal, not patterns.
    assert!(
        names(
            store,
            &actor,
            PromptFilter {
                name_prefix: Some("%".into()),
                ..f()
            }
        )
        .await
        .is_empty()
    );
    assert!(
        names(
            store,
            &actor,
            PromptFilter {
                name_prefix: Some("s_les".into()),
                ..f()
            }
        )
        .await
        .is_empty()
    );
    assert_eq!(
        names(
            store,
            &actor,
            PromptFilter {
                tag: Some("support".into()),
                label: Some("production".into()),
                name_prefix: Some("support/".into()),
                status: Some(PromptStatus::Draft),
                text: None,
            }
        )
        .await,
        vec!["support/reply"],
        "all filters hold together"
    );
    assert!(
        names(
            store,
            &actor,
            PromptFilter {
                tag: Some("nope".into()),
                ..f()
            }
        )
        .await
        .is_empty()
    );
}

pub async fn pagination_has_no_duplicates_or_gaps(store: &dyn Store) {
    let actor = project(store, "p").await;
    let mut expected: Vec<String> = (0..23).map(|i| format!("p{:02}", i * 2)).collect();
    let ops: Vec<WriteOp> = expected.iter().map(|n| create_op(n, "body")).collect();
    store.apply(&actor, ops).await.unwrap();

    let mut seen: Vec<String> = vec![];
    let mut request = page(5);
    let mut pages = 0;
    loop {
        let got = store
            .list_prompts(&actor.project, &PromptFilter::default(), &request)
            .await
            .unwrap();
        assert!(got.items.len() <= 5);
        seen.extend(got.items.into_iter().map(|p| p.name));
        pages += 1;
        if pages == 2 {
            // Inserts behind and ahead of the cursor: the one ahead shows up, nothing repeats.
            create(store, &actor, "p01", "behind").await;
            create(store, &actor, "p41", "ahead").await;
            expected.push("p41".into());
        }
        match got.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);

    // The limit is clamped to 1..=200.
    let tiny = store
        .list_prompts(&actor.project, &PromptFilter::default(), &page(0))
        .await
        .unwrap();
    assert_eq!(tiny.items.len(), 1);
    assert!(tiny.next_cursor.is_some());
    let all = store
        .list_prompts(&actor.project, &PromptFilter::default(), &page(100_000))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 25);
    assert!(all.next_cursor.is_none());

    // Exactly one full page: no cursor to an empty page.
    let exact = store
        .list_prompts(&actor.project, &PromptFilter::default(), &page(25))
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 25);
    assert!(exact.next_cursor.is_none());
}

pub async fn invalid_cursors_are_refused(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "x").await;
    create(store, &actor, "b", "x").await;
    for bad in ["", "not a cursor", "%%%", "AAAA"] {
        let request = PageRequest {
            cursor: Some(bad.to_owned()),
            limit: 10,
        };
        let listed = store
            .list_prompts(&actor.project, &PromptFilter::default(), &request)
            .await;
        assert!(
            matches!(listed, Err(StoreError::InvalidCursor { .. })),
            "{bad:?}: {listed:?}"
        );
        let audited = store
            .list_audit(&actor.project, &AuditFilter::default(), &request)
            .await;
        assert!(
            matches!(audited, Err(StoreError::InvalidCursor { .. })),
            "{bad:?}: {audited:?}"
        );
    }
    // A cursor of one list is refused by another.
    let versions_cursor = {
        new_version(store, &actor, "a", "y").await;
        store
            .list_versions(&actor.project, "a", &page(1))
            .await
            .unwrap()
            .next_cursor
            .unwrap()
    };
    let request = PageRequest {
        cursor: Some(versions_cursor),
        limit: 10,
    };
    let listed = store
        .list_prompts(&actor.project, &PromptFilter::default(), &request)
        .await;
    assert!(
        matches!(listed, Err(StoreError::InvalidCursor { .. })),
        "{listed:?}"
    );
}

// ---- full-text search ----------------------------------------------------------------------

pub async fn full_text_search(store: &dyn Store) {
    let actor = project(store, "p").await;
    create_tagged(
        store,
        &actor,
        "support/triage",
        "Routes incoming tickets",
        &["helpdesk"],
        "Classify the ticket",
    )
    .await;
    create_tagged(
        store,
        &actor,
        "sales/pitch",
        "Writes cold emails",
        &["outbound"],
        "Sell the refund policy",
    )
    .await;
    let chat = WriteOp::CreatePrompt {
        name: "agent/planner".into(),
        kind: PromptKind::Chat,
        description: String::new(),
        tags: vec![],
        status: PromptStatus::Draft,
        first_version: NewVersion {
            template: Template::Chat {
                messages: vec![
                    ChatMessage::Message {
                        role: "system".into(),
                        content: "You plan itineraries".into(),
                    },
                    ChatMessage::Placeholder {
                        placeholder: "history".into(),
                    },
                    ChatMessage::Message {
                        role: "user".into(),
                        content: "Trip to {{ city }}".into(),
                    },
                ],
            },
            ..text_version("unused")
        },
    };
    one(store, &actor, chat).await.unwrap();

    assert_eq!(
        search(store, &actor, "triage").await,
        vec!["support/triage"],
        "by name"
    );
    assert_eq!(
        search(store, &actor, "incoming").await,
        vec!["support/triage"],
        "by description"
    );
    assert_eq!(
        search(store, &actor, "outbound").await,
        vec!["sales/pitch"],
        "by tag"
    );
    assert_eq!(
        search(store, &actor, "refund").await,
        vec!["sales/pitch"],
        "by template text"
    );
    assert_eq!(
        search(store, &actor, "itineraries").await,
        vec!["agent/planner"],
        "by chat message"
    );
    assert_eq!(
        search(store, &actor, "trip").await,
        vec!["agent/planner"],
        "by a later chat message"
    );
    assert_eq!(
        search(store, &actor, "TICKET").await,
        vec!["support/triage"],
        "case-insensitive"
    );
    assert_eq!(
        search(store, &actor, "itin").await,
        vec!["agent/planner"],
        "prefix of the last word"
    );
    assert_eq!(
        search(store, &actor, "refund policy").await,
        vec!["sales/pitch"],
        "all words"
    );
    assert!(
        search(store, &actor, "refund tickets").await.is_empty(),
        "all words must match"
    );
    assert!(search(store, &actor, "nothing-like-this").await.is_empty());

    // Whatever the user types, no syntax error.
    for odd in [
        "\"",
        "a\"b",
        "*",
        "(",
        "AND",
        "OR NOT",
        "NEAR(a b)",
        "col:x",
        "^",
        "-x",
        "' OR 1=1 --",
        "}{",
    ] {
        let filter = PromptFilter {
            text: Some(odd.into()),
            ..PromptFilter::default()
        };
        let result = store.list_prompts(&actor.project, &filter, &page(10)).await;
        assert!(result.is_ok(), "{odd:?}: {result:?}");
    }
    // An empty query is no text filter.
    for empty in ["", "   "] {
        let filter = PromptFilter {
            text: Some(empty.into()),
            ..PromptFilter::default()
        };
        assert_eq!(
            store
                .list_prompts(&actor.project, &filter, &page(10))
                .await
                .unwrap()
                .items
                .len(),
            3
        );
    }
    // Text combines with the other filters.
    let filter = PromptFilter {
        text: Some("ticket".into()),
        name_prefix: Some("sales/".into()),
        ..PromptFilter::default()
    };
    assert!(
        store
            .list_prompts(&actor.project, &filter, &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Search results paginate without duplicates or gaps.
    let ops: Vec<WriteOp> = (0..7)
        .map(|i| create_op(&format!("bulk/{i}"), "shared words here"))
        .collect();
    store.apply(&actor, ops).await.unwrap();
    let filter = PromptFilter {
        text: Some("shared".into()),
        ..PromptFilter::default()
    };
    let mut seen = vec![];
    let mut request = page(3);
    loop {
        let got = store
            .list_prompts(&actor.project, &filter, &request)
            .await
            .unwrap();
        seen.extend(got.items.into_iter().map(|p| p.name));
        match got.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..7).map(|i| format!("bulk/{i}")).collect();
    assert_eq!(seen, expected);

    // Name hits rank above template hits.
    create_tagged(store, &actor, "weather/report", "", &[], "plain").await;
    create_tagged(
        store,
        &actor,
        "zz/other",
        "",
        &[],
        "mentions weather once in a long text about many other things",
    )
    .await;
    let filter = PromptFilter {
        text: Some("weather".into()),
        ..PromptFilter::default()
    };
    let ranked: Vec<String> = store
        .list_prompts(&actor.project, &filter, &page(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(ranked, vec!["weather/report", "zz/other"]);
}

pub async fn full_text_follows_the_newest_version(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "a", "original wording").await;
    assert_eq!(search(store, &actor, "original").await, vec!["a"]);
    new_version(store, &actor, "a", "replacement wording").await;
    assert!(
        search(store, &actor, "original").await.is_empty(),
        "old text left the index"
    );
    assert_eq!(search(store, &actor, "replacement").await, vec!["a"]);

    let update = WriteOp::UpdatePrompt {
        name: "a".into(),
        expected_revision: None,
        description: Some("freshly described".into()),
        tags: Some(vec!["newtag".into()]),
    };
    one(store, &actor, update).await.unwrap();
    assert_eq!(search(store, &actor, "freshly").await, vec!["a"]);
    assert_eq!(search(store, &actor, "newtag").await, vec!["a"]);
    assert_eq!(
        search(store, &actor, "replacement").await,
        vec!["a"],
        "template still indexed after a metadata change"
    );

    // A failed write does not touch the index either.
    let failing = vec![
        WriteOp::CreateVersion {
            name: "a".into(),
            expected_latest: None,
            version: text_version("phantom"),
        },
        WriteOp::DeletePrompt {
            name: "missing".into(),
        },
    ];
    assert!(store.apply(&actor, failing).await.is_err());
    assert!(search(store, &actor, "phantom").await.is_empty());
    assert_eq!(search(store, &actor, "replacement").await, vec!["a"]);
}

// ---- what the runtime serves ---------------------------------------------------------------

pub async fn live_versions_and_include_edges(store: &dyn Store) {
    let actor = project(store, "p").await;
    create(store, &actor, "header", "Hello").await;
    let including = |include: Vec<IncludeRef>| NewVersion {
        includes: include,
        ..text_version("uses header")
    };
    let by_label = IncludeRef {
        prompt: "header".into(),
        label: Some("production".into()),
        version: None,
    };
    let pinned = IncludeRef {
        prompt: "header".into(),
        label: None,
        version: Some(1),
    };
    let op = WriteOp::CreatePrompt {
        name: "page".into(),
        kind: PromptKind::Text,
        description: String::new(),
        tags: vec![],
        status: PromptStatus::Active,
        first_version: including(vec![by_label.clone()]),
    };
    one(store, &actor, op).await.unwrap();
    move_label(store, &actor, "page", "production", Some(1))
        .await
        .unwrap();
    let v2 = WriteOp::CreateVersion {
        name: "page".into(),
        expected_latest: Some(1),
        version: including(vec![pinned.clone()]),
    };
    one(store, &actor, v2).await.unwrap();

    let live: Vec<(String, u32)> = store
        .live_versions(&actor.project, None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.prompt, v.number))
        .collect();
    assert_eq!(
        live,
        vec![
            ("header".to_owned(), 1),
            ("page".to_owned(), 1),
            ("page".to_owned(), 2)
        ]
    );
    let page_live: Vec<u32> = store
        .live_versions(&actor.project, Some("page"))
        .await
        .unwrap()
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(page_live, vec![1, 2]);

    let edges = store.live_include_edges(&actor.project).await.unwrap();
    let shown: Vec<(String, u32, IncludeRef)> = edges
        .into_iter()
        .map(|e| (e.from_prompt, e.from_version, e.target))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("page".to_owned(), 1, by_label.clone()),
            ("page".to_owned(), 2, pinned.clone())
        ]
    );

    // A third version without includes: v2 is no longer live, its edge goes.
    new_version(store, &actor, "page", "standalone").await;
    let page_live: Vec<u32> = store
        .live_versions(&actor.project, Some("page"))
        .await
        .unwrap()
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(page_live, vec![1, 3]);
    let edges = store.live_include_edges(&actor.project).await.unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!((edges[0].from_version, &edges[0].target), (1, &by_label));

    // Removing production drops v1 too.
    move_label(store, &actor, "page", "production", None)
        .await
        .unwrap();
    assert!(
        store
            .live_include_edges(&actor.project)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- audit ---------------------------------------------------------------------------------

pub async fn audit_records_every_change_and_filters(store: &dyn Store) {
    let actor = project(store, "p").await;
    let editor = store
        .create_api_key(&actor, new_key("editorkey001", Role::Editor))
        .await
        .unwrap();
    let as_editor = Actor {
        project: actor.project.clone(),
        key_id: editor.id.clone(),
        role: Role::Editor,
    };
    tick();
    let before_prompts = store
        .list_audit(&actor.project, &AuditFilter::default(), &page(1))
        .await
        .unwrap()
        .items[0]
        .at;
    tick();
    create(store, &as_editor, "a", "one").await;
    new_version(store, &as_editor, "a", "two").await;
    move_label(store, &as_editor, "a", "production", Some(2))
        .await
        .unwrap();
    move_label(store, &as_editor, "a", "production", None)
        .await
        .unwrap();
    let update = WriteOp::UpdatePrompt {
        name: "a".into(),
        expected_revision: Some(1),
        description: Some("d".into()),
        tags: None,
    };
    one(store, &actor, update).await.unwrap();
    one(
        store,
        &actor,
        status_op("a", PromptStatus::Draft, PromptStatus::Active, false),
    )
    .await
    .unwrap();
    one(store, &actor, WriteOp::DeletePrompt { name: "a".into() })
        .await
        .unwrap();

    let all = audit(store, &actor, AuditFilter::default()).await;
    let actions: Vec<&str> = all.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "project.created",
            "key.created",
            "key.created",
            "prompt.created",
            "version.created",
            "version.created",
            "label.moved",
            "label.removed",
            "prompt.updated",
            "prompt.status_changed",
            "prompt.deleted",
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(all.iter().all(|a| a.project == actor.project));

    let by = |f: AuditFilter| audit(store, &actor, f);
    let d = AuditFilter::default;
    let versions = by(AuditFilter {
        object_type: Some("version".into()),
        ..d()
    })
    .await;
    let ids: Vec<&str> = versions.iter().map(|a| a.object_id.as_str()).collect();
    assert_eq!(ids, vec!["a@2", "a@1"]);
    assert_eq!(
        versions[0].after.as_ref().and_then(|v| v.get("number")),
        Some(&json!(2))
    );

    let label = by(AuditFilter {
        object_id: Some("a#production".into()),
        ..d()
    })
    .await;
    assert_eq!(label.len(), 2);
    assert_eq!(label[1].action, "label.moved");
    assert_eq!(label[1].before, None, "the label did not exist before");
    assert_eq!(
        label[0].before,
        Some(json!({"label": "production", "version": 2}))
    );

    let updated = by(AuditFilter {
        action: Some("prompt.updated".into()),
        ..d()
    })
    .await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]
            .before
            .as_ref()
            .and_then(|v| v.get("description")),
        Some(&json!(""))
    );
    assert_eq!(
        updated[0].after.as_ref().and_then(|v| v.get("description")),
        Some(&json!("d"))
    );

    let by_editor = by(AuditFilter {
        actor: Some(editor.id.clone()),
        ..d()
    })
    .await;
    assert_eq!(by_editor.len(), 5);
    assert!(by_editor.iter().all(|a| a.actor == editor.id));

    let since = by(AuditFilter {
        since: Some(before_prompts + time::Duration::milliseconds(1)),
        ..d()
    })
    .await;
    assert_eq!(since.len(), 8, "only the prompt changes are after the keys");
    let until = by(AuditFilter {
        until: Some(before_prompts),
        ..d()
    })
    .await;
    assert_eq!(until.len(), 3, "project and keys");
    let first = all.last().unwrap().at;
    let window = by(AuditFilter {
        since: Some(first),
        until: Some(first),
        ..d()
    })
    .await;
    assert!(!window.is_empty(), "since and until are inclusive");

    // Paginated, newest first, no duplicates or gaps.
    let mut seen = vec![];
    let mut request = page(4);
    loop {
        let got = store
            .list_audit(&actor.project, &AuditFilter::default(), &request)
            .await
            .unwrap();
        seen.extend(got.items.into_iter().map(|a| a.id));
        match got.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|a| a.id).collect::<Vec<_>>());
}

// ---- transactions --------------------------------------------------------------------------

pub async fn apply_is_all_or_nothing(store: &dyn Store) {
    let actor = project(store, "p").await;
    let audit_before = audit(store, &actor, AuditFilter::default()).await.len();

    let failing = vec![
        create_op("a", "one"),
        move_op("missing", "production", Some(1), None),
    ];
    assert!(matches!(
        store.apply(&actor, failing).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .get_prompt(&actor.project, "a")
            .await
            .unwrap()
            .is_none(),
        "first op rolled back"
    );
    assert_eq!(
        audit(store, &actor, AuditFilter::default()).await.len(),
        audit_before,
        "no audit record"
    );

    create(store, &actor, "b", "one").await;
    let failing = vec![
        WriteOp::CreateVersion {
            name: "b".into(),
            expected_latest: Some(1),
            version: text_version("two"),
        },
        move_op("b", "production", Some(2), None),
        WriteOp::UpdatePrompt {
            name: "b".into(),
            expected_revision: Some(99),
            description: Some("x".into()),
            tags: None,
        },
    ];
    assert!(matches!(
        store.apply(&actor, failing).await,
        Err(StoreError::Conflict { .. })
    ));
    let b = store
        .get_prompt(&actor.project, "b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.latest_version, 1);
    assert_eq!(b.labels, labels(&[(LATEST_LABEL, 1)]));
    assert!(
        store
            .get_version(&actor.project, "b", 2)
            .await
            .unwrap()
            .is_none()
    );
    let history = store
        .label_history(&actor.project, "b", None, &page(10))
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1, "no label moves of the failed apply");

    // The store is still usable and numbers carry on where they were.
    assert_eq!(new_version(store, &actor, "b", "two").await.number, 2);
    // Creating the same name twice in one apply fails as a whole.
    let twice = vec![create_op("c", "x"), create_op("c", "y")];
    assert!(matches!(
        store.apply(&actor, twice).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        store
            .get_prompt(&actor.project, "c")
            .await
            .unwrap()
            .is_none()
    );
    // An empty apply does nothing.
    assert!(store.apply(&actor, vec![]).await.unwrap().is_empty());
}

pub async fn apply_runs_several_ops_in_order(store: &dyn Store) {
    let actor = project(store, "p").await;
    let ops = vec![
        create_op("a", "one"),
        WriteOp::CreateVersion {
            name: "a".into(),
            expected_latest: Some(1),
            version: text_version("two"),
        },
        move_op("a", "production", Some(2), Some(None)),
        status_op("a", PromptStatus::Draft, PromptStatus::Active, false),
    ];
    let outcomes = store.apply(&actor, ops).await.unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(
        matches!(&outcomes[0], WriteOutcome::Prompt { first_version: Some(v), .. } if v.number == 1)
    );
    assert!(matches!(&outcomes[1], WriteOutcome::Version(v) if v.number == 2));
    assert!(matches!(&outcomes[2], WriteOutcome::LabelMoved(Some(m)) if m.to_version == Some(2)));
    match &outcomes[3] {
        WriteOutcome::Prompt { prompt, .. } => {
            assert_eq!(prompt.status, PromptStatus::Active);
            assert_eq!(
                prompt.labels,
                labels(&[(LATEST_LABEL, 2), ("production", 2)])
            );
            assert_eq!(
                Some(prompt),
                store
                    .get_prompt(&actor.project, "a")
                    .await
                    .unwrap()
                    .as_ref()
            );
        }
        other => panic!("status answered {other:?}"),
    }
}

// ---- tenancy -------------------------------------------------------------------------------

pub async fn projects_are_isolated(store: &dyn Store) {
    let a = project(store, "a").await;
    let b = project(store, "b").await;
    create_tagged(
        store,
        &a,
        "shared/name",
        "secret plans",
        &["t"],
        "alpha text",
    )
    .await;
    move_label(store, &a, "shared/name", "production", Some(1))
        .await
        .unwrap();
    let pb = &b.project;

    assert!(store.get_prompt(pb, "shared/name").await.unwrap().is_none());
    assert!(
        store
            .get_version(pb, "shared/name", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.all_prompts(pb).await.unwrap().is_empty());
    assert!(
        store
            .list_prompts(pb, &PromptFilter::default(), &page(50))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(search(store, &b, "alpha").await.is_empty());
    assert!(search(store, &b, "secret").await.is_empty());
    assert!(store.live_versions(pb, None).await.unwrap().is_empty());
    assert!(store.live_include_edges(pb).await.unwrap().is_empty());
    assert!(matches!(
        store.list_versions(pb, "shared/name", &page(5)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.all_versions(pb, "shared/name").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.list_labels(pb, "shared/name").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.label_history(pb, "shared/name", None, &page(5)).await,
        Err(StoreError::NotFound { .. })
    ));
    let now = time::OffsetDateTime::now_utc();
    assert!(matches!(
        store.label_at(pb, "shared/name", "production", now).await,
        Err(StoreError::NotFound { .. })
    ));
    let b_audit = audit(store, &b, AuditFilter::default()).await;
    assert!(
        b_audit
            .iter()
            .all(|e| e.project == b.project && !e.object_id.contains("shared/name"))
    );
    assert_eq!(store.list_api_keys(pb).await.unwrap().len(), 1);

    // B cannot change A's prompt, and can use the same name for its own.
    for op in [
        WriteOp::DeletePrompt {
            name: "shared/name".into(),
        },
        move_op("shared/name", "production", None, None),
        WriteOp::CreateVersion {
            name: "shared/name".into(),
            expected_latest: None,
            version: text_version("x"),
        },
    ] {
        assert!(matches!(
            one(store, &b, op).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    let own = create(store, &b, "shared/name", "beta text").await;
    assert_eq!(own.project, b.project);
    assert_eq!(search(store, &b, "beta").await, vec!["shared/name"]);
    assert!(search(store, &a, "beta").await.is_empty());
    let a_prompt = store
        .get_prompt(&a.project, "shared/name")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a_prompt.labels,
        labels(&[(LATEST_LABEL, 1), ("production", 1)])
    );
    assert_ne!(a_prompt.id, own.id);

    // Writes for a project that does not exist are refused.
    let ghost = Actor {
        project: ProjectId("ghost".into()),
        key_id: "x".into(),
        role: Role::Admin,
    };
    assert!(matches!(
        store.apply(&ghost, vec![create_op("z", "z")]).await,
        Err(StoreError::NotFound { .. })
    ));
}
