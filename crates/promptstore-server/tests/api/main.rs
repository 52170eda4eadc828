//! End-to-end tests of the HTTP API: a real server on 127.0.0.1:0 over a temp-file SQLite
//! store, driven through the Rust client (and its `raw()` escape hatch for malformed
//! requests), so the SDK and the server are tested together.

// A failed unwrap is a failed test with its location: exactly what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics_support;
mod harness;

mod analytics_ops;
mod auth;
mod docs;
mod errors;
mod experiments;
mod flow;
mod ingest;
mod labels;
mod lifecycle;
mod queries;
mod registry;
mod runtime;
mod transfer;
