//! The port uptime monitors, checks, rollups and downtime periods are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::Change;
use crate::store::StoreError;
use crate::uptime::{
    CheckRecord, Downtime, DowntimeEdge, Monitor, MonitorState, Resolution, Rollup,
};

/// Uptime monitors, their checks (raw 24 h, hourly and daily rollups) and downtime periods.
/// See [`uptime`](crate::uptime).
#[async_trait]
pub trait UptimeStore: Send + Sync {
    /// Every monitor, by id.
    async fn list_monitors(&self) -> Result<Vec<Monitor>, StoreError>;
    async fn get_monitor(&self, id: i64) -> Result<Option<Monitor>, StoreError>;
    /// Stores a new monitor (its `id` and `state` are ignored) and returns the id it got; the
    /// audit entry's target is set to it.
    async fn insert_monitor(&self, monitor: &Monitor, change: &Change) -> Result<i64, StoreError>;
    /// Replaces the configuration (not the state); `false` when there is no such monitor.
    async fn update_monitor(&self, monitor: &Monitor, change: &Change) -> Result<bool, StoreError>;
    /// Deletes the monitor with its checks, rollups and downtime periods.
    async fn delete_monitor(&self, id: i64, change: &Change) -> Result<bool, StoreError>;
    /// In one transaction: stores the check, adds it to its hour and day, sets the monitor's
    /// state and opens or closes a downtime period. `false` (nothing written) when the monitor
    /// is gone. Not audited: no person changed anything.
    async fn record_check(
        &self,
        check: &CheckRecord,
        state: &MonitorState,
        downtime: DowntimeEdge,
    ) -> Result<bool, StoreError>;
    /// Raw checks at or after `from`, newest first, at most `limit`.
    async fn uptime_checks(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError>;
    /// Rollups whose bucket holds `from` or starts later, oldest first.
    async fn uptime_rollups(
        &self,
        monitor_id: i64,
        resolution: Resolution,
        from: DateTime<Utc>,
    ) -> Result<Vec<Rollup>, StoreError>;
    /// Downtime periods still open or ended at or after `from`, newest first.
    async fn downtimes(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
    ) -> Result<Vec<Downtime>, StoreError>;
    /// Deletes raw checks before `checks_before`, hourly rollups before `hours_before`, daily
    /// rollups and ended downtime periods before `days_before`; returns how many rows.
    async fn purge_uptime(
        &self,
        checks_before: DateTime<Utc>,
        hours_before: DateTime<Utc>,
        days_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}
