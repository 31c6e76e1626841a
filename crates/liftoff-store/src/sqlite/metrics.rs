//! Request metrics on SQLite, in `metrics.db`.

use std::path::Path;

use async_trait::async_trait;
use liftoff_core::monitoring::requests::{CellKey, roll_up};
use liftoff_core::monitoring::resources::ResourceHour;
use liftoff_core::monitoring::variants::{VariantCell, VariantKey};
use liftoff_core::monitoring::{MetricsStore, RequestCell, SeenEndpoint};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, sql_err};
use crate::codec::{corrupt, merged_with_stored, sketch_from};
use crate::migrations;

#[derive(Clone)]
pub struct SqliteMetrics {
    pub(super) db: Db,
}

impl SqliteMetrics {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: Db::open(path, migrations::SQLITE_METRICS).await?,
        })
    }
}

impl SqliteMetrics {
    /// Runs a cell query with `?1 = from`, `?2 = to` and decodes the sketches.
    async fn cells(
        &self,
        sql: &'static str,
        from: i64,
        to: i64,
    ) -> Result<Vec<RequestCell>, StoreError> {
        let rows: Vec<(CellKey, Vec<u8>)> = self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![from, to], |r| {
                        Ok((
                            CellKey {
                                service: r.get(0)?,
                                method: r.get(1)?,
                                route: r.get(2)?,
                                status: r.get(3)?,
                                minute: r.get(4)?,
                            },
                            r.get(5)?,
                        ))
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter()
            .map(|(k, b)| sketch_from(&b).map(|s| (k, s)))
            .collect()
    }
}

const RESOURCE_HOUR_COLUMNS: &str = "service, instance, hour, samples, cpu_sum, cpu_max, \
     memory_sum, memory_max, disk_sum, disk_max, cpu_count, memory_total_mb, disk_total_gb";

/// Sums add, peaks keep the higher, capacity takes the later reading.
const RESOURCE_HOUR_UPSERT: &str = "INSERT INTO resource_hours (service, instance, hour, samples,
         cpu_sum, cpu_max, memory_sum, memory_max, disk_sum, disk_max, cpu_count,
         memory_total_mb, disk_total_gb)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
     ON CONFLICT (service, instance, hour) DO UPDATE SET
         samples = samples + excluded.samples,
         cpu_sum = cpu_sum + excluded.cpu_sum, cpu_max = max(cpu_max, excluded.cpu_max),
         memory_sum = memory_sum + excluded.memory_sum,
         memory_max = max(memory_max, excluded.memory_max),
         disk_sum = disk_sum + excluded.disk_sum, disk_max = max(disk_max, excluded.disk_max),
         cpu_count = excluded.cpu_count, memory_total_mb = excluded.memory_total_mb,
         disk_total_gb = excluded.disk_total_gb";

#[async_trait]
impl MetricsStore for SqliteMetrics {
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError> {
        let cells = cells.to_vec();
        self.db
            .write(move |tx| {
                let mut find = tx
                    .prepare_cached(
                        "SELECT sketch FROM request_minutes
                         WHERE service = ?1 AND method = ?2 AND route = ?3 AND status = ?4 AND minute = ?5",
                    )
                    .map_err(sql_err)?;
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO request_minutes (service, method, route, status, minute, count, sketch)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (service, method, route, status, minute)
                         DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
                    )
                    .map_err(sql_err)?;
                let mut series = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO request_series (service, method, route, status)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sql_err)?;
                for (k, sketch) in cells {
                    if !k.method.is_empty() {
                        series
                            .execute(params![k.service, k.method, k.route, k.status])
                            .map_err(sql_err)?;
                    }
                    let stored: Option<Vec<u8>> = find
                        .query_row(params![k.service, k.method, k.route, k.status, k.minute], |r| r.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    let merged = merged_with_stored(sketch, stored.as_deref())?;
                    upsert
                        .execute(params![k.service, k.method, k.route, k.status, k.minute, merged.count() as i64, merged.to_bytes()])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        self.cells(
            "SELECT service, method, route, status, minute, sketch FROM request_minutes
             WHERE minute >= ?1 AND minute < ?2 AND method <> ''
             UNION ALL
             SELECT service, method, route, status, bucket, sketch FROM request_rollups
             WHERE resolution IN (60, 1440) AND bucket >= ?1 AND bucket < ?2 AND method <> ''",
            from,
            to,
        )
        .await
    }

    async fn request_totals(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        // `method = ''` literally, so SQLite picks the partial indexes over totals rows.
        self.cells(
            "SELECT service, method, route, status, minute, sketch FROM request_minutes
             WHERE minute >= ?1 AND minute < ?2 AND method = ''
             UNION ALL
             SELECT service, method, route, status, bucket, sketch FROM request_rollups
             WHERE bucket >= ?1 AND bucket < ?2 AND method = ''",
            from,
            to,
        )
        .await
    }

    async fn request_endpoints(&self, from: i64, to: i64) -> Result<Vec<SeenEndpoint>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT s.service, s.method, s.route, MAX(s.status >= 500) FROM request_series s
                         WHERE EXISTS (
                             SELECT 1 FROM request_minutes m
                             WHERE m.service = s.service AND m.method = s.method AND m.route = s.route
                               AND m.status = s.status AND m.minute >= ?1 AND m.minute < ?2)
                            OR EXISTS (
                             SELECT 1 FROM request_rollups r
                             WHERE r.resolution IN (60, 1440) AND r.service = s.service
                               AND r.method = s.method AND r.route = s.route AND r.status = s.status
                               AND r.bucket >= ?1 AND r.bucket < ?2)
                         GROUP BY s.service, s.method, s.route",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![from, to], |r| {
                        Ok(SeenEndpoint {
                            service: r.get(0)?,
                            method: r.get(1)?,
                            route: r.get(2)?,
                            failed: r.get(3)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn compact_requests(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                let select = if from_res == 1 {
                    "SELECT service, method, route, status, minute, sketch FROM request_minutes WHERE minute < ?2 AND ?1 = 1 LIMIT ?3"
                } else {
                    "SELECT service, method, route, status, bucket, sketch FROM request_rollups WHERE resolution = ?1 AND bucket < ?2 LIMIT ?3"
                };
                let rows: Vec<(CellKey, Vec<u8>)> = {
                    let mut stmt = tx.prepare_cached(select).map_err(sql_err)?;
                    let rows = stmt
                        .query_map(params![from_res, before, limit as i64], |r| {
                            Ok((
                                CellKey { service: r.get(0)?, method: r.get(1)?, route: r.get(2)?, status: r.get(3)?, minute: r.get(4)? },
                                r.get(5)?,
                            ))
                        })
                        .map_err(sql_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)?
                };
                let cells = rows
                    .iter()
                    .map(|(k, b)| sketch_from(b).map(|s| (k.clone(), s)))
                    .collect::<Result<Vec<_>, _>>()?;
                let groups = roll_up(cells, to_res).map_err(corrupt)?;
                let mut find = tx
                    .prepare_cached(
                        "SELECT sketch FROM request_rollups WHERE resolution = ?1 AND service = ?2 AND method = ?3
                         AND route = ?4 AND status = ?5 AND bucket = ?6",
                    )
                    .map_err(sql_err)?;
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO request_rollups (resolution, service, method, route, status, bucket, count, sketch)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (resolution, service, method, route, status, bucket)
                         DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
                    )
                    .map_err(sql_err)?;
                for (k, s) in groups {
                    let stored: Option<Vec<u8>> = find
                        .query_row(params![to_res, k.service, k.method, k.route, k.status, k.minute], |r| r.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    let s = merged_with_stored(s, stored.as_deref())?;
                    upsert
                        .execute(params![to_res, k.service, k.method, k.route, k.status, k.minute, s.count() as i64, s.to_bytes()])
                        .map_err(sql_err)?;
                }
                let delete = if from_res == 1 {
                    "DELETE FROM request_minutes WHERE ?1 = 1 AND service = ?2 AND method = ?3 AND route = ?4 AND status = ?5 AND minute = ?6"
                } else {
                    "DELETE FROM request_rollups WHERE resolution = ?1 AND service = ?2 AND method = ?3 AND route = ?4 AND status = ?5 AND bucket = ?6"
                };
                let mut del = tx.prepare_cached(delete).map_err(sql_err)?;
                for (k, _) in &rows {
                    del.execute(params![from_res, k.service, k.method, k.route, k.status, k.minute]).map_err(sql_err)?;
                }
                Ok(rows.len() as u64)
            })
            .await
    }

    async fn merge_variant_minutes(&self, cells: &[VariantCell]) -> Result<(), StoreError> {
        let cells = cells.to_vec();
        self.db
            .write(move |tx| {
                let mut find = tx
                    .prepare_cached(
                        "SELECT sketch FROM variant_minutes
                         WHERE flag = ?1 AND minute = ?2 AND variant = ?3 AND failed = ?4",
                    )
                    .map_err(sql_err)?;
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO variant_minutes (flag, minute, variant, failed, sketch)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (flag, minute, variant, failed) DO UPDATE SET sketch = excluded.sketch",
                    )
                    .map_err(sql_err)?;
                for (k, sketch) in cells {
                    let stored: Option<Vec<u8>> = find
                        .query_row(params![k.flag, k.minute, k.variant, k.failed], |r| r.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    let merged = merged_with_stored(sketch, stored.as_deref())?;
                    upsert
                        .execute(params![k.flag, k.minute, k.variant, k.failed, merged.to_bytes()])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn variant_minutes(
        &self,
        flag: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<VariantCell>, StoreError> {
        let flag = flag.to_owned();
        let rows: Vec<(VariantKey, Vec<u8>)> = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT flag, minute, variant, failed, sketch FROM variant_minutes
                         WHERE flag = ?1 AND minute >= ?2 AND minute < ?3",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![flag, from, to], |r| {
                        Ok((
                            VariantKey {
                                flag: r.get(0)?,
                                minute: r.get(1)?,
                                variant: r.get(2)?,
                                failed: r.get(3)?,
                            },
                            r.get(4)?,
                        ))
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter()
            .map(|(k, b)| sketch_from(&b).map(|s| (k, s)))
            .collect()
    }

    async fn purge_requests(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                if res == 1 {
                    tx.execute("DELETE FROM variant_minutes WHERE minute < ?1", [before])
                        .map_err(sql_err)?;
                }
                let n = if res == 1 {
                    tx.execute("DELETE FROM request_minutes WHERE minute < ?1", [before])
                } else {
                    tx.execute(
                        "DELETE FROM request_rollups WHERE resolution = ?1 AND bucket < ?2",
                        [res, before],
                    )
                }
                .map_err(sql_err)?;
                // Series whose last cell just went stop being listed.
                tx.execute(
                    "DELETE FROM request_series AS s
                     WHERE NOT EXISTS (SELECT 1 FROM request_minutes m WHERE m.service = s.service
                         AND m.method = s.method AND m.route = s.route AND m.status = s.status)
                       AND NOT EXISTS (SELECT 1 FROM request_rollups r WHERE r.resolution IN (60, 1440)
                         AND r.service = s.service AND r.method = s.method AND r.route = s.route
                         AND r.status = s.status)",
                    [],
                )
                .map_err(sql_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn merge_resource_hours(&self, hours: &[ResourceHour]) -> Result<(), StoreError> {
        let hours = hours.to_vec();
        self.db
            .write(move |tx| {
                let mut upsert = tx.prepare_cached(RESOURCE_HOUR_UPSERT).map_err(sql_err)?;
                for h in hours {
                    let samples = i64::try_from(h.samples)
                        .map_err(|_| StoreError::Corrupt("sample count out of range".into()))?;
                    upsert
                        .execute(params![
                            h.service,
                            h.instance,
                            h.hour,
                            samples,
                            h.cpu_sum,
                            h.cpu_max,
                            h.memory_sum,
                            h.memory_max,
                            h.disk_sum,
                            h.disk_max,
                            h.cpu_count,
                            h.memory_total_mb,
                            h.disk_total_gb
                        ])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn resource_hours(&self, from: i64, to: i64) -> Result<Vec<ResourceHour>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {RESOURCE_HOUR_COLUMNS} FROM resource_hours
                         WHERE hour >= ?1 AND hour < ?2"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![from, to], |r| {
                        Ok(ResourceHour {
                            service: r.get(0)?,
                            instance: r.get(1)?,
                            hour: r.get(2)?,
                            samples: r.get::<_, i64>(3)?.max(0) as u64,
                            cpu_sum: r.get(4)?,
                            cpu_max: r.get(5)?,
                            memory_sum: r.get(6)?,
                            memory_max: r.get(7)?,
                            disk_sum: r.get(8)?,
                            disk_max: r.get(9)?,
                            cpu_count: r.get(10)?,
                            memory_total_mb: r.get(11)?,
                            disk_total_gb: r.get(12)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn purge_resource_hours(&self, before: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM resource_hours WHERE hour < ?1", [before])
                    .map(|n| n as u64)
                    .map_err(sql_err)
            })
            .await
    }

    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT DISTINCT service, route FROM request_minutes WHERE method <> ''",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn close_metrics(&self) -> Result<(), StoreError> {
        self.db.checkpoint().await
    }

    fn metrics_backend(&self) -> &'static str {
        "sqlite"
    }
}
