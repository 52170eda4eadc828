//! `promptstore serve`: resolve the configuration once (flags > `PROMPTSTORE_*` env >
//! defaults, done by clap), open the SQLite store, create the default project on first
//! start, and serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use promptstore_core::store::Store;
use promptstore_server::ServerConfig;
use promptstore_store_sqlite::SqliteStore;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, ServeArgs};
use crate::failure::Failure;

/// The database file inside the data directory.
const DB_FILE: &str = "promptstore.db";

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
struct Config {
    db_path: PathBuf,
    bind: String,
    port: u16,
    server: ServerConfig,
}

fn resolve(args: &ServeArgs) -> Result<Config, Failure> {
    let body_limit = parse_size(&args.body_limit).map_err(Failure::usage)?;
    let server = ServerConfig {
        body_limit_bytes: body_limit,
        ..ServerConfig::default()
    };
    Ok(Config {
        db_path: args.data_dir.join(DB_FILE),
        bind: args.bind.clone(),
        port: args.port,
        server,
    })
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    init_logging(&args)?;
    let config = resolve(&args)?;

    let store = Arc::new(
        SqliteStore::open(&config.db_path)
            .await
            .with_context(|| format!("cannot open the database {}", config.db_path.display()))?,
    );
    let dyn_store: Arc<dyn Store> = store.clone();
    let bootstrap = promptstore_server::bootstrap(dyn_store.as_ref())
        .await
        .context("first-start setup failed")?;
    let state = promptstore_server::build_state(dyn_store, config.server.clone())
        .await
        .context("cannot load the server state")?;

    let listener = tokio::net::TcpListener::bind((config.bind.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let url = format!("http://{address}");

    if let Some(created) = &bootstrap {
        println!(
            "first start: created project `{}` and its admin API key.",
            created.project_name
        );
        println!(
            "admin key (shown once, store it now): {}",
            created.admin_secret
        );
    }
    println!("promptstore listening on {url}");
    println!("API docs: {url}/api/v1/docs");

    promptstore_server::serve(listener, state, shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    store.close().await;
    tracing::info!("promptstore stopped");
    Ok(())
}

fn init_logging(args: &ServeArgs) -> Result<(), Failure> {
    let filter = EnvFilter::try_new(&args.log)
        .map_err(|e| Failure::usage(format!("invalid --log filter `{}`: {e}", args.log)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (only possible in tests) keeps the first subscriber.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Parses a byte size: `1048576`, `512KiB`, `1MiB`, `2MB`, `1.5MiB` (case-insensitive).
fn parse_size(raw: &str) -> Result<usize, String> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "invalid --body-limit `{raw}`: unknown unit `{other}` (use B, KiB, MiB, KB, MB)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid --body-limit `{raw}`: expected a size like 1MiB"))?;
    let bytes = value * multiplier;
    if !(1.0..=16.0 * 1024.0 * 1024.0 * 1024.0).contains(&bytes) {
        return Err(format!(
            "invalid --body-limit `{raw}`: must be between 1 byte and 16 GiB"
        ));
    }
    // In range and positive, so the conversion neither truncates meaningfully nor wraps.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        let check = |raw: &str, expected: usize| assert_eq!(parse_size(raw), Ok(expected), "{raw}");
        check("1048576", 1_048_576);
        check("1MiB", 1_048_576);
        check("1mib", 1_048_576);
        check("512KiB", 524_288);
        check("2MB", 2_000_000);
        check("1.5MiB", 1_572_864);
        check(" 10 KB ", 10_000);
        for bad in ["", "MiB", "1XB", "0", "-5", "1.2.3MiB", "99999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
