//! Wire types of the promptstore API: one definition shared by the server, the Rust client
//! and the CLI, so that the three cannot disagree about the JSON they exchange.
//!
//! Only this crate derives `Serialize`/`Deserialize` for API shapes; the domain maps to and
//! from these types at the edges (see ARCHITECTURE.md).

pub mod analytics;
pub mod error;
pub mod experiments;
pub mod registry;
pub mod runtime;
pub mod template;

pub use analytics::*;
pub use error::{ErrorBody, ErrorCode};
pub use experiments::*;
pub use registry::*;
pub use runtime::*;
pub use template::*;

/// Header carrying the API key when `Authorization: Bearer` is not used.
pub const API_KEY_HEADER: &str = "x-api-key";
