//! The fast path for the simplest templates: literal text, `{{ name }}` and
//! `{% for x in list %}…{{ x }}…{% endfor %}`, rendered by concatenation instead of
//! through the engine.
//!
//! Most prompt templates are exactly that: text with a few variables and perhaps one list
//! printed item by item. For them the engine's work per render (a context map of engine
//! values, the template cache's lock, the VM with its frames and fuel accounting, an output
//! writer) costs several times the concatenation itself, and its compiled form ~12 KiB of
//! memory per template. A [`FastTemplate`] is the same template as a list of nodes.
//!
//! **The rule: the fast path answers only when its answer is the engine's, byte for byte;
//! otherwise it declines and the engine renders.** Concretely:
//! - the template is parsed by the engine's own parser (`minijinja::machinery::parse`, the
//!   default syntax the sandbox uses), so text, whitespace control (`{{-`, `-%}`), comments,
//!   raw blocks and the trailing newline come out exactly as the engine sees them; any
//!   statement or expression other than literal text, a plain variable, or a `for` loop
//!   without `else`, filter or recursion over a plain variable whose body holds only text
//!   and plain variables makes [`FastTemplate::compile`] decline;
//! - at render time every printed value must be a string, a number or a boolean (a list for
//!   the loop's iterable, of such items); a missing or other value declines (the engine then
//!   reports the undefined variable, prints `none`, a map or a list as it does);
//! - values are printed as the engine prints them (its `Value`'s `Display`, which is what
//!   the sandbox's `AutoEscape::None` output writes): strings as they are, integers in
//!   decimal, floats as Rust prints them with `.0` added when that has no `.`, booleans as
//!   `True`/`False` — written here without the engine's intermediate string;
//! - the output limit is charged the same way (all of the output, error when it would
//!   exceed what is left), and a render that could come near the engine's fuel budget
//!   declines, so the engine's `render_limit` errors stay the engine's;
//! - a render declines at the first value it does not print and throws away what it wrote:
//!   the engine, which writes in the same order, would have written the same until then,
//!   so the first failure (the output limit, or the engine's own) is the engine's.
//!
//! A differential test renders thousands of generated templates and values both ways.

use std::fmt::Write as _;

use minijinja::machinery::{self, ast};
use serde_json::Value;

use super::engine::{RenderLimits, output_limit_error};
use crate::error::Result;
use crate::variables::CheckedVariables;

/// Names the engine may bind by itself or treat specially: never looked up by the fast path
/// (a caller can pass an undeclared variable of that name; the engine decides what it means).
const ENGINE_NAMES: &[&str] = &["loop", "self", "super", "caller", "varargs", "kwargs"];

/// A template the fast path can render (see the module docs).
#[derive(Debug)]
pub(crate) struct FastTemplate {
    nodes: Box<[Node]>,
    /// Bytes of literal text outside loops, for the output's first allocation.
    text_len: usize,
    /// The fuel bound of everything but the loops' items.
    fuel: u64,
}

#[derive(Debug)]
enum Node {
    Text(Box<str>),
    Var(Box<str>),
    /// `{% for target in iter %}body{% endfor %}`; the body holds only text and variables.
    For {
        target: Box<str>,
        iter: Box<str>,
        body: Box<[Node]>,
        /// The fuel bound per item (and once more for the loop's end).
        per_item: u64,
    },
}

/// Fuel the engine charges, at most, per node (the code generator emits one `EmitRaw` per
/// text and a lookup and an emit per variable; a loop costs its iterable's lookup, and per
/// item an iterate, a store and a jump, plus the final iterate). A render declines unless
/// twice the bound stays under the budget: near the budget the engine decides.
const FUEL_TEXT: u64 = 1;
const FUEL_VAR: u64 = 2;
const FUEL_LOOP: u64 = 2;
const FUEL_PER_ITEM: u64 = 3;

/// Slack in the output's first allocation for printed values.
const VALUES_ROOM: usize = 128;

impl FastTemplate {
    /// The fast form of `source`, or `None` when the fast path does not cover it (the
    /// engine renders it then, and reports its syntax errors).
    pub(crate) fn compile(source: &str) -> Option<FastTemplate> {
        let parsed = machinery::parse(source, "<fast>", Default::default()).ok()?;
        let ast::Stmt::Template(template) = parsed else {
            return None;
        };
        let mut nodes = Vec::with_capacity(template.children.len());
        let (mut text_len, mut fuel) = (0, 0);
        for stmt in &template.children {
            let node = match stmt {
                ast::Stmt::ForLoop(for_loop) => compile_loop(for_loop)?,
                other => compile_simple(other)?,
            };
            fuel += match &node {
                Node::Text(text) => {
                    text_len += text.len();
                    FUEL_TEXT
                }
                Node::Var(_) => FUEL_VAR,
                Node::For { .. } => FUEL_LOOP,
            };
            nodes.push(node);
        }
        Some(FastTemplate {
            nodes: nodes.into_boxed_slice(),
            text_len,
            fuel,
        })
    }

    /// Renders with `vars`, charging the output to `remaining` as the engine does: `None`
    /// when a value is not one the fast path prints (the engine must render), else the
    /// engine's result. `name` is the template's engine name, for the limit error.
    pub(crate) fn render(
        &self,
        vars: &CheckedVariables<'_>,
        name: &str,
        remaining: &mut usize,
        limits: &RenderLimits,
    ) -> Option<Result<String>> {
        // The work is bounded first: it depends on the loops' lengths only.
        let mut fuel = self.fuel;
        for node in self.nodes.iter() {
            if let Node::For { iter, per_item, .. } = node {
                let Value::Array(items) = vars.get(iter)? else {
                    return None;
                };
                let rounds = u64::try_from(items.len()).ok()?.saturating_add(1);
                fuel = fuel.saturating_add(rounds.saturating_mul(*per_item));
            }
        }
        if fuel.saturating_mul(2) >= limits.fuel {
            return None;
        }

        let mut out = Output {
            buf: String::with_capacity((self.text_len + VALUES_ROOM).min(*remaining)),
            limit: *remaining,
        };
        for node in self.nodes.iter() {
            let written = match node {
                Node::Text(text) => out.text(text),
                Node::Var(var) => out.value(vars.get(var)?)?,
                Node::For {
                    target, iter, body, ..
                } => {
                    let Value::Array(items) = vars.get(iter)? else {
                        return None;
                    };
                    out.items(target, items, body, vars)?
                }
            };
            if !written {
                return Some(Err(output_limit_error(name, limits)));
            }
        }
        *remaining -= out.buf.len();
        Some(Ok(out.buf))
    }
}

/// Text or a plain variable (not one of the engine's own names), else `None`.
fn compile_simple(stmt: &ast::Stmt<'_>) -> Option<Node> {
    match stmt {
        ast::Stmt::EmitRaw(raw) => Some(Node::Text(raw.raw.into())),
        ast::Stmt::EmitExpr(emit) => match &emit.expr {
            ast::Expr::Var(var) if !ENGINE_NAMES.contains(&var.id) => {
                Some(Node::Var(var.id.into()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// A plain loop over a plain variable whose body is text and plain variables.
fn compile_loop(for_loop: &ast::ForLoop<'_>) -> Option<Node> {
    if for_loop.filter_expr.is_some() || for_loop.recursive || !for_loop.else_body.is_empty() {
        return None;
    }
    let (ast::Expr::Var(target), ast::Expr::Var(iter)) = (&for_loop.target, &for_loop.iter) else {
        return None;
    };
    if ENGINE_NAMES.contains(&target.id) || ENGINE_NAMES.contains(&iter.id) {
        return None;
    }
    let body = for_loop
        .body
        .iter()
        .map(compile_simple)
        .collect::<Option<Vec<_>>>()?;
    let per_item = FUEL_PER_ITEM
        + body
            .iter()
            .map(|node| match node {
                Node::Text(_) => FUEL_TEXT,
                _ => FUEL_VAR,
            })
            .sum::<u64>();
    Some(Node::For {
        target: target.id.into(),
        iter: iter.id.into(),
        body: body.into_boxed_slice(),
        per_item,
    })
}

/// The output and its byte limit; a write that would pass the limit fails.
struct Output {
    buf: String,
    limit: usize,
}

impl Output {
    /// Writes `text`; `false` when it does not fit.
    fn text(&mut self, text: &str) -> bool {
        if text.len() > self.limit - self.buf.len() {
            return false;
        }
        self.buf.push_str(text);
        true
    }

    /// Writes a value as the engine prints it: `None` for a value the fast path leaves to
    /// the engine (null, lists, maps), else whether it fit.
    fn value(&mut self, value: &Value) -> Option<bool> {
        let before = self.buf.len();
        match value {
            Value::String(s) => return Some(self.text(s)),
            Value::Bool(b) => return Some(self.text(if *b { "True" } else { "False" })),
            // The engine's value of a JSON number (`engine::json_to_value`): an integer when
            // it is one, else a float.
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    return Some(self.text(itoa::Buffer::new().format(i)));
                }
                if let Some(u) = n.as_u64() {
                    return Some(self.text(itoa::Buffer::new().format(u)));
                }
                let f = n.as_f64().filter(|f| f.is_finite())?;
                // Writing to a `String` cannot fail.
                let _ = write!(self.buf, "{f}");
                if !self.buf[before..].contains('.') {
                    self.buf.push_str(".0");
                }
            }
            Value::Null | Value::Array(_) | Value::Object(_) => return None,
        }
        if self.buf.len() > self.limit {
            self.buf.truncate(before);
            return Some(false);
        }
        Some(true)
    }

    /// The loop's body once per item: `None` to decline, else whether it all fit.
    fn items(
        &mut self,
        target: &str,
        items: &[Value],
        body: &[Node],
        vars: &CheckedVariables<'_>,
    ) -> Option<bool> {
        for item in items {
            for node in body {
                let written = match node {
                    Node::Text(text) => self.text(text),
                    Node::Var(var) if **var == *target => self.value(item)?,
                    Node::Var(var) => self.value(vars.get(var)?)?,
                    Node::For { .. } => return None,
                };
                if !written {
                    return Some(false);
                }
            }
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::template::engine::{context, render_named, sandboxed_environment};
    use crate::variables::check_variables;

    /// The engine's answer: the output, or the error's code and message; and what is left
    /// of the output budget after a successful render.
    type Answer = (std::result::Result<String, String>, usize);

    fn engine(source: &str, vars: &Map<String, Value>, limits: &RenderLimits) -> Option<Answer> {
        let mut env = sandboxed_environment(limits);
        env.add_template_owned("p@1#1", source.to_owned()).ok()?;
        let checked = check_variables(&[], vars).expect("no specs, no errors");
        let mut remaining = limits.max_output_bytes;
        let out = render_named(&env, "p@1#1", &context(&checked), &mut remaining, limits);
        Some((out.map_err(|e| format!("{:?}: {e}", e.code())), remaining))
    }

    fn fast(source: &str, vars: &Map<String, Value>, limits: &RenderLimits) -> Option<Answer> {
        let template = FastTemplate::compile(source)?;
        let checked = check_variables(&[], vars).expect("no specs, no errors");
        let mut remaining = limits.max_output_bytes;
        let out = template.render(&checked, "p@1#1", &mut remaining, limits)?;
        Some((out.map_err(|e| format!("{:?}: {e}", e.code())), remaining))
    }

    /// Whether the fast path answered; when it did, its answer is the engine's.
    fn check(source: &str, vars: &Map<String, Value>, limits: &RenderLimits) -> bool {
        let expected = engine(source, vars, limits);
        let Some(got) = fast(source, vars, limits) else {
            return false;
        };
        let Some(expected) = expected else {
            panic!("{source:?}: the engine refuses to compile it, the fast path rendered {got:?}");
        };
        match (&expected.0, &got.0) {
            // The budget left matters only when the render succeeded.
            (Ok(_), Ok(_)) => assert_eq!(expected, got, "{source:?} with {vars:?}"),
            _ => assert_eq!(expected.0, got.0, "{source:?} with {vars:?}"),
        }
        true
    }

    fn vars(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn what_the_fast_path_covers() {
        let covered = [
            "",
            "plain",
            "Customer: {{ customer_name }}\nOrder total: {{ order_total }} EUR\nItems:\n{% for item in recent_items %}- {{ item }}\n{% endfor %}Reply.",
            "{{a}}{{ b }}{{- a -}} x {#- note -#} {% raw %}{{ not_a_var }}{% endraw %}",
            "{%- for x in xs -%} {{ x }}, {{ a }} {%- endfor %}\n",
            "{{ loopy }}",
        ];
        for src in covered {
            assert!(FastTemplate::compile(src).is_some(), "{src:?}");
        }
        let declined = [
            "{{ a | upper }}",
            "{{ a.b }}",
            "{{ a[0] }}",
            "{{ 'lit' }}",
            "{{ true }}",
            "{{ a + 1 }}",
            "{{ f() }}",
            "{% if a %}x{% endif %}",
            "{% set a = 1 %}",
            "{% for x in xs %}{{ loop.index }}{% endfor %}",
            "{% for x in xs %}{{ loop }}{% endfor %}",
            "{{ loop }}",
            "{% for x in xs %}x{% else %}none{% endfor %}",
            "{% for x in xs if x %}{{ x }}{% endfor %}",
            "{% for x in xs recursive %}{{ x }}{% endfor %}",
            "{% for a, b in xs %}{{ a }}{% endfor %}",
            "{% for x in xs %}{% for y in x %}{{ y }}{% endfor %}{% endfor %}",
            "{% for x in xs %}{% break %}{% endfor %}",
            "{% for x in range(3) %}{{ x }}{% endfor %}",
            "{% include 'other' %}",
            "{% macro m() %}{% endmacro %}",
            "{{ unclosed",
            "{% for x in xs %}no end",
        ];
        for src in declined {
            assert!(FastTemplate::compile(src).is_none(), "{src:?}");
        }
    }

    #[test]
    fn values_print_as_the_engine_prints_them() {
        let values = [
            json!("Dana Whitfield"),
            json!(""),
            json!("ünïcødé ✓ 你好 🎉"),
            json!("{{ not a tag }} {% nor this %}"),
            json!("quotes \" and \\ and\nnew\r\nlines\t"),
            json!(0),
            json!(-1),
            json!(42),
            json!(184.5),
            json!(1.0),
            json!(-0.0),
            json!(0.1),
            json!(1e20),
            json!(1e21),
            json!(1e-7),
            json!(std::f64::consts::PI),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(9007199254740993_u64),
            json!(true),
            json!(false),
        ];
        let limits = RenderLimits::default();
        for v in values {
            let vars = vars(json!({ "v": v.clone(), "xs": [v.clone(), "x", 2] }));
            for src in ["{{ v }}", "[{% for x in xs %}{{ x }},{% endfor %}]"] {
                assert!(check(src, &vars, &limits), "{src:?} declined {v}");
            }
        }
        // What the fast path leaves to the engine: undefined, none, lists, maps, strings
        // iterated, and items it would have to print that are not scalars.
        let engine_only = [
            ("{{ v }}", json!({})),
            ("{{ v }}", json!({ "v": null })),
            ("{{ v }}", json!({ "v": [1, 2] })),
            ("{{ v }}", json!({ "v": { "k": 1 } })),
            ("{% for x in v %}{{ x }}{% endfor %}", json!({ "v": "abc" })),
            (
                "{% for x in v %}{{ x }}{% endfor %}",
                json!({ "v": [1, null] }),
            ),
            ("{% for x in v %}{{ x }}{% endfor %}", json!({ "v": [[1]] })),
            ("{% for x in v %}{{ y }}{% endfor %}", json!({ "v": [1] })),
        ];
        for (src, v) in engine_only {
            assert!(!check(src, &vars(v.clone()), &limits), "{src:?} with {v}");
            assert!(engine(src, &vars(v), &limits).is_some());
        }
        // Items that are never printed need not be scalars.
        let v = vars(json!({ "v": [null, [1], { "k": 1 }] }));
        assert!(check("{% for x in v %}-{% endfor %}", &v, &limits));
    }

    #[test]
    fn the_output_limit_and_the_fuel_budget_are_the_engines() {
        let vars = vars(json!({ "s": "12345", "n": 12.5, "xs": ["ab", "cd", "ef"] }));
        for max_output_bytes in 0..20 {
            let limits = RenderLimits {
                max_output_bytes,
                ..RenderLimits::default()
            };
            for src in [
                "{{ s }}",
                "<{{ n }}>",
                "{% for x in xs %}{{ x }};{% endfor %}",
            ] {
                assert!(check(src, &vars, &limits), "{src:?} at {max_output_bytes}");
            }
        }
        // Near the fuel budget the engine answers; far from it the fast path does.
        let many: Vec<Value> = (0..1000).map(|i| json!(format!("item {i}"))).collect();
        let vars = super::tests::vars(json!({ "xs": many }));
        let src = "{% for x in xs %}- {{ x }}\n{% endfor %}";
        let mut answered = Vec::new();
        for fuel in [1, 10, 100, 1_000, 5_000, 10_000, 20_000, 200_000] {
            let limits = RenderLimits {
                fuel,
                ..RenderLimits::default()
            };
            answered.push(check(src, &vars, &limits));
        }
        assert_eq!(answered.first(), Some(&false));
        assert_eq!(answered.last(), Some(&true));
    }

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    fn scalar(rng: &mut Rng) -> Value {
        let pool = [
            json!(""),
            json!("Dana"),
            json!("ü✓ 你好"),
            json!("{{ x }}"),
            json!("a\nb"),
            json!("\"q\" \\"),
            json!("  "),
            json!(0),
            json!(-7),
            json!(184.5),
            json!(1.0),
            json!(1e21),
            json!(2.5e-8),
            json!(u64::MAX),
            json!(true),
            json!(false),
        ];
        rng.pick(&pool).clone()
    }

    fn value(rng: &mut Rng) -> Option<Value> {
        match rng.below(10) {
            0 => None,
            1 => Some(Value::Null),
            2 => Some(json!({ "k": "v" })),
            3..=5 => {
                let n = rng.below(5);
                Some(Value::Array(
                    (0..n)
                        .map(|_| match rng.below(12) {
                            0 => Value::Null,
                            1 => json!([1]),
                            _ => scalar(rng),
                        })
                        .collect(),
                ))
            }
            _ => Some(scalar(rng)),
        }
    }

    #[test]
    fn differential_against_the_engine() {
        let text = [
            "",
            "a",
            "Hello, ",
            " ",
            "\n",
            "\r\n",
            "\t",
            "  \n  ",
            "ü✓你好",
            "{",
            "}",
            "%",
            "#",
            "-",
            "+",
            "\"",
            "\\",
            "} {",
            "end\n",
            "end\r",
        ];
        let tags = [
            "{{ a }}",
            "{{b}}",
            "{{- a }}",
            "{{ a -}}",
            "{{- b -}}",
            "{{+ a }}",
            "{{ xs }}",
            "{{ missing }}",
            "{{ x }}",
            "{# note #}",
            "{#- note -#}",
            "{% raw %}{{ a }}{% endraw %}",
            "{% for x in xs %}",
            "{%- for x in xs -%}",
            "{% for x in xs %}[{{ x }}]{% endfor %}",
            "{%- for x in xs %}\n- {{ x }}{{ a }}\n{%- endfor %}",
            "{% for a in xs %}{{ a }}{% endfor %}{{ a }}",
            "{% for x in a %}{{ x }}{% endfor %}",
            "{% endfor %}",
            "{{ a | upper }}",
            "{% if a %}",
            "{% endif %}",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut answered, mut total) = (0, 0);
        for _ in 0..4000 {
            let mut src = String::new();
            for _ in 0..rng.below(7) {
                src.push_str(rng.pick::<&str>(&text));
                src.push_str(rng.pick::<&str>(&tags));
            }
            src.push_str(rng.pick::<&str>(&text));
            let mut vars = Map::new();
            for name in ["a", "b", "xs", "x"] {
                if let Some(v) = value(&mut rng) {
                    vars.insert(name.to_owned(), v);
                }
            }
            let limits = RenderLimits {
                fuel: *rng.pick(&[200_000, 1_000, 40, 10]),
                max_output_bytes: *rng.pick(&[1024 * 1024, 64, 8]),
                ..RenderLimits::default()
            };
            total += 1;
            if check(&src, &vars, &limits) {
                answered += 1;
            }
        }
        // The comparison must have happened often enough to mean something, and the
        // generator must also produce what the fast path leaves to the engine.
        assert!(answered > total / 5, "{answered} of {total}");
        assert!(answered < total, "{answered} of {total}");
    }
}
