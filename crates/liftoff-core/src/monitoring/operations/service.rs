//! `OperationsService`: ingest of operation runs (validated, folded, group-committed) and the
//! `/api/monitoring/stats/*` queries, answered by merging the cells of the window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::{
    ERRORS_KEPT_DAYS, EXTERNAL_PREFIX, NameBudget, OpCell, Operation, OperationError,
    OperationRecord, OperationWrite, USERS_KEPT_HOURS, fold,
};
use super::{OperationStore, OperationUserCounts};
use crate::batch::{BatchWriter, FlushFn};
use crate::clock::Clock;
use crate::jobs::JobRegistry;
use crate::monitoring::prometheus::{BUCKETS, escape, write_histogram};
use crate::monitoring::service::{Durations, IngestError, Retention, TimeRange, validate_all};
use crate::monitoring::sketch::DDSketch;
use crate::store::StoreError;

/// Waiting ingest requests before new ones are refused with 429.
const QUEUE: usize = 1024;

/// `/stats/summary`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OperationsSummary {
    pub total_operations: u64,
    pub successes: u64,
    pub failures: u64,
    /// Successes per run, 0–1; null without runs.
    pub success_rate: Option<f64>,
    pub avg_duration_ms: f64,
    pub p95_duration_ms: f64,
    /// Cache hits per run that reported `cache_hit`; null when none did.
    pub cache_hit_rate: Option<f64>,
    /// Distinct operation names with runs.
    pub operations: usize,
    /// Failures per error type (every failure, also those whose error row was not kept).
    pub error_types: BTreeMap<String, u64>,
}

/// One operation over a window (`/stats/operations`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OperationStats {
    pub operation: String,
    /// Whether the name marks an external call (`external:…`).
    pub external: bool,
    pub count: u64,
    pub successes: u64,
    pub failures: u64,
    pub success_rate: f64,
    pub duration_ms: Durations,
    /// Cache hits per run that reported `cache_hit`; null when none did.
    pub cache_hit_rate: Option<f64>,
    /// Runs per layer (runs that named a layer).
    pub layers: BTreeMap<String, u64>,
    /// The primary layer: one literally named `primary` if reported, else the most frequent.
    pub primary_layer: Option<String>,
    /// Share of the runs that named a layer and were not served by the primary layer; null
    /// when no run named a layer.
    pub fallback_rate: Option<f64>,
    /// Failures per error type.
    pub error_types: BTreeMap<String, u64>,
    /// Distinct users who ran it (hour granularity; see the module docs).
    pub users: u64,
}

/// `/stats/errors`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = OperationErrorsReport)]
pub struct ErrorsReport {
    /// Newest first.
    pub errors: Vec<OperationError>,
    /// Failures per error type in the window (every failure, also those not kept as a row).
    pub totals: BTreeMap<String, u64>,
    pub total: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Milestone {
    pub operation: String,
    /// Distinct users who completed it successfully in the window.
    pub users: u64,
    /// `users` relative to the first milestone's, 0–1.
    pub share: f64,
}

/// `/stats/user-funnel`: operations ordered by how many distinct users completed them
/// successfully.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserFunnel {
    pub milestones: Vec<Milestone>,
    /// Distinct users who ran any operation (successfully or not) in the window.
    pub total_users: u64,
}

/// Which operations `/stats/operations` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Names starting with `external:`.
    External,
    Internal,
}

#[derive(Default)]
struct Series {
    ok: u64,
    failed: u64,
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
}

#[derive(Clone)]
pub struct OperationsService {
    store: Arc<dyn OperationStore>,
    writer: BatchWriter<OperationWrite>,
    budget: Arc<NameBudget>,
    errors_dropped: Arc<AtomicU64>,
    series: Arc<std::sync::Mutex<BTreeMap<(String, String), Series>>>,
    clock: Arc<dyn Clock>,
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl OperationsService {
    /// Starts the ingest writer; the returned task ends once every clone of the service is
    /// dropped and what was accepted is committed.
    pub async fn start(
        store: Arc<dyn OperationStore>,
        registry: &JobRegistry,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let budget = Arc::new(NameBudget::default());
        for (service, op) in store.operation_names().await? {
            budget.learn(&service, &op);
        }
        let errors_dropped = Arc::new(AtomicU64::new(0));
        let (s, d) = (store.clone(), errors_dropped.clone());
        let flush: FlushFn<OperationWrite> = Arc::new(move |writes| {
            let (store, dropped) = (s.clone(), d.clone());
            Box::pin(async move {
                let (write, left_out) = OperationWrite::combine(writes).map_err(corrupt)?;
                let not_kept = store.write_operations(&write).await?;
                dropped.fetch_add(left_out + not_kept, Ordering::Relaxed);
                Ok(())
            })
        });
        let (writer, handle) = BatchWriter::start("operation-ingest", QUEUE, registry, flush);
        Ok((
            Self {
                store,
                writer,
                budget,
                errors_dropped,
                series: Arc::default(),
                clock: crate::clock::system(),
            },
            handle,
        ))
    }

    /// Reads the time (when a batch is validated) from `clock`
    /// instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses (overloaded) when the ingest queue is already behind, before any work is done.
    pub fn admit(&self) -> Result<(), crate::batch::SubmitError> {
        self.writer.admit()
    }

    /// Validates every record (all or nothing), folds them and returns once committed.
    pub async fn ingest(&self, records: Vec<OperationRecord>) -> Result<usize, IngestError> {
        let n = records.len();
        let valid = validate_all(records, self.clock.now(), OperationRecord::validate)?;
        self.record(valid).await?;
        Ok(n)
    }

    /// Commits runs that are already validated (the demo writes a month of them; `ingest`
    /// refuses timestamps older than 30 days). Names go through the per-service budget.
    pub async fn record(&self, mut ops: Vec<Operation>) -> Result<(), IngestError> {
        for op in &mut ops {
            op.operation = self.budget.admit(&op.service, &op.operation);
        }
        self.observe(&ops);
        let (write, dropped) = fold(ops).map_err(|e| IngestError::Invalid {
            index: 0,
            message: e.to_string(),
        })?;
        self.errors_dropped.fetch_add(dropped, Ordering::Relaxed);
        self.writer.submit(vec![write]).await?;
        Ok(())
    }

    fn observe(&self, ops: &[Operation]) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        for op in ops {
            let s = series
                .entry((op.service.clone(), op.operation.clone()))
                .or_default();
            if op.success {
                s.ok += 1;
            } else {
                s.failed += 1;
            }
            let secs = op.duration_ms / 1000.0;
            let slot = BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(BUCKETS.len());
            s.buckets[slot] += 1;
            s.sum_seconds += secs;
        }
    }

    /// Appends `liftoff_operations_total`, `liftoff_operation_duration_seconds` and the
    /// overflow counters (runs this replica ingested, since it started).
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        if let Ok(series) = self.series.lock() {
            out.push_str("# HELP liftoff_operations_total Operation runs ingested by this replica, by service, operation and status.\n");
            out.push_str("# TYPE liftoff_operations_total counter\n");
            for ((svc, op), s) in series.iter() {
                for (status, n) in [("success", s.ok), ("failure", s.failed)] {
                    let _ = writeln!(
                        out,
                        "liftoff_operations_total{{service=\"{}\",operation=\"{}\",status=\"{status}\"}} {n}",
                        escape(svc),
                        escape(op)
                    );
                }
            }
            out.push_str("# HELP liftoff_operation_duration_seconds Operation durations ingested by this replica.\n");
            out.push_str("# TYPE liftoff_operation_duration_seconds histogram\n");
            for ((svc, op), s) in series.iter() {
                let labels = format!("service=\"{}\",operation=\"{}\"", escape(svc), escape(op));
                write_histogram(
                    out,
                    "liftoff_operation_duration_seconds",
                    &labels,
                    &s.buckets,
                    s.sum_seconds,
                );
            }
        }
        out.push_str("# HELP liftoff_operations_overflowed_total Operation runs recorded under `other` because a service exceeded the operation-name budget.\n");
        out.push_str("# TYPE liftoff_operations_overflowed_total counter\n");
        let _ = writeln!(
            out,
            "liftoff_operations_overflowed_total {}",
            self.budget.overflowed()
        );
        out.push_str("# HELP liftoff_operation_errors_dropped_total Failed runs counted but not kept as an error row (per-minute cap).\n");
        out.push_str("# TYPE liftoff_operation_errors_dropped_total counter\n");
        let _ = writeln!(
            out,
            "liftoff_operation_errors_dropped_total {}",
            self.errors_dropped.load(Ordering::Relaxed)
        );
    }

    /// Failed runs counted but not kept as error rows.
    pub fn errors_dropped(&self) -> u64 {
        self.errors_dropped.load(Ordering::Relaxed)
    }

    /// The window's cells merged per operation name (over services unless `service` is set).
    async fn gather(
        &self,
        range: TimeRange,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, OpCell>, StoreError> {
        let (from, to) = minutes(range);
        let mut per: BTreeMap<String, OpCell> = BTreeMap::new();
        for (k, c) in self.store.operation_cells(from, to).await? {
            if service.is_some_and(|s| s != k.service) {
                continue;
            }
            match per.get_mut(&k.operation) {
                Some(m) => m.merge(&c).map_err(corrupt)?,
                None => {
                    per.insert(k.operation, c);
                }
            }
        }
        Ok(per)
    }

    async fn users(
        &self,
        range: TimeRange,
        service: Option<&str>,
    ) -> Result<OperationUserCounts, StoreError> {
        let (from, to) = hours(range);
        self.store.operation_users(from, to, service).await
    }

    pub async fn summary(
        &self,
        range: TimeRange,
        service: Option<&str>,
    ) -> Result<OperationsSummary, StoreError> {
        let mut all = OpCell::default();
        let per = self.gather(range, service).await?;
        let mut error_types: BTreeMap<String, u64> = BTreeMap::new();
        for c in per.values() {
            all.sketch.merge(&c.sketch).map_err(corrupt)?;
            all.count += c.count;
            all.failures += c.failures;
            all.cache_hits += c.cache_hits;
            all.cache_known += c.cache_known;
            // Summed without the per-cell cap: the summary lists every type the cells kept.
            for (t, n) in &c.error_types {
                *error_types.entry(t.clone()).or_default() += n;
            }
        }
        let d = durations(&all.sketch);
        Ok(OperationsSummary {
            total_operations: all.count,
            successes: all.count - all.failures,
            failures: all.failures,
            success_rate: rate(all.count - all.failures, all.count),
            avg_duration_ms: d.avg,
            p95_duration_ms: d.p95,
            cache_hit_rate: rate(all.cache_hits, all.cache_known),
            operations: per.len(),
            error_types,
        })
    }

    /// Per operation name, optionally one name, one service, or one kind.
    pub async fn operations(
        &self,
        range: TimeRange,
        operation: Option<&str>,
        service: Option<&str>,
        kind: Option<OperationKind>,
    ) -> Result<BTreeMap<String, OperationStats>, StoreError> {
        let (per, users) =
            tokio::try_join!(self.gather(range, service), self.users(range, service))?;
        let mut out = BTreeMap::new();
        for (name, c) in per {
            let external = name.starts_with(EXTERNAL_PREFIX);
            if operation.is_some_and(|o| o != name)
                || kind.is_some_and(|k| (k == OperationKind::External) != external)
            {
                continue;
            }
            let primary = if c.layers.contains_key("primary") {
                Some("primary".to_owned())
            } else {
                // Most frequent; ties go to the first name.
                c.layers
                    .iter()
                    .fold(None::<(&String, u64)>, |best, (l, n)| match best {
                        Some((_, m)) if m >= *n => best,
                        _ => Some((l, *n)),
                    })
                    .map(|(l, _)| l.clone())
            };
            let layered: u64 = c.layers.values().sum();
            let on_primary = primary
                .as_ref()
                .and_then(|p| c.layers.get(p))
                .copied()
                .unwrap_or(0);
            let successes = c.count - c.failures;
            let stats = OperationStats {
                operation: name.clone(),
                external,
                count: c.count,
                successes,
                failures: c.failures,
                success_rate: rate(successes, c.count).unwrap_or(0.0),
                duration_ms: durations(&c.sketch),
                cache_hit_rate: rate(c.cache_hits, c.cache_known),
                fallback_rate: rate(layered - on_primary, layered),
                primary_layer: primary,
                layers: c.layers,
                error_types: c.error_types,
                users: users.per_operation.get(&name).map_or(0, |u| u.0),
            };
            out.insert(name, stats);
        }
        Ok(out)
    }

    /// The newest `limit` error rows (optionally of one operation) and the failures per type.
    pub async fn errors(
        &self,
        range: TimeRange,
        operation: Option<&str>,
        limit: usize,
    ) -> Result<ErrorsReport, StoreError> {
        let rows = self
            .store
            .operation_errors(range.from, range.to, operation, limit)
            .await?;
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for (name, c) in self.gather(range, None).await? {
            if operation.is_some_and(|o| o != name) {
                continue;
            }
            for (t, n) in c.error_types {
                *totals.entry(t).or_default() += n;
            }
        }
        Ok(ErrorsReport {
            errors: rows,
            total: totals.values().sum(),
            totals,
        })
    }

    /// Operations by distinct users who completed them successfully, most first.
    pub async fn user_funnel(
        &self,
        range: TimeRange,
        service: Option<&str>,
    ) -> Result<UserFunnel, StoreError> {
        let users = self.users(range, service).await?;
        let mut reached: Vec<(String, u64)> = users
            .per_operation
            .into_iter()
            .filter(|(_, (_, ok))| *ok > 0)
            .map(|(op, (_, ok))| (op, ok))
            .collect();
        reached.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let first = reached.first().map_or(0, |r| r.1);
        Ok(UserFunnel {
            milestones: reached
                .into_iter()
                .map(|(operation, users)| Milestone {
                    operation,
                    users,
                    share: rate(users, first).unwrap_or(0.0),
                })
                .collect(),
            total_users: users.total,
        })
    }

    /// Compacts cells (minutes → hours after a day, hours → days after 30 days, days dropped
    /// after a year) and drops error rows older than 30 days and user rows older than 31 days.
    pub async fn compact(
        &self,
        now: DateTime<Utc>,
        retention: Retention,
    ) -> Result<String, StoreError> {
        let moved = retention
            .compact(now, |from, to, before, limit| {
                self.store.compact_operations(from, to, before, limit)
            })
            .await?;
        let purged = self
            .store
            .purge_operations(1440, retention.days_from(now))
            .await?;
        let details = self
            .store
            .purge_operation_details(
                now - chrono::Duration::days(ERRORS_KEPT_DAYS),
                now.timestamp().div_euclid(3600) - USERS_KEPT_HOURS,
            )
            .await?;
        Ok(format!(
            "operations: {} minute cells → hours, {} hour cells → days, {purged} day cells and {details} error/user rows dropped",
            moved[0], moved[1]
        ))
    }
}

fn minutes(r: TimeRange) -> (i64, i64) {
    (
        r.from.timestamp().div_euclid(60),
        r.to.timestamp().div_euclid(60) + 1,
    )
}

/// The whole hours a window touches.
fn hours(r: TimeRange) -> (i64, i64) {
    (
        r.from.timestamp().div_euclid(3600),
        r.to.timestamp().div_euclid(3600) + 1,
    )
}

fn durations(s: &DDSketch) -> Durations {
    let q = |p| s.quantile(p).unwrap_or(0.0);
    let n = s.count();
    Durations {
        min: s.min().unwrap_or(0.0),
        max: s.max().unwrap_or(0.0),
        avg: if n == 0 { 0.0 } else { s.sum() / n as f64 },
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
    }
}
