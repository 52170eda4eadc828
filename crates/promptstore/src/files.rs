//! Reading what users write by hand: prompt source files for `prompt create/push` (YAML,
//! JSON, or a plain template file) and variable files for `prompt render`. Every error
//! names the file.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use promptstore_client::types::{ChatMessage, PromptStatus, Template, VariableSpec};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Extensions read whole as a text template.
const PLAIN_TEMPLATE_EXTENSIONS: &[&str] = &["txt", "md", "j2", "jinja", "jinja2", "prompt"];

/// A prompt source file as a person writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSource {
    /// Optional; when present it must match the name on the command line.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<PromptStatus>,
    /// A string (text template) or the wire shape `{type: text|chat, ...}`.
    #[serde(default)]
    pub template: Option<TemplateInput>,
    /// Shorthand for a chat template.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    #[serde(default)]
    pub model_config: Option<serde_json::Value>,
    #[serde(default)]
    pub commit_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TemplateInput {
    Text(String),
    Full(Template),
}

impl PromptSource {
    /// A quick text prompt from `--text`.
    pub fn from_text(text: &str) -> PromptSource {
        PromptSource {
            template: Some(TemplateInput::Text(text.to_string())),
            ..PromptSource::default()
        }
    }

    /// Reads and checks a source file.
    pub fn read(path: &Path) -> anyhow::Result<PromptSource> {
        let content = read_text(path)?;
        let extension = extension(path);
        let source = if PLAIN_TEMPLATE_EXTENSIONS.contains(&extension.as_str()) {
            PromptSource::from_text(&content)
        } else {
            parse_structured::<PromptSource>(path, &content)?
        };
        source
            .template()
            .with_context(|| format!("{}", path.display()))?;
        Ok(source)
    }

    /// The template, from `template` or `messages` (exactly one of them).
    pub fn template(&self) -> anyhow::Result<Template> {
        match (&self.template, &self.messages) {
            (Some(_), Some(_)) => bail!("give either `template` or `messages`, not both"),
            (None, None) => {
                bail!("no template: give `template` (a string or {{type, ...}}) or `messages`")
            }
            (Some(TemplateInput::Text(text)), None) => Ok(Template::Text { text: text.clone() }),
            (Some(TemplateInput::Full(template)), None) => Ok(template.clone()),
            (None, Some(messages)) => Ok(Template::Chat {
                messages: messages.clone(),
            }),
        }
    }

    /// Refuses a file written for another prompt.
    pub fn check_name(&self, name: &str, path: Option<&Path>) -> anyhow::Result<()> {
        match &self.name {
            Some(own) if own != name => {
                let place = path
                    .map(|p| format!("{}: ", p.display()))
                    .unwrap_or_default();
                bail!("{place}the file is for prompt `{own}`, not `{name}`")
            }
            _ => Ok(()),
        }
    }
}

/// Reads a variables file: a YAML or JSON object.
pub fn read_vars(path: &Path) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let content = read_text(path)?;
    let value: serde_json::Value = parse_structured(path, &content)?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        other => Err(anyhow!(
            "{}: expected an object of variables, found {}",
            path.display(),
            json_kind(&other)
        )),
    }
}

/// Parses `--var key=value`: the value is JSON when it parses as JSON, else a string.
pub fn parse_var(raw: &str) -> Result<(String, serde_json::Value), String> {
    let Some((key, value)) = raw.split_once('=') else {
        return Err(format!("`--var {raw}` must be KEY=VALUE"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`--var {raw}` has an empty variable name"));
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

pub fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Parses YAML or JSON by extension (JSON for `.json`, YAML otherwise, which also reads
/// JSON), with the file name in the error.
pub fn parse_structured<T: DeserializeOwned>(path: &Path, content: &str) -> anyhow::Result<T> {
    if extension(path) == "json" {
        serde_json::from_str(content).map_err(|e| anyhow!("{}: {e}", path.display()))
    } else {
        serde_yaml_ng::from_str(content).map_err(|e| anyhow!("{}: {e}", path.display()))
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(name: &str, content: &str) -> anyhow::Result<PromptSource> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        PromptSource::read(&path)
    }

    #[test]
    fn vars_are_json_when_they_parse() {
        let check = |raw: &str, key: &str, value: serde_json::Value| {
            assert_eq!(parse_var(raw), Ok((key.to_string(), value)), "{raw}");
        };
        check("n=42", "n", json!(42));
        check("ok=true", "ok", json!(true));
        check("items=[1,\"a\"]", "items", json!([1, "a"]));
        check("name=Ada Lovelace", "name", json!("Ada Lovelace"));
        check("q=\"quoted\"", "q", json!("quoted"));
        check("eq=a=b", "eq", json!("a=b"));
        check("empty=", "empty", json!(""));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=x").is_err());
    }

    #[test]
    fn source_files_take_every_template_form() {
        let text = parse(
            "a.yaml",
            "template: |\n  Hello {{ name }}\nvariables:\n  - name: name\n    type: string\n",
        )
        .unwrap();
        assert_eq!(
            text.template().unwrap(),
            Template::Text {
                text: "Hello {{ name }}\n".into()
            }
        );
        assert_eq!(text.variables.len(), 1);

        let chat = parse(
            "b.yml",
            "messages:\n  - role: system\n    content: Be brief.\n  - placeholder: history\n",
        )
        .unwrap();
        assert!(
            matches!(chat.template().unwrap(), Template::Chat { messages } if messages.len() == 2)
        );

        let wire = parse(
            "c.json",
            r#"{"template":{"type":"text","text":"hi"},"model_config":{"model":"m"}}"#,
        )
        .unwrap();
        assert_eq!(
            wire.template().unwrap(),
            Template::Text { text: "hi".into() }
        );

        let plain = parse("d.md", "Summarize {{ doc }}").unwrap();
        assert_eq!(
            plain.template().unwrap(),
            Template::Text {
                text: "Summarize {{ doc }}".into()
            }
        );
    }

    #[test]
    fn bad_source_files_name_the_file() {
        for (name, content) in [
            ("bad.yaml", "template: hi\nunknown_field: 1\n"),
            ("bad.yaml", "description: no template\n"),
            ("bad.json", "{not json"),
            ("bad.yaml", "template: a\nmessages: []\n"),
        ] {
            let err = parse(name, content).unwrap_err();
            assert!(format!("{err:#}").contains(name), "{err:#}");
        }
    }
}
