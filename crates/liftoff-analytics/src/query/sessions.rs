//! Sessionization: a user's next event starts a new session when it comes more than
//! `gap_ms` after the previous one, or when both carry explicit session ids that differ.
//! With ids absent this is exactly the reference `Q_SESSIONS` (30 minutes of inactivity).

use super::per_user_ranges;
use crate::segment::NO_SESSION;
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;

pub const DEFAULT_SESSION_GAP_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SessionStats {
    pub sessions: u64,
    /// Sum over sessions of (last event − first event).
    pub total_duration_ms: u64,
    /// Sessions with a single event.
    pub bounces: u64,
}

impl SessionStats {
    pub fn avg_duration_ms(&self) -> f64 {
        if self.sessions == 0 {
            0.0
        } else {
            self.total_duration_ms as f64 / self.sessions as f64
        }
    }

    /// Share of sessions with one event, 0..=1.
    pub fn bounce_rate(&self) -> f64 {
        if self.sessions == 0 {
            0.0
        } else {
            self.bounces as f64 / self.sessions as f64
        }
    }
}

impl EventTable {
    /// Session count, duration and bounces over the events in `range`.
    pub fn sessions(&self, range: TimeRange, gap_ms: i64) -> SessionStats {
        let parts = per_user_ranges(self, |users| {
            let mut st = SessionStats::default();
            for u in users {
                let rows = self.rows_in(u, range.from_ms, range.to_ms);
                if rows.is_empty() {
                    continue;
                }
                let (ts, ses) = (&self.ts[rows.clone()], &self.session[rows]);
                let mut start = ts[0];
                let mut len = 1u64;
                for i in 1..ts.len() {
                    if is_new_session(ts[i - 1], ts[i], ses[i - 1], ses[i], gap_ms) {
                        st.sessions += 1;
                        st.total_duration_ms += (ts[i - 1] - start) as u64;
                        st.bounces += u64::from(len == 1);
                        start = ts[i];
                        len = 0;
                    }
                    len += 1;
                }
                st.sessions += 1;
                st.total_duration_ms += (ts[ts.len() - 1] - start) as u64;
                st.bounces += u64::from(len == 1);
            }
            st
        });
        parts
            .into_iter()
            .fold(SessionStats::default(), |a, b| SessionStats {
                sessions: a.sessions + b.sessions,
                total_duration_ms: a.total_duration_ms + b.total_duration_ms,
                bounces: a.bounces + b.bounces,
            })
    }
}

#[inline]
pub(crate) fn is_new_session(
    prev_ts: i64,
    ts: i64,
    prev_session: u32,
    session: u32,
    gap_ms: i64,
) -> bool {
    ts.saturating_sub(prev_ts) > gap_ms
        || (prev_session != session && prev_session != NO_SESSION && session != NO_SESSION)
}
