//! Request metrics on PostgreSQL.

use async_trait::async_trait;
use liftoff_core::monitoring::requests::{CellKey, roll_up};
use liftoff_core::monitoring::resources::ResourceHour;
use liftoff_core::monitoring::variants::{VariantCell, VariantKey};
use liftoff_core::monitoring::{MetricsStore, RequestCell, SeenEndpoint};
use liftoff_core::store::StoreError;

use super::{PgState, pg_err};
use crate::codec::{corrupt, merged_with_stored, resolution, sketch_from};

impl PgState {
    /// Runs a cell query with `$1 = from`, `$2 = to` and decodes the sketches.
    async fn cells(&self, sql: &str, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(sql, &[&from, &to]).await.map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                let status: i16 = r.get(3);
                let bytes: Vec<u8> = r.get(5);
                Ok((
                    CellKey {
                        service: r.get(0),
                        method: r.get(1),
                        route: r.get(2),
                        status: status as u16,
                        minute: r.get(4),
                    },
                    sketch_from(&bytes)?,
                ))
            })
            .collect()
    }
}

/// Sums add, peaks keep the higher, capacity takes the later reading.
const RESOURCE_HOUR_UPSERT: &str = "INSERT INTO resource_hours AS h (service, instance, hour,
         samples, cpu_sum, cpu_max, memory_sum, memory_max, disk_sum, disk_max, cpu_count,
         memory_total_mb, disk_total_gb)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (service, instance, hour) DO UPDATE SET
         samples = h.samples + excluded.samples,
         cpu_sum = h.cpu_sum + excluded.cpu_sum, cpu_max = GREATEST(h.cpu_max, excluded.cpu_max),
         memory_sum = h.memory_sum + excluded.memory_sum,
         memory_max = GREATEST(h.memory_max, excluded.memory_max),
         disk_sum = h.disk_sum + excluded.disk_sum,
         disk_max = GREATEST(h.disk_max, excluded.disk_max),
         cpu_count = excluded.cpu_count, memory_total_mb = excluded.memory_total_mb,
         disk_total_gb = excluded.disk_total_gb";

#[async_trait]
impl MetricsStore for PgState {
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (k, sketch) in cells {
            let status = i16::try_from(k.status)
                .map_err(|_| StoreError::Corrupt("status out of range".into()))?;
            if !k.method.is_empty() {
                tx.execute(
                    "INSERT INTO request_series (service, method, route, status)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&k.service, &k.method, &k.route, &status],
                )
                .await
                .map_err(pg_err)?;
            }
            // The row lock serialises replicas merging into the same minute.
            let stored = tx
                .query_opt(
                    "SELECT sketch FROM request_minutes
                     WHERE service = $1 AND method = $2 AND route = $3 AND status = $4 AND minute = $5 FOR UPDATE",
                    &[&k.service, &k.method, &k.route, &status, &k.minute],
                )
                .await
                .map_err(pg_err)?;
            let stored: Option<Vec<u8>> = stored.map(|row| row.get(0));
            let merged = merged_with_stored(sketch.clone(), stored.as_deref())?;
            tx.execute(
                "INSERT INTO request_minutes (service, method, route, status, minute, count, sketch)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (service, method, route, status, minute)
                 DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
                &[&k.service, &k.method, &k.route, &status, &k.minute, &(merged.count() as i64), &merged.to_bytes()],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        self.cells(
            "SELECT service, method, route, status, minute, sketch FROM request_minutes
             WHERE minute >= $1 AND minute < $2 AND method <> ''
             UNION ALL
             SELECT service, method, route, status, bucket, sketch FROM request_rollups
             WHERE resolution IN (60, 1440) AND bucket >= $1 AND bucket < $2 AND method <> ''",
            from,
            to,
        )
        .await
    }

    async fn request_totals(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        self.cells(
            "SELECT service, method, route, status, minute, sketch FROM request_minutes
             WHERE minute >= $1 AND minute < $2 AND method = ''
             UNION ALL
             SELECT service, method, route, status, bucket, sketch FROM request_rollups
             WHERE bucket >= $1 AND bucket < $2 AND method = ''",
            from,
            to,
        )
        .await
    }

    async fn request_endpoints(&self, from: i64, to: i64) -> Result<Vec<SeenEndpoint>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.service, s.method, s.route, bool_or(s.status >= 500) FROM request_series s
                 WHERE EXISTS (
                     SELECT 1 FROM request_minutes m
                     WHERE m.service = s.service AND m.method = s.method AND m.route = s.route
                       AND m.status = s.status AND m.minute >= $1 AND m.minute < $2)
                    OR EXISTS (
                     SELECT 1 FROM request_rollups r
                     WHERE r.resolution IN (60, 1440) AND r.service = s.service
                       AND r.method = s.method AND r.route = s.route AND r.status = s.status
                       AND r.bucket >= $1 AND r.bucket < $2)
                 GROUP BY s.service, s.method, s.route",
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| SeenEndpoint {
                service: r.get(0),
                method: r.get(1),
                route: r.get(2),
                failed: r.get(3),
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
        let (from_res_i32, to_res_i32) = (resolution(from_res)?, resolution(to_res)?);
        let limit = limit as i64;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // FOR UPDATE SKIP LOCKED: two replicas compacting at once take different rows.
        let rows = if from_res == 1 {
            tx.query(
                "SELECT service, method, route, status, minute, sketch FROM request_minutes
                 WHERE minute < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&before, &limit],
            )
            .await
        } else {
            tx.query(
                "SELECT service, method, route, status, bucket, sketch FROM request_rollups
                 WHERE resolution = $1 AND bucket < $2 LIMIT $3 FOR UPDATE SKIP LOCKED",
                &[&from_res_i32, &before, &limit],
            )
            .await
        }
        .map_err(pg_err)?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut moved = Vec::with_capacity(rows.len());
        for r in &rows {
            let status: i16 = r.get(3);
            let k = CellKey {
                service: r.get(0),
                method: r.get(1),
                route: r.get(2),
                status: status as u16,
                minute: r.get(4),
            };
            let bytes: Vec<u8> = r.get(5);
            moved.push((k.clone(), sketch_from(&bytes)?));
            keys.push((k, status));
        }
        let groups = roll_up(moved, to_res).map_err(corrupt)?;
        for (k, s) in groups {
            let status = k.status as i16;
            let stored = tx
                .query_opt(
                    "SELECT sketch FROM request_rollups WHERE resolution = $1 AND service = $2 AND method = $3
                     AND route = $4 AND status = $5 AND bucket = $6 FOR UPDATE",
                    &[&to_res_i32, &k.service, &k.method, &k.route, &status, &k.minute],
                )
                .await
                .map_err(pg_err)?;
            let stored: Option<Vec<u8>> = stored.map(|row| row.get(0));
            let s = merged_with_stored(s, stored.as_deref())?;
            tx.execute(
                "INSERT INTO request_rollups (resolution, service, method, route, status, bucket, count, sketch)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (resolution, service, method, route, status, bucket)
                 DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
                &[&to_res_i32, &k.service, &k.method, &k.route, &status, &k.minute, &(s.count() as i64), &s.to_bytes()],
            )
            .await
            .map_err(pg_err)?;
        }
        for (k, status) in &keys {
            if from_res == 1 {
                tx.execute(
                    "DELETE FROM request_minutes WHERE service = $1 AND method = $2 AND route = $3 AND status = $4 AND minute = $5",
                    &[&k.service, &k.method, &k.route, status, &k.minute],
                )
                .await
            } else {
                tx.execute(
                    "DELETE FROM request_rollups WHERE resolution = $1 AND service = $2 AND method = $3 AND route = $4
                     AND status = $5 AND bucket = $6",
                    &[&from_res_i32, &k.service, &k.method, &k.route, status, &k.minute],
                )
                .await
            }
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(keys.len() as u64)
    }

    async fn merge_variant_minutes(&self, cells: &[VariantCell]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (k, sketch) in cells {
            // The row lock serialises replicas merging into the same minute.
            let stored = tx
                .query_opt(
                    "SELECT sketch FROM variant_minutes
                     WHERE flag = $1 AND minute = $2 AND variant = $3 AND failed = $4 FOR UPDATE",
                    &[&k.flag, &k.minute, &k.variant, &k.failed],
                )
                .await
                .map_err(pg_err)?;
            let stored: Option<Vec<u8>> = stored.map(|row| row.get(0));
            let merged = merged_with_stored(sketch.clone(), stored.as_deref())?;
            tx.execute(
                "INSERT INTO variant_minutes (flag, minute, variant, failed, sketch)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (flag, minute, variant, failed) DO UPDATE SET sketch = excluded.sketch",
                &[&k.flag, &k.minute, &k.variant, &k.failed, &merged.to_bytes()],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn variant_minutes(
        &self,
        flag: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<VariantCell>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT flag, minute, variant, failed, sketch FROM variant_minutes
                 WHERE flag = $1 AND minute >= $2 AND minute < $3",
                &[&flag, &from, &to],
            )
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                let bytes: Vec<u8> = r.get(4);
                Ok((
                    VariantKey {
                        flag: r.get(0),
                        minute: r.get(1),
                        variant: r.get(2),
                        failed: r.get(3),
                    },
                    sketch_from(&bytes)?,
                ))
            })
            .collect()
    }

    async fn merge_resource_hours(&self, hours: &[ResourceHour]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let upsert = tx.prepare(RESOURCE_HOUR_UPSERT).await.map_err(pg_err)?;
        for h in hours {
            let samples = i64::try_from(h.samples)
                .map_err(|_| StoreError::Corrupt("sample count out of range".into()))?;
            tx.execute(
                &upsert,
                &[
                    &h.service,
                    &h.instance,
                    &h.hour,
                    &samples,
                    &h.cpu_sum,
                    &h.cpu_max,
                    &h.memory_sum,
                    &h.memory_max,
                    &h.disk_sum,
                    &h.disk_max,
                    &h.cpu_count,
                    &h.memory_total_mb,
                    &h.disk_total_gb,
                ],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn resource_hours(&self, from: i64, to: i64) -> Result<Vec<ResourceHour>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT service, instance, hour, samples, cpu_sum, cpu_max, memory_sum, memory_max,
                        disk_sum, disk_max, cpu_count, memory_total_mb, disk_total_gb
                 FROM resource_hours WHERE hour >= $1 AND hour < $2",
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| ResourceHour {
                service: r.get(0),
                instance: r.get(1),
                hour: r.get(2),
                samples: r.get::<_, i64>(3).max(0) as u64,
                cpu_sum: r.get(4),
                cpu_max: r.get(5),
                memory_sum: r.get(6),
                memory_max: r.get(7),
                disk_sum: r.get(8),
                disk_max: r.get(9),
                cpu_count: r.get(10),
                memory_total_mb: r.get(11),
                disk_total_gb: r.get(12),
            })
            .collect())
    }

    async fn purge_resource_hours(&self, before: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM resource_hours WHERE hour < $1", &[&before])
            .await
            .map_err(pg_err)
    }

    async fn purge_requests(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        if res == 1 {
            client
                .execute("DELETE FROM variant_minutes WHERE minute < $1", &[&before])
                .await
                .map_err(pg_err)?;
        }
        let n = if res == 1 {
            client
                .execute("DELETE FROM request_minutes WHERE minute < $1", &[&before])
                .await
        } else {
            let res = resolution(res)?;
            client
                .execute(
                    "DELETE FROM request_rollups WHERE resolution = $1 AND bucket < $2",
                    &[&res, &before],
                )
                .await
        }
        .map_err(pg_err)?;
        // Series whose last cell just went stop being listed.
        client
            .execute(
                "DELETE FROM request_series AS s
                 WHERE NOT EXISTS (SELECT 1 FROM request_minutes m WHERE m.service = s.service
                     AND m.method = s.method AND m.route = s.route AND m.status = s.status)
                   AND NOT EXISTS (SELECT 1 FROM request_rollups r WHERE r.resolution IN (60, 1440)
                     AND r.service = s.service AND r.method = s.method AND r.route = s.route
                     AND r.status = s.status)",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(n)
    }

    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT service, route FROM request_minutes WHERE method <> ''",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn close_metrics(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn metrics_backend(&self) -> &'static str {
        "postgres"
    }
}
