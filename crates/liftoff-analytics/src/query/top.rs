//! Event counts by name.

use super::{per_user_ranges, sum_parts};
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCount {
    pub event: String,
    pub count: u64,
}

impl EventTable {
    /// The `limit` most frequent event names in `range` (ties by name).
    pub fn top_events(&self, range: TimeRange, limit: usize) -> Vec<EventCount> {
        let n = self.events.len();
        let whole = self
            .bounds
            .is_some_and(|(lo, hi)| range.from_ms <= lo && hi < range.to_ms);
        let counts = if whole {
            // Everything is in range: a plain histogram of the event column.
            let mut c = vec![0u64; n];
            for &e in &self.event {
                c[e as usize] += 1;
            }
            c
        } else {
            sum_parts(per_user_ranges(self, |users| {
                let mut c = vec![0u64; n];
                for u in users {
                    for &e in &self.event[self.rows_in(u, range.from_ms, range.to_ms)] {
                        c[e as usize] += 1;
                    }
                }
                c
            }))
        };
        let mut out: Vec<EventCount> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(e, &count)| EventCount {
                event: self.events.name(e as u32).to_owned(),
                count,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.event.cmp(&b.event)));
        out.truncate(limit);
        out
    }
}
