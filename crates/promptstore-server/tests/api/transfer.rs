//! Export and import: round trip into a fresh project, idempotence, all-or-nothing.

use promptstore_client::types::{
    CreateProject, ProjectExport, PromptStatus, TransitionPrompt, VarType,
};
use promptstore_client::{ErrorCode, Selector};

use crate::harness::*;

async fn seed(s: &TestServer) {
    s.admin
        .create_prompt(&new_prompt("old/retired", text("gone"), vec![]))
        .await
        .unwrap();
    s.admin
        .transition_prompt(
            "old/retired",
            &TransitionPrompt {
                status: PromptStatus::Archived,
                force: false,
            },
        )
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt("parts/footer", text("-- the team"), vec![]))
        .await
        .unwrap();
    let mut p = new_prompt(
        "support/reply",
        text(r#"Dear {{ name }}, {% include "parts/footer@production" %}"#),
        vec![var("name", VarType::String)],
    );
    p.tags = vec!["support".into()];
    p.description = "replies".into();
    p.model_config = Some(serde_json::json!({"model": "gpt-x", "temperature": 0.2}));
    s.admin.create_prompt(&p).await.unwrap();
    s.admin
        .create_version(
            "support/reply",
            &new_version(
                text(r#"Hi {{ name }}! {% include "parts/footer@production" %}"#),
                vec![var("name", VarType::String)],
            ),
        )
        .await
        .unwrap();
    s.admin
        .set_label("parts/footer", "production", &to(1))
        .await
        .unwrap();
    s.admin
        .set_label("support/reply", "production", &to(1))
        .await
        .unwrap();
    s.admin
        .set_label("support/reply", "staging", &to(2))
        .await
        .unwrap();
    s.admin
        .create_prompt(&new_prompt(
            "bot",
            chat(&[("system", "be brief"), ("placeholder", "history")]),
            vec![var("history", VarType::List)],
        ))
        .await
        .unwrap();
}

/// The export with what legitimately differs between projects (authors) removed.
fn comparable(mut e: ProjectExport) -> ProjectExport {
    for p in &mut e.prompts {
        for v in &mut p.versions {
            v.author = None;
        }
    }
    e
}

#[tokio::test]
async fn export_import_round_trip_and_idempotence() {
    let s = TestServer::start().await;
    seed(&s).await;
    let exported = s.admin.export().await.unwrap();
    assert_eq!(exported.prompts.len(), 4);
    let reply = exported
        .prompts
        .iter()
        .find(|p| p.name == "support/reply")
        .unwrap();
    assert_eq!(reply.versions.len(), 2);
    assert!(!reply.labels.contains_key("latest"));
    assert_eq!(reply.labels.get("staging"), Some(&2));

    let other = s
        .admin
        .create_project(&CreateProject {
            name: "copy".into(),
        })
        .await
        .unwrap();
    let o = s.client(&other.admin_key.secret);
    let report = o.import(&exported).await.unwrap();
    assert_eq!(report.prompts_created.len(), 4);
    assert_eq!(report.versions_created.len(), 5);
    assert_eq!(report.labels_moved.len(), 3);
    assert_eq!(
        comparable(o.export().await.unwrap()),
        comparable(exported.clone())
    );
    let rendered = o
        .render(&promptstore_client::types::RenderRequest {
            name: "support/reply".into(),
            label: Some("production".into()),
            version: None,
            variables: serde_json::json!({"name": "Ada"})
                .as_object()
                .unwrap()
                .clone(),
            unit_id: None,
        })
        .await
        .unwrap();
    assert_eq!(rendered.text.as_deref(), Some("Dear Ada, -- the team"));

    let again = o.import(&exported).await.unwrap();
    assert!(
        again.prompts_created.is_empty()
            && again.versions_created.is_empty()
            && again.labels_moved.is_empty(),
        "{again:?}"
    );
    assert!(again.prompts_updated.is_empty(), "{again:?}");
    assert_eq!(again.unchanged.len(), 4);

    // Importing into the source project changes nothing either.
    let same = s.admin.import(&exported).await.unwrap();
    assert_eq!(same.unchanged.len(), 4);
}

#[tokio::test]
async fn import_is_all_or_nothing() {
    let s = TestServer::start().await;
    seed(&s).await;
    let mut bundle = s.admin.export().await.unwrap();
    let other = s
        .admin
        .create_project(&CreateProject {
            name: "target".into(),
        })
        .await
        .unwrap();
    let o = s.client(&other.admin_key.secret);

    // One prompt with a template that does not parse: nothing at all is written.
    let mut bad = bundle
        .prompts
        .iter()
        .find(|p| p.name == "parts/footer")
        .unwrap()
        .clone();
    bad.name = "zzz/broken".into();
    bad.labels.clear();
    bad.versions.truncate(1);
    bad.versions[0].template = text("{{ unclosed");
    bad.versions[0].content_hash = None;
    bundle.prompts.push(bad);
    let (_, body) = api_error(o.import(&bundle).await);
    assert_eq!(body.code, ErrorCode::TemplateSyntax);
    assert!(body.message.contains("zzz/broken"), "{}", body.message);
    assert!(o.export().await.unwrap().prompts.is_empty());

    // An editor may import, but not move a protected label by doing so.
    let editor_key = o
        .create_key(&promptstore_client::types::CreateApiKey {
            name: "ci".into(),
            role: promptstore_client::types::Role::Editor,
        })
        .await
        .unwrap();
    let editor = s.client(&editor_key.secret);
    let clean = s.admin.export().await.unwrap();
    let (st, body) = api_error(editor.import(&clean).await);
    assert_eq!((st, body.code), (403, ErrorCode::ProtectedLabel));
    assert!(o.export().await.unwrap().prompts.is_empty());

    // A version whose content differs from the stored one is a conflict naming it.
    let mut changed = s.admin.export().await.unwrap();
    let footer = changed
        .prompts
        .iter_mut()
        .find(|p| p.name == "parts/footer")
        .unwrap();
    footer.versions[0].template = text("-- someone else");
    footer.versions[0].content_hash = None;
    let (st, body) = api_error(s.admin.import(&changed).await);
    assert_eq!((st, body.code), (409, ErrorCode::Conflict));
    assert!(body.message.contains("parts/footer@1"), "{}", body.message);

    // A wrong content hash is named too.
    let mut hashed = s.admin.export().await.unwrap();
    hashed.prompts[0].versions[0].content_hash = Some("0".repeat(64));
    assert_eq!(code(o.import(&hashed).await), ErrorCode::InvalidRequest);
    assert!(o.export().await.unwrap().prompts.is_empty());

    // Appending a version and moving a label applies just that.
    let mut more = s.admin.export().await.unwrap();
    let footer = more
        .prompts
        .iter_mut()
        .find(|p| p.name == "parts/footer")
        .unwrap();
    let mut v2 = footer.versions[0].clone();
    v2.number = 2;
    v2.template = text("-- the whole team");
    v2.content_hash = None;
    footer.versions.push(v2);
    footer.labels.insert("production".into(), 2);
    let report = s.admin.import(&more).await.unwrap();
    assert_eq!(report.versions_created, vec!["parts/footer@2".to_owned()]);
    assert_eq!(report.labels_moved.len(), 1);
    assert_eq!(report.prompts_updated, vec!["parts/footer".to_owned()]);
    let resolved = s
        .admin
        .resolve("parts/footer", &Selector::Label("production".into()), None)
        .await
        .unwrap();
    assert_eq!(resolved.version, 2);
}
