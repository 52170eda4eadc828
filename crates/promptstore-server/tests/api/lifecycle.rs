//! Lifecycle transitions, archiving, and deleting prompts others depend on.

use promptstore_client::types::{PromptStatus, TransitionPrompt};
use promptstore_client::{ErrorCode, Selector};

use crate::harness::*;

fn status(status: PromptStatus, force: bool) -> TransitionPrompt {
    TransitionPrompt { status, force }
}

#[tokio::test]
async fn transitions_follow_the_rules() {
    let s = TestServer::start().await;
    let created = s
        .admin
        .create_prompt(&new_prompt("p", text("x"), vec![]))
        .await
        .unwrap();
    assert_eq!(created.prompt.status, PromptStatus::Draft);
    let (st, body) = api_error(
        s.admin
            .transition_prompt("p", &status(PromptStatus::Deprecated, false))
            .await,
    );
    assert_eq!((st, body.code), (409, ErrorCode::InvalidTransition));
    assert_eq!(
        code(
            s.admin
                .transition_prompt("p", &status(PromptStatus::Draft, false))
                .await
        ),
        ErrorCode::InvalidTransition
    );
    let p = s
        .admin
        .transition_prompt("p", &status(PromptStatus::Active, false))
        .await
        .unwrap();
    assert_eq!(p.status, PromptStatus::Active);
    assert!(p.revision > created.prompt.revision);
    let p = s
        .admin
        .transition_prompt("p", &status(PromptStatus::Deprecated, false))
        .await
        .unwrap();
    assert_eq!(p.status, PromptStatus::Deprecated);
    // Deprecated prompts are still served.
    s.admin
        .resolve("p", &Selector::Label("latest".into()), None)
        .await
        .unwrap();
    assert_eq!(
        code(
            s.admin
                .transition_prompt("missing", &status(PromptStatus::Active, false))
                .await
        ),
        ErrorCode::NotFound
    );

    let mut active = new_prompt("born-active", text("x"), vec![]);
    active.status = Some(PromptStatus::Active);
    assert_eq!(
        s.admin.create_prompt(&active).await.unwrap().prompt.status,
        PromptStatus::Active
    );
}

#[tokio::test]
async fn archived_prompts_hold_no_labels_and_are_not_served() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("p", text("x"), vec![]))
        .await
        .unwrap();
    s.admin.set_label("p", "production", &to(1)).await.unwrap();
    let (st, body) = api_error(
        s.admin
            .transition_prompt("p", &status(PromptStatus::Archived, false))
            .await,
    );
    assert_eq!((st, body.code), (409, ErrorCode::HasDependents));
    assert!(
        body.details["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "production")
    );

    let archived = s
        .admin
        .transition_prompt("p", &status(PromptStatus::Archived, true))
        .await
        .unwrap();
    assert_eq!(archived.status, PromptStatus::Archived);
    assert!(!archived.labels.contains_key("production"));
    let (st, body) = api_error(
        s.admin
            .resolve("p", &Selector::Label("latest".into()), None)
            .await,
    );
    assert_eq!((st, body.code), (410, ErrorCode::PromptArchived));
    assert_eq!(
        code(s.admin.set_label("p", "production", &to(1)).await),
        ErrorCode::PromptArchived
    );
    assert_eq!(
        code(
            s.admin
                .create_version("p", &new_version(text("y"), vec![]))
                .await
        ),
        ErrorCode::PromptArchived
    );
    assert!(
        s.admin
            .bulk_resolve("latest")
            .await
            .unwrap()
            .prompts
            .is_empty()
    );

    // Restored, it is served again.
    s.admin
        .transition_prompt("p", &status(PromptStatus::Active, false))
        .await
        .unwrap();
    s.admin
        .resolve("p", &Selector::Label("latest".into()), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_with_dependents_needs_force() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("shared/header", text("HEADER"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt(
            "uses",
            text(r#"{% include "shared/header@latest" %} body"#),
            vec![],
        ))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt("labelled", text("x"), vec![]))
        .await
        .unwrap();
    s.admin
        .set_label("labelled", "staging", &to(1))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt("free", text("x"), vec![]))
        .await
        .unwrap();

    let (st, body) = api_error(s.admin.delete_prompt("shared/header", false).await);
    assert_eq!((st, body.code), (409, ErrorCode::HasDependents));
    assert_eq!(body.details["dependents"][0]["prompt"], "uses");
    let (_, body) = api_error(s.admin.delete_prompt("labelled", false).await);
    assert_eq!(body.details["labels"][0], "staging");

    s.admin.delete_prompt("free", false).await.unwrap();
    assert_eq!(code(s.admin.get_prompt("free").await), ErrorCode::NotFound);
    s.admin.delete_prompt("labelled", true).await.unwrap();
    s.admin.delete_prompt("shared/header", true).await.unwrap();
    assert_eq!(
        code(
            s.admin
                .resolve("shared/header", &Selector::Label("latest".into()), None)
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.delete_prompt("free", false).await),
        ErrorCode::NotFound
    );
    // The name is free again.
    s.admin
        .create_prompt(&new_prompt("free", text("again"), vec![]))
        .await
        .unwrap();
    let v = s
        .admin
        .resolve("free", &Selector::Label("latest".into()), None)
        .await
        .unwrap();
    assert_eq!(v.template, text("again"));
}
