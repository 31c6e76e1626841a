//! One user's events, and milestones: the first time each event name occurs for a user.

use super::per_user_ranges;
use crate::segment::NO_SESSION;
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEvent<'a> {
    pub ts_ms: i64,
    pub event: &'a str,
    pub session: Option<&'a str>,
    pub properties: &'a str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Milestone {
    pub event: String,
    /// Users whose first event of this name falls in the range.
    pub users: u64,
    /// Mean time from those users' first event ever to this first occurrence.
    pub avg_ms_after_first_seen: f64,
}

impl EventTable {
    /// The events of `user` in `range`, oldest first; empty for an unknown user.
    pub fn user_timeline(&self, user: &str, range: TimeRange) -> Vec<TimelineEvent<'_>> {
        let Some(u) = self.users.get(user) else {
            return Vec::new();
        };
        self.rows_in(u as usize, range.from_ms, range.to_ms)
            .map(|i| self.timeline_event(i))
            .collect()
    }

    /// The events of one explicit session id, oldest first (users in id order); empty when
    /// the id is unknown. A scan of the session column: milliseconds at 10M events.
    pub fn session_events(&self, session_id: &str) -> Vec<TimelineEvent<'_>> {
        self.session_events_by_user(session_id)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// [`Self::session_events`] with the user of each event.
    pub fn session_events_by_user(&self, session_id: &str) -> Vec<(&str, TimelineEvent<'_>)> {
        let Some(s) = self.sessions.get(session_id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for u in 0..self.user_count() {
            for i in self.rows_of(u) {
                if self.session[i] == s {
                    out.push((self.users.name(u as u32), self.timeline_event(i)));
                }
            }
        }
        out
    }

    fn timeline_event(&self, i: usize) -> TimelineEvent<'_> {
        TimelineEvent {
            ts_ms: self.ts[i],
            event: self.events.name(u32::from(self.event[i])),
            session: (self.session[i] != NO_SESSION).then(|| self.sessions.name(self.session[i])),
            properties: self.props.name(self.prop[i]),
        }
    }

    /// For each event name: how many users did it for the first time (ever) within `range`,
    /// most reached first — the user-journey funnel.
    pub fn milestones(&self, range: TimeRange) -> Vec<Milestone> {
        let n = self.events.len();
        let parts = per_user_ranges(self, |users| {
            let mut reached = vec![0u64; n];
            let mut delay = vec![0u128; n];
            // seen[e] == stamp: user already did e (a stamp per user avoids clearing).
            let mut seen = vec![usize::MAX; n];
            for u in users {
                let rows = self.rows_of(u);
                let first = self.ts[rows.start];
                for i in rows {
                    let e = self.event[i] as usize;
                    if seen[e] != u {
                        seen[e] = u;
                        if range.contains(self.ts[i]) {
                            reached[e] += 1;
                            delay[e] += (self.ts[i] - first) as u128;
                        }
                    }
                }
            }
            (reached, delay)
        });
        let mut reached = vec![0u64; n];
        let mut delay = vec![0u128; n];
        for (r, d) in parts {
            for e in 0..n {
                reached[e] += r[e];
                delay[e] += d[e];
            }
        }
        let mut out: Vec<Milestone> = (0..n)
            .filter(|&e| reached[e] > 0)
            .map(|e| Milestone {
                event: self.events.name(e as u32).to_owned(),
                users: reached[e],
                avg_ms_after_first_seen: delay[e] as f64 / reached[e] as f64,
            })
            .collect();
        out.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.event.cmp(&b.event)));
        out
    }
}
