//! A mergeable quantile sketch with a relative-error guarantee (DDSketch: Masson, Rim and
//! Lee, VLDB 2019), so latency percentiles can be kept per time bucket in database rows and
//! combined across buckets, arms or servers without the raw events.
//!
//! Guarantee: for relative accuracy α, [`QuantileSketch::quantile`]`(q)` returns a value
//! within α·|x| of x, the element of rank ⌊q·(n−1)⌋ (0-based) of the sorted inserted values.
//! Positive values go to logarithmic buckets (γ^(i−1), γ^i] with γ = (1+α)/(1−α), negative
//! ones to a mirrored set, exact zeros to their own counter; a bucket reports 2γ^i/(γ+1).
//! Merging adds bucket counts, so it is exact, associative and commutative: merging the
//! sketches of two data sets gives the sketch of their union.

mod encoding;
mod store;

use store::Store;

/// The default relative accuracy: 1%.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;
/// Accuracy bounds: below 1e-6 the bucket indices of extreme doubles leave i32; above 0.5
/// the sketch says little.
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-6;
pub const MAX_RELATIVE_ACCURACY: f64 = 0.5;

/// What can go wrong using or decoding a sketch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    #[error(
        "relative accuracy must be between {MIN_RELATIVE_ACCURACY} and {MAX_RELATIVE_ACCURACY}, got {0}"
    )]
    InvalidAccuracy(f64),
    #[error("sketch values must be finite, got {0}")]
    NonFiniteValue(f64),
    #[error("quantile must be between 0 and 1, got {0}")]
    InvalidQuantile(f64),
    #[error("cannot merge sketches of different accuracy ({left} and {right})")]
    AccuracyMismatch { left: f64, right: f64 },
    #[error("the sketch's count would overflow a u64")]
    CountOverflow,
    #[error("encoded sketch is empty")]
    EmptyEncoding,
    #[error("unsupported sketch encoding version {0} (this build reads version 1)")]
    UnsupportedVersion(u8),
    #[error("encoded sketch is truncated (needed {needed} more bytes at offset {offset})")]
    Truncated { offset: usize, needed: usize },
    #[error("encoded sketch is malformed: {0}")]
    Malformed(&'static str),
    #[error("encoded sketch has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// A DDSketch over f64 values. See the module documentation for the guarantee.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    alpha: f64,
    /// ln γ, γ = (1+α)/(1−α).
    ln_gamma: f64,
    positive: Store,
    negative: Store,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for QuantileSketch {
    /// An empty sketch with 1% relative accuracy.
    fn default() -> Self {
        Self::empty(DEFAULT_RELATIVE_ACCURACY)
    }
}

impl QuantileSketch {
    /// An empty sketch with relative accuracy `alpha`.
    pub fn new(alpha: f64) -> Result<Self, SketchError> {
        if !(MIN_RELATIVE_ACCURACY..=MAX_RELATIVE_ACCURACY).contains(&alpha) {
            return Err(SketchError::InvalidAccuracy(alpha));
        }
        Ok(Self::empty(alpha))
    }

    fn empty(alpha: f64) -> Self {
        Self {
            alpha,
            ln_gamma: ((1.0 + alpha) / (1.0 - alpha)).ln(),
            positive: Store::default(),
            negative: Store::default(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The relative accuracy α.
    pub fn relative_accuracy(&self) -> f64 {
        self.alpha
    }

    /// Add one value.
    pub fn insert(&mut self, value: f64) -> Result<(), SketchError> {
        self.insert_n(value, 1)
    }

    /// Add `n` copies of a value.
    pub fn insert_n(&mut self, value: f64, n: u64) -> Result<(), SketchError> {
        if !value.is_finite() {
            return Err(SketchError::NonFiniteValue(value));
        }
        if n == 0 {
            return Ok(());
        }
        let count = self
            .count
            .checked_add(n)
            .ok_or(SketchError::CountOverflow)?;
        // Buckets never hold more than `count`, so they cannot overflow once count did not.
        if value > 0.0 {
            let index = self.index(value);
            self.positive.add(index, n);
        } else if value < 0.0 {
            let index = self.index(-value);
            self.negative.add(index, n);
        } else {
            self.zero_count += n;
        }
        self.count = count;
        self.sum += value * n as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        Ok(())
    }

    /// Fold `other` into this sketch. Both must have the same accuracy.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), SketchError> {
        if self.alpha != other.alpha {
            return Err(SketchError::AccuracyMismatch {
                left: self.alpha,
                right: other.alpha,
            });
        }
        let count = self
            .count
            .checked_add(other.count)
            .ok_or(SketchError::CountOverflow)?;
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero_count += other.zero_count;
        self.count = count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The exact sum of the inserted values (up to floating-point rounding).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The exact smallest value, None when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The exact largest value, None when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The mean, None when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The q-quantile (q in [0, 1]) within the relative accuracy of the element of rank
    /// ⌊q·(n−1)⌋; None when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>, SketchError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(SketchError::InvalidQuantile(q));
        }
        if self.count == 0 {
            return Ok(None);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        // Walk the values in increasing order: negatives from the largest magnitude down,
        // then zeros, then positives up. The target is the first bucket whose running count
        // passes `rank`.
        let mut seen = 0u64;
        for (i, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Ok(Some(self.clamp(-self.value(i))));
            }
        }
        seen += self.zero_count;
        if seen > rank {
            return Ok(Some(self.clamp(0.0)));
        }
        for (i, c) in self.positive.iter() {
            seen += c;
            if seen > rank {
                return Ok(Some(self.clamp(self.value(i))));
            }
        }
        // Unreachable while count equals the buckets' total (an invariant of every
        // constructor); the maximum is the right answer for the top rank anyway.
        Ok(Some(self.max))
    }

    /// Bucket index of a positive value: ⌈ln x / ln γ⌉.
    fn index(&self, x: f64) -> i32 {
        // In range: |ln x| ≤ 745 for finite doubles and ln γ ≥ 2e-6 for α ≥ 1e-6.
        (x.ln() / self.ln_gamma).ceil() as i32
    }

    /// The representative value of bucket i: 2γ^i/(γ+1), within α of every value in it.
    fn value(&self, i: i32) -> f64 {
        let gamma = self.ln_gamma.exp();
        2.0 * (f64::from(i) * self.ln_gamma).exp() / (gamma + 1.0)
    }

    /// Estimates never leave the observed range (which only makes them more accurate).
    fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }

    /// Equal as distributions: same accuracy, buckets, zero count, count, min and max. The
    /// sums may differ in the last bits (floating-point addition is not associative), so
    /// this is the equality under which merging is associative and commutative.
    pub fn same_distribution(&self, other: &QuantileSketch) -> bool {
        self.alpha == other.alpha
            && self.positive == other.positive
            && self.negative == other.negative
            && self.zero_count == other.zero_count
            && self.count == other.count
            && self.min == other.min
            && self.max == other.max
    }

    /// Number of non-empty buckets (for size accounting).
    pub fn bucket_count(&self) -> usize {
        self.positive.len() + self.negative.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let s = QuantileSketch::default();
        assert_eq!(s.quantile(0.5), Ok(None));
        assert_eq!(s.min(), None);
        assert_eq!(s.mean(), None);
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut s = QuantileSketch::default();
        assert_eq!(
            s.insert(f64::NAN).unwrap_err().to_string(),
            "sketch values must be finite, got NaN"
        );
        assert!(s.insert(f64::INFINITY).is_err());
        assert_eq!(s.quantile(1.5), Err(SketchError::InvalidQuantile(1.5)));
        assert!(s.quantile(f64::NAN).is_err());
        assert!(QuantileSketch::new(0.0).is_err());
        assert!(QuantileSketch::new(0.9).is_err());
        let other = QuantileSketch::new(0.02).unwrap();
        assert!(matches!(
            s.merge(&other),
            Err(SketchError::AccuracyMismatch { .. })
        ));
        s.insert_n(1.0, u64::MAX).unwrap();
        assert_eq!(s.insert(1.0), Err(SketchError::CountOverflow));
    }

    #[test]
    fn mixed_signs_and_zeros_come_out_in_order() {
        let mut s = QuantileSketch::default();
        for v in [-100.0, -1.0, 0.0, 0.0, 1.0, 100.0] {
            s.insert(v).unwrap();
        }
        let q = |q: f64| s.quantile(q).unwrap().unwrap();
        assert_eq!(q(0.0), -100.0);
        assert!((q(0.2) + 1.0).abs() <= 0.01);
        assert_eq!(q(0.5), 0.0);
        assert!((q(0.8) - 1.0).abs() <= 0.01);
        assert_eq!(q(1.0), 100.0);
        assert_eq!(s.count(), 6);
        assert_eq!(s.sum(), 0.0);
    }

    #[test]
    fn extreme_magnitudes_are_indexed() {
        let mut s = QuantileSketch::new(MIN_RELATIVE_ACCURACY).unwrap();
        for v in [f64::MAX, f64::MIN_POSITIVE, 5e-324, -f64::MAX] {
            s.insert(v).unwrap();
        }
        let top = s.quantile(1.0).unwrap().unwrap();
        assert_eq!(top, f64::MAX);
        let low = s.quantile(0.0).unwrap().unwrap();
        assert_eq!(low, -f64::MAX);
    }
}
