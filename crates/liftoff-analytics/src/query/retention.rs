//! Retention "on day N" by first-seen UTC day: cohort d0 = the day of a user's first event
//! ever; cell (d0, k) = users of that cohort with an event on day d0 + k. Identical to the
//! DuckDB reference `Q_RETENTION` when the range covers the data.

use super::{per_user_ranges, sum_parts};
use crate::table::EventTable;
use crate::time::{DAY_MS, TimeRange, day_of};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// First UTC day of the range, in ms; cohort `c` is that day plus `c` days.
    pub first_day_ms: i64,
    /// Days in the range; cohort `c` can be observed for `days - c` days.
    pub days: usize,
    pub cohorts: Vec<Cohort>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    pub day_ms: i64,
    /// Users first seen that day (= `active[0]`).
    pub size: u64,
    /// `active[k]`: cohort users with an event k days after their first day.
    pub active: Vec<u64>,
}

impl Retention {
    /// Percentage of users active on day k, weighted over the cohorts that can observe day k
    /// (`bench_common.retention_summary`); `None` when no cohort can.
    pub fn day_pct(&self, k: usize) -> Option<f64> {
        let (mut num, mut den) = (0u64, 0u64);
        for (c, cohort) in self.cohorts.iter().enumerate() {
            if c + k < self.days {
                den += cohort.size;
                num += cohort.active.get(k).copied().unwrap_or(0);
            }
        }
        (den > 0).then(|| 100.0 * num as f64 / den as f64)
    }

    /// `(cohort index, k, users)` for every non-zero cell, the reference query's shape.
    pub fn triangle(&self) -> Vec<(usize, usize, u64)> {
        let mut out = Vec::new();
        for (c, cohort) in self.cohorts.iter().enumerate() {
            for (k, &users) in cohort.active.iter().enumerate() {
                if users > 0 {
                    out.push((c, k, users));
                }
            }
        }
        out
    }
}

impl EventTable {
    /// Cohorts of users first seen (ever) on a day of `range`, activity counted within
    /// `range`. The range is widened to whole UTC days first, so a cohort's day 0 is always
    /// its full size.
    pub fn retention(&self, range: TimeRange) -> Retention {
        let whole_days = TimeRange::new(
            day_of(range.from_ms).saturating_mul(DAY_MS),
            (day_of(range.to_ms.saturating_sub(1)) + 1).saturating_mul(DAY_MS),
        );
        let Some(range) = self.clip(whole_days) else {
            return Retention {
                first_day_ms: range.from_ms,
                days: 0,
                cohorts: Vec::new(),
            };
        };
        let d_first = day_of(range.from_ms);
        let days = (day_of(range.to_ms - 1) - d_first + 1) as usize;
        let parts = per_user_ranges(self, |users| {
            let mut cells = vec![0u64; days * days];
            for u in users {
                let all = self.rows_of(u);
                let d0 = day_of(self.ts[all.start]);
                if d0 < d_first {
                    continue;
                }
                let c = (d0 - d_first) as usize;
                let rows = self.rows_in(u, range.from_ms, range.to_ms);
                let ts = &self.ts[rows];
                let mut i = 0;
                while i < ts.len() {
                    let d = day_of(ts[i]);
                    cells[c * days + (d - d0) as usize] += 1;
                    let next = (d + 1) * DAY_MS;
                    i += ts[i..].partition_point(|&t| t < next);
                }
            }
            cells
        });
        let cells = sum_parts(parts);
        let cohorts = (0..days)
            .map(|c| {
                let active = cells[c * days..c * days + days - c].to_vec();
                Cohort {
                    day_ms: (d_first + c as i64) * DAY_MS,
                    size: active[0],
                    active,
                }
            })
            .collect();
        Retention {
            first_day_ms: d_first * DAY_MS,
            days,
            cohorts,
        }
    }
}
