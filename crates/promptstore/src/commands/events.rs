//! `promptstore events import FILE.ndjson`: stream a file of events to the server in
//! batches, without loading it whole, and report per line what was refused.

use std::io::{BufRead, BufReader};

use anyhow::Context;
use promptstore_client::Client;
use promptstore_client::types::ErrorCode;
use serde::Serialize;

use super::connect;
use crate::cli::EventsCommand;
use crate::failure::Failure;
use crate::output::print_json;

/// How many refused lines are printed (all of them are counted).
const SHOWN_ERRORS: usize = 10;

/// A refused line of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The totals of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportTotals {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// The first refused lines.
    pub errors: Vec<LineError>,
}

pub async fn run(command: EventsCommand) -> Result<(), Failure> {
    match command {
        EventsCommand::Import {
            client,
            file,
            batch,
        } => {
            let api = connect(&client)?;
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
            } else {
                let opened = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?;
                Box::new(BufReader::new(opened))
            };
            let batch = usize::try_from(batch).unwrap_or(1000);
            let totals = import(&api, reader, batch, &file.display().to_string()).await?;
            if client.json {
                print_json(&totals)?;
            } else {
                out!("{}", report(&totals, &file.display().to_string()));
            }
            if totals.rejected > 0 {
                return Err(Failure::from(anyhow::anyhow!(
                    "{} of {} events were rejected",
                    totals.rejected,
                    totals.accepted + totals.duplicates + totals.rejected
                )));
            }
            Ok(())
        }
    }
}

/// Send `reader`'s non-blank lines in batches of `batch`, mapping each refused item back
/// to its line number.
pub async fn import(
    api: &Client,
    reader: impl BufRead,
    batch: usize,
    name: &str,
) -> Result<ImportTotals, Failure> {
    let mut totals = ImportTotals::default();
    let mut body: Vec<u8> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {name} at line {}", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
        lines.push(index + 1);
        if lines.len() >= batch {
            send(api, &mut body, &mut lines, &mut totals).await?;
        }
    }
    if !lines.is_empty() {
        send(api, &mut body, &mut lines, &mut totals).await?;
    }
    Ok(totals)
}

async fn send(
    api: &Client,
    body: &mut Vec<u8>,
    lines: &mut Vec<usize>,
    totals: &mut ImportTotals,
) -> Result<(), Failure> {
    let first = lines.first().copied().unwrap_or(0);
    let report = api
        .ingest_ndjson(std::mem::take(body))
        .await
        .with_context(|| {
            format!(
                "sending the batch starting at line {first} failed (the batches before it were stored; re-running is safe for events with an id)"
            )
        })?;
    totals.accepted += report.accepted;
    totals.duplicates += report.duplicates;
    totals.rejected += report.rejected;
    for error in report.errors {
        if totals.errors.len() >= SHOWN_ERRORS {
            break;
        }
        totals.errors.push(LineError {
            line: lines.get(error.index).copied().unwrap_or(0),
            code: error.code,
            message: error.message,
            field: error.field,
        });
    }
    lines.clear();
    Ok(())
}

/// The totals for people.
fn report(totals: &ImportTotals, name: &str) -> String {
    let mut out = format!(
        "{name}: {} accepted, {} duplicates, {} rejected\n",
        totals.accepted, totals.duplicates, totals.rejected
    );
    for e in &totals.errors {
        let field = e
            .field
            .as_deref()
            .map(|f| format!(", field {f}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  line {}: {} ({}{field})\n",
            e.line,
            e.message,
            e.code.as_str()
        ));
    }
    let hidden = totals.rejected.saturating_sub(totals.errors.len() as u64);
    if hidden > 0 {
        out.push_str(&format!("  … and {hidden} more rejected lines\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_lines_and_counts_the_rest() {
        let totals = ImportTotals {
            accepted: 5,
            duplicates: 1,
            rejected: 12,
            errors: vec![LineError {
                line: 7,
                code: ErrorCode::NotFound,
                message: "prompt 'x' does not exist in this project".into(),
                field: Some("prompt".into()),
            }],
        };
        assert_eq!(
            report(&totals, "e.ndjson"),
            "e.ndjson: 5 accepted, 1 duplicates, 12 rejected\n  line 7: prompt 'x' does not exist in this project (not_found, field prompt)\n  … and 11 more rejected lines\n"
        );
    }
}
