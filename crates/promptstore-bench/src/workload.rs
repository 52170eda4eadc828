//! The benchmark workload: one realistic customer-support chat prompt (a system and a user
//! message, about 1 KB rendered) with three typed variables, and the variables a caller
//! renders it with. Every benchmark uses this prompt so their figures describe one workload.

use promptstore_types::{ChatMessage, Template, VarType, VariableSpec};
use serde_json::{Value, json};

/// The label the benchmarks render at (DESIGN: agents fetch `production`).
pub const LABEL: &str = "production";

/// Name of the `index`-th seeded prompt (1-based), e.g. `bench/chat-00001`.
pub fn prompt_name(index: usize) -> String {
    format!("bench/chat-{index:05}")
}

/// The template of version `revision`. Revisions differ only in the policy revision line,
/// so every version has its own content hash, as real edits do.
pub fn template(revision: u32) -> Template {
    let system = format!(
        "You are Aria, the customer-support assistant of Northwind Outfitters, an online \
         retailer of outdoor clothing and camping gear. Answer in the customer's language, in \
         a warm and concise tone, in at most three short paragraphs. Never invent order \
         details, prices, delivery dates or policies: use only the facts given below, and say \
         plainly when you do not know. Refunds are possible within 30 days of delivery for \
         unused items in their original packaging; store credit is offered after that, up to \
         90 days. Never ask for a full card number or a password. If the customer is angry, \
         acknowledge the problem first, then propose one concrete next step. Escalate to a \
         human agent when the customer mentions a safety issue, a legal threat or a charge \
         they do not recognise. (Support policy revision {revision}.)"
    );
    let user = "Customer: {{ customer_name }}\n\
                Order total: {{ order_total }} EUR\n\
                Items in the order:\n\
                {% for item in recent_items %}- {{ item }}\n{% endfor %}\
                The customer asks where the order is and whether one item can still be \
                exchanged for another size. Write the first reply."
        .to_owned();
    Template::Chat {
        messages: vec![
            ChatMessage::Message {
                role: "system".to_owned(),
                content: system,
            },
            ChatMessage::Message {
                role: "user".to_owned(),
                content: user,
            },
        ],
    }
}

/// The declared variables: a string, a number and a list.
pub fn variables() -> Vec<VariableSpec> {
    let spec = |name: &str, var_type: VarType, description: &str| VariableSpec {
        name: name.to_owned(),
        var_type,
        required: true,
        default: None,
        allowed: None,
        description: Some(description.to_owned()),
    };
    vec![
        spec(
            "customer_name",
            VarType::String,
            "the customer's display name",
        ),
        spec("order_total", VarType::Number, "order total in EUR"),
        spec("recent_items", VarType::List, "product names in the order"),
    ]
}

pub fn model_config() -> Value {
    json!({ "model": "gpt-4o-mini", "temperature": 0.3, "max_tokens": 400 })
}

/// The variables every benchmark render sends.
pub fn render_variables() -> Value {
    json!({
        "customer_name": "Dana Whitfield",
        "order_total": 184.5,
        "recent_items": ["Trailblazer 40L backpack", "Merino base layer (M)", "Titanium spork"]
    })
}

/// The JSON body of `POST /api/v1/render` for `prompt` at [`LABEL`].
pub fn render_body(prompt: &str) -> String {
    json!({ "name": prompt, "label": LABEL, "variables": render_variables() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_core::hash::content_hash;

    #[test]
    fn revisions_hash_differently_and_the_body_names_the_prompt() {
        let a = content_hash(&template(1), &variables(), &model_config());
        let b = content_hash(&template(2), &variables(), &model_config());
        assert_ne!(a, b);
        let body: Value = serde_json::from_str(&render_body(&prompt_name(7))).unwrap();
        assert_eq!(body["name"], "bench/chat-00007");
        assert_eq!(body["label"], LABEL);
        assert_eq!(
            body["variables"]["recent_items"].as_array().map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn every_declared_variable_is_sent() {
        let sent = render_variables();
        for spec in variables() {
            assert!(sent.get(&spec.name).is_some(), "{} not sent", spec.name);
        }
    }
}
