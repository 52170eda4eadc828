//! The HTTP side of the analytics benchmarks: several concurrent clients posting batches of
//! events (`POST /api/v1/events`, keep-alive, TCP_NODELAY) until a deadline or a batch
//! count, checking every answer; and sequential timed GETs of the analytics endpoints.
//!
//! An answer only counts when it is a 200 whose report accepts every event of the batch
//! (no refusal, no duplicate): the acknowledged total is then exactly what the server
//! promised is durable, which the benchmarks compare with the database afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use promptstore_types::IngestReport;
use time::OffsetDateTime;

use crate::eventgen::{BodyTemplate, EventGen};

/// Where a run's request bodies come from.
#[derive(Debug, Clone)]
pub enum Bodies {
    /// Generated and serialised per batch (any spread; costs the driver ~µs per event).
    Generated(Arc<EventGen>),
    /// Spliced from a pre-serialised pool (live traffic; see `BodyTemplate`).
    Spliced(Arc<BodyTemplate>),
}

impl Bodies {
    fn body(&self, k: u64, now: OffsetDateTime) -> anyhow::Result<Vec<u8>> {
        match self {
            Bodies::Generated(g) => g.body(k, now),
            Bodies::Spliced(t) => t.body(k, now),
        }
    }

    fn batch_size(&self) -> usize {
        match self {
            Bodies::Generated(g) => g.batch_size,
            Bodies::Spliced(t) => t.batch_size(),
        }
    }
}

/// An HTTP/1.1 client as the benchmarks use it: keep-alive, TCP_NODELAY (a Nagle stall
/// costs 40 ms a request), no proxy.
pub fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider (DEPENDENCIES.md pitfall 3); plain
    // HTTP needs none, but building a client needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build the HTTP client")
}

/// When an ingestion run stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Clients start no new batch after this long.
    Elapsed(Duration),
    /// Batches `0..n`, each sent once.
    Batches(u64),
}

/// What an ingestion run did.
#[derive(Debug, Clone, Default)]
pub struct IngestRun {
    /// Events the server acknowledged (sum of `accepted` over the 200 answers).
    pub acknowledged: u64,
    pub batches: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Round-trip time of each batch, in ms.
    pub latencies_ms: Vec<f64>,
}

impl IngestRun {
    pub fn events_per_second(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A progress report: how often, and what to call with (events acknowledged, time so far).
pub type Progress = (Duration, Box<dyn Fn(u64, Duration) + Send + Sync>);

/// One ingestion target.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub key: String,
}

/// Post batches from `clients` concurrent clients until `until`. `progress` is called about
/// every `every` with the events acknowledged so far (seeding prints its rate and memory).
pub async fn ingest(
    http: &reqwest::Client,
    target: &Target,
    bodies: Bodies,
    clients: usize,
    until: Until,
    progress: Option<Progress>,
) -> anyhow::Result<IngestRun> {
    let next = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let http = http.clone();
        let endpoint = format!("{}/api/v1/events", target.url);
        let auth = format!("Bearer {}", target.key);
        let bodies = bodies.clone();
        let next = next.clone();
        let acknowledged = acknowledged.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let more = match until {
                    Until::Elapsed(d) => started.elapsed() < d,
                    Until::Batches(n) => k < n,
                };
                if !more {
                    break;
                }
                let body = bodies.body(k, OffsetDateTime::now_utc())?;
                let sent = Instant::now();
                let answer = http
                    .post(&endpoint)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .with_context(|| format!("POST /api/v1/events (batch {k})"))?;
                let status = answer.status();
                let bytes = answer.bytes().await.context("reading an ingest answer")?;
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                if status != reqwest::StatusCode::OK {
                    bail!(
                        "batch {k}: POST /api/v1/events answered {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
                    );
                }
                let report: IngestReport = serde_json::from_slice(&bytes)
                    .with_context(|| format!("batch {k}: unreadable IngestReport"))?;
                if report.rejected != 0 || report.duplicates != 0 {
                    bail!(
                        "batch {k}: {} refused, {} duplicates (first error: {:?})",
                        report.rejected,
                        report.duplicates,
                        report.errors.first()
                    );
                }
                if report.accepted != bodies.batch_size() as u64 {
                    bail!(
                        "batch {k}: {} of {} events accepted",
                        report.accepted,
                        bodies.batch_size()
                    );
                }
                acknowledged.fetch_add(report.accepted, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies_ms = Vec::new();
    let mut ticker = progress.as_ref().map(|(every, _)| {
        let mut t = tokio::time::interval(*every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    if let Some(t) = ticker.as_mut() {
        t.tick().await; // the first tick is immediate
    }
    loop {
        let joined = match ticker.as_mut() {
            Some(t) => {
                tokio::select! {
                    joined = tasks.join_next() => joined,
                    _ = t.tick() => {
                        if let Some((_, report)) = &progress {
                            report(acknowledged.load(Ordering::Relaxed), started.elapsed());
                        }
                        continue;
                    }
                }
            }
            None => tasks.join_next().await,
        };
        let Some(joined) = joined else { break };
        let mine = joined.context("an ingest client panicked")??;
        latencies_ms.extend(mine);
    }
    Ok(IngestRun {
        acknowledged: acknowledged.load(Ordering::Relaxed),
        batches: latencies_ms.len() as u64,
        elapsed: started.elapsed(),
        latencies_ms,
    })
}

/// `GET url` with the key; the time to the last byte of a 200 answer and its body.
pub async fn timed_get(
    http: &reqwest::Client,
    url: &str,
    key: &str,
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let answer = http
        .get(url)
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = answer.status();
    let body = answer.bytes().await.context("reading an answer")?;
    let took = started.elapsed();
    if status != reqwest::StatusCode::OK {
        bail!(
            "GET {url} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        );
    }
    Ok((took, body.to_vec()))
}

/// Send one JSON request (setup calls: keys, experiments); the parsed answer of a 2xx.
pub async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut request = http
        .request(method.clone(), url)
        .header("authorization", format!("Bearer {key}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = answer.status();
    let bytes = answer.bytes().await.context("reading an answer")?;
    if !status.is_success() {
        bail!(
            "{method} {url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    if bytes.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{method} {url}: unreadable JSON"))
}

/// Percentile (nearest rank) of unsorted samples; `None` when there are none.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), Some(50.0));
        assert_eq!(percentile(&s, 99.0), Some(99.0));
        assert_eq!(percentile(&s, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
