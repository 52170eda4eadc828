//! Breaking changes of the variable contract: what a caller that works with the old
//! version would get wrong with the new one.
//!
//! A change is breaking when a call that rendered with `old` can fail with `new`:
//! - `variable_removed`: a variable callers had to send is gone (a rename is a removal
//!   plus an addition). Removing an optional variable is not breaking: undeclared
//!   variables pass through.
//! - `variable_type_changed`: a different type, except a change to `json`, which accepts
//!   every value.
//! - `variable_now_required`: optional (or defaulted) before, required without default now.
//! - `required_variable_added`: a new variable that must be sent (callers do not send it).
//! - `allowed_values_narrowed`: an enum appeared, or lost values.

use promptstore_types::{BreakingChange, VarType, VariableSpec};

use crate::variables::must_be_given;

fn change(code: &str, variable: &str, message: String) -> BreakingChange {
    BreakingChange {
        code: code.to_owned(),
        variable: variable.to_owned(),
        message,
    }
}

/// How `new` breaks the contract of `old`, in the order of `old`'s variables then `new`'s.
pub fn breaking_changes(old: &[VariableSpec], new: &[VariableSpec]) -> Vec<BreakingChange> {
    let mut out = Vec::new();
    for o in old {
        let name = o.name.as_str();
        let Some(n) = new.iter().find(|n| n.name == o.name) else {
            if must_be_given(o) {
                out.push(change(
                    "variable_removed",
                    name,
                    format!("required variable '{name}' was removed; callers still send it and templates that include this prompt may use it"),
                ));
            }
            continue;
        };
        if o.var_type != n.var_type && n.var_type != VarType::Json {
            out.push(change(
                "variable_type_changed",
                name,
                format!(
                    "variable '{name}' changed type from {} to {}",
                    o.var_type.as_str(),
                    n.var_type.as_str()
                ),
            ));
        }
        if !must_be_given(o) && must_be_given(n) {
            out.push(change(
                "variable_now_required",
                name,
                format!("variable '{name}' was optional and is now required without a default; callers that omit it will fail"),
            ));
        }
        if let Some(new_allowed) = &n.allowed {
            let narrowed = match &o.allowed {
                None => true,
                Some(old_allowed) => old_allowed.iter().any(|v| !new_allowed.contains(v)),
            };
            if narrowed {
                let lost: Vec<String> = match &o.allowed {
                    None => Vec::new(),
                    Some(old_allowed) => old_allowed
                        .iter()
                        .filter(|v| !new_allowed.contains(v))
                        .map(|v| v.to_string())
                        .collect(),
                };
                let message = if lost.is_empty() {
                    format!(
                        "variable '{name}' now only accepts the values {}",
                        serde_json::Value::Array(new_allowed.clone())
                    )
                } else {
                    format!("variable '{name}' no longer accepts {}", lost.join(", "))
                };
                out.push(change("allowed_values_narrowed", name, message));
            }
        }
    }
    for n in new {
        if must_be_given(n) && !old.iter().any(|o| o.name == n.name) {
            let name = n.name.as_str();
            out.push(change(
                "required_variable_added",
                name,
                format!("new variable '{name}' is required without a default; existing callers do not send it"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, ty: VarType) -> VariableSpec {
        VariableSpec::new(name, ty)
    }

    fn optional(s: VariableSpec) -> VariableSpec {
        s.optional()
    }

    fn defaulted(mut s: VariableSpec, d: serde_json::Value) -> VariableSpec {
        s.default = Some(d);
        s
    }

    fn enumed(mut s: VariableSpec, e: serde_json::Value) -> VariableSpec {
        s.allowed = e.as_array().cloned();
        s
    }

    fn check(old: &[VariableSpec], new: &[VariableSpec], expected: &[&str]) {
        let got: Vec<String> = breaking_changes(old, new)
            .iter()
            .map(|c| format!("{}:{}", c.code, c.variable))
            .collect();
        assert_eq!(got, expected, "old {old:?} new {new:?}");
        for c in breaking_changes(old, new) {
            assert!(c.message.contains(&c.variable), "{c:?}");
        }
    }

    #[test]
    fn contract_changes() {
        use VarType::*;
        let s = spec("a", String);
        check(std::slice::from_ref(&s), std::slice::from_ref(&s), &[]);
        check(&[], &[], &[]);
        check(std::slice::from_ref(&s), &[], &["variable_removed:a"]);
        check(&[optional(s.clone())], &[], &[]);
        check(&[defaulted(s.clone(), json!("x"))], &[], &[]);
        check(
            std::slice::from_ref(&s),
            &[spec("b", String)],
            &["variable_removed:a", "required_variable_added:b"],
        );
        check(
            std::slice::from_ref(&s),
            &[spec("a", Number)],
            &["variable_type_changed:a"],
        );
        check(std::slice::from_ref(&s), &[spec("a", Json)], &[]);
        check(
            &[spec("a", Json)],
            std::slice::from_ref(&s),
            &["variable_type_changed:a"],
        );
        check(
            &[optional(s.clone())],
            std::slice::from_ref(&s),
            &["variable_now_required:a"],
        );
        check(
            &[defaulted(s.clone(), json!("x"))],
            std::slice::from_ref(&s),
            &["variable_now_required:a"],
        );
        check(std::slice::from_ref(&s), &[optional(s.clone())], &[]);
        check(
            std::slice::from_ref(&s),
            &[defaulted(s.clone(), json!("x"))],
            &[],
        );
        check(&[], &[optional(s.clone())], &[]);
        check(&[], &[defaulted(s.clone(), json!("x"))], &[]);
        check(
            &[],
            std::slice::from_ref(&s),
            &["required_variable_added:a"],
        );
        check(
            std::slice::from_ref(&s),
            &[enumed(s.clone(), json!(["x"]))],
            &["allowed_values_narrowed:a"],
        );
        check(
            &[enumed(s.clone(), json!(["x", "y"]))],
            &[enumed(s.clone(), json!(["x"]))],
            &["allowed_values_narrowed:a"],
        );
        check(
            &[enumed(s.clone(), json!(["x"]))],
            &[enumed(s.clone(), json!(["x", "y"]))],
            &[],
        );
        check(
            &[enumed(s.clone(), json!(["x"]))],
            std::slice::from_ref(&s),
            &[],
        );
        check(
            &[optional(spec("a", String))],
            &[enumed(spec("a", Number), json!([1]))],
            &[
                "variable_type_changed:a",
                "variable_now_required:a",
                "allowed_values_narrowed:a",
            ],
        );
    }

    #[test]
    fn narrowing_message_names_the_lost_values() {
        let old = [enumed(
            spec("tone", VarType::String),
            json!(["formal", "casual"]),
        )];
        let new = [enumed(spec("tone", VarType::String), json!(["formal"]))];
        let c = &breaking_changes(&old, &new)[0];
        assert!(c.message.contains("\"casual\""), "{}", c.message);
    }
}
