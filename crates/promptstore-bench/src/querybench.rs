//! Timing read endpoints over HTTP the way the analytics benchmarks report them: a few
//! warm-up calls, then rounds that call every endpoint once in turn (the baseline among
//! them), so that a burst of load from elsewhere on the machine hits all of them alike.
//! The median of each is reported with its min and max.

use std::time::Duration;

use anyhow::Context;

use crate::loadgen;
use crate::stats::{Summary, summarize};

/// One endpoint to time.
#[derive(Debug, Clone)]
pub struct Query {
    /// Short name for reports (`summary`, `baseline_project`…).
    pub name: String,
    /// Path and query string, from `/api/v1/...`.
    pub path: String,
}

/// Timings of one endpoint, in ms, and the body of its last answer (for sanity checks).
#[derive(Debug, Clone)]
pub struct Timed {
    pub name: String,
    pub ms: Summary,
    pub last_body: Vec<u8>,
}

/// Time every query `runs` times (after `warmup` untimed calls each), interleaved.
pub async fn time_queries(
    http: &reqwest::Client,
    base_url: &str,
    key: &str,
    queries: &[Query],
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<Timed>> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); queries.len()];
    let mut bodies: Vec<Vec<u8>> = vec![Vec::new(); queries.len()];
    for round in 0..warmup + runs {
        for (i, q) in queries.iter().enumerate() {
            let url = format!("{base_url}{}", q.path);
            let (took, body): (Duration, Vec<u8>) = loadgen::timed_get(http, &url, key)
                .await
                .with_context(|| format!("timing {}", q.name))?;
            if round >= warmup {
                samples[i].push(took.as_secs_f64() * 1e3);
            }
            bodies[i] = body;
        }
    }
    queries
        .iter()
        .zip(samples)
        .zip(bodies)
        .map(|((q, s), body)| {
            Ok(Timed {
                name: q.name.clone(),
                ms: summarize(&s).with_context(|| format!("no timing of {}", q.name))?,
                last_body: body,
            })
        })
        .collect()
}

/// An RFC 3339 UTC timestamp for a query string (`Z`, so no `+` to escape).
pub fn rfc3339(t: time::OffsetDateTime) -> anyhow::Result<String> {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .context("truncating a timestamp")?
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting a timestamp")
}

/// Percent-encode a query-string value (prompt names hold `/`, which is fine, but keep
/// anything outside the unreserved set encoded).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_values_are_query_safe() {
        let t = time::macros::datetime!(2025-01-02 03:04:05.678 +02:00);
        assert_eq!(rfc3339(t).unwrap(), "2025-01-02T01:04:05Z");
        assert_eq!(encode("bench/chat-00001"), "bench/chat-00001");
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
    }
}
