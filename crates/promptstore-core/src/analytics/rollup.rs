//! The aggregate cell: a mergeable summary of a set of events. Cells are kept per hour and
//! per day and per combination of dimensions; any query merges the cells it covers, so
//! `merge` must be associative and commutative, and folding events one by one must equal
//! merging partial folds.

use std::collections::BTreeMap;

use promptstore_stats::sketch::QuantileSketch;
use promptstore_types::Feedback;

use super::model::EventRecord;

mod encoding;

pub use encoding::RollupDecodeError;

/// The error type recorded for a failed event that named none.
pub const UNKNOWN_ERROR_TYPE: &str = "unknown";

/// Count, sum and sum of squares of a numeric series: enough for a mean, a variance and
/// Welch's t-test without keeping the values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_sq += value * value;
    }

    pub fn merge(&mut self, other: &Moments) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Take one value back out (late judgements replace earlier ones). When the last value
    /// leaves, the sums are reset to exactly zero so rounding residue cannot accumulate.
    pub fn remove(&mut self, value: f64) {
        if self.count <= 1 {
            *self = Moments::default();
            return;
        }
        self.count -= 1;
        self.sum -= value;
        // Σx² can only dip below zero through rounding.
        self.sum_sq = (self.sum_sq - value * value).max(0.0);
    }

    /// Sample variance (n − 1 denominator); None below 2 values. Clamped at zero because
    /// Σx² − (Σx)²/n can come out slightly negative in floating point.
    pub fn variance(&self) -> Option<f64> {
        if self.count < 2 {
            return None;
        }
        let n = self.count as f64;
        Some(((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0))
    }

    /// Sample standard deviation; None below 2 values.
    pub fn stddev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// Feedback counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub thumbs_up: u64,
    pub thumbs_down: u64,
    /// Ratings 1..=5 at index 0..=4.
    pub ratings: [u64; 5],
    /// Events with any feedback (thumbs or rating): the denominator of the negative rate.
    pub given: u64,
    /// Events whose feedback is negative: thumbs down, or a rating of 1 or 2. An event with
    /// both counts once, so the negative rate never exceeds 1.
    pub negative: u64,
}

impl FeedbackCounts {
    pub fn add(&mut self, feedback: &Feedback) {
        self.apply(feedback, |c| *c += 1);
    }

    /// Undo `add` of the same feedback (saturating: a cell never goes below zero).
    pub fn remove(&mut self, feedback: &Feedback) {
        self.apply(feedback, |c| *c = c.saturating_sub(1));
    }

    fn apply(&mut self, feedback: &Feedback, step: impl Fn(&mut u64)) {
        match feedback.thumbs_up {
            Some(true) => step(&mut self.thumbs_up),
            Some(false) => step(&mut self.thumbs_down),
            None => {}
        }
        let rating = feedback.rating.filter(|r| (1..=5).contains(r));
        if let Some(r) = rating {
            step(&mut self.ratings[usize::from(r - 1)]);
        }
        if feedback.thumbs_up.is_some() || rating.is_some() {
            step(&mut self.given);
        }
        if is_negative(feedback) {
            step(&mut self.negative);
        }
    }

    pub fn merge(&mut self, other: &FeedbackCounts) {
        self.thumbs_up += other.thumbs_up;
        self.thumbs_down += other.thumbs_down;
        for (a, b) in self.ratings.iter_mut().zip(other.ratings) {
            *a += b;
        }
        self.given += other.given;
        self.negative += other.negative;
    }

    /// Number of ratings given.
    pub fn rating_count(&self) -> u64 {
        self.ratings.iter().sum()
    }

    /// Mean of the 1–5 ratings; None without any.
    pub fn mean_rating(&self) -> Option<f64> {
        let n = self.rating_count();
        let total: u64 = self.ratings.iter().zip(1u64..).map(|(c, r)| c * r).sum();
        (n > 0).then(|| total as f64 / n as f64)
    }

    /// Negative feedback over all feedback given; None without feedback.
    pub fn negative_rate(&self) -> Option<f64> {
        (self.given > 0).then(|| self.negative as f64 / self.given as f64)
    }
}

/// Thumbs down or a rating of 1 or 2.
pub fn is_negative(feedback: &Feedback) -> bool {
    feedback.thumbs_up == Some(false) || matches!(feedback.rating, Some(1 | 2))
}

/// The summary of a set of events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub count: u64,
    pub successes: u64,
    /// Error type → count (failed events without a type count under `unknown`).
    pub error_types: BTreeMap<String, u64>,
    /// Latency in ms: the sketch gives percentiles with a relative-error guarantee.
    pub latency: QuantileSketch,
    pub latency_moments: Moments,
    pub ttft: QuantileSketch,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    /// Cost of the priced events (reported or computed).
    pub cost: Moments,
    pub unpriced: u64,
    /// Models seen without a price, with their event counts.
    pub unpriced_models: BTreeMap<String, u64>,
    pub scores: BTreeMap<String, Moments>,
    pub feedback: FeedbackCounts,
}

/// Add `by` to the count under `key`. Events add to keys that exist nearly always, so the
/// key is copied only the first time.
fn bump(map: &mut BTreeMap<String, u64>, key: &str, by: u64) {
    match map.get_mut(key) {
        Some(count) => *count += by,
        None => {
            map.insert(key.to_owned(), by);
        }
    }
}

impl Rollup {
    /// A rollup of the given events.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a EventRecord>) -> Rollup {
        let mut r = Rollup::default();
        for e in events {
            r.add(e);
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Failed events.
    pub fn errors(&self) -> u64 {
        self.count.saturating_sub(self.successes)
    }

    /// Fold one event in.
    pub fn add(&mut self, event: &EventRecord) {
        self.count += 1;
        if event.success {
            self.successes += 1;
        } else {
            let kind = event.error_type.as_deref().unwrap_or(UNKNOWN_ERROR_TYPE);
            bump(&mut self.error_types, kind, 1);
        }
        if let Some(ms) = event.latency_ms.filter(|v| v.is_finite()) {
            // Validated events hold finite values, and the filter keeps it so: insert then
            // only fails on a u64 count overflow, which no real cell reaches.
            if self.latency.insert(ms).is_ok() {
                self.latency_moments.add(ms);
            }
        }
        if let Some(ms) = event.ttft_ms.filter(|v| v.is_finite()) {
            let _ = self.ttft.insert(ms);
        }
        self.input_tokens += event.input_tokens;
        self.output_tokens += event.output_tokens;
        self.cached_input_tokens += event.cached_input_tokens;
        match event.cost.filter(|c| c.is_finite()) {
            Some(cost) => self.cost.add(cost),
            None => {
                self.unpriced += 1;
                bump(&mut self.unpriced_models, &event.model, 1);
            }
        }
        for (name, &value) in &event.scores {
            if value.is_finite() {
                match self.scores.get_mut(name.as_str()) {
                    Some(moments) => moments.add(value),
                    None => self.scores.entry(name.clone()).or_default().add(value),
                }
            }
        }
        if let Some(feedback) = &event.feedback {
            self.feedback.add(feedback);
        }
    }

    /// Fold another rollup in: the result summarises the union of both event sets.
    pub fn merge(&mut self, other: &Rollup) {
        self.count += other.count;
        self.successes += other.successes;
        for (kind, n) in &other.error_types {
            *self.error_types.entry(kind.clone()).or_insert(0) += n;
        }
        // Every sketch here has the default accuracy (`decode` refuses any other), so a
        // merge can only fail on a u64 count overflow, which no real data reaches.
        let _ = self.latency.merge(&other.latency);
        self.latency_moments.merge(&other.latency_moments);
        let _ = self.ttft.merge(&other.ttft);
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cost.merge(&other.cost);
        self.unpriced += other.unpriced;
        for (model, n) in &other.unpriced_models {
            *self.unpriced_models.entry(model.clone()).or_insert(0) += n;
        }
        for (name, m) in &other.scores {
            self.scores.entry(name.clone()).or_default().merge(m);
        }
        self.feedback.merge(&other.feedback);
    }

    /// Late judgements: take the event's old scores and feedback out and put the new ones
    /// in. Scores are the event's full score maps before and after (the caller merges the
    /// attached scores into the old map); the event count and everything else stay.
    pub fn replace_judgements(
        &mut self,
        old_scores: &BTreeMap<String, f64>,
        old_feedback: Option<&Feedback>,
        new_scores: &BTreeMap<String, f64>,
        new_feedback: Option<&Feedback>,
    ) {
        for (name, &value) in old_scores {
            if !value.is_finite() {
                continue;
            }
            if let Some(m) = self.scores.get_mut(name) {
                m.remove(value);
                if m.count == 0 {
                    self.scores.remove(name);
                }
            }
        }
        for (name, &value) in new_scores {
            if value.is_finite() {
                self.scores.entry(name.clone()).or_default().add(value);
            }
        }
        if let Some(f) = old_feedback {
            self.feedback.remove(f);
        }
        if let Some(f) = new_feedback {
            self.feedback.add(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::{CostSource, Feedback};

    use super::*;
    use crate::analytics::testutil::{Rng, assert_rollups_close, event};

    /// A varied event: failures with and without a type, unpriced models, scores, feedback.
    fn random_event(rng: &mut Rng, i: i64) -> EventRecord {
        let mut e = event(i);
        e.success = rng.unit() > 0.2;
        if !e.success && rng.unit() > 0.3 {
            e.error_type = Some(["timeout", "rate_limit"][rng.below(2) as usize].into());
        }
        e.latency_ms = (rng.unit() > 0.1).then(|| rng.latency(300.0));
        e.ttft_ms = (rng.unit() > 0.5).then(|| rng.latency(80.0));
        e.input_tokens = rng.below(5000);
        e.output_tokens = rng.below(800);
        e.cached_input_tokens = e.input_tokens / 3;
        if rng.unit() < 0.15 {
            e.model = "my-local-model".into();
            e.cost = None;
            e.cost_source = CostSource::Unpriced;
        } else {
            e.cost = Some(rng.unit() / 100.0);
        }
        if rng.unit() < 0.5 {
            e.scores.insert("accuracy".into(), rng.unit());
        }
        if rng.unit() < 0.3 {
            e.scores.insert("tone".into(), rng.normal());
        }
        if rng.unit() < 0.4 {
            e.feedback = Some(Feedback {
                thumbs_up: (rng.unit() < 0.7).then(|| rng.unit() < 0.7),
                rating: (rng.unit() < 0.5).then(|| 1 + rng.below(5) as u8),
                comment: None,
            });
        }
        e
    }

    fn random_events(seed: u64, n: i64) -> Vec<EventRecord> {
        let mut rng = Rng::new(seed);
        (0..n).map(|i| random_event(&mut rng, i)).collect()
    }

    #[test]
    fn folding_equals_merging_random_partitions() {
        for seed in 0..20 {
            let events = random_events(seed, 300);
            let whole = Rollup::of(&events);
            let mut rng = Rng::new(seed + 1000);
            let parts = 1 + rng.below(8) as usize;
            let mut partials = vec![Rollup::default(); parts];
            for e in &events {
                partials[rng.below(parts as u64) as usize].add(e);
            }
            // Merge in a shuffled order, through a tree, to exercise both laws.
            let mut merged = Rollup::default();
            for p in partials.iter().rev() {
                let mut tmp = p.clone();
                tmp.merge(&merged);
                merged = tmp;
            }
            assert_rollups_close(&whole, &merged);
        }
    }

    #[test]
    fn counts_what_it_should() {
        let mut failed = event(0);
        failed.success = false;
        let mut typed = event(0);
        typed.success = false;
        typed.error_type = Some("timeout".into());
        let mut unpriced = event(0);
        unpriced.model = "mystery".into();
        unpriced.cost = None;
        unpriced.cost_source = CostSource::Unpriced;
        let r = Rollup::of(&[event(0), failed, typed, unpriced]);
        assert_eq!(r.count, 4);
        assert_eq!(r.successes, 2);
        assert_eq!(r.errors(), 2);
        assert_eq!(r.error_types["unknown"], 1);
        assert_eq!(r.error_types["timeout"], 1);
        assert_eq!(r.cost.count, 3);
        assert_eq!(r.unpriced, 1);
        assert_eq!(r.unpriced_models["mystery"], 1);
        assert_eq!(r.latency.count(), 4);
        assert!(r.ttft.is_empty());
    }

    #[test]
    fn encode_decode_round_trips() {
        for seed in 0..10 {
            let r = Rollup::of(&random_events(seed, 1 + seed as i64 * 37));
            let bytes = r.encode();
            assert_eq!(Rollup::decode(&bytes).unwrap(), r);
        }
        let empty = Rollup::default();
        assert_eq!(Rollup::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn merging_encoded_cells_equals_merging_decoded_ones() {
        for seed in 0..10 {
            let base = Rollup::of(&random_events(seed, 40));
            let cell = Rollup::of(&random_events(seed + 100, 1 + seed as i64 * 29));
            let mut want = base.clone();
            want.merge(&cell);
            let mut got = base.clone();
            got.merge_encoded(&cell.encode()).unwrap();
            assert_eq!(got, want);

            // Counts and moments only: everything but the sketches, which stay as they were.
            let mut counts = base.clone();
            counts.merge_encoded_counts(&cell.encode()).unwrap();
            assert_eq!(counts.latency, base.latency);
            assert_eq!(counts.ttft, base.ttft);
            counts.latency = want.latency.clone();
            counts.ttft = want.ttft.clone();
            assert_eq!(counts, want);
        }
    }

    #[test]
    fn merging_a_corrupt_cell_changes_nothing() {
        let base = Rollup::of(&random_events(1, 30));
        let good = Rollup::of(&random_events(2, 60)).encode();
        for cut in 1..good.len() {
            let mut r = base.clone();
            assert!(r.merge_encoded(&good[..cut]).is_err(), "cut at {cut}");
            assert_eq!(r, base);
        }
        for i in 0..good.len() {
            let mut c = good.clone();
            c[i] ^= 0x55;
            let mut r = base.clone();
            if r.merge_encoded(&c).is_err() {
                assert_eq!(r, base, "corrupt byte {i}");
            }
        }
        // Names must come in the order `encode` writes them: a repeated name is refused.
        let mut twice = Rollup::default();
        twice.add(&event(0));
        for name in ["a", "b"] {
            twice.scores.insert(
                name.into(),
                Moments {
                    count: 1,
                    sum: 1.0,
                    sum_sq: 1.0,
                },
            );
        }
        let mut bytes = twice.encode();
        assert!(Rollup::decode(&bytes).is_ok());
        let at = bytes.windows(2).position(|w| w == [1, b'b']).unwrap();
        bytes[at + 1] = b'a';
        assert_eq!(
            Rollup::decode(&bytes),
            Err(RollupDecodeError::Malformed(
                "names are out of order or a name appears twice"
            ))
        );
    }

    #[test]
    fn corrupt_input_is_an_error_never_a_panic() {
        let good = Rollup::of(&random_events(7, 50)).encode();
        assert_eq!(Rollup::decode(&[]), Err(RollupDecodeError::Empty));
        let mut v = good.clone();
        v[0] = 9;
        assert_eq!(
            Rollup::decode(&v),
            Err(RollupDecodeError::UnsupportedVersion(9))
        );
        for cut in 1..good.len() {
            assert!(Rollup::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            Rollup::decode(&trailing),
            Err(RollupDecodeError::TrailingBytes(1))
        );
        // More successes than events.
        let mut r = Rollup::of(&[event(0)]);
        r.successes = 2;
        assert!(matches!(
            Rollup::decode(&r.encode()),
            Err(RollupDecodeError::Malformed(_))
        ));
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut c = good.clone();
                c[i] = b;
                let _ = Rollup::decode(&c);
            }
        }
    }

    #[test]
    fn late_judgements_replace_earlier_ones() {
        let fb = |thumbs: Option<bool>, rating: Option<u8>| Feedback {
            thumbs_up: thumbs,
            rating,
            comment: None,
        };
        // (old scores, old feedback, new scores, new feedback)
        type Case = (
            Vec<(&'static str, f64)>,
            Option<Feedback>,
            Vec<(&'static str, f64)>,
            Option<Feedback>,
        );
        let cases: Vec<Case> = vec![
            (vec![], None, vec![], Some(fb(Some(false), None))),
            (
                vec![],
                Some(fb(Some(false), Some(1))),
                vec![],
                Some(fb(Some(true), Some(5))),
            ),
            (
                vec![("acc", 0.2)],
                None,
                vec![("acc", 0.9), ("tone", 1.0)],
                None,
            ),
            (
                vec![("acc", 0.2)],
                Some(fb(None, Some(3))),
                vec![("acc", 0.2)],
                Some(fb(None, Some(2))),
            ),
        ];
        let others = random_events(3, 40);
        for (old_s, old_f, new_s, new_f) in cases {
            let mk = |s: &[(&str, f64)], f: &Option<Feedback>| {
                let mut e = event(0);
                e.scores = s.iter().map(|(k, v)| (k.to_string(), *v)).collect();
                e.feedback = f.clone();
                e
            };
            let before = mk(&old_s, &old_f);
            let after = mk(&new_s, &new_f);
            let mut cell = Rollup::of(others.iter().chain([&before]));
            cell.replace_judgements(
                &before.scores,
                before.feedback.as_ref(),
                &after.scores,
                after.feedback.as_ref(),
            );
            let expected = Rollup::of(others.iter().chain([&after]));
            assert_rollups_close(&cell, &expected);
        }
    }

    #[test]
    fn removing_the_only_score_removes_the_series() {
        let mut e = event(0);
        e.scores.insert("acc".into(), 0.3);
        let mut r = Rollup::of([&e]);
        r.replace_judgements(&e.scores, None, &BTreeMap::new(), None);
        assert!(r.scores.is_empty());
    }

    #[test]
    fn percentiles_are_within_the_sketch_error() {
        let mut rng = Rng::new(42);
        let mut exact = Vec::new();
        let mut cells: Vec<Rollup> = vec![Rollup::default(); 24];
        for i in 0..20_000 {
            let mut e = event(i);
            let v = rng.latency(250.0) + if rng.unit() < 0.05 { 3000.0 } else { 0.0 };
            e.latency_ms = Some(v);
            exact.push(v);
            cells[(i % 24) as usize].add(&e);
        }
        let mut merged = Rollup::default();
        for c in &cells {
            merged.merge(&Rollup::decode(&c.encode()).unwrap());
        }
        exact.sort_by(f64::total_cmp);
        let alpha = merged.latency.relative_accuracy();
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let want = exact[(q * (exact.len() - 1) as f64).floor() as usize];
            let got = merged.latency.quantile(q).unwrap().unwrap();
            assert!(
                (got - want).abs() <= alpha * want + 1e-9,
                "q={q}: got {got}, exact {want}"
            );
        }
    }
}
