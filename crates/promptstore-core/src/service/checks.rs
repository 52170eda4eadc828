//! The checks every write shares, in one place: names, tags, free text, model config, and
//! the content of a version (template analysis, includes that exist and form no cycle, the
//! content hash). Use cases call these; the rules themselves live in the domain modules.

use promptstore_types::{
    BreakingChange, ErrorCode, IncludeRef, PromptStatus, Template, VariableSpec, VersionDiff,
    Warning,
};

use crate::error::{Error, Result};
use crate::model::{IncludeEdge, ProjectId, VersionRecord};
use crate::store::Store;

/// Longest prompt description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Most tags on one prompt.
pub const MAX_TAGS: usize = 50;

pub fn prompt_name(name: &str) -> Result<String> {
    crate::names::validate_prompt_name(name)?;
    Ok(name.to_owned())
}

pub fn label_name(name: &str) -> Result<String> {
    crate::names::validate_label_name(name)?;
    Ok(name.to_owned())
}

/// Valid tags, duplicates dropped, order kept.
pub fn tags(tags: &[String]) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::rejected(
            ErrorCode::InvalidRequest,
            format!("at most {MAX_TAGS} tags are allowed"),
        )
        .with_details(serde_json::json!({ "field": "tags" })));
    }
    crate::names::validate_tags(tags)?;
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

pub fn description(text: &str) -> Result<String> {
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::rejected(
            ErrorCode::InvalidRequest,
            format!("description is longer than {MAX_DESCRIPTION_LEN} characters"),
        )
        .with_details(serde_json::json!({ "field": "description" })));
    }
    Ok(text.to_owned())
}

/// The model config is a JSON object; absent or null means `{}`.
pub fn model_config(config: Option<serde_json::Value>) -> Result<serde_json::Value> {
    match config {
        None | Some(serde_json::Value::Null) => {
            Ok(serde_json::Value::Object(serde_json::Map::new()))
        }
        Some(v @ serde_json::Value::Object(_)) => Ok(v),
        Some(_) => Err(Error::rejected(
            ErrorCode::InvalidRequest,
            "model_config must be a JSON object",
        )
        .with_details(serde_json::json!({ "field": "model_config" }))),
    }
}

/// What the analysis of a version's content found.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub includes: Vec<IncludeRef>,
    pub warnings: Vec<Warning>,
}

/// Parse the template and check it against its declared variables.
pub fn analyze(
    template: &Template,
    variables: &[VariableSpec],
    model_config: &serde_json::Value,
) -> Result<Analysis> {
    let a = crate::template::analyze(template, variables, model_config)?;
    Ok(Analysis {
        includes: a.includes,
        warnings: a.warnings,
    })
}

pub fn content_hash(
    template: &Template,
    variables: &[VariableSpec],
    model_config: &serde_json::Value,
) -> String {
    crate::hash::content_hash(template, variables, model_config)
}

pub fn breaking_changes(old: &[VariableSpec], new: &[VariableSpec]) -> Vec<BreakingChange> {
    crate::contract::breaking_changes(old, new)
}

pub fn diff(from: &VersionRecord, to: &VersionRecord) -> VersionDiff {
    crate::diff::diff_versions(from, to)
}

pub fn transition(from: PromptStatus, to: PromptStatus) -> Result<()> {
    crate::lifecycle::check_transition(from, to)
}

/// The include cycle through `prompt` in `edges` (plus `new_includes` from it), if any.
pub fn find_cycle(
    edges: &[IncludeEdge],
    prompt: &str,
    new_includes: &[IncludeRef],
) -> Option<Vec<String>> {
    crate::graph::find_cycle(edges, prompt, new_includes)
}

/// The checked content of a version about to be saved into prompt `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedContent {
    pub content_hash: String,
    pub includes: Vec<IncludeRef>,
    pub warnings: Vec<Warning>,
}

/// Analyze a version's content and check its includes: every included prompt exists (and
/// a pinned version of it exists), and saving it would not close an include cycle.
pub async fn content(
    store: &dyn Store,
    project: &ProjectId,
    name: &str,
    template: &Template,
    variables: &[VariableSpec],
    model_config: &serde_json::Value,
) -> Result<CheckedContent> {
    let analysis = analyze(template, variables, model_config)?;
    if !analysis.includes.is_empty() {
        for inc in &analysis.includes {
            if inc.prompt == name {
                return Err(crate::graph::cycle_error(&[
                    name.to_owned(),
                    name.to_owned(),
                ]));
            }
            let Some(target) = store.get_prompt(project, &inc.prompt).await? else {
                return Err(Error::rejected(
                    ErrorCode::InvalidRequest,
                    format!(
                        "the template includes prompt '{}', which does not exist",
                        inc.prompt
                    ),
                )
                .with_details(serde_json::json!({ "include": inc })));
            };
            if let Some(n) = inc.version
                && (n == 0 || n > target.latest_version)
            {
                return Err(Error::rejected(
                    ErrorCode::InvalidRequest,
                    format!(
                        "the template includes version {n} of prompt '{}', which does not exist",
                        inc.prompt
                    ),
                )
                .with_details(serde_json::json!({ "include": inc })));
            }
        }
        let edges = store.live_include_edges(project).await?;
        if let Some(cycle) = find_cycle(&edges, name, &analysis.includes) {
            return Err(crate::graph::cycle_error(&cycle));
        }
    }
    Ok(CheckedContent {
        content_hash: content_hash(template, variables, model_config),
        includes: analysis.includes,
        warnings: analysis.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_config_must_be_an_object() {
        let empty = serde_json::json!({});
        assert_eq!(model_config(None).ok(), Some(empty.clone()));
        assert_eq!(
            model_config(Some(serde_json::Value::Null)).ok(),
            Some(empty)
        );
        let obj = serde_json::json!({"model": "m", "temperature": 0.1});
        assert_eq!(model_config(Some(obj.clone())).ok(), Some(obj));
        for bad in [
            serde_json::json!([1]),
            serde_json::json!("gpt"),
            serde_json::json!(3),
        ] {
            assert_eq!(
                model_config(Some(bad)).err().map(|e| e.code()),
                Some(ErrorCode::InvalidRequest)
            );
        }
    }

    #[test]
    fn tags_are_validated_and_deduplicated_in_order() {
        let got = tags(&["b".into(), "a".into(), "b".into()]).ok();
        assert_eq!(got, Some(vec!["b".to_owned(), "a".to_owned()]));
        assert_eq!(
            tags(&["has space".into()]).err().map(|e| e.code()),
            Some(ErrorCode::InvalidName)
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert_eq!(
            tags(&many).err().map(|e| e.code()),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn description_is_bounded() {
        assert!(description(&"x".repeat(MAX_DESCRIPTION_LEN)).is_ok());
        let too_long = description(&"x".repeat(MAX_DESCRIPTION_LEN + 1));
        assert_eq!(
            too_long.err().map(|e| e.code()),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
