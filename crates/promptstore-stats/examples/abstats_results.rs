//! Writes this crate's answers to the A/B reference cases as a RESULTS.json that
//! `shared/abstats-reference/check.py` reads:
//!
//! ```text
//! cargo run -p promptstore-stats --example abstats_results -- RESULTS.json
//! python3 ../shared/abstats-reference/check.py RESULTS.json
//! ```

// The comparison helpers are used only by the test.
#[allow(dead_code)]
#[path = "../tests/support/reference.rs"]
mod reference;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "RESULTS.json".to_string());
    let oracle = reference::load_cases();
    let doc = reference::results_document(&oracle);
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    eprintln!(
        "wrote {} cases from {} to {out}",
        doc["cases"].as_array().map_or(0, Vec::len),
        reference::cases_path().display()
    );
    Ok(())
}
