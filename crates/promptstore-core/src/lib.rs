//! The promptstore domain: prompts, versions, labels, templates and their rules, the use
//! cases over them, and the `Store` trait with the conformance suite every backend passes.
//!
//! Architecture invariant: this crate does no I/O of its own. It knows no HTTP, no SQL, no
//! files and no environment variables; storage reaches it only through `&dyn Store`.

pub mod analytics;
pub mod audit;
pub mod convert;
pub mod error;
pub mod experiments;
pub mod model;
pub mod store;

pub mod contract;
pub mod diff;
pub mod graph;
pub mod hash;
pub mod lifecycle;
pub mod names;
pub mod runtime;
pub mod service;
#[cfg(feature = "testing")]
pub mod store_tests;
pub mod template;
pub mod variables;

pub use error::{Error, Result};
