//! Liftoff's product-analytics engine: pure (no IO, no async), columnar, single binary.
//!
//! # Shape
//!
//! ```text
//!  EventRow ──Segment::build──► Segment ──encode──► bytes (stored by the caller, one blob a day)
//!                                  ▲                   │
//!                                  └──────decode───────┘
//!  [Segment] ──EventTable::from_segments──► EventTable ──► funnel / retention / sessions / …
//! ```
//!
//! * [`row`]: the input row ([`EventRow`]) and its NDJSON form.
//! * [`segment`]: an immutable block of events sorted by (user, ts) with its own
//!   dictionaries, and its byte encoding (versioned header, checksum, validated decode).
//! * [`table`]: the query form, many segments merged into global dictionaries and plain
//!   columns grouped by user.
//! * [`query`]: the kernels. [`time`]: ranges and calendar buckets.
//!
//! # Why this design
//!
//! Product-analytics questions are per-user questions: "did this user do A, then B within 7
//! days", "which days was this user active", "where do this user's sessions break". A SQL
//! engine answers them with joins, window functions and hash aggregations over (user, …)
//! keys; DuckDB's funnel is three ASOF joins, its sessionization two window sorts. If the
//! rows are *stored* grouped by user and sorted by time, each of those becomes one linear
//! pass over a user's slice with a few registers of state, no hashing and no sorting at
//! query time. That layout is the whole trick; everything else keeps it cheap:
//!
//! * **Dictionaries everywhere.** Users, event names, session ids and property objects are
//!   interned (`u32`/`u16` ids). Events carry a handful of distinct property objects (the
//!   shared benchmark data has ~750 for 10M events), so properties are interned as whole JSON
//!   texts and parsed only once per distinct object when a filter or breakdown needs a key.
//! * **Segments are the storage unit, the table is the query unit.** A day segment is
//!   self-contained (own dictionaries), so retention can drop a day and ingest can seal one
//!   without touching the others. Merging into the table re-maps local ids to global ones
//!   and concatenates per-user runs; runs of a user in time-ordered day segments do not
//!   overlap, so the merge is a copy, and overlapping segments fall back to a per-user sort.
//! * **Encoding exploits the sort order.** Users become run lengths over a sorted,
//!   front-coded dictionary; timestamps become small varint deltas within a user; session ids
//!   are listed in first-use order so "same as before" and "the next new one" are one-byte
//!   codes; property ids are ordered by frequency so the common ones are one-byte varints;
//!   uuids are a sparse column that costs one byte when absent. No general-purpose
//!   compressor: the columns are already near their entropy for this data, and decoding
//!   stays a tight loop.
//! * **Two cores.** Kernels split users into row-balanced ranges, one per thread
//!   (`std::thread::scope`), and add the partial counts.
//!
//! # Using it
//!
//! ```
//! use liftoff_analytics::{EventFilter, EventRow, EventTable, Segment, TimeRange, DAY_MS};
//!
//! let row = |ts, user: &str, event: &str| EventRow {
//!     ts_ms: ts,
//!     user: user.into(),
//!     session: None,
//!     event: event.into(),
//!     properties: "{}".into(),
//!     uuid: None,
//! };
//! // Ingest seals a day's rows into a segment and stores its bytes.
//! let blob = Segment::build(&[row(1_000, "u1", "signup"), row(2_000, "u1", "purchase")])
//!     .expect("fewer than 65,536 event names")
//!     .encode();
//! // At start-up (or after a new day is sealed) the table is rebuilt from the blobs.
//! let segments: Vec<Segment> =
//!     Segment::decode_many(&[blob]).into_iter().collect::<Result<_, _>>().expect("intact blobs");
//! let table = EventTable::from_segments(&segments).expect("within limits");
//! let steps = [EventFilter::event("signup"), EventFilter::event("purchase")];
//! let funnel = table.funnel(&steps, 7 * DAY_MS, TimeRange::all(), None).expect("valid funnel");
//! assert_eq!(funnel.users, vec![1, 1]);
//! ```
//!
//! # Semantics (PostHog / ClickHouse)
//!
//! * Funnels: ClickHouse `windowFunnel` default mode, see [`EventTable::funnel`].
//! * Retention: "on day N" by first-seen UTC day, see [`EventTable::retention`].
//! * Sessions: a new session after more than `gap_ms` of inactivity or when explicit session
//!   ids differ, see [`EventTable::sessions`].
//! * Time ranges are half-open `[from, to)` in unix ms, days and buckets are UTC.

pub mod ndjson;
pub mod query;
pub mod row;
pub mod segment;
mod strings;
pub mod table;
pub mod time;

pub use query::{
    BucketCount, Cohort, EventCount, EventExposure, EventFilter, FLAG_CALLED_EVENT, Flow,
    FunnelBreakdown, FunnelResult, Milestone, NewVsReturning, Paths, PropertyEq, QueryError,
    Retention, SessionStats, TimelineEvent, Transition, UserTotals, UserWindow,
};
pub use query::{DEFAULT_SESSION_GAP_MS, ENGAGED_MS_PER_WEEK, POWER_MS_PER_WEEK};
pub use row::{EventRow, RowRef};
pub use segment::{BuildError, DecodeError, PropertiesId, Segment, SegmentBuilder, Uuids};
pub use table::{EventTable, FileError, TableError};
pub use time::{Bucket, DAY_MS, TimeRange};
