//! `promptstore prompt …`: list, show, versions, create, edit, push, diff, render, history,
//! status, delete.

use anyhow::Context;
use promptstore_client::types::{
    ChatMessage, CreatePrompt, CreateVersion, Prompt, PromptStatus, RenderRequest, Template,
    TransitionPrompt, UpdatePrompt, VariableSpec, Version, VersionDiff,
};
use promptstore_client::{Client, PageRequest, PromptFilter};

use super::connect;
use crate::cli::{PromptCommand, TemplateSource, VersionSelector};
use crate::failure::Failure;
use crate::files::{PromptSource, parse_var, read_vars};
use crate::output::{Table, clip, print_json, when};

pub async fn run(command: PromptCommand) -> Result<(), Failure> {
    match command {
        PromptCommand::List {
            client,
            tag,
            label,
            status,
            prefix,
            search,
            limit,
        } => {
            let status = status.as_deref().map(parse_status).transpose()?;
            let api = connect(&client)?;
            let filter = PromptFilter {
                tag,
                label,
                status,
                prefix,
                q: search,
                page: PageRequest::default(),
            };
            let prompts = list(&api, filter, limit).await?;
            if client.json {
                return Ok(print_json(&prompts)?);
            }
            print_prompt_table(&prompts);
            Ok(())
        }
        PromptCommand::Show { client, name, at } => {
            let api = connect(&client)?;
            let prompt = api.get_prompt(&name).await?;
            let number = version_number(&prompt, &at)?;
            let version = api.get_version(&name, number).await?;
            if client.json {
                return Ok(print_json(
                    &serde_json::json!({ "prompt": prompt, "version": version }),
                )?);
            }
            print_prompt(&prompt, &version);
            Ok(())
        }
        PromptCommand::Versions { client, name } => {
            let api = connect(&client)?;
            let versions = api.list_all_versions(&name).await?;
            if client.json {
                return Ok(print_json(&versions)?);
            }
            let mut table = Table::new(&[
                "version", "labels", "author", "created", "breaking", "message",
            ]);
            for v in &versions {
                table.row(vec![
                    v.number.to_string(),
                    v.labels.join(","),
                    v.author.clone(),
                    when(v.created_at),
                    if v.breaking {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    clip(&v.commit_message, 50),
                ]);
            }
            table.print();
            Ok(())
        }
        PromptCommand::Create {
            client,
            name,
            source,
            description,
            tags,
            message,
            active,
        } => {
            let (source, path) = read_source(&source)?;
            source.check_name(&name, path.as_deref())?;
            let template = source.template()?;
            let request = CreatePrompt {
                name: name.clone(),
                description: description.or(source.description).unwrap_or_default(),
                tags: if tags.is_empty() {
                    source.tags.unwrap_or_default()
                } else {
                    tags
                },
                status: if active {
                    Some(PromptStatus::Active)
                } else {
                    source.status
                },
                template,
                variables: source.variables,
                model_config: source.model_config,
                commit_message: message.or(source.commit_message).unwrap_or_default(),
            };
            let api = connect(&client)?;
            let created = api.create_prompt(&request).await?;
            if client.json {
                return Ok(print_json(&created)?);
            }
            outln!(
                "created {} (version {})",
                created.prompt.name,
                created.version.number
            );
            print_warnings(created.warnings.iter().map(|w| (&w.code, &w.message)));
            Ok(())
        }
        PromptCommand::Edit {
            client,
            name,
            description,
            tags,
            clear_tags,
        } => {
            let tags = if clear_tags {
                Some(Vec::new())
            } else {
                (!tags.is_empty()).then_some(tags)
            };
            if description.is_none() && tags.is_none() {
                return Err(Failure::usage(
                    "nothing to change: give --description, --tag or --clear-tags",
                ));
            }
            let api = connect(&client)?;
            // Optimistic concurrency: the update applies only to the revision just read.
            let current = api.get_prompt_tagged(&name).await?;
            let prompt = api
                .update_prompt(
                    &name,
                    current.value.revision,
                    &UpdatePrompt { description, tags },
                )
                .await?;
            if client.json {
                return Ok(print_json(&prompt)?);
            }
            outln!("updated {} (revision {})", prompt.name, prompt.revision);
            Ok(())
        }
        PromptCommand::Push {
            client,
            name,
            source,
            message,
            base,
        } => {
            let (source, path) = read_source(&source)?;
            source.check_name(&name, path.as_deref())?;
            let request = CreateVersion {
                template: source.template()?,
                variables: source.variables,
                model_config: source.model_config,
                commit_message: message.or(source.commit_message).unwrap_or_default(),
                base_version: base,
            };
            let api = connect(&client)?;
            let saved = api.create_version(&name, &request).await?;
            if client.json {
                return Ok(print_json(&saved)?);
            }
            if saved.created {
                outln!("created {} version {}", name, saved.version.number);
            } else {
                outln!(
                    "unchanged: identical to {} version {}",
                    name,
                    saved.version.number
                );
            }
            for change in &saved.version.breaking_changes {
                outln!("breaking: {} ({})", change.message, change.code);
            }
            print_warnings(saved.warnings.iter().map(|w| (&w.code, &w.message)));
            Ok(())
        }
        PromptCommand::Diff {
            client,
            name,
            from,
            to,
        } => {
            let api = connect(&client)?;
            let diff = api.diff(&name, from, to).await?;
            if client.json {
                return Ok(print_json(&diff)?);
            }
            print_diff(&diff);
            Ok(())
        }
        PromptCommand::Render {
            client,
            name,
            at,
            vars,
            vars_file,
            unit_id,
        } => {
            let mut variables = match &vars_file {
                Some(path) => read_vars(path)?,
                None => serde_json::Map::new(),
            };
            for raw in &vars {
                let (key, value) = parse_var(raw).map_err(Failure::usage)?;
                variables.insert(key, value);
            }
            let request = RenderRequest {
                name,
                label: at.label,
                version: at.version,
                variables,
                unit_id,
            };
            let api = connect(&client)?;
            let rendered = api.render(&request).await?;
            if client.json {
                return Ok(print_json(&rendered)?);
            }
            if let Some(text) = &rendered.text {
                out!("{text}");
                if !text.ends_with('\n') {
                    outln!();
                }
            }
            for message in rendered.messages.iter().flatten() {
                outln!("[{}]\n{}\n", message.role, message.content.trim_end());
            }
            Ok(())
        }
        PromptCommand::History {
            client,
            name,
            label,
        } => {
            let api = connect(&client)?;
            let mut moves = Vec::new();
            let mut page = PageRequest {
                cursor: None,
                limit: Some(200),
            };
            loop {
                let answer = api.label_history(&name, label.as_deref(), &page).await?;
                moves.extend(answer.items);
                match answer.next_cursor {
                    Some(next) if page.cursor.as_ref() != Some(&next) => page.cursor = Some(next),
                    _ => break,
                }
            }
            if client.json {
                return Ok(print_json(&moves)?);
            }
            let mut table = Table::new(&["at", "label", "from", "to", "actor", "reason"]);
            for m in &moves {
                table.row(vec![
                    when(m.at),
                    m.label.clone(),
                    m.from_version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.to_version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.actor.clone(),
                    m.reason.clone().unwrap_or_default(),
                ]);
            }
            if table.is_empty() {
                outln!("no label moves");
            } else {
                table.print();
            }
            Ok(())
        }
        PromptCommand::Status {
            client,
            name,
            status,
            force,
        } => {
            let status = parse_status(&status)?;
            let api = connect(&client)?;
            let prompt = api
                .transition_prompt(&name, &TransitionPrompt { status, force })
                .await?;
            if client.json {
                return Ok(print_json(&prompt)?);
            }
            outln!("{} is now {}", prompt.name, prompt.status.as_str());
            Ok(())
        }
        PromptCommand::Delete {
            client,
            name,
            force,
        } => {
            let api = connect(&client)?;
            api.delete_prompt(&name, force).await?;
            if client.json {
                return Ok(print_json(&serde_json::json!({ "deleted": name }))?);
            }
            outln!("deleted {name}");
            Ok(())
        }
    }
}

fn parse_status(raw: &str) -> Result<PromptStatus, Failure> {
    PromptStatus::parse(raw).ok_or_else(|| {
        Failure::usage(format!(
            "unknown status `{raw}`: use draft, active, deprecated or archived"
        ))
    })
}

fn read_source(
    source: &TemplateSource,
) -> anyhow::Result<(PromptSource, Option<std::path::PathBuf>)> {
    match (&source.file, &source.text) {
        (Some(path), _) => Ok((PromptSource::read(path)?, Some(path.clone()))),
        (None, Some(text)) => Ok((PromptSource::from_text(text), None)),
        // clap's argument group requires one of the two.
        (None, None) => anyhow::bail!("give --file or --text"),
    }
}

/// Lists prompts page by page until `limit` (or the end).
async fn list(
    api: &Client,
    mut filter: PromptFilter,
    limit: Option<u32>,
) -> anyhow::Result<Vec<Prompt>> {
    let mut prompts = Vec::new();
    loop {
        let remaining =
            limit.map(|l| l.saturating_sub(u32::try_from(prompts.len()).unwrap_or(u32::MAX)));
        if remaining == Some(0) {
            break;
        }
        filter.page.limit = Some(remaining.unwrap_or(200).min(200));
        let page = api
            .list_prompts(&filter)
            .await
            .context("cannot list prompts")?;
        prompts.extend(page.items);
        match page.next_cursor {
            Some(next) if filter.page.cursor.as_ref() != Some(&next) => {
                filter.page.cursor = Some(next)
            }
            _ => break,
        }
    }
    Ok(prompts)
}

/// The version a `--version`/`--label` pair designates on this prompt (default: latest).
fn version_number(prompt: &Prompt, at: &VersionSelector) -> Result<u32, Failure> {
    if let Some(number) = at.version {
        return Ok(number);
    }
    let label = at.label.as_deref().unwrap_or("latest");
    match prompt.labels.get(label) {
        Some(number) => Ok(*number),
        None if label == "latest" => Ok(prompt.latest_version),
        None => Err(Failure::Other(anyhow::anyhow!(
            "prompt `{}` has no label `{label}` (labels: {}) (not_found)",
            prompt.name,
            prompt.labels.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn print_prompt_table(prompts: &[Prompt]) {
    if prompts.is_empty() {
        outln!("no prompts");
        return;
    }
    let mut table = Table::new(&[
        "name",
        "type",
        "status",
        "latest",
        "labels",
        "tags",
        "description",
    ]);
    for p in prompts {
        let labels: Vec<String> = p
            .labels
            .iter()
            .filter(|(name, _)| name.as_str() != "latest")
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        table.row(vec![
            p.name.clone(),
            p.kind.as_str().into(),
            p.status.as_str().into(),
            p.latest_version.to_string(),
            labels.join(","),
            p.tags.join(","),
            clip(&p.description, 40),
        ]);
    }
    table.print();
}

fn print_prompt(prompt: &Prompt, version: &Version) {
    outln!("name:        {}", prompt.name);
    outln!("type:        {}", prompt.kind.as_str());
    outln!("status:      {}", prompt.status.as_str());
    if !prompt.description.is_empty() {
        outln!("description: {}", prompt.description);
    }
    if !prompt.tags.is_empty() {
        outln!("tags:        {}", prompt.tags.join(", "));
    }
    let labels: Vec<String> = prompt
        .labels
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    outln!("labels:      {}", labels.join(", "));
    outln!();
    outln!(
        "version {} by {} at {}",
        version.number,
        version.author,
        when(version.created_at)
    );
    if !version.commit_message.is_empty() {
        outln!("message:     {}", version.commit_message);
    }
    outln!("hash:        {}", version.content_hash);
    outln!();
    print_template(&version.template);
    if !version.variables.is_empty() {
        outln!();
        print_variables(&version.variables);
    }
    if !version.model_config.is_null() && version.model_config != serde_json::json!({}) {
        outln!();
        outln!("model config:");
        outln!(
            "{}",
            serde_json::to_string_pretty(&version.model_config).unwrap_or_default()
        );
    }
}

fn print_template(template: &Template) {
    match template {
        Template::Text { text } => {
            outln!("--- template (text) ---");
            outln!("{}", text.trim_end());
            outln!("---");
        }
        Template::Chat { messages } => {
            outln!("--- template (chat) ---");
            for message in messages {
                match message {
                    ChatMessage::Message { role, content } => {
                        outln!("[{role}]\n{}\n", content.trim_end())
                    }
                    ChatMessage::Placeholder { placeholder } => {
                        outln!("[placeholder: {placeholder}]\n")
                    }
                }
            }
            outln!("---");
        }
    }
}

fn print_variables(variables: &[VariableSpec]) {
    let mut table = Table::new(&["variable", "type", "required", "default", "description"]);
    for v in variables {
        table.row(vec![
            v.name.clone(),
            v.var_type.as_str().into(),
            if v.required {
                "yes".into()
            } else {
                "no".into()
            },
            v.default
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            v.description.clone().unwrap_or_default(),
        ]);
    }
    table.print();
}

fn print_diff(diff: &VersionDiff) {
    outln!("{} {} → {}", diff.prompt, diff.from, diff.to);
    if diff.template_diff.trim().is_empty() {
        outln!("template: unchanged");
    } else {
        outln!("{}", diff.template_diff.trim_end());
    }
    for v in &diff.variables.added {
        outln!("variable added: {} ({})", v.name, v.var_type.as_str());
    }
    for v in &diff.variables.removed {
        outln!("variable removed: {} ({})", v.name, v.var_type.as_str());
    }
    for v in &diff.variables.changed {
        outln!(
            "variable changed: {}: {} → {}",
            v.name,
            serde_json::to_string(&v.from).unwrap_or_default(),
            serde_json::to_string(&v.to).unwrap_or_default()
        );
    }
    for change in &diff.model_config {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into())
        };
        outln!(
            "model_config {}: {} → {}",
            change.path,
            show(&change.from),
            show(&change.to)
        );
    }
    for change in &diff.breaking_changes {
        outln!("breaking: {} ({})", change.message, change.code);
    }
}

fn print_warnings<'a>(warnings: impl Iterator<Item = (&'a String, &'a String)>) {
    for (code, message) in warnings {
        eprintln!("warning: {message} ({code})");
    }
}
