//! Request monitoring: ingest (validated, folded into per-minute sketches, group-committed)
//! and the seed's queries, answered by merging the minutes of the window.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::filter::{Filter, unique_keys};
use super::requests::{
    CellKey, Request, RequestRecord, RouteBudget, add_totals, fold, merge_cells,
};
use super::sketch::DDSketch;
use super::{MetricsStore, RequestCell};
use crate::batch::{BatchWriter, FlushFn, SubmitError};
use crate::clock::Clock;
use crate::jobs::JobRegistry;
use crate::store::StoreError;

/// Waiting ingest requests before new ones are refused with 429.
const QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("record {index}: {message}")]
    Invalid { index: usize, message: String },
    #[error("the batch is empty")]
    Empty,
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// Validates a batch at one `now`, all or nothing: the first bad record's index and reason.
pub(crate) fn validate_all<R, T>(
    records: Vec<R>,
    now: DateTime<Utc>,
    validate: impl Fn(R, DateTime<Utc>) -> Result<T, String>,
) -> Result<Vec<T>, IngestError> {
    if records.is_empty() {
        return Err(IngestError::Empty);
    }
    records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            validate(r, now).map_err(|message| IngestError::Invalid { index, message })
        })
        .collect()
}

/// A time range: `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl TimeRange {
    /// `15m`, `1h`, `4h`, `24h`, `7d` or `30d` back from `now`.
    pub fn window(name: &str, now: DateTime<Utc>) -> Option<Self> {
        let d = match name {
            "15m" => Duration::minutes(15),
            "1h" => Duration::hours(1),
            "4h" => Duration::hours(4),
            "24h" => Duration::hours(24),
            "7d" => Duration::days(7),
            "30d" => Duration::days(30),
            _ => return None,
        };
        Some(Self {
            from: now - d,
            to: now,
        })
    }

    fn minutes(self) -> (i64, i64) {
        (
            self.from.timestamp().div_euclid(60),
            self.to.timestamp().div_euclid(60) + 1,
        )
    }
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Durations {
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One endpoint of one service over a window (the seed's shape, with its service).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EndpointStats {
    /// The app or service the endpoint belongs to; endpoints of different services are never
    /// merged.
    pub service: String,
    pub endpoint: String,
    pub method: String,
    pub request_count: u64,
    pub error_count: u64,
    /// Errors (5xx) per request, 0–1.
    pub error_rate: f64,
    pub duration_ms: Durations,
    pub status_codes: BTreeMap<String, u64>,
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

/// Errors per request, 0 without requests.
fn rate(errors: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        errors as f64 / total as f64
    }
}

/// One endpoint's cells merged over a window.
#[derive(Default)]
struct Gathered {
    sketch: DDSketch,
    errors: u64,
    codes: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RequestTotals {
    pub total: u64,
    pub errors: u64,
    pub error_rate: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LatencySummary {
    pub avg_duration_ms: f64,
    pub p95_duration_ms: f64,
    pub p99_duration_ms: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EndpointTotals {
    pub total: usize,
    pub with_errors: usize,
}

/// The seed's `/performance/summary`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Summary {
    pub uptime_seconds: u64,
    /// The services whose requests these figures count (by default every app service, without
    /// Liftoff's own traffic).
    pub services: Vec<String>,
    pub requests: RequestTotals,
    pub performance: LatencySummary,
    pub endpoints: EndpointTotals,
    pub system: super::system::SystemSnapshot,
}

/// One step of a time series: requests, errors and latency percentiles.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the step, Unix seconds.
    pub t: i64,
    pub requests: u64,
    pub errors: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Upper bounds of the latency histogram's buckets, in milliseconds.
pub const HISTOGRAM_BOUNDS_MS: [f64; 12] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0, 30_000.0,
];

/// One bucket of a latency histogram.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HistogramBucket {
    /// Requests at most this slow (and slower than the previous bound); `null` for the bucket
    /// above every bound.
    pub le_ms: Option<f64>,
    pub count: u64,
}

/// What `/performance/top` sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    RequestCount,
    ErrorRate,
    AvgDurationMs,
}

#[derive(Clone)]
pub struct MonitoringService {
    metrics: Arc<dyn MetricsStore>,
    pub system: super::system::SystemGauge,
    /// What app instances report about their own resources.
    pub instances: Arc<super::instances::Instances>,
    started: std::time::Instant,
    writer: BatchWriter<RequestCell>,
    budget: Arc<RouteBudget>,
    counters: Arc<super::prometheus::RequestCounters>,
    own: Arc<std::sync::Mutex<Vec<Request>>>,
    own_dropped: Arc<std::sync::atomic::AtomicU64>,
    clock: Arc<dyn Clock>,
    /// Flags whose requests are also kept per variant.
    pub watched: Arc<super::variants::WatchedFlags>,
}

/// By default minute cells are kept a day, hourly cells 30 days, daily cells a year (in
/// minutes).
pub const MINUTES_KEPT: i64 = 24 * 60;
pub const HOURS_KEPT: i64 = 30 * 24 * 60;
pub const DAYS_KEPT: i64 = 365 * 24 * 60;

/// How long each resolution of metrics is kept, in minutes (`--metrics-*` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub minutes: i64,
    pub hours: i64,
    pub days: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            minutes: MINUTES_KEPT,
            hours: HOURS_KEPT,
            days: DAYS_KEPT,
        }
    }
}

impl Retention {
    /// Moves cells to the next resolution once they are older than their resolution is kept:
    /// minutes into hours, then hours into days, through `compact(from_res, to_res, before,
    /// limit)` (a store's compaction), in bounded steps. Returns the cells moved per level.
    pub async fn compact<F, Fut>(
        &self,
        now: DateTime<Utc>,
        mut compact: F,
    ) -> Result<[u64; 2], StoreError>
    where
        F: FnMut(i64, i64, i64, usize) -> Fut,
        Fut: std::future::Future<Output = Result<u64, StoreError>>,
    {
        const LIMIT: usize = 20_000;
        let minute = now.timestamp().div_euclid(60);
        let mut moved = [0u64; 2];
        for (i, (from, to, age)) in [(1, 60, self.minutes), (60, 1440, self.hours)]
            .into_iter()
            .enumerate()
        {
            // Only whole target buckets: a half-compacted hour would mix resolutions.
            let cutoff = (minute - age) - (minute - age).rem_euclid(to);
            for _ in 0..50 {
                let n = compact(from, to, cutoff, LIMIT).await?;
                moved[i] += n;
                if n < LIMIT as u64 {
                    break;
                }
            }
        }
        Ok(moved)
    }

    /// The first minute still kept at daily resolution.
    pub fn days_from(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(60) - self.days
    }
}

/// The service name Liftoff records its own API traffic under.
pub const OWN_SERVICE: &str = "liftoff";

/// The instance name this server's own resource readings are kept under: the host name, so
/// that replicas sharing a store keep apart.
pub fn own_instance() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(liftoff_system::host_name)
}
/// Liftoff's own requests buffered between flushes.
pub const OWN_BUFFER: usize = 50_000;

impl MonitoringService {
    /// Starts the ingest writer; the returned task ends once every clone of the service is
    /// dropped and what was accepted is committed.
    pub async fn start(
        metrics: Arc<dyn MetricsStore>,
        registry: &JobRegistry,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let budget = Arc::new(RouteBudget::default());
        for (service, route) in metrics.request_routes().await? {
            budget.learn(&service, &route);
        }
        let store = metrics.clone();
        let flush: FlushFn<RequestCell> = Arc::new(move |cells| {
            let store = store.clone();
            Box::pin(async move {
                // Cells of different requests for the same minute merge before the write.
                let mut merged =
                    merge_cells(cells).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                add_totals(&mut merged).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                store
                    .merge_request_minutes(&merged.into_iter().collect::<Vec<_>>())
                    .await
            })
        });
        let (writer, handle) = BatchWriter::start("request-ingest", QUEUE, registry, flush);
        Ok((
            Self {
                metrics,
                system: Default::default(),
                instances: Default::default(),
                started: std::time::Instant::now(),
                writer,
                budget,
                counters: Default::default(),
                own: Default::default(),
                own_dropped: Default::default(),
                clock: crate::clock::system(),
                watched: Default::default(),
            },
            handle,
        ))
    }

    /// Reads the time (when a batch is validated, Liftoff's own requests) from `clock`
    /// instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses (overloaded) when the ingest queue is already behind, before any work is done.
    pub fn admit(&self) -> Result<(), crate::batch::SubmitError> {
        self.writer.admit()
    }

    /// Validates every record (all or nothing), folds them into minute cells and returns once
    /// they are committed.
    pub async fn ingest(&self, records: Vec<RequestRecord>) -> Result<usize, IngestError> {
        let n = records.len();
        let valid = validate_all(records, self.clock.now(), RequestRecord::validate)?;
        self.commit(valid).await?;
        Ok(n)
    }

    /// Routes through the budget, folds, commits, then counts for `/metrics`.
    async fn commit(&self, mut requests: Vec<Request>) -> Result<(), IngestError> {
        self.budget.admit_all(&mut requests);
        let cells = fold(&requests);
        self.commit_variants(&requests).await?;
        self.writer.submit(cells.into_iter().collect()).await?;
        self.counters.observe(&requests);
        Ok(())
    }

    /// Writes the per-variant cells of requests that name watched flags (nothing to do, and
    /// no store call, for the usual request that names none).
    async fn commit_variants(&self, requests: &[Request]) -> Result<(), IngestError> {
        if requests.iter().all(|r| r.flags.is_empty()) {
            return Ok(());
        }
        self.fold_variants(requests.iter().map(|r| {
            (
                r.at.timestamp().div_euclid(60),
                r.status,
                r.duration_ms,
                r.flags.as_slice(),
            )
        }))
        .await
    }

    /// Records OTLP server spans that were served flag variants.
    pub async fn ingest_served(&self, served: &[super::otlp::Served]) -> Result<(), IngestError> {
        self.fold_variants(
            served
                .iter()
                .map(|s| (s.minute, s.status, s.duration_ms, s.flags.as_slice())),
        )
        .await
    }

    async fn fold_variants<'a>(
        &self,
        requests: impl Iterator<Item = (i64, u16, f64, &'a [(String, String)])>,
    ) -> Result<(), IngestError> {
        let watched = self.watched.snapshot();
        let cells = super::variants::fold(&watched, requests);
        if !cells.is_empty() {
            self.metrics
                .merge_variant_minutes(&cells)
                .await
                .map_err(SubmitError::Store)?;
        }
        Ok(())
    }

    /// Requests per variant of `flag` in minutes `from..to`.
    pub async fn variant_traffic(
        &self,
        flag: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<std::collections::BTreeMap<String, super::variants::VariantTraffic>, StoreError>
    {
        let cells = self
            .metrics
            .variant_minutes(
                flag,
                from.timestamp().div_euclid(60),
                to.timestamp().div_euclid(60) + 1,
            )
            .await?;
        super::variants::by_variant(cells).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Commits cells built elsewhere (OTLP histograms arrive already aggregated). Routes go
    /// through the route budget like every other ingest.
    pub async fn ingest_cells(&self, cells: Vec<RequestCell>) -> Result<usize, IngestError> {
        if cells.is_empty() {
            return Err(IngestError::Empty);
        }
        let admitted = cells.into_iter().map(|(k, s)| {
            (
                CellKey {
                    route: self.budget.admit(&k.service, &k.route),
                    ..k
                },
                s,
            )
        });
        let merged = merge_cells(admitted).map_err(|e| IngestError::Invalid {
            index: 0,
            message: e.to_string(),
        })?;
        let n = merged.len();
        self.writer.submit(merged.into_iter().collect()).await?;
        Ok(n)
    }

    /// Records one of Liftoff's own requests (service `liftoff`). Buffered, not awaited: a
    /// request never waits on its own metrics. At most [`OWN_BUFFER`] wait for the next flush;
    /// beyond that they are counted as dropped.
    pub fn record_own(&self, method: &str, route: &str, status: u16, duration_ms: f64) {
        let Ok(mut own) = self.own.lock() else { return };
        if own.len() >= OWN_BUFFER {
            self.own_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        own.push(Request {
            service: OWN_SERVICE.to_owned(),
            method: method.to_owned(),
            route: route.to_owned(),
            status,
            duration_ms,
            at: self.clock.now(),
            flags: Vec::new(),
        });
    }

    /// Commits Liftoff's own buffered requests; returns how many.
    pub async fn flush_own(&self) -> Result<usize, IngestError> {
        let taken = match self.own.lock() {
            Ok(mut own) => std::mem::take(&mut *own),
            Err(_) => return Ok(0),
        };
        let n = taken.len();
        if n > 0 {
            self.commit(taken).await?;
        }
        Ok(n)
    }

    /// Appends the Prometheus families for ingested requests and monitoring's own counters.
    pub fn render_prometheus(&self, out: &mut String) {
        self.counters.render(out);
        self.render_instances(out);
        out.push_str("# HELP liftoff_routes_overflowed_total Requests recorded under route `other` because a service exceeded the route budget.\n");
        out.push_str("# TYPE liftoff_routes_overflowed_total counter\n");
        out.push_str(&format!(
            "liftoff_routes_overflowed_total {}\n",
            self.budget.overflowed()
        ));
        out.push_str("# HELP liftoff_own_metrics_dropped_total Liftoff's own requests not recorded because the buffer was full.\n");
        out.push_str("# TYPE liftoff_own_metrics_dropped_total counter\n");
        out.push_str(&format!(
            "liftoff_own_metrics_dropped_total {}\n",
            self.own_dropped.load(std::sync::atomic::Ordering::Relaxed)
        ));
    }

    /// Gauges of the app instances that report their resources.
    fn render_instances(&self, out: &mut String) {
        let instances = self.instances.list(self.clock.now());
        type Family = (
            &'static str,
            &'static str,
            fn(&super::system::Sample) -> f64,
        );
        let families: [Family; 4] = [
            (
                "liftoff_instance_cpu_percent",
                "Busy share of an app instance's CPUs, 0-100.",
                |s| s.cpu.percent,
            ),
            (
                "liftoff_instance_memory_percent",
                "Memory an app instance's machine or container uses, 0-100.",
                |s| s.memory.percent,
            ),
            (
                "liftoff_instance_disk_percent",
                "Disk an app instance's file system uses, 0-100.",
                |s| s.disk.percent,
            ),
            (
                "liftoff_instance_process_resident_megabytes",
                "Resident memory of an app instance's process.",
                |s| s.process_rss_mb,
            ),
        ];
        for (name, help, value) in families {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for i in &instances {
                out.push_str(&format!(
                    "{name}{{service=\"{}\",instance=\"{}\"}} {}\n",
                    super::prometheus::escape(&i.service),
                    super::prometheus::escape(&i.instance),
                    value(&i.sample)
                ));
            }
        }
    }

    /// Requests recorded under `other` because a service had too many distinct routes.
    pub fn overflowed_routes(&self) -> u64 {
        self.budget.overflowed()
    }

    /// The cells `filter` covers over `range`: the per-service totals cells when no endpoint is
    /// asked for (fewer to read and merge), else the endpoint's own cells.
    async fn scoped_cells(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<Vec<RequestCell>, StoreError> {
        let (from, to) = range.minutes();
        Ok(if filter.endpoint.is_some() {
            self.metrics
                .request_minutes(from, to)
                .await?
                .into_iter()
                .filter(|(k, _)| filter.covers(k))
                .collect()
        } else {
            self.metrics
                .request_totals(from, to)
                .await?
                .into_iter()
                .filter(|(k, _)| filter.covers_service(&k.service))
                .collect()
        })
    }

    /// Per endpoint over `range`, keyed `"METHOD:/route"` (`"service:METHOD:/route"` where
    /// services share an endpoint: they are never merged). Without a service in `filter`,
    /// every app service; Liftoff's own traffic only when asked for as `liftoff`.
    pub async fn performance(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<BTreeMap<String, EndpointStats>, StoreError> {
        let (from, to) = range.minutes();
        let mut per: BTreeMap<(String, String, String), Gathered> = BTreeMap::new();
        for (k, s) in self.metrics.request_minutes(from, to).await? {
            if !filter.covers(&k) {
                continue;
            }
            let g = per
                .entry((k.service.clone(), k.method.clone(), k.route.clone()))
                .or_default();
            let n = s.count();
            g.sketch
                .merge(&s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.status >= 500 {
                g.errors += n;
            }
            *g.codes.entry(k.status.to_string()).or_default() += n;
        }
        let keys = unique_keys(
            per.keys()
                .map(|(s, m, r)| (s.as_str(), m.as_str(), r.as_str())),
        );
        let mut out = BTreeMap::new();
        for ((service, method, route), g) in &per {
            let key = keys[&(service.as_str(), method.as_str(), route.as_str())].clone();
            let count = g.sketch.count();
            out.insert(
                key,
                EndpointStats {
                    service: service.clone(),
                    endpoint: route.clone(),
                    method: method.clone(),
                    request_count: count,
                    error_count: g.errors,
                    error_rate: rate(g.errors, count),
                    duration_ms: durations(&g.sketch),
                    status_codes: g.codes.clone(),
                },
            );
        }
        Ok(out)
    }

    /// Totals over the endpoints `filter` covers in `range`, with the latest system reading.
    /// Requests in a window, merged: how many, how many failed (5xx), every latency.
    pub async fn traffic(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<super::variants::VariantTraffic, StoreError> {
        let mut t = super::variants::VariantTraffic::default();
        for (k, s) in self.scoped_cells(range, filter).await? {
            t.requests += s.count();
            if k.status >= 500 {
                t.failed += s.count();
            }
            t.latency
                .merge(&s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        Ok(t)
    }

    pub async fn summary(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<Summary, StoreError> {
        let (from, to) = range.minutes();
        // The cells and the endpoint list are independent reads: run them side by side.
        let (cells, seen) = tokio::try_join!(
            self.scoped_cells(range, filter),
            self.metrics.request_endpoints(from, to)
        )?;
        let mut all = DDSketch::default();
        let mut errors = 0;
        let mut services = std::collections::BTreeSet::new();
        for (k, s) in &cells {
            all.merge(s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.status >= 500 {
                errors += s.count();
            }
            services.insert(k.service.clone());
        }
        let endpoints: Vec<_> = seen
            .into_iter()
            .filter(|e| {
                filter.covers_service(&e.service) && filter.covers_endpoint(&e.method, &e.route)
            })
            .collect();
        let total = all.count();
        let d = durations(&all);
        Ok(Summary {
            uptime_seconds: self.started.elapsed().as_secs(),
            services: services.into_iter().collect(),
            requests: RequestTotals {
                total,
                errors,
                error_rate: rate(errors, total),
            },
            performance: LatencySummary {
                avg_duration_ms: d.avg,
                p95_duration_ms: d.p95,
                p99_duration_ms: d.p99,
            },
            endpoints: EndpointTotals {
                total: endpoints.len(),
                with_errors: endpoints.iter().filter(|e| e.failed).count(),
            },
            system: self.system.get(),
        })
    }

    /// `range` cut into `steps` equal steps (at least a minute each), oldest first; steps
    /// without traffic are present with zero requests, so charts show gaps as zeros.
    pub async fn series(
        &self,
        range: TimeRange,
        steps: usize,
        filter: &Filter<'_>,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let (from, to) = range.minutes();
        let span = (to - from).max(1);
        let step = (span / steps.max(1) as i64).max(1);
        let n = ((span + step - 1) / step) as usize;
        let mut acc: Vec<(DDSketch, u64)> = (0..n).map(|_| (DDSketch::default(), 0)).collect();
        for (k, s) in self.scoped_cells(range, filter).await? {
            let i = (((k.minute - from) / step) as usize).min(n - 1);
            acc[i]
                .0
                .merge(&s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.status >= 500 {
                acc[i].1 += s.count();
            }
        }
        Ok(acc
            .into_iter()
            .enumerate()
            .map(|(i, (s, errors))| SeriesPoint {
                t: (from + i as i64 * step) * 60,
                requests: s.count(),
                errors,
                p50: s.quantile(0.5),
                p95: s.quantile(0.95),
                p99: s.quantile(0.99),
            })
            .collect())
    }

    /// How the window's request latencies spread over [`HISTOGRAM_BOUNDS_MS`], every endpoint
    /// `filter` covers together.
    pub async fn latency_histogram(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<Vec<HistogramBucket>, StoreError> {
        let mut all = DDSketch::default();
        for (_, s) in self.scoped_cells(range, filter).await? {
            all.merge(&s)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        let counts = all.histogram(&HISTOGRAM_BOUNDS_MS);
        Ok(counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| HistogramBucket {
                le_ms: HISTOGRAM_BOUNDS_MS.get(i).copied(),
                count,
            })
            .collect())
    }

    /// The services with requests stored (any time), Liftoff's own included, sorted.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        let mut services: Vec<String> = self
            .metrics
            .request_routes()
            .await?
            .into_iter()
            .map(|(service, _)| service)
            .collect();
        services.sort();
        services.dedup();
        Ok(services)
    }

    /// The `limit` endpoints with the most requests, highest error rate or slowest average.
    pub async fn top(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
        sort_by: SortBy,
        limit: usize,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let mut all: Vec<EndpointStats> = self
            .performance(range, filter)
            .await?
            .into_values()
            .collect();
        let key = |e: &EndpointStats| match sort_by {
            SortBy::RequestCount => e.request_count as f64,
            SortBy::ErrorRate => e.error_rate,
            SortBy::AvgDurationMs => e.duration_ms.avg,
        };
        all.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| b.request_count.cmp(&a.request_count))
        });
        all.truncate(limit);
        Ok(all)
    }

    /// Endpoints whose p95 is above `threshold_ms`, slowest first.
    pub async fn slow(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
        threshold_ms: f64,
        limit: usize,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let mut slow: Vec<EndpointStats> = self
            .performance(range, filter)
            .await?
            .into_values()
            .filter(|e| e.duration_ms.p95 > threshold_ms)
            .collect();
        slow.sort_by(|a, b| b.duration_ms.p95.total_cmp(&a.duration_ms.p95));
        slow.truncate(limit);
        Ok(slow)
    }

    /// Compacts old metrics (minutes into hours, hours into days) and drops days older than
    /// `retention` keeps them. Bounded work per call; the job repeats.
    pub async fn compact(
        &self,
        now: DateTime<Utc>,
        retention: Retention,
    ) -> Result<String, StoreError> {
        let moved = retention
            .compact(now, |from, to, before, limit| {
                self.metrics.compact_requests(from, to, before, limit)
            })
            .await?;
        let purged = self
            .metrics
            .purge_requests(1440, retention.days_from(now))
            .await?;
        // Resource hours are kept as long as hourly request cells.
        let first_hour = (now.timestamp().div_euclid(60) - retention.hours).div_euclid(60);
        let hours = self.metrics.purge_resource_hours(first_hour).await?;
        Ok(format!(
            "{} minute cells → hours, {} hour cells → days, {purged} day cells dropped, \
             {hours} resource hours dropped",
            moved[0], moved[1]
        ))
    }

    /// Adds this server's own reading to its hour, under [`OWN_SERVICE`] and [`own_instance`].
    pub fn note_own_resources(&self, snapshot: &super::system::SystemSnapshot) {
        let at = snapshot.sampled_at.unwrap_or_else(|| self.clock.now());
        self.instances
            .hours
            .add(OWN_SERVICE, own_instance(), &snapshot.sample(), at);
    }

    /// Writes the resource hours read since the last flush; returns how many. A failed write
    /// keeps them for the next one.
    pub async fn flush_resources(&self) -> Result<usize, StoreError> {
        let hours = self.instances.hours.take();
        if hours.is_empty() {
            return Ok(0);
        }
        let n = hours.len();
        if let Err(e) = self.metrics.merge_resource_hours(&hours).await {
            self.instances.hours.put_back(hours);
            return Err(e);
        }
        Ok(n)
    }

    /// Each instance's hours touching `from..to` and the trend of its resources, readings not
    /// yet written included.
    pub async fn resource_history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<super::resources::InstanceHistory>, StoreError> {
        let first = from.timestamp().div_euclid(3600);
        let end = (to.timestamp() + 3599).div_euclid(3600);
        let mut rows = self.metrics.resource_hours(first, end).await?;
        rows.extend(self.instances.hours.within(first, end));
        Ok(super::resources::histories(rows))
    }

    pub async fn close(&self) -> Result<(), StoreError> {
        self.metrics.close_metrics().await
    }
}
