//! Storage ports. `liftoff-store` implements each for SQLite and PostgreSQL, and
//! `liftoff-testkit` holds the contract suite both must pass.
//!
//! Every method that changes state takes the [`Change`] that describes it, and a backend writes
//! the change and its audit entry in one transaction: there is no way to change state without
//! leaving an audit entry.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditEntry, AuditQuery, Change};
use crate::auth::{ApiKey, KeyRecord};
use crate::flags::{Flag, FlagKey, RolloutPlan, Segment};
use crate::secret::TokenDigest;
use crate::users::{SessionRecord, User, UserRecord};

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (for example a duplicate user name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data in the store could not be read back (corruption or a bug).
    #[error("store data invalid: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &KeyRecord, change: &Change) -> Result<(), StoreError>;
    /// Every key, revoked ones included, newest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The active (not revoked) key with this digest.
    async fn find_active_key(&self, digest: &TokenDigest) -> Result<Option<ApiKey>, StoreError>;
    /// Marks a key revoked; `false` if there is no active key with this id.
    async fn revoke_key(&self, id: &str, change: &Change) -> Result<bool, StoreError>;
    /// Records when a key was last used (not audited: it is not a change of state a person made).
    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn count_active_keys(&self, scope: Option<crate::auth::Scope>)
    -> Result<u64, StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Entries matching the query, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// Writes the audit entry of a change made in another store (an erasure in the event
    /// store), which cannot share that change's transaction.
    async fn record_audit(&self, change: &Change) -> Result<(), StoreError>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the user name is taken.
    async fn insert_user(&self, user: &UserRecord, change: &Change) -> Result<(), StoreError>;
    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session with this digest, if it has not expired at `now`.
    async fn find_session(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;
    async fn delete_session(&self, digest: &TokenDigest) -> Result<(), StoreError>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// A round trip to the backend; its latency.
    async fn ping(&self) -> Result<Duration, StoreError>;
    /// The highest migration version applied.
    async fn schema_version(&self) -> Result<i64, StoreError>;
    /// Flushes whatever the backend buffers (SQLite checkpoints its WAL) before shutdown.
    async fn close(&self) -> Result<(), StoreError>;
}

#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Every flag, by key.
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError>;
    /// Fails with [`StoreError::Conflict`] when a flag with this key exists.
    async fn insert_flag(&self, flag: &Flag, change: &Change) -> Result<(), StoreError>;
    /// Replaces the flag if its stored version is still `expected_version`; `false` when it
    /// changed in the meantime or is gone (nothing is written then).
    async fn update_flag(
        &self,
        flag: &Flag,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Deletes the flag and its rollout plan; `false` when there was none.
    async fn delete_flag(&self, key: &FlagKey, change: &Change) -> Result<bool, StoreError>;
    /// Grows with every flag change, on every replica's writes: polling it tells a replica when
    /// to reload.
    async fn flags_revision(&self) -> Result<i64, StoreError>;
    /// Adds evaluation counts for one UTC day.
    async fn record_flag_evaluations(
        &self,
        day: chrono::NaiveDate,
        counts: &[(String, u64)],
    ) -> Result<(), StoreError>;
    /// The last day each flag was evaluated on.
    async fn flag_last_evaluated(&self) -> Result<Vec<(String, chrono::NaiveDate)>, StoreError>;
    /// Creates or replaces the flag's rollout plan.
    async fn save_rollout_plan(
        &self,
        plan: &RolloutPlan,
        change: &Change,
    ) -> Result<(), StoreError>;
    async fn list_rollout_plans(&self) -> Result<Vec<RolloutPlan>, StoreError>;
    /// Every segment, by id.
    async fn list_segments(&self) -> Result<Vec<Segment>, StoreError>;
    /// Stores a new segment and returns the id the store gave it (the `id` passed is ignored;
    /// the audit entry's target is set to the new id). Conflict when the name is taken.
    async fn insert_segment(&self, segment: &Segment, change: &Change) -> Result<i64, StoreError>;
    /// `false` when there is no segment with this id.
    async fn update_segment(&self, segment: &Segment, change: &Change) -> Result<bool, StoreError>;
    async fn delete_segment(&self, id: i64, change: &Change) -> Result<bool, StoreError>;
}

/// Alert rules, silences, maintenance windows and channels (stored as JSON documents), alert
/// instances, the notification outbox and the evaluation lease. See [`alerts`](crate::alerts).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every document of `kind`, by id.
    async fn list_alert_docs(
        &self,
        kind: crate::alerts::model::DocKind,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError>;
    /// Stores a new document and returns its id (the audit entry's target is set to it).
    async fn insert_alert_doc(
        &self,
        kind: crate::alerts::model::DocKind,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<i64, StoreError>;
    /// `false` when there is no document with this id.
    async fn update_alert_doc(
        &self,
        kind: crate::alerts::model::DocKind,
        id: i64,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Replaces several documents of `kind` and writes one audit entry, in one transaction;
    /// nothing changes when one of them is missing (`Conflict`).
    async fn replace_alert_docs(
        &self,
        kind: crate::alerts::model::DocKind,
        docs: &[(i64, serde_json::Value)],
        change: &Change,
    ) -> Result<(), StoreError>;
    async fn delete_alert_doc(
        &self,
        kind: crate::alerts::model::DocKind,
        id: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// `true` the first time it is called with `name`, ever (first-start seeding).
    async fn mark_once(&self, name: &str) -> Result<bool, StoreError>;
    /// Inserts the alert (when its id is 0) or replaces it, and queues `deliveries` for it, in
    /// one transaction; returns the alert's id.
    async fn save_alert(
        &self,
        alert: &crate::alerts::model::Alert,
        deliveries: &[crate::alerts::model::Delivery],
    ) -> Result<i64, StoreError>;
    /// Records the acknowledgement; `false` when there is no such alert.
    async fn ack_alert(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Newest first; only those not resolved when `active_only`.
    async fn list_alerts(
        &self,
        active_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::alerts::model::Alert>, StoreError>;
    async fn get_alert(&self, id: i64) -> Result<Option<crate::alerts::model::Alert>, StoreError>;
    /// Queues one delivery (not tied to an alert's state); returns its id.
    async fn enqueue_delivery(
        &self,
        delivery: &crate::alerts::model::Delivery,
    ) -> Result<i64, StoreError>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::alerts::model::Delivery>, StoreError>;
    /// Writes attempts, status, next attempt, error and sent time.
    async fn update_delivery(
        &self,
        delivery: &crate::alerts::model::Delivery,
    ) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::alerts::model::Delivery>, StoreError>;
    /// Takes or renews the lease `name` for `holder` until `until` if it is free, expired at
    /// `now` or already `holder`'s; `true` when `holder` holds it afterwards. A single-process
    /// backend (SQLite) always grants it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up if `holder` has it (at shutdown, so another replica need not wait
    /// for it to expire).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Everything Liftoff keeps as shared state (not events): one object per backend.
pub trait StateStore:
    KeyStore
    + AuditStore
    + UserStore
    + SessionStore
    + FlagStore
    + StoreHealth
    + UptimeStore
    + IncidentStore
    + AlertStore
{
}
impl<
    T: KeyStore
        + AuditStore
        + UserStore
        + SessionStore
        + FlagStore
        + StoreHealth
        + UptimeStore
        + IncidentStore
        + AlertStore,
> StateStore for T
{
}

/// Per-minute request cells: a key and a serialized DDSketch.
pub type RequestCell = (
    crate::monitoring::requests::CellKey,
    crate::monitoring::sketch::DDSketch,
);

/// An endpoint seen in a window.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeenEndpoint {
    pub service: String,
    pub method: String,
    pub route: String,
    /// Whether any request to it answered 5xx.
    pub failed: bool,
}

#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Adds the cells to the stored minutes (merging sketches where a cell exists) in one
    /// transaction: all or nothing.
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError>;
    /// The endpoint cells of minutes `from..to` (Unix minutes, `to` excluded), at whatever
    /// resolution they are kept: a compacted hour or day is returned whole, keyed by its first
    /// minute. Totals cells (see [`is_total`](crate::monitoring::requests::is_total)) are not
    /// included.
    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError>;
    /// Only the per-service totals cells of `from..to`, like [`Self::request_minutes`].
    async fn request_totals(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError>;
    /// Every endpoint (per service) with requests in `from..to` and whether any of them was a
    /// 5xx, from the stored counts (no sketch is read).
    async fn request_endpoints(&self, from: i64, to: i64) -> Result<Vec<SeenEndpoint>, StoreError>;
    /// Moves up to `limit` cells older than minute `before` from resolution `from_res` to the
    /// coarser `to_res` (minutes per cell: 1, 60 or 1440), merging sketches, in one
    /// transaction; returns how many source cells moved.
    async fn compact_requests(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError>;
    /// Deletes cells of resolution `res` older than minute `before`; returns how many.
    async fn purge_requests(&self, res: i64, before: i64) -> Result<u64, StoreError>;
    /// Every (service, route) stored, to seed the route budget at start.
    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// `"sqlite"` or `"postgres"`.
    fn metrics_backend(&self) -> &'static str;
    /// Flushes what the backend buffers (SQLite checkpoints `metrics.db`) before shutdown.
    async fn close_metrics(&self) -> Result<(), StoreError>;
}

/// Distinct users per operation name over a window: `(any run, a successful run)`, and the
/// distinct users of all operations together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationUserCounts {
    pub per_operation: std::collections::BTreeMap<String, (u64, u64)>,
    pub total: u64,
}

/// Operations (named units of work): cells per (service, operation, minute) compacted like
/// request cells, bounded error rows, and hourly user rows. See
/// [`monitoring::operations`](crate::monitoring::operations).
#[async_trait]
pub trait OperationStore: Send + Sync {
    /// In one transaction: merges the cells into the stored minutes, inserts the error rows
    /// (keeping at most [`ERRORS_PER_MINUTE`](crate::monitoring::operations::ERRORS_PER_MINUTE)
    /// per (service, operation, error type, minute), counting those already stored) and records
    /// the users. Returns how many error rows were not kept.
    async fn write_operations(
        &self,
        write: &crate::monitoring::operations::OperationWrite,
    ) -> Result<u64, StoreError>;
    /// The cells of minutes `from..to` (`to` excluded) at whatever resolution they are kept.
    async fn operation_cells(
        &self,
        from: i64,
        to: i64,
    ) -> Result<
        Vec<(
            crate::monitoring::operations::OpKey,
            crate::monitoring::operations::OpCell,
        )>,
        StoreError,
    >;
    /// Error rows with `from <= at < to`, newest first, at most `limit`.
    async fn operation_errors(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::monitoring::operations::OperationError>, StoreError>;
    /// Distinct users of Unix hours `from..to`, optionally of one service.
    async fn operation_users(
        &self,
        from: i64,
        to: i64,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError>;
    /// Like [`MetricsStore::compact_requests`], for operation cells.
    async fn compact_operations(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError>;
    /// Deletes cells of resolution `res` older than minute `before`; returns how many.
    async fn purge_operations(&self, res: i64, before: i64) -> Result<u64, StoreError>;
    /// Deletes error rows older than `errors_before` and user rows older than hour
    /// `users_before`; returns how many rows.
    async fn purge_operation_details(
        &self,
        errors_before: DateTime<Utc>,
        users_before: i64,
    ) -> Result<u64, StoreError>;
    /// Every (service, operation) stored, to seed the name budget at start.
    async fn operation_names(&self) -> Result<Vec<(String, String)>, StoreError>;
}

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
    pub event: crate::analytics::Event,
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
        events: &[crate::analytics::Event],
        persons: &[crate::analytics::PersonUpdate],
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
    async fn person(&self, user_id: &str) -> Result<Option<crate::analytics::Person>, StoreError>;
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
    async fn segment_index(&self)
    -> Result<Vec<crate::analytics::sealed::SegmentMeta>, StoreError>;
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

/// Uptime monitors, their checks (raw 24 h, hourly and daily rollups) and downtime periods.
/// See [`uptime`](crate::uptime).
#[async_trait]
pub trait UptimeStore: Send + Sync {
    /// Every monitor, by id.
    async fn list_monitors(&self) -> Result<Vec<crate::uptime::Monitor>, StoreError>;
    async fn get_monitor(&self, id: i64) -> Result<Option<crate::uptime::Monitor>, StoreError>;
    /// Stores a new monitor (its `id` and `state` are ignored) and returns the id it got; the
    /// audit entry's target is set to it.
    async fn insert_monitor(
        &self,
        monitor: &crate::uptime::Monitor,
        change: &Change,
    ) -> Result<i64, StoreError>;
    /// Replaces the configuration (not the state); `false` when there is no such monitor.
    async fn update_monitor(
        &self,
        monitor: &crate::uptime::Monitor,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Deletes the monitor with its checks, rollups and downtime periods.
    async fn delete_monitor(&self, id: i64, change: &Change) -> Result<bool, StoreError>;
    /// In one transaction: stores the check, adds it to its hour and day, sets the monitor's
    /// state and opens or closes a downtime period. `false` (nothing written) when the monitor
    /// is gone. Not audited: no person changed anything.
    async fn record_check(
        &self,
        check: &crate::uptime::CheckRecord,
        state: &crate::uptime::MonitorState,
        downtime: crate::uptime::DowntimeEdge,
    ) -> Result<bool, StoreError>;
    /// Raw checks at or after `from`, newest first, at most `limit`.
    async fn uptime_checks(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::uptime::CheckRecord>, StoreError>;
    /// Rollups whose bucket holds `from` or starts later, oldest first.
    async fn uptime_rollups(
        &self,
        monitor_id: i64,
        resolution: crate::uptime::Resolution,
        from: DateTime<Utc>,
    ) -> Result<Vec<crate::uptime::Rollup>, StoreError>;
    /// Downtime periods still open or ended at or after `from`, newest first.
    async fn downtimes(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
    ) -> Result<Vec<crate::uptime::Downtime>, StoreError>;
    /// Deletes raw checks before `checks_before`, hourly rollups before `hours_before`, daily
    /// rollups and ended downtime periods before `days_before`; returns how many rows.
    async fn purge_uptime(
        &self,
        checks_before: DateTime<Utc>,
        hours_before: DateTime<Utc>,
        days_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Incidents, each stored whole with a version. See [`incidents`](crate::incidents).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Allocates the next number of the year of `created_at` and stores the incident under
    /// `INC-YYYY-NNN` in the same transaction (the `id` passed is ignored; the audit entry's
    /// target is set to the new id). Returns the incident as stored.
    async fn create_incident(
        &self,
        incident: &crate::incidents::Incident,
        change: &Change,
    ) -> Result<crate::incidents::Incident, StoreError>;
    async fn get_incident(
        &self,
        id: &str,
    ) -> Result<Option<crate::incidents::Incident>, StoreError>;
    /// Every incident, newest first.
    async fn list_incidents(&self) -> Result<Vec<crate::incidents::Incident>, StoreError>;
    /// Replaces the incident if its stored version is still `expected_version`; `false` when it
    /// changed meanwhile or is gone (nothing is written then).
    async fn update_incident(
        &self,
        incident: &crate::incidents::Incident,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
}
