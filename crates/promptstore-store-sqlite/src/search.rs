//! The full-text index of prompts (FTS5): what goes into it, kept in step with the prompt in
//! the same transaction, and how a user's query becomes a safe MATCH expression.

use promptstore_core::store::StoreError;
use promptstore_types::{ChatMessage, Template};
use sqlx::SqliteConnection;

use crate::codec::from_json_text;
use crate::error::backend;

/// The searchable text of a template: the text, or every message content of a chat.
pub(crate) fn template_text(template: &Template) -> String {
    match template {
        Template::Text { text } => text.clone(),
        Template::Chat { messages } => messages
            .iter()
            .filter_map(|m| match m {
                ChatMessage::Message { content, .. } => Some(content.as_str()),
                ChatMessage::Placeholder { .. } => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Turn free text into an FTS5 expression that cannot be a syntax error: every word becomes
/// a quoted phrase (quotes doubled), all must match, and the last one matches as a prefix so
/// that search-as-you-type works. `None` when nothing searchable is left (no text filter).
pub(crate) fn match_expression(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    let (last, rest) = terms.split_last()?;
    let mut expr = rest.join(" ");
    if !expr.is_empty() {
        expr.push(' ');
    }
    expr.push_str(last);
    expr.push('*');
    Some(expr)
}

/// Rewrite the index entry of one prompt from its current row and newest version.
pub(crate) async fn reindex(conn: &mut SqliteConnection, prompt_pk: i64) -> Result<(), StoreError> {
    let (name, description, tags, template): (String, String, String, String) = sqlx::query_as(
        "SELECT p.name, p.description, p.tags, v.template FROM prompts p \
         JOIN versions v ON v.prompt_pk = p.pk AND v.number = p.latest_version WHERE p.pk = ?",
    )
    .bind(prompt_pk)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    let tags: Vec<String> = from_json_text("tags", &tags)?;
    let template: Template = from_json_text("template", &template)?;
    remove(conn, prompt_pk).await?;
    sqlx::query(
        "INSERT INTO prompts_fts (rowid, name, description, tags, template) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(prompt_pk)
    .bind(name)
    .bind(description)
    .bind(tags.join(" "))
    .bind(template_text(&template))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn remove(conn: &mut SqliteConnection, prompt_pk: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM prompts_fts WHERE rowid = ?")
        .bind(prompt_pk)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_quoted_terms_with_a_prefix_on_the_last() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("   ", None),
            ("*) OR (", Some("\"OR\"*")),
            ("*) ( ^", None),
            ("triage", Some("\"triage\"*")),
            ("refund  policy", Some("\"refund\" \"policy\"*")),
            (
                "say \"hi\" NEAR(",
                Some("\"say\" \"\"\"hi\"\"\" \"NEAR(\"*"),
            ),
            ("support/triage", Some("\"support/triage\"*")),
        ];
        for (input, expected) in cases {
            assert_eq!(match_expression(input).as_deref(), *expected, "{input}");
        }
    }

    #[test]
    fn chat_text_is_every_message_content() {
        let t = Template::Chat {
            messages: vec![
                ChatMessage::Message {
                    role: "system".into(),
                    content: "be kind".into(),
                },
                ChatMessage::Placeholder {
                    placeholder: "history".into(),
                },
                ChatMessage::Message {
                    role: "user".into(),
                    content: "{{ q }}".into(),
                },
            ],
        };
        assert_eq!(template_text(&t), "be kind\n{{ q }}");
    }
}
