//! The core flow end to end: create a prompt, save versions, label one, render it.

use promptstore_client::types::{ForkVersion, RenderRequest, VarType};
use promptstore_client::{ErrorCode, PageRequest, Selector};

use crate::harness::*;

#[tokio::test]
async fn create_version_label_render() {
    let s = TestServer::start().await;
    let created = s
        .admin
        .create_prompt(&new_prompt(
            "support/triage",
            text("Hello {{ name }}!"),
            vec![var("name", VarType::String)],
        ))
        .await
        .unwrap();
    assert_eq!(created.prompt.name, "support/triage");
    assert_eq!(created.version.number, 1);
    assert_eq!(created.prompt.labels.get("latest"), Some(&1));
    assert_eq!(created.version.content_hash.len(), 64);

    let v2 = s
        .admin
        .create_version(
            "support/triage",
            &new_version(
                text("Hi {{ name }}, how can I help?"),
                vec![var("name", VarType::String)],
            ),
        )
        .await
        .unwrap();
    assert!(v2.created);
    assert_eq!(v2.version.number, 2);
    assert_eq!(v2.version.parent.as_ref().map(|p| p.number), Some(1));

    let moved = s
        .admin
        .set_label("support/triage", "production", &to(1))
        .await
        .unwrap();
    assert_eq!(moved.to_version, Some(1));
    assert_eq!(moved.from_version, None);

    let vars = serde_json::json!({ "name": "Ada" })
        .as_object()
        .unwrap()
        .clone();
    let prod = s
        .admin
        .render(&RenderRequest {
            name: "support/triage".into(),
            label: Some("production".into()),
            version: None,
            variables: vars.clone(),
            unit_id: None,
        })
        .await
        .unwrap();
    assert_eq!(prod.text.as_deref(), Some("Hello Ada!"));
    assert_eq!(prod.version, 1);
    assert_eq!(prod.label.as_deref(), Some("production"));

    let latest = s
        .admin
        .render(&RenderRequest {
            name: "support/triage".into(),
            label: None,
            version: None,
            variables: vars.clone(),
            unit_id: None,
        })
        .await
        .unwrap();
    assert_eq!(latest.text.as_deref(), Some("Hi Ada, how can I help?"));

    // Moving the label is seen by the very next render.
    s.admin
        .set_label("support/triage", "production", &to(2))
        .await
        .unwrap();
    let prod = s
        .admin
        .render(&RenderRequest {
            name: "support/triage".into(),
            label: Some("production".into()),
            version: None,
            variables: vars.clone(),
            unit_id: None,
        })
        .await
        .unwrap();
    assert_eq!(prod.version, 2);

    // A non-live version by number is loaded on demand.
    let v1 = s
        .admin
        .resolve("support/triage", &Selector::Version(1), None)
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.template, text("Hello {{ name }}!"));
    let pinned = s
        .admin
        .render(&RenderRequest {
            name: "support/triage".into(),
            label: None,
            version: Some(1),
            variables: vars,
            unit_id: None,
        })
        .await
        .unwrap();
    assert_eq!(pinned.text.as_deref(), Some("Hello Ada!"));
    s.stop().await;
}

#[tokio::test]
async fn chat_prompt_renders_messages_and_placeholders() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            "bot/chat",
            chat(&[
                ("system", "You help {{ user }}."),
                ("placeholder", "history"),
                ("user", "{{ question }}"),
            ]),
            vec![
                var("user", VarType::String),
                var("history", VarType::List),
                var("question", VarType::String),
            ],
        ))
        .await
        .unwrap();
    let vars = serde_json::json!({
        "user": "Ada",
        "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "question": "what now?"
    });
    let out = s
        .admin
        .render(&RenderRequest {
            name: "bot/chat".into(),
            label: None,
            version: None,
            variables: vars.as_object().unwrap().clone(),
            unit_id: None,
        })
        .await
        .unwrap();
    let messages = out.messages.unwrap();
    let pairs: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("system", "You help Ada."),
            ("user", "hi"),
            ("assistant", "hello"),
            ("user", "what now?")
        ]
    );
    // A chat prompt cannot get a text version.
    assert_eq!(
        code(
            s.admin
                .create_version("bot/chat", &new_version(text("x"), vec![]))
                .await
        ),
        ErrorCode::InvalidRequest
    );
}

#[tokio::test]
async fn identical_version_is_not_duplicated_and_stale_base_conflicts() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("p", text("same"), vec![]))
        .await
        .unwrap();
    let again = s
        .admin
        .create_version("p", &new_version(text("same"), vec![]))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version.number, 1);
    let raw = s
        .admin
        .raw(
            promptstore_client::Method::POST,
            "/api/v1/prompts/p/versions",
            &[("content-type", "application/json")],
            Some(br#"{"template":{"type":"text","text":"same"}}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 200, "identical save answers 200");
    let versions = s
        .admin
        .list_versions("p", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(versions.items.len(), 1);

    let mut edit = new_version(text("changed"), vec![]);
    edit.base_version = Some(1);
    assert!(s.admin.create_version("p", &edit).await.unwrap().created);
    // Someone else's edit started from version 1 too: refused.
    let mut stale = new_version(text("other change"), vec![]);
    stale.base_version = Some(1);
    let (status, body) = api_error(s.admin.create_version("p", &stale).await);
    assert_eq!((status, body.code), (409, ErrorCode::Conflict));
    assert_eq!(body.details["latest_version"], 2);
}

#[tokio::test]
async fn fork_diff_versions_and_pagination() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            "base",
            text("line one\nline {{ x }}"),
            vec![var("x", VarType::String)],
        ))
        .await
        .unwrap();
    for i in 2..=5 {
        let t = format!("line one\nline {{{{ x }}}} {i}");
        s.admin
            .create_version(
                "base",
                &new_version(text(&t), vec![var("x", VarType::String)]),
            )
            .await
            .unwrap();
    }
    let page1 = s
        .admin
        .list_versions(
            "base",
            &PageRequest {
                cursor: None,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page1.items.iter().map(|v| v.number).collect::<Vec<_>>(),
        vec![5, 4]
    );
    assert!(page1.items[0].labels.contains(&"latest".to_owned()));
    let page2 = s
        .admin
        .list_versions(
            "base",
            &PageRequest {
                cursor: page1.next_cursor.clone(),
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page2.items.iter().map(|v| v.number).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let all = s.admin.list_all_versions("base").await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        code(
            s.admin
                .list_versions(
                    "base",
                    &PageRequest {
                        cursor: None,
                        limit: Some(0)
                    }
                )
                .await
        ),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        code(
            s.admin
                .list_versions(
                    "base",
                    &PageRequest {
                        cursor: None,
                        limit: Some(201)
                    }
                )
                .await
        ),
        ErrorCode::InvalidRequest
    );

    let diff = s.admin.diff("base", 1, 3).await.unwrap();
    assert_eq!((diff.from, diff.to), (1, 3));
    assert!(
        diff.template_diff.contains("+line {{ x }} 3"),
        "{}",
        diff.template_diff
    );
    assert_eq!(code(s.admin.diff("base", 1, 9).await), ErrorCode::NotFound);

    let fork = s
        .admin
        .fork_version(
            "base",
            3,
            &ForkVersion {
                name: "base-copy".into(),
                description: None,
                tags: None,
                commit_message: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(fork.prompt.name, "base-copy");
    assert_eq!(fork.version.number, 1);
    let parent = fork.version.parent.unwrap();
    assert_eq!((parent.prompt.as_str(), parent.number), ("base", 3));
    let original = s.admin.get_version("base", 3).await.unwrap();
    assert_eq!(fork.version.content_hash, original.content_hash);
    assert_eq!(
        code(
            s.admin
                .fork_version(
                    "base",
                    3,
                    &ForkVersion {
                        name: "base-copy".into(),
                        description: None,
                        tags: None,
                        commit_message: None
                    }
                )
                .await
        ),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        code(s.admin.get_version("base", 42).await),
        ErrorCode::NotFound
    );
}
