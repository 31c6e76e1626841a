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

#[derive(Debug, thiserror::Error)]
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

/// Everything Liftoff keeps as shared state (not events): one object per backend.
pub trait StateStore:
    KeyStore + AuditStore + UserStore + SessionStore + FlagStore + StoreHealth
{
}
impl<T: KeyStore + AuditStore + UserStore + SessionStore + FlagStore + StoreHealth> StateStore
    for T
{
}

/// Per-minute request cells: a key and a serialized DDSketch.
pub type RequestCell = (
    crate::monitoring::requests::CellKey,
    crate::monitoring::sketch::DDSketch,
);

#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Adds the cells to the stored minutes (merging sketches where a cell exists) in one
    /// transaction: all or nothing.
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError>;
    /// The cells of minutes `from..to` (Unix minutes, `to` excluded), at whatever resolution
    /// they are kept: a compacted hour or day is returned whole, keyed by its first minute.
    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError>;
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
