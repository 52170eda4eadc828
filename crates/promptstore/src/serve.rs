//! `promptstore serve`: resolve the configuration once (flags > `PROMPTSTORE_*` env >
//! defaults, done by clap), open the SQLite store, create the default project on first
//! start, and serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::store::Store;
use promptstore_server::{AnalyticsConfig, ExperimentConfig, ServerConfig};
use promptstore_store_sqlite::SqliteStore;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, ServeArgs};
use crate::failure::Failure;

/// The database file inside the data directory.
const DB_FILE: &str = "promptstore.db";

/// A line for the operator on stdout. The server must not stop because nobody reads its
/// stdout any more (`promptstore serve | head -4`), so a failed write is ignored.
macro_rules! announce {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
struct Config {
    db_path: PathBuf,
    bind: String,
    port: u16,
    server: ServerConfig,
}

fn resolve(args: &ServeArgs) -> Result<Config, Failure> {
    let body_limit = parse_size("--body-limit", &args.body_limit).map_err(Failure::usage)?;
    let ingest_body_limit =
        parse_size("--ingest-body-limit", &args.ingest_body_limit).map_err(Failure::usage)?;
    // 0 (the cache off) is the one size that `parse_size` rightly refuses for a limit.
    let render_cache = match args.render_cache.trim() {
        "0" => 0,
        raw => parse_size("--render-cache", raw).map_err(Failure::usage)?,
    };
    let defaults = ServerConfig::default();
    let server = ServerConfig {
        body_limit_bytes: body_limit,
        render_cache_bytes: u64::try_from(render_cache).unwrap_or(u64::MAX),
        analytics: AnalyticsConfig {
            ingest_body_limit_bytes: ingest_body_limit,
            events_retention: Duration::from_secs(u64::from(args.events_retention_days) * 86_400),
            alert_interval: Some(Duration::from_secs(args.alert_interval_secs)),
            ..defaults.analytics.clone()
        },
        experiments: ExperimentConfig {
            decision_interval: Some(Duration::from_secs(args.experiment_interval_secs)),
            ..defaults.experiments.clone()
        },
        ..defaults
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
    // The same store keeps events in its second file (events.db beside the registry).
    let analytics: Arc<dyn AnalyticsStore> = store.clone();
    let bootstrap = promptstore_server::bootstrap(dyn_store.as_ref())
        .await
        .context("first-start setup failed")?;
    let state = promptstore_server::build_state(dyn_store, analytics, config.server.clone())
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
        announce!(
            "first start: created project `{}` and its admin API key.",
            created.project_name
        );
        announce!(
            "admin key (shown once, store it now): {}",
            created.admin_secret
        );
    }
    announce!("promptstore listening on {url}");
    announce!("API docs: {url}/api/v1/docs");

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
/// `flag` names the option in error messages.
fn parse_size(flag: &str, raw: &str) -> Result<usize, String> {
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
                "invalid {flag} `{raw}`: unknown unit `{other}` (use B, KiB, MiB, KB, MB)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid {flag} `{raw}`: expected a size like 1MiB"))?;
    let bytes = value * multiplier;
    if !(1.0..=16.0 * 1024.0 * 1024.0 * 1024.0).contains(&bytes) {
        return Err(format!(
            "invalid {flag} `{raw}`: must be between 1 byte and 16 GiB"
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
        let check =
            |raw: &str, expected: usize| assert_eq!(parse_size("--x", raw), Ok(expected), "{raw}");
        check("1048576", 1_048_576);
        check("1MiB", 1_048_576);
        check("1mib", 1_048_576);
        check("512KiB", 524_288);
        check("2MB", 2_000_000);
        check("1.5MiB", 1_572_864);
        check(" 10 KB ", 10_000);
        for bad in ["", "MiB", "1XB", "0", "-5", "1.2.3MiB", "99999GiB"] {
            assert!(parse_size("--x", bad).is_err(), "{bad}");
        }
    }

    fn serve_args(extra: &[&str]) -> ServeArgs {
        use clap::Parser as _;
        let argv = ["promptstore", "serve"].iter().chain(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Serve(args) => args,
            _ => unreachable!("parsed a serve command"),
        }
    }

    #[test]
    fn the_render_cache_size_is_configurable_and_can_be_off() {
        let cache =
            |extra: &[&str]| resolve(&serve_args(extra)).map(|c| c.server.render_cache_bytes);
        assert_eq!(cache(&[]).unwrap(), 8 * 1024 * 1024);
        assert_eq!(
            cache(&["--render-cache", "64MiB"]).unwrap(),
            64 * 1024 * 1024
        );
        assert_eq!(cache(&["--render-cache", "0"]).unwrap(), 0);
        assert!(cache(&["--render-cache", "lots"]).is_err());
    }
}
