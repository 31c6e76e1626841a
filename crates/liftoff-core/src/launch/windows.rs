//! Scheduled maintenance for apps: a maintenance window with `gate` (the same windows that hold
//! back alert notifications, one concept) puts the launch into maintenance mode while it runs.
//! The alerts domain keeps the windows; the launch reads the one in force through this port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The gating window in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatingWindow {
    pub id: i64,
    pub message: Option<String>,
    pub ends_at: DateTime<Utc>,
}

/// Where gating windows are kept (the alerts service in a running server).
#[async_trait]
pub trait MaintenanceWindows: Send + Sync {
    /// The gating window running at `now` that ends last, if any.
    async fn gating_window(&self, now: DateTime<Utc>) -> Result<Option<GatingWindow>, String>;
    /// Bumped by every change to the windows made through this process, so an answer kept
    /// for the hot path is dropped at once when one is scheduled or removed here.
    fn revision(&self) -> u64;
}
