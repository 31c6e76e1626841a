//! Query kernels over an [`EventTable`]. Each one walks the table a user at a time (the rows
//! of a user are contiguous and time-ordered), so most are one pass with no hashing; the
//! users are split between threads by row count and the per-thread partial results merged.

mod active;
mod experiment;
mod filter;
mod funnel;
mod paths;
mod retention;
mod sessions;
mod timeline;
mod top;

pub use active::{BucketCount, NewVsReturning};
pub use experiment::{EventExposure, FLAG_CALLED_EVENT, UserTotals, UserWindow};
pub use filter::{EventFilter, PropertyEq};
pub use funnel::{FunnelBreakdown, FunnelResult};
pub use paths::{Flow, Paths, Transition};
pub use retention::{Cohort, Retention};
pub use sessions::{DEFAULT_SESSION_GAP_MS, ENGAGED_MS_PER_WEEK, POWER_MS_PER_WEEK, SessionStats};
pub use timeline::{Milestone, TimelineEvent};
pub use top::EventCount;

use crate::table::EventTable;
use std::ops::Range;

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("a funnel needs at least one step")]
    NoSteps,
    #[error("a funnel has at most 32 steps, got {0}")]
    TooManySteps(usize),
    #[error("the window must not be negative")]
    NegativeWindow,
}

/// Below this many events a second thread costs more than it saves.
const PARALLEL_MIN_ROWS: usize = 200_000;

/// Runs `work` over disjoint user ranges covering all users, one per thread, and returns the
/// partial results in user order. Ranges are cut so each holds about the same number of rows.
pub(crate) fn per_user_ranges<T: Send>(
    table: &EventTable,
    work: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let n_users = table.user_count();
    let threads = if table.len() < PARALLEL_MIN_ROWS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 16)
    };
    if threads == 1 {
        return vec![work(0..n_users)];
    }
    let rows = table.len();
    let mut cuts = vec![0usize];
    for k in 1..threads {
        let target = (rows * k / threads) as u32;
        let u = table.offsets.partition_point(|&o| o < target).min(n_users);
        cuts.push(u.max(*cuts.last().expect("cuts starts non-empty")));
    }
    cuts.push(n_users);
    let work = &work;
    std::thread::scope(|s| {
        let handles: Vec<_> = cuts
            .windows(2)
            .map(|w| w[0]..w[1])
            .map(|r| s.spawn(move || work(r)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a query worker panicked"))
            .collect()
    })
}

impl EventTable {
    /// `range` cut to the data, or `None` when nothing can match.
    pub(crate) fn clip(&self, range: TimeRange) -> Option<TimeRange> {
        let (lo, hi) = self.bounds?;
        let r = range.clip(lo, hi);
        (!r.is_empty()).then_some(r)
    }
}

use crate::time::TimeRange;

/// Adds per-thread partial vectors element-wise.
pub(crate) fn sum_parts(parts: Vec<Vec<u64>>) -> Vec<u64> {
    let mut iter = parts.into_iter();
    let mut total = iter.next().unwrap_or_default();
    for p in iter {
        for (t, x) in total.iter_mut().zip(p) {
            *t += x;
        }
    }
    total
}
