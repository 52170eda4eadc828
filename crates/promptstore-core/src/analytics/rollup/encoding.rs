//! The rollup's compact, versioned byte encoding, for aggregate cells in database rows.
//! Dashboards decode cells by the thousand per query, so the format is a flat sequence that
//! decodes in one pass with no parsing beyond varints.
//!
//! Version 1; `var` = LEB128 varint, `f64` = 8 bytes little-endian, `str` = var length +
//! UTF-8 bytes, `moments` = var count, f64 sum, f64 sum of squares, `sketch` = var length +
//! the sketch's own encoding (length 0 = empty sketch), `map<T>` = var n + n × (str, T):
//!
//! ```text
//! u8      version = 1
//! var     count, var successes
//! map<var>      error types
//! sketch  latency, moments latency
//! sketch  ttft
//! var     input tokens, output tokens, cached input tokens
//! moments cost, var unpriced
//! map<var>      unpriced models
//! map<moments>  scores
//! var     thumbs up, thumbs down, ratings 1..=5, feedback given, negative feedback
//! ```
//!
//! Decoding checks the invariants `add` and `merge` keep (successes ≤ count, error types add
//! up to the failures, every event priced or unpriced, one latency moment per sketch value),
//! so a corrupt cell is an error rather than a wrong number on a dashboard.

use std::collections::BTreeMap;

use promptstore_stats::sketch::{DEFAULT_RELATIVE_ACCURACY, QuantileSketch, SketchError};

use super::{FeedbackCounts, Moments, Rollup};

const VERSION: u8 = 1;

/// Why bytes are not a rollup.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RollupDecodeError {
    #[error("encoded rollup is empty")]
    Empty,
    #[error("unsupported rollup encoding version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("encoded rollup is truncated at offset {offset}")]
    Truncated { offset: usize },
    #[error("encoded rollup holds a name that is not UTF-8 at offset {offset}")]
    InvalidUtf8 { offset: usize },
    #[error("encoded rollup has a bad {field} sketch: {source}")]
    Sketch {
        field: &'static str,
        #[source]
        source: SketchError,
    },
    #[error("encoded rollup is malformed: {0}")]
    Malformed(&'static str),
    #[error("encoded rollup has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

impl Rollup {
    /// Encode (format version 1, see the module docs of `encoding`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        put_var(&mut out, self.count);
        put_var(&mut out, self.successes);
        put_map(&mut out, &self.error_types, |o, v| put_var(o, *v));
        put_sketch(&mut out, &self.latency);
        put_moments(&mut out, &self.latency_moments);
        put_sketch(&mut out, &self.ttft);
        put_var(&mut out, self.input_tokens);
        put_var(&mut out, self.output_tokens);
        put_var(&mut out, self.cached_input_tokens);
        put_moments(&mut out, &self.cost);
        put_var(&mut out, self.unpriced);
        put_map(&mut out, &self.unpriced_models, |o, v| put_var(o, *v));
        put_map(&mut out, &self.scores, put_moments);
        let f = &self.feedback;
        for v in [f.thumbs_up, f.thumbs_down]
            .into_iter()
            .chain(f.ratings)
            .chain([f.given, f.negative])
        {
            put_var(&mut out, v);
        }
        out
    }

    /// Decode bytes written by [`encode`](Self::encode), checking every invariant.
    pub fn decode(bytes: &[u8]) -> Result<Rollup, RollupDecodeError> {
        let version = *bytes.first().ok_or(RollupDecodeError::Empty)?;
        if version != VERSION {
            return Err(RollupDecodeError::UnsupportedVersion(version));
        }
        let mut r = Reader { bytes, pos: 1 };
        let count = r.var()?;
        let successes = r.var()?;
        let error_types = r.map(Reader::var)?;
        let latency = r.sketch("latency")?;
        let latency_moments = r.moments()?;
        let ttft = r.sketch("ttft")?;
        let input_tokens = r.var()?;
        let output_tokens = r.var()?;
        let cached_input_tokens = r.var()?;
        let cost = r.moments()?;
        let unpriced = r.var()?;
        let unpriced_models = r.map(Reader::var)?;
        let scores = r.map(Reader::moments)?;
        let mut feedback = FeedbackCounts {
            thumbs_up: r.var()?,
            thumbs_down: r.var()?,
            ..FeedbackCounts::default()
        };
        for slot in &mut feedback.ratings {
            *slot = r.var()?;
        }
        feedback.given = r.var()?;
        feedback.negative = r.var()?;
        if r.pos != bytes.len() {
            return Err(RollupDecodeError::TrailingBytes(bytes.len() - r.pos));
        }
        let rollup = Rollup {
            count,
            successes,
            error_types,
            latency,
            latency_moments,
            ttft,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cost,
            unpriced,
            unpriced_models,
            scores,
            feedback,
        };
        check(&rollup)?;
        Ok(rollup)
    }
}

fn check(r: &Rollup) -> Result<(), RollupDecodeError> {
    let malformed = |what| Err(RollupDecodeError::Malformed(what));
    if r.successes > r.count {
        return malformed("more successes than events");
    }
    if sum(r.error_types.values()) != Some(r.count - r.successes) {
        return malformed("error type counts do not add up to the failed events");
    }
    if r.cost.count.checked_add(r.unpriced) != Some(r.count) {
        return malformed("priced and unpriced events do not add up to the events");
    }
    if sum(r.unpriced_models.values()) != Some(r.unpriced) {
        return malformed("unpriced model counts do not add up to the unpriced events");
    }
    if r.latency_moments.count != r.latency.count() {
        return malformed("latency moments and latency sketch disagree on the count");
    }
    if r.latency.count() > r.count || r.ttft.count() > r.count {
        return malformed("more latency values than events");
    }
    if r.scores.values().any(|m| m.count == 0 || m.count > r.count) {
        return malformed("a score count is zero or larger than the events");
    }
    let f = &r.feedback;
    if f.negative > f.given || f.given > r.count {
        return malformed("feedback counts are inconsistent");
    }
    Ok(())
}

fn sum<'a>(mut values: impl Iterator<Item = &'a u64>) -> Option<u64> {
    values.try_fold(0u64, |acc, &v| acc.checked_add(v))
}

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_var(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_moments(out: &mut Vec<u8>, m: &Moments) {
    put_var(out, m.count);
    put_f64(out, m.sum);
    put_f64(out, m.sum_sq);
}

fn put_sketch(out: &mut Vec<u8>, s: &QuantileSketch) {
    if s.is_empty() {
        // Most cells have no TTFT at all: an empty sketch costs one byte, not ~40.
        put_var(out, 0);
    } else {
        let bytes = s.to_bytes();
        put_var(out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    }
}

fn put_map<T>(out: &mut Vec<u8>, map: &BTreeMap<String, T>, put: impl Fn(&mut Vec<u8>, &T)) {
    put_var(out, map.len() as u64);
    for (k, v) in map {
        put_str(out, k);
        put(out, v);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self) -> RollupDecodeError {
        RollupDecodeError::Truncated { offset: self.pos }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RollupDecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.truncated())?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn var(&mut self) -> Result<u64, RollupDecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos).ok_or_else(|| self.truncated())?;
            self.pos += 1;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(RollupDecodeError::Malformed("varint overflows 64 bits"));
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RollupDecodeError::Malformed("varint longer than 10 bytes"))
    }

    fn len(&mut self) -> Result<usize, RollupDecodeError> {
        let n = self.var()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.truncated())
    }

    fn f64(&mut self) -> Result<f64, RollupDecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let v = f64::from_le_bytes(a);
        if !v.is_finite() {
            return Err(RollupDecodeError::Malformed("a sum is not finite"));
        }
        Ok(v)
    }

    fn str(&mut self) -> Result<String, RollupDecodeError> {
        let n = self.len()?;
        let at = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| RollupDecodeError::InvalidUtf8 { offset: at })
    }

    fn moments(&mut self) -> Result<Moments, RollupDecodeError> {
        let m = Moments {
            count: self.var()?,
            sum: self.f64()?,
            sum_sq: self.f64()?,
        };
        if m.sum_sq < 0.0 {
            return Err(RollupDecodeError::Malformed("a sum of squares is negative"));
        }
        Ok(m)
    }

    fn sketch(&mut self, field: &'static str) -> Result<QuantileSketch, RollupDecodeError> {
        let n = self.len()?;
        if n == 0 {
            return Ok(QuantileSketch::default());
        }
        let b = self.take(n)?;
        let s = QuantileSketch::from_bytes(b)
            .map_err(|source| RollupDecodeError::Sketch { field, source })?;
        // One accuracy everywhere, so merging cells can never meet a mismatch.
        if s.relative_accuracy() != DEFAULT_RELATIVE_ACCURACY {
            return Err(RollupDecodeError::Sketch {
                field,
                source: SketchError::AccuracyMismatch {
                    left: DEFAULT_RELATIVE_ACCURACY,
                    right: s.relative_accuracy(),
                },
            });
        }
        Ok(s)
    }

    fn map<T>(
        &mut self,
        read: impl Fn(&mut Self) -> Result<T, RollupDecodeError>,
    ) -> Result<BTreeMap<String, T>, RollupDecodeError> {
        let n = self.len()?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?;
            let v = read(self)?;
            if map.insert(k, v).is_some() {
                return Err(RollupDecodeError::Malformed("a name appears twice"));
            }
        }
        Ok(map)
    }
}
