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
//! up to the failures, every event priced or unpriced, one latency moment per sketch value,
//! map names in strictly increasing order as `encode` writes them), so a corrupt cell is an
//! error rather than a wrong number on a dashboard. Queries do not decode cells one by one:
//! they fold each encoded cell straight into an accumulator (`Rollup::merge_encoded`), with
//! the same checks.

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
        let mut rollup = Rollup::default();
        rollup.merge_encoded(bytes)?;
        Ok(rollup)
    }

    /// Fold an encoded rollup in: the same as `merge(&Rollup::decode(bytes)?)`, with the same
    /// checks, without building the rollup (no allocation but for names and sketch buckets
    /// new to `self`). Queries fold thousands of cells this way. On error `self` is unchanged.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), RollupDecodeError> {
        Encoded::parse(bytes)?.merge_into(self, true);
        Ok(())
    }

    /// Like [`merge_encoded`](Self::merge_encoded), but leaves the latency and TTFT sketches
    /// of `self` as they are: for readers of counts and moments only (experiment results),
    /// which skip the costliest part of a merge. The encoding is checked all the same.
    pub fn merge_encoded_counts(&mut self, bytes: &[u8]) -> Result<(), RollupDecodeError> {
        Encoded::parse(bytes)?.merge_into(self, false);
        Ok(())
    }
}

/// A map of the encoding: its `n` entries, as bytes (checked by `Reader::section`).
#[derive(Clone, Copy)]
struct Section<'a> {
    n: usize,
    bytes: &'a [u8],
}

impl<'a> Section<'a> {
    /// The entries, each value read by `read` after its name.
    fn entries<T>(
        self,
        read: impl Fn(&mut Reader<'a>) -> Result<T, RollupDecodeError>,
    ) -> impl Iterator<Item = (&'a str, T)> {
        let mut r = Reader {
            bytes: self.bytes,
            pos: 0,
        };
        // The section was checked when it was located, so reading cannot fail here.
        (0..self.n).map_while(move |_| Some((r.str().ok()?, read(&mut r).ok()?)))
    }
}

/// An encoded rollup, checked: scalars read, maps and sketches located.
struct Encoded<'a> {
    count: u64,
    successes: u64,
    error_types: Section<'a>,
    latency: &'a [u8],
    latency_moments: Moments,
    ttft: &'a [u8],
    input_tokens: u64,
    output_tokens: u64,
    cached_input_tokens: u64,
    cost: Moments,
    unpriced: u64,
    unpriced_models: Section<'a>,
    scores: Section<'a>,
    feedback: FeedbackCounts,
}

impl<'a> Encoded<'a> {
    /// Read and check every part and invariant (see the module docs).
    fn parse(bytes: &'a [u8]) -> Result<Encoded<'a>, RollupDecodeError> {
        let version = *bytes.first().ok_or(RollupDecodeError::Empty)?;
        if version != VERSION {
            return Err(RollupDecodeError::UnsupportedVersion(version));
        }
        let mut r = Reader { bytes, pos: 1 };
        let count = r.var()?;
        let successes = r.var()?;
        let (error_types, error_sum) = r.counts_map()?;
        let (latency, latency_count) = r.sketch("latency")?;
        let latency_moments = r.moments()?;
        let (ttft, ttft_count) = r.sketch("ttft")?;
        let input_tokens = r.var()?;
        let output_tokens = r.var()?;
        let cached_input_tokens = r.var()?;
        let cost = r.moments()?;
        let unpriced = r.var()?;
        let (unpriced_models, unpriced_sum) = r.counts_map()?;
        let (scores, score_counts) = r.section(|r| r.moments().map(|m| m.count))?;
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

        let malformed = |what| Err(RollupDecodeError::Malformed(what));
        if successes > count {
            return malformed("more successes than events");
        }
        if error_sum != Some(count - successes) {
            return malformed("error type counts do not add up to the failed events");
        }
        if cost.count.checked_add(unpriced) != Some(count) {
            return malformed("priced and unpriced events do not add up to the events");
        }
        if unpriced_sum != Some(unpriced) {
            return malformed("unpriced model counts do not add up to the unpriced events");
        }
        if latency_moments.count != latency_count {
            return malformed("latency moments and latency sketch disagree on the count");
        }
        if latency_count > count || ttft_count > count {
            return malformed("more latency values than events");
        }
        if score_counts.is_some_and(|(min, max)| min == 0 || max > count) {
            return malformed("a score count is zero or larger than the events");
        }
        if feedback.negative > feedback.given || feedback.given > count {
            return malformed("feedback counts are inconsistent");
        }
        Ok(Encoded {
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
        })
    }

    /// Add this cell to `r` (as `Rollup::merge` does); the sketches only with `sketches`.
    fn merge_into(self, r: &mut Rollup, sketches: bool) {
        r.count += self.count;
        r.successes += self.successes;
        for (kind, n) in self.error_types.entries(Reader::var) {
            add_named(&mut r.error_types, kind, n, |a, b| *a += b);
        }
        if sketches {
            // Checked by `parse` (valid, the one accuracy): merging can only fail on a u64
            // count overflow, which no real data reaches (as in `Rollup::merge`).
            if !self.latency.is_empty() {
                let _ = r.latency.merge_bytes(self.latency);
            }
            if !self.ttft.is_empty() {
                let _ = r.ttft.merge_bytes(self.ttft);
            }
        }
        r.latency_moments.merge(&self.latency_moments);
        r.input_tokens += self.input_tokens;
        r.output_tokens += self.output_tokens;
        r.cached_input_tokens += self.cached_input_tokens;
        r.cost.merge(&self.cost);
        r.unpriced += self.unpriced;
        for (model, n) in self.unpriced_models.entries(Reader::var) {
            add_named(&mut r.unpriced_models, model, n, |a, b| *a += b);
        }
        for (name, m) in self.scores.entries(Reader::moments) {
            add_named(&mut r.scores, name, m, |a, b| a.merge(&b));
        }
        r.feedback.merge(&self.feedback);
    }
}

/// Merge `value` into the map's entry `name`, allocating the name only when it is new.
fn add_named<T: Default>(
    map: &mut BTreeMap<String, T>,
    name: &str,
    value: T,
    merge: impl Fn(&mut T, T),
) {
    match map.get_mut(name) {
        Some(slot) => merge(slot, value),
        None => {
            let mut slot = T::default();
            merge(&mut slot, value);
            map.insert(name.to_owned(), slot);
        }
    }
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

    fn str(&mut self) -> Result<&'a str, RollupDecodeError> {
        let n = self.len()?;
        let at = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| RollupDecodeError::InvalidUtf8 { offset: at })
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

    /// A sketch's bytes (empty for an empty sketch), checked, and its count.
    fn sketch(&mut self, field: &'static str) -> Result<(&'a [u8], u64), RollupDecodeError> {
        let n = self.len()?;
        let b = self.take(n)?;
        if n == 0 {
            return Ok((b, 0));
        }
        let (alpha, count) = QuantileSketch::inspect_bytes(b)
            .map_err(|source| RollupDecodeError::Sketch { field, source })?;
        // One accuracy everywhere, so merging cells can never meet a mismatch.
        if alpha != DEFAULT_RELATIVE_ACCURACY {
            return Err(RollupDecodeError::Sketch {
                field,
                source: SketchError::AccuracyMismatch {
                    left: DEFAULT_RELATIVE_ACCURACY,
                    right: alpha,
                },
            });
        }
        Ok((b, count))
    }

    /// A map whose values are read by `read` (which returns a count to check), its names in
    /// strictly increasing order as `encode` writes them (so no name appears twice); returns
    /// the section and the smallest and largest count.
    fn section(
        &mut self,
        read: impl Fn(&mut Self) -> Result<u64, RollupDecodeError>,
    ) -> Result<(Section<'a>, Option<(u64, u64)>), RollupDecodeError> {
        let n = self.len()?;
        let start = self.pos;
        let mut previous: Option<&str> = None;
        let mut range: Option<(u64, u64)> = None;
        for _ in 0..n {
            let name = self.str()?;
            if previous.is_some_and(|p| p >= name) {
                return Err(RollupDecodeError::Malformed(
                    "names are out of order or a name appears twice",
                ));
            }
            previous = Some(name);
            let v = read(self)?;
            range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        }
        let section = Section {
            n,
            bytes: &self.bytes[start..self.pos],
        };
        Ok((section, range))
    }

    /// A map of names to counts, and the counts' sum (None on overflow).
    fn counts_map(&mut self) -> Result<(Section<'a>, Option<u64>), RollupDecodeError> {
        let (section, _) = self.section(Reader::var)?;
        let sum = section
            .entries(Reader::var)
            .try_fold(0u64, |acc, (_, v)| acc.checked_add(v));
        Ok((section, sum))
    }
}
