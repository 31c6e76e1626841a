//! Bucket counts: a dense run of consecutive indices, capped by collapsing the lowest.

/// Counts for the consecutive bucket indices `offset .. offset + counts.len()`.
///
/// Dense rather than a map: latencies occupy one contiguous band of a few hundred buckets, so
/// a `Vec` is smaller than any map over the same band, indexing is a subtraction, and the
/// run-length of the band is exactly what the encoding needs.
///
/// Invariant: when not empty, the first and last counts are non-zero. The store is therefore
/// a canonical function of the counts it holds, which makes equality (and the round-trip of
/// the encoding) exact.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct DenseStore {
    offset: i32,
    counts: Vec<u64>,
    max_buckets: usize,
}

impl DenseStore {
    pub(super) fn new(max_buckets: usize) -> Self {
        Self {
            offset: 0,
            counts: Vec::new(),
            max_buckets,
        }
    }

    /// Rebuilds a store read by the decoder, which has checked the invariant and the limit.
    pub(super) fn from_parts(offset: i32, counts: Vec<u64>, max_buckets: usize) -> Self {
        debug_assert!(counts.len() <= max_buckets);
        debug_assert!(counts.first().is_none_or(|&c| c > 0));
        debug_assert!(counts.last().is_none_or(|&c| c > 0));
        Self {
            offset,
            counts,
            max_buckets,
        }
    }

    pub(super) fn max_buckets(&self) -> usize {
        self.max_buckets
    }

    pub(super) fn len(&self) -> usize {
        self.counts.len()
    }

    pub(super) fn offset(&self) -> i32 {
        self.offset
    }

    pub(super) fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Lowest and highest index held, as i64 so that range arithmetic cannot overflow.
    fn bounds(&self) -> (i64, i64) {
        let lo = i64::from(self.offset);
        (lo, lo + self.counts.len() as i64 - 1)
    }

    /// The range `[lo, hi]` the store must cover to hold `want_lo ..= want_hi` within the
    /// limit: everything below `lo` is collapsed into `lo`. Collapsing the *lowest* buckets is
    /// what keeps the guarantee for the high quantiles that latency monitoring cares about.
    fn capped_range(&self, want_lo: i64, want_hi: i64) -> (i64, i64) {
        (want_lo.max(want_hi - self.max_buckets as i64 + 1), want_hi)
    }

    #[inline]
    pub(super) fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        let i = i64::from(index);
        let (lo, hi) = self.bounds();
        if i < lo || i > hi {
            let (new_lo, new_hi) = self.capped_range(lo.min(i), hi.max(i));
            if (new_lo, new_hi) != (lo, hi) {
                self.rebase(new_lo, new_hi);
            }
        }
        let slot = self.slot(i);
        self.counts[slot] = self.counts[slot].saturating_add(n);
    }

    pub(super) fn merge(&mut self, other: &DenseStore) {
        if other.counts.is_empty() {
            return;
        }
        let (other_lo, other_hi) = other.bounds();
        let (want_lo, want_hi) = if self.counts.is_empty() {
            (other_lo, other_hi)
        } else {
            let (lo, hi) = self.bounds();
            (lo.min(other_lo), hi.max(other_hi))
        };
        let (new_lo, new_hi) = self.capped_range(want_lo, want_hi);
        if self.counts.is_empty() {
            self.offset = new_lo as i32;
            self.counts = vec![0; (new_hi - new_lo + 1) as usize];
        } else {
            self.rebase(new_lo, new_hi);
        }
        // Whatever `other` holds below the new lowest bucket lands in it, exactly as if its
        // values had been added here one by one; that is what makes merge equal to one sketch.
        for (k, &c) in other.counts.iter().enumerate() {
            let slot = self.slot(other_lo + k as i64);
            self.counts[slot] = self.counts[slot].saturating_add(c);
        }
    }

    /// The position of index `i` (already within the upper bound), collapsed into the lowest
    /// bucket if it is below it.
    #[inline]
    fn slot(&self, i: i64) -> usize {
        let lo = i64::from(self.offset);
        (i.max(lo) - lo) as usize
    }

    /// Makes the store cover exactly `[new_lo, new_hi]`, where `new_hi` ≥ the current highest
    /// index. Moving the low end up folds the buckets below it into the new lowest one.
    fn rebase(&mut self, new_lo: i64, new_hi: i64) {
        let (lo, hi) = self.bounds();
        debug_assert!(new_hi >= hi && new_hi - new_lo < self.max_buckets as i64);
        if new_lo > lo {
            let cut = ((new_lo - lo) as usize).min(self.counts.len());
            let folded = self.counts[..cut]
                .iter()
                .fold(0u64, |acc, &c| acc.saturating_add(c));
            self.counts.drain(..cut);
            match self.counts.first_mut() {
                Some(first) => *first = first.saturating_add(folded),
                None => self.counts.push(folded),
            }
        } else if new_lo < lo {
            // Growing downwards shifts the whole band; it happens once per new lowest bucket,
            // a handful of times per sketch, and is bounded by the limit.
            let pad = (lo - new_lo) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, pad));
        }
        self.offset = new_lo as i32;
        self.counts.resize((new_hi - new_lo + 1) as usize, 0);
    }

    /// The index of the bucket holding the value of rank `rank` (0-based) among the store's
    /// values: the first bucket whose cumulative count exceeds it.
    pub(super) fn index_at_rank(&self, rank: u64) -> Option<i32> {
        let mut seen = 0u64;
        for (k, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen > rank {
                return Some(self.offset + k as i32);
            }
        }
        None
    }
}
