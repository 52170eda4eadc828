//! The template language: Jinja2 syntax (minijinja) in a sandbox.
//!
//! - [`analyze`]: the save-time check of a version (syntax, chat structure, variable specs,
//!   includes, warnings about undeclared and unused variables).
//! - [`RenderLimits`]: the bounds every render runs under (fuel, output bytes, include depth).
//! - [`parse_include_ref`] / [`format_include_ref`]: the `name@label` / `name@3` references.
//!
//! Rendering itself happens in `crate::runtime`, which owns the compiled templates; the
//! engine configuration and error mapping it uses live in `engine`, and the fast path for
//! templates that are only text, variables and plain loops (rendered without the engine,
//! byte for byte as the engine would) in `fast`.

mod analysis;
pub(crate) mod engine;
pub(crate) mod fast;
mod includes;

pub use analysis::{Analysis, analyze};
pub use engine::RenderLimits;
pub use includes::{format_include_ref, parse_include_ref};
