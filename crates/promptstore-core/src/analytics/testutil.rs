//! Test helpers shared by the analytics modules: a seeded generator (so data-driven tests
//! are reproducible without a dependency) and an event builder.

use std::collections::BTreeMap;

use promptstore_types::CostSource;
use time::OffsetDateTime;

use super::model::EventRecord;
use super::rollup::Rollup;
use crate::model::ProjectId;

/// SplitMix64: tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal latency-like value around `median`.
    pub fn latency(&mut self, median: f64) -> f64 {
        median * (0.5 * self.normal()).exp()
    }
}

/// A successful, priced event of prompt `p` version 1 at the Unix epoch + `at` seconds.
pub fn event(at: i64) -> EventRecord {
    EventRecord {
        project: ProjectId("p1".into()),
        client_id: None,
        prompt_id: "id-a".into(),
        prompt: "a".into(),
        version: 1,
        label: None,
        experiment: None,
        arm: None,
        unit_id: None,
        model: "gpt-4o".into(),
        provider: None,
        input_tokens: 100,
        output_tokens: 20,
        cached_input_tokens: 0,
        latency_ms: Some(100.0),
        ttft_ms: None,
        cost: Some(0.001),
        cost_source: CostSource::Computed,
        success: true,
        error_type: None,
        scores: BTreeMap::new(),
        feedback: None,
        metadata: serde_json::json!({}),
        at: OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// Equal up to floating-point rounding of the sums (merging in another order adds the
/// same numbers in another order).
pub fn assert_rollups_close(a: &Rollup, b: &Rollup) {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
    assert_eq!(a.count, b.count);
    assert_eq!(a.successes, b.successes);
    assert_eq!(a.error_types, b.error_types);
    assert!(a.latency.same_distribution(&b.latency));
    assert!(a.ttft.same_distribution(&b.ttft));
    assert!(close(a.latency.sum(), b.latency.sum()));
    assert_eq!(
        (a.input_tokens, a.output_tokens),
        (b.input_tokens, b.output_tokens)
    );
    assert_eq!(a.cached_input_tokens, b.cached_input_tokens);
    assert_eq!(a.unpriced, b.unpriced);
    assert_eq!(a.unpriced_models, b.unpriced_models);
    assert_eq!(a.feedback, b.feedback);
    let moments = |x: &super::rollup::Moments, y: &super::rollup::Moments| {
        assert_eq!(x.count, y.count);
        assert!(close(x.sum, y.sum), "{} vs {}", x.sum, y.sum);
        assert!(close(x.sum_sq, y.sum_sq), "{} vs {}", x.sum_sq, y.sum_sq);
    };
    moments(&a.latency_moments, &b.latency_moments);
    moments(&a.cost, &b.cost);
    assert_eq!(
        a.scores.keys().collect::<Vec<_>>(),
        b.scores.keys().collect::<Vec<_>>()
    );
    for (k, m) in &a.scores {
        moments(m, &b.scores[k]);
    }
}
