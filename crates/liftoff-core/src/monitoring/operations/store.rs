//! The port operation cells, error rows and user rows are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::monitoring::operations::{OpCell, OpKey, OperationError, OperationWrite};
use crate::store::StoreError;

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
    async fn write_operations(&self, write: &OperationWrite) -> Result<u64, StoreError>;
    /// The cells of minutes `from..to` (`to` excluded) at whatever resolution they are kept.
    async fn operation_cells(&self, from: i64, to: i64)
    -> Result<Vec<(OpKey, OpCell)>, StoreError>;
    /// Error rows with `from <= at < to`, newest first, at most `limit`.
    async fn operation_errors(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OperationError>, StoreError>;
    /// Distinct users of Unix hours `from..to`, optionally of one service.
    async fn operation_users(
        &self,
        from: i64,
        to: i64,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError>;
    /// Like [`MetricsStore::compact_requests`](crate::monitoring::MetricsStore::compact_requests), for operation cells.
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
