//! The port alert documents, alert instances, the outbox and the lease are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::alerts::model::{Alert, Delivery, DocKind};
use crate::audit::Change;
use crate::store::StoreError;

/// Alert rules, silences, maintenance windows and channels (stored as JSON documents), alert
/// instances, the notification outbox and the evaluation lease. See [`alerts`](crate::alerts).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every document of `kind`, by id.
    async fn list_alert_docs(
        &self,
        kind: DocKind,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError>;
    /// Stores a new document and returns its id (the audit entry's target is set to it).
    async fn insert_alert_doc(
        &self,
        kind: DocKind,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<i64, StoreError>;
    /// `false` when there is no document with this id.
    async fn update_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Replaces several documents of `kind` and writes one audit entry, in one transaction;
    /// nothing changes when one of them is missing (`Conflict`).
    async fn replace_alert_docs(
        &self,
        kind: DocKind,
        docs: &[(i64, serde_json::Value)],
        change: &Change,
    ) -> Result<(), StoreError>;
    async fn delete_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// `true` the first time it is called with `name`, ever (first-start seeding).
    async fn mark_once(&self, name: &str) -> Result<bool, StoreError>;
    /// Inserts the alert (when its id is 0) or replaces it, and queues `deliveries` for it, in
    /// one transaction; returns the alert's id.
    async fn save_alert(&self, alert: &Alert, deliveries: &[Delivery]) -> Result<i64, StoreError>;
    /// Records the acknowledgement; `false` when there is no such alert.
    async fn ack_alert(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Newest first; only those not resolved when `active_only`.
    async fn list_alerts(&self, active_only: bool, limit: usize) -> Result<Vec<Alert>, StoreError>;
    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;
    /// Queues one delivery (not tied to an alert's state); returns its id.
    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<i64, StoreError>;
    /// Records `marker` and queues `deliveries` in one transaction, unless `marker` was
    /// recorded before (by [`mark_once`](Self::mark_once) or this): `true` when queued.
    async fn enqueue_once(&self, marker: &str, deliveries: &[Delivery])
    -> Result<bool, StoreError>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Writes attempts, status, next attempt, error and sent time.
    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError>;
}
