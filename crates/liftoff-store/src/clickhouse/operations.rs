//! Operations in ClickHouse: cells kept like request cells (see [`cells`](super::cells)),
//! capped error rows and per-hour user rows counted with `uniqExact`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::monitoring::operations::cap::{ErrorSlot, cap_errors, error_slots};
use liftoff_core::monitoring::operations::{
    OpCell, OpKey, OperationError, OperationStore, OperationUserCounts, OperationWrite,
};
use liftoff_core::store::StoreError;
use serde::{Deserialize, Serialize};

use super::cells::{self, CellKind, delete_counted, sketch_of, sketch_text};
use super::client::lit;
use super::metrics::ClickHouseMetrics;
use crate::codec::{corrupt, doc_from_text, doc_text};

pub(super) struct OperationCells;

/// An operation cell's row; `resolution` and `replaces` are written, not read.
#[derive(Serialize, Deserialize)]
pub(super) struct OperationRow {
    #[serde(default)]
    resolution: i64,
    service: String,
    operation: String,
    bucket: i64,
    count: u64,
    failures: u64,
    cache_hits: u64,
    cache_known: u64,
    layers: String,
    error_types: String,
    sketch: String,
    id: i64,
    #[serde(default)]
    replaces: Vec<i64>,
}

impl CellKind for OperationCells {
    const TABLE: &'static str = "operation_cells";
    const COLUMNS: &'static str = "service, operation, bucket, count, failures, cache_hits, \
         cache_known, layers, error_types, sketch, id";
    const KEY_COLUMNS: &'static str = "service, operation, bucket";
    type Key = OpKey;
    type Cell = OpCell;
    type Row = OperationRow;

    fn decode(r: OperationRow) -> Result<(OpKey, OpCell, i64), StoreError> {
        Ok((
            OpKey {
                minute: r.bucket,
                service: r.service,
                operation: r.operation,
            },
            OpCell {
                count: r.count,
                failures: r.failures,
                cache_hits: r.cache_hits,
                cache_known: r.cache_known,
                layers: doc_from_text(&r.layers, "layers")?,
                error_types: doc_from_text(&r.error_types, "error types")?,
                sketch: sketch_of(&r.sketch)?,
            },
            r.id,
        ))
    }

    fn encode(resolution: i64, k: &OpKey, c: &OpCell, id: i64, replaces: Vec<i64>) -> OperationRow {
        OperationRow {
            resolution,
            service: k.service.clone(),
            operation: k.operation.clone(),
            bucket: k.minute,
            count: c.count,
            failures: c.failures,
            cache_hits: c.cache_hits,
            cache_known: c.cache_known,
            // A map of names to counts always serializes.
            layers: doc_text(&c.layers).unwrap_or_default(),
            error_types: doc_text(&c.error_types).unwrap_or_default(),
            sketch: sketch_text(&c.sketch),
            id,
            replaces,
        }
    }

    fn merge(into: &mut OpCell, other: OpCell) -> Result<(), StoreError> {
        into.merge(&other).map_err(corrupt)
    }

    fn bucket(k: &OpKey) -> i64 {
        k.minute
    }

    fn with_bucket(k: &OpKey, minute: i64) -> OpKey {
        OpKey {
            minute,
            ..k.clone()
        }
    }
}

/// An error row; `at` in microseconds.
#[derive(Serialize, Deserialize)]
struct ErrorRow {
    service: String,
    operation: String,
    error_type: String,
    #[serde(default)]
    minute: i64,
    at: i64,
    error: Option<String>,
    stack_trace: Option<String>,
    context: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    seq: i64,
}

#[derive(Serialize)]
struct UserRow<'a> {
    service: &'a str,
    operation: &'a str,
    hour: i64,
    user_hash: i64,
    ok: u8,
}

#[derive(Deserialize)]
struct SlotCount {
    service: String,
    operation: String,
    error_type: String,
    minute: i64,
    n: u64,
}

#[derive(Deserialize)]
struct UsersRow {
    operation: String,
    users: u64,
    ok_users: u64,
}

#[derive(Deserialize)]
struct NameRow {
    service: String,
    operation: String,
}

fn micros(at: &DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn users_filter(from: i64, to: i64, service: Option<&str>) -> String {
    match service {
        Some(s) => format!("hour >= {from} AND hour < {to} AND service = {}", lit(s)),
        None => format!("hour >= {from} AND hour < {to}"),
    }
}

impl ClickHouseMetrics {
    /// The error rows stored per slot of `errors`.
    async fn stored_errors(
        &self,
        errors: &[OperationError],
    ) -> Result<BTreeMap<ErrorSlot, u64>, StoreError> {
        let slots = error_slots(errors);
        if slots.is_empty() {
            return Ok(BTreeMap::new());
        }
        let tuples = slots
            .iter()
            .map(|s| {
                format!(
                    "({}, {}, {}, {})",
                    lit(&s.service),
                    lit(&s.operation),
                    lit(&s.error_type),
                    s.minute
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<SlotCount> = self
            .ch
            .rows(&format!(
                "SELECT service, operation, error_type, minute, count() AS n FROM operation_errors
                 WHERE (service, operation, error_type, minute) IN ({tuples})
                 GROUP BY service, operation, error_type, minute"
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    ErrorSlot {
                        service: r.service,
                        operation: r.operation,
                        error_type: r.error_type,
                        minute: r.minute,
                    },
                    r.n,
                )
            })
            .collect())
    }
}

#[async_trait]
impl OperationStore for ClickHouseMetrics {
    /// Three inserts with no transaction around them, ordered so that a write failing part way
    /// and retried stores nothing twice: error rows first (a retry counts them under the cap),
    /// then users (counted distinct), cells last.
    async fn write_operations(&self, write: &OperationWrite) -> Result<u64, StoreError> {
        let stored = self.stored_errors(&write.errors).await?;
        let (kept, dropped) = cap_errors(&write.errors, &stored);
        let seqs = self.ids.take(kept.len());
        let rows = kept
            .into_iter()
            .zip(seqs)
            .map(|((e, minute), seq)| {
                Ok(ErrorRow {
                    service: e.service.clone(),
                    operation: e.operation.clone(),
                    error_type: e.error_type.clone(),
                    minute,
                    at: micros(&e.at),
                    error: e.error.clone(),
                    stack_trace: e.stack_trace.clone(),
                    context: e.context.as_ref().map(doc_text).transpose()?,
                    user_id: e.user_id.clone(),
                    seq,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.ch.insert("operation_errors", &rows).await?;
        let users: Vec<UserRow> = write
            .users
            .iter()
            .map(|u| UserRow {
                service: &u.service,
                operation: &u.operation,
                hour: u.hour,
                user_hash: u.user_hash,
                ok: u8::from(u.ok),
            })
            .collect();
        self.ch.insert("operation_users", &users).await?;
        cells::append::<OperationCells>(&self.ch, &self.ids, &write.cells).await?;
        Ok(dropped)
    }

    async fn operation_cells(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(OpKey, OpCell)>, StoreError> {
        cells::read::<OperationCells>(&self.ch, "1", from, to).await
    }

    async fn operation_errors(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OperationError>, StoreError> {
        let only = operation
            .map(|o| format!("AND operation = {}", lit(o)))
            .unwrap_or_default();
        let rows: Vec<ErrorRow> = self
            .ch
            .rows(&format!(
                "SELECT service, operation, error_type, at, error, stack_trace, context, user_id
                 FROM operation_errors
                 WHERE minute >= {} AND minute <= {} AND at >= {} AND at < {} {only}
                 ORDER BY at DESC, seq DESC LIMIT {limit}",
                from.timestamp().div_euclid(60),
                to.timestamp().div_euclid(60),
                micros(&from),
                micros(&to),
            ))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(OperationError {
                    service: r.service,
                    operation: r.operation,
                    error_type: r.error_type,
                    error: r.error,
                    stack_trace: r.stack_trace,
                    context: r
                        .context
                        .map(|c| doc_from_text(&c, "error context"))
                        .transpose()?,
                    user_id: r.user_id,
                    at: DateTime::from_timestamp_micros(r.at)
                        .ok_or_else(|| StoreError::Corrupt("stored error time".into()))?,
                })
            })
            .collect()
    }

    async fn operation_users(
        &self,
        from: i64,
        to: i64,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError> {
        let filter = users_filter(from, to, service);
        let rows: Vec<UsersRow> = self
            .ch
            .rows(&format!(
                "SELECT operation, uniqExact(user_hash) AS users,
                        uniqExactIf(user_hash, ok = 1) AS ok_users
                 FROM operation_users WHERE {filter} GROUP BY operation"
            ))
            .await?;
        let total = self
            .ch
            .number(&format!(
                "SELECT uniqExact(user_hash) FROM operation_users WHERE {filter}"
            ))
            .await?;
        Ok(OperationUserCounts {
            per_operation: rows
                .into_iter()
                .map(|r| (r.operation, (r.users, r.ok_users)))
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
        cells::compact::<OperationCells>(&self.ch, &self.ids, from_res, to_res, before, limit).await
    }

    async fn purge_operations(&self, res: i64, before: i64) -> Result<u64, StoreError> {
        cells::purge::<OperationCells>(&self.ch, res, before).await
    }

    async fn purge_operation_details(
        &self,
        errors_before: DateTime<Utc>,
        users_before: i64,
    ) -> Result<u64, StoreError> {
        let errors = format!("at < {}", micros(&errors_before));
        let users = format!("hour < {users_before}");
        let counted = [
            (
                "operation_errors",
                format!("SELECT count() FROM operation_errors WHERE {errors}"),
                errors.clone(),
            ),
            (
                "operation_users",
                format!(
                    "SELECT count() FROM (SELECT DISTINCT service, operation, hour, user_hash
                     FROM operation_users WHERE {users})"
                ),
                users.clone(),
            ),
        ];
        let mut n = 0;
        for (table, count, filter) in counted {
            n += delete_counted(&self.ch, table, &count, &filter).await?;
        }
        Ok(n)
    }

    async fn operation_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<NameRow> =
            cells::distinct::<OperationCells, _>(&self.ch, "service, operation", "1").await?;
        Ok(rows.into_iter().map(|r| (r.service, r.operation)).collect())
    }
}
