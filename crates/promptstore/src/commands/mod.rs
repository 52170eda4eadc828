//! The client commands: each turns parsed arguments into API calls through the SDK and
//! prints the result as a table or, with `--json`, as JSON.

pub mod abtest;
pub mod alerts;
pub mod events;
pub mod experiment;
pub mod key;
pub mod label;
pub mod prices;
pub mod prompt;
pub mod stats;
pub mod transfer;

use promptstore_client::Client;

use crate::cli::ClientArgs;
use crate::failure::Failure;

/// A client for the server named on the command line.
pub fn connect(args: &ClientArgs) -> Result<Client, Failure> {
    Client::builder(&args.url, &args.api_key)
        .user_agent(concat!("promptstore-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::usage(e.to_string()))
}
