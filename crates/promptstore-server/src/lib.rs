//! The promptstore HTTP server: the REST API over the use cases, API key auth, the
//! in-memory runtime snapshot behind resolve/render, the change stream and the OpenAPI
//! document. The binary chooses the store and the config; this crate only serves.
//!
//! ```text
//! let state = build_state(store, ServerConfig::default()).await?;
//! serve(listener, state, shutdown).await?;
//! ```

mod auth;
mod config;
mod error;
mod openapi;
mod routes;
mod secrets;
mod serve;
mod state;

pub use config::ServerConfig;
pub use openapi::document as openapi_document;
pub use routes::router;
pub use serve::{Bootstrap, bootstrap, build_state, serve};
pub use state::AppState;
