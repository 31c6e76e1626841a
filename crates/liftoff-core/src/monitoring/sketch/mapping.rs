//! The logarithmic index mapping: value ↔ bucket index.

use super::{MIN_RELATIVE_ACCURACY, SketchError};

/// Maps a positive value `v` to bucket `⌈log_γ v⌉`, i.e. bucket `i` holds `(γ^(i-1), γ^i]`.
///
/// The exact logarithm is used rather than a faster polynomial approximation: it keeps every
/// bucket the same relative width, so the error bound is exactly `α`, not `α` plus slack.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct LogMapping {
    relative_accuracy: f64,
    gamma: f64,
    ln_gamma: f64,
    /// `1 / ln γ`, so that indexing multiplies instead of dividing.
    multiplier: f64,
    /// `2 / (1 + γ)`: bucket `i` is answered by `γ^i · 2/(1+γ)`, the point within relative
    /// distance `α` of both of its edges.
    representative_factor: f64,
    /// Values at or below this go to the zero bucket: below it `γ^i` would be subnormal and
    /// lose the precision the error bound relies on.
    min_indexable: f64,
}

impl LogMapping {
    pub(super) fn new(relative_accuracy: f64) -> Result<Self, SketchError> {
        if !(MIN_RELATIVE_ACCURACY..1.0).contains(&relative_accuracy) {
            return Err(SketchError::InvalidAccuracy(relative_accuracy));
        }
        let a = relative_accuracy;
        // γ - 1 = 2α/(1-α); ln_1p keeps ln γ precise when α is small.
        let gamma_minus_one = 2.0 * a / (1.0 - a);
        let gamma = 1.0 + gamma_minus_one;
        let ln_gamma = gamma_minus_one.ln_1p();
        Ok(Self {
            relative_accuracy,
            gamma,
            ln_gamma,
            multiplier: 1.0 / ln_gamma,
            representative_factor: 2.0 / (1.0 + gamma),
            min_indexable: f64::MIN_POSITIVE * gamma,
        })
    }

    pub(super) fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// Whether two mappings put every value in the same bucket, which is what merging needs.
    pub(super) fn same_buckets(&self, other: &LogMapping) -> bool {
        self.gamma.to_bits() == other.gamma.to_bits()
    }

    pub(super) fn min_indexable(&self) -> f64 {
        self.min_indexable
    }

    /// The bucket of `value`, which must be finite and above [`Self::min_indexable`].
    #[inline]
    pub(super) fn index(&self, value: f64) -> i32 {
        // |ln v| ≤ 709.8 for normal f64 and ln γ ≥ 2·10⁻⁶, so this fits i32; `as` saturates
        // regardless.
        (value.ln() * self.multiplier).ceil() as i32
    }

    /// The value bucket `index` answers with.
    #[inline]
    pub(super) fn value(&self, index: i32) -> f64 {
        (f64::from(index) * self.ln_gamma).exp() * self.representative_factor
    }

    /// The range of indices a recorded value can have. Decoding rejects buckets outside it;
    /// one index of slack each side absorbs rounding in `ln`.
    pub(super) fn index_bounds(&self) -> (i32, i32) {
        (
            self.index(self.min_indexable).saturating_sub(1),
            self.index(f64::MAX).saturating_add(1),
        )
    }
}
