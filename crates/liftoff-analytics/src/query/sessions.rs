//! Sessionization: a user's next event starts a new session when it comes more than
//! `gap_ms` after the previous one, or when both carry explicit session ids that differ.
//! With ids absent this is exactly the reference `Q_SESSIONS` (30 minutes of inactivity).

use super::per_user_ranges;
use crate::segment::NO_SESSION;
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;

pub const DEFAULT_SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// Session time a week that makes a user engaged (seed 003: more than 30 minutes a week).
pub const ENGAGED_MS_PER_WEEK: i64 = 30 * 60 * 1000;
/// Session time a week that makes a power user (more than 2 hours a week).
pub const POWER_MS_PER_WEEK: i64 = 2 * 60 * 60 * 1000;
const WEEK_MS: f64 = 7.0 * 86_400_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SessionStats {
    pub sessions: u64,
    /// Sum over sessions of (last event − first event).
    pub total_duration_ms: u64,
    /// Sessions with a single event.
    pub bounces: u64,
    /// Users with an event in the range.
    pub users: u64,
    /// Users whose session time, spread over the range's weeks, is more than
    /// [`ENGAGED_MS_PER_WEEK`] a week.
    pub engaged_users: u64,
    /// The same above [`POWER_MS_PER_WEEK`].
    pub power_users: u64,
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
        // A range shorter than a week counts as a week: an hour of use in one day is not
        // seven hours a week.
        let weeks = ((range.to_ms as f64 - range.from_ms as f64) / WEEK_MS).max(1.0);
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
                let mut user_ms = 0u64;
                for i in 1..ts.len() {
                    if is_new_session(ts[i - 1], ts[i], ses[i - 1], ses[i], gap_ms) {
                        st.sessions += 1;
                        user_ms += (ts[i - 1] - start) as u64;
                        st.bounces += u64::from(len == 1);
                        start = ts[i];
                        len = 0;
                    }
                    len += 1;
                }
                st.sessions += 1;
                user_ms += (ts[ts.len() - 1] - start) as u64;
                st.bounces += u64::from(len == 1);
                st.total_duration_ms += user_ms;
                st.users += 1;
                let weekly = user_ms as f64 / weeks;
                st.engaged_users += u64::from(weekly > ENGAGED_MS_PER_WEEK as f64);
                st.power_users += u64::from(weekly > POWER_MS_PER_WEEK as f64);
            }
            st
        });
        parts
            .into_iter()
            .fold(SessionStats::default(), |a, b| SessionStats {
                sessions: a.sessions + b.sessions,
                total_duration_ms: a.total_duration_ms + b.total_duration_ms,
                bounces: a.bounces + b.bounces,
                users: a.users + b.users,
                engaged_users: a.engaged_users + b.engaged_users,
                power_users: a.power_users + b.power_users,
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
