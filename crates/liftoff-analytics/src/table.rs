//! `EventTable`: the in-memory query form built from many segments.
//!
//! Global dictionaries (user → u32, event name → u16, property object → u32, session id →
//! u32) and one column per field, rows grouped by user and sorted by time inside a user;
//! `offsets[u]..offsets[u + 1]` are user `u`'s rows. Every kernel walks one user's slice at a
//! time, which is what makes funnels, sessions and retention a single pass with no hashing
//! and no sort. At 10M events the columns take 18 bytes per event (180 MB).
//!
//! Event uuids stay in the segments (exports read them there): no kernel reads one, and at
//! 16 bytes each they would nearly double the table.

use crate::row::EventRow;
use crate::segment::{BuildError, NO_SESSION, Segment};
use crate::strings::Dict;

mod file;
pub use file::FileError;

/// Why segments cannot be merged into one table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("more than 65536 distinct event names")]
    TooManyEventNames,
    #[error("more than 2^32 - 1 events")]
    TooManyRows,
}

impl From<BuildError> for TableError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::TooManyEventNames => TableError::TooManyEventNames,
            BuildError::TooManyRows => TableError::TooManyRows,
        }
    }
}

/// Columnar events of many segments, grouped by user, ready for the query kernels.
#[derive(Debug, Clone)]
pub struct EventTable {
    pub(crate) users: Dict,
    pub(crate) events: Dict,
    pub(crate) props: Dict,
    pub(crate) sessions: Dict,
    /// Row range of each user: `offsets[u]..offsets[u + 1]`.
    pub(crate) offsets: Vec<u32>,
    pub(crate) ts: Vec<i64>,
    pub(crate) event: Vec<u16>,
    pub(crate) prop: Vec<u32>,
    /// Global session id or [`NO_SESSION`].
    pub(crate) session: Vec<u32>,
    pub(crate) bounds: Option<(i64, i64)>,
}

/// One user's rows inside one segment.
struct Run {
    user: u32,
    first_ts: i64,
    segment: u32,
    start: u32,
    len: u32,
}

impl EventTable {
    /// Merges segments (any number, any partitioning, overlapping in time or not).
    pub fn from_segments(segments: &[Segment]) -> Result<EventTable, TableError> {
        let total: usize = segments.iter().map(Segment::len).sum();
        if total >= u32::MAX as usize {
            return Err(TableError::TooManyRows);
        }
        // Session ids are the largest dictionary: intern them on a second thread while this
        // one interns users, event names and property objects.
        let (sessions, session_maps, interned) = std::thread::scope(|s| {
            let sessions = s.spawn(|| {
                let mut sessions = Dict::default();
                let maps: Vec<Vec<u32>> = segments
                    .iter()
                    .map(|seg| seg.sessions.iter().map(|x| sessions.intern(x)).collect())
                    .collect();
                (sessions, maps)
            });
            let interned = intern_names_and_runs(segments);
            let (sessions, maps) = sessions.join().expect("session interning panicked");
            (sessions, maps, interned)
        });
        let Interned {
            users,
            events,
            props,
            mut runs,
            event_maps,
            prop_maps,
        } = interned?;
        runs.sort_unstable_by_key(|r| (r.user, r.first_ts, r.segment));

        let mut offsets = vec![0u32; users.len() + 1];
        for r in &runs {
            offsets[r.user as usize + 1] += r.len;
        }
        for u in 0..users.len() {
            offsets[u + 1] += offsets[u];
        }

        // Fill the columns in parallel: each thread owns the rows of a range of users.
        let mut ts = vec![0i64; total];
        let mut event = vec![0u16; total];
        let mut prop = vec![0u32; total];
        let mut session = vec![0u32; total];
        let maps = Maps {
            segments,
            events: &event_maps,
            props: &prop_maps,
            sessions: &session_maps,
        };
        let cols = Columns {
            ts: &mut ts,
            event: &mut event,
            prop: &mut prop,
            session: &mut session,
        };
        fill_by_users(&offsets, cols, |users, cols| {
            let first = runs.partition_point(|r| (r.user as usize) < users.start);
            let end = runs.partition_point(|r| (r.user as usize) < users.end);
            fill(&runs[first..end], &maps, cols);
        });
        let bounds = ts.iter().min().copied().zip(ts.iter().max().copied());
        Ok(EventTable {
            users,
            events,
            props,
            sessions,
            offsets,
            ts,
            event,
            prop,
            session,
            bounds,
        })
    }

    /// This table with `seg`'s rows added. The dictionaries are extended, not rebuilt, and
    /// each user's rows are copied once, so new events cost a copy of the columns rather
    /// than decoding and interning every segment again. Users, names and ids come out as
    /// [`Self::from_segments`] gives them for this table's segments followed by `seg`; a
    /// user's rows at the same millisecond keep arrival order (this table's first).
    pub fn append(&self, seg: &Segment) -> Result<EventTable, TableError> {
        let total = self.len() + seg.len();
        if total >= u32::MAX as usize {
            return Err(TableError::TooManyRows);
        }
        let mut events = self.events.clone();
        let event_map = seg
            .events
            .iter()
            .map(|e| u16::try_from(events.intern(e)).map_err(|_| TableError::TooManyEventNames))
            .collect::<Result<Vec<u16>, _>>()?;
        let mut props = self.props.clone();
        let prop_map: Vec<u32> = seg.props.iter().map(|p| props.intern(p)).collect();
        let mut sessions = self.sessions.clone();
        let session_map: Vec<u32> = seg.sessions.iter().map(|x| sessions.intern(x)).collect();
        let mut users = self.users.clone();
        let mut start = 0u32;
        let mut runs: Vec<Run> = Vec::with_capacity(seg.user_count());
        for (u, &len) in seg.user_rows.iter().enumerate() {
            runs.push(Run {
                user: users.intern(seg.users.get(u)),
                first_ts: 0,
                segment: 0,
                start,
                len,
            });
            start += len;
        }
        runs.sort_unstable_by_key(|r| r.user);

        let mut offsets = vec![0u32; users.len() + 1];
        for u in 0..self.user_count() {
            offsets[u + 1] = self.offsets[u + 1] - self.offsets[u];
        }
        for r in &runs {
            offsets[r.user as usize + 1] += r.len;
        }
        for u in 0..users.len() {
            offsets[u + 1] += offsets[u];
        }
        let (mut ts, mut event, mut prop, mut session) = (
            vec![0i64; total],
            vec![0u16; total],
            vec![0u32; total],
            vec![0u32; total],
        );
        let cols = Columns {
            ts: &mut ts,
            event: &mut event,
            prop: &mut prop,
            session: &mut session,
        };
        let maps: IdMaps<'_> = (&event_map, &prop_map, &session_map);
        fill_by_users(&offsets, cols, |range, out| {
            let Columns {
                ts,
                event,
                prop,
                session,
            } = out;
            let base = offsets[range.start] as usize;
            let mut next = runs.partition_point(|r| (r.user as usize) < range.start);
            for u in range {
                let dst = offsets[u] as usize - base..offsets[u + 1] as usize - base;
                let mut pos = dst.start;
                if u < self.user_count() {
                    let old = self.rows_of(u);
                    let n = old.len();
                    ts[pos..pos + n].copy_from_slice(&self.ts[old.clone()]);
                    event[pos..pos + n].copy_from_slice(&self.event[old.clone()]);
                    prop[pos..pos + n].copy_from_slice(&self.prop[old.clone()]);
                    session[pos..pos + n].copy_from_slice(&self.session[old]);
                    pos += n;
                }
                if let Some(r) = runs.get(next).filter(|r| r.user as usize == u) {
                    let src = r.start as usize..(r.start + r.len) as usize;
                    let to = pos..dst.end;
                    copy_run(
                        Columns {
                            ts: &mut ts[to.clone()],
                            event: &mut event[to.clone()],
                            prop: &mut prop[to.clone()],
                            session: &mut session[to],
                        },
                        seg,
                        src,
                        maps,
                    );
                    next += 1;
                    sort_if_interleaved(dst, ts, event, prop, session);
                }
            }
        });
        let bounds = match (self.bounds, seg.time_bounds()) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, y) => x.or(y),
        };
        Ok(EventTable {
            users,
            events,
            props,
            sessions,
            offsets,
            ts,
            event,
            prop,
            session,
            bounds,
        })
    }

    /// A table of the given rows (one segment); convenient for tests and small imports.
    pub fn from_rows(rows: &[EventRow]) -> Result<EventTable, TableError> {
        EventTable::from_segments(&[Segment::build(rows)?])
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Smallest and largest timestamp, or `None` when empty.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        self.bounds
    }

    /// Distinct event names, in id order.
    pub fn event_names(&self) -> impl Iterator<Item = &str> {
        self.events.iter()
    }

    /// Bytes held by columns and dictionaries (what the table adds to RSS).
    pub fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + self.event.capacity() * 2
            + self.prop.capacity() * 4
            + self.session.capacity() * 4
            + self.offsets.capacity() * 4
            + self.users.heap_bytes()
            + self.events.heap_bytes()
            + self.props.heap_bytes()
            + self.sessions.heap_bytes()
    }

    /// Row range of user `u`.
    pub(crate) fn rows_of(&self, u: usize) -> std::ops::Range<usize> {
        self.offsets[u] as usize..self.offsets[u + 1] as usize
    }

    /// The part of user `u`'s rows inside `[from, to)` (rows are sorted by time).
    pub(crate) fn rows_in(&self, u: usize, from: i64, to: i64) -> std::ops::Range<usize> {
        let all = self.rows_of(u);
        let ts = &self.ts[all.clone()];
        let lo = if ts.first().is_some_and(|&t| t >= from) {
            0
        } else {
            ts.partition_point(|&t| t < from)
        };
        let hi = if ts.last().is_some_and(|&t| t < to) {
            ts.len()
        } else {
            ts.partition_point(|&t| t < to)
        };
        all.start + lo..all.start + hi.max(lo)
    }
}

struct Interned {
    users: Dict,
    events: Dict,
    props: Dict,
    runs: Vec<Run>,
    event_maps: Vec<Vec<u16>>,
    prop_maps: Vec<Vec<u32>>,
}

/// Global ids for users, event names and property objects, and every (segment, user) run.
fn intern_names_and_runs(segments: &[Segment]) -> Result<Interned, TableError> {
    let mut users = Dict::default();
    let mut events = Dict::default();
    let mut props = Dict::default();
    let mut runs = Vec::new();
    let mut event_maps = Vec::with_capacity(segments.len());
    let mut prop_maps = Vec::with_capacity(segments.len());
    for (si, seg) in segments.iter().enumerate() {
        let mut event_map = Vec::with_capacity(seg.events.len());
        for e in seg.events.iter() {
            let g = events.intern(e);
            event_map.push(u16::try_from(g).map_err(|_| TableError::TooManyEventNames)?);
        }
        event_maps.push(event_map);
        prop_maps.push(seg.props.iter().map(|p| props.intern(p)).collect());
        let mut start = 0u32;
        for (u, &len) in seg.user_rows.iter().enumerate() {
            runs.push(Run {
                user: users.intern(seg.users.get(u)),
                first_ts: seg.ts[start as usize],
                segment: si as u32,
                start,
                len,
            });
            start += len;
        }
    }
    Ok(Interned {
        users,
        events,
        props,
        runs,
        event_maps,
        prop_maps,
    })
}

/// Runs `work` over ranges of users, one per thread, each with the columns of its users' rows
/// (`offsets[first]..offsets[end]`, relative to the range's first row). Ranges hold about
/// equal numbers of rows; small tables take one thread.
fn fill_by_users(
    offsets: &[u32],
    cols: Columns<'_>,
    work: impl Fn(std::ops::Range<usize>, Columns<'_>) + Sync,
) {
    let total = cols.ts.len();
    let user_count = offsets.len() - 1;
    let threads = if total < 200_000 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 16)
    };
    let mut cuts = vec![0usize];
    for k in 1..threads {
        let user = offsets.partition_point(|&o| (o as usize) < total * k / threads);
        cuts.push(user.clamp(*cuts.last().expect("starts non-empty"), user_count));
    }
    cuts.push(user_count);
    let Columns {
        ts: mut ts_rest,
        event: mut ev_rest,
        prop: mut pr_rest,
        session: mut se_rest,
    } = cols;
    let work = &work;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for w in cuts.windows(2) {
            let rows = (offsets[w[1]] - offsets[w[0]]) as usize;
            let (a, b) = std::mem::take(&mut ts_rest).split_at_mut(rows);
            let (c, d) = std::mem::take(&mut ev_rest).split_at_mut(rows);
            let (e, f) = std::mem::take(&mut pr_rest).split_at_mut(rows);
            let (g, h) = std::mem::take(&mut se_rest).split_at_mut(rows);
            (ts_rest, ev_rest, pr_rest, se_rest) = (b, d, f, h);
            let cols = Columns {
                ts: a,
                event: c,
                prop: e,
                session: g,
            };
            let users = w[0]..w[1];
            handles.push(s.spawn(move || work(users, cols)));
        }
        for h in handles {
            h.join().expect("table fill panicked");
        }
    });
}

/// Segment-local → global id maps, per segment.
struct Maps<'a> {
    segments: &'a [Segment],
    events: &'a [Vec<u16>],
    props: &'a [Vec<u32>],
    sessions: &'a [Vec<u32>],
}

/// The output rows of a range of users.
struct Columns<'a> {
    ts: &'a mut [i64],
    event: &'a mut [u16],
    prop: &'a mut [u32],
    session: &'a mut [u32],
}

/// Copies `runs` (sorted by user, then time) into `out`, re-mapping ids.
fn fill(runs: &[Run], maps: &Maps<'_>, out: Columns<'_>) {
    let Columns {
        ts,
        event,
        prop,
        session,
    } = out;
    let mut pos = 0usize;
    let mut i = 0;
    while i < runs.len() {
        let user = runs[i].user;
        let user_start = pos;
        while i < runs.len() && runs[i].user == user {
            let r = &runs[i];
            let si = r.segment as usize;
            let seg = &maps.segments[si];
            let src = r.start as usize..(r.start + r.len) as usize;
            let dst = pos..pos + r.len as usize;
            copy_run(
                Columns {
                    ts: &mut ts[dst.clone()],
                    event: &mut event[dst.clone()],
                    prop: &mut prop[dst.clone()],
                    session: &mut session[dst.clone()],
                },
                seg,
                src,
                (&maps.events[si], &maps.props[si], &maps.sessions[si]),
            );
            pos = dst.end;
            i += 1;
        }
        sort_if_interleaved(user_start..pos, ts, event, prop, session);
    }
}

/// Copies `seg`'s rows `src` into `out`, mapping its local ids through `(events, props,
/// sessions)`.
fn copy_run(out: Columns<'_>, seg: &Segment, src: std::ops::Range<usize>, maps: IdMaps<'_>) {
    let (event_map, prop_map, session_map) = maps;
    out.ts.copy_from_slice(&seg.ts[src.clone()]);
    for (d, &e) in out.event.iter_mut().zip(&seg.event[src.clone()]) {
        *d = event_map[e as usize];
    }
    for (d, &p) in out.prop.iter_mut().zip(&seg.prop[src.clone()]) {
        *d = prop_map[p as usize];
    }
    for (d, &x) in out.session.iter_mut().zip(&seg.session[src]) {
        *d = if x == NO_SESSION {
            NO_SESSION
        } else {
            session_map[x as usize]
        };
    }
}

type IdMaps<'a> = (&'a [u16], &'a [u32], &'a [u32]);

/// Rows of one user copied from several sources may interleave in time: sort them, stably,
/// so equal timestamps keep source order.
fn sort_if_interleaved(
    rows: std::ops::Range<usize>,
    ts: &mut [i64],
    event: &mut [u16],
    prop: &mut [u32],
    session: &mut [u32],
) {
    if ts[rows.clone()].is_sorted() {
        return;
    }
    let mut order: Vec<usize> = rows.clone().collect();
    order.sort_by_key(|&i| ts[i]);
    permute_col(ts, &order, rows.start);
    permute_col(event, &order, rows.start);
    permute_col(prop, &order, rows.start);
    permute_col(session, &order, rows.start);
}

fn permute_col<T: Copy>(col: &mut [T], order: &[usize], start: usize) {
    let copy: Vec<T> = order.iter().map(|&i| col[i]).collect();
    col[start..start + copy.len()].copy_from_slice(&copy);
}
