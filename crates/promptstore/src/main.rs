//! The one promptstore binary: `serve` runs the server, every other command is a client of
//! it. This file only parses the command line, dispatches, and turns failures into one
//! line on stderr and an exit code (2 for usage, 1 for everything else).

#[macro_use]
mod output;
mod cli;
mod commands;
mod failure;
mod files;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` are "errors" that print to stdout and exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", usage_error_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    // reqwest is built without a bundled crypto provider (DEPENDENCIES.md pitfall 3).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(&Failure::from(anyhow::anyhow!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Prompt(command) => commands::prompt::run(command).await,
        Command::Label(command) => commands::label::run(command).await,
        Command::Key(command) => commands::key::run(command).await,
        Command::Export(args) => commands::transfer::export(args).await,
        Command::Import(args) => commands::transfer::import(args).await,
        Command::Stats(args) => commands::stats::run(args).await,
        Command::Events(command) => commands::events::run(command).await,
        Command::Prices(command) => commands::prices::run(command).await,
        Command::Alerts(command) => commands::alerts::run(command).await,
        Command::Experiment(command) => commands::experiment::run(command).await,
        Command::Abtest(command) => commands::abtest::run(command),
    }
}

/// clap's usage error on one line: its first paragraph (which may list the missing
/// arguments on further lines), without the usage block and tips that follow.
fn usage_error_line(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    let line = if line.starts_with("error:") {
        line
    } else {
        format!("error: {line}")
    };
    format!("{line} (see --help)")
}

fn report(failure: &Failure) -> ExitCode {
    eprintln!("error: {}", failure.one_line());
    ExitCode::from(failure.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_on_one_line() {
        let error = Cli::try_parse_from(["promptstore", "label", "set", "a"]).unwrap_err();
        let line = usage_error_line(&error.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("error: ") && line.contains("<LABEL>"),
            "{line}"
        );
        let unknown = Cli::try_parse_from(["promptstore", "frobnicate"]).unwrap_err();
        assert!(usage_error_line(&unknown.render().to_string()).contains("frobnicate"));
    }
}
