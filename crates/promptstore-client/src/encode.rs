//! Percent-encoding of prompt names, labels and query values, so that a name such as
//! `support/triage` travels as one path segment (`support%2Ftriage`) and no reserved
//! character can change which route or parameter the server sees.

use std::fmt::Write as _;

use crate::error::ClientError;

/// Encodes `value` for a URL path segment or a query value: every byte except the RFC 3986
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Encodes one path segment, refusing values that cannot be sent as a segment at all:
/// an empty one would hit another route, and `.`/`..` are removed by URL normalization
/// (even when percent-encoded), so the request would silently go elsewhere.
pub fn path_segment(what: &str, value: &str) -> Result<String, ClientError> {
    if value.is_empty() {
        return Err(ClientError::InvalidArgument(format!(
            "the {what} must not be empty"
        )));
    }
    if value == "." || value == ".." {
        return Err(ClientError::InvalidArgument(format!(
            "`{value}` is not a valid {what}"
        )));
    }
    Ok(encode_component(value))
}

/// Builds a query string (`?a=1&b=x`) from pairs whose value is set; empty when none is.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if let Some(value) = value {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(&encode_component(key));
            out.push('=');
            out.push_str(&encode_component(&value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_reserved_character() {
        let check =
            |input: &str, expected: &str| assert_eq!(encode_component(input), expected, "{input}");
        check("support/triage", "support%2Ftriage");
        check("plain-name_1.2~x", "plain-name_1.2~x");
        check("a b", "a%20b");
        check("a?b#c", "a%3Fb%23c");
        check("a%2Fb", "a%252Fb");
        check("a&b=c+d", "a%26b%3Dc%2Bd");
        check(":@!$'()*,;[]", "%3A%40%21%24%27%28%29%2A%2C%3B%5B%5D");
        check("é", "%C3%A9");
        check("", "");
    }

    #[test]
    fn refuses_segments_that_cannot_be_sent() {
        assert!(path_segment("prompt name", "").is_err());
        assert!(path_segment("prompt name", ".").is_err());
        assert!(path_segment("prompt name", "..").is_err());
        assert_eq!(
            path_segment("prompt name", "a/..").ok().as_deref(),
            Some("a%2F..")
        );
    }

    #[test]
    fn query_skips_unset_values() {
        let q = query_string([
            ("label", Some("prod/eu".to_string())),
            ("version", None),
            ("q", Some("a b".into())),
        ]);
        assert_eq!(q, "?label=prod%2Feu&q=a%20b");
        assert_eq!(query_string([("x", None)]), "");
    }
}
