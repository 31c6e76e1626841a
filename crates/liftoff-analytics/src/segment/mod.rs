//! `Segment`: an immutable columnar block of events, rows sorted by (user, ts).
//!
//! A segment owns its own small dictionaries (users, event names, session ids, property
//! objects) so it can be encoded, stored and dropped on its own; one UTC day per segment is
//! the intended partitioning, but nothing here depends on it. [`crate::EventTable`] merges many
//! segments into global dictionaries for querying.

mod builder;
mod codec;
mod decode;
mod encode;

pub use builder::{PropertiesId, SegmentBuilder};
pub use decode::{DecodeError, Uuids};

use crate::row::EventRow;
use crate::strings::StrList;

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
        let mut builder = SegmentBuilder::with_capacity(rows.len());
        for r in rows {
            builder.push(r.as_ref())?;
        }
        Ok(builder.finish())
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
