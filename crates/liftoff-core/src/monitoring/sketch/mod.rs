//! DDSketch: latency quantiles with a relative-error guarantee, mergeable and bounded in memory.
//!
//! Liftoff keeps one sketch of request latencies per minute and answers "p99 over the last
//! 15 minutes" or "p95 during rollout step 3" by merging the minutes the window covers. That
//! rules out the usual shortcuts:
//!
//! - Averaging per-minute percentiles is wrong: the p99 of an hour is not the mean of sixty
//!   p99s. The rollup must be *mergeable*, so that merging sixty minutes gives the same answer
//!   as having recorded the hour in one sketch.
//! - Keeping raw samples (or a fixed-size reservoir) is either unbounded or inaccurate in the
//!   tail, which is exactly where a rollout's latency regressions show up.
//! - Rank-error sketches (t-digest, GK, KLL) bound the error in *rank*; for long-tailed latency
//!   distributions a small rank error in the tail is a large error in milliseconds.
//!
//! DDSketch (Masson, Rim & Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
//! Relative-Error Guarantees", VLDB 2019) bounds the *relative* error of every quantile: with
//! accuracy `α` (1% by default) an answer `x̂` for true value `x` satisfies `|x̂ - x| ≤ α·x`, for
//! 1 ms and for 10 s alike. Values are counted in logarithmic buckets
//! `(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`; answering a bucket with `2γ^i/(γ+1)` is within `α`
//! of anything in it. Merging is adding bucket counts, so it is exact, commutative and
//! associative.
//!
//! Memory is bounded by a bucket limit (2048 by default, 16 KiB of counts). At 1% accuracy 2048
//! buckets span a ratio of about 6·10^17 between the smallest and the largest value, so
//! latencies never reach it; if a pathological stream does, the *lowest* buckets are collapsed
//! into one (the paper's collapsing-lowest variant). Low quantiles then lose their guarantee and
//! high quantiles — the ones alerting and rollout gates use — keep it.
//!
//! Count, sum, min and max are tracked exactly alongside the buckets, and quantile answers are
//! clamped into `[min, max]` so that p0 and p100 are exact and no answer falls outside the data.
//!
//! Quantiles follow the nearest-rank definition: the value at quantile `q` of `n` values is the
//! smallest one with at least `q·n` values at or below it. A sketch of at most [`EXACT_LIMIT`]
//! values also keeps the values themselves and answers from them exactly: a minute with two
//! requests of 12 ms and 900 ms has p50 12 and p95 900, not an estimate of either. Small
//! samples are where people compare the numbers with their own logs, and where a bucket's
//! representative value would be visibly "wrong"; beyond the limit the buckets take over.
//!
//! Sketches are persisted with [`DDSketch::to_bytes`], a versioned little-endian format with
//! varint bucket counts: a minute of latencies between 1 ms and 10 s takes about 1 KiB.
//! [`DDSketch::from_bytes`] validates everything it reads and returns an error for truncated or
//! corrupt input; it never panics.
//!
//! ```
//! use liftoff_core::monitoring::sketch::DDSketch;
//!
//! let mut minute_1 = DDSketch::default();
//! let mut minute_2 = DDSketch::default();
//! for ms in 1..=1000 {
//!     minute_1.add(f64::from(ms));
//!     minute_2.add(f64::from(ms) * 2.0);
//! }
//! let mut window = minute_1.clone();
//! window.merge(&minute_2).expect("same accuracy");
//! let p99 = window.quantile(0.99).expect("not empty");
//! assert!((p99 - 1960.0).abs() <= 0.01 * 1960.0);
//!
//! let stored = window.to_bytes();
//! assert_eq!(DDSketch::from_bytes(&stored).expect("valid"), window);
//! ```

mod codec;
mod mapping;
mod store;
#[cfg(test)]
mod tests;

use mapping::LogMapping;
use store::DenseStore;

/// Accuracy of [`DDSketch::default`]: answers within 1% of the true value.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;

/// Bucket limit of [`DDSketch::default`] and [`DDSketch::new`]: 16 KiB of counts, enough for
/// any latency range at 1% accuracy.
pub const DEFAULT_MAX_BUCKETS: usize = 2048;

/// The finest accuracy accepted. Finer than this, bucket indices of extreme `f64` values no
/// longer fit the `i32` index space.
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-6;

/// The largest bucket limit accepted (512 KiB of counts). It also caps what
/// [`DDSketch::from_bytes`] will allocate for untrusted input.
pub const MAX_BUCKET_LIMIT: usize = 1 << 16;

/// Up to this many values a sketch keeps them as well (8 bytes each) and answers quantiles
/// exactly; beyond it only the buckets remain.
pub const EXACT_LIMIT: usize = 32;

/// Why a sketch could not be built, merged or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    #[error("relative accuracy must be at least {MIN_RELATIVE_ACCURACY} and below 1, got {0}")]
    InvalidAccuracy(f64),
    #[error("bucket limit must be between 1 and {MAX_BUCKET_LIMIT}, got {0}")]
    InvalidBucketLimit(u64),
    #[error("cannot merge sketches of different accuracy ({ours} and {theirs})")]
    IncompatibleAccuracy { ours: f64, theirs: f64 },
    #[error("encoded sketch is truncated")]
    Truncated,
    #[error("not an encoded sketch (bad magic byte {0:#04x})")]
    BadMagic(u8),
    #[error("unsupported sketch encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("corrupt encoded sketch: {0}")]
    Corrupt(&'static str),
}

/// A quantile sketch of non-negative values (latencies) with relative accuracy `α`.
///
/// See the [module documentation](self) for why and how.
#[derive(Clone, Debug, PartialEq)]
pub struct DDSketch {
    mapping: LogMapping,
    store: DenseStore,
    /// Values too small to index, `0` included. Kept apart because `ln(0)` has no bucket and
    /// a latency of zero (a cache hit timed at coarse resolution) is a legitimate sample.
    zero_count: u64,
    count: u64,
    sum: f64,
    /// `+inf` while empty so that the first value always replaces it.
    min: f64,
    /// `-inf` while empty.
    max: f64,
    /// The values themselves, ascending, while there are at most [`EXACT_LIMIT`] of them and
    /// every one is known (a sketch decoded from the first encoding version has none); empty
    /// otherwise. Sorted so that equal contents compare and encode equal whatever the order
    /// of adds and merges.
    exact: Vec<f64>,
}

impl Default for DDSketch {
    /// 1% relative accuracy, at most 2048 buckets.
    fn default() -> Self {
        Self::new(DEFAULT_RELATIVE_ACCURACY)
    }
}

impl DDSketch {
    /// An empty sketch whose quantiles are within `relative_accuracy` (e.g. `0.01` for 1%) of
    /// the true values, with the default limit of [`DEFAULT_MAX_BUCKETS`] buckets.
    ///
    /// # Panics
    ///
    /// If `relative_accuracy` is not in `[MIN_RELATIVE_ACCURACY, 1)`. The accuracy is a
    /// constant of the code that creates sketches, so a bad one is a programming error; use
    /// [`DDSketch::with_max_buckets`] to handle it as a value.
    pub fn new(relative_accuracy: f64) -> Self {
        match Self::with_max_buckets(relative_accuracy, DEFAULT_MAX_BUCKETS) {
            Ok(sketch) => sketch,
            Err(e) => panic!("DDSketch::new: {e}"),
        }
    }

    /// An empty sketch with the given accuracy that keeps at most `max_buckets` buckets,
    /// collapsing the lowest ones beyond that.
    pub fn with_max_buckets(
        relative_accuracy: f64,
        max_buckets: usize,
    ) -> Result<Self, SketchError> {
        let mapping = LogMapping::new(relative_accuracy)?;
        if !(1..=MAX_BUCKET_LIMIT).contains(&max_buckets) {
            return Err(SketchError::InvalidBucketLimit(max_buckets as u64));
        }
        Ok(Self {
            mapping,
            store: DenseStore::new(max_buckets),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            exact: Vec::new(),
        })
    }

    /// Whether `exact` holds every recorded value.
    fn is_exact(&self) -> bool {
        self.exact.len() as u64 == self.count
    }

    /// Records one value. Returns `false`, and records nothing, for a value that cannot be a
    /// latency: NaN, infinite or negative (`-0.0` counts as zero). Callers that time requests
    /// never produce those, so they are dropped rather than allowed to poison the window's
    /// sum and min/max; the return value lets a caller count the drops.
    #[inline]
    pub fn add(&mut self, value: f64) -> bool {
        self.add_n(value, 1)
    }

    /// Records `value` `n` times, as [`add`](Self::add) would (same rejections). Returns
    /// `false` for `n == 0`, which records nothing. Counts saturate at `u64::MAX` instead of
    /// overflowing.
    pub fn add_n(&mut self, value: f64, n: u64) -> bool {
        if n == 0 || !value.is_finite() || value < 0.0 {
            return false;
        }
        // Normalise -0.0 so that `min` never stores a negative zero.
        let value = if value == 0.0 { 0.0 } else { value };
        match self.count.checked_add(n) {
            Some(total) if self.is_exact() && total <= EXACT_LIMIT as u64 => {
                let at = self.exact.partition_point(|v| *v <= value);
                self.exact
                    .splice(at..at, std::iter::repeat_n(value, n as usize));
            }
            _ => self.exact = Vec::new(),
        }
        if value <= self.mapping.min_indexable() {
            self.zero_count = self.zero_count.saturating_add(n);
        } else {
            self.store.add(self.mapping.index(value), n);
        }
        self.count = self.count.saturating_add(n);
        self.sum += value * n as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        true
    }

    /// Adds `other`'s values to this sketch, as if they had been recorded here. Both must have
    /// the same accuracy (answers would otherwise mix bucket boundaries); the bucket limit is
    /// this sketch's.
    pub fn merge(&mut self, other: &DDSketch) -> Result<(), SketchError> {
        if !self.mapping.same_buckets(&other.mapping) {
            return Err(SketchError::IncompatibleAccuracy {
                ours: self.mapping.relative_accuracy(),
                theirs: other.mapping.relative_accuracy(),
            });
        }
        if other.is_empty() {
            return Ok(());
        }
        match self.count.checked_add(other.count) {
            Some(total) if self.is_exact() && other.is_exact() && total <= EXACT_LIMIT as u64 => {
                self.exact.extend_from_slice(&other.exact);
                self.exact.sort_by(f64::total_cmp);
            }
            _ => self.exact = Vec::new(),
        }
        self.store.merge(&other.store);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// The value at quantile `q` (0 = min, 0.5 = median, 1 = max) by the nearest-rank
    /// definition: the smallest value with at least `q·n` of the `n` values at or below it.
    /// Exact for a sketch of at most [`EXACT_LIMIT`] values and for the min and max; otherwise
    /// within the sketch's relative accuracy and clamped into `[min, max]`. Never decreasing
    /// in `q`. `None` when the sketch is empty or `q` is outside `[0, 1]`.
    ///
    /// Exceptions to the guarantee: a value below the smallest indexable one (about
    /// `2.2e-308`) is answered as `0`, and after the bucket limit forced a collapse, quantiles
    /// that fall in the lowest bucket are overestimated.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = nearest_rank(q, self.count);
        if self.is_exact() {
            return self.exact.get(rank as usize).copied();
        }
        let last = self.count - 1;
        // Rank 0 and n-1 are exactly min and max; answering those exactly costs nothing.
        if rank == 0 {
            return Some(self.min);
        }
        if rank == last {
            return Some(self.max);
        }
        let estimate = if rank < self.zero_count {
            0.0
        } else {
            match self.store.index_at_rank(rank - self.zero_count) {
                Some(index) => self.mapping.value(index),
                // Unreachable while count = zero_count + store total; answer safely anyway.
                None => self.max,
            }
        };
        Some(estimate.clamp(self.min, self.max))
    }

    /// Counts per histogram bucket: `result[i]` counts values at most `bounds[i]` (and above
    /// `bounds[i-1]`), the extra last slot those above every bound. `bounds` must ascend. A
    /// value within the sketch's relative accuracy of a bound may land on either side of it.
    pub fn histogram(&self, bounds: &[f64]) -> Vec<u64> {
        let mut out = vec![0u64; bounds.len() + 1];
        out[0] += self.zero_count;
        let offset = self.store.offset();
        for (i, n) in self.store.counts().iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let value = self.mapping.value(offset + i as i32);
            let slot = bounds.partition_point(|b| *b < value);
            out[slot] += n;
        }
        out
    }

    /// Whether quantiles are answered from the values themselves (at most [`EXACT_LIMIT`]).
    pub fn is_exact_sample(&self) -> bool {
        self.count > 0 && self.is_exact()
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of all recorded values (0 when empty), for means and throughput-weighted views.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The smallest recorded value, exactly.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest recorded value, exactly.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The accuracy the sketch was created with.
    pub fn relative_accuracy(&self) -> f64 {
        self.mapping.relative_accuracy()
    }

    /// The most buckets the sketch keeps before collapsing the lowest.
    pub fn max_buckets(&self) -> usize {
        self.store.max_buckets()
    }

    /// How many buckets the sketch holds now (its memory is about 8 bytes each).
    pub fn bucket_count(&self) -> usize {
        self.store.len()
    }
}

/// The 0-based rank of the nearest-rank `q`-quantile among `n` values: `⌈q·n⌉ - 1`, at least 0.
///
/// `q·n` is computed in floating point, where `0.07 × 100` comes out a hair above 7; a
/// relative tolerance far below one rank keeps such products on the integer they stand for.
pub fn nearest_rank(q: f64, n: u64) -> u64 {
    let x = q * n as f64;
    let k = (x - x * 1e-12).ceil();
    // Float-to-int `as` saturates; `q ≤ 1` keeps `k ≤ n` anyway.
    (k as u64).clamp(1, n.max(1)) - 1
}
