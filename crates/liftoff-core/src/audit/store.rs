//! The port the audit trail is read (and, for changes kept elsewhere, written) through.

use async_trait::async_trait;

use crate::audit::{AuditEntry, AuditQuery, Change};
use crate::store::StoreError;

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Entries matching the query, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// Writes the audit entry of a change made in another store (an erasure in the event
    /// store), which cannot share that change's transaction.
    async fn record_audit(&self, change: &Change) -> Result<(), StoreError>;
}
