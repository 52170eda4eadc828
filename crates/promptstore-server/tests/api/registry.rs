//! Prompt metadata with If-Match, listing, search, pagination and the audit log.

use promptstore_client::types::{PromptStatus, Role, TransitionPrompt, UpdatePrompt};
use promptstore_client::{AuditFilter, ErrorCode, Method, PageRequest, PromptFilter};

use crate::harness::*;

#[tokio::test]
async fn update_needs_a_fresh_if_match() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("p", text("x"), vec![]))
        .await
        .unwrap();
    let tagged = s.admin.get_prompt_tagged("p").await.unwrap();
    let revision = tagged.value.revision;
    assert_eq!(
        tagged.etag.as_deref(),
        Some(format!("\"{revision}\"").as_str())
    );

    let update = UpdatePrompt {
        description: Some("triage incoming tickets".into()),
        tags: Some(vec!["support".into()]),
    };
    let updated = s.admin.update_prompt("p", revision, &update).await.unwrap();
    assert_eq!(updated.description, "triage incoming tickets");
    assert_eq!(updated.tags, vec!["support".to_owned()]);
    assert!(updated.revision > revision);

    let (st, body) = api_error(s.admin.update_prompt("p", revision, &update).await);
    assert_eq!((st, body.code), (412, ErrorCode::PreconditionFailed));
    assert_eq!(
        s.admin.get_prompt("p").await.unwrap().revision,
        updated.revision
    );

    let r = s
        .admin
        .raw(
            Method::PATCH,
            "/api/v1/prompts/p",
            &[("content-type", "application/json")],
            Some(br#"{"description":"x"}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 428);
    assert_eq!(r.error().unwrap().code, ErrorCode::PreconditionRequired);
    assert_eq!(
        code(s.admin.update_prompt("missing", 1, &update).await),
        ErrorCode::NotFound
    );
    let bad_tags = UpdatePrompt {
        description: None,
        tags: Some(vec!["".into()]),
    };
    assert_eq!(
        code(
            s.admin
                .update_prompt("p", updated.revision, &bad_tags)
                .await
        ),
        ErrorCode::InvalidName
    );
}

#[tokio::test]
async fn list_filter_search_and_paginate() {
    let s = TestServer::start().await;
    for i in 0..7 {
        let mut p = new_prompt(
            &format!("team/p{i}"),
            text(&format!("prompt number {i}")),
            vec![],
        );
        p.tags = if i % 2 == 0 {
            vec!["even".into()]
        } else {
            vec!["odd".into()]
        };
        s.admin.create_prompt(&p).await.unwrap();
    }
    let mut refund = new_prompt(
        "billing/refunds",
        text("Explain the refund policy for {{ product }}"),
        vec![],
    );
    refund.description = "answers questions about money back".into();
    s.admin.create_prompt(&refund).await.unwrap();
    s.admin
        .set_label("team/p3", "staging", &to(1))
        .await
        .unwrap();
    s.admin
        .transition_prompt(
            "team/p5",
            &TransitionPrompt {
                status: PromptStatus::Active,
                force: false,
            },
        )
        .await
        .unwrap();

    let first = s
        .admin
        .list_prompts(&PromptFilter {
            page: PageRequest {
                cursor: None,
                limit: Some(3),
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let all = s
        .admin
        .list_all_prompts(&PromptFilter {
            page: PageRequest {
                cursor: None,
                limit: Some(3),
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 8);
    let mut names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 8, "pages do not overlap");

    let even = s
        .admin
        .list_all_prompts(&PromptFilter {
            tag: Some("even".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(even.len(), 4);
    let staged = s
        .admin
        .list_prompts(&PromptFilter {
            label: Some("staging".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        staged
            .items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["team/p3"]
    );
    let active = s
        .admin
        .list_prompts(&PromptFilter {
            status: Some(PromptStatus::Active),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active.items.len(), 1);
    let team = s
        .admin
        .list_all_prompts(&PromptFilter {
            prefix: Some("team/".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(team.len(), 7);

    let by_template = s
        .admin
        .list_prompts(&PromptFilter {
            q: Some("refund".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_template.items.first().map(|p| p.name.as_str()),
        Some("billing/refunds")
    );
    let by_description = s
        .admin
        .list_prompts(&PromptFilter {
            q: Some("money".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_description.items.len(), 1);
    let nothing = s
        .admin
        .list_prompts(&PromptFilter {
            q: Some("zebra".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(nothing.items.is_empty());
    let r = s
        .admin
        .raw(
            Method::GET,
            "/api/v1/prompts?cursor=not-a-cursor",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn every_change_is_audited() {
    let s = TestServer::start().await;
    let (editor, editor_id) = s.key(Role::Editor).await;
    editor
        .create_prompt(&new_prompt("p", text("1"), vec![]))
        .await
        .unwrap();
    editor
        .create_version("p", &new_version(text("2"), vec![]))
        .await
        .unwrap();
    editor.set_label("p", "staging", &to(1)).await.unwrap();
    let rev = editor.get_prompt("p").await.unwrap().revision;
    editor
        .update_prompt(
            "p",
            rev,
            &UpdatePrompt {
                description: Some("d".into()),
                tags: None,
            },
        )
        .await
        .unwrap();
    editor
        .transition_prompt(
            "p",
            &TransitionPrompt {
                status: PromptStatus::Active,
                force: false,
            },
        )
        .await
        .unwrap();
    editor.remove_label("p", "staging").await.unwrap();
    editor.delete_prompt("p", false).await.unwrap();

    let records = s
        .admin
        .audit(&AuditFilter {
            actor: Some(editor_id.clone()),
            page: PageRequest {
                cursor: None,
                limit: Some(200),
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = records.items.iter().map(|r| r.action.as_str()).collect();
    for expected in [
        "prompt.created",
        "version.created",
        "label.moved",
        "prompt.updated",
        "prompt.status_changed",
        "label.removed",
        "prompt.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(records.items.iter().all(|r| r.actor == editor_id));
    let key_records = s
        .admin
        .audit(&AuditFilter {
            action: Some("key.created".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(key_records.items.iter().all(|r| r.action == "key.created"));
    assert!(
        key_records.items.iter().any(|r| r.object_id == editor_id),
        "{:?}",
        key_records.items
    );
    let labels = s
        .admin
        .audit(&AuditFilter {
            object_type: Some("label".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(labels.items.iter().all(|r| r.object_type == "label"));
    let future = s
        .admin
        .audit(&AuditFilter {
            since: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(future.items.is_empty());
    let r = s
        .admin
        .raw(Method::GET, "/api/v1/audit?since=soon", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
}
