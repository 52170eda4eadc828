//! The Rust SDK of promptstore: one typed async method per HTTP route, an in-memory cache of
//! resolved prompts for the runtime hot path, and the server's change stream.
//!
//! ```no_run
//! # async fn run() -> Result<(), promptstore_client::ClientError> {
//! use promptstore_client::{CacheConfig, CachedClient, Client, Selector};
//! let client = Client::new("http://127.0.0.1:5110", "ps_…")?;
//! let cache = CachedClient::new(client, CacheConfig::default())?;
//! cache.prewarm("production").await?;
//! let _subscription = cache.subscribe();
//! let prompt = cache.get("support/triage", &Selector::Label("production".into())).await?;
//! # let _ = prompt; Ok(()) }
//! ```

mod analytics;
mod cache;
mod changes;
mod client;
mod encode;
mod error;
mod experiments;
mod query;
mod registry;
mod runtime;

pub use analytics::{AnalyticsQuery, Interval, NDJSON, TopBy, ndjson_body};
pub use cache::{CacheConfig, CacheStats, CachedClient, Subscription};
pub use changes::ChangeStream;
pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Fetched, RawResponse, Tagged,
};
pub use encode::encode_component;
pub use error::{ClientError, decode_error_body};
pub use experiments::{Analysis, AnalyzeFormat, ExperimentFilter};
/// The wire types, re-exported so callers need one dependency.
pub use promptstore_types as types;
pub use promptstore_types::{ErrorBody, ErrorCode, Selector};
pub use query::{AuditFilter, PageRequest, PromptFilter};
/// `Method` and header types for [`Client::raw`].
pub use reqwest::{Method, header};
