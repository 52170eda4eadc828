//! Seeding a data directory fast: the default project with an admin and a runtime key, and
//! `prompts` copies of the benchmark prompt with `versions` versions each and `production`
//! on the second newest, written straight through `Store::apply` in large batches.
//!
//! Going through the store rather than the HTTP API is what makes 100,000 versions take
//! seconds instead of an fsync per request; the records are the ones the API would write
//! (same `WriteOp`s, content hashes from `promptstore_core::hash`, audit records included).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use promptstore_core::hash::content_hash;
use promptstore_core::model::{Actor, NewVersion, ProjectId};
use promptstore_core::service::keys::{KEY_RANDOM_BYTES, KeyMaterial};
use promptstore_core::service::{keys, projects};
use promptstore_core::store::{Store, WriteOp};
use promptstore_store_sqlite::SqliteStore;
use promptstore_types::{CreateApiKey, CreateProject, PromptKind, PromptStatus, Role};

use crate::workload;

/// The file (inside the data directory) holding the admin key, one line.
pub const ADMIN_KEY_FILE: &str = "bench-admin.key";
/// The file (inside the data directory) holding the runtime key, one line.
pub const RUNTIME_KEY_FILE: &str = "bench-runtime.key";
/// The file (inside the data directory) holding the `POST /api/v1/render` body of the first
/// prompt, for load generators that cannot build it themselves (wrk).
pub const RENDER_BODY_FILE: &str = "bench-render-body.json";

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    pub prompts: usize,
    pub versions: u32,
    /// Prompts per transaction.
    pub batch: usize,
}

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub admin_key: String,
    pub runtime_key: String,
    pub prompts: usize,
    pub versions: usize,
}

fn random_key() -> anyhow::Result<KeyMaterial> {
    let mut random = [0u8; KEY_RANDOM_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("cannot read random bytes from /dev/urandom")?;
    Ok(KeyMaterial::from_random(&random))
}

fn new_version(name: &str, revision: u32) -> NewVersion {
    let template = workload::template(revision);
    let variables = workload::variables();
    let model_config = workload::model_config();
    let content_hash = content_hash(&template, &variables, &model_config);
    NewVersion {
        template,
        variables,
        model_config,
        commit_message: format!("policy revision {revision}"),
        parent: (revision > 1).then(|| (name.to_owned(), revision - 1)),
        content_hash,
        includes: Vec::new(),
        breaking_changes: Vec::new(),
    }
}

/// The writes that create one benchmark prompt with all its versions and its label.
pub fn prompt_ops(index: usize, versions: u32) -> Vec<WriteOp> {
    let name = workload::prompt_name(index);
    let mut ops = Vec::with_capacity(versions as usize + 1);
    ops.push(WriteOp::CreatePrompt {
        name: name.clone(),
        kind: PromptKind::Chat,
        description: "Customer-support first reply (benchmark prompt)".to_owned(),
        tags: vec!["bench".to_owned(), "support".to_owned()],
        status: PromptStatus::Active,
        first_version: new_version(&name, 1),
    });
    for revision in 2..=versions {
        ops.push(WriteOp::CreateVersion {
            name: name.clone(),
            expected_latest: Some(revision - 1),
            version: new_version(&name, revision),
        });
    }
    // Production trails `latest` by one version, as it does while a new version is staged:
    // the snapshot then holds two live versions per prompt.
    ops.push(WriteOp::MoveLabel {
        name,
        label: workload::LABEL.to_owned(),
        to: Some(versions.saturating_sub(1).max(1)),
        expected_from: Some(None),
        reason: Some("benchmark seed".to_owned()),
    });
    ops
}

/// Seed an empty data directory (its database file must not exist yet) and write the two
/// keys next to it.
pub async fn seed(dir: &Path, plan: SeedPlan) -> anyhow::Result<Seeded> {
    if plan.versions == 0 || plan.prompts == 0 || plan.batch == 0 {
        bail!("prompts, versions and batch must all be at least 1");
    }
    let db = dir.join(promptstore_store_sqlite::DEFAULT_FILE_NAME);
    if db.exists() {
        bail!(
            "{} already exists: seed an empty data directory",
            db.display()
        );
    }
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;

    // The same calls as the server's first-start bootstrap, so `serve` finds a project and
    // creates none.
    let admin = random_key()?;
    let (project, _) = projects::create(
        &store,
        &Actor::system(ProjectId(String::new())),
        &CreateProject {
            name: "default".to_owned(),
        },
        &admin,
    )
    .await
    .context("creating the default project")?;
    let actor = Actor {
        project: project.id.clone(),
        key_id: admin.id.clone(),
        role: Role::Admin,
    };
    let runtime = random_key()?;
    keys::create(
        &store,
        &actor,
        &CreateApiKey {
            name: "bench-runtime".to_owned(),
            role: Role::Runtime,
        },
        &runtime,
    )
    .await
    .context("creating the runtime key")?;

    let mut index = 1;
    while index <= plan.prompts {
        let end = (index + plan.batch - 1).min(plan.prompts);
        let ops: Vec<WriteOp> = (index..=end)
            .flat_map(|i| prompt_ops(i, plan.versions))
            .collect();
        store
            .apply(&actor, ops)
            .await
            .with_context(|| format!("seeding prompts {index}..={end}"))?;
        index = end + 1;
    }
    store.close().await;

    std::fs::write(dir.join(ADMIN_KEY_FILE), format!("{}\n", admin.secret))
        .context("writing the admin key file")?;
    std::fs::write(dir.join(RUNTIME_KEY_FILE), format!("{}\n", runtime.secret))
        .context("writing the runtime key file")?;
    std::fs::write(
        dir.join(RENDER_BODY_FILE),
        workload::render_body(&workload::prompt_name(1)),
    )
    .context("writing the render body file")?;
    Ok(Seeded {
        admin_key: admin.secret,
        runtime_key: runtime.secret,
        prompts: plan.prompts,
        versions: plan.prompts * plan.versions as usize,
    })
}

/// Read a key file written by [`seed`].
pub fn read_key(dir: &Path, file: &str) -> anyhow::Result<String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} (was the directory seeded?)", path.display()))?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_is_created_versioned_and_labelled_in_order() {
        let ops = prompt_ops(3, 4);
        assert_eq!(ops.len(), 5);
        assert!(
            matches!(&ops[0], WriteOp::CreatePrompt { name, .. } if name == "bench/chat-00003")
        );
        assert!(matches!(
            &ops[3],
            WriteOp::CreateVersion {
                expected_latest: Some(3),
                ..
            }
        ));
        assert!(matches!(&ops[4], WriteOp::MoveLabel { to: Some(3), .. }));
        // One version: production and latest both point at it.
        assert!(matches!(
            prompt_ops(1, 1).last(),
            Some(WriteOp::MoveLabel { to: Some(1), .. })
        ));
    }

    #[tokio::test]
    async fn seeding_writes_a_store_the_runtime_can_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let seeded = seed(
            &dir,
            SeedPlan {
                prompts: 5,
                versions: 3,
                batch: 2,
            },
        )
        .await
        .unwrap();
        assert_eq!(seeded.versions, 15);
        assert_eq!(
            read_key(&dir, RUNTIME_KEY_FILE).unwrap(),
            seeded.runtime_key
        );
        let body = std::fs::read_to_string(dir.join(RENDER_BODY_FILE)).unwrap();
        assert_eq!(body, workload::render_body("bench/chat-00001"));
        assert!(keys::key_id_of(&seeded.admin_key).is_some());

        let store = SqliteStore::open_in(&dir).await.unwrap();
        let project = store.list_projects().await.unwrap().remove(0).id;
        let prompts = store.all_prompts(&project).await.unwrap();
        assert_eq!(prompts.len(), 5);
        assert_eq!(prompts[4].latest_version, 3);
        assert_eq!(prompts[4].labels.get(workload::LABEL), Some(&2));
        assert_eq!(store.live_versions(&project, None).await.unwrap().len(), 10);
        store.close().await;

        // A second seed of the same directory is refused rather than mixed in.
        let err = seed(
            &dir,
            SeedPlan {
                prompts: 1,
                versions: 1,
                batch: 1,
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}
