//! Export a whole project as data, and import such a bundle back: all or nothing, and
//! idempotent (importing the same bundle twice changes nothing the second time).
//!
//! Import first computes a plan against the current state and validates every part of it,
//! then writes it with ONE `Store::apply`, so a bad prompt anywhere leaves nothing written.

use std::collections::{BTreeMap, BTreeSet};

use promptstore_types::{
    ErrorCode, ImportReport, ProjectExport, PromptExport, PromptStatus, Role, VersionExport,
    VersionRef,
};

use crate::error::{Error, Result};
use crate::model::{
    Actor, IncludeEdge, LATEST_LABEL, NewVersion, ProjectId, PromptRecord, VersionRecord,
};
use crate::service::checks;
use crate::store::{Store, WriteOp};

/// Every prompt of the project with all its versions and its labels (`latest` excluded).
pub async fn export(store: &dyn Store, project: &ProjectId) -> Result<ProjectExport> {
    let mut prompts = Vec::new();
    for p in store.all_prompts(project).await? {
        let versions = store.all_versions(project, &p.name).await?;
        prompts.push(export_prompt(&p, &versions));
    }
    Ok(ProjectExport { prompts })
}

fn export_prompt(p: &PromptRecord, versions: &[VersionRecord]) -> PromptExport {
    PromptExport {
        name: p.name.clone(),
        kind: p.kind,
        description: p.description.clone(),
        tags: p.tags.clone(),
        status: p.status,
        labels: p
            .labels
            .iter()
            .filter(|(l, _)| l.as_str() != LATEST_LABEL)
            .map(|(l, n)| (l.clone(), *n))
            .collect(),
        versions: versions
            .iter()
            .map(|v| VersionExport {
                number: v.number,
                template: v.template.clone(),
                variables: v.variables.clone(),
                model_config: v.model_config.clone(),
                commit_message: v.commit_message.clone(),
                author: Some(v.author.clone()),
                parent: v.parent.as_ref().map(|(prompt, number)| VersionRef {
                    prompt: prompt.clone(),
                    number: *number,
                }),
                content_hash: Some(v.content_hash.clone()),
            })
            .collect(),
    }
}

/// Prefix a refusal with the prompt it is about, and name it in the details.
fn about(prompt: &str, e: Error) -> Error {
    match e {
        Error::Rejected {
            code,
            message,
            details,
        } => {
            let mut details = match details {
                serde_json::Value::Object(map) => map,
                serde_json::Value::Null => serde_json::Map::new(),
                other => {
                    let mut m = serde_json::Map::new();
                    m.insert("cause".to_owned(), other);
                    m
                }
            };
            details.insert(
                "prompt".to_owned(),
                serde_json::Value::String(prompt.to_owned()),
            );
            Error::Rejected {
                code,
                message: format!("prompt '{prompt}': {message}"),
                details: details.into(),
            }
        }
        other => other,
    }
}

fn invalid(prompt: &str, message: impl Into<String>) -> Error {
    about(prompt, Error::rejected(ErrorCode::InvalidRequest, message))
}

/// One version of the bundle, checked and ready to write.
struct PlannedVersion {
    number: u32,
    new: NewVersion,
}

/// Apply a bundle to the actor's project.
pub async fn import(
    store: &dyn Store,
    actor: &Actor,
    bundle: &ProjectExport,
) -> Result<ImportReport> {
    let project = &actor.project;
    let protected = crate::service::projects::get(store, project)
        .await?
        .protected_labels;

    // Names in the bundle and in the store, for include resolution.
    let mut seen = BTreeSet::new();
    for p in &bundle.prompts {
        checks::prompt_name(&p.name).map_err(|e| about(&p.name, e))?;
        if !seen.insert(p.name.clone()) {
            return Err(invalid(&p.name, "the bundle holds this prompt twice"));
        }
    }
    let existing: BTreeMap<String, PromptRecord> = store
        .all_prompts(project)
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();

    // Include edges after the import, at the prompt level: live edges of prompts the bundle
    // does not touch, plus every version of the bundle. Checking the cycle over all of them
    // is stricter than needed but can never let a cycle through.
    let mut edges: Vec<IncludeEdge> = store
        .live_include_edges(project)
        .await?
        .into_iter()
        .filter(|e| !seen.contains(&e.from_prompt))
        .collect();

    let mut ops = Vec::new();
    let mut tail_ops = Vec::new();
    let mut report = ImportReport::default();
    for p in &bundle.prompts {
        let current = existing.get(&p.name);
        let planned = plan_versions(store, project, p, current, &seen, &existing).await?;
        edges.extend(planned.edges);
        plan_prompt(
            actor,
            p,
            current,
            planned.new_versions,
            &protected,
            &mut ops,
            &mut tail_ops,
            &mut report,
        )?;
    }
    for p in &bundle.prompts {
        if let Some(cycle) = checks::find_cycle(&edges, &p.name, &[]) {
            return Err(about(&p.name, crate::graph::cycle_error(&cycle)));
        }
    }
    ops.append(&mut tail_ops);
    if !ops.is_empty() {
        store.apply(actor, ops).await?;
    }
    Ok(report)
}

struct PlannedPrompt {
    new_versions: Vec<PlannedVersion>,
    /// Include edges of every version of the bundled prompt.
    edges: Vec<IncludeEdge>,
}

/// Check every version of one bundled prompt; return those that must be created.
async fn plan_versions(
    store: &dyn Store,
    project: &ProjectId,
    p: &PromptExport,
    current: Option<&PromptRecord>,
    bundle_names: &BTreeSet<String>,
    existing: &BTreeMap<String, PromptRecord>,
) -> Result<PlannedPrompt> {
    let name = p.name.as_str();
    if p.versions.is_empty() {
        return Err(invalid(name, "a prompt needs at least one version"));
    }
    let mut versions: Vec<&VersionExport> = p.versions.iter().collect();
    versions.sort_by_key(|v| v.number);
    for (i, v) in versions.iter().enumerate() {
        if usize::try_from(v.number).ok() != Some(i + 1) {
            return Err(invalid(
                name,
                format!(
                    "versions must be numbered 1, 2, 3… without gaps; found {} at position {}",
                    v.number,
                    i + 1
                ),
            ));
        }
    }
    if let Some(c) = current
        && c.kind != p.kind
    {
        return Err(about(
            name,
            Error::rejected(
                ErrorCode::Conflict,
                format!(
                    "the existing prompt is a {} prompt, the bundle has a {} prompt",
                    c.kind.as_str(),
                    p.kind.as_str()
                ),
            ),
        ));
    }
    let existing_latest = current.map_or(0, |c| c.latest_version);
    let mut previous_vars: Option<Vec<promptstore_types::VariableSpec>> = None;
    let mut new_versions = Vec::new();
    let mut edges = Vec::new();
    for v in versions {
        let at = format!("{name}@{}", v.number);
        if v.template.kind() != p.kind {
            return Err(invalid(
                name,
                format!(
                    "version {} has a {} template in a {} prompt",
                    v.number,
                    v.template.kind().as_str(),
                    p.kind.as_str()
                ),
            ));
        }
        let model_config =
            checks::model_config(Some(v.model_config.clone())).map_err(|e| about(name, e))?;
        let analysis =
            checks::analyze(&v.template, &v.variables, &model_config).map_err(|e| about(&at, e))?;
        for inc in &analysis.includes {
            if !bundle_names.contains(&inc.prompt) && !existing.contains_key(&inc.prompt) {
                return Err(about(
                    &at,
                    Error::rejected(
                        ErrorCode::InvalidRequest,
                        format!(
                            "includes prompt '{}', which neither the bundle nor the project holds",
                            inc.prompt
                        ),
                    ),
                ));
            }
        }
        let hash = checks::content_hash(&v.template, &v.variables, &model_config);
        if let Some(given) = &v.content_hash
            && *given != hash
        {
            return Err(invalid(
                &at,
                format!("content_hash {given} does not match the content (computed {hash})"),
            ));
        }
        edges.extend(analysis.includes.iter().map(|target| IncludeEdge {
            from_prompt: name.to_owned(),
            from_version: v.number,
            target: target.clone(),
        }));
        if v.number <= existing_latest {
            let stored = crate::service::version_or_404(store, project, name, v.number).await?;
            if stored.content_hash != hash {
                return Err(about(&at, Error::rejected(
                    ErrorCode::Conflict,
                    format!("version {} exists with different content; versions are immutable", v.number),
                ))
                .with_details(serde_json::json!({ "prompt": name, "version": v.number, "stored_hash": stored.content_hash, "bundle_hash": hash })));
            }
        } else {
            let breaking_changes = previous_vars
                .as_deref()
                .map(|old| checks::breaking_changes(old, &v.variables))
                .unwrap_or_default();
            let parent = match &v.parent {
                Some(r) => Some((r.prompt.clone(), r.number)),
                None if v.number > 1 => Some((name.to_owned(), v.number - 1)),
                None => None,
            };
            new_versions.push(PlannedVersion {
                number: v.number,
                new: NewVersion {
                    template: v.template.clone(),
                    variables: v.variables.clone(),
                    model_config,
                    commit_message: v.commit_message.clone(),
                    parent,
                    content_hash: hash,
                    includes: analysis.includes,
                    breaking_changes,
                },
            });
        }
        previous_vars = Some(v.variables.clone());
    }
    Ok(PlannedPrompt {
        new_versions,
        edges,
    })
}

/// Add the writes for one prompt to `ops` (and status changes that must come last to
/// `tail_ops`), and record them in the report.
#[allow(clippy::too_many_arguments)]
fn plan_prompt(
    actor: &Actor,
    p: &PromptExport,
    current: Option<&PromptRecord>,
    new_versions: Vec<PlannedVersion>,
    protected: &[String],
    ops: &mut Vec<WriteOp>,
    tail_ops: &mut Vec<WriteOp>,
    report: &mut ImportReport,
) -> Result<()> {
    let name = p.name.as_str();
    let description = checks::description(&p.description).map_err(|e| about(name, e))?;
    let tags = checks::tags(&p.tags).map_err(|e| about(name, e))?;
    let total_versions = current
        .map_or(0, |c| c.latest_version)
        .max(new_versions.last().map_or(0, |v| v.number));
    for (label, n) in &p.labels {
        if label == LATEST_LABEL {
            return Err(about(
                name,
                Error::rejected(
                    ErrorCode::ReservedLabel,
                    "the 'latest' label is derived and cannot be imported",
                ),
            ));
        }
        checks::label_name(label).map_err(|e| about(name, e))?;
        if *n == 0 || *n > total_versions {
            return Err(invalid(
                name,
                format!("label '{label}' points to version {n}, which does not exist"),
            ));
        }
    }
    if p.status == PromptStatus::Archived && !p.labels.is_empty() {
        return Err(about(
            name,
            Error::rejected(
                ErrorCode::PromptArchived,
                "an archived prompt cannot hold labels",
            ),
        ));
    }
    let current_labels = current.map(|c| c.labels.clone()).unwrap_or_default();
    let label_moves: Vec<(&String, u32)> = p
        .labels
        .iter()
        .filter(|(l, n)| current_labels.get(*l) != Some(n))
        .map(|(l, n)| (l, *n))
        .collect();
    if actor.role != Role::Admin
        && let Some((label, _)) = label_moves.iter().find(|(l, _)| protected.contains(l))
    {
        return Err(about(
            name,
            Error::rejected(
                ErrorCode::ProtectedLabel,
                format!("label '{label}' is protected; only an admin key may move it"),
            ),
        ));
    }

    let mut versions = new_versions.into_iter();
    let mut changed = false;
    match current {
        None => {
            let Some(first) = versions.next() else {
                return Err(invalid(name, "a prompt needs at least one version"));
            };
            ops.push(WriteOp::CreatePrompt {
                name: name.to_owned(),
                kind: p.kind,
                description,
                tags,
                status: p.status,
                first_version: first.new,
            });
            report.prompts_created.push(name.to_owned());
            report
                .versions_created
                .push(format!("{name}@{}", first.number));
        }
        Some(c) => {
            let restore = c.status == PromptStatus::Archived && p.status != PromptStatus::Archived;
            if c.status != p.status {
                let op = WriteOp::SetStatus {
                    name: name.to_owned(),
                    expected_status: c.status,
                    status: p.status,
                    remove_labels: false,
                };
                // Leaving `archived` must happen before labels move; entering it after.
                if restore {
                    ops.push(op)
                } else {
                    tail_ops.push(op)
                }
                changed = true;
            }
            let new_description = (c.description != description).then_some(description);
            let new_tags = (c.tags != tags).then_some(tags);
            if new_description.is_some() || new_tags.is_some() {
                ops.push(WriteOp::UpdatePrompt {
                    name: name.to_owned(),
                    expected_revision: None,
                    description: new_description,
                    tags: new_tags,
                });
                changed = true;
            }
        }
    }
    for v in versions {
        ops.push(WriteOp::CreateVersion {
            name: name.to_owned(),
            expected_latest: Some(v.number - 1),
            version: v.new,
        });
        report.versions_created.push(format!("{name}@{}", v.number));
        changed = true;
    }
    for (label, n) in label_moves {
        ops.push(WriteOp::MoveLabel {
            name: name.to_owned(),
            label: label.clone(),
            to: Some(n),
            expected_from: Some(current_labels.get(label).copied()),
            reason: Some("import".to_owned()),
        });
        report.labels_moved.push(format!("{name}#{label} → {n}"));
        changed = true;
    }
    if current.is_some() {
        if changed {
            report.prompts_updated.push(name.to_owned());
        } else {
            report.unchanged.push(name.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_prompt_they_are_about() {
        let e = about(
            "support/triage@2",
            Error::rejected(ErrorCode::TemplateSyntax, "unexpected end")
                .with_details(serde_json::json!({ "line": 3 })),
        );
        match e {
            Error::Rejected {
                code,
                message,
                details,
            } => {
                assert_eq!(code, ErrorCode::TemplateSyntax);
                assert_eq!(message, "prompt 'support/triage@2': unexpected end");
                assert_eq!(
                    details,
                    serde_json::json!({ "line": 3, "prompt": "support/triage@2" })
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let plain = about("p", Error::rejected(ErrorCode::InvalidRequest, "bad"));
        assert_eq!(
            plain.to_body().details,
            serde_json::json!({ "prompt": "p" })
        );
    }

    #[test]
    fn export_leaves_out_the_derived_latest_label() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let prompt = PromptRecord {
            id: "id".into(),
            project: ProjectId("proj".into()),
            name: "p".into(),
            kind: promptstore_types::PromptKind::Text,
            description: "d".into(),
            tags: vec!["t".into()],
            status: PromptStatus::Active,
            revision: 3,
            latest_version: 1,
            labels: [("latest".to_owned(), 1), ("production".to_owned(), 1)]
                .into_iter()
                .collect(),
            created_by: "k".into(),
            created_at: at,
            updated_at: at,
        };
        let version = VersionRecord {
            prompt_id: "id".into(),
            prompt: "p".into(),
            number: 1,
            template: promptstore_types::Template::Text { text: "hi".into() },
            variables: vec![],
            model_config: serde_json::json!({}),
            commit_message: "c".into(),
            author: "k".into(),
            parent: None,
            content_hash: "h".into(),
            includes: vec![],
            breaking_changes: vec![],
            created_at: at,
        };
        let e = export_prompt(&prompt, &[version]);
        assert_eq!(e.labels.keys().collect::<Vec<_>>(), vec!["production"]);
        assert_eq!(e.versions[0].content_hash.as_deref(), Some("h"));
        assert_eq!(e.versions[0].author.as_deref(), Some("k"));
    }
}
