//! Request metrics in ClickHouse: request cells (see [`cells`](super::cells)), per-variant
//! cells and resource hours, all appended and merged when read.

use async_trait::async_trait;
use liftoff_core::monitoring::requests::CellKey;
use liftoff_core::monitoring::resources::ResourceHour;
use liftoff_core::monitoring::sketch::DDSketch;
use liftoff_core::monitoring::variants::{VariantCell, VariantKey};
use liftoff_core::monitoring::{MetricsStore, RequestCell, SeenEndpoint};
use liftoff_core::store::StoreError;
use serde::{Deserialize, Serialize};

use super::cells::{self, CellKind, delete_counted, sketch_of, sketch_text};
use super::client::{ClickHouse, lit};
use super::seq::SeqClock;
use crate::codec::corrupt;

/// Request metrics and operations in one ClickHouse database (the events' database).
pub struct ClickHouseMetrics {
    pub(super) ch: ClickHouse,
    /// Row ids of appended cells, and the order of error rows and resource readings.
    pub(super) ids: SeqClock,
}

impl ClickHouseMetrics {
    /// Metrics over a database [`schema::migrate`](super::schema::migrate) has prepared.
    pub fn new(ch: ClickHouse) -> Self {
        Self {
            ch,
            ids: SeqClock::new(),
        }
    }
}

pub(super) struct RequestCells;

/// A request cell's row; `resolution` and `replaces` are written, not read.
#[derive(Serialize, Deserialize)]
pub(super) struct RequestRow {
    #[serde(default)]
    resolution: i64,
    service: String,
    method: String,
    route: String,
    status: u16,
    bucket: i64,
    sketch: String,
    id: i64,
    #[serde(default)]
    replaces: Vec<i64>,
}

impl CellKind for RequestCells {
    const TABLE: &'static str = "request_cells";
    const COLUMNS: &'static str = "service, method, route, status, bucket, sketch, id";
    const KEY_COLUMNS: &'static str = "service, method, route, status, bucket";
    type Key = CellKey;
    type Cell = DDSketch;
    type Row = RequestRow;

    fn decode(r: RequestRow) -> Result<(CellKey, DDSketch, i64), StoreError> {
        Ok((
            CellKey {
                minute: r.bucket,
                service: r.service,
                method: r.method,
                route: r.route,
                status: r.status,
            },
            sketch_of(&r.sketch)?,
            r.id,
        ))
    }

    fn encode(
        resolution: i64,
        k: &CellKey,
        s: &DDSketch,
        id: i64,
        replaces: Vec<i64>,
    ) -> RequestRow {
        RequestRow {
            resolution,
            service: k.service.clone(),
            method: k.method.clone(),
            route: k.route.clone(),
            status: k.status,
            bucket: k.minute,
            sketch: sketch_text(s),
            id,
            replaces,
        }
    }

    fn merge(into: &mut DDSketch, other: DDSketch) -> Result<(), StoreError> {
        into.merge(&other).map_err(corrupt)
    }

    fn bucket(k: &CellKey) -> i64 {
        k.minute
    }

    fn with_bucket(k: &CellKey, minute: i64) -> CellKey {
        CellKey {
            minute,
            ..k.clone()
        }
    }
}

#[derive(Serialize, Deserialize)]
struct VariantRow {
    flag: String,
    minute: i64,
    variant: String,
    failed: u8,
    sketch: String,
}

#[derive(Serialize, Deserialize)]
struct ResourceRow {
    service: String,
    instance: String,
    hour: i64,
    samples: u64,
    cpu_sum: f64,
    cpu_max: f64,
    memory_sum: f64,
    memory_max: f64,
    disk_sum: f64,
    disk_max: f64,
    cpu_count: f64,
    memory_total_mb: f64,
    disk_total_gb: f64,
    /// Which reading is later (capacity is taken from it).
    #[serde(default)]
    seq: i64,
}

#[derive(Deserialize)]
struct EndpointRow {
    service: String,
    method: String,
    route: String,
    failed: u8,
}

#[derive(Deserialize)]
struct RouteRow {
    service: String,
    route: String,
}

#[async_trait]
impl MetricsStore for ClickHouseMetrics {
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError> {
        cells::append::<RequestCells>(&self.ch, &self.ids, cells).await
    }

    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        cells::read::<RequestCells>(&self.ch, "method != ''", from, to).await
    }

    async fn request_totals(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        cells::read::<RequestCells>(&self.ch, "method = ''", from, to).await
    }

    async fn request_endpoints(&self, from: i64, to: i64) -> Result<Vec<SeenEndpoint>, StoreError> {
        let rows: Vec<EndpointRow> = cells::grouped::<RequestCells, _>(
            &self.ch,
            "service, method, route, max(status >= 500) AS failed",
            "service, method, route",
            "method != ''",
            from,
            to,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SeenEndpoint {
                service: r.service,
                method: r.method,
                route: r.route,
                failed: r.failed != 0,
            })
            .collect())
    }

    async fn compact_requests(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        cells::compact::<RequestCells>(&self.ch, &self.ids, from_res, to_res, before, limit).await
    }

    async fn merge_variant_minutes(&self, cells: &[VariantCell]) -> Result<(), StoreError> {
        let rows: Vec<VariantRow> = cells
            .iter()
            .map(|(k, s)| VariantRow {
                flag: k.flag.clone(),
                minute: k.minute,
                variant: k.variant.clone(),
                failed: u8::from(k.failed),
                sketch: sketch_text(s),
            })
            .collect();
        self.ch.insert("variant_cells", &rows).await
    }

    async fn variant_minutes(
        &self,
        flag: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<VariantCell>, StoreError> {
        let rows: Vec<VariantRow> = self
            .ch
            .rows(&format!(
                "SELECT flag, minute, variant, failed, sketch FROM variant_cells
                 WHERE flag = {} AND minute >= {from} AND minute < {to}",
                lit(flag)
            ))
            .await?;
        let mut merged: std::collections::BTreeMap<VariantKey, DDSketch> = Default::default();
        for r in rows {
            let key = VariantKey {
                minute: r.minute,
                flag: r.flag,
                variant: r.variant,
                failed: r.failed != 0,
            };
            let sketch = sketch_of(&r.sketch)?;
            match merged.get_mut(&key) {
                Some(into) => into.merge(&sketch).map_err(corrupt)?,
                None => {
                    merged.insert(key, sketch);
                }
            }
        }
        Ok(merged.into_iter().collect())
    }

    async fn purge_requests(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        if res == 1 {
            let filter = format!("minute < {before}");
            let count = format!("SELECT count() FROM variant_cells WHERE {filter}");
            delete_counted(&self.ch, "variant_cells", &count, &filter).await?;
        }
        cells::purge::<RequestCells>(&self.ch, res, before).await
    }

    async fn merge_resource_hours(&self, hours: &[ResourceHour]) -> Result<(), StoreError> {
        let seqs = self.ids.take(hours.len());
        let rows: Vec<ResourceRow> = hours
            .iter()
            .zip(seqs)
            .map(|(h, seq)| ResourceRow {
                service: h.service.clone(),
                instance: h.instance.clone(),
                hour: h.hour,
                samples: h.samples,
                cpu_sum: h.cpu_sum,
                cpu_max: h.cpu_max,
                memory_sum: h.memory_sum,
                memory_max: h.memory_max,
                disk_sum: h.disk_sum,
                disk_max: h.disk_max,
                cpu_count: h.cpu_count,
                memory_total_mb: h.memory_total_mb,
                disk_total_gb: h.disk_total_gb,
                seq,
            })
            .collect();
        self.ch.insert("resource_hours", &rows).await
    }

    async fn resource_hours(&self, from: i64, to: i64) -> Result<Vec<ResourceHour>, StoreError> {
        // Sums add, peaks keep the higher, capacity is the latest reading's.
        let rows: Vec<ResourceRow> = self
            .ch
            .rows(&format!(
                "SELECT service, instance, hour, sum(samples) AS samples,
                        sum(cpu_sum) AS cpu_sum, max(cpu_max) AS cpu_max,
                        sum(memory_sum) AS memory_sum, max(memory_max) AS memory_max,
                        sum(disk_sum) AS disk_sum, max(disk_max) AS disk_max,
                        argMax(cpu_count, seq) AS cpu_count,
                        argMax(memory_total_mb, seq) AS memory_total_mb,
                        argMax(disk_total_gb, seq) AS disk_total_gb
                 FROM resource_hours WHERE hour >= {from} AND hour < {to}
                 GROUP BY service, instance, hour"
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ResourceHour {
                service: r.service,
                instance: r.instance,
                hour: r.hour,
                samples: r.samples,
                cpu_sum: r.cpu_sum,
                cpu_max: r.cpu_max,
                memory_sum: r.memory_sum,
                memory_max: r.memory_max,
                disk_sum: r.disk_sum,
                disk_max: r.disk_max,
                cpu_count: r.cpu_count,
                memory_total_mb: r.memory_total_mb,
                disk_total_gb: r.disk_total_gb,
            })
            .collect())
    }

    async fn purge_resource_hours(&self, before: i64) -> Result<u64, StoreError> {
        let filter = format!("hour < {before}");
        let count = format!(
            "SELECT count() FROM (SELECT DISTINCT service, instance, hour FROM resource_hours
             WHERE {filter})"
        );
        delete_counted(&self.ch, "resource_hours", &count, &filter).await
    }

    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<RouteRow> = cells::distinct::<RequestCells, _>(
            &self.ch,
            "service, route",
            "resolution = 1 AND method != ''",
        )
        .await?;
        Ok(rows.into_iter().map(|r| (r.service, r.route)).collect())
    }

    fn metrics_backend(&self) -> &'static str {
        "clickhouse"
    }

    async fn close_metrics(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
