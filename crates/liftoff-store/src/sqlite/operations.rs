//! Operations on SQLite, in `metrics.db` beside the request metrics.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::monitoring::operations::cap::{cap_errors, error_slots};
use liftoff_core::monitoring::operations::{
    OpCell, OpKey, OperationError, OperationWrite, map_from_json, map_to_json, roll_up,
};
use liftoff_core::monitoring::operations::{OperationStore, OperationUserCounts};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, Row, params};

use super::db::sql_err;
use super::metrics::SqliteMetrics;
use super::{json_text, json_value, time};
use crate::codec::{corrupt, ms, sketch_from};

const CELL_COLUMNS: &str = "service, operation, bucket, count, failures, cache_hits, cache_known, layers, error_types, sketch";

type RawCell = (OpKey, [i64; 4], String, String, Vec<u8>);

fn raw_cell(r: &Row<'_>) -> Result<RawCell, rusqlite::Error> {
    Ok((
        OpKey {
            service: r.get(0)?,
            operation: r.get(1)?,
            minute: r.get(2)?,
        },
        [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn cell((k, n, layers, types, sketch): RawCell) -> Result<(OpKey, OpCell), StoreError> {
    Ok((
        k,
        OpCell {
            count: n[0] as u64,
            failures: n[1] as u64,
            cache_hits: n[2] as u64,
            cache_known: n[3] as u64,
            layers: map_from_json(&layers).map_err(StoreError::Corrupt)?,
            error_types: map_from_json(&types).map_err(StoreError::Corrupt)?,
            sketch: sketch_from(&sketch)?,
        },
    ))
}

/// Merges `c` into the stored cell of `res` (if any) and writes it.
fn upsert_cell(
    tx: &rusqlite::Transaction<'_>,
    res: i64,
    k: &OpKey,
    mut c: OpCell,
) -> Result<(), StoreError> {
    let stored: Option<RawCell> = tx
        .prepare_cached(&format!(
            "SELECT {CELL_COLUMNS} FROM operation_cells
             WHERE resolution = ?1 AND service = ?2 AND operation = ?3 AND bucket = ?4"
        ))
        .map_err(sql_err)?
        .query_row(params![res, k.service, k.operation, k.minute], raw_cell)
        .optional()
        .map_err(sql_err)?;
    if let Some(raw) = stored {
        let (_, old) = cell(raw)?;
        c.merge(&old).map_err(corrupt)?;
    }
    tx.prepare_cached(
        "INSERT INTO operation_cells (resolution, service, operation, bucket, count, failures,
             cache_hits, cache_known, layers, error_types, sketch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (resolution, service, operation, bucket) DO UPDATE SET
             count = excluded.count, failures = excluded.failures, cache_hits = excluded.cache_hits,
             cache_known = excluded.cache_known, layers = excluded.layers,
             error_types = excluded.error_types, sketch = excluded.sketch",
    )
    .map_err(sql_err)?
    .execute(params![
        res,
        k.service,
        k.operation,
        k.minute,
        c.count as i64,
        c.failures as i64,
        c.cache_hits as i64,
        c.cache_known as i64,
        map_to_json(&c.layers),
        map_to_json(&c.error_types),
        c.sketch.to_bytes()
    ])
    .map_err(sql_err)?;
    Ok(())
}

#[async_trait]
impl OperationStore for SqliteMetrics {
    async fn write_operations(&self, write: &OperationWrite) -> Result<u64, StoreError> {
        let write = write.clone();
        self.db
            .write(move |tx| {
                for (k, c) in write.cells {
                    upsert_cell(tx, 1, &k, c)?;
                }
                let mut count = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM operation_errors
                         WHERE service = ?1 AND operation = ?2 AND error_type = ?3 AND minute = ?4",
                    )
                    .map_err(sql_err)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO operation_errors (service, operation, error_type, minute, at,
                             error, stack_trace, context, user_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(sql_err)?;
                let mut stored = BTreeMap::new();
                for s in error_slots(&write.errors) {
                    let n: i64 = count
                        .query_row(
                            params![s.service, s.operation, s.error_type, s.minute],
                            |r| r.get(0),
                        )
                        .map_err(sql_err)?;
                    stored.insert(s, n as u64);
                }
                let (kept, dropped) = cap_errors(&write.errors, &stored);
                for (e, minute) in kept {
                    insert
                        .execute(params![
                            e.service,
                            e.operation,
                            e.error_type,
                            minute,
                            ms(e.at),
                            e.error,
                            e.stack_trace,
                            json_text(&e.context),
                            e.user_id
                        ])
                        .map_err(sql_err)?;
                }
                let mut user = tx
                    .prepare_cached(
                        "INSERT INTO operation_users (service, operation, hour, user_hash, ok)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (service, operation, hour, user_hash)
                         DO UPDATE SET ok = max(ok, excluded.ok)",
                    )
                    .map_err(sql_err)?;
                for u in write.users {
                    user.execute(params![u.service, u.operation, u.hour, u.user_hash, u.ok])
                        .map_err(sql_err)?;
                }
                Ok(dropped)
            })
            .await
    }

    async fn operation_cells(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(OpKey, OpCell)>, StoreError> {
        let rows = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {CELL_COLUMNS} FROM operation_cells WHERE bucket >= ?1 AND bucket < ?2"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt.query_map(params![from, to], raw_cell).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter().map(cell).collect()
    }

    async fn operation_errors(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OperationError>, StoreError> {
        let operation = operation.map(str::to_owned);
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT service, operation, error_type, error, stack_trace, context, user_id, at
                         FROM operation_errors
                         WHERE at >= ?1 AND at < ?2 AND (?3 IS NULL OR operation = ?3)
                         ORDER BY at DESC, id DESC LIMIT ?4",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![ms(from), ms(to), operation, limit as i64], |r| {
                        Ok(OperationError {
                            service: r.get(0)?,
                            operation: r.get(1)?,
                            error_type: r.get(2)?,
                            error: r.get(3)?,
                            stack_trace: r.get(4)?,
                            context: json_value(r.get(5)?)?,
                            user_id: r.get(6)?,
                            at: time(r.get(7)?)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn operation_users(
        &self,
        from: i64,
        to: i64,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError> {
        let service = service.map(str::to_owned);
        self.db
            .read(move |c| {
                let mut per = c
                    .prepare_cached(
                        "SELECT operation, COUNT(DISTINCT user_hash),
                                COUNT(DISTINCT CASE WHEN ok THEN user_hash END)
                         FROM operation_users
                         WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR service = ?3)
                         GROUP BY operation",
                    )
                    .map_err(sql_err)?;
                let per_operation = per
                    .query_map(params![from, to, service], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
                        ))
                    })
                    .map_err(sql_err)?
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .map_err(sql_err)?;
                let total: i64 = c
                    .prepare_cached(
                        "SELECT COUNT(DISTINCT user_hash) FROM operation_users
                         WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR service = ?3)",
                    )
                    .map_err(sql_err)?
                    .query_row(params![from, to, service], |r| r.get(0))
                    .map_err(sql_err)?;
                Ok(OperationUserCounts {
                    per_operation,
                    total: total as u64,
                })
            })
            .await
    }

    async fn compact_operations(
        &self,
        from_res: i64,
        to_res: i64,
        before: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                let rows: Vec<RawCell> = {
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "SELECT {CELL_COLUMNS} FROM operation_cells
                             WHERE resolution = ?1 AND bucket < ?2 LIMIT ?3"
                        ))
                        .map_err(sql_err)?;
                    let rows = stmt
                        .query_map(params![from_res, before, limit as i64], raw_cell)
                        .map_err(sql_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)?
                };
                let keys: Vec<OpKey> = rows.iter().map(|r| r.0.clone()).collect();
                let cells = rows.into_iter().map(cell).collect::<Result<Vec<_>, _>>()?;
                let groups = roll_up(cells, to_res).map_err(corrupt)?;
                for (k, c) in groups {
                    upsert_cell(tx, to_res, &k, c)?;
                }
                let mut del = tx
                    .prepare_cached(
                        "DELETE FROM operation_cells
                         WHERE resolution = ?1 AND service = ?2 AND operation = ?3 AND bucket = ?4",
                    )
                    .map_err(sql_err)?;
                for k in &keys {
                    del.execute(params![from_res, k.service, k.operation, k.minute])
                        .map_err(sql_err)?;
                }
                Ok(keys.len() as u64)
            })
            .await
    }

    async fn purge_operations(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM operation_cells WHERE resolution = ?1 AND bucket < ?2",
                    [res, before],
                )
                .map(|n| n as u64)
                .map_err(sql_err)
            })
            .await
    }

    async fn purge_operation_details(
        &self,
        errors_before: DateTime<Utc>,
        users_before: i64,
    ) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                let e = tx
                    .execute(
                        "DELETE FROM operation_errors WHERE at < ?1",
                        [ms(errors_before)],
                    )
                    .map_err(sql_err)?;
                let u = tx
                    .execute(
                        "DELETE FROM operation_users WHERE hour < ?1",
                        [users_before],
                    )
                    .map_err(sql_err)?;
                Ok((e + u) as u64)
            })
            .await
    }

    async fn operation_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached("SELECT DISTINCT service, operation FROM operation_cells")
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }
}
