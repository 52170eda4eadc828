//! `promptstore abtest analyze FILE`: the A/B calculator, run locally on data from anywhere
//! (the statistics are pure core code, so no server is involved).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, anyhow};
use promptstore_core::experiments::calculator::{self, CalcFormat, CalcOutput};

use crate::cli::{AbtestCommand, AnalyzeFormatArg};
use crate::failure::Failure;
use crate::output::print_json;

fn read_document(path: &Path) -> anyhow::Result<serde_json::Value> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        ("standard input".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        (path.display().to_string(), text)
    };
    serde_json::from_str(&text).map_err(|e| anyhow!("{name} is not valid JSON: {e}"))
}

pub fn run(command: AbtestCommand) -> Result<(), Failure> {
    match command {
        AbtestCommand::Analyze { file, format } => {
            let doc = read_document(&file)?;
            let calc_format = match format {
                AnalyzeFormatArg::Report => CalcFormat::Text,
                AnalyzeFormatArg::Reference | AnalyzeFormatArg::Json => CalcFormat::Reference,
            };
            let output = calculator::analyze_json(&doc, calc_format)
                .map_err(|e| anyhow!("{}: {}", file.display(), e.to_body().message))?;
            match output {
                CalcOutput::Text(text) => out!("{text}"),
                CalcOutput::Reference(value) => print_json(&value)?,
            }
            Ok(())
        }
    }
}
