//! The promptstore domain: prompts, versions, labels, templates and their rules, the use
//! cases over them, and the `Store` trait with the conformance suite every backend passes.
//!
//! Architecture invariant: this crate does no I/O of its own. It knows no HTTP, no SQL, no
//! files and no environment variables; storage reaches it only through `&dyn Store`.

pub mod convert;
pub mod error;
pub mod model;
pub mod store;

pub use error::{Error, Result};
