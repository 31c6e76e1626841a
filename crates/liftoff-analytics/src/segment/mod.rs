//! `Segment`: an immutable columnar block of events, rows sorted by (user, ts).
//!
//! A segment owns its own small dictionaries (users, event names, session ids, property
//! objects) so it can be encoded, stored and dropped on its own; one UTC day per segment is
//! the intended partitioning, but nothing here depends on it. [`crate::EventTable`] merges many
//! segments into global dictionaries for querying.

mod codec;
mod decode;
mod encode;

pub use decode::{DecodeError, Uuids};

use crate::row::EventRow;
use crate::strings::{Dict, StrList};

/// Marks "no explicit session id" in session columns.
pub(crate) const NO_SESSION: u32 = u32::MAX;

/// Why a set of rows cannot become a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("more than 65536 distinct event names in one segment")]
    TooManyEventNames,
    #[error("more than 2^32 - 1 rows in one segment")]
    TooManyRows,
}

/// An immutable columnar block of events. See the crate docs for the encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Distinct users, ascending; row runs follow this order.
    pub(crate) users: StrList,
    /// Rows of each user (run lengths), parallel to `users`; every entry is at least 1.
    pub(crate) user_rows: Vec<u32>,
    /// Event names in order of first appearance.
    pub(crate) events: StrList,
    /// Explicit session ids in order of first appearance, which makes "the next new one" the
    /// common case the encoder can write in one byte.
    pub(crate) sessions: StrList,
    /// Property-object texts, most frequent first so the common ids are one-byte varints.
    pub(crate) props: StrList,
    pub(crate) ts: Vec<i64>,
    pub(crate) event: Vec<u16>,
    /// Index into `sessions`, or [`NO_SESSION`].
    pub(crate) session: Vec<u32>,
    pub(crate) prop: Vec<u32>,
    /// `(row, uuid)` for the rows that carry one, ascending by row.
    pub(crate) uuids: Vec<(u32, u128)>,
}

impl Segment {
    /// Builds a segment from rows in any order. Rows are sorted by (user, ts); rows with the
    /// same user and timestamp keep their input order.
    pub fn build(rows: &[EventRow]) -> Result<Segment, BuildError> {
        if u32::try_from(rows.len()).is_err() || rows.len() == u32::MAX as usize {
            return Err(BuildError::TooManyRows);
        }
        // Intern in input order: reading the rows (and their scattered strings) sequentially
        // once is far cheaper than visiting them in sorted order.
        let n = rows.len();
        let mut users = Dict::default();
        let mut events = Dict::default();
        let mut sessions = Dict::default();
        let mut props = Dict::default();
        let mut uid = Vec::with_capacity(n);
        let mut eid = Vec::with_capacity(n);
        let mut sid = Vec::with_capacity(n);
        let mut pid = Vec::with_capacity(n);
        let mut prop_count: Vec<u64> = Vec::new();
        let mut uuids_in = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            uid.push(users.intern(&r.user));
            let e = events.intern(&r.event);
            eid.push(u16::try_from(e).map_err(|_| BuildError::TooManyEventNames)?);
            sid.push(
                r.session
                    .as_deref()
                    .map_or(NO_SESSION, |s| sessions.intern(s)),
            );
            let p = props.intern(&r.properties);
            if p as usize == prop_count.len() {
                prop_count.push(0);
            }
            prop_count[p as usize] += 1;
            pid.push(p);
            if let Some(u) = r.uuid {
                uuids_in.push((i as u32, u));
            }
        }

        // Sort by (user rank, ts, input position): ranks come from sorting the distinct users
        // once, so the row sort compares integers instead of strings.
        let mut by_name: Vec<u32> = (0..users.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| users.name(a).cmp(users.name(b)));
        let mut rank = vec![0u32; by_name.len()];
        let mut sorted_users = StrList::default();
        for (r, &u) in by_name.iter().enumerate() {
            rank[u as usize] = r as u32;
            sorted_users.push(users.name(u));
        }
        let mut keys: Vec<(u32, i64, u32)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (rank[uid[i] as usize], r.ts_ms, i as u32))
            .collect();
        keys.sort_unstable();
        let mut user_rows = vec![0u32; by_name.len()];
        for &(r, _, _) in &keys {
            user_rows[r as usize] += 1;
        }

        // Most frequent property objects first (ties by text, for a deterministic encoding).
        let mut by_freq: Vec<u32> = (0..props.len() as u32).collect();
        by_freq.sort_by(|&a, &b| {
            prop_count[b as usize]
                .cmp(&prop_count[a as usize])
                .then_with(|| props.name(a).cmp(props.name(b)))
        });
        let mut prop_remap = vec![0u32; by_freq.len()];
        let mut sorted_props = StrList::default();
        for (new, &old) in by_freq.iter().enumerate() {
            prop_remap[old as usize] = new as u32;
            sorted_props.push(props.name(old));
        }

        // Session ids renumbered in order of first use in the sorted rows.
        let mut session_remap = vec![NO_SESSION; sessions.len()];
        let mut sorted_sessions = StrList::default();
        let mut new_pos = vec![0u32; n];
        let ts: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let event: Vec<u16> = keys.iter().map(|k| eid[k.2 as usize]).collect();
        let prop: Vec<u32> = keys
            .iter()
            .map(|k| prop_remap[pid[k.2 as usize] as usize])
            .collect();
        let mut session = Vec::with_capacity(n);
        for (pos, &(_, _, i)) in keys.iter().enumerate() {
            new_pos[i as usize] = pos as u32;
            let s = sid[i as usize];
            session.push(if s == NO_SESSION {
                NO_SESSION
            } else {
                if session_remap[s as usize] == NO_SESSION {
                    session_remap[s as usize] = sorted_sessions.push(sessions.name(s));
                }
                session_remap[s as usize]
            });
        }
        let mut uuids: Vec<(u32, u128)> = uuids_in
            .into_iter()
            .map(|(i, u)| (new_pos[i as usize], u))
            .collect();
        uuids.sort_unstable_by_key(|&(row, _)| row);

        Ok(Segment {
            users: sorted_users,
            user_rows,
            events: events.into_list(),
            sessions: sorted_sessions,
            props: sorted_props,
            ts,
            event,
            session,
            prop,
            uuids,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Number of distinct users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Smallest and largest timestamp, or `None` when empty.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        let min = self.ts.iter().min()?;
        let max = self.ts.iter().max()?;
        Some((*min, *max))
    }

    /// A new segment with only the rows `keep` accepts — how a person is erased or a
    /// retention cut applied to an immutable segment.
    pub fn retain(&self, mut keep: impl FnMut(&EventRow) -> bool) -> Segment {
        let rows: Vec<EventRow> = self.rows().filter(|r| keep(r)).collect();
        Segment::build(&rows)
            .expect("a subset of a valid segment's rows has no more names or rows than it")
    }

    /// The rows back, in segment order (user, ts) — for export and re-partitioning.
    pub fn rows(&self) -> impl Iterator<Item = EventRow> + '_ {
        let mut uuids = self.uuids.iter().peekable();
        self.user_rows
            .iter()
            .enumerate()
            .flat_map(|(u, &n)| std::iter::repeat_n(u, n as usize))
            .enumerate()
            .map(move |(row, u)| {
                let uuid = match uuids.peek() {
                    Some(&&(r, id)) if r as usize == row => {
                        uuids.next();
                        Some(id)
                    }
                    _ => None,
                };
                EventRow {
                    ts_ms: self.ts[row],
                    user: self.users.get(u).to_owned(),
                    session: match self.session[row] {
                        NO_SESSION => None,
                        s => Some(self.sessions.get(s as usize).to_owned()),
                    },
                    event: self.events.get(self.event[row] as usize).to_owned(),
                    properties: self.props.get(self.prop[row] as usize).to_owned(),
                    uuid,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, user: &str, event: &str) -> EventRow {
        EventRow {
            ts_ms: ts,
            user: user.into(),
            session: Some(format!("s-{user}")),
            event: event.into(),
            properties: "{}".into(),
            uuid: None,
        }
    }

    #[test]
    fn sorts_by_user_then_time_and_round_trips() {
        let rows = vec![
            row(5, "b", "x"),
            row(3, "a", "y"),
            row(1, "b", "y"),
            row(2, "a", "x"),
        ];
        let seg = Segment::build(&rows).expect("small");
        let back: Vec<EventRow> = seg.rows().collect();
        let order: Vec<(i64, &str)> = back.iter().map(|r| (r.ts_ms, r.user.as_str())).collect();
        assert_eq!(order, vec![(2, "a"), (3, "a"), (1, "b"), (5, "b")]);
        let decoded = Segment::decode(&seg.encode()).expect("valid blob");
        assert_eq!(decoded, seg);
    }
}
