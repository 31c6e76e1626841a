//! Increasing 64-bit values unique across replicas: the order of appended events and the
//! identity of appended metric rows.

use std::sync::Mutex;

use chrono::Utc;

/// Orders appends: a sequence that grows within this process and across replicas follows
/// the clock. `seq = ms · 2²⁰ + tag · 2¹⁰ + n`: the millisecond, a random tag of this process
/// (so two replicas in the same millisecond differ) and a counter (1,024 a millisecond; more
/// borrow the next millisecond).
pub(super) struct SeqClock {
    tag: i64,
    /// `ms · 1024 + n` of the last value handed out.
    last: Mutex<i64>,
}

impl SeqClock {
    pub(super) fn new() -> Self {
        Self {
            tag: rand::random_range(0..1024),
            last: Mutex::new(0),
        }
    }

    /// `n` increasing values.
    pub(super) fn take(&self, n: usize) -> Vec<i64> {
        let now = Utc::now().timestamp_millis() * 1024;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            *last = (*last + 1).max(now);
            out.push((*last / 1024) * (1 << 20) + self.tag * 1024 + *last % 1024);
        }
        out
    }

    pub(super) fn next(&self) -> i64 {
        self.take(1)[0]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test assertions")]

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sequences_grow_and_two_processes_differ() {
        let (a, b) = (SeqClock::new(), SeqClock::new());
        let xs = a.take(5000);
        assert!(xs.windows(2).all(|w| w[0] < w[1]));
        let mut all: HashSet<i64> = xs.into_iter().collect();
        if a.tag != b.tag {
            assert!(b.take(5000).into_iter().all(|x| all.insert(x)));
        }
    }
}
