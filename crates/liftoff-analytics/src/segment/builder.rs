//! Rows in, one [`Segment`] out, without owning a `String` per field on the way.
//!
//! Each field is interned the moment it is pushed, so a caller that parses rows out of a
//! buffer (NDJSON, a database cursor) can hand over borrowed text and reuse its buffer.

use super::{BuildError, NO_SESSION, Segment};
use crate::row::RowRef;
use crate::strings::{Dict, StrList};

/// A property object interned in one [`SegmentBuilder`]; meaningless in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertiesId(u32);

/// Collects rows for one segment. Rows may come in any order; [`SegmentBuilder::finish`]
/// sorts them by (user, ts), keeping the push order of rows with the same user and time.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    users: Dict,
    events: Dict,
    sessions: Dict,
    props: Dict,
    ts: Vec<i64>,
    uid: Vec<u32>,
    eid: Vec<u16>,
    sid: Vec<u32>,
    pid: Vec<u32>,
    /// Rows per property object, indexed by its id in `props`.
    prop_count: Vec<u64>,
    /// `(push position, uuid)`.
    uuids: Vec<(u32, u128)>,
}

impl SegmentBuilder {
    pub fn new() -> SegmentBuilder {
        SegmentBuilder::default()
    }

    /// A builder with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> SegmentBuilder {
        SegmentBuilder {
            ts: Vec::with_capacity(rows),
            uid: Vec::with_capacity(rows),
            eid: Vec::with_capacity(rows),
            sid: Vec::with_capacity(rows),
            pid: Vec::with_capacity(rows),
            ..SegmentBuilder::default()
        }
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Adds one row. On an error nothing of the row is kept and the builder stays usable.
    pub fn push(&mut self, row: RowRef<'_>) -> Result<(), BuildError> {
        let properties = self.properties_id(row.properties);
        self.push_with_properties(row, properties)
    }

    /// The id of a property object's text, for [`SegmentBuilder::push_with_properties`]. An
    /// id no row is pushed with leaves no trace in the segment.
    pub fn properties_id(&mut self, text: &str) -> PropertiesId {
        let p = self.props.intern(text);
        if p as usize == self.prop_count.len() {
            self.prop_count.push(0);
        }
        PropertiesId(p)
    }

    /// [`SegmentBuilder::push`] with the property object given by id (`row.properties` is not
    /// read): a caller that knows rows share one object interns its text once.
    pub fn push_with_properties(
        &mut self,
        row: RowRef<'_>,
        properties: PropertiesId,
    ) -> Result<(), BuildError> {
        // Row positions are u32 and u32::MAX is kept free, as a segment's row count must be.
        if self.ts.len() >= u32::MAX as usize - 1 {
            return Err(BuildError::TooManyRows);
        }
        let event = match self.events.get(row.event) {
            Some(e) => e,
            None if self.events.len() > usize::from(u16::MAX) => {
                return Err(BuildError::TooManyEventNames);
            }
            None => self.events.intern(row.event),
        };
        let position = self.ts.len() as u32;
        self.ts.push(row.ts_ms);
        self.uid.push(self.users.intern(row.user));
        self.eid.push(event as u16);
        self.sid
            .push(row.session.map_or(NO_SESSION, |s| self.sessions.intern(s)));
        let PropertiesId(p) = properties;
        self.prop_count[p as usize] += 1;
        self.pid.push(p);
        if let Some(u) = row.uuid {
            self.uuids.push((position, u));
        }
        Ok(())
    }

    /// The segment of every row pushed.
    pub fn finish(self) -> Segment {
        let SegmentBuilder {
            users,
            events,
            sessions,
            props,
            ts: pushed_ts,
            uid,
            eid,
            sid,
            pid,
            prop_count,
            uuids: uuids_in,
        } = self;
        let n = pushed_ts.len();

        // Order by (user, ts, push position). Users are ranked by sorting the distinct names
        // once; rows are then placed by rank with a counting sort, which keeps push order
        // within a user, and a stable sort by time finishes each user's run — linear when
        // the rows came in time order, as they almost always do.
        let mut by_name: Vec<u32> = (0..users.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| users.name(a).cmp(users.name(b)));
        let mut rank = vec![0u32; by_name.len()];
        let mut sorted_users = StrList::default();
        for (r, &u) in by_name.iter().enumerate() {
            rank[u as usize] = r as u32;
            sorted_users.push(users.name(u));
        }
        let mut user_rows = vec![0u32; by_name.len()];
        for &u in &uid {
            user_rows[rank[u as usize] as usize] += 1;
        }
        let mut next: Vec<u32> = user_rows
            .iter()
            .scan(0u32, |start, &rows| {
                let at = *start;
                *start += rows;
                Some(at)
            })
            .collect();
        let mut order = vec![0u32; n];
        for (i, &u) in uid.iter().enumerate() {
            let slot = &mut next[rank[u as usize] as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        let mut from = 0usize;
        for &rows in &user_rows {
            let run = &mut order[from..from + rows as usize];
            if !run.is_sorted_by_key(|&i| pushed_ts[i as usize]) {
                run.sort_by_key(|&i| pushed_ts[i as usize]);
            }
            from += rows as usize;
        }

        // Most frequent property objects first (ties by text, for a deterministic encoding);
        // an id no row used is left out.
        let mut by_freq: Vec<u32> = (0..props.len() as u32)
            .filter(|&p| prop_count[p as usize] > 0)
            .collect();
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
        let ts: Vec<i64> = order.iter().map(|&i| pushed_ts[i as usize]).collect();
        let event: Vec<u16> = order.iter().map(|&i| eid[i as usize]).collect();
        let prop: Vec<u32> = order
            .iter()
            .map(|&i| prop_remap[pid[i as usize] as usize])
            .collect();
        let mut session = Vec::with_capacity(n);
        for (pos, &i) in order.iter().enumerate() {
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

        Segment {
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
        }
    }
}
