//! The diff of two versions of a prompt: template text, variables, model config, and the
//! breaking changes of the newer contract.

use std::time::Duration;

use promptstore_types::{
    ChatMessage, JsonChange, Template, VariableChange, VariableSpec, VariablesDiff, VersionDiff,
};
use serde_json::Value;
use similar::TextDiff;

use crate::contract::breaking_changes;
use crate::model::VersionRecord;

/// Diffing is quadratic in the worst case; past this the diff is coarser but still correct.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// Compares `from` with `to` (normally two versions of one prompt).
pub fn diff_versions(from: &VersionRecord, to: &VersionRecord) -> VersionDiff {
    VersionDiff {
        prompt: to.prompt.clone(),
        from: from.number,
        to: to.number,
        template_diff: template_diff(
            &from.template,
            &to.template,
            &format!("{}@{}", from.prompt, from.number),
            &format!("{}@{}", to.prompt, to.number),
        ),
        variables: variables_diff(&from.variables, &to.variables),
        model_config: json_changes(&from.model_config, &to.model_config),
        breaking_changes: breaking_changes(&from.variables, &to.variables),
    }
}

/// A template laid out as text for diffing: a text template as it is; a chat template as
/// one block per message, `[role]` then the content, `[placeholder: name]` for placeholders.
pub fn template_layout(template: &Template) -> String {
    match template {
        Template::Text { text } => {
            let mut s = text.clone();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        Template::Chat { messages } => {
            let mut s = String::new();
            for m in messages {
                match m {
                    ChatMessage::Message { role, content } => {
                        s.push('[');
                        s.push_str(role);
                        s.push_str("]\n");
                        s.push_str(content);
                        if !content.ends_with('\n') {
                            s.push('\n');
                        }
                    }
                    ChatMessage::Placeholder { placeholder } => {
                        s.push_str("[placeholder: ");
                        s.push_str(placeholder);
                        s.push_str("]\n");
                    }
                }
            }
            s
        }
    }
}

/// Unified diff (3 lines of context) of two templates; empty when they lay out the same.
pub fn template_diff(from: &Template, to: &Template, from_name: &str, to_name: &str) -> String {
    let old = template_layout(from);
    let new = template_layout(to);
    if old == new {
        return String::new();
    }
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old.as_str(), new.as_str());
    diff.unified_diff()
        .context_radius(3)
        .header(from_name, to_name)
        .to_string()
}

/// Variables added, removed and changed (by name), in the order of `to` then `from`.
pub fn variables_diff(from: &[VariableSpec], to: &[VariableSpec]) -> VariablesDiff {
    let mut out = VariablesDiff::default();
    for t in to {
        match from.iter().find(|f| f.name == t.name) {
            None => out.added.push(t.clone()),
            Some(f) if f != t => out.changed.push(VariableChange {
                name: t.name.clone(),
                from: f.clone(),
                to: t.clone(),
            }),
            Some(_) => {}
        }
    }
    out.removed = from
        .iter()
        .filter(|f| !to.iter().any(|t| t.name == f.name))
        .cloned()
        .collect();
    out
}

/// Changes between two JSON values as JSON pointers: objects are compared key by key,
/// recursively; anything else (arrays included) is compared as a whole value.
pub fn json_changes(from: &Value, to: &Value) -> Vec<JsonChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(from), Some(to), &mut out);
    out
}

fn walk(path: String, from: Option<&Value>, to: Option<&Value>, out: &mut Vec<JsonChange>) {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(*k)))
                .collect();
            keys.sort();
            for key in keys {
                let child = format!("{path}/{}", escape_pointer(key));
                walk(child, a.get(key), b.get(key), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(JsonChange {
            path,
            from: a.cloned(),
            to: b.cloned(),
        }),
    }
}

/// RFC 6901 escaping of one reference token.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_types::VarType;
    use serde_json::json;

    fn spec(name: &str, ty: VarType) -> VariableSpec {
        VariableSpec::new(name, ty)
    }

    fn version(
        number: u32,
        template: Template,
        variables: Vec<VariableSpec>,
        model_config: Value,
    ) -> VersionRecord {
        VersionRecord {
            prompt_id: "id".into(),
            prompt: "p".into(),
            number,
            template,
            variables,
            model_config,
            commit_message: String::new(),
            author: "me".into(),
            parent: None,
            content_hash: String::new(),
            includes: vec![],
            breaking_changes: vec![],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn check_json(from: Value, to: Value, expected: &[(&str, Option<Value>, Option<Value>)]) {
        let got = json_changes(&from, &to);
        let want: Vec<JsonChange> = expected
            .iter()
            .map(|(p, f, t)| JsonChange {
                path: p.to_string(),
                from: f.clone(),
                to: t.clone(),
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn json_pointer_changes() {
        check_json(json!({"a": 1}), json!({"a": 1}), &[]);
        check_json(
            json!({"a": 1}),
            json!({"a": 2}),
            &[("/a", Some(json!(1)), Some(json!(2)))],
        );
        check_json(
            json!({}),
            json!({"m": "x"}),
            &[("/m", None, Some(json!("x")))],
        );
        check_json(
            json!({"m": "x"}),
            json!({}),
            &[("/m", Some(json!("x")), None)],
        );
        check_json(
            json!({"p": {"t": 0.1, "k": 1}, "z": [1, 2]}),
            json!({"p": {"t": 0.2, "k": 1}, "z": [1, 3]}),
            &[
                ("/p/t", Some(json!(0.1)), Some(json!(0.2))),
                ("/z", Some(json!([1, 2])), Some(json!([1, 3]))),
            ],
        );
        check_json(
            json!({"a/b": 1, "c~d": 1}),
            json!({"a/b": 2, "c~d": 2}),
            &[
                ("/a~1b", Some(json!(1)), Some(json!(2))),
                ("/c~0d", Some(json!(1)), Some(json!(2))),
            ],
        );
        check_json(
            json!({"a": {"b": 1}}),
            json!({"a": 5}),
            &[("/a", Some(json!({"b": 1})), Some(json!(5)))],
        );
        check_json(json!(1), json!(2), &[("", Some(json!(1)), Some(json!(2)))]);
    }

    #[test]
    fn chat_layout_is_one_block_per_message() {
        let t = Template::Chat {
            messages: vec![
                ChatMessage::Message {
                    role: "system".into(),
                    content: "Be brief.".into(),
                },
                ChatMessage::Placeholder {
                    placeholder: "history".into(),
                },
                ChatMessage::Message {
                    role: "user".into(),
                    content: "{{ q }}\n".into(),
                },
            ],
        };
        assert_eq!(
            template_layout(&t),
            "[system]\nBe brief.\n[placeholder: history]\n[user]\n{{ q }}\n"
        );
    }

    #[test]
    fn version_diff() {
        use VarType::*;
        let a = version(
            1,
            Template::Text {
                text: "Hello {{ name }}\nBye".into(),
            },
            vec![spec("name", String), spec("old", Number)],
            json!({"model": "a", "temperature": 0.1}),
        );
        let b = version(
            2,
            Template::Text {
                text: "Hi {{ name }}\nBye".into(),
            },
            vec![spec("name", Json), spec("new", Boolean)],
            json!({"model": "b", "temperature": 0.1}),
        );
        let d = diff_versions(&a, &b);
        assert_eq!((d.prompt.as_str(), d.from, d.to), ("p", 1, 2));
        assert_eq!(
            d.template_diff,
            "--- p@1\n+++ p@2\n@@ -1,2 +1,2 @@\n-Hello {{ name }}\n+Hi {{ name }}\n Bye\n"
        );
        assert_eq!(
            d.variables
                .added
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["new"]
        );
        assert_eq!(
            d.variables
                .removed
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["old"]
        );
        assert_eq!(d.variables.changed.len(), 1);
        assert_eq!(d.variables.changed[0].to.var_type, Json);
        assert_eq!(
            d.model_config,
            vec![JsonChange {
                path: "/model".into(),
                from: Some(json!("a")),
                to: Some(json!("b"))
            }]
        );
        let codes: Vec<&str> = d.breaking_changes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["variable_removed", "required_variable_added"]);
        let same = diff_versions(&a, &a);
        assert_eq!(same.template_diff, "");
        assert!(same.model_config.is_empty() && same.breaking_changes.is_empty());
        assert_eq!(same.variables, VariablesDiff::default());
    }
}
