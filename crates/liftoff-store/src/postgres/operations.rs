//! Operations on PostgreSQL.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use liftoff_core::monitoring::operations::cap::{cap_errors, error_slots};
use liftoff_core::monitoring::operations::{
    OpCell, OpKey, OperationError, OperationWrite, roll_up,
};
use liftoff_core::monitoring::operations::{OperationStore, OperationUserCounts};
use liftoff_core::store::StoreError;
use tokio_postgres::Row;

use super::{PgState, pg_err};
use crate::codec::{corrupt, map_from_value, map_value, resolution, sketch_from};

const CELL_COLUMNS: &str = "service, operation, bucket, count, failures, cache_hits, cache_known, layers, error_types, sketch";

fn cell(r: &Row) -> Result<(OpKey, OpCell), StoreError> {
    let sketch: Vec<u8> = r.get(9);
    Ok((
        OpKey {
            service: r.get(0),
            operation: r.get(1),
            minute: r.get(2),
        },
        OpCell {
            count: r.get::<_, i64>(3) as u64,
            failures: r.get::<_, i64>(4) as u64,
            cache_hits: r.get::<_, i64>(5) as u64,
            cache_known: r.get::<_, i64>(6) as u64,
            layers: map_from_value(r.get(7))?,
            error_types: map_from_value(r.get(8))?,
            sketch: sketch_from(&sketch)?,
        },
    ))
}

async fn upsert_cell(
    tx: &Transaction<'_>,
    res: i32,
    k: &OpKey,
    mut c: OpCell,
) -> Result<(), StoreError> {
    // The row lock serialises replicas merging into the same cell.
    let stored = tx
        .query_opt(
            &format!(
                "SELECT {CELL_COLUMNS} FROM operation_cells
                 WHERE resolution = $1 AND service = $2 AND operation = $3 AND bucket = $4 FOR UPDATE"
            ),
            &[&res, &k.service, &k.operation, &k.minute],
        )
        .await
        .map_err(pg_err)?;
    if let Some(row) = stored {
        let (_, old) = cell(&row)?;
        c.merge(&old).map_err(corrupt)?;
    }
    tx.execute(
        "INSERT INTO operation_cells (resolution, service, operation, bucket, count, failures,
             cache_hits, cache_known, layers, error_types, sketch)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (resolution, service, operation, bucket) DO UPDATE SET
             count = excluded.count, failures = excluded.failures, cache_hits = excluded.cache_hits,
             cache_known = excluded.cache_known, layers = excluded.layers,
             error_types = excluded.error_types, sketch = excluded.sketch",
        &[
            &res,
            &k.service,
            &k.operation,
            &k.minute,
            &(c.count as i64),
            &(c.failures as i64),
            &(c.cache_hits as i64),
            &(c.cache_known as i64),
            &map_value(&c.layers),
            &map_value(&c.error_types),
            &c.sketch.to_bytes(),
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

#[async_trait]
impl OperationStore for PgState {
    async fn write_operations(&self, write: &OperationWrite) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (k, c) in &write.cells {
            upsert_cell(&tx, 1, k, c.clone()).await?;
        }
        let mut stored = BTreeMap::new();
        for s in error_slots(&write.errors) {
            let n: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM operation_errors
                     WHERE service = $1 AND operation = $2 AND error_type = $3 AND minute = $4",
                    &[&s.service, &s.operation, &s.error_type, &s.minute],
                )
                .await
                .map_err(pg_err)?
                .get(0);
            stored.insert(s, n as u64);
        }
        let (kept, dropped) = cap_errors(&write.errors, &stored);
        for (e, minute) in kept {
            tx.execute(
                "INSERT INTO operation_errors (service, operation, error_type, minute, at, error,
                     stack_trace, context, user_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &e.service,
                    &e.operation,
                    &e.error_type,
                    &minute,
                    &e.at,
                    &e.error,
                    &e.stack_trace,
                    &e.context,
                    &e.user_id,
                ],
            )
            .await
            .map_err(pg_err)?;
        }
        for u in &write.users {
            tx.execute(
                "INSERT INTO operation_users (service, operation, hour, user_hash, ok)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (service, operation, hour, user_hash)
                 DO UPDATE SET ok = operation_users.ok OR excluded.ok",
                &[&u.service, &u.operation, &u.hour, &u.user_hash, &u.ok],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(dropped)
    }

    async fn operation_cells(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(OpKey, OpCell)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CELL_COLUMNS} FROM operation_cells WHERE bucket >= $1 AND bucket < $2"
                ),
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(cell).collect()
    }

    async fn operation_errors(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OperationError>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT service, operation, error_type, error, stack_trace, context, user_id, at
                 FROM operation_errors
                 WHERE at >= $1 AND at < $2 AND ($3::TEXT IS NULL OR operation = $3)
                 ORDER BY at DESC, id DESC LIMIT $4",
                &[&from, &to, &operation, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| OperationError {
                service: r.get(0),
                operation: r.get(1),
                error_type: r.get(2),
                error: r.get(3),
                stack_trace: r.get(4),
                context: r.get(5),
                user_id: r.get(6),
                at: r.get(7),
            })
            .collect())
    }

    async fn operation_users(
        &self,
        from: i64,
        to: i64,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT operation, COUNT(DISTINCT user_hash),
                        COUNT(DISTINCT CASE WHEN ok THEN user_hash END)
                 FROM operation_users
                 WHERE hour >= $1 AND hour < $2 AND ($3::TEXT IS NULL OR service = $3)
                 GROUP BY operation",
                &[&from, &to, &service],
            )
            .await
            .map_err(pg_err)?;
        let total: i64 = client
            .query_one(
                "SELECT COUNT(DISTINCT user_hash) FROM operation_users
                 WHERE hour >= $1 AND hour < $2 AND ($3::TEXT IS NULL OR service = $3)",
                &[&from, &to, &service],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(OperationUserCounts {
            per_operation: rows
                .into_iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        (r.get::<_, i64>(1) as u64, r.get::<_, i64>(2) as u64),
                    )
                })
                .collect(),
            total: total as u64,
        })
    }

    async fn compact_operations(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let (from32, to32) = (resolution(from_res)?, resolution(to_res)?);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // FOR UPDATE SKIP LOCKED: two replicas compacting at once take different rows.
        let rows = tx
            .query(
                &format!(
                    "SELECT {CELL_COLUMNS} FROM operation_cells
                     WHERE resolution = $1 AND bucket < $2 LIMIT $3 FOR UPDATE SKIP LOCKED"
                ),
                &[&from32, &before, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        let cells = rows.iter().map(cell).collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<OpKey> = cells.iter().map(|(k, _)| k.clone()).collect();
        let groups = roll_up(cells, to_res).map_err(corrupt)?;
        for (k, c) in groups {
            upsert_cell(&tx, to32, &k, c).await?;
        }
        for k in &keys {
            tx.execute(
                "DELETE FROM operation_cells
                 WHERE resolution = $1 AND service = $2 AND operation = $3 AND bucket = $4",
                &[&from32, &k.service, &k.operation, &k.minute],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(keys.len() as u64)
    }

    async fn purge_operations(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        let res = resolution(res)?;
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM operation_cells WHERE resolution = $1 AND bucket < $2",
                &[&res, &before],
            )
            .await
            .map_err(pg_err)
    }

    async fn purge_operation_details(
        &self,
        errors_before: DateTime<Utc>,
        users_before: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let e = client
            .execute(
                "DELETE FROM operation_errors WHERE at < $1",
                &[&errors_before],
            )
            .await
            .map_err(pg_err)?;
        let u = client
            .execute(
                "DELETE FROM operation_users WHERE hour < $1",
                &[&users_before],
            )
            .await
            .map_err(pg_err)?;
        Ok(e + u)
    }

    async fn operation_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT service, operation FROM operation_cells",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
