//! The server's own Prometheus metrics: one recorder per server instance (not a process-wide
//! global, so two servers in one process — the tests — keep separate numbers), rendered as
//! text by the `/metrics` route.
//!
//! The fixed series are registered once at start and kept as handles, so recording one on a
//! hot path is an atomic add. Per-route request series are registered on first use and their
//! handles cached: registering allocates the labels and hashes the key, which every request
//! paying would cost more than the rest of a warm resolve.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const REQUESTS: &str = "promptstore_http_requests_total";
const REQUEST_SECONDS: &str = "promptstore_http_request_duration_seconds";
const QUEUE_DEPTH: &str = "promptstore_ingest_queue_events";
const INGESTED: &str = "promptstore_events_ingested_total";
const DUPLICATES: &str = "promptstore_events_duplicate_total";
const REJECTED: &str = "promptstore_events_rejected_total";
const COMMIT_EVENTS: &str = "promptstore_ingest_group_commit_events";
const COMMIT_SECONDS: &str = "promptstore_ingest_group_commit_duration_seconds";
const COMMIT_FAILURES: &str = "promptstore_ingest_group_commit_failures_total";
const SNAPSHOT: &str = "promptstore_runtime_snapshot_total";
const ALERT_RUNS: &str = "promptstore_alert_evaluation_runs_total";
const ALERT_TRANSITIONS: &str = "promptstore_alert_transitions_total";
const PRUNED: &str = "promptstore_events_pruned_total";
const EXPOSURES_RECORDED: &str = "promptstore_experiment_exposures_recorded_total";
const EXPOSURES_DROPPED: &str = "promptstore_experiment_exposures_dropped_total";
const EXPOSURE_FAILURES: &str = "promptstore_experiment_exposure_write_failures_total";
const ASSIGNMENTS: &str = "promptstore_experiment_assignments_total";
const RENDER_CACHE: &str = "promptstore_render_cache_total";
const DECISION_RUNS: &str = "promptstore_experiment_decision_runs_total";
const DECISIONS: &str = "promptstore_experiment_decisions_total";

/// Latency buckets in seconds: from a warm resolve (sub-millisecond) to a slow import.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Events per group commit: one small batch up to the cap.
const COMMIT_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Which runtime call read the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeOp {
    Resolve,
    Render,
    Bulk,
}

/// The cached series of one route template: its latency histogram, and one counter per
/// (method, status) seen so far.
struct RouteSeries {
    latency: Histogram,
    requests: RwLock<HashMap<u32, Counter>>,
}

/// Handles of every series the server records.
pub struct ServerMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    routes: RwLock<HashMap<String, Arc<RouteSeries>>>,
    pub ingest_queue_depth: Gauge,
    pub events_ingested: Counter,
    pub events_duplicate: Counter,
    pub events_rejected: Counter,
    pub group_commit_events: Histogram,
    /// How long each group commit's store transaction took, failed ones included.
    pub group_commit_seconds: Histogram,
    pub group_commit_failures: Counter,
    /// `[resolve, render, bulk] × [hit, miss]`.
    snapshot: [[Counter; 2]; 3],
    pub alert_runs: Counter,
    pub alert_transitions: Counter,
    pub events_pruned: Counter,
    /// First exposures the store kept (new units in a phase).
    pub exposures_recorded: Counter,
    /// Exposures lost: the buffer was full, or failed writes exceeded the retry bound.
    pub exposures_dropped: Counter,
    pub exposure_write_failures: Counter,
    /// Resolves and renders that assigned an arm.
    pub assignments: Counter,
    /// Render requests answered from the answer cache (`[hit, miss]`; requests the cache
    /// does not consider, such as oversized ones, count as neither).
    pub render_cache: [Counter; 2],
    pub decision_runs: Counter,
    /// Automatic decisions taken (arm stops, conclusions).
    pub decisions: Counter,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

impl ServerMetrics {
    pub fn new() -> anyhow::Result<ServerMetrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), LATENCY_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(COMMIT_EVENTS.into()), COMMIT_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), LATENCY_BUCKETS)?
            .build_recorder();
        let describe = |name: &'static str, help: &'static str| {
            recorder.describe_counter(KeyName::from(name), None, help.into());
        };
        describe(
            REQUESTS,
            "HTTP requests by route template, method and status.",
        );
        describe(
            REQUEST_SECONDS,
            "HTTP request latency by route template, seconds.",
        );
        describe(QUEUE_DEPTH, "Events waiting for the group-commit writer.");
        describe(INGESTED, "Events stored.");
        describe(
            DUPLICATES,
            "Events not stored again because their client id was known.",
        );
        describe(REJECTED, "Events refused by validation.");
        describe(
            COMMIT_EVENTS,
            "Events per group commit (one store transaction).",
        );
        describe(
            COMMIT_SECONDS,
            "Duration of each group commit's store transaction (events wait this long, plus the queue, before their answer).",
        );
        describe(COMMIT_FAILURES, "Group commits the store refused.");
        describe(
            SNAPSHOT,
            "Runtime reads served from the snapshot (hit) or that loaded a version from the store (miss).",
        );
        describe(ALERT_RUNS, "Runs of the alert evaluation.");
        describe(
            ALERT_TRANSITIONS,
            "Alert rules that changed between ok and firing.",
        );
        describe(PRUNED, "Raw events deleted by retention.");
        describe(
            EXPOSURES_RECORDED,
            "First exposures of units to experiment arms, stored.",
        );
        describe(
            EXPOSURES_DROPPED,
            "Exposures lost because the buffer was full or writes kept failing.",
        );
        describe(EXPOSURE_FAILURES, "Exposure writes the store refused.");
        describe(
            ASSIGNMENTS,
            "Resolves and renders assigned to an experiment arm.",
        );
        describe(
            RENDER_CACHE,
            "Render requests answered from the render answer cache (hit) or rendered (miss).",
        );
        describe(DECISION_RUNS, "Runs of the experiment decision worker.");
        describe(
            DECISIONS,
            "Automatic experiment decisions taken (arm stops, conclusions).",
        );

        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        let snapshot_counter = |op: &'static str, result: &'static str| {
            recorder.register_counter(
                &Key::from_parts(
                    SNAPSHOT,
                    vec![Label::new("op", op), Label::new("result", result)],
                ),
                &METADATA,
            )
        };
        let snapshot = [
            [
                snapshot_counter("resolve", "hit"),
                snapshot_counter("resolve", "miss"),
            ],
            [
                snapshot_counter("render", "hit"),
                snapshot_counter("render", "miss"),
            ],
            [
                snapshot_counter("bulk", "hit"),
                snapshot_counter("bulk", "miss"),
            ],
        ];
        let metrics = ServerMetrics {
            ingest_queue_depth: recorder
                .register_gauge(&Key::from_static_name(QUEUE_DEPTH), &METADATA),
            events_ingested: counter(INGESTED),
            events_duplicate: counter(DUPLICATES),
            events_rejected: counter(REJECTED),
            group_commit_events: recorder
                .register_histogram(&Key::from_static_name(COMMIT_EVENTS), &METADATA),
            group_commit_seconds: recorder
                .register_histogram(&Key::from_static_name(COMMIT_SECONDS), &METADATA),
            group_commit_failures: counter(COMMIT_FAILURES),
            snapshot,
            alert_runs: counter(ALERT_RUNS),
            alert_transitions: counter(ALERT_TRANSITIONS),
            events_pruned: counter(PRUNED),
            exposures_recorded: counter(EXPOSURES_RECORDED),
            exposures_dropped: counter(EXPOSURES_DROPPED),
            exposure_write_failures: counter(EXPOSURE_FAILURES),
            assignments: counter(ASSIGNMENTS),
            render_cache: ["hit", "miss"].map(|result| {
                recorder.register_counter(
                    &Key::from_parts(RENDER_CACHE, vec![Label::new("result", result)]),
                    &METADATA,
                )
            }),
            decision_runs: counter(DECISION_RUNS),
            decisions: counter(DECISIONS),
            handle: recorder.handle(),
            routes: RwLock::new(HashMap::new()),
            recorder,
        };
        // A gauge that was never set is not rendered; the queue starts empty.
        metrics.ingest_queue_depth.set(0.0);
        Ok(metrics)
    }

    /// One finished HTTP request. `route` is the matched template (never the raw path, so
    /// the number of series stays bounded).
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let series = self.route_series(route);
        series.latency.record(elapsed.as_secs_f64());
        let key = (u32::from(method_index(method)) << 16) | u32::from(status);
        let cached = series
            .requests
            .read()
            .ok()
            .and_then(|counters| counters.get(&key).cloned());
        let counter = cached.unwrap_or_else(|| {
            let counter = self.recorder.register_counter(
                &Key::from_parts(
                    REQUESTS,
                    vec![
                        Label::new("route", route.to_owned()),
                        Label::new("method", method_label(method).to_owned()),
                        Label::new("status", status.to_string()),
                    ],
                ),
                &METADATA,
            );
            if let Ok(mut counters) = series.requests.write() {
                counters.insert(key, counter.clone());
            }
            counter
        });
        counter.increment(1);
    }

    fn route_series(&self, route: &str) -> Arc<RouteSeries> {
        if let Some(series) = self.routes.read().ok().and_then(|r| r.get(route).cloned()) {
            return series;
        }
        let series = Arc::new(RouteSeries {
            latency: self.recorder.register_histogram(
                &Key::from_parts(REQUEST_SECONDS, vec![Label::new("route", route.to_owned())]),
                &METADATA,
            ),
            requests: RwLock::new(HashMap::new()),
        });
        // A poisoned lock only means another request panicked mid-insert: the map itself is
        // still a valid cache, and losing the insert costs one more registration.
        if let Ok(mut routes) = self.routes.write() {
            return routes.entry(route.to_owned()).or_insert(series).clone();
        }
        series
    }

    /// A runtime read: served from the snapshot (`hit`) or needing a store load (`miss`).
    pub fn snapshot_read(&self, op: RuntimeOp, hit: bool) {
        let row = match op {
            RuntimeOp::Resolve => 0,
            RuntimeOp::Render => 1,
            RuntimeOp::Bulk => 2,
        };
        self.snapshot[row][usize::from(!hit)].increment(1);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram samples into their buckets so memory stays bounded between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The standard methods get their own series; anything else is counted as `other`, so a
/// client cannot grow the number of series with made-up methods.
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

fn method_index(method: &str) -> u16 {
    METHODS
        .iter()
        .position(|m| *m == method)
        .map_or(0, |i| i as u16 + 1)
}

fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_with_their_labels() {
        let m = ServerMetrics::new().unwrap();
        m.request("/api/v1/resolve", "GET", 200, Duration::from_micros(300));
        m.request("/api/v1/resolve", "GET", 200, Duration::from_micros(300));
        m.request("/api/v1/resolve", "BREW", 405, Duration::from_micros(300));
        m.events_ingested.increment(5);
        m.snapshot_read(RuntimeOp::Render, false);
        m.group_commit_events.record(1000.0);
        m.group_commit_seconds.record(0.2);
        let text = m.render();
        assert!(
            text.contains(
                r#"promptstore_http_requests_total{route="/api/v1/resolve",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("promptstore_events_ingested_total 5"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"promptstore_http_requests_total{route="/api/v1/resolve",method="other",status="405"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"promptstore_runtime_snapshot_total{op="render",result="miss"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"promptstore_ingest_group_commit_events_bucket{le="1000"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"promptstore_ingest_group_commit_duration_seconds_bucket{le="0.25"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"promptstore_ingest_group_commit_duration_seconds_bucket{le="0.1"} 0"#),
            "{text}"
        );
        assert!(text.contains("promptstore_ingest_queue_events 0"), "{text}");
        assert!(
            text.contains("# HELP promptstore_events_ingested_total Events stored."),
            "{text}"
        );
    }

    #[test]
    fn two_instances_keep_separate_numbers() {
        let a = ServerMetrics::new().unwrap();
        let b = ServerMetrics::new().unwrap();
        a.events_rejected.increment(3);
        assert!(a.render().contains("promptstore_events_rejected_total 3"));
        assert!(b.render().contains("promptstore_events_rejected_total 0"));
    }
}
