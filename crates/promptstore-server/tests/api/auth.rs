//! Keys, roles and the tenant boundary.

use promptstore_client::types::{
    CreateApiKey, CreateProject, RenderRequest, Role, SetProtectedLabels, VarType,
};
use promptstore_client::{ErrorCode, Method, Selector};

use crate::harness::*;

#[tokio::test]
async fn missing_unknown_and_revoked_keys_are_401() {
    let s = TestServer::start().await;
    let none = s.client("");
    let (status, body) = api_error(none.get_prompt("x").await);
    assert_eq!((status, body.code), (401, ErrorCode::Unauthorized));
    assert_eq!(
        code(
            none.resolve("x", &Selector::Label("latest".into()), None)
                .await
        ),
        ErrorCode::Unauthorized
    );
    let fake = format!("ps_abcdefghijkl_{}", "0".repeat(64));
    assert_eq!(
        code(s.client(&fake).project().await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(s.client("garbage").project().await),
        ErrorCode::Unauthorized
    );
    // The right id with a wrong secret.
    let wrong = format!("{}{}", &s.admin_secret[..16], "f".repeat(64));
    assert_eq!(
        code(s.client(&wrong).project().await),
        ErrorCode::Unauthorized
    );

    // X-API-Key works as well as Bearer.
    let r = none
        .raw(
            Method::GET,
            "/api/v1/project",
            &[("x-api-key", &s.admin_secret)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let (viewer, viewer_id) = s.key(Role::Viewer).await;
    viewer.project().await.unwrap();
    let revoked = s.admin.revoke_key(&viewer_id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(code(viewer.project().await), ErrorCode::Unauthorized);
    let keys = s.admin.list_keys().await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.id == viewer_id && k.revoked_at.is_some())
    );
    assert_eq!(
        code(s.admin.revoke_key("nosuchkey").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn roles_limit_what_a_key_may_do() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt(
            "p",
            text("Hi {{ n }}"),
            vec![var("n", VarType::String)],
        ))
        .await
        .unwrap();
    let (viewer, _) = s.key(Role::Viewer).await;
    let (runtime, _) = s.key(Role::Runtime).await;
    let (editor, _) = s.key(Role::Editor).await;

    // Viewer reads, cannot write.
    viewer.get_prompt("p").await.unwrap();
    let (status, body) = api_error(
        viewer
            .create_prompt(&new_prompt("v", text("x"), vec![]))
            .await,
    );
    assert_eq!((status, body.code), (403, ErrorCode::Forbidden));
    assert_eq!(
        code(viewer.set_label("p", "staging", &to(1)).await),
        ErrorCode::Forbidden
    );
    assert_eq!(code(viewer.list_keys().await), ErrorCode::Forbidden);

    // Runtime resolves and renders only.
    runtime
        .resolve("p", &Selector::Label("latest".into()), None)
        .await
        .unwrap();
    let vars = serde_json::json!({"n": "x"}).as_object().unwrap().clone();
    runtime
        .render(&RenderRequest {
            name: "p".into(),
            label: None,
            version: None,
            variables: vars,
            unit_id: None,
        })
        .await
        .unwrap();
    runtime.bulk_resolve("latest").await.unwrap();
    assert_eq!(
        code(
            runtime
                .create_version("p", &new_version(text("y"), vec![]))
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(code(runtime.get_prompt("p").await), ErrorCode::Forbidden);
    assert_eq!(code(runtime.export().await), ErrorCode::Forbidden);

    // Editor writes, but does not manage keys or read the audit log.
    editor
        .create_version(
            "p",
            &new_version(text("Hey {{ n }}"), vec![var("n", VarType::String)]),
        )
        .await
        .unwrap();
    assert_eq!(
        code(
            editor
                .create_key(&CreateApiKey {
                    name: "x".into(),
                    role: Role::Admin
                })
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(editor.audit(&Default::default()).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            editor
                .set_protected_labels(&SetProtectedLabels { labels: vec![] })
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            editor
                .create_project(&CreateProject {
                    name: "other".into()
                })
                .await
        ),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn protected_labels_need_an_admin() {
    let s = TestServer::start().await;
    let project = s.admin.project().await.unwrap();
    assert_eq!(project.protected_labels, vec!["production".to_owned()]);
    s.admin
        .create_prompt(&new_prompt("p", text("one"), vec![]))
        .await
        .unwrap();
    let (editor, _) = s.key(Role::Editor).await;
    let (status, body) = api_error(editor.set_label("p", "production", &to(1)).await);
    assert_eq!((status, body.code), (403, ErrorCode::ProtectedLabel));
    editor.set_label("p", "staging", &to(1)).await.unwrap();
    s.admin.set_label("p", "production", &to(1)).await.unwrap();
    assert_eq!(
        code(editor.remove_label("p", "production").await),
        ErrorCode::ProtectedLabel
    );
    let labels = s.admin.list_labels("p").await.unwrap();
    assert!(labels.iter().any(|l| l.name == "production" && l.protected));
    assert!(labels.iter().any(|l| l.name == "staging" && !l.protected));

    // Protect staging too; now the editor cannot move it either.
    let updated = s
        .admin
        .set_protected_labels(&SetProtectedLabels {
            labels: vec!["production".into(), "staging".into()],
        })
        .await
        .unwrap();
    assert_eq!(updated.protected_labels.len(), 2);
    assert_eq!(
        code(editor.set_label("p", "staging", &to(1)).await),
        ErrorCode::ProtectedLabel
    );
    assert_eq!(
        code(
            s.admin
                .set_protected_labels(&SetProtectedLabels {
                    labels: vec!["Not Valid".into()]
                })
                .await
        ),
        ErrorCode::InvalidName
    );
}

#[tokio::test]
async fn another_projects_key_sees_nothing() {
    let s = TestServer::start().await;
    s.admin
        .create_prompt(&new_prompt("secret/plan", text("classified"), vec![]))
        .await
        .unwrap();
    let other = s
        .admin
        .create_project(&CreateProject {
            name: "other".into(),
        })
        .await
        .unwrap();
    assert_eq!(other.admin_key.key.role, Role::Admin);
    assert!(
        other
            .admin_key
            .secret
            .starts_with(&format!("ps_{}_", other.admin_key.key.id))
    );
    let o = s.client(&other.admin_key.secret);
    assert_eq!(o.project().await.unwrap().name, "other");
    assert_eq!(code(o.get_prompt("secret/plan").await), ErrorCode::NotFound);
    assert_eq!(
        code(
            o.resolve("secret/plan", &Selector::Label("latest".into()), None)
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(o.set_label("secret/plan", "staging", &to(1)).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(o.delete_prompt("secret/plan", true).await),
        ErrorCode::NotFound
    );
    assert!(
        o.list_prompts(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(o.export().await.unwrap().prompts.is_empty());
    assert!(o.bulk_resolve("latest").await.unwrap().prompts.is_empty());
    // Its keys are its own: it cannot revoke ours.
    let ours = s.admin.list_keys().await.unwrap();
    assert_eq!(code(o.revoke_key(&ours[0].id).await), ErrorCode::NotFound);
    // The same name can exist in both projects independently.
    o.create_prompt(&new_prompt("secret/plan", text("theirs"), vec![]))
        .await
        .unwrap();
    let mine = s
        .admin
        .resolve("secret/plan", &Selector::Label("latest".into()), None)
        .await
        .unwrap();
    assert_eq!(mine.template, text("classified"));
    assert_eq!(
        code(
            s.admin
                .create_project(&CreateProject {
                    name: "other".into()
                })
                .await
        ),
        ErrorCode::AlreadyExists
    );
}
