//! The port product events and persons are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::analytics::sealed::SegmentMeta;
use crate::analytics::{Event, Person, PersonUpdate};
use crate::store::StoreError;

/// What [`EventStore::append_events`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Events stored.
    pub inserted: u64,
    /// Events not stored because an event with their uuid already was (earlier, or earlier in
    /// the same call).
    pub duplicates: u64,
    /// Positions (in the slice passed) of the duplicates, ascending.
    pub duplicate_at: Vec<usize>,
}

/// An event as stored, with its place in the store's append order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Grows with every append; pages follow it.
    pub seq: i64,
    pub event: Event,
}

/// What erasing a person removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    pub events: u64,
    pub person: bool,
}

/// A person erased: events of `user_id` with `seq <= up_to_seq` are gone from the hot table
/// and must be filtered from (or rewritten out of) any sealed copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedUser {
    pub user_id: String,
    pub erased_at: DateTime<Utc>,
    pub up_to_seq: i64,
}

/// Raw product events and persons (`events.db` on SQLite; the shared database on PostgreSQL).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the events and applies the person updates in one transaction: all or nothing.
    /// An event whose uuid is already stored (or appears earlier in `events`) is a duplicate:
    /// counted, not stored again. Person updates are applied for every event, duplicates
    /// included (they are idempotent).
    async fn append_events(
        &self,
        events: &[Event],
        persons: &[PersonUpdate],
    ) -> Result<AppendOutcome, StoreError>;
    /// Unsealed (row) events with `from_ms <= ts < to_ms` and `seq > after_seq`, in seq order,
    /// at most `limit`. Sealed days are read through [`Self::segment_index`].
    async fn events_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        after_seq: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The latest `limit` events of one user with `ts >= from_ms`, oldest first.
    async fn user_events(
        &self,
        user_id: &str,
        from_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn person(&self, user_id: &str) -> Result<Option<Person>, StoreError>;
    /// Deletes the person and every stored event of theirs (sealed parts are rewritten without
    /// them) and records the erasure, in one transaction.
    async fn erase_person(&self, user_id: &str) -> Result<Erasure, StoreError>;
    /// Every erasure, oldest first.
    async fn erased_users(&self) -> Result<Vec<ErasedUser>, StoreError>;
    /// Stored events, sealed ones included.
    async fn event_count(&self) -> Result<u64, StoreError>;
    /// UTC days before `before_day` that still hold unsealed rows, oldest first.
    async fn unsealed_days(&self, before_day: i64) -> Result<Vec<i64>, StoreError>;
    /// Seals one UTC day: its unsealed rows become one more encoded part
    /// ([`crate::analytics::sealed`]) in one transaction — the part stored, the uuids kept so
    /// retries stay duplicates (for [`DEDUPE_DAYS`](crate::analytics::sealed::DEDUPE_DAYS)), the
    /// rows deleted. Returns the events sealed (0: nothing to do).
    async fn seal_day(&self, day: i64) -> Result<u64, StoreError>;
    /// Every sealed part, by day then part.
    async fn segment_index(&self) -> Result<Vec<SegmentMeta>, StoreError>;
    /// The encoded bytes of one sealed part; `None` when it is gone.
    async fn load_segment(&self, day: i64, part: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes events with `ts < ts_ms` (sealed days entirely before it included); returns how
    /// many.
    async fn purge_events_before(&self, ts_ms: i64) -> Result<u64, StoreError>;
    /// `"sqlite"` or `"postgres"`.
    fn events_backend(&self) -> &'static str;
    /// Flushes what the backend buffers (SQLite checkpoints `events.db`) before shutdown.
    async fn close_events(&self) -> Result<(), StoreError>;
}
