//! What every storage port shares, and nothing of any domain: [`StoreError`] and
//! [`StoreHealth`].
//!
//! Each domain keeps its own port next to it (`flags/store.rs` with `FlagStore`,
//! `alerts/store.rs` with `AlertStore`, …) and depends only on that port and [`StoreError`];
//! the composition a state backend implements is `ports::StateStore`.
//! `liftoff-store` implements every port for SQLite and PostgreSQL, and `liftoff-testkit` holds
//! the contract suite both must pass.
//!
//! Every port method that changes state takes the `Change` that describes it, and a backend
//! writes the change and its audit entry in one transaction: there is no way to change state
//! without leaving an audit entry.
//!
//! This module imports from no domain (the layering test in `tests/layering.rs` checks it).

use std::time::Duration;

use async_trait::async_trait;

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
