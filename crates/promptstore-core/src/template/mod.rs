//! The template language: Jinja2 syntax (minijinja) in a sandbox.
//!
//! - [`analyze`]: the save-time check of a version (syntax, chat structure, variable specs,
//!   includes, warnings about undeclared and unused variables).
//! - [`RenderLimits`]: the bounds every render runs under (fuel, output bytes, include depth).
//! - [`parse_include_ref`] / [`format_include_ref`]: the `name@label` / `name@3` references.
//!
//! Rendering itself happens in `crate::runtime`, which owns the compiled templates; the
//! engine configuration and error mapping it uses live in `engine`.

mod analysis;
pub(crate) mod engine;
mod includes;

pub use analysis::{Analysis, analyze};
pub use engine::RenderLimits;
pub use includes::{format_include_ref, parse_include_ref};
