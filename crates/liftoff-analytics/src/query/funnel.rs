//! Ordered funnels with ClickHouse `windowFunnel` (default mode) semantics.
//!
//! A user reaches level k when some step-1 event at t1 has events for steps 2..k at
//! t1 <= t2 <= … <= tk <= t1 + window (the same timestamp may serve consecutive steps, as
//! in ClickHouse and in the DuckDB ASOF reference). One pass per user, ClickHouse's way:
//! `start[k]` holds the latest t1 of any chain that has reached step k so far. A later start
//! always dominates (its deadline is later), so extending only the latest chain loses
//! nothing, and the level is the deepest `start` ever set. Rows with equal timestamps are
//! folded into one step mask and handled in step order, which is what makes `t2 >= t1`
//! (not `>`) hold for ties between different rows.

use super::filter::{StepMasks, property_values};
use super::{EventFilter, QueryError, per_user_ranges};
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;

/// Users reaching each step (`users[k]` = reached at least step k + 1); never increasing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunnelResult {
    pub users: Vec<u64>,
    /// Per value of the breakdown property on the step-1 event (empty without a breakdown),
    /// most step-1 users first.
    pub breakdown: Vec<FunnelBreakdown>,
}

/// One breakdown value. A user whose step-1 events carry several values counts once under
/// each, with the chains that start from events of that value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunnelBreakdown {
    /// `None` for step-1 events without the property.
    pub value: Option<String>,
    pub users: Vec<u64>,
}

impl EventTable {
    /// Funnel over events in `range`; `breakdown` names a property of the step-1 event.
    pub fn funnel(
        &self,
        steps: &[EventFilter],
        window_ms: i64,
        range: TimeRange,
        breakdown: Option<&str>,
    ) -> Result<FunnelResult, QueryError> {
        if steps.is_empty() {
            return Err(QueryError::NoSteps);
        }
        if steps.len() > 32 {
            return Err(QueryError::TooManySteps(steps.len()));
        }
        if window_ms < 0 {
            return Err(QueryError::NegativeWindow);
        }
        let masks = StepMasks::new(self, steps);
        let n = steps.len();
        let stride = n + 1;
        let (value_of_prop, values) = match breakdown {
            Some(key) => property_values(self, key),
            None => (Vec::new(), Vec::new()),
        };
        let parts = per_user_ranges(self, |users| {
            // reached[level] for all users, then reached[stride * (1 + value) + level]
            let mut reached = vec![0u64; stride * (1 + values.len())];
            let mut buf = Vec::new();
            let mut starts: Vec<u32> = Vec::new();
            for u in users {
                buf.clear();
                self.collect_steps(u, range, &masks, &mut buf);
                reached[level_from(&buf, n, window_ms, |_| true)] += 1;
                if breakdown.is_none() {
                    continue;
                }
                starts.clear();
                starts.extend(
                    buf.iter()
                        .filter(|r| r.mask & 1 != 0)
                        .map(|r| value_of_prop[r.prop as usize]),
                );
                starts.sort_unstable();
                starts.dedup();
                for &v in &starts {
                    let l = level_from(&buf, n, window_ms, |p| value_of_prop[p as usize] == v);
                    reached[stride * (1 + v as usize) + l] += 1;
                }
            }
            reached
        });
        let mut total = vec![0u64; stride * (1 + values.len())];
        for p in parts {
            for (t, x) in total.iter_mut().zip(p) {
                *t += x;
            }
        }
        let mut rows: Vec<FunnelBreakdown> = values
            .into_iter()
            .enumerate()
            .map(|(v, value)| FunnelBreakdown {
                value,
                users: cumulative(&total[stride * (1 + v)..stride * (2 + v)]),
            })
            .filter(|b| b.users[0] > 0)
            .collect();
        rows.sort_by(|a, b| {
            b.users[0]
                .cmp(&a.users[0])
                .then_with(|| a.value.cmp(&b.value))
        });
        Ok(FunnelResult {
            users: cumulative(&total[..stride]),
            breakdown: rows,
        })
    }

    /// The rows of user `u` in `range` that match any step, in time order.
    fn collect_steps(&self, u: usize, range: TimeRange, masks: &StepMasks, out: &mut Vec<StepRow>) {
        let rows = self.rows_in(u, range.from_ms, range.to_ms);
        let (ts, ev, pr) = (
            &self.ts[rows.clone()],
            &self.event[rows.clone()],
            &self.prop[rows],
        );
        for i in 0..ts.len() {
            let mask = masks.of(ev[i], pr[i]);
            if mask != 0 {
                out.push(StepRow {
                    ts: ts[i],
                    mask,
                    prop: pr[i],
                });
            }
        }
    }
}

/// A row matching at least one step: bit k of `mask` set when it matches step k.
struct StepRow {
    ts: i64,
    mask: u32,
    prop: u32,
}

/// The deepest step reached when only step-1 rows whose property object passes `may_start`
/// can begin a chain. Rows of one timestamp are folded into one mask first.
fn level_from(rows: &[StepRow], n: usize, window: i64, may_start: impl Fn(u32) -> bool) -> usize {
    let mut start = [0i64; 32];
    let mut reached = 0u32; // bit k: some chain reached step k
    let full = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
    let mut i = 0;
    while i < rows.len() {
        let t = rows[i].ts;
        let mut m = 0u32;
        while i < rows.len() && rows[i].ts == t {
            let r = &rows[i];
            m |= if r.mask & 1 != 0 && !may_start(r.prop) {
                r.mask & !1
            } else {
                r.mask
            };
            i += 1;
        }
        while m != 0 {
            let k = m.trailing_zeros() as usize;
            m &= m - 1;
            if k == 0 {
                start[0] = t;
                reached |= 1;
            } else if reached & (1 << (k - 1)) != 0 && t <= start[k - 1].saturating_add(window) {
                start[k] = start[k - 1];
                reached |= 1 << k;
            }
        }
        if reached == full {
            break;
        }
    }
    32 - reached.leading_zeros() as usize
}

/// Users per exact level (index 0 = none) → users reaching at least each step.
fn cumulative(per_level: &[u64]) -> Vec<u64> {
    let n = per_level.len() - 1;
    let mut out = vec![0u64; n];
    let mut acc = 0;
    for k in (1..=n).rev() {
        acc += per_level[k];
        out[k - 1] = acc;
    }
    out
}
