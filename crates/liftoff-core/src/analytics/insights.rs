//! Analytics queries (funnels, retention, active users, paths, milestones, sessions) answered
//! by the columnar engine of `liftoff-analytics` over the stored events.
//!
//! The service keeps the engine's query form, one [`EventTable`] of every event, in memory
//! and nothing else: no encoded parts, no rows. It is built at start from the sealed parts
//! (decoded a few at a time, without their uuids) and the rows not sealed yet; after that a
//! refresh appends the rows stored since the last one ([`EventTable::append`]: the
//! dictionaries extended, each user's rows copied once), which costs a copy of the columns
//! rather than a decode and merge of everything. Sealing changes nothing the table answers,
//! so it costs nothing here. An erasure, a purged day or a part holding rows the table never
//! read makes the next refresh a rebuild (see `sync`).
//!
//! Refreshes run every second in the background while the table is being asked for (see
//! [`IDLE`]) and queries never wait for one, with one exception that keeps small
//! deployments read-your-writes: up to
//! [`READ_YOUR_WRITES_UP_TO`] events, a query after an ingest this process acknowledged
//! waits for the append (milliseconds at that size).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use liftoff_analytics::{DAY_MS, EventRow, EventTable, Segment};

use super::sealed::{self, SegmentMeta};
use super::table_file;
use tokio::sync::Mutex;

use super::ingest::Commits;
use super::{EventStore, StoredEvent};
use crate::store::StoreError;

/// How stale the table may be before a query refreshes it.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Events read from the store per page.
const PAGE: usize = 20_000;

/// Why an analytics query failed.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Engine(String),
    #[error("{0}")]
    Query(#[from] liftoff_analytics::QueryError),
}

/// The analytics questions the API and the dashboard ask, behind one port so a backend that
/// can push them down (ClickHouse's `windowFunnel`, `retention`, `uniqExact`) can answer
/// instead of the in-process engine. [`InsightsService`] answers with `liftoff-analytics`.
#[async_trait::async_trait]
pub trait AnalyticsQueries: Send + Sync {
    /// Every event name stored; empty when there are no events.
    async fn event_names(&self) -> Result<Vec<String>, InsightsError>;
    /// Ordered funnel over the last `days` days, ClickHouse `windowFunnel` semantics.
    async fn funnel(&self, req: &FunnelRequest, now_ms: i64)
    -> Result<FunnelReport, InsightsError>;
    /// Active users now and as DAU/WAU/MAU series over the last 30 days.
    async fn active_users(
        &self,
        minutes: u32,
        now_ms: i64,
    ) -> Result<ActiveUsersReport, InsightsError>;
    /// Distinct users with an event in each of the last `minutes` windows, in order.
    async fn active_user_counts(
        &self,
        minutes: &[u32],
        now_ms: i64,
    ) -> Result<Vec<u64>, InsightsError>;
    /// The most used events of the last `days` days with their distinct users.
    async fn features(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<FeaturesReport, InsightsError>;
    /// First-seen cohorts of the last `days` days and who came back on day N.
    async fn retention(&self, days: f64, now_ms: i64) -> Result<RetentionReport, InsightsError>;
    /// Top transitions and three-step flows within sessions.
    async fn paths(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<PathsReport, InsightsError>;
    /// Each event's first occurrence per user, most reached first.
    async fn milestones(&self, days: f64, now_ms: i64) -> Result<MilestonesReport, InsightsError>;
    async fn new_vs_returning(
        &self,
        days: f64,
        bucket: liftoff_analytics::Bucket,
        now_ms: i64,
    ) -> Result<Vec<NewVsReturningRow>, InsightsError>;
    /// Sessions (explicit ids, else 30 minutes of inactivity) of the last `days` days.
    async fn sessions(&self, days: f64, now_ms: i64) -> Result<SessionsReport, InsightsError>;
    /// One explicit session's events; `None` when no event carries the id.
    async fn session(&self, id: &str) -> Result<Option<SessionReport>, InsightsError>;
    /// Error events of the last `hours` hours.
    async fn errors(&self, hours: f64, now_ms: i64) -> Result<ErrorsReport, InsightsError>;
    /// Exposures to `flag` carried by events in `[from_ms, to_ms)`, per user (experiments).
    async fn flag_exposures(
        &self,
        flag: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<liftoff_analytics::EventExposure>, InsightsError>;
    /// For each `(user, from_ms, to_ms)`: the user's `event`s in it, counted, with the sum
    /// of `property` (experiment metrics).
    async fn user_totals(
        &self,
        event: &str,
        property: Option<&str>,
        windows: Vec<(String, i64, i64)>,
    ) -> Result<Vec<liftoff_analytics::UserTotals>, InsightsError>;
    /// The next answer must reflect the store, however recent the cached state is.
    async fn refresh_soon(&self);
    /// Events changed out of band (an erasure): drop any cached state.
    async fn invalidate(&self);
    /// Brings cached state up to the store now (run in the background every second and at
    /// start); says what it holds. Nothing to do for a backend that caches nothing.
    async fn keep_fresh(&self) -> Result<String, InsightsError> {
        Ok("nothing cached".into())
    }
    /// Keeps cached state for the next start (run at shutdown). Nothing to do for a backend
    /// that caches nothing.
    async fn save(&self) -> Result<(), InsightsError> {
        Ok(())
    }
}

/// What the table was built from, to tell an append from a rebuild.
struct Loaded {
    table: Arc<EventTable>,
    /// `(day, part)` → the highest sequence each sealed part took from the rows.
    parts: BTreeMap<(i64, i64), i64>,
    /// The highest row sequence in the table.
    seq: i64,
    /// Erasures recorded when it was built.
    erasures: usize,
}

/// The table queries use, when the refresh that made it began, and how many ingest batches
/// this process had committed then.
#[derive(Clone)]
struct Current {
    table: Arc<EventTable>,
    as_of: Instant,
    commits: u64,
}

/// Up to this many events, a query waits for the events this process acknowledged since the
/// last refresh (an append of a table this size takes under ~15 ms on 2 cores); above it, a
/// query answers from a table at most [`REFRESH`] old, kept current every second in the
/// background, so queries under heavy ingest never wait for one.
pub const READ_YOUR_WRITES_UP_TO: usize = 2_000_000;

/// How long after the last query the table is still kept current in the background.
pub const IDLE: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct InsightsService {
    store: Arc<dyn EventStore>,
    /// Read by every query without waiting for a refresh in progress.
    current: Arc<std::sync::RwLock<Option<Current>>>,
    /// One refresh at a time; `None` until the first and after an invalidation.
    loaded: Arc<Mutex<Option<Loaded>>>,
    commits: Commits,
    /// When a query last asked for the table.
    asked: Arc<std::sync::Mutex<Option<Instant>>>,
    /// Where the table is kept across a clean restart ([`super::table_file`]).
    file: Option<Arc<std::path::Path>>,
}

fn engine(e: impl std::fmt::Display) -> InsightsError {
    InsightsError::Engine(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> InsightsError {
    InsightsError::Store(StoreError::Corrupt(format!("sealed events: {e}")))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, InsightsError> + Send + 'static,
) -> Result<T, InsightsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(engine)
        .and_then(|r| r)
}

fn part_seqs(index: &[SegmentMeta]) -> BTreeMap<(i64, i64), i64> {
    index.iter().map(|m| ((m.day, m.part), m.max_seq)).collect()
}

/// Sealed parts decoded at once while the table is rebuilt: enough for every core, few
/// enough that their encoded bytes never sit in memory beside the whole table.
const PARTS_AT_ONCE: usize = 4;

impl InsightsService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            current: Arc::new(std::sync::RwLock::new(None)),
            loaded: Arc::new(Mutex::new(None)),
            commits: Commits::default(),
            asked: Arc::new(std::sync::Mutex::new(None)),
            file: None,
        }
    }

    /// Keeps the table in `path` across a clean restart: written by [`Self::save`] at
    /// shutdown, read at the next start instead of a rebuild.
    pub fn with_table_file(self, path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            file: Some(Arc::from(path.into().into_boxed_path())),
            ..self
        }
    }

    /// Writes the table to its file (see [`Self::with_table_file`]) for the next start; run at
    /// shutdown, after the last request. Nothing to do without a file or a table.
    pub async fn save(&self) -> Result<(), InsightsError> {
        let Some(path) = self.file.clone() else {
            return Ok(());
        };
        let loaded = self.loaded.lock().await;
        let Some(state) = loaded.as_ref() else {
            return Ok(());
        };
        let started = Instant::now();
        let (table, parts, seq, erasures) = (
            state.table.clone(),
            state.parts.clone(),
            state.seq,
            state.erasures,
        );
        let events = table.len();
        blocking(move || {
            table_file::save(&path, &table, &parts, seq, erasures)
                .map_err(|e| engine(format!("writing {}: {e}", path.display())))
        })
        .await?;
        tracing::info!(
            events,
            ms = started.elapsed().as_millis() as u64,
            "Analytics table kept for the next start."
        );
        Ok(())
    }

    /// The table the previous run saved, if it left one; read once, whatever comes of it. A
    /// file that cannot be read is logged and the table is built from the store instead.
    async fn restore(&self) -> Option<Loaded> {
        let path = self.file.clone()?;
        let started = Instant::now();
        let shown = path.display().to_string();
        match blocking(move || table_file::take(&path).map_err(engine)).await {
            Ok(Some(state)) => {
                tracing::info!(
                    events = state.table.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "Analytics table read from the last run."
                );
                Some(Loaded {
                    table: Arc::new(state.table),
                    parts: state.parts,
                    seq: state.seq,
                    erasures: state.erasures,
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(path = %shown, error = %e, "The analytics table of the last run cannot be used; building it from the stored events.");
                None
            }
        }
    }

    /// Follows this process's ingest commits (see [`READ_YOUR_WRITES_UP_TO`]).
    pub fn with_commits(self, commits: Commits) -> Self {
        Self { commits, ..self }
    }

    fn fresh(&self) -> Option<Arc<EventTable>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|c| {
                c.as_of.elapsed() < REFRESH
                    && (c.commits == self.commits.count() || c.table.len() > READ_YOUR_WRITES_UP_TO)
            })
            .map(|c| c.table.clone())
    }

    /// The table, refreshed first when its data is older than [`REFRESH`] or misses an event
    /// this process acknowledged (see [`READ_YOUR_WRITES_UP_TO`]). Queries meet a current
    /// table without waiting while [`Self::keep_fresh`] runs in the background.
    pub async fn table(&self) -> Result<Arc<EventTable>, InsightsError> {
        *self.asked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if let Some(table) = self.fresh() {
            return Ok(table);
        }
        let mut loaded = self.loaded.lock().await;
        // Another query may have refreshed while this one waited.
        if let Some(table) = self.fresh() {
            return Ok(table);
        }
        self.refresh(&mut loaded).await
    }

    /// Refreshes now (an append of the new rows, usually milliseconds): run every second in
    /// the background so queries under ingest never wait for one, and at start so the first
    /// query finds the table built. While nobody has asked for [`IDLE`], a table already built
    /// is left as it is (`None`): ingest then costs no appends, and the next query brings it
    /// up to date itself.
    pub async fn keep_fresh(&self) -> Result<Option<Arc<EventTable>>, InsightsError> {
        let idle = self
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() > IDLE);
        let mut loaded = self.loaded.lock().await;
        if idle && loaded.is_some() {
            return Ok(None);
        }
        self.refresh(&mut loaded).await.map(Some)
    }

    async fn refresh(&self, loaded: &mut Option<Loaded>) -> Result<Arc<EventTable>, InsightsError> {
        let started = Instant::now();
        let commits = self.commits.count();
        let result = self.sync(loaded).await;
        match result {
            Ok(table) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Current {
                    table: table.clone(),
                    as_of: started,
                    commits,
                });
                Ok(table)
            }
            Err(e) => {
                // Whatever was half-applied, start over on the next refresh.
                *loaded = None;
                Err(e)
            }
        }
    }

    /// Brings `loaded` up to the store. Events only ever arrive, so the usual refresh appends
    /// the rows stored since the last one. Sealing moves rows the table already holds into a
    /// part and changes nothing it answers. The table is rebuilt from every part at start,
    /// after an erasure, when a part is gone (retention dropped a day), and when a new part
    /// may hold rows this table never read.
    ///
    /// Why a new part whose rows all have sequences up to the previous refresh's is already
    /// held: the index is read *after* the rows, so such a part was committed after the
    /// previous refresh read the rows, and those rows (committed in sequence order) were
    /// still there to be read.
    ///
    /// A table read back from the last run goes through the same checks, and one more: it
    /// must hold no more events than the store. A store rolled back while Liftoff was stopped
    /// (rows that are gone, with no part missing) fails it and is rebuilt.
    async fn sync(&self, loaded: &mut Option<Loaded>) -> Result<Arc<EventTable>, InsightsError> {
        let erasures = self.store.erased_users().await?.len();
        let restored = match loaded {
            Some(_) => false,
            None => {
                *loaded = self.restore().await;
                loaded.is_some()
            }
        };
        if let Some(mut state) = loaded.take().filter(|l| l.erasures == erasures) {
            let before = state.seq;
            let rows = self.rows_after(&mut state.seq).await?;
            let parts = part_seqs(&self.store.segment_index().await?);
            let held = state.parts.keys().all(|k| parts.contains_key(k))
                && parts
                    .iter()
                    .all(|(k, &max_seq)| state.parts.contains_key(k) || max_seq <= before);
            if held {
                state.parts = parts;
                if !rows.is_empty() {
                    let base = state.table.clone();
                    state.table = blocking(move || {
                        let rows: Vec<EventRow> =
                            rows.into_iter().map(|e| sealed::row(e.event)).collect();
                        let segment = Segment::build(&rows).map_err(engine)?;
                        base.append(&segment).map(Arc::new).map_err(engine)
                    })
                    .await?;
                }
                let stored = if restored {
                    self.store.event_count().await?
                } else {
                    u64::MAX
                };
                if state.table.len() as u64 <= stored {
                    let table = state.table.clone();
                    *loaded = Some(state);
                    return Ok(table);
                }
                tracing::warn!(
                    table = state.table.len(),
                    stored,
                    "The analytics table of the last run holds events the store does not; building it from the stored events."
                );
            }
        }
        let state = self.rebuild(erasures).await?;
        let table = state.table.clone();
        *loaded = Some(state);
        Ok(table)
    }

    /// The table from every sealed part (decoded a few at a time) and every row. Rows first,
    /// then the index (see [`Self::sync`]); a row a part read in between also took is dropped.
    async fn rebuild(&self, erasures: usize) -> Result<Loaded, InsightsError> {
        let started = Instant::now();
        let mut seq = 0;
        let rows = self.rows_after(&mut seq).await?;
        let index = self.store.segment_index().await?;
        let mut segments = Vec::with_capacity(index.len() + 1);
        let mut loaded_parts = Vec::with_capacity(index.len());
        // Each batch is read on several connections at once while the previous one decodes.
        let mut decoding: Option<tokio::task::JoinHandle<Result<Vec<Segment>, InsightsError>>> =
            None;
        for batch in index.chunks(PARTS_AT_ONCE) {
            let mut reads = tokio::task::JoinSet::new();
            for (i, meta) in batch.iter().enumerate() {
                let (store, meta) = (self.store.clone(), meta.clone());
                reads
                    .spawn(async move { (i, store.load_segment(meta.day, meta.part).await, meta) });
            }
            let mut read = Vec::with_capacity(batch.len());
            while let Some(done) = reads.join_next().await {
                let (i, bytes, meta) = done.map_err(engine)?;
                // `None`: purged since the index was read.
                if let Some(bytes) = bytes? {
                    read.push((i, bytes, meta));
                }
            }
            read.sort_unstable_by_key(|(i, _, _)| *i);
            let blobs: Vec<Vec<u8>> = read
                .into_iter()
                .map(|(_, bytes, meta)| {
                    loaded_parts.push(meta);
                    bytes
                })
                .collect();
            if let Some(previous) = decoding.take() {
                segments.extend(previous.await.map_err(engine)??);
            }
            decoding = Some(tokio::task::spawn_blocking(move || {
                Segment::decode_many(&blobs)
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(corrupt)
            }));
        }
        if let Some(last) = decoding {
            segments.extend(last.await.map_err(engine)??);
        }
        let loaded_at = started.elapsed();
        let parts = part_seqs(&loaded_parts);
        let table = blocking(move || {
            let sealed_up_to: BTreeMap<i64, i64> =
                loaded_parts.iter().fold(BTreeMap::new(), |mut m, p| {
                    let s = m.entry(p.day).or_insert(i64::MIN);
                    *s = (*s).max(p.max_seq);
                    m
                });
            let rows: Vec<EventRow> = rows
                .into_iter()
                .filter(|e| {
                    sealed_up_to
                        .get(&sealed::day_of(e.event.ts_ms))
                        .is_none_or(|&max| e.seq > max)
                })
                .map(|e| sealed::row(e.event))
                .collect();
            if !rows.is_empty() {
                segments.push(Segment::build(&rows).map_err(engine)?);
            }
            EventTable::from_segments(&segments).map_err(engine)
        })
        .await?;
        tracing::info!(
            events = table.len(),
            parts = parts.len(),
            ms = started.elapsed().as_millis() as u64,
            read_and_decode_ms = loaded_at.as_millis() as u64,
            "Analytics table built."
        );
        Ok(Loaded {
            table: Arc::new(table),
            parts,
            seq,
            erasures,
        })
    }

    /// The rows stored after `seq`, in sequence order; `seq` moves to the last one read.
    async fn rows_after(&self, seq: &mut i64) -> Result<Vec<StoredEvent>, InsightsError> {
        let mut rows = Vec::new();
        loop {
            let page = self
                .store
                .events_between(i64::MIN, i64::MAX, PAGE, *seq)
                .await?;
            let Some(last) = page.last() else { break };
            *seq = last.seq;
            let full = page.len() == PAGE;
            rows.extend(page);
            if !full {
                break;
            }
        }
        Ok(rows)
    }

    /// Makes the next query refresh, however recent the table is.
    pub async fn refresh_soon(&self) {
        if let Some(c) = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            c.as_of = Instant::now() - REFRESH;
        }
    }

    /// Drops the cached table so the next query rebuilds it (after an erasure).
    pub async fn invalidate(&self) {
        *self.loaded.lock().await = None;
        self.refresh_soon().await;
    }
}

/// The span of experiment windows: from the earliest start to the latest end.
fn user_windows_span(windows: &[(String, i64, i64)]) -> Span {
    let from = windows.iter().map(|w| w.1).min().unwrap_or(0);
    let to = windows.iter().map(|w| w.2).max().unwrap_or(0);
    Span::window(from, to)
}

/// A funnel's range, with the properties a breakdown reads.
fn funnel_span(req: &FunnelRequest, now_ms: i64) -> Span {
    let span = Span::range(last_days(now_ms, req.days()));
    if req.breakdown.is_some() {
        span.with_properties()
    } else {
        span
    }
}

/// Retention's range widened to whole UTC days, with each user's history (cohorts are by the
/// first event ever).
fn retention_span(now_ms: i64, days: f64) -> Span {
    let (from_ms, to_ms) = retention_days(now_ms, days);
    Span::window(from_ms, to_ms).with_history()
}

/// The last `minutes` and the 30 UTC days the active-user series cover.
fn active_users_span(minutes: u32, now_ms: i64) -> Span {
    let w = ActiveWindows::at(minutes, now_ms);
    Span::window(w.month.0.min(w.recent.0), w.month.1.max(w.recent.1))
}

/// `[now - days, now)` in engine terms.
pub fn last_days(now_ms: i64, days: f64) -> liftoff_analytics::TimeRange {
    liftoff_analytics::TimeRange::new(now_ms - (days * DAY_MS as f64) as i64, now_ms)
}

/// `part / whole` as a fraction 0–1 (the API's one unit for rates), to 4 decimals; 0 for
/// nothing of nothing.
fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round4(part as f64 / whole as f64)
    }
}

/// Four decimals: a rate keeps a hundredth of a percent, as the seed's figures do.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn date(ms: i64) -> String {
    super::ingest::time(ms).format("%Y-%m-%d").to_string()
}

/// `POST /api/analytics/funnel`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, utoipa::ToSchema)]
pub struct FunnelRequest {
    /// Event names in order (at least 2, at most 32).
    #[schema(schema_with = funnel_steps_schema)]
    pub funnel_steps: Vec<String>,
    /// Events of the last `days` days count (default 30).
    #[schema(exclusive_minimum = 0, maximum = 3650)]
    pub days: Option<f64>,
    /// Time from the first step to the last (default 14 days).
    pub conversion_window_days: Option<f64>,
    /// A property of the first step's event to break the funnel down by.
    pub breakdown: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FunnelStep {
    /// 1-based.
    pub step: usize,
    pub event_type: String,
    pub users: u64,
    /// Fraction (0–1) of the previous step's users who reached this step; 1 for step 1.
    pub conversion_rate: f64,
    /// Fraction (0–1) of the previous step's users who did not.
    pub dropoff_rate: f64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FunnelBreakdownReport {
    /// The property's value on the first step's event; `null` when it was absent.
    pub value: Option<String>,
    pub analysis: Vec<FunnelStep>,
    /// Fraction (0–1) of the value's first-step users who reached the last step.
    pub overall_conversion: f64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FunnelReport {
    pub funnel_steps: Vec<String>,
    pub time_window_days: f64,
    pub conversion_window_days: f64,
    pub analysis: Vec<FunnelStep>,
    /// Fraction (0–1) of the first step's users who reached the last.
    pub overall_conversion: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<FunnelBreakdownReport>>,
}

impl FunnelRequest {
    /// Events of the last this many days count.
    pub fn days(&self) -> f64 {
        self.days.unwrap_or(30.0)
    }

    /// How long after the first step the last may come.
    pub fn window_days(&self) -> f64 {
        self.conversion_window_days.unwrap_or(14.0)
    }

    /// [`Self::window_days`] in milliseconds, as every backend measures it.
    pub fn window_ms(&self) -> i64 {
        (self.window_days() * DAY_MS as f64) as i64
    }
}

impl FunnelReport {
    /// The report for `users[k]` users reaching step k + 1 (no breakdown).
    pub fn of(req: &FunnelRequest, users: &[u64]) -> Self {
        let (analysis, overall_conversion) = analysis(&req.funnel_steps, users);
        FunnelReport {
            funnel_steps: req.funnel_steps.clone(),
            time_window_days: req.days(),
            conversion_window_days: req.window_days(),
            analysis,
            overall_conversion,
            breakdown: None,
        }
    }
}

fn analysis(steps: &[String], users: &[u64]) -> (Vec<FunnelStep>, f64) {
    let rows = steps
        .iter()
        .zip(users)
        .enumerate()
        .map(|(i, (name, &n))| {
            let previous = if i == 0 { n } else { users[i - 1] };
            let conversion = if i == 0 { 1.0 } else { fraction(n, previous) };
            FunnelStep {
                step: i + 1,
                event_type: name.clone(),
                users: n,
                conversion_rate: conversion,
                dropoff_rate: if previous == 0 {
                    0.0
                } else {
                    round4(1.0 - conversion)
                },
            }
        })
        .collect();
    let overall = match (users.first(), users.last()) {
        (Some(&first), Some(&last)) => fraction(last, first),
        _ => 0.0,
    };
    (rows, overall)
}

/// `GET /api/analytics/active-users`.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ActiveUsersReport {
    /// Distinct users with an event in the last `time_window_minutes` minutes.
    pub active_users: u64,
    /// Sessions (explicit ids, else 30 minutes of inactivity) with an event in that window.
    pub active_sessions: u64,
    pub time_window_minutes: u32,
    /// The same as `time_window_minutes`.
    pub minutes: u32,
    /// When the figures were taken.
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// Distinct users today (UTC), in the last 7 and the last 30 days.
    pub dau: u64,
    pub wau: u64,
    pub mau: u64,
    /// Average DAU over the last 30 days divided by MAU (0–1).
    pub stickiness: f64,
    pub daily: Vec<DatedCount>,
    pub weekly: Vec<DatedCount>,
    pub monthly: Vec<DatedCount>,
}

/// The windows of an active-users report, `[from, to)` in Unix ms.
#[derive(Clone, Copy, Debug)]
pub struct ActiveWindows {
    /// The last `minutes`, now included.
    pub recent: (i64, i64),
    /// Today (UTC).
    pub today: (i64, i64),
    /// The last 7 UTC days, today included.
    pub week: (i64, i64),
    /// The last 30 UTC days, today included: what the series cover.
    pub month: (i64, i64),
}

impl ActiveWindows {
    pub fn at(minutes: u32, now_ms: i64) -> Self {
        let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
        Self {
            recent: (now_ms - i64::from(minutes) * 60_000, now_ms + 1),
            today: (today, today + DAY_MS),
            week: (today - 6 * DAY_MS, today + DAY_MS),
            month: (today - 29 * DAY_MS, today + DAY_MS),
        }
    }
}

/// The counts an active-users report is made of, however they were counted. The series list
/// every bucket from the first to the last one holding data within the month (the engine's
/// `EventTable::active_users`).
#[derive(Clone, Debug)]
pub struct ActiveCounts {
    pub recent_users: u64,
    pub recent_sessions: u64,
    pub dau: u64,
    pub wau: u64,
    pub mau: u64,
    pub daily: Vec<liftoff_analytics::BucketCount>,
    pub weekly: Vec<liftoff_analytics::BucketCount>,
    pub monthly: Vec<liftoff_analytics::BucketCount>,
}

impl ActiveUsersReport {
    pub fn of(minutes: u32, now_ms: i64, c: ActiveCounts) -> Self {
        let w = ActiveWindows::at(minutes, now_ms);
        // Mean daily active users over the month's days with data, over the month's users.
        let stickiness = if c.daily.is_empty() || c.mau == 0 {
            0.0
        } else {
            c.daily.iter().map(|b| b.users as f64).sum::<f64>()
                / c.daily.len() as f64
                / c.mau as f64
        };
        let dated = |v: &[liftoff_analytics::BucketCount]| {
            v.iter()
                .map(|b| DatedCount {
                    date: date(b.start_ms),
                    users: b.users,
                })
                .collect::<Vec<_>>()
        };
        // Every day of the month, zero where nobody was active, so charts have no gaps.
        let seen: BTreeMap<i64, u64> = c.daily.iter().map(|b| (b.start_ms, b.users)).collect();
        let daily = (0..30)
            .map(|d| {
                let start = w.month.0 + d * DAY_MS;
                DatedCount {
                    date: date(start),
                    users: seen.get(&start).copied().unwrap_or(0),
                }
            })
            .collect();
        Self {
            active_users: c.recent_users,
            active_sessions: c.recent_sessions,
            time_window_minutes: minutes,
            minutes,
            timestamp: super::ingest::time(now_ms),
            dau: c.dau,
            wau: c.wau,
            mau: c.mau,
            stickiness,
            daily,
            weekly: dated(&c.weekly),
            monthly: dated(&c.monthly),
        }
    }
}

/// The windows active users are counted over in the monitoring dashboard and in
/// `liftoff_active_users{window}`: label and minutes.
pub const ACTIVE_USER_WINDOWS: [(&str, u32); 3] = [("5m", 5), ("1h", 60), ("24h", 1440)];

/// Distinct users with an event in the last 5 minutes, hour and day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ActiveUserCounts {
    #[serde(rename = "5m")]
    pub last_5m: u64,
    #[serde(rename = "1h")]
    pub last_1h: u64,
    #[serde(rename = "24h")]
    pub last_24h: u64,
}

impl ActiveUserCounts {
    /// The counts of [`ACTIVE_USER_WINDOWS`] at `now_ms`.
    pub async fn at(q: &dyn AnalyticsQueries, now_ms: i64) -> Result<Self, InsightsError> {
        let minutes = ACTIVE_USER_WINDOWS.map(|(_, m)| m);
        match q.active_user_counts(&minutes, now_ms).await?[..] {
            [last_5m, last_1h, last_24h] => Ok(Self {
                last_5m,
                last_1h,
                last_24h,
            }),
            _ => Err(engine("one count per window was expected")),
        }
    }

    /// `(label, users)` in the order of [`ACTIVE_USER_WINDOWS`].
    pub fn by_window(&self) -> [(&'static str, u64); 3] {
        let [(a, _), (b, _), (c, _)] = ACTIVE_USER_WINDOWS;
        [(a, self.last_5m), (b, self.last_1h), (c, self.last_24h)]
    }
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DatedCount {
    /// First day of the bucket, `YYYY-MM-DD` (UTC).
    pub date: String,
    pub users: u64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FeatureUsage {
    /// The event name.
    pub feature: String,
    pub usage_count: u64,
    pub unique_users: u64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FeaturesReport {
    pub days: f64,
    pub features: Vec<FeatureUsage>,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CohortRow {
    /// The day these users were first seen, `YYYY-MM-DD`.
    pub cohort_date: String,
    pub size: u64,
    /// Fraction (0–1) of the cohort active on day 0, 1, 2, … after first seen.
    pub retention: Vec<f64>,
}

/// `POST /api/analytics/retention`.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RetentionRequest {
    /// Cohorts of the last `days` days (default 30).
    #[schema(exclusive_minimum = 0, maximum = 3650)]
    pub days: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    pub days: f64,
    /// Fraction (0–1) of users active on day N after first seen, over cohorts old enough to
    /// tell; `null` when none is.
    pub d1: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
    pub cohorts: Vec<CohortRow>,
}

impl RetentionReport {
    /// The report of the engine's cohorts over the last `days` days.
    pub fn of(days: f64, r: &liftoff_analytics::Retention) -> Self {
        let cohorts = r
            .cohorts
            .iter()
            .map(|c| CohortRow {
                cohort_date: date(c.day_ms),
                size: c.size,
                retention: c.active.iter().map(|a| fraction(*a, c.size)).collect(),
            })
            .collect();
        let day = |k| r.day_pct(k).map(|p| round4(p / 100.0));
        Self {
            days,
            d1: day(1),
            d7: day(7),
            d30: day(30),
            cohorts,
        }
    }
}

/// Retention's range: the last `days` days widened to whole UTC days (`[from, to)`).
pub fn retention_days(now_ms: i64, days: f64) -> (i64, i64) {
    let r = last_days(now_ms, days);
    (
        r.from_ms.div_euclid(DAY_MS) * DAY_MS,
        (r.to_ms - 1).div_euclid(DAY_MS) * DAY_MS + DAY_MS,
    )
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MilestoneRow {
    pub event: String,
    /// Users whose first event of this name falls in the window.
    pub users: u64,
    /// Fraction (0–1) of the window's users.
    pub share: f64,
    pub avg_hours_after_first_seen: f64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MilestonesReport {
    pub days: f64,
    pub total_users: u64,
    pub milestones: Vec<MilestoneRow>,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NewVsReturningRow {
    pub date: String,
    pub new: u64,
    pub returning: u64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionsReport {
    pub days: f64,
    pub sessions: u64,
    pub avg_duration_seconds: f64,
    /// Fraction (0–1) of sessions with one event.
    pub bounce_rate: f64,
    /// Users with an event in the window.
    pub users: u64,
    /// Users with more than 30 minutes of sessions a week (their time over the window's
    /// weeks; a window under a week counts as one).
    pub engaged_users: u64,
    /// Users with more than 2 hours of sessions a week.
    pub power_users: u64,
}

impl SessionsReport {
    pub fn of(days: f64, s: &liftoff_analytics::SessionStats) -> Self {
        Self {
            days,
            sessions: s.sessions,
            avg_duration_seconds: (s.avg_duration_ms() / 10.0).round() / 100.0,
            bounce_rate: fraction(s.bounces, s.sessions),
            users: s.users,
            engaged_users: s.engaged_users,
            power_users: s.power_users,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionEvent {
    pub event: String,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
}

/// `GET /api/analytics/session/{id}` for a known id.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionReport {
    /// Always `true` here; an unknown id answers [`SessionNotFound`].
    pub found: bool,
    pub session_id: String,
    /// The user of the session's first event.
    pub user_id: String,
    /// The first event's time.
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// The last event's time.
    pub last_activity: chrono::DateTime<chrono::Utc>,
    /// Events per name.
    pub event_types: BTreeMap<String, u64>,
    /// The same as `start_time`.
    pub start: chrono::DateTime<chrono::Utc>,
    /// The same as `last_activity`.
    pub end: chrono::DateTime<chrono::Utc>,
    pub duration_seconds: f64,
    pub event_count: usize,
    /// Oldest first.
    pub events: Vec<SessionEvent>,
}

/// `GET /api/analytics/session/{id}` for an id no event carries.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionNotFound {
    /// Always `false`.
    pub found: bool,
}

/// A session lookup: the session, or `{"found": false}`.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SessionLookup {
    Found(SessionReport),
    NotFound(SessionNotFound),
}

impl From<Option<SessionReport>> for SessionLookup {
    fn from(s: Option<SessionReport>) -> Self {
        match s {
            Some(s) => Self::Found(s),
            None => Self::NotFound(SessionNotFound { found: false }),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TransitionRow {
    pub from: String,
    pub to: String,
    /// Times `to` directly followed `from` in a session.
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FlowRow {
    /// Three events in a row within a session.
    pub steps: Vec<String>,
    pub count: u64,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PathsReport {
    pub days: f64,
    /// Most frequent first.
    pub transitions: Vec<TransitionRow>,
    pub flows: Vec<FlowRow>,
}

fn properties(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// The events a question needs: those with `from_ms <= ts < to_ms`, and with `history` also
/// each user's first event of every name before `from_ms` (what first-seen questions need:
/// retention, new vs returning, milestones). Without `properties` a source may leave every
/// event's properties empty (`{}`): most questions never read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
    pub history: bool,
    pub properties: bool,
}

impl Span {
    /// Every event.
    pub const ALL: Span = Span {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        history: true,
        properties: true,
    };

    pub fn window(from_ms: i64, to_ms: i64) -> Self {
        Self {
            from_ms,
            to_ms,
            history: false,
            properties: false,
        }
    }

    /// The same span, each user's first event of every name before it included.
    pub fn with_history(self) -> Self {
        Self {
            history: true,
            ..self
        }
    }

    /// The same span, events' properties included.
    pub fn with_properties(self) -> Self {
        Self {
            properties: true,
            ..self
        }
    }

    fn range(r: liftoff_analytics::TimeRange) -> Self {
        Self::window(r.from_ms, r.to_ms)
    }
}

/// Where the in-process engine finds the events a question needs. [`InsightsService`] keeps
/// every event in one cached table; a backend that stores events elsewhere (ClickHouse)
/// builds a table of the span each question asks for. Every question is answered from such a
/// table the same way, so the answers agree whichever source built it.
#[async_trait::async_trait]
pub trait EventTables: Send + Sync {
    /// A table holding at least the events `span` names (a cache may hold more).
    async fn table_for(&self, span: Span) -> Result<Arc<EventTable>, InsightsError>;
    /// The store the events are kept in.
    fn event_store(&self) -> &dyn EventStore;
    /// The next table must reflect the store, however recent a cached one is.
    async fn refresh_tables_soon(&self);
    /// Events changed out of band (an erasure): drop any cached table.
    async fn drop_tables(&self);
    /// See [`AnalyticsQueries::keep_fresh`].
    async fn keep_tables_fresh(&self) -> Result<String, InsightsError> {
        Ok("nothing cached".into())
    }
    /// See [`AnalyticsQueries::save`].
    async fn save_tables(&self) -> Result<(), InsightsError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventTables for InsightsService {
    async fn table_for(&self, _span: Span) -> Result<Arc<EventTable>, InsightsError> {
        self.table().await
    }

    fn event_store(&self) -> &dyn EventStore {
        &*self.store
    }

    async fn refresh_tables_soon(&self) {
        InsightsService::refresh_soon(self).await;
    }

    async fn drop_tables(&self) {
        InsightsService::invalidate(self).await;
    }

    async fn save_tables(&self) -> Result<(), InsightsError> {
        InsightsService::save(self).await
    }

    async fn keep_tables_fresh(&self) -> Result<String, InsightsError> {
        Ok(match self.keep_fresh().await? {
            Some(table) => format!(
                "{} events in memory ({} MiB)",
                table.len(),
                table.heap_bytes() >> 20
            ),
            None => "no query for 5 minutes: left until the next".into(),
        })
    }
}

#[async_trait::async_trait]
impl<T: EventTables> AnalyticsQueries for T {
    async fn event_names(&self) -> Result<Vec<String>, InsightsError> {
        Ok(self
            .table_for(Span::ALL)
            .await?
            .event_names()
            .map(str::to_owned)
            .collect())
    }

    async fn refresh_soon(&self) {
        self.refresh_tables_soon().await;
    }

    async fn keep_fresh(&self) -> Result<String, InsightsError> {
        self.keep_tables_fresh().await
    }

    async fn save(&self) -> Result<(), InsightsError> {
        self.save_tables().await
    }

    async fn flag_exposures(
        &self,
        flag: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<liftoff_analytics::EventExposure>, InsightsError> {
        let table = self
            .table_for(Span::window(from_ms, to_ms).with_properties())
            .await?;
        let flag = flag.to_owned();
        blocking(move || Ok(table.flag_exposures(&flag, from_ms, to_ms))).await
    }

    async fn user_totals(
        &self,
        event: &str,
        property: Option<&str>,
        windows: Vec<(String, i64, i64)>,
    ) -> Result<Vec<liftoff_analytics::UserTotals>, InsightsError> {
        let table = self
            .table_for(user_windows_span(&windows).with_properties())
            .await?;
        let (event, property) = (event.to_owned(), property.map(str::to_owned));
        blocking(move || {
            let windows: Vec<liftoff_analytics::UserWindow<'_>> = windows
                .iter()
                .map(|(user, from_ms, to_ms)| liftoff_analytics::UserWindow {
                    user,
                    from_ms: *from_ms,
                    to_ms: *to_ms,
                })
                .collect();
            Ok(table.user_totals(&event, property.as_deref(), &windows))
        })
        .await
    }

    async fn invalidate(&self) {
        self.drop_tables().await;
    }

    /// Ordered funnel over the last `days` days, ClickHouse `windowFunnel` semantics.
    async fn funnel(
        &self,
        req: &FunnelRequest,
        now_ms: i64,
    ) -> Result<FunnelReport, InsightsError> {
        let table = self.table_for(funnel_span(req, now_ms)).await?;
        let steps: Vec<liftoff_analytics::EventFilter> = req
            .funnel_steps
            .iter()
            .map(|s| liftoff_analytics::EventFilter::event(s))
            .collect();
        let result = table.funnel(
            &steps,
            req.window_ms(),
            last_days(now_ms, req.days()),
            req.breakdown.as_deref(),
        )?;
        let mut report = FunnelReport::of(req, &result.users);
        report.breakdown = req.breakdown.as_ref().map(|_| {
            result
                .breakdown
                .iter()
                .map(|b| {
                    let (analysis, overall_conversion) = analysis(&req.funnel_steps, &b.users);
                    FunnelBreakdownReport {
                        value: b.value.clone(),
                        analysis,
                        overall_conversion,
                    }
                })
                .collect()
        });
        Ok(report)
    }

    /// Active users now and as DAU/WAU/MAU series over the last 30 days.
    async fn active_users(
        &self,
        minutes: u32,
        now_ms: i64,
    ) -> Result<ActiveUsersReport, InsightsError> {
        use liftoff_analytics::{Bucket, TimeRange};
        let table = self.table_for(active_users_span(minutes, now_ms)).await?;
        let w = ActiveWindows::at(minutes, now_ms);
        let recent = TimeRange::new(w.recent.0, w.recent.1);
        let distinct = |(from, to): (i64, i64)| table.distinct_users(TimeRange::new(from, to));
        let series = |bucket| table.active_users(TimeRange::new(w.month.0, w.month.1), bucket);
        Ok(ActiveUsersReport::of(
            minutes,
            now_ms,
            ActiveCounts {
                recent_users: distinct(w.recent),
                recent_sessions: table
                    .sessions(recent, liftoff_analytics::DEFAULT_SESSION_GAP_MS)
                    .sessions,
                dau: distinct(w.today),
                wau: distinct(w.week),
                mau: distinct(w.month),
                daily: series(Bucket::Day),
                weekly: series(Bucket::Week),
                monthly: series(Bucket::Month),
            },
        ))
    }

    async fn active_user_counts(
        &self,
        minutes: &[u32],
        now_ms: i64,
    ) -> Result<Vec<u64>, InsightsError> {
        let table = self
            .table_for(Span::window(
                now_ms - i64::from(minutes.iter().copied().max().unwrap_or(0)) * 60_000,
                now_ms + 1,
            ))
            .await?;
        Ok(minutes
            .iter()
            .map(|&m| {
                table.distinct_users(liftoff_analytics::TimeRange::new(
                    now_ms - i64::from(m) * 60_000,
                    now_ms + 1,
                ))
            })
            .collect())
    }

    /// The most used events (features) of the last `days` days with their distinct users.
    async fn features(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<FeaturesReport, InsightsError> {
        let table = self.table_for(Span::range(last_days(now_ms, days))).await?;
        let range = last_days(now_ms, days);
        let mut features = Vec::new();
        for top in table.top_events(range, limit) {
            let users = table
                .funnel(
                    &[liftoff_analytics::EventFilter::event(&top.event)],
                    0,
                    range,
                    None,
                )?
                .users
                .first()
                .copied()
                .unwrap_or(0);
            features.push(FeatureUsage {
                feature: top.event,
                usage_count: top.count,
                unique_users: users,
            });
        }
        Ok(FeaturesReport { days, features })
    }

    /// First-seen cohorts of the last `days` days and who came back on day N.
    async fn retention(&self, days: f64, now_ms: i64) -> Result<RetentionReport, InsightsError> {
        let table = self.table_for(retention_span(now_ms, days)).await?;
        Ok(RetentionReport::of(
            days,
            &table.retention(last_days(now_ms, days)),
        ))
    }

    /// Top transitions and three-step flows within sessions.
    async fn paths(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<PathsReport, InsightsError> {
        let table = self.table_for(Span::range(last_days(now_ms, days))).await?;
        let p = table.paths(
            last_days(now_ms, days),
            liftoff_analytics::DEFAULT_SESSION_GAP_MS,
            limit,
        );
        Ok(PathsReport {
            days,
            transitions: p
                .transitions
                .into_iter()
                .map(|t| TransitionRow {
                    from: t.from,
                    to: t.to,
                    count: t.count,
                })
                .collect(),
            flows: p
                .flows
                .into_iter()
                .map(|f| FlowRow {
                    steps: f.steps.to_vec(),
                    count: f.count,
                })
                .collect(),
        })
    }

    /// The user journey: each event's first occurrence per user, most reached first.
    async fn milestones(&self, days: f64, now_ms: i64) -> Result<MilestonesReport, InsightsError> {
        let table = self
            .table_for(Span::range(last_days(now_ms, days)).with_history())
            .await?;
        let range = last_days(now_ms, days);
        let total = table.distinct_users(range);
        let milestones = table
            .milestones(range)
            .into_iter()
            .map(|m| MilestoneRow {
                share: fraction(m.users, total),
                avg_hours_after_first_seen: (m.avg_ms_after_first_seen / 36_000.0).round() / 100.0,
                event: m.event,
                users: m.users,
            })
            .collect();
        Ok(MilestonesReport {
            days,
            total_users: total,
            milestones,
        })
    }

    async fn new_vs_returning(
        &self,
        days: f64,
        bucket: liftoff_analytics::Bucket,
        now_ms: i64,
    ) -> Result<Vec<NewVsReturningRow>, InsightsError> {
        let table = self
            .table_for(Span::range(last_days(now_ms, days)).with_history())
            .await?;
        Ok(table
            .new_vs_returning(last_days(now_ms, days), bucket)
            .into_iter()
            .map(|b| NewVsReturningRow {
                date: date(b.start_ms),
                new: b.new,
                returning: b.returning,
            })
            .collect())
    }

    /// Sessions (explicit ids, else 30 minutes of inactivity) of the last `days` days.
    async fn sessions(&self, days: f64, now_ms: i64) -> Result<SessionsReport, InsightsError> {
        let table = self.table_for(Span::range(last_days(now_ms, days))).await?;
        Ok(SessionsReport::of(
            days,
            &table.sessions(
                last_days(now_ms, days),
                liftoff_analytics::DEFAULT_SESSION_GAP_MS,
            ),
        ))
    }

    /// One explicit session's events; `None` when no event carries the id.
    async fn session(&self, id: &str) -> Result<Option<SessionReport>, InsightsError> {
        Ok(session_report(&*self.table_for(Span::ALL).await?, id))
    }
    /// Error events of the last `hours` hours, from the stored events.
    async fn errors(&self, hours: f64, now_ms: i64) -> Result<ErrorsReport, InsightsError> {
        const MAX_READ: usize = 200_000;
        let from = now_ms - (hours * 3_600_000.0) as i64;
        // Finished days are sealed: their error events come from the segments, the rest from
        // the rows.
        let mut found = sealed::sealed_events(self.event_store(), from, now_ms + 1, |e| {
            is_error_event(&e.event)
        })
        .await?;
        let (mut read, mut after, mut truncated) = (0usize, 0i64, false);
        loop {
            let page = self
                .event_store()
                .events_between(from, now_ms + 1, PAGE, after)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            read += page.len();
            let full = page.len() == PAGE;
            found.extend(
                page.into_iter()
                    .map(|s| s.event)
                    .filter(|e| is_error_event(&e.event)),
            );
            if !full {
                break;
            }
            if read >= MAX_READ {
                truncated = true;
                break;
            }
        }
        let total = found.len() as u64;
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_event: BTreeMap<String, u64> = BTreeMap::new();
        let mut users = BTreeSet::new();
        let mut recent = Vec::with_capacity(found.len());
        for e in found {
            let props = properties(&e.properties);
            let error_type = text_field(&props, &["error_type", "$exception_type", "type"]);
            *by_type
                .entry(error_type.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
            *by_event.entry(e.event.clone()).or_default() += 1;
            users.insert(e.user.clone());
            recent.push(ErrorEvent {
                timestamp: super::ingest::time(e.ts_ms),
                message: text_field(&props, &["message", "$exception_message", "error"]),
                error_type,
                event: e.event,
                user_id: e.user,
            });
        }
        recent.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        recent.truncate(50);
        Ok(ErrorsReport {
            time_window_hours: hours,
            total_errors: total,
            unique_users_affected: users.len() as u64,
            error_types: by_type.clone(),
            recent_errors: recent.clone(),
            hours,
            affected_users: users.len() as u64,
            by_type,
            by_event,
            recent,
            truncated,
        })
    }
}

/// One explicit session from a table holding its events; `None` when no event carries the id.
pub fn session_report(table: &EventTable, id: &str) -> Option<SessionReport> {
    let mut events = table.session_events_by_user(id);
    // The engine lists them user by user; a session shared by several users reads in time.
    events.sort_by_key(|(_, e)| e.ts_ms);
    let (Some((user, first)), Some((_, last))) = (events.first(), events.last()) else {
        return None;
    };
    let mut event_types: BTreeMap<String, u64> = BTreeMap::new();
    for (_, e) in &events {
        *event_types.entry(e.event.to_owned()).or_default() += 1;
    }
    let (start, end) = (
        super::ingest::time(first.ts_ms),
        super::ingest::time(last.ts_ms),
    );
    Some(SessionReport {
        found: true,
        session_id: id.to_owned(),
        user_id: (*user).to_owned(),
        start_time: start,
        last_activity: end,
        event_types,
        start,
        end,
        duration_seconds: (last.ts_ms - first.ts_ms) as f64 / 1000.0,
        event_count: events.len(),
        events: events
            .iter()
            .map(|(_, e)| SessionEvent {
                event: e.event.to_owned(),
                timestamp: super::ingest::time(e.ts_ms),
                properties: properties(e.properties),
            })
            .collect(),
    })
}

/// Event names that record an error: PostHog's `$exception`, `error`, `exception`, and any
/// name ending in `_error`.
pub fn is_error_event(name: &str) -> bool {
    matches!(name, "$exception" | "error" | "exception") || name.ends_with("_error")
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorEvent {
    pub event: String,
    pub user_id: String,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// `error_type`, `$exception_type` or `type` of the properties.
    pub error_type: Option<String>,
    /// `message`, `$exception_message` or `error` of the properties.
    pub message: Option<String>,
}

/// `GET /api/analytics/errors`: the seed's fields first, then the same figures under the
/// names earlier Liftoff releases answered with, and the count per event name.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorsReport {
    pub time_window_hours: f64,
    pub total_errors: u64,
    /// Users who hit at least one.
    pub unique_users_affected: u64,
    /// Errors per type (`unknown` when the event names none).
    pub error_types: BTreeMap<String, u64>,
    /// Newest first, at most 50.
    pub recent_errors: Vec<ErrorEvent>,
    /// The same as `time_window_hours`.
    pub hours: f64,
    /// The same as `unique_users_affected`.
    pub affected_users: u64,
    /// The same as `error_types`.
    pub by_type: BTreeMap<String, u64>,
    /// Errors per event name.
    pub by_event: BTreeMap<String, u64>,
    /// The same as `recent_errors`.
    pub recent: Vec<ErrorEvent>,
    /// True when the window's unsealed rows were more than one report reads (200,000); the
    /// figures then cover the rows stored first (sealed days are always read whole).
    pub truncated: bool,
}

fn text_field(props: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| props.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
}

/// `funnel_steps`: 2 to 32 event names of 1 to 200 characters.
fn funnel_steps_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200)),
        )
        .min_items(Some(2))
        .max_items(Some(32))
        .description(Some("Event names in order (at least 2, at most 32)."))
        .build()
}
