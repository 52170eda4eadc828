//! The sketch's compact, versioned byte encoding, for storage in database rows.
//!
//! Version 1, all integers LEB128 varints, all doubles 8 bytes little-endian:
//!
//! ```text
//! u8   version = 1
//! f64  relative accuracy α
//! var  zero count
//! f64  sum, f64 min, f64 max          (min = +∞, max = −∞ when empty)
//! var  number of positive buckets P, then P × (var zigzag(index − previous index), var count)
//! var  number of negative buckets N, then N × (the same)
//! ```
//!
//! Bucket indices are strictly increasing (the first delta is from 0), counts are ≥ 1, and
//! the total count is the zero count plus the bucket counts. A sketch of a few hundred
//! latency buckets takes well under 1 KB.

use super::store::Store;
use super::{MAX_RELATIVE_ACCURACY, MIN_RELATIVE_ACCURACY, QuantileSketch, SketchError};

const VERSION: u8 = 1;

impl QuantileSketch {
    /// Encode the sketch (format version 1, see the module docs of `encoding`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41 + 4 * self.bucket_count());
        out.push(VERSION);
        out.extend_from_slice(&self.alpha.to_le_bytes());
        put_varint(&mut out, self.zero_count);
        for v in [self.sum, self.min, self.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for store in [&self.positive, &self.negative] {
            put_varint(&mut out, store.len() as u64);
            let mut previous = 0i64;
            for (i, c) in store.iter() {
                put_varint(&mut out, zigzag(i64::from(i) - previous));
                put_varint(&mut out, c);
                previous = i64::from(i);
            }
        }
        out
    }

    /// Decode bytes written by [`to_bytes`](Self::to_bytes), checking every invariant.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut positive = Store::default();
        let mut negative = Store::default();
        let header = parse(bytes, |negative_side, index, count| {
            let store = if negative_side {
                &mut negative
            } else {
                &mut positive
            };
            store.add(index, count);
        })?;
        let mut sketch = QuantileSketch::empty(header.alpha);
        sketch.positive = positive;
        sketch.negative = negative;
        sketch.zero_count = header.zero_count;
        sketch.count = header.count;
        sketch.sum = header.sum;
        sketch.min = header.min;
        sketch.max = header.max;
        Ok(sketch)
    }

    /// Check an encoding written by [`to_bytes`](Self::to_bytes) as
    /// [`from_bytes`](Self::from_bytes) does, without building the sketch; returns its
    /// relative accuracy and count.
    pub fn inspect_bytes(bytes: &[u8]) -> Result<(f64, u64), SketchError> {
        let header = parse(bytes, |_, _, _| {})?;
        Ok((header.alpha, header.count))
    }

    /// Fold an encoded sketch in: the same as `merge(&from_bytes(bytes)?)`, without building
    /// the sketch (no allocation but for buckets new to `self`). On error `self` is unchanged.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        // Check everything first, so that a corrupt encoding cannot leave a half merge; note
        // each side's index range on the way, so that the merge below allocates at most once.
        let mut ranges: [Option<(i32, i32)>; 2] = [None, None];
        let header = parse(bytes, |negative_side, index, _| {
            let range = &mut ranges[usize::from(negative_side)];
            *range = Some(range.map_or((index, index), |(lo, _)| (lo, index)));
        })?;
        if header.alpha != self.alpha {
            return Err(SketchError::AccuracyMismatch {
                left: self.alpha,
                right: header.alpha,
            });
        }
        let count = self
            .count
            .checked_add(header.count)
            .ok_or(SketchError::CountOverflow)?;
        let (positive, negative) = (&mut self.positive, &mut self.negative);
        for (store, range) in [(&mut *positive, ranges[0]), (&mut *negative, ranges[1])] {
            if let Some((lo, hi)) = range {
                store.widen(lo, hi);
            }
        }
        parse(bytes, |negative_side, index, c| {
            let store = if negative_side {
                &mut *negative
            } else {
                &mut *positive
            };
            store.add(index, c);
        })?;
        self.zero_count += header.zero_count;
        self.count = count;
        if header.count > 0 {
            self.sum += header.sum;
            self.min = self.min.min(header.min);
            self.max = self.max.max(header.max);
        }
        Ok(())
    }
}

/// The fixed part of an encoded sketch, and its total count.
struct Header {
    alpha: f64,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// Walk an encoding, checking every invariant, and hand each bucket (negative side?,
/// index, count) to `bucket` in encoded order. `bucket` may have been called when an error
/// is returned: callers that must not see a corrupt encoding's buckets parse twice.
fn parse(bytes: &[u8], mut bucket: impl FnMut(bool, i32, u64)) -> Result<Header, SketchError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = *bytes.first().ok_or(SketchError::EmptyEncoding)?;
    r.pos = 1;
    if version != VERSION {
        return Err(SketchError::UnsupportedVersion(version));
    }
    let alpha = r.f64()?;
    if !(MIN_RELATIVE_ACCURACY..=MAX_RELATIVE_ACCURACY).contains(&alpha) {
        return Err(SketchError::InvalidAccuracy(alpha));
    }
    let zero_count = r.varint()?;
    let (sum, min, max) = (r.f64()?, r.f64()?, r.f64()?);
    let mut count = zero_count;
    r.store(&mut count, |i, c| bucket(false, i, c))?;
    r.store(&mut count, |i, c| bucket(true, i, c))?;
    if r.pos != bytes.len() {
        return Err(SketchError::TrailingBytes(bytes.len() - r.pos));
    }
    if count == 0 {
        if sum != 0.0 || min != f64::INFINITY || max != f64::NEG_INFINITY {
            return Err(SketchError::Malformed(
                "empty sketch with a sum, min or max",
            ));
        }
    } else {
        if !(sum.is_finite() && min.is_finite() && max.is_finite()) {
            return Err(SketchError::Malformed("sum, min or max is not finite"));
        }
        if min > max {
            return Err(SketchError::Malformed("min is greater than max"));
        }
    }
    Ok(Header {
        alpha,
        zero_count,
        count,
        sum,
        min,
        max,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SketchError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(SketchError::Truncated {
                offset: self.pos,
                needed: self.pos + n - self.bytes.len(),
            });
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn f64(&mut self) -> Result<f64, SketchError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(b))
    }

    fn varint(&mut self) -> Result<u64, SketchError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SketchError::Malformed("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SketchError::Malformed("varint longer than 10 bytes"))
    }

    /// One bucket store: each (index, count) goes to `bucket`; adds the counts to `count`.
    fn store(
        &mut self,
        count: &mut u64,
        mut bucket: impl FnMut(i32, u64),
    ) -> Result<(), SketchError> {
        let len = self.varint()?;
        // Each bucket takes at least 2 bytes: a corrupt length cannot make us loop long.
        if len > (self.bytes.len() - self.pos) as u64 / 2 {
            return Err(SketchError::Malformed(
                "bucket count exceeds the encoded size",
            ));
        }
        let mut previous = 0i64;
        for k in 0..len {
            let delta = unzigzag(self.varint()?);
            if k > 0 && delta <= 0 {
                return Err(SketchError::Malformed("bucket indices are not increasing"));
            }
            let index = previous
                .checked_add(delta)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or(SketchError::Malformed("bucket index out of range"))?;
            let c = self.varint()?;
            if c == 0 {
                return Err(SketchError::Malformed("empty bucket"));
            }
            *count = count.checked_add(c).ok_or(SketchError::CountOverflow)?;
            bucket(index, c);
            previous = i64::from(index);
        }
        Ok(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QuantileSketch {
        let mut s = QuantileSketch::default();
        for v in [0.0, 1.5, 1.5, 250.0, -3.0, 1e6] {
            s.insert(v).unwrap();
        }
        s
    }

    #[test]
    fn round_trips() {
        for s in [QuantileSketch::default(), sample()] {
            let bytes = s.to_bytes();
            assert_eq!(QuantileSketch::from_bytes(&bytes).unwrap(), s);
        }
    }

    #[test]
    fn corrupt_input_gives_typed_errors() {
        let good = sample().to_bytes();
        assert_eq!(
            QuantileSketch::from_bytes(&[]),
            Err(SketchError::EmptyEncoding)
        );
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(
            QuantileSketch::from_bytes(&v2),
            Err(SketchError::UnsupportedVersion(2))
        );
        for cut in 1..good.len() {
            let err = QuantileSketch::from_bytes(&good[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    SketchError::Truncated { .. } | SketchError::Malformed(_)
                ),
                "cut at {cut}: {err:?}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            QuantileSketch::from_bytes(&trailing),
            Err(SketchError::TrailingBytes(1))
        );
        let mut bad_alpha = good.clone();
        bad_alpha[1..9].copy_from_slice(&2.0f64.to_le_bytes());
        assert_eq!(
            QuantileSketch::from_bytes(&bad_alpha),
            Err(SketchError::InvalidAccuracy(2.0))
        );
        // Every single-byte corruption decodes or fails cleanly, never panics.
        for i in 0..good.len() {
            for b in [0x00, 0x7f, 0x80, 0xff] {
                let mut c = good.clone();
                c[i] = b;
                let _ = QuantileSketch::from_bytes(&c);
            }
        }
    }

    #[test]
    fn merging_encoded_equals_merging_decoded() {
        let mut other = QuantileSketch::default();
        for v in [2.0, 3.5, 250.0, -7.0, 0.0, 9e5] {
            other.insert(v).unwrap();
        }
        for base in [QuantileSketch::default(), sample()] {
            for add in [QuantileSketch::default(), sample(), other.clone()] {
                let mut want = base.clone();
                want.merge(&add).unwrap();
                let mut got = base.clone();
                got.merge_bytes(&add.to_bytes()).unwrap();
                assert_eq!(got, want);
            }
        }
        let bytes = sample().to_bytes();
        assert_eq!(
            QuantileSketch::inspect_bytes(&bytes),
            Ok((0.01, sample().count()))
        );
    }

    #[test]
    fn merging_a_corrupt_encoding_changes_nothing() {
        let good = sample().to_bytes();
        let base = sample();
        for cut in 1..good.len() {
            let mut s = base.clone();
            assert!(s.merge_bytes(&good[..cut]).is_err(), "cut at {cut}");
            assert_eq!(s, base);
        }
        // A bucket delta that goes backwards, after valid buckets were read.
        let mut out_of_order = good.clone();
        let at = out_of_order.len() - 3;
        out_of_order[at] = 0x03;
        let mut s = base.clone();
        if s.merge_bytes(&out_of_order).is_err() {
            assert_eq!(s, base);
        }
        let mut s = QuantileSketch::new(0.02).unwrap();
        assert!(matches!(
            s.merge_bytes(&good),
            Err(SketchError::AccuracyMismatch { .. })
        ));
        assert!(s.is_empty());
    }

    /// The stored format never changes under a sketch: these bytes were written by the
    /// first implementation (buckets in B-trees) and are what every later one must write
    /// and read.
    #[test]
    fn the_encoding_is_stable() {
        let mut s = QuantileSketch::default();
        for v in [-250.0, -3.5, 0.0, 0.0, 1.0, 1.0, 2.0, 150.0, 980.5, 1e6] {
            s.insert(v).unwrap();
        }
        let golden: &[u8] = &[
            1, 123, 20, 174, 71, 225, 122, 132, 63, 2, 0, 0, 0, 0, 98, 139, 46, 65, 0, 0, 0, 0, 0,
            64, 111, 192, 0, 0, 0, 0, 128, 132, 46, 65, 5, 0, 2, 70, 1, 176, 3, 1, 188, 1, 1, 180,
            5, 1, 2, 126, 1, 172, 3, 1,
        ];
        assert_eq!(s.to_bytes(), golden);
        let back = QuantileSketch::from_bytes(golden).unwrap();
        assert!(back.same_distribution(&s));
        assert_eq!(back.to_bytes(), golden);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
        ] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
