//! Label moves: the variable contract on protected labels, compare-and-set, history,
//! rollback and time travel.

use promptstore_client::types::{RollbackLabel, SetLabel, VarType};
use promptstore_client::{ErrorCode, PageRequest, Selector};

use crate::harness::*;

#[tokio::test]
async fn breaking_change_is_refused_on_a_protected_label_unless_allowed() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            "p",
            text("{{ a }} {{ b }}"),
            vec![var("a", VarType::String), var("b", VarType::String)],
        ))
        .await
        .unwrap();
    s.admin.set_label("p", "production", &to(1)).await.unwrap();
    // v2 drops `b` and changes the type of `a`: breaking.
    let v2 = s
        .admin
        .create_version(
            "p",
            &new_version(text("{{ a }}"), vec![var("a", VarType::Number)]),
        )
        .await
        .unwrap();
    assert!(!v2.version.breaking_changes.is_empty());
    let summaries = s
        .admin
        .list_versions("p", &PageRequest::default())
        .await
        .unwrap();
    assert!(summaries.items[0].breaking);

    let (status, body) = api_error(s.admin.set_label("p", "production", &to(2)).await);
    assert_eq!((status, body.code), (409, ErrorCode::BreakingChange));
    let changes = body.details["breaking_changes"].as_array().unwrap();
    let vars: Vec<&str> = changes
        .iter()
        .map(|c| c["variable"].as_str().unwrap())
        .collect();
    assert!(vars.contains(&"a") && vars.contains(&"b"), "{changes:?}");
    assert_eq!(
        s.admin.get_label("p", "production").await.unwrap().version,
        1
    );

    // An unprotected label moves freely.
    s.admin.set_label("p", "staging", &to(2)).await.unwrap();
    let forced = s
        .admin
        .set_label(
            "p",
            "production",
            &SetLabel {
                version: 2,
                expected_version: None,
                allow_breaking: true,
                reason: Some("migration".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!((forced.from_version, forced.to_version), (Some(1), Some(2)));
    assert_eq!(forced.reason.as_deref(), Some("migration"));
}

#[tokio::test]
async fn compare_and_set_on_expected_version() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("p", text("1"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_version("p", &new_version(text("2"), vec![]))
        .await
        .unwrap();
    let cas = |version, expected| SetLabel {
        version,
        expected_version: Some(expected),
        allow_breaking: false,
        reason: None,
    };
    s.admin.set_label("p", "staging", &cas(1, 0)).await.unwrap();
    assert_eq!(
        code(s.admin.set_label("p", "staging", &cas(2, 0)).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(s.admin.set_label("p", "staging", &cas(2, 2)).await),
        ErrorCode::Conflict
    );
    s.admin.set_label("p", "staging", &cas(2, 1)).await.unwrap();
    // Moving to where it already is writes nothing and answers the move that put it there.
    let same = s.admin.set_label("p", "staging", &to(2)).await.unwrap();
    assert_eq!(same.to_version, Some(2));
    let history = s
        .admin
        .label_history("p", Some("staging"), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 2);
}

#[tokio::test]
async fn history_rollback_and_as_of() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("p", text("1"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_version("p", &new_version(text("2"), vec![]))
        .await
        .unwrap();
    s.admin
        .create_version("p", &new_version(text("3"), vec![]))
        .await
        .unwrap();
    s.admin.set_label("p", "production", &to(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.admin.set_label("p", "production", &to(3)).await.unwrap();

    let history = s
        .admin
        .label_history("p", Some("production"), &PageRequest::default())
        .await
        .unwrap();
    let moves: Vec<(Option<u32>, Option<u32>)> = history
        .items
        .iter()
        .map(|m| (m.from_version, m.to_version))
        .collect();
    assert_eq!(
        moves,
        vec![(Some(1), Some(3)), (None, Some(1))],
        "newest first"
    );
    let all = s
        .admin
        .label_history("p", None, &PageRequest::default())
        .await
        .unwrap();
    assert!(all.items.iter().any(|m| m.label == "latest"));
    let paged = s
        .admin
        .label_history(
            "p",
            None,
            &PageRequest {
                cursor: None,
                limit: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 1);
    assert!(paged.next_cursor.is_some());

    let at = s
        .admin
        .label_as_of("p", "production", between)
        .await
        .unwrap();
    assert_eq!(at.version, Some(1));
    let before = s
        .admin
        .label_as_of("p", "production", between - time::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(before.version, None);
    let bad = s
        .admin
        .raw(
            promptstore_client::Method::GET,
            "/api/v1/prompts/p/labels/production?as_of=yesterday",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.error().unwrap().message.contains("as_of"));

    let back = s
        .admin
        .rollback_label("p", "production", &RollbackLabel::default())
        .await
        .unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(3), Some(1)));
    let resolved = s
        .admin
        .resolve("p", &Selector::Label("production".into()), None)
        .await
        .unwrap();
    assert_eq!(resolved.version, 1);
    let explicit = s
        .admin
        .rollback_label(
            "p",
            "production",
            &RollbackLabel {
                version: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(explicit.to_version, Some(2));

    // A label that was only ever created has nothing to roll back to.
    s.admin.set_label("p", "canary", &to(2)).await.unwrap();
    assert_eq!(
        code(
            s.admin
                .rollback_label("p", "canary", &RollbackLabel::default())
                .await
        ),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(
            s.admin
                .rollback_label("p", "nolabel", &RollbackLabel::default())
                .await
        ),
        ErrorCode::NotFound
    );

    let removed = s.admin.remove_label("p", "canary").await.unwrap();
    assert_eq!((removed.from_version, removed.to_version), (Some(2), None));
    assert_eq!(
        code(
            s.admin
                .resolve("p", &Selector::Label("canary".into()), None)
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.admin.remove_label("p", "latest").await),
        ErrorCode::ReservedLabel
    );
}
