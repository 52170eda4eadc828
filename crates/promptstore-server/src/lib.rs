//! The promptstore HTTP server: the REST API over the use cases, API key auth, the
//! in-memory runtime snapshot behind resolve/render, the change stream, usage analytics
//! (group-commit ingestion, aggregate queries, alert and retention workers), A/B tests
//! (routes, the exposure buffer, the decision worker), Prometheus metrics and the OpenAPI
//! document. The binary chooses the stores and the config; this
//! crate only serves.
//!
//! ```text
//! let state = build_state(store, analytics_store, ServerConfig::default()).await?;
//! serve(listener, state, shutdown).await?;
//! ```

mod analytics;
mod answers;
mod auth;
mod config;
mod error;
mod experiments;
mod metrics;
mod openapi;
mod routes;
mod secrets;
mod serve;
mod state;

pub use analytics::alerts::AlertRun;
pub use analytics::workers::RetentionRun;
pub use config::{AnalyticsConfig, ExperimentConfig, ServerConfig};
pub use experiments::worker::ExperimentRun;
pub use openapi::document as openapi_document;
pub use routes::router;
pub use serve::{Bootstrap, bootstrap, build_state, serve};
pub use state::AppState;
