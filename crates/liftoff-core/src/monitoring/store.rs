//! The port request cells are kept through.

use async_trait::async_trait;

use crate::monitoring::requests::CellKey;
use crate::monitoring::resources::ResourceHour;
use crate::monitoring::sketch::DDSketch;
use crate::monitoring::variants::VariantCell;
use crate::store::StoreError;

/// Per-minute request cells: a key and a serialized DDSketch.
pub type RequestCell = (CellKey, DDSketch);

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
    /// Adds per-variant cells like [`Self::merge_request_minutes`] (one transaction).
    async fn merge_variant_minutes(&self, cells: &[VariantCell]) -> Result<(), StoreError>;
    /// One flag's variant cells of minutes `from..to`.
    async fn variant_minutes(
        &self,
        flag: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<VariantCell>, StoreError>;
    /// Deletes cells of resolution `res` older than minute `before`; returns how many. At
    /// resolution 1 the per-variant cells older than `before` go too.
    async fn purge_requests(&self, res: i64, before: i64) -> Result<u64, StoreError>;
    /// Adds the hours to the stored ones (sums added, peaks kept) in one transaction.
    async fn merge_resource_hours(&self, hours: &[ResourceHour]) -> Result<(), StoreError>;
    /// Every stored hour in `from..to` (Unix hours), one row per (service, instance, hour).
    async fn resource_hours(&self, from: i64, to: i64) -> Result<Vec<ResourceHour>, StoreError>;
    /// Deletes hours before `before` (a Unix hour); returns how many.
    async fn purge_resource_hours(&self, before: i64) -> Result<u64, StoreError>;
    /// Every (service, route) stored, to seed the route budget at start.
    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// `"sqlite"` or `"postgres"`.
    fn metrics_backend(&self) -> &'static str;
    /// Flushes what the backend buffers (SQLite checkpoints `metrics.db`) before shutdown.
    async fn close_metrics(&self) -> Result<(), StoreError>;
}
