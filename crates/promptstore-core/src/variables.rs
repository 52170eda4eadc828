//! The typed variable contract: validating declared specs when a version is saved, and
//! checking a caller's variables against them before every render (the hot path).
//!
//! Rules at render time:
//! - a required variable without a default that is not given → `missing_variable`;
//! - a value of the wrong JSON type, or outside the declared `enum` → `variable_type`;
//! - a missing variable with a default gets the default;
//! - an optional variable without default that is not given stays undefined, so
//!   `{% if name %}` works and printing it is a `render_failed` error;
//! - JSON `null` counts as "not given" for every type but `json` (where null is a value);
//! - variables that are not declared are passed through untouched.

use promptstore_types::{CHAT_ROLES, ErrorCode, RenderedMessage, VarType, VariableSpec};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Names that cannot be variables: Jinja literals and operators, and the names the engine
/// binds itself inside templates.
const RESERVED: &[&str] = &[
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "loop", "self", "super", "caller", "varargs", "kwargs",
];

/// Whether `name` may name a variable (or a chat placeholder): an identifier
/// `[A-Za-z_][A-Za-z0-9_]*` of at most 64 characters that is not reserved.
pub fn is_valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
        && !RESERVED.contains(&name)
}

/// The JSON type name of a value, as used in error messages and details.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Whether `value` is of the declared type (`json` takes anything, null included).
pub fn type_matches(var_type: VarType, value: &Value) -> bool {
    match var_type {
        VarType::String => value.is_string(),
        VarType::Number => value.is_number(),
        VarType::Boolean => value.is_boolean(),
        VarType::Json => true,
        VarType::List => value.is_array(),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn in_allowed(allowed: &[Value], value: &Value) -> bool {
    allowed.iter().any(|a| json_eq(a, value))
}

fn invalid_spec(variable: &str, message: String) -> Error {
    Error::rejected(ErrorCode::InvalidRequest, message)
        .with_details(json!({ "variable": variable }))
}

/// Validates declared variable specs (at save time): identifier names, no duplicates,
/// defaults and enum values of the declared type, a default inside the enum, a non-empty enum.
pub fn validate_specs(specs: &[VariableSpec]) -> Result<()> {
    for (i, spec) in specs.iter().enumerate() {
        let name = spec.name.as_str();
        if !is_valid_variable_name(name) {
            return Err(invalid_spec(
                name,
                format!(
                    "invalid variable name '{name}': use a letter or '_' followed by letters, digits or '_' \
                     (at most 64 characters, not a reserved word such as 'loop' or 'none')"
                ),
            ));
        }
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(invalid_spec(
                name,
                format!("variable '{name}' is declared more than once"),
            ));
        }
        let ty = spec.var_type.as_str();
        if let Some(default) = &spec.default
            && !type_matches(spec.var_type, default)
        {
            return Err(invalid_spec(
                name,
                format!(
                    "the default of variable '{name}' is a {}, but the variable is declared as {ty}",
                    json_type_name(default)
                ),
            ));
        }
        if let Some(allowed) = &spec.allowed {
            if allowed.is_empty() {
                return Err(invalid_spec(
                    name,
                    format!(
                        "the enum of variable '{name}' is empty: list at least one allowed value"
                    ),
                ));
            }
            if let Some(bad) = allowed.iter().find(|v| !type_matches(spec.var_type, v)) {
                return Err(invalid_spec(
                    name,
                    format!(
                        "the enum of variable '{name}' holds {bad}, a {}, but the variable is declared as {ty}",
                        json_type_name(bad)
                    ),
                ));
            }
            if let Some(default) = &spec.default
                && !in_allowed(allowed, default)
            {
                return Err(invalid_spec(
                    name,
                    format!(
                        "the default of variable '{name}' ({default}) is not one of its enum values"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The variables a render uses: the caller's values (declared and undeclared) plus the
/// defaults of declared variables the caller did not give. Borrows everything.
#[derive(Debug, Default)]
pub struct CheckedVariables<'a> {
    entries: Vec<(&'a str, &'a Value)>,
}

impl<'a> CheckedVariables<'a> {
    /// Iterates `(name, value)` pairs, each name once.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + '_ {
        self.entries.iter().copied()
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Checks `vars` against `specs` and applies defaults (see the module docs for the rules).
pub fn check_variables<'a>(
    specs: &'a [VariableSpec],
    vars: &'a Map<String, Value>,
) -> Result<CheckedVariables<'a>> {
    let mut entries: Vec<(&'a str, &'a Value)> = Vec::with_capacity(vars.len() + specs.len());
    for spec in specs {
        let name = spec.name.as_str();
        let given = match vars.get(name) {
            Some(Value::Null) if spec.var_type != VarType::Json => None,
            other => other,
        };
        match given {
            Some(value) => {
                if !type_matches(spec.var_type, value) {
                    let (expected, got) = (spec.var_type.as_str(), json_type_name(value));
                    return Err(Error::rejected(
                        ErrorCode::VariableType,
                        format!("variable '{name}' must be a {expected}, got a {got}"),
                    )
                    .with_details(json!({ "variable": name, "expected": expected, "got": got })));
                }
                if let Some(allowed) = &spec.allowed
                    && !in_allowed(allowed, value)
                {
                    return Err(Error::rejected(
                        ErrorCode::VariableType,
                        format!(
                            "variable '{name}' must be one of {}, got {value}",
                            Value::Array(allowed.clone())
                        ),
                    )
                    .with_details(json!({ "variable": name, "expected": allowed, "got": value })));
                }
                entries.push((name, value));
            }
            None => match &spec.default {
                Some(default) => entries.push((name, default)),
                None if spec.required => {
                    return Err(Error::rejected(
                        ErrorCode::MissingVariable,
                        format!("variable '{name}' is required and was not given"),
                    )
                    .with_details(json!({ "variable": name })));
                }
                None => {}
            },
        }
    }
    // Undeclared variables pass through; declared ones were handled above. Specs are few,
    // so a linear scan beats building a set on this path.
    for (name, value) in vars {
        if !specs.iter().any(|s| s.name == *name) {
            entries.push((name.as_str(), value));
        }
    }
    Ok(CheckedVariables { entries })
}

/// Turns the value of a chat placeholder variable into messages: it must be a list of
/// `{role, content}` objects with a known role and a string content (other keys are ignored).
pub fn placeholder_messages(variable: &str, value: &Value) -> Result<Vec<RenderedMessage>> {
    let bad = |why: String| {
        Error::rejected(
            ErrorCode::VariableType,
            format!("placeholder variable '{variable}' must be a list of {{role, content}} messages: {why}"),
        )
        .with_details(json!({ "variable": variable, "expected": "list of {role, content}", "got": json_type_name(value) }))
    };
    let Value::Array(items) = value else {
        return Err(bad(format!("got a {}", json_type_name(value))));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(bad(format!(
                "item {i} is a {}, not an object",
                json_type_name(item)
            )));
        };
        let role = match obj.get("role") {
            Some(Value::String(r)) if CHAT_ROLES.contains(&r.as_str()) => r,
            Some(Value::String(r)) => {
                return Err(bad(format!(
                    "item {i} has role '{r}'; allowed roles are {}",
                    CHAT_ROLES.join(", ")
                )));
            }
            _ => return Err(bad(format!("item {i} has no string 'role'"))),
        };
        let Some(Value::String(content)) = obj.get("content") else {
            return Err(bad(format!("item {i} has no string 'content'")));
        };
        out.push(RenderedMessage {
            role: role.clone(),
            content: content.clone(),
        });
    }
    Ok(out)
}

/// Reads a spec's `required`-ness as callers see it: must they send a value?
pub fn must_be_given(spec: &VariableSpec) -> bool {
    spec.required && spec.default.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: VarType) -> VariableSpec {
        VariableSpec::new(name, ty)
    }

    fn optional(s: VariableSpec) -> VariableSpec {
        s.optional()
    }

    fn with_default(mut s: VariableSpec, d: Value) -> VariableSpec {
        s.default = Some(d);
        s
    }

    fn with_enum(mut s: VariableSpec, e: Value) -> VariableSpec {
        s.allowed = e.as_array().cloned();
        s
    }

    /// `expected`: `Ok(json object of the effective variables)` or `Err((code, variable))`.
    fn check(
        specs: &[VariableSpec],
        vars: Value,
        expected: std::result::Result<Value, (ErrorCode, &str)>,
    ) {
        let vars = vars.as_object().cloned().unwrap_or_default();
        let got = check_variables(specs, &vars)
            .map(|c| Value::Object(c.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect()));
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err((code, variable))) => {
                assert_eq!(e.code(), code, "{e}");
                assert_eq!(e.to_body().details["variable"], variable, "{e}");
                assert!(e.to_string().contains(variable), "{e}");
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn render_time_checks() {
        use VarType::*;
        let s = spec("name", String);
        check(
            std::slice::from_ref(&s),
            json!({"name": "Ada"}),
            Ok(json!({"name": "Ada"})),
        );
        check(
            std::slice::from_ref(&s),
            json!({}),
            Err((ErrorCode::MissingVariable, "name")),
        );
        check(
            std::slice::from_ref(&s),
            json!({"name": null}),
            Err((ErrorCode::MissingVariable, "name")),
        );
        check(
            std::slice::from_ref(&s),
            json!({"name": 3}),
            Err((ErrorCode::VariableType, "name")),
        );
        check(&[optional(s.clone())], json!({}), Ok(json!({})));
        check(
            &[with_default(s.clone(), json!("you"))],
            json!({}),
            Ok(json!({"name": "you"})),
        );
        check(
            &[with_default(s.clone(), json!("you"))],
            json!({"name": null}),
            Ok(json!({"name": "you"})),
        );
        check(
            &[with_default(s.clone(), json!("you"))],
            json!({"name": "Ada"}),
            Ok(json!({"name": "Ada"})),
        );
        check(
            &[spec("n", Number)],
            json!({"n": 1.5}),
            Ok(json!({"n": 1.5})),
        );
        check(
            &[spec("n", Number)],
            json!({"n": "1"}),
            Err((ErrorCode::VariableType, "n")),
        );
        check(
            &[spec("b", Boolean)],
            json!({"b": false}),
            Ok(json!({"b": false})),
        );
        check(
            &[spec("b", Boolean)],
            json!({"b": 0}),
            Err((ErrorCode::VariableType, "b")),
        );
        check(&[spec("l", List)], json!({"l": [1]}), Ok(json!({"l": [1]})));
        check(
            &[spec("l", List)],
            json!({"l": {}}),
            Err((ErrorCode::VariableType, "l")),
        );
        check(
            &[spec("j", Json)],
            json!({"j": null}),
            Ok(json!({"j": null})),
        );
        check(
            &[spec("j", Json)],
            json!({"j": {"a": [1]}}),
            Ok(json!({"j": {"a": [1]}})),
        );
        let tone = with_enum(spec("tone", String), json!(["formal", "casual"]));
        check(
            std::slice::from_ref(&tone),
            json!({"tone": "casual"}),
            Ok(json!({"tone": "casual"})),
        );
        check(
            &[tone],
            json!({"tone": "angry"}),
            Err((ErrorCode::VariableType, "tone")),
        );
        let level = with_enum(spec("level", Number), json!([1, 2]));
        check(&[level], json!({"level": 2.0}), Ok(json!({"level": 2.0})));
        // Undeclared variables pass through.
        check(&[], json!({"extra": [1, 2]}), Ok(json!({"extra": [1, 2]})));
    }

    #[test]
    fn type_error_details_name_expected_and_got() {
        let vars = json!({"n": "x"}).as_object().cloned().unwrap();
        let specs = [spec("n", VarType::Number)];
        let err = check_variables(&specs, &vars).unwrap_err();
        assert_eq!(
            err.to_body().details,
            json!({"variable": "n", "expected": "number", "got": "string"})
        );
    }

    #[test]
    fn spec_validation() {
        use VarType::*;
        let ok: &[&[VariableSpec]] = &[
            &[],
            &[spec("a", String), spec("_b2", Number)],
            &[with_enum(
                with_default(spec("t", String), json!("x")),
                json!(["x", "y"]),
            )],
            &[with_default(spec("j", Json), json!(null))],
        ];
        for specs in ok {
            assert!(validate_specs(specs).is_ok(), "{specs:?}");
        }
        let bad: &[(&[VariableSpec], &str, &str)] = &[
            (&[spec("1a", String)], "1a", "invalid variable name"),
            (&[spec("a-b", String)], "a-b", "invalid variable name"),
            (&[spec("loop", String)], "loop", "reserved word"),
            (&[spec("", String)], "", "invalid variable name"),
            (
                &[spec("a", String), spec("a", Number)],
                "a",
                "more than once",
            ),
            (
                &[with_default(spec("a", String), json!(1))],
                "a",
                "declared as string",
            ),
            (&[with_enum(spec("a", String), json!([]))], "a", "is empty"),
            (
                &[with_enum(spec("a", Number), json!([1, "x"]))],
                "a",
                "declared as number",
            ),
            (
                &[with_enum(
                    with_default(spec("a", String), json!("z")),
                    json!(["x"]),
                )],
                "a",
                "not one of its enum",
            ),
        ];
        for (specs, variable, fragment) in bad {
            let err = validate_specs(specs).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert_eq!(err.to_body().details["variable"], *variable);
            assert!(err.to_string().contains(fragment), "{err}");
        }
    }

    #[test]
    fn placeholders() {
        let ok = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "name": "x"}]);
        assert_eq!(
            placeholder_messages("history", &ok).unwrap(),
            vec![
                RenderedMessage {
                    role: "user".into(),
                    content: "hi".into()
                },
                RenderedMessage {
                    role: "assistant".into(),
                    content: "hello".into()
                },
            ]
        );
        assert!(
            placeholder_messages("history", &json!([]))
                .unwrap()
                .is_empty()
        );
        let bad = [
            (json!("text"), "got a string"),
            (json!([1]), "item 0 is a number"),
            (json!([{"role": "wizard", "content": "x"}]), "role 'wizard'"),
            (json!([{"content": "x"}]), "no string 'role'"),
            (
                json!([{"role": "user", "content": 5}]),
                "no string 'content'",
            ),
        ];
        for (value, fragment) in bad {
            let err = placeholder_messages("history", &value).unwrap_err();
            assert_eq!(err.code(), ErrorCode::VariableType);
            assert_eq!(err.to_body().details["variable"], "history");
            assert!(err.to_string().contains(fragment), "{err}");
        }
    }
}
