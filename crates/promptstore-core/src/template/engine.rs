//! The sandboxed minijinja engine: one place that configures the environment, bounds the
//! work and the output of a render, converts variables, and maps engine errors to ours.
//!
//! The sandbox: no filesystem loader (templates come only from prompts, through the runtime
//! snapshot), no `debug()` global, no auto-escaping, no custom functions — a template sees
//! its variables and minijinja's builtin filters, tests and the `range`/`dict`/`namespace`
//! helpers, nothing else. Work is bounded by fuel, output by a writer that refuses to grow
//! past the limit, nesting by the recursion limit and the include depth.

use std::collections::BTreeMap;
use std::io;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use promptstore_types::ErrorCode;
use serde_json::json;

use crate::error::{Error, Result};
use crate::variables::CheckedVariables;

/// Bounds on one render. A render over any of them fails with `render_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Engine work units (roughly one per executed instruction), shared by a template and
    /// its includes; for chat prompts the budget applies to each message. The default,
    /// 200,000, renders any sane prompt (a 1,000-item loop with a dozen instructions per
    /// item uses ~12,000) and stops a runaway loop within milliseconds.
    pub fuel: u64,
    /// Total bytes of rendered output (all messages of a chat prompt together, placeholder
    /// messages excluded). Default 1 MiB.
    pub max_output_bytes: usize,
    /// How deep includes may nest (`a` includes `b` includes `c` is depth 2). Default 10.
    pub max_include_depth: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            fuel: 200_000,
            max_output_bytes: 1024 * 1024,
            max_include_depth: 10,
        }
    }
}

/// minijinja's nesting budget (an include costs 10, a macro call 4): deep enough for real
/// templates, shallow enough that a recursive macro stops long before the stack is at risk.
const RECURSION_LIMIT: usize = 200;

/// Globals that `Environment::new` installs and the sandbox removes. `debug()` dumps the
/// whole render context and engine state into the output.
const REMOVED_GLOBALS: &[&str] = &["debug"];

/// Globals that remain; they are never reported as undeclared variables.
pub(crate) const BUILTIN_GLOBALS: &[&str] = &["range", "dict", "namespace"];

/// A configured environment without templates or loader.
pub(crate) fn sandboxed_environment(limits: &RenderLimits) -> Environment<'static> {
    let mut env = Environment::new();
    for name in REMOVED_GLOBALS {
        env.remove_global(name);
    }
    // Debug info keeps a copy of the source and context in every error; we report the line
    // ourselves and do not want the cost on the hot path.
    env.set_debug(false);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Prompt names may end in `.html`; prompts are text for a model, never HTML.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_fuel(Some(limits.fuel));
    env
}

/// The engine name of a version's template: `name@3`, or `name@3#0` for a chat message.
/// `#` cannot appear in an include reference, so users cannot address message templates.
pub(crate) fn template_name(prompt: &str, number: u32, message: Option<usize>) -> String {
    match message {
        Some(i) => format!("{prompt}@{number}#{i}"),
        None => format!("{prompt}@{number}"),
    }
}

/// Converts a JSON value to an engine value without going through serde.
pub(crate) fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// The render context: the checked variables as one map.
pub(crate) fn context(vars: &CheckedVariables<'_>) -> Value {
    Value::from(
        vars.iter()
            .map(|(k, v)| (k.to_owned(), json_to_value(v)))
            .collect::<BTreeMap<String, Value>>(),
    )
}

/// An output sink that refuses to grow past a byte budget shared by several renders.
struct LimitedWriter<'b> {
    buf: Vec<u8>,
    remaining: &'b mut usize,
    overflowed: bool,
}

impl io::Write for LimitedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.len() > *self.remaining {
            self.overflowed = true;
            return Err(io::Error::other("render output limit reached"));
        }
        *self.remaining -= data.len();
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `source` is plain text to the engine: no `{{`, `{%` or `{#` start marker (the
/// sandbox uses the default syntax, without line statements or custom delimiters). Such a
/// template renders to itself, so the runtime serves it without compiling it: a compiled
/// template costs the engine about 12 KiB however short it is (it reserves room for 256
/// instructions and 128 line and span records), most of it for nothing in a static system
/// message.
pub(crate) fn is_plain_text(source: &str) -> bool {
    let bytes = source.as_bytes();
    !bytes
        .windows(2)
        .any(|w| w[0] == b'{' && matches!(w[1], b'{' | b'%' | b'#'))
}

/// What the engine outputs for a plain-text template: the source without one trailing
/// `\n` and then one trailing `\r`, exactly as its lexer trims a template when
/// `keep_trailing_newline` is off (the default the sandbox keeps).
pub(crate) fn plain_text_output(source: &str) -> &str {
    let source = source.strip_suffix('\n').unwrap_or(source);
    source.strip_suffix('\r').unwrap_or(source)
}

/// Renders a plain-text template (see [`is_plain_text`]) named `name`, charging its output
/// to `remaining` like [`render_named`] does.
pub(crate) fn render_plain(
    name: &str,
    source: &str,
    remaining: &mut usize,
    limits: &RenderLimits,
) -> Result<String> {
    let out = plain_text_output(source);
    if out.len() > *remaining {
        return Err(output_limit_error(name, limits));
    }
    *remaining -= out.len();
    Ok(out.to_owned())
}

pub(crate) fn output_limit_error(top: &str, limits: &RenderLimits) -> Error {
    Error::rejected(
        ErrorCode::RenderLimit,
        format!(
            "rendering '{top}' produced more than {} bytes of output",
            limits.max_output_bytes
        ),
    )
    .with_details(json!({ "limit": "output_bytes", "max": limits.max_output_bytes }))
}

/// Renders the template `name` of `env` with `ctx`, charging its output to `remaining`.
pub(crate) fn render_named(
    env: &Environment<'static>,
    name: &str,
    ctx: &Value,
    remaining: &mut usize,
    limits: &RenderLimits,
) -> Result<String> {
    let tmpl = env
        .get_template(name)
        .map_err(|e| render_error(env, name, "", &e, false, limits))?;
    render_template(env, &tmpl, ctx, remaining, limits)
}

/// Renders a compiled template (named or not) of `env`, charging its output to `remaining`.
pub(crate) fn render_template(
    env: &Environment<'static>,
    tmpl: &minijinja::Template<'_, '_>,
    ctx: &Value,
    remaining: &mut usize,
    limits: &RenderLimits,
) -> Result<String> {
    let mut out = LimitedWriter {
        buf: Vec::with_capacity(tmpl.source().len() + 64),
        remaining,
        overflowed: false,
    };
    match tmpl.render_captured_to(ctx.clone(), &mut out) {
        Ok(_) => String::from_utf8(out.buf).map_err(|_| {
            // The engine writes UTF-8 text only; kept as an error rather than a panic.
            Error::rejected(
                ErrorCode::RenderFailed,
                format!("rendering '{}' produced invalid UTF-8", tmpl.name()),
            )
        }),
        Err(e) => {
            let overflowed = out.overflowed;
            Err(render_error(
                env,
                tmpl.name(),
                tmpl.source(),
                &e,
                overflowed,
                limits,
            ))
        }
    }
}

/// The innermost engine error: an error inside an include is wrapped by the include's.
fn innermost(err: &minijinja::Error) -> &minijinja::Error {
    let mut cur = err;
    while let Some(next) =
        std::error::Error::source(cur).and_then(|s| s.downcast_ref::<minijinja::Error>())
    {
        cur = next;
    }
    cur
}

fn chain_has(err: &minijinja::Error, kind: ErrorKind) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.kind() == kind {
            return true;
        }
        cur = std::error::Error::source(e).and_then(|s| s.downcast_ref::<minijinja::Error>());
    }
    false
}

/// Maps a render failure to `render_limit` (fuel, output) or `render_failed` with
/// `{template, line, detail}` and, where the engine located it, the failing `expression`.
pub(crate) fn render_error(
    env: &Environment<'static>,
    top: &str,
    top_source: &str,
    err: &minijinja::Error,
    output_overflowed: bool,
    limits: &RenderLimits,
) -> Error {
    if output_overflowed {
        return output_limit_error(top, limits);
    }
    if chain_has(err, ErrorKind::OutOfFuel) {
        return Error::rejected(
            ErrorCode::RenderLimit,
            format!(
                "rendering '{top}' took more than the allowed {} units of work (a runaway loop?)",
                limits.fuel
            ),
        )
        .with_details(json!({ "limit": "fuel", "max": limits.fuel }));
    }
    let inner = innermost(err);
    // Nesting (recursive macros, deep includes) is runaway work like a loop without end.
    if inner.kind() == ErrorKind::InvalidOperation
        && inner
            .detail()
            .is_some_and(|d| d.contains("recursion limit"))
    {
        return Error::rejected(
            ErrorCode::RenderLimit,
            format!(
                "rendering '{}' nested macro calls or includes too deeply (recursion limit)",
                display_name(top)
            ),
        )
        .with_details(json!({ "limit": "recursion", "max": RECURSION_LIMIT }));
    }
    let template = inner.name().unwrap_or(top).to_owned();
    let line = inner.line();
    let detail = match inner.detail() {
        Some(d) => format!("{}: {d}", inner.kind()),
        None => inner.kind().to_string(),
    };
    // The failing expression, cut from the source by the span the engine reports: this is
    // what tells the author *which* name was undefined.
    let expression = inner.range().and_then(|r| {
        if template == top {
            return top_source.get(r).map(|s| s.trim().to_owned());
        }
        let tmpl = env.get_template(&template).ok()?;
        tmpl.source().get(r).map(|s| s.trim().to_owned())
    });
    let mut message = format!("rendering '{}' failed", display_name(top));
    if template != top {
        message.push_str(&format!(" in included '{}'", display_name(&template)));
    }
    if let Some(line) = line {
        message.push_str(&format!(" at line {line}"));
    }
    message.push_str(": ");
    message.push_str(&detail);
    if let Some(expr) = &expression {
        if inner.kind() == ErrorKind::UndefinedError {
            message.push_str(&format!(
                " (`{expr}` is undefined: declare it, give it, or guard it with `{{% if %}}`)"
            ));
        } else {
            message.push_str(&format!(" (in `{expr}`)"));
        }
    }
    Error::rejected(ErrorCode::RenderFailed, message).with_details(json!({
        "template": display_name(&template),
        "line": line,
        "detail": detail,
        "expression": expression,
    }))
}

/// Engine names of chat messages (`p@3#1`) shown to people as `p@3 (message 1)`.
fn display_name(name: &str) -> String {
    match name.rsplit_once('#') {
        Some((base, i)) => format!("{base} (message {i})"),
        None => name.to_owned(),
    }
}

/// A compile (syntax) error as `template_syntax` with `{line, message_index?, detail}`.
pub(crate) fn syntax_error(err: &minijinja::Error, message_index: Option<usize>) -> Error {
    let detail = match err.detail() {
        Some(d) => format!("{}: {d}", err.kind()),
        None => err.kind().to_string(),
    };
    let line = err.line();
    let place = match (message_index, line) {
        (Some(i), Some(l)) => format!("message {i}, line {l}"),
        (Some(i), None) => format!("message {i}"),
        (None, Some(l)) => format!("line {l}"),
        (None, None) => "the template".to_owned(),
    };
    let mut details = json!({ "line": line, "detail": detail });
    if let Some(i) = message_index {
        details["message_index"] = json!(i);
    }
    Error::rejected(
        ErrorCode::TemplateSyntax,
        format!("template syntax error at {place}: {detail}"),
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(
        limits: &RenderLimits,
        templates: &[(&'static str, &'static str)],
    ) -> Environment<'static> {
        let mut env = sandboxed_environment(limits);
        for (name, src) in templates {
            env.add_template(name, src).unwrap();
        }
        env
    }

    fn render(limits: RenderLimits, src: &'static str, ctx: serde_json::Value) -> Result<String> {
        let env = env_with(&limits, &[("t@1", src)]);
        let mut remaining = limits.max_output_bytes;
        let vars = ctx.as_object().cloned().unwrap_or_default();
        let checked = crate::variables::check_variables(&[], &vars).unwrap();
        render_named(&env, "t@1", &context(&checked), &mut remaining, &limits)
    }

    #[test]
    fn renders_with_builtin_filters_and_semistrict_undefined() {
        let cases = [
            ("Hi {{ name | upper }}!", json!({"name": "ada"}), "Hi ADA!"),
            (
                "{% if missing %}yes{% else %}no{% endif %}",
                json!({}),
                "no",
            ),
            (
                "{% for x in xs %}{{ loop.index }}{{ x }}{% endfor %}",
                json!({"xs": ["a", "b"]}),
                "1a2b",
            ),
            (
                "{{ obj.k }} {{ n + 1 }} {{ f }}",
                json!({"obj": {"k": "v"}, "n": 41, "f": 1.5}),
                "v 42 1.5",
            ),
            (
                "{{ data | tojson }}",
                json!({"data": {"b": [1, null, true]}}),
                r#"{"b": [1, null, true]}"#,
            ),
            ("{{ '<b>' }}", json!({}), "<b>"),
            (
                "{% set ns = namespace(c=0) %}{% for i in range(3) %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}",
                json!({}),
                "3",
            ),
        ];
        for (src, ctx, want) in cases {
            assert_eq!(
                render(RenderLimits::default(), src, ctx).unwrap(),
                want,
                "{src}"
            );
        }
    }

    #[test]
    fn failures_map_to_codes_with_lines() {
        // (template, code, message fragment, line)
        let cases: [(&'static str, ErrorCode, &str, Option<usize>); 5] = [
            (
                "line1\n{{ nope }}",
                ErrorCode::RenderFailed,
                "`nope` is undefined",
                Some(2),
            ),
            ("{{ debug() }}", ErrorCode::RenderFailed, "debug", Some(1)),
            (
                "a\nb\n{{ 1 / 0 }}",
                ErrorCode::RenderFailed,
                "line 3",
                Some(3),
            ),
            (
                "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
                ErrorCode::RenderLimit,
                "units of work",
                None,
            ),
            (
                "{% for i in range(10000) %}{{ big }}{% endfor %}",
                ErrorCode::RenderLimit,
                "bytes of output",
                None,
            ),
        ];
        for (src, code, fragment, line) in cases {
            let err = render(
                RenderLimits::default(),
                src,
                json!({"big": "x".repeat(1000)}),
            )
            .unwrap_err();
            assert_eq!(err.code(), code, "{src}: {err}");
            assert!(err.to_string().contains(fragment), "{src}: {err}");
            if let Some(line) = line {
                assert_eq!(err.to_body().details["line"], line, "{src}: {err}");
            }
        }
    }

    #[test]
    fn recursive_macro_is_stopped() {
        let err = render(
            RenderLimits::default(),
            "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
            json!({}),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RenderLimit, "{err}");
        assert_eq!(err.to_body().details["limit"], "recursion");
    }

    #[test]
    fn output_budget_is_exact() {
        let limits = RenderLimits {
            max_output_bytes: 5,
            ..RenderLimits::default()
        };
        assert_eq!(
            render(limits, "{{ s }}", json!({"s": "12345"})).unwrap(),
            "12345"
        );
        assert_eq!(
            render(limits, "{{ s }}", json!({"s": "123456"}))
                .unwrap_err()
                .code(),
            ErrorCode::RenderLimit
        );
    }

    #[test]
    fn plain_text_renders_exactly_as_the_engine_does() {
        let plain = [
            "",
            "a",
            "\n",
            "\r",
            "\r\n",
            "\n\n",
            "\n\r",
            "text\n",
            "text\r\n",
            "text\n\n",
            "  spaced  \n ",
            "braces { } {x} }} %} #} {-",
            "ünïcødé ✓ 你好\n",
            "ends with a brace {",
            "json {\"a\": 1}",
        ];
        for src in plain {
            assert!(is_plain_text(src), "{src:?}");
            let env = sandboxed_environment(&RenderLimits::default());
            let engine = env
                .template_from_str(src)
                .and_then(|t| t.render(()))
                .unwrap();
            assert_eq!(plain_text_output(src), engine, "{src:?}");
            let mut remaining = 100;
            let out = render_plain("t@1", src, &mut remaining, &RenderLimits::default()).unwrap();
            assert_eq!(out, engine);
            assert_eq!(remaining, 100 - engine.len());
        }
        for src in ["{{ x }}", "a {% if %}", "{# c #}", "{{-", "x{%-", "{#"] {
            assert!(!is_plain_text(src), "{src:?}");
        }
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let env = sandboxed_environment(&RenderLimits::default());
        let err = env
            .template_from_named_str("t", "ok\n{% if x %}\nno end")
            .unwrap_err();
        let e = syntax_error(&err, Some(2));
        assert_eq!(e.code(), ErrorCode::TemplateSyntax);
        let details = e.to_body().details;
        assert_eq!(details["message_index"], 2);
        assert!(details["line"].as_u64().is_some(), "{details}");
        assert!(
            e.to_string()
                .starts_with("template syntax error at message 2, line"),
            "{e}"
        );
    }
}
