//! The bucket counts of one side of a sketch (positive or negative values), by bucket index.
//!
//! Dense — one counter per index between the lowest and the highest bucket, in a vector —
//! while that span stays under `MAX_DENSE_SPAN`: adding a count or merging a sketch is then
//! an array addition, which is what dashboards (folding thousands of encoded cells) and
//! ingestion (merging each touched cell) spend their time on. A latency sketch spans a few
//! hundred indices at the default 1 % accuracy (a factor of 10 in value is ~115 indices).
//! Past the limit — a few extreme values far apart — the store turns sparse (a B-tree of the
//! non-empty buckets), so that no input can make a sketch allocate the whole index range.
//! Both forms hold the same buckets; equality and iteration see only the buckets.

use std::collections::BTreeMap;
use std::collections::btree_map;

/// The widest index span kept dense: 4,096 counters (32 KiB), a factor of ~10^35 in value
/// at 1 % accuracy.
const MAX_DENSE_SPAN: usize = 4096;

#[derive(Debug, Clone, Default)]
pub(super) enum Store {
    #[default]
    Empty,
    Dense {
        /// Index of `counts[0]`.
        offset: i32,
        counts: Vec<u64>,
        /// Non-zero counters.
        buckets: usize,
    },
    Sparse(BTreeMap<i32, u64>),
}

impl Store {
    /// Add `count` (≥ 1) to bucket `index`. The caller has checked that the sketch's total,
    /// and so every bucket, stays within u64.
    pub(super) fn add(&mut self, index: i32, count: u64) {
        if let Store::Dense {
            offset,
            counts,
            buckets,
        } = self
            && let Some(slot) = index
                .checked_sub(*offset)
                .and_then(|k| usize::try_from(k).ok())
                .and_then(|k| counts.get_mut(k))
        {
            *buckets += usize::from(*slot == 0);
            *slot += count;
            return;
        }
        self.widen(index, index);
        match self {
            Store::Dense {
                offset,
                counts,
                buckets,
            } => {
                // `widen` made the index part of the span.
                let k = (i64::from(index) - i64::from(*offset)) as usize;
                *buckets += usize::from(counts[k] == 0);
                counts[k] += count;
            }
            Store::Sparse(map) => *map.entry(index).or_insert(0) += count,
            Store::Empty => unreachable!("widen leaves a store dense or sparse"),
        }
    }

    /// Make room for indices `lo..=hi` (so that adding them allocates nothing more), or turn
    /// sparse when the span would pass `MAX_DENSE_SPAN`.
    pub(super) fn widen(&mut self, lo: i32, hi: i32) {
        let span = |lo: i32, hi: i32| (i64::from(hi) - i64::from(lo) + 1) as usize;
        match self {
            Store::Sparse(_) => {}
            Store::Empty => {
                *self = if span(lo, hi) <= MAX_DENSE_SPAN {
                    Store::Dense {
                        offset: lo,
                        counts: vec![0; span(lo, hi)],
                        buckets: 0,
                    }
                } else {
                    Store::Sparse(BTreeMap::new())
                };
            }
            Store::Dense { offset, counts, .. } => {
                let top = *offset + (counts.len() as i32 - 1);
                let (new_lo, new_hi) = (lo.min(*offset), hi.max(top));
                if (new_lo, new_hi) == (*offset, top) {
                    return;
                }
                if span(new_lo, new_hi) > MAX_DENSE_SPAN {
                    let map = self.iter().collect();
                    *self = Store::Sparse(map);
                    return;
                }
                let front = span(new_lo, *offset) - 1;
                counts.resize(counts.len() + span(top, new_hi) - 1, 0);
                if front > 0 {
                    counts.splice(0..0, std::iter::repeat_n(0, front));
                }
                *offset = new_lo;
            }
        }
    }

    /// Add every bucket of `other`: slice by slice when both end up dense, else one by one.
    pub(super) fn merge(&mut self, other: &Store) {
        if let Store::Dense {
            offset: lo,
            counts: theirs,
            ..
        } = other
        {
            self.widen(*lo, *lo + (theirs.len() as i32 - 1));
            if let Store::Dense {
                offset,
                counts,
                buckets,
            } = self
            {
                let start = (i64::from(*lo) - i64::from(*offset)) as usize;
                for (mine, theirs) in counts[start..start + theirs.len()].iter_mut().zip(theirs) {
                    *buckets += usize::from(*mine == 0 && *theirs > 0);
                    *mine += theirs;
                }
                return;
            }
        }
        for (i, n) in other.iter() {
            self.add(i, n);
        }
    }

    /// Non-empty buckets.
    pub(super) fn len(&self) -> usize {
        match self {
            Store::Empty => 0,
            Store::Dense { buckets, .. } => *buckets,
            Store::Sparse(map) => map.len(),
        }
    }

    /// (index, count) of the non-empty buckets, by increasing index.
    pub(super) fn iter(&self) -> Iter<'_> {
        match self {
            Store::Empty => {
                let none: &[u64] = &[];
                Iter::Dense {
                    offset: 0,
                    counts: none.iter().enumerate(),
                }
            }
            Store::Dense { offset, counts, .. } => Iter::Dense {
                offset: *offset,
                counts: counts.iter().enumerate(),
            },
            Store::Sparse(map) => Iter::Sparse(map.iter()),
        }
    }
}

impl PartialEq for Store {
    /// The same buckets, whatever the form.
    fn eq(&self, other: &Store) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

pub(super) enum Iter<'a> {
    Dense {
        offset: i32,
        counts: std::iter::Enumerate<std::slice::Iter<'a, u64>>,
    },
    Sparse(btree_map::Iter<'a, i32, u64>),
}

impl Iterator for Iter<'_> {
    type Item = (i32, u64);

    fn next(&mut self) -> Option<(i32, u64)> {
        match self {
            Iter::Dense { offset, counts } => counts
                .find(|(_, c)| **c > 0)
                .map(|(k, c)| (*offset + k as i32, *c)),
            Iter::Sparse(it) => it.next().map(|(i, c)| (*i, *c)),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<(i32, u64)> {
        match self {
            Iter::Dense { offset, counts } => counts
                .rfind(|(_, c)| **c > 0)
                .map(|(k, c)| (*offset + k as i32, *c)),
            Iter::Sparse(it) => it.next_back().map(|(i, c)| (*i, *c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(s: &Store) -> Vec<(i32, u64)> {
        s.iter().collect()
    }

    #[test]
    fn adds_in_any_order_keep_buckets_sorted_and_counted() {
        let mut s = Store::default();
        for (i, c) in [(5, 1), (-3, 2), (5, 4), (100, 1), (-3, 1), (0, 7)] {
            s.add(i, c);
        }
        assert!(matches!(s, Store::Dense { .. }));
        assert_eq!(buckets(&s), vec![(-3, 3), (0, 7), (5, 5), (100, 1)]);
        assert_eq!(s.len(), 4);
        let backwards: Vec<_> = s.iter().rev().collect();
        assert_eq!(backwards, vec![(100, 1), (5, 5), (0, 7), (-3, 3)]);
    }

    #[test]
    fn a_span_past_the_limit_turns_sparse_with_the_same_buckets() {
        let mut s = Store::default();
        s.add(10, 1);
        s.add(12, 2);
        s.add(10 + MAX_DENSE_SPAN as i32, 3);
        assert!(matches!(s, Store::Sparse(_)));
        assert_eq!(
            buckets(&s),
            vec![(10, 1), (12, 2), (10 + MAX_DENSE_SPAN as i32, 3)]
        );
        // The extremes of i32 (extreme doubles at the finest accuracy) stay addressable.
        let mut wide = Store::default();
        wide.add(i32::MIN, 1);
        wide.add(i32::MAX, 1);
        assert_eq!(buckets(&wide), vec![(i32::MIN, 1), (i32::MAX, 1)]);
        // The last span that stays dense.
        let mut edge = Store::default();
        edge.add(0, 1);
        edge.add(MAX_DENSE_SPAN as i32 - 1, 1);
        assert!(matches!(edge, Store::Dense { .. }));
    }

    #[test]
    fn merging_equals_adding_across_forms() {
        let parts: [&[(i32, u64)]; 4] = [
            &[(1, 1), (3, 2)],
            &[(-50, 1), (2, 5), (3, 1)],
            &[(9000, 2)],
            &[(0, 4), (-50, 1)],
        ];
        let mut added = Store::default();
        let mut merged = Store::default();
        for part in parts {
            let mut one = Store::default();
            for &(i, c) in part {
                added.add(i, c);
                one.add(i, c);
            }
            merged.merge(&one);
        }
        assert_eq!(merged, added);
        assert_eq!(
            buckets(&merged),
            vec![(-50, 2), (0, 4), (1, 1), (2, 5), (3, 3), (9000, 2)]
        );
        // A dense store merged into a sparse one, and the other way round.
        let mut dense = Store::default();
        dense.add(4, 1);
        let mut sparse = added.clone();
        sparse.merge(&dense);
        dense.merge(&added);
        assert_eq!(sparse, dense);
        assert_eq!(sparse.len(), 7);
    }

    /// Random adds and merges, mostly near each other and now and then far apart, give the
    /// buckets a plain B-tree model gives, in whatever form each store ends up.
    #[test]
    fn random_adds_and_merges_match_a_btree_model() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let mut stores = [Store::default(), Store::default(), Store::default()];
            let mut models = [
                BTreeMap::<i32, u64>::new(),
                BTreeMap::new(),
                BTreeMap::new(),
            ];
            for _ in 0..300 {
                let which = (next() % 3) as usize;
                if next() % 10 == 0 {
                    let from = (next() % 3) as usize;
                    let other = stores[from].clone();
                    stores[which].merge(&other);
                    let other_model = models[from].clone();
                    for (i, c) in other_model {
                        *models[which].entry(i).or_insert(0) += c;
                    }
                    continue;
                }
                let index = match next() % 50 {
                    // Rarely anywhere in i32 (extreme values at the finest accuracy).
                    0 if round % 2 == 0 => next() as i32,
                    1 => (next() % 20_000) as i32 - 10_000,
                    _ => (next() % 400) as i32 - 100,
                };
                let count = 1 + next() % 5;
                stores[which].add(index, count);
                *models[which].entry(index).or_insert(0) += count;
            }
            for (store, model) in stores.iter().zip(&models) {
                let expected: Vec<(i32, u64)> = model.iter().map(|(i, c)| (*i, *c)).collect();
                assert_eq!(buckets(store), expected, "round {round}");
                assert_eq!(store.len(), model.len(), "round {round}");
                let backwards: Vec<_> = store.iter().rev().collect();
                let expected_backwards: Vec<_> = expected.iter().rev().copied().collect();
                assert_eq!(backwards, expected_backwards, "round {round}");
            }
        }
    }

    #[test]
    fn equality_ignores_the_form_and_the_empty_counters() {
        let mut a = Store::default();
        a.widen(-10, 10);
        a.add(3, 1);
        let mut b = Store::Sparse(BTreeMap::new());
        b.add(3, 1);
        assert_eq!(a, b);
        assert_eq!(Store::default(), Store::Sparse(BTreeMap::new()));
        b.add(4, 1);
        assert_ne!(a, b);
    }
}
