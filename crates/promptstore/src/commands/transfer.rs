//! `promptstore export DIR` / `import DIR`: a project as a folder of reviewable YAML files,
//! one per prompt (`support/triage` → `DIR/support/triage.yaml`).
//!
//! The files hold only what is the same on every server (no authors, no timestamps), with
//! maps in a stable order and multi-line templates as YAML block strings, so that
//! export → import elsewhere → export gives byte-identical files and git diffs stay small.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use promptstore_client::types::{ImportReport, ProjectExport, PromptExport};

use super::connect;
use crate::cli::{ExportArgs, ImportArgs};
use crate::failure::Failure;
use crate::files::{extension, read_text};
use crate::output::print_json;

const IMPORT_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

pub async fn export(args: ExportArgs) -> Result<(), Failure> {
    let api = connect(&args.client)?;
    let bundle = api.export().await?;
    let files = export_files(&bundle)?;
    for (relative, content) in &files {
        let path = args.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_atomically(&path, content)?;
    }
    if args.client.json {
        let written: Vec<String> = files.keys().map(|p| p.display().to_string()).collect();
        return Ok(print_json(
            &serde_json::json!({ "dir": args.dir, "files": written }),
        )?);
    }
    let count = files.len();
    outln!(
        "exported {count} prompt{} to {}",
        if count == 1 { "" } else { "s" },
        args.dir.display()
    );
    Ok(())
}

pub async fn import(args: ImportArgs) -> Result<(), Failure> {
    // Every file is read and checked before anything is sent: a bad file changes nothing.
    let bundle = read_bundle(&args.dir)?;
    let api = connect(&args.client)?;
    let report = api.import(&bundle).await?;
    if args.client.json {
        return Ok(print_json(&report)?);
    }
    print_report(&report, bundle.prompts.len());
    Ok(())
}

/// The file of each prompt, relative to the export folder, and its YAML.
pub fn export_files(bundle: &ProjectExport) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    for prompt in &bundle.prompts {
        let relative = relative_path(&prompt.name)?;
        let content = serde_yaml_ng::to_string(&canonical(prompt))
            .with_context(|| format!("cannot write prompt `{}` as YAML", prompt.name))?;
        if files.insert(relative.clone(), content).is_some() {
            bail!("two prompts map to the same file {}", relative.display());
        }
    }
    Ok(files)
}

/// `support/triage` → `support/triage.yaml`, refusing names that would escape the folder.
fn relative_path(name: &str) -> anyhow::Result<PathBuf> {
    let mut path = PathBuf::new();
    for part in name.split('/') {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) if !part.contains('\\') => path.push(c),
            _ => bail!("prompt name `{name}` cannot be written as a file path"),
        }
    }
    let file_name = path
        .file_name()
        .map(|f| format!("{}.yaml", f.to_string_lossy()))
        .unwrap_or_default();
    path.set_file_name(file_name);
    Ok(path)
}

/// What goes in the file: server-specific fields dropped, versions in order, JSON objects
/// with sorted keys.
fn canonical(prompt: &PromptExport) -> PromptExport {
    let mut prompt = prompt.clone();
    prompt.versions.sort_by_key(|v| v.number);
    for version in &mut prompt.versions {
        // The author is a key id of the exporting server; an import makes the importer the
        // author, so keeping it would make every round trip differ.
        version.author = None;
        version.model_config = sorted(std::mem::take(&mut version.model_config));
        for variable in &mut version.variables {
            variable.default = variable.default.take().map(sorted);
            variable.allowed = variable
                .allowed
                .take()
                .map(|values| values.into_iter().map(sorted).collect());
        }
    }
    prompt
}

/// The value with every object's keys in sorted order, whatever map the JSON crate uses.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let ordered: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::Value::Object(ordered.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("yaml.tmp");
    std::fs::write(&temporary, content)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads every prompt file under `dir` into one bundle, or fails naming the first bad file.
pub fn read_bundle(dir: &Path) -> anyhow::Result<ProjectExport> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut paths = Vec::new();
    collect_files(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        bail!("no .yaml, .yml or .json files under {}", dir.display());
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut prompts = Vec::new();
    for path in paths {
        for prompt in parse_file(&path)? {
            if let Some(first) = seen.insert(prompt.name.clone(), path.clone()) {
                bail!(
                    "prompt `{}` is defined twice: in {} and in {}",
                    prompt.name,
                    first.display(),
                    path.display()
                );
            }
            prompts.push(prompt);
        }
    }
    prompts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ProjectExport { prompts })
}

/// Hidden entries (`.git`, editor files) are skipped.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot read the directory {}", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if IMPORT_EXTENSIONS.contains(&extension(&path).as_str()) {
            out.push(path);
        }
    }
    Ok(())
}

/// One prompt per file, or a whole bundle (`prompts: [...]`) in one file.
fn parse_file(path: &Path) -> anyhow::Result<Vec<PromptExport>> {
    let content = read_text(path)?;
    let is_json = extension(path) == "json";
    let probe: serde_json::Value = if is_json {
        serde_json::from_str(&content).map_err(|e| anyhow!("{}: {e}", path.display()))?
    } else {
        serde_yaml_ng::from_str(&content).map_err(|e| anyhow!("{}: {e}", path.display()))?
    };
    if !probe.is_object() {
        bail!(
            "{}: expected a prompt (a mapping with name, type, status, versions…)",
            path.display()
        );
    }
    // Parse the text again (not the probe) so errors keep their line and column.
    let parse_error = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    if probe.get("prompts").is_some() {
        let bundle: ProjectExport = if is_json {
            serde_json::from_str(&content).map_err(|e| parse_error(&e))?
        } else {
            serde_yaml_ng::from_str(&content).map_err(|e| parse_error(&e))?
        };
        return Ok(bundle.prompts);
    }
    let prompt: PromptExport = if is_json {
        serde_json::from_str(&content).map_err(|e| parse_error(&e))?
    } else {
        serde_yaml_ng::from_str(&content).map_err(|e| parse_error(&e))?
    };
    Ok(vec![prompt])
}

fn print_report(report: &ImportReport, total: usize) {
    let changed = !(report.prompts_created.is_empty()
        && report.prompts_updated.is_empty()
        && report.versions_created.is_empty()
        && report.labels_moved.is_empty());
    if !changed {
        outln!(
            "nothing changed ({total} prompt{} unchanged)",
            if total == 1 { "" } else { "s" }
        );
        return;
    }
    let section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            outln!("{title} ({}): {}", items.len(), items.join(", "));
        }
    };
    section("prompts created", &report.prompts_created);
    section("prompts updated", &report.prompts_updated);
    section("versions created", &report.versions_created);
    section("labels moved", &report.labels_moved);
    section("unchanged", &report.unchanged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_client::types::{PromptKind, PromptStatus, Template, VersionExport};

    fn sample() -> ProjectExport {
        let version = |number: u32, text: &str| VersionExport {
            number,
            template: Template::Text { text: text.into() },
            variables: vec![],
            model_config: serde_json::json!({"temperature": 0.2, "model": "m", "nested": {"z": 1, "a": 2}}),
            commit_message: format!("v{number}"),
            author: Some("abc123abc123".into()),
            parent: None,
            content_hash: Some("hash".into()),
        };
        ProjectExport {
            prompts: vec![PromptExport {
                name: "support/triage".into(),
                kind: PromptKind::Text,
                description: "Triage".into(),
                tags: vec!["support".into()],
                status: PromptStatus::Active,
                labels: [("production".to_string(), 1)].into_iter().collect(),
                versions: vec![
                    version(2, "Hello {{ name }}\nSecond line\n"),
                    version(1, "Hi"),
                ],
            }],
        }
    }

    #[test]
    fn names_map_to_nested_files_and_never_escape() {
        assert_eq!(
            relative_path("support/triage").unwrap(),
            PathBuf::from("support/triage.yaml")
        );
        assert_eq!(relative_path("solo").unwrap(), PathBuf::from("solo.yaml"));
        for bad in ["../x", "a/../b", "/abs", "a//b", "a\\b", ".", ""] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_files_are_stable_and_readable() {
        let files = export_files(&sample()).unwrap();
        let content = &files[&PathBuf::from("support/triage.yaml")];
        assert!(!content.contains("author"), "{content}");
        assert!(
            content.contains("text: |\n"),
            "multi-line templates are block strings:\n{content}"
        );
        let model = content.find("model:").unwrap();
        let nested = content.find("nested:").unwrap();
        let temperature = content.find("temperature:").unwrap();
        assert!(
            model < nested && nested < temperature,
            "sorted keys:\n{content}"
        );
        assert!(content.find("number: 1").unwrap() < content.find("number: 2").unwrap());
    }

    #[test]
    fn export_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for (relative, content) in export_files(&sample()).unwrap() {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config.yaml"), "not: a prompt").unwrap();
        let bundle = read_bundle(dir.path()).unwrap();
        let again = export_files(&bundle).unwrap();
        assert_eq!(again, export_files(&sample()).unwrap());
    }

    #[test]
    fn bad_or_duplicate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.yaml"),
            export_files(&sample())
                .unwrap()
                .into_values()
                .next()
                .unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("broken.yaml"),
            "name: x\ntype: text\nstatus: active\nversions:\n  - numbr: 1\n",
        )
        .unwrap();
        let err = format!("{:#}", read_bundle(dir.path()).unwrap_err());
        assert!(err.contains("broken.yaml"), "{err}");

        std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
        std::fs::write(
            dir.path().join("copy.json"),
            serde_json::to_string(&sample().prompts[0]).unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", read_bundle(dir.path()).unwrap_err());
        assert!(
            err.contains("defined twice") && err.contains("copy.json") && err.contains("good.yaml"),
            "{err}"
        );

        let empty = tempfile::tempdir().unwrap();
        assert!(read_bundle(empty.path()).is_err());
    }
}
