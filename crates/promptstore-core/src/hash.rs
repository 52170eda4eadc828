//! The content hash of a version: equal content always hashes equal.
//!
//! Used to detect a save that changes nothing and to let clients compare versions cheaply.
//! The hash is SHA-256 over a canonical JSON encoding (object keys sorted at every depth,
//! no whitespace), so `{"a":1,"b":2}` and `{"b":2,"a":1}` in a model config hash the same,
//! whatever map ordering serde_json was compiled with.

use promptstore_types::{Template, VariableSpec};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 (lowercase hex) of the template, the variable specs and the model config.
pub fn content_hash(
    template: &Template,
    variables: &[VariableSpec],
    model_config: &Value,
) -> String {
    // Serialising these plain data types to a `Value` cannot fail; a `Null` in the
    // impossible case still yields a stable hash rather than a panic.
    let doc = serde_json::json!({
        "template": serde_json::to_value(template).unwrap_or(Value::Null),
        "variables": serde_json::to_value(variables).unwrap_or(Value::Null),
        "model_config": model_config,
    });
    let mut canonical = String::with_capacity(256);
    write_canonical(&doc, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Canonical JSON text of a value: object keys sorted (by their UTF-8 bytes) at every depth.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Scalars: serde_json's own text (numbers keep their exact representation).
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is canonical (minimal escapes), so reuse it.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_types::{ChatMessage, VarType};
    use serde_json::json;

    fn text(t: &str) -> Template {
        Template::Text { text: t.into() }
    }

    fn var(name: &str) -> VariableSpec {
        VariableSpec {
            name: name.into(),
            var_type: VarType::String,
            required: true,
            default: None,
            allowed: None,
            description: None,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let cases = [
            (
                json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}}),
                r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#,
            ),
            (json!("quo\"te\n"), r#""quo\"te\n""#),
            (json!([true, 1.5, -2]), "[true,1.5,-2]"),
            (json!({}), "{}"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical_json(&input), expected);
        }
    }

    #[test]
    fn equal_content_hashes_equal_whatever_the_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"model":"m","params":{"top_p":1,"temperature":0.2}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"params":{"temperature":0.2,"top_p":1},"model":"m"}"#)
                .unwrap();
        let h = content_hash(&text("Hi {{ x }}"), &[var("x")], &a);
        assert_eq!(h, content_hash(&text("Hi {{ x }}"), &[var("x")], &b));
        assert_eq!(h.len(), 64);
        assert!(
            h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn any_change_changes_the_hash() {
        let cfg = json!({"model": "m"});
        let base = content_hash(&text("Hi"), &[var("x")], &cfg);
        let chat = Template::Chat {
            messages: vec![ChatMessage::Message {
                role: "user".into(),
                content: "Hi".into(),
            }],
        };
        let mut optional = var("x");
        optional.required = false;
        let variants = [
            content_hash(&text("Hi!"), &[var("x")], &cfg),
            content_hash(&chat, &[var("x")], &cfg),
            content_hash(&text("Hi"), &[var("y")], &cfg),
            content_hash(&text("Hi"), &[optional], &cfg),
            content_hash(&text("Hi"), &[], &cfg),
            content_hash(&text("Hi"), &[var("x")], &json!({"model": "n"})),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }
}
