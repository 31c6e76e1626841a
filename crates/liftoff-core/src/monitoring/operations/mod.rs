//! Operations: named units of work (`outfit_generation`, `external:stripe.charge`) that apps
//! time and report, validated at the edge and folded into per-minute cells.
//!
//! - A cell per (service, operation, minute) holds counts (runs, failures, cache hits, runs that
//!   reported `cache_hit` at all), a layer → runs map (at most [`MAX_LAYERS`] layers, the rest
//!   under `other`), failures per error type (same cap) and a DDSketch of durations. Cells
//!   merge into any window and are compacted like request cells (minutes → hours → days).
//! - A failure is also kept as an error row (type, message, stack trace, context, user), at most
//!   [`ERRORS_PER_MINUTE`] per (service, operation, error type, minute); the rest are only
//!   counted (in the cell's error types and in `liftoff_operation_errors_dropped_total`), so a
//!   flood of failures cannot fill the disk. Error rows are kept [`ERRORS_KEPT_DAYS`] days.
//! - Distinct users: each (service, operation, hour, user) is one row keyed by a 64-bit hash
//!   of the user id (`INSERT … ON CONFLICT`), with whether that user succeeded at least once.
//!   Counts are exact up to hash collisions and hour granularity (a window is widened to
//!   whole hours), and available for [`USERS_KEPT_HOURS`] hours.
//! - Operation names are capped per service ([`MAX_OPERATIONS`]; the rest become `other`).
//! - External calls are operations whose name starts with `external:` (`external:stripe.charge`);
//!   `/stats/operations` marks them and can filter on them (`kind=external|internal`).

pub mod cap;
pub mod service;
mod store;

pub use store::{OperationStore, OperationUserCounts};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::requests::{DEFAULT_SERVICE, parse_ts};
use super::sketch::{DDSketch, SketchError};

/// Distinct operation names kept apart per service; the rest are recorded as [`OTHER`].
pub const MAX_OPERATIONS: usize = 500;
/// Distinct layers (and error types) kept apart per cell; the rest are counted under [`OTHER`].
pub const MAX_LAYERS: usize = 16;
pub const OTHER: &str = "other";
/// Error rows kept per (service, operation, error type, minute).
pub const ERRORS_PER_MINUTE: usize = 20;
pub const ERRORS_KEPT_DAYS: i64 = 30;
/// Per-user rows (hours) are kept this long: distinct-user counts cover at most 30 days.
pub const USERS_KEPT_HOURS: i64 = 31 * 24;
/// The error type of a failure that reported none.
pub const UNKNOWN_ERROR: &str = "unknown";
/// Names starting with this are external calls.
pub const EXTERNAL_PREFIX: &str = "external:";

pub const MAX_NAME: usize = 200;
pub const MAX_ERROR: usize = 4 * 1024;
pub const MAX_ERROR_TYPE: usize = 200;
pub const MAX_STACK_TRACE: usize = 16 * 1024;
pub const MAX_CONTEXT: usize = 8 * 1024;
pub const MAX_USER_ID: usize = 200;
pub const MAX_LAYER: usize = 64;
/// Durations must be below a day.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Success,
    Failure,
}

/// One run of an operation, as `POST /api/ingest/operations` takes it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct OperationRecord {
    /// 1–200 characters of `A-Z a-z 0-9 _ - . : /`; `external:…` marks an external call.
    #[schema(pattern = "^[A-Za-z0-9_.:/-]{1,200}$")]
    pub operation: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub user_id: Option<String>,
    pub status: OperationStatus,
    /// 0 to below 86 400 000 (a day).
    pub duration_ms: f64,
    /// Any JSON, at most 8 KiB serialized; kept with failures only.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// The error message (at most 4 KiB).
    pub error: Option<String>,
    /// The error's type or class (at most 200 characters); `unknown` for a failure without one.
    #[schema(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")]
    pub error_type: Option<String>,
    /// At most 16 KiB.
    pub stack_trace: Option<String>,
    /// Whether a cache answered; leave out when no cache is involved.
    pub cache_hit: Option<bool>,
    /// Which layer served the operation (`cache`, `primary`, `fallback`, …; at most 64 characters).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub layer: Option<String>,
    /// RFC 3339, or Unix time in seconds or milliseconds; now when absent.
    #[schema(value_type = Option<Object>)]
    pub ts: Option<Value>,
    /// The app or service; `default` when absent.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub service: Option<String>,
}

/// Failure details of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub error_type: String,
    pub error: Option<String>,
    pub stack_trace: Option<String>,
    pub context: Option<Value>,
}

/// A run after validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub service: String,
    pub operation: String,
    pub user_id: Option<String>,
    pub success: bool,
    pub duration_ms: f64,
    pub cache_hit: Option<bool>,
    pub layer: Option<String>,
    /// Present for failures.
    pub failure: Option<Failure>,
    pub at: DateTime<Utc>,
}

/// Operation names: a safe token set, no spaces or control characters.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_control())
}

fn capped(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, String> {
    match v {
        Some(s) if s.len() > max => Err(format!(
            "{field} is {} bytes; at most {max} are accepted",
            s.len()
        )),
        v => Ok(v),
    }
}

impl OperationRecord {
    pub fn validate(self, now: DateTime<Utc>) -> Result<Operation, String> {
        if !valid_name(&self.operation) {
            return Err(format!(
                "operation must be 1 to {MAX_NAME} characters of A-Z a-z 0-9 _ - . : / (got `{}`{})",
                self.operation.chars().take(40).collect::<String>(),
                if self.operation.len() > 40 { "…" } else { "" }
            ));
        }
        if !(self.duration_ms.is_finite() && (0.0..MAX_DURATION_MS).contains(&self.duration_ms)) {
            return Err(format!(
                "duration_ms {} must be at least 0 and below 86400000 (a day)",
                self.duration_ms
            ));
        }
        let service = self.service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
        if !printable(&service, 100) {
            return Err("service must be 1 to 100 printable characters".into());
        }
        if let Some(u) = &self.user_id
            && !printable(u, MAX_USER_ID)
        {
            return Err(format!(
                "user_id must be 1 to {MAX_USER_ID} printable characters"
            ));
        }
        if let Some(l) = &self.layer
            && !printable(l, MAX_LAYER)
        {
            return Err(format!(
                "layer must be 1 to {MAX_LAYER} printable characters"
            ));
        }
        let error = capped("error", self.error, MAX_ERROR)?;
        let stack_trace = capped("stack_trace", self.stack_trace, MAX_STACK_TRACE)?;
        let error_type = capped("error_type", self.error_type, MAX_ERROR_TYPE)?;
        if error_type
            .as_deref()
            .is_some_and(|t| !printable(t, MAX_ERROR_TYPE))
        {
            return Err("error_type must be printable characters".into());
        }
        let context = match self.context {
            Some(Value::Null) | None => None,
            Some(v) => {
                let n = serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len());
                if n > MAX_CONTEXT {
                    return Err(format!(
                        "context is {n} bytes of JSON; at most {MAX_CONTEXT} are accepted"
                    ));
                }
                Some(v)
            }
        };
        let at = match &self.ts {
            Some(v) => parse_ts(v, now)?,
            None => now,
        };
        let success = self.status == OperationStatus::Success;
        let failure = (!success).then(|| Failure {
            error_type: error_type.unwrap_or_else(|| UNKNOWN_ERROR.to_owned()),
            error,
            stack_trace,
            context,
        });
        Ok(Operation {
            service,
            operation: self.operation,
            user_id: self.user_id,
            success,
            duration_ms: self.duration_ms,
            cache_hit: self.cache_hit,
            layer: self.layer,
            failure,
            at,
        })
    }
}

/// Which operation names are kept apart, per service; the rest become [`OTHER`].
#[derive(Default)]
pub struct NameBudget {
    seen: Mutex<HashMap<String, HashSet<String>>>,
    overflowed: AtomicU64,
}

impl NameBudget {
    /// The name to record `operation` of `service` under.
    pub fn admit(&self, service: &str, operation: &str) -> String {
        let Ok(mut seen) = self.seen.lock() else {
            return OTHER.to_owned();
        };
        let names = seen.entry(service.to_owned()).or_default();
        if names.contains(operation) {
            return operation.to_owned();
        }
        if names.len() < MAX_OPERATIONS {
            names.insert(operation.to_owned());
            return operation.to_owned();
        }
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        OTHER.to_owned()
    }

    /// Runs recorded under `other` because their service had too many names.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Teaches the budget names already stored (at start).
    pub fn learn(&self, service: &str, operation: &str) {
        let _ = self.admit(service, operation);
    }
}

/// The key of a cell: `minute` is the first Unix minute it covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    pub minute: i64,
    pub service: String,
    pub operation: String,
}

/// What a cell holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpCell {
    pub count: u64,
    pub failures: u64,
    pub cache_hits: u64,
    /// Runs that reported `cache_hit` at all.
    pub cache_known: u64,
    /// Runs per layer (runs without a layer are not counted here).
    pub layers: BTreeMap<String, u64>,
    /// Failures per error type.
    pub error_types: BTreeMap<String, u64>,
    pub sketch: DDSketch,
}

/// Adds `n` to `name` in a map holding at most [`MAX_LAYERS`] names; the rest go to [`OTHER`].
fn bump(map: &mut BTreeMap<String, u64>, name: &str, n: u64) {
    if let Some(v) = map.get_mut(name) {
        *v += n;
    } else if map.len() < MAX_LAYERS || name == OTHER {
        map.insert(name.to_owned(), n);
    } else {
        *map.entry(OTHER.to_owned()).or_default() += n;
    }
}

impl OpCell {
    pub fn add(&mut self, op: &Operation) {
        self.count += 1;
        if let Some(f) = &op.failure {
            self.failures += 1;
            bump(&mut self.error_types, &f.error_type, 1);
        }
        if let Some(hit) = op.cache_hit {
            self.cache_known += 1;
            self.cache_hits += u64::from(hit);
        }
        if let Some(l) = &op.layer {
            bump(&mut self.layers, l, 1);
        }
        self.sketch.add(op.duration_ms);
    }

    pub fn merge(&mut self, other: &OpCell) -> Result<(), SketchError> {
        self.sketch.merge(&other.sketch)?;
        self.count += other.count;
        self.failures += other.failures;
        self.cache_hits += other.cache_hits;
        self.cache_known += other.cache_known;
        for (k, v) in &other.layers {
            bump(&mut self.layers, k, *v);
        }
        for (k, v) in &other.error_types {
            bump(&mut self.error_types, k, *v);
        }
        Ok(())
    }
}

/// An error row.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OperationError {
    pub service: String,
    pub operation: String,
    pub error_type: String,
    pub error: Option<String>,
    pub stack_trace: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    pub user_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// One user of one operation in one hour.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationUser {
    pub service: String,
    pub operation: String,
    /// Unix hour (seconds / 3600).
    pub hour: i64,
    pub user_hash: i64,
    /// Succeeded at least once in that hour.
    pub ok: bool,
}

/// A stable 64-bit hash of a user id (the same on every replica and release).
pub fn user_hash(user_id: &str) -> i64 {
    let d = Sha256::digest(user_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// Everything one ingest writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct OperationWrite {
    pub cells: Vec<(OpKey, OpCell)>,
    pub errors: Vec<OperationError>,
    pub users: Vec<OperationUser>,
}

impl OperationWrite {
    /// Joins writes (of several ingest requests) into one, merging cells and users with the
    /// same key and keeping at most [`ERRORS_PER_MINUTE`] error rows per key and minute; returns
    /// it and how many error rows were left out.
    pub fn combine(writes: Vec<OperationWrite>) -> Result<(OperationWrite, u64), SketchError> {
        let mut cells: BTreeMap<OpKey, OpCell> = BTreeMap::new();
        let mut users: BTreeMap<(String, String, i64, i64), bool> = BTreeMap::new();
        let mut per_key: HashMap<(String, String, String, i64), usize> = HashMap::new();
        let mut errors = Vec::new();
        let mut dropped = 0;
        for w in writes {
            for (k, c) in w.cells {
                match cells.get_mut(&k) {
                    Some(m) => m.merge(&c)?,
                    None => {
                        cells.insert(k, c);
                    }
                }
            }
            for u in w.users {
                *users
                    .entry((u.service, u.operation, u.hour, u.user_hash))
                    .or_default() |= u.ok;
            }
            for e in w.errors {
                let n = per_key
                    .entry((
                        e.service.clone(),
                        e.operation.clone(),
                        e.error_type.clone(),
                        e.at.timestamp().div_euclid(60),
                    ))
                    .or_default();
                if *n < ERRORS_PER_MINUTE {
                    *n += 1;
                    errors.push(e);
                } else {
                    dropped += 1;
                }
            }
        }
        Ok((
            OperationWrite {
                cells: cells.into_iter().collect(),
                errors,
                users: users
                    .into_iter()
                    .map(
                        |((service, operation, hour, user_hash), ok)| OperationUser {
                            service,
                            operation,
                            hour,
                            user_hash,
                            ok,
                        },
                    )
                    .collect(),
            },
            dropped,
        ))
    }
}

/// Folds runs (names already through the budget) into cells, error rows and user rows.
pub fn fold(ops: Vec<Operation>) -> Result<(OperationWrite, u64), SketchError> {
    let mut cells: BTreeMap<OpKey, OpCell> = BTreeMap::new();
    let mut w = OperationWrite::default();
    for op in ops {
        let key = OpKey {
            minute: op.at.timestamp().div_euclid(60),
            service: op.service.clone(),
            operation: op.operation.clone(),
        };
        cells.entry(key).or_default().add(&op);
        if let Some(u) = &op.user_id {
            w.users.push(OperationUser {
                service: op.service.clone(),
                operation: op.operation.clone(),
                hour: op.at.timestamp().div_euclid(3600),
                user_hash: user_hash(u),
                ok: op.success,
            });
        }
        if let Some(f) = op.failure {
            w.errors.push(OperationError {
                service: op.service,
                operation: op.operation,
                error_type: f.error_type,
                error: f.error,
                stack_trace: f.stack_trace,
                context: f.context,
                user_id: op.user_id,
                at: op.at,
            });
        }
    }
    w.cells = cells.into_iter().collect();
    OperationWrite::combine(vec![w])
}

/// Merges cells with the same key into one.
pub fn merge_cells(
    cells: impl IntoIterator<Item = (OpKey, OpCell)>,
) -> Result<BTreeMap<OpKey, OpCell>, SketchError> {
    let mut merged: BTreeMap<OpKey, OpCell> = BTreeMap::new();
    for (k, c) in cells {
        match merged.get_mut(&k) {
            Some(m) => m.merge(&c)?,
            None => {
                merged.insert(k, c);
            }
        }
    }
    Ok(merged)
}

/// Compaction's merge: cells moved to their `to_res`-minute bucket ([`super::bucket_start`])
/// and merged per bucket.
pub fn roll_up(
    cells: impl IntoIterator<Item = (OpKey, OpCell)>,
    to_res: i64,
) -> Result<BTreeMap<OpKey, OpCell>, SketchError> {
    merge_cells(cells.into_iter().map(|(k, c)| {
        (
            OpKey {
                minute: super::bucket_start(k.minute, to_res),
                ..k
            },
            c,
        )
    }))
}

/// The JSON kept for a cell's maps.
pub fn map_to_json(m: &BTreeMap<String, u64>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

pub fn map_from_json(s: &str) -> Result<BTreeMap<String, u64>, String> {
    serde_json::from_str(s).map_err(|e| format!("stored map: {e}"))
}

#[cfg(test)]
mod tests;
