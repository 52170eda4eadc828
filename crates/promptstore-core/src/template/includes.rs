//! Include references: finding `{% include "name@label" %}` statements in a template and
//! parsing the reference, so the dependency graph is known when a version is saved.
//!
//! The statements are found with minijinja's own lexer, so raw blocks, comments, string
//! escapes and whitespace control (`{%- include ... -%}`) are read exactly as the engine
//! reads them. Only a single string literal is accepted as target: a computed target would
//! make the graph unknowable. `extends`, `import` and `from` are refused: prompts compose
//! by include only.

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;
use promptstore_types::IncludeRef;

use crate::names::{validate_label_name, validate_prompt_name};

/// A problem with an include statement, located by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IncludeProblem {
    pub line: usize,
    pub detail: String,
}

/// Parses `name@label` or `name@3` into a reference. The error says what is wrong.
pub fn parse_include_ref(reference: &str) -> Result<IncludeRef, String> {
    let Some((prompt, selector)) = reference.rsplit_once('@') else {
        return Err(format!(
            "include reference \"{reference}\" needs a label or version: write \"{reference}@production\" or \"{reference}@3\""
        ));
    };
    validate_prompt_name(prompt).map_err(|e| format!("include reference \"{reference}\": {e}"))?;
    if !selector.is_empty() && selector.bytes().all(|b| b.is_ascii_digit()) {
        return match selector.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(IncludeRef {
                prompt: prompt.to_owned(),
                label: None,
                version: Some(n),
            }),
            _ => Err(format!(
                "include reference \"{reference}\": version numbers start at 1 and must fit 32 bits"
            )),
        };
    }
    validate_label_name(selector).map_err(|e| format!("include reference \"{reference}\": {e}"))?;
    Ok(IncludeRef {
        prompt: prompt.to_owned(),
        label: Some(selector.to_owned()),
        version: None,
    })
}

/// The text form of a reference: `name@label` or `name@3`.
pub fn format_include_ref(r: &IncludeRef) -> String {
    match (&r.label, r.version) {
        (Some(label), _) => format!("{}@{label}", r.prompt),
        (None, Some(n)) => format!("{}@{n}", r.prompt),
        (None, None) => r.prompt.clone(),
    }
}

/// Finds the include references of one template source, in order of appearance, each with
/// its line. Call on a source that compiled: lexer errors are reported as problems anyway.
pub(crate) fn find_includes(source: &str) -> Result<Vec<(IncludeRef, usize)>, IncludeProblem> {
    #[derive(Clone, Copy)]
    enum State {
        Normal,
        /// Just after `{%`.
        StatementStart,
        /// After `{% include`.
        IncludeTarget {
            line: usize,
        },
        /// After `{% include "..."`; the target is pushed already.
        IncludeEnd {
            line: usize,
        },
    }
    let mut found = Vec::new();
    let mut state = State::Normal;
    for item in tokenize(source, false, SyntaxConfig::default()) {
        let (token, span) = item.map_err(|e| IncludeProblem {
            line: e.line().unwrap_or(0),
            detail: e.to_string(),
        })?;
        let line = span.start_line as usize;
        state = match (state, token) {
            (_, Token::BlockStart) => State::StatementStart,
            (State::StatementStart, Token::Ident("include")) => State::IncludeTarget { line },
            (State::StatementStart, Token::Ident(kw @ ("extends" | "import" | "from"))) => {
                return Err(IncludeProblem {
                    line,
                    detail: format!(
                        "'{kw}' is not supported: prompts compose with {{% include \"name@label\" %}} only"
                    ),
                });
            }
            (State::IncludeTarget { line }, Token::Str(s)) => {
                found.push((
                    parse_include_ref(s).map_err(|detail| IncludeProblem { line, detail })?,
                    line,
                ));
                State::IncludeEnd { line }
            }
            (State::IncludeTarget { line }, Token::String(s)) => {
                found.push((
                    parse_include_ref(&s).map_err(|detail| IncludeProblem { line, detail })?,
                    line,
                ));
                State::IncludeEnd { line }
            }
            (State::IncludeTarget { line }, _) => {
                return Err(IncludeProblem {
                    line,
                    detail: "the include target must be one string literal such as \"header@production\", \
                             so the dependency is known when the version is saved"
                        .to_owned(),
                });
            }
            (State::IncludeEnd { .. }, Token::BlockEnd) => State::Normal,
            (State::IncludeEnd { line }, _) => {
                return Err(IncludeProblem {
                    line,
                    detail: "write the include as {% include \"name@label\" %} with nothing after the reference \
                             (no expressions, 'ignore missing' or context modifiers)"
                        .to_owned(),
                });
            }
            (_, _) => State::Normal,
        };
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(prompt: &str, label: Option<&str>, version: Option<u32>) -> IncludeRef {
        IncludeRef {
            prompt: prompt.into(),
            label: label.map(Into::into),
            version,
        }
    }

    #[test]
    fn parses_references() {
        let ok = [
            ("header@production", r("header", Some("production"), None)),
            ("support/header@3", r("support/header", None, Some(3))),
        ];
        for (input, want) in ok {
            assert_eq!(parse_include_ref(input), Ok(want));
        }
        let bad = [
            ("header", "needs a label or version"),
            ("a@b@latest", "invalid prompt name"),
            ("header@0", "start at 1"),
            ("header@99999999999", "32 bits"),
            ("header@Prod", "lowercase"),
            ("header@", "must not be empty"),
            ("@prod", "must not be empty"),
        ];
        for (input, fragment) in bad {
            let err = parse_include_ref(input).unwrap_err();
            assert!(err.contains(fragment), "{input}: {err}");
        }
        assert_eq!(
            format_include_ref(&r("a/b", Some("prod"), None)),
            "a/b@prod"
        );
        assert_eq!(format_include_ref(&r("a/b", None, Some(7))), "a/b@7");
    }

    fn check(source: &str, expected: Result<Vec<(&str, usize)>, (usize, &str)>) {
        let got = find_includes(source);
        match (got, expected) {
            (Ok(got), Ok(want)) => {
                let got: Vec<(String, usize)> = got
                    .iter()
                    .map(|(r, l)| (format_include_ref(r), *l))
                    .collect();
                let want: Vec<(String, usize)> =
                    want.iter().map(|(s, l)| (s.to_string(), *l)).collect();
                assert_eq!(got, want, "{source}");
            }
            (Err(p), Err((line, fragment))) => {
                assert_eq!(p.line, line, "{source}: {p:?}");
                assert!(p.detail.contains(fragment), "{source}: {p:?}");
            }
            (got, want) => panic!("{source}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn finds_includes() {
        check("no includes {{ x }}", Ok(vec![]));
        check(
            "{% include \"h@production\" %}",
            Ok(vec![("h@production", 1)]),
        );
        check(
            "a\n{%- include 'x/y@2' -%}\n{% if c %}{% include \"z@beta\" %}{% endif %}",
            Ok(vec![("x/y@2", 2), ("z@beta", 3)]),
        );
        check("{% raw %}{% include \"x\" %}{% endraw %}", Ok(vec![]));
        check("{# {% include x %} #}", Ok(vec![]));
        check("{{ 'include' }}{% set include = 1 %}", Ok(vec![]));
        check("{% include \"h\" %}", Err((1, "needs a label or version")));
        check("\n{% include name %}", Err((2, "one string literal")));
        check("{% include \"a@prod\" ~ x %}", Err((1, "nothing after")));
        check(
            "{% include \"a@prod\" ignore missing %}",
            Err((1, "nothing after")),
        );
        check("{% include [\"a@prod\"] %}", Err((1, "one string literal")));
        check(
            "{% extends \"base@prod\" %}",
            Err((1, "'extends' is not supported")),
        );
        check(
            "{% import \"m@prod\" as m %}",
            Err((1, "'import' is not supported")),
        );
        check(
            "{% from \"m@prod\" import f %}",
            Err((1, "'from' is not supported")),
        );
    }
}
