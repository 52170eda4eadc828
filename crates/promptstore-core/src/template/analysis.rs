//! Save-time analysis of a version: everything that can be known about a template without
//! rendering it — syntax, chat structure, the variable contract, includes, and warnings.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use minijinja::Environment;
use promptstore_types::{
    CHAT_ROLES, ChatMessage, ErrorCode, IncludeRef, Template, VarType, VariableSpec, Warning,
};
use serde_json::json;

use super::engine::{BUILTIN_GLOBALS, RenderLimits, sandboxed_environment, syntax_error};
use super::includes::find_includes;
use crate::error::{Error, Result};
use crate::variables::{is_valid_variable_name, validate_specs};

/// What the analysis of a valid version found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// The prompts this version includes, deduplicated and sorted.
    pub includes: Vec<IncludeRef>,
    /// `undeclared_variable` and `unused_variable` notes, sorted by variable.
    pub warnings: Vec<Warning>,
}

/// One environment for all analyses: compiling needs only the syntax configuration.
fn analysis_env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| sandboxed_environment(&RenderLimits::default()))
}

fn invalid(message: String, details: serde_json::Value) -> Error {
    Error::rejected(ErrorCode::InvalidRequest, message).with_details(details)
}

/// Checks a version before it is saved and extracts what the store records with it.
///
/// Refusals: `template_syntax` (`{line, message_index?, detail}`) for a template that does
/// not parse or a malformed include; `invalid_request` for an empty chat, an unknown role,
/// an invalid placeholder name, invalid variable specs, a placeholder declared with a type
/// other than `list`, or a model config that is not a JSON object.
pub fn analyze(
    template: &Template,
    variables: &[VariableSpec],
    model_config: &serde_json::Value,
) -> Result<Analysis> {
    if !model_config.is_object() {
        return Err(invalid(
            format!(
                "model_config must be a JSON object, got {}",
                crate::variables::json_type_name(model_config)
            ),
            json!({ "field": "model_config" }),
        ));
    }
    // (message index, source) of every template text; placeholders separately.
    let mut sources: Vec<(Option<usize>, &str)> = Vec::new();
    let mut placeholders: Vec<&str> = Vec::new();
    match template {
        Template::Text { text } => sources.push((None, text)),
        Template::Chat { messages } => {
            if messages.is_empty() {
                return Err(invalid(
                    "a chat template needs at least one message".to_owned(),
                    json!({ "field": "template.messages" }),
                ));
            }
            for (i, message) in messages.iter().enumerate() {
                match message {
                    ChatMessage::Message { role, content } => {
                        if !CHAT_ROLES.contains(&role.as_str()) {
                            return Err(invalid(
                                format!(
                                    "message {i} has role '{role}'; allowed roles are {}",
                                    CHAT_ROLES.join(", ")
                                ),
                                json!({ "message_index": i, "role": role }),
                            ));
                        }
                        sources.push((Some(i), content));
                    }
                    ChatMessage::Placeholder { placeholder } => {
                        if !is_valid_variable_name(placeholder) {
                            return Err(invalid(
                                format!(
                                    "message {i}: placeholder '{placeholder}' is not a valid variable name"
                                ),
                                json!({ "message_index": i, "variable": placeholder }),
                            ));
                        }
                        placeholders.push(placeholder);
                    }
                }
            }
        }
    }
    validate_specs(variables)?;
    for name in &placeholders {
        if let Some(spec) = variables.iter().find(|s| s.name == *name)
            && spec.var_type != VarType::List
        {
            return Err(invalid(
                format!(
                    "variable '{name}' fills a chat placeholder, so it must be declared as list, not {}",
                    spec.var_type.as_str()
                ),
                json!({ "variable": name }),
            ));
        }
    }

    let env = analysis_env();
    let mut used: BTreeSet<String> = placeholders.iter().map(|p| (*p).to_owned()).collect();
    let mut includes: BTreeSet<IncludeRef> = BTreeSet::new();
    for (index, source) in &sources {
        let name = match index {
            Some(i) => format!("message {i}"),
            None => "template".to_owned(),
        };
        let compiled = env
            .template_from_named_str(&name, source)
            .map_err(|e| syntax_error(&e, *index))?;
        let found = find_includes(source).map_err(|p| {
            let mut details = json!({ "line": p.line, "detail": p.detail });
            if let Some(i) = index {
                details["message_index"] = json!(i);
            }
            let place = match index {
                Some(i) => format!("message {i}, line {}", p.line),
                None => format!("line {}", p.line),
            };
            Error::rejected(
                ErrorCode::TemplateSyntax,
                format!("invalid include at {place}: {}", p.detail),
            )
            .with_details(details)
        })?;
        includes.extend(found.into_iter().map(|(r, _)| r));
        used.extend(
            compiled
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !BUILTIN_GLOBALS.contains(&v.as_str())),
        );
    }

    let declared: BTreeSet<&str> = variables.iter().map(|s| s.name.as_str()).collect();
    let mut warnings = Vec::new();
    for name in &used {
        if !declared.contains(name.as_str()) {
            let what = if placeholders.contains(&name.as_str()) {
                "fills a chat placeholder"
            } else {
                "is used in the template"
            };
            warnings.push(Warning {
                code: "undeclared_variable".to_owned(),
                message: format!("variable '{name}' {what} but is not declared; declare it so callers know to send it and it is checked"),
                variable: Some(name.clone()),
            });
        }
    }
    for name in &declared {
        if !used.contains(*name) {
            warnings.push(Warning {
                code: "unused_variable".to_owned(),
                message: format!("variable '{name}' is declared but the template does not use it"),
                variable: Some((*name).to_owned()),
            });
        }
    }
    warnings.sort_by(|a, b| a.variable.cmp(&b.variable).then(a.code.cmp(&b.code)));
    Ok(Analysis {
        includes: includes.into_iter().collect(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec(name: &str, ty: VarType) -> VariableSpec {
        VariableSpec::new(name, ty)
    }

    fn text(t: &str) -> Template {
        Template::Text { text: t.into() }
    }

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage::Message {
            role: role.into(),
            content: content.into(),
        }
    }

    fn placeholder(name: &str) -> ChatMessage {
        ChatMessage::Placeholder {
            placeholder: name.into(),
        }
    }

    /// Expected warnings as `code:variable` strings.
    fn ok(template: Template, vars: &[VariableSpec], includes: &[&str], warnings: &[&str]) {
        let a =
            analyze(&template, vars, &json!({})).unwrap_or_else(|e| panic!("{template:?}: {e}"));
        let got_includes: Vec<String> = a
            .includes
            .iter()
            .map(super::super::format_include_ref)
            .collect();
        assert_eq!(got_includes, includes, "{template:?}");
        let got_warnings: Vec<String> = a
            .warnings
            .iter()
            .map(|w| format!("{}:{}", w.code, w.variable.clone().unwrap_or_default()))
            .collect();
        assert_eq!(got_warnings, warnings, "{template:?}");
    }

    fn err(
        template: Template,
        vars: &[VariableSpec],
        config: Value,
        code: ErrorCode,
        fragment: &str,
        details: Value,
    ) {
        let e = analyze(&template, vars, &config).unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().contains(fragment), "{e}");
        let got = e.to_body().details;
        for (k, v) in details.as_object().cloned().unwrap_or_default() {
            assert_eq!(got[&k], v, "detail {k} of {got}");
        }
    }

    #[test]
    fn valid_templates_and_warnings() {
        use VarType::*;
        ok(text("Hello {{ name }}"), &[spec("name", String)], &[], &[]);
        ok(
            text("Hello {{ name }}"),
            &[],
            &[],
            &["undeclared_variable:name"],
        );
        ok(
            text("Hello"),
            &[spec("name", String)],
            &[],
            &["unused_variable:name"],
        );
        // Loop variables, set variables, macro arguments and globals are not undeclared.
        ok(
            text(
                "{% for i in items %}{{ i }}{{ loop.index }}{% endfor %}{% set x = 1 %}{{ x }}\
                  {% macro m(a) %}{{ a }}{% endmacro %}{{ m(2) }}{% for j in range(2) %}{% endfor %}",
            ),
            &[spec("items", List)],
            &[],
            &[],
        );
        ok(
            Template::Chat {
                messages: vec![
                    msg("system", "Be {{ tone }}."),
                    placeholder("history"),
                    msg("user", "{{ q }}"),
                ],
            },
            &[
                spec("tone", String),
                spec("history", List),
                spec("q", String),
                spec("unused", Number),
            ],
            &[],
            &["unused_variable:unused"],
        );
        ok(
            Template::Chat {
                messages: vec![placeholder("history")],
            },
            &[],
            &[],
            &["undeclared_variable:history"],
        );
        ok(
            text("{% include \"b@production\" %}{% include 'a@2' %}{% include \"b@production\" %}"),
            &[],
            &["a@2", "b@production"],
            &[],
        );
        ok(
            Template::Chat {
                messages: vec![
                    msg("system", "{% include \"sys@3\" %}"),
                    msg("user", "{% include \"x/y@beta\" %}"),
                ],
            },
            &[],
            &["sys@3", "x/y@beta"],
            &[],
        );
    }

    #[test]
    fn refusals() {
        use VarType::*;
        let cfg = json!({});
        err(
            text("Hi {{ name"),
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "line 1",
            json!({"line": 1}),
        );
        err(
            text("a\nb\n{% if x %}"),
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "template syntax error",
            json!({}),
        );
        err(
            text("a\n{% endfor %}"),
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "line 2",
            json!({"line": 2}),
        );
        err(
            Template::Chat {
                messages: vec![msg("system", "ok"), msg("user", "x\n{{ }}")],
            },
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "message 1, line 2",
            json!({"message_index": 1, "line": 2}),
        );
        err(
            text("{% include x %}"),
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "one string literal",
            json!({"line": 1}),
        );
        err(
            text("{% include \"x\" %}"),
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "needs a label or version",
            json!({"line": 1}),
        );
        err(
            Template::Chat {
                messages: vec![msg("user", "\n{% include \"../x@prod\" %}")],
            },
            &[],
            cfg.clone(),
            ErrorCode::TemplateSyntax,
            "invalid prompt name",
            json!({"line": 2, "message_index": 0}),
        );
        err(
            Template::Chat { messages: vec![] },
            &[],
            cfg.clone(),
            ErrorCode::InvalidRequest,
            "at least one message",
            json!({}),
        );
        err(
            Template::Chat {
                messages: vec![msg("wizard", "x")],
            },
            &[],
            cfg.clone(),
            ErrorCode::InvalidRequest,
            "role 'wizard'",
            json!({"message_index": 0}),
        );
        err(
            Template::Chat {
                messages: vec![placeholder("1bad")],
            },
            &[],
            cfg.clone(),
            ErrorCode::InvalidRequest,
            "not a valid variable name",
            json!({"variable": "1bad"}),
        );
        err(
            Template::Chat {
                messages: vec![placeholder("history")],
            },
            &[spec("history", String)],
            cfg.clone(),
            ErrorCode::InvalidRequest,
            "must be declared as list",
            json!({"variable": "history"}),
        );
        err(
            text("x"),
            &[spec("a", String), spec("a", String)],
            cfg.clone(),
            ErrorCode::InvalidRequest,
            "more than once",
            json!({"variable": "a"}),
        );
        err(
            text("x"),
            &[],
            json!([1]),
            ErrorCode::InvalidRequest,
            "must be a JSON object",
            json!({"field": "model_config"}),
        );
        err(
            text("x"),
            &[],
            Value::Null,
            ErrorCode::InvalidRequest,
            "must be a JSON object",
            json!({}),
        );
    }
}
