//! Validated names: prompt names, label names, tags, project and key names.
//!
//! Names are parsed once at the edge (`PromptName::parse`) and then passed around as types,
//! so no function deeper in the domain has to wonder whether a name is well-formed. Every
//! refusal is `ErrorCode::InvalidName` with a message that states the rule that was broken.

use promptstore_types::ErrorCode;
use serde_json::json;

use crate::error::{Error, Result};

/// Longest prompt name, in characters (all allowed characters are ASCII).
pub const MAX_PROMPT_NAME_LEN: usize = 200;
/// Longest label name: the first letter plus up to 62 more characters.
pub const MAX_LABEL_NAME_LEN: usize = 63;
/// Longest tag, in characters.
pub const MAX_TAG_LEN: usize = 64;
/// Longest project or API key name, in characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 100;

fn invalid(kind: &str, name: &str, rule: impl std::fmt::Display) -> Error {
    Error::rejected(
        ErrorCode::InvalidName,
        format!("invalid {kind} name '{}': {rule}", shorten(name)),
    )
    .with_details(json!({ "kind": kind, "name": name }))
}

/// Quote at most 80 characters of a rejected name in messages, so a 1 MB "name" does not
/// come back whole in the error.
fn shorten(name: &str) -> String {
    if name.chars().count() <= 80 {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(80).collect();
        s.push('…');
        s
    }
}

/// A prompt name: path-like segments (`support/triage`), each `[A-Za-z0-9][A-Za-z0-9._-]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PromptName(String);

impl PromptName {
    /// Checks the rules: 1..=200 characters, `/`-separated segments, no empty segment (so no
    /// leading, trailing or doubled slash), each segment starting with a letter or digit and
    /// made of letters, digits, `.`, `_` and `-` (so `..` and `.hidden` are refused).
    pub fn parse(name: &str) -> Result<PromptName> {
        validate_prompt_name(name)?;
        Ok(PromptName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for PromptName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PromptName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates a prompt name without allocating (see [`PromptName::parse`] for the rules).
pub fn validate_prompt_name(name: &str) -> Result<()> {
    const KIND: &str = "prompt";
    if name.is_empty() {
        return Err(invalid(KIND, name, "a name must not be empty"));
    }
    if name.len() > MAX_PROMPT_NAME_LEN {
        return Err(invalid(
            KIND,
            name,
            format_args!("at most {MAX_PROMPT_NAME_LEN} characters are allowed"),
        ));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(invalid(KIND, name, "a name must not start or end with '/'"));
    }
    for segment in name.split('/') {
        let mut chars = segment.chars();
        let Some(first) = chars.next() else {
            return Err(invalid(
                KIND,
                name,
                "segments between '/' must not be empty",
            ));
        };
        if segment == ".." {
            return Err(invalid(KIND, name, "'..' segments are not allowed"));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(invalid(
                KIND,
                name,
                format_args!(
                    "segment '{}' must start with a letter or digit",
                    shorten(segment)
                ),
            ));
        }
        if let Some(bad) =
            chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(invalid(
                KIND,
                name,
                format_args!(
                    "character {bad:?} is not allowed; use letters, digits, '.', '_', '-' and '/' between segments"
                ),
            ));
        }
    }
    Ok(())
}

/// A label name: `[a-z][a-z0-9_-]{0,62}` (`production`, `staging`, `canary-eu`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelName(String);

impl LabelName {
    pub fn parse(name: &str) -> Result<LabelName> {
        validate_label_name(name)?;
        Ok(LabelName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this is the automatically maintained `latest` label (valid as a name, but
    /// only the store moves it).
    pub fn is_latest(&self) -> bool {
        self.0 == crate::model::LATEST_LABEL
    }
}

impl std::fmt::Display for LabelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LabelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates a label name without allocating (see [`LabelName`] for the rule).
pub fn validate_label_name(name: &str) -> Result<()> {
    const KIND: &str = "label";
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(invalid(KIND, name, "a name must not be empty"));
    };
    if !first.is_ascii_lowercase() {
        return Err(invalid(
            KIND,
            name,
            "a label must start with a lowercase letter a-z",
        ));
    }
    if name.len() > MAX_LABEL_NAME_LEN {
        return Err(invalid(
            KIND,
            name,
            format_args!("at most {MAX_LABEL_NAME_LEN} characters are allowed"),
        ));
    }
    if let Some(bad) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
    {
        return Err(invalid(
            KIND,
            name,
            format_args!("character {bad:?} is not allowed; use a-z, 0-9, '_' and '-'"),
        ));
    }
    Ok(())
}

/// Validates a tag: 1..=64 characters, no whitespace and no control characters.
pub fn validate_tag(tag: &str) -> Result<()> {
    const KIND: &str = "tag";
    if tag.is_empty() {
        return Err(invalid(KIND, tag, "a tag must not be empty"));
    }
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(invalid(
            KIND,
            tag,
            format_args!("at most {MAX_TAG_LEN} characters are allowed"),
        ));
    }
    if let Some(bad) = tag.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            KIND,
            tag,
            format_args!("whitespace and control characters ({bad:?}) are not allowed"),
        ));
    }
    Ok(())
}

/// Validates every tag of a list.
pub fn validate_tags(tags: &[String]) -> Result<()> {
    tags.iter().try_for_each(|t| validate_tag(t))
}

fn validate_display_name(kind: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid(
            kind,
            name,
            "a name must not be empty or only whitespace",
        ));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_LEN {
        return Err(invalid(
            kind,
            name,
            format_args!("at most {MAX_DISPLAY_NAME_LEN} characters are allowed"),
        ));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(
            kind,
            name,
            format_args!("control characters ({bad:?}) are not allowed"),
        ));
    }
    Ok(())
}

/// Validates a project name: 1..=100 printable characters (spaces allowed, not only spaces).
pub fn validate_project_name(name: &str) -> Result<()> {
    validate_display_name("project", name)
}

/// Validates an API key name: 1..=100 printable characters (spaces allowed, not only spaces).
pub fn validate_key_name(name: &str) -> Result<()> {
    validate_display_name("key", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: `None` = valid, `Some(fragment)` = refused with a message containing it.
    fn check(validate: fn(&str) -> Result<()>, input: &str, expected: Option<&str>) {
        let got = validate(input);
        match (got, expected) {
            (Ok(()), None) => {}
            (Err(e), Some(fragment)) => {
                assert_eq!(e.code(), ErrorCode::InvalidName, "{input:?}");
                let msg = e.to_string();
                assert!(
                    msg.contains(fragment),
                    "{input:?}: message {msg:?} lacks {fragment:?}"
                );
            }
            (got, expected) => panic!("{input:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn prompt_names() {
        let long = "a".repeat(200);
        let too_long = "a".repeat(201);
        let cases: &[(&str, Option<&str>)] = &[
            ("triage", None),
            ("support/triage", None),
            ("Support/v1.2/triage_bot-x", None),
            ("0day", None),
            (&long, None),
            ("", Some("must not be empty")),
            (&too_long, Some("at most 200")),
            ("/triage", Some("start or end with '/'")),
            ("triage/", Some("start or end with '/'")),
            ("a//b", Some("must not be empty")),
            ("a/../b", Some("'..' segments")),
            ("a/.hidden", Some("must start with a letter or digit")),
            ("-x", Some("must start with a letter or digit")),
            ("a b", Some("' ' is not allowed")),
            ("a@b", Some("'@' is not allowed")),
            ("é", Some("must start with a letter or digit")),
            ("ab\u{0}", Some("is not allowed")),
        ];
        for (input, expected) in cases {
            check(validate_prompt_name, input, *expected);
        }
        assert_eq!(PromptName::parse("a/b").unwrap().as_str(), "a/b");
    }

    #[test]
    fn label_names() {
        let long = format!("a{}", "b".repeat(62));
        let too_long = format!("a{}", "b".repeat(63));
        let cases: &[(&str, Option<&str>)] = &[
            ("production", None),
            ("canary-eu_2", None),
            ("latest", None),
            ("a", None),
            (&long, None),
            ("", Some("must not be empty")),
            (&too_long, Some("at most 63")),
            ("Production", Some("lowercase letter")),
            ("1prod", Some("lowercase letter")),
            ("prod.eu", Some("'.' is not allowed")),
            ("prod eu", Some("' ' is not allowed")),
        ];
        for (input, expected) in cases {
            check(validate_label_name, input, *expected);
        }
        assert!(LabelName::parse("latest").unwrap().is_latest());
        assert!(!LabelName::parse("production").unwrap().is_latest());
    }

    #[test]
    fn tags_and_display_names() {
        let tag64 = "t".repeat(64);
        let tag65 = "t".repeat(65);
        let tag_cases: &[(&str, Option<&str>)] = &[
            ("billing", None),
            ("team:support", None),
            ("héllo", None),
            (&tag64, None),
            ("", Some("must not be empty")),
            (&tag65, Some("at most 64")),
            ("two words", Some("whitespace")),
            ("tab\t", Some("whitespace")),
            ("bell\u{7}", Some("control")),
        ];
        for (input, expected) in tag_cases {
            check(validate_tag, input, *expected);
        }
        let name100 = "n".repeat(100);
        let name101 = "n".repeat(101);
        let name_cases: &[(&str, Option<&str>)] = &[
            ("Acme support", None),
            (&name100, None),
            ("", Some("must not be empty")),
            ("   ", Some("only whitespace")),
            (&name101, Some("at most 100")),
            ("line\nbreak", Some("control")),
        ];
        for (input, expected) in name_cases {
            check(validate_project_name, input, *expected);
            check(validate_key_name, input, *expected);
        }
        assert!(validate_tags(&["a".into(), "b c".into()]).is_err());
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let huge = "x y".repeat(10_000);
        let msg = validate_prompt_name(&huge).unwrap_err().to_string();
        assert!(msg.len() < 300, "{msg}");
    }
}
