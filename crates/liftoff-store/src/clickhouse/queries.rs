//! The analytics questions asked of ClickHouse.
//!
//! What ClickHouse answers whole is pushed down: event names, active users over windows and
//! their daily, weekly and monthly series (`uniqExact`), the most used events with their
//! users, retention cohorts (each user's active days joined to their first), sessions (each
//! user's sorted times as an array: starts where the gap or the session id says so), and
//! ordered funnels (`windowFunnel`). Every other question (and a funnel with a breakdown, or, on 18.x, one over
//! more than 24 days: see [`FUNNEL_MAX_SPAN_MS_18`]) reads only the rows its span needs (plus, for
//! first-seen questions, one row per user and event name of the history before it, reduced by
//! ClickHouse) and is answered by the in-process engine from them, the same code that answers
//! on SQLite and PostgreSQL. `tests/clickhouse_parity.rs` checks every answer against the
//! in-process engine over the same events.

use std::sync::Arc;

use async_trait::async_trait;
use liftoff_analytics::{EventRow, EventTable};
use liftoff_core::analytics::EventStore;
use liftoff_core::analytics::insights::{
    ActiveCounts, ActiveUsersReport, ActiveWindows, AnalyticsQueries, ErrorsReport, EventTables,
    FeatureUsage, FeaturesReport, FunnelReport, FunnelRequest, InsightsError, MilestonesReport,
    NewVsReturningRow, PathsReport, RetentionReport, SessionReport, SessionsReport, Span,
    last_days, retention_days, session_report,
};
use serde::Deserialize;

use super::client::{ClickHouse, lit, lit_array, lit_set};
use super::events::{COLUMNS, ClickHouseEvents, EventOut};
use liftoff_analytics::DAY_MS;

/// `windowFunnel` on ClickHouse before 19.x takes 32-bit timestamps, reads those of 2³¹ and
/// above wrongly and adds the window to a start in 32 bits. Liftoff's funnels are exact to
/// the millisecond, so there they are pushed down as milliseconds since the range's start,
/// times the number of steps (see `funnel_plan`), which must stay under this: 24 days of
/// one step, 8 days of three. A longer funnel is answered by the engine. Later releases take
/// the 64-bit times as they are.
pub const FUNNEL_MAX_SPAN_MS_18: i64 = i32::MAX as i64;

/// What the server's version allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// `windowFunnel` over 64-bit timestamps (19.x and later).
    pub funnel_64bit_time: bool,
}

impl Features {
    /// From `SELECT version()` (`18.16.1`, `24.8.4.13`).
    pub fn of(version: &str) -> Self {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        Self {
            funnel_64bit_time: major >= 19,
        }
    }

    /// For the start-up log.
    pub fn describe(&self) -> &'static str {
        if self.funnel_64bit_time {
            "funnels pushed down with millisecond windowFunnel at any length"
        } else {
            "funnels pushed down with millisecond windowFunnel up to 24 days / steps, longer ones by the engine"
        }
    }
}

/// Analytics over events kept in ClickHouse.
pub struct ClickHouseQueries {
    events: Arc<ClickHouseEvents>,
    tables: SpanTables,
    features: Features,
    /// Events per query of the sessions question ([`SESSION_SHARD_ROWS`]).
    session_shard_rows: u64,
}

/// Builds the engine's table from the rows of one span.
struct SpanTables {
    events: Arc<ClickHouseEvents>,
}

fn engine(e: impl std::fmt::Display) -> InsightsError {
    InsightsError::Engine(e.to_string())
}

#[derive(Deserialize)]
struct FirstRow {
    user_id: String,
    event: String,
    first_ts: i64,
}

impl SpanTables {
    fn ch(&self) -> &ClickHouse {
        self.events.client()
    }

    /// The events matching `filter`, read as they arrive; without `properties` each one's
    /// are left empty (most questions never read them, and they are most of a row's bytes).
    async fn rows(&self, filter: &str, properties: bool) -> Result<Vec<EventRow>, InsightsError> {
        let columns = if properties {
            COLUMNS.to_owned()
        } else {
            COLUMNS.replace("properties", "'{}' AS properties")
        };
        let mut out = Vec::new();
        let mut bad = None;
        self.ch()
            .each_row(
                &format!("SELECT {columns} FROM events FINAL WHERE {filter}"),
                |r: EventOut| match r.stored() {
                    Ok(e) => out.push(liftoff_core::analytics::sealed::row(e.event)),
                    Err(e) => bad = Some(e),
                },
            )
            .await?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// The table of the events matching `filter`.
    async fn table_where(&self, filter: &str) -> Result<Arc<EventTable>, InsightsError> {
        build_table(self.rows(filter, true).await?).await
    }
}

/// The engine's table of `rows`, built off the async threads.
async fn build_table(rows: Vec<EventRow>) -> Result<Arc<EventTable>, InsightsError> {
    tokio::task::spawn_blocking(move || EventTable::from_rows(&rows).map_err(engine))
        .await
        .map_err(engine)?
        .map(Arc::new)
}

/// Events of `[from, to)`.
fn ts_between((from, to): (i64, i64)) -> String {
    format!("ts >= {from} AND ts < {to}")
}

#[async_trait]
impl EventTables for SpanTables {
    async fn table_for(&self, span: Span) -> Result<Arc<EventTable>, InsightsError> {
        let window = ts_between((span.from_ms, span.to_ms));
        let mut rows = self.rows(&window, span.properties).await?;
        if span.history && span.from_ms > i64::MIN {
            // Each user's first event of every name before the span: first-seen questions
            // need when a user (and each name) started, not every earlier row.
            let firsts: Vec<FirstRow> = self
                .ch()
                .rows(&format!(
                    "SELECT user_id, event, min(ts) AS first_ts FROM events
                     WHERE ts < {from} AND user_id IN (SELECT user_id FROM events WHERE {window})
                     GROUP BY user_id, event",
                    from = span.from_ms
                ))
                .await?;
            rows.extend(firsts.into_iter().map(|f| EventRow {
                ts_ms: f.first_ts,
                user: f.user_id,
                session: None,
                event: f.event,
                properties: "{}".into(),
                uuid: None,
            }));
        }
        build_table(rows).await
    }

    fn event_store(&self) -> &dyn EventStore {
        &*self.events
    }

    async fn refresh_tables_soon(&self) {}

    async fn drop_tables(&self) {}
}

#[derive(Deserialize)]
struct NameRow {
    event: String,
}

#[derive(Deserialize)]
struct LevelRow {
    level: u64,
    users: u64,
}

#[derive(Deserialize)]
struct CountsRow {
    recent: u64,
    today: u64,
    week: u64,
    month: u64,
}

#[derive(Default, Deserialize)]
struct SessionsRow {
    users: u64,
    sessions: u64,
    total_ms: u64,
    bounces: u64,
    engaged: u64,
    power: u64,
}

impl SessionsRow {
    /// Adds the counts of another shard of users.
    fn add(&mut self, o: &SessionsRow) {
        self.users += o.users;
        self.sessions += o.sessions;
        self.total_ms += o.total_ms;
        self.bounces += o.bounces;
        self.engaged += o.engaged;
        self.power += o.power;
    }
}

/// Events per query of the sessions question: its memory is every event of the query's users
/// held at once (about 40 bytes each on 18.16), so 20M rows stay near a gigabyte.
const SESSION_SHARD_ROWS: u64 = 20_000_000;

#[derive(Deserialize)]
struct CellRow {
    cohort: i64,
    k: i64,
    users: u64,
}

#[derive(Deserialize)]
struct BoundsRow {
    n: u64,
    lo: i64,
    hi: i64,
}

#[derive(Deserialize)]
struct BucketRow {
    k: i64,
    users: u64,
}

#[derive(Deserialize)]
struct FeatureRow {
    event: String,
    usage: u64,
    users: u64,
}

impl ClickHouseQueries {
    pub fn new(events: Arc<ClickHouseEvents>, features: Features) -> Self {
        Self {
            tables: SpanTables {
                events: events.clone(),
            },
            events,
            features,
            session_shard_rows: SESSION_SHARD_ROWS,
        }
    }

    /// Splits the sessions question into queries of about `rows` events each (tests use a
    /// small number to check that the shards add up).
    pub fn with_session_shard_rows(mut self, rows: u64) -> Self {
        self.session_shard_rows = rows.max(1);
        self
    }

    fn ch(&self) -> &ClickHouse {
        self.events.client()
    }

    /// `[from, to)` narrowed to the stored events' first and last times, as the engine narrows
    /// a range to its table's; `None` when nothing is left.
    async fn clipped(&self, (from, to): (i64, i64)) -> Result<Option<(i64, i64)>, InsightsError> {
        let bounds: Vec<BoundsRow> = self
            .ch()
            .rows("SELECT count() AS n, min(ts) AS lo, max(ts) AS hi FROM events")
            .await?;
        Ok(match bounds.first() {
            Some(b) if b.n > 0 => {
                let (from, to) = (from.max(b.lo), to.min(b.hi.saturating_add(1)));
                (from < to).then_some((from, to))
            }
            _ => None,
        })
    }

    /// Distinct users per bucket of `range`, every bucket from its first to its last listed
    /// (the engine's `EventTable::active_users`).
    async fn series(
        &self,
        range: Option<(i64, i64)>,
        bucket: liftoff_analytics::Bucket,
    ) -> Result<Vec<liftoff_analytics::BucketCount>, InsightsError> {
        use liftoff_analytics::Bucket;
        let Some((from, to)) = range else {
            return Ok(Vec::new());
        };
        // The bucket's index on the engine's continuous scale (days, Monday weeks, months).
        let key = match bucket {
            Bucket::Day => "intDiv(ts, 86400000)".to_owned(),
            Bucket::Week => "intDiv(intDiv(ts, 86400000) + 3, 7)".to_owned(),
            Bucket::Month => "intDiv(toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC')), 100) * 12
                 + modulo(toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC')), 100) - 1"
                .to_owned(),
        };
        let rows: Vec<BucketRow> = self
            .ch()
            .rows(&format!(
                "SELECT toInt64({key}) AS k, uniqExact(user_id) AS users FROM events
                 WHERE ts >= {from} AND ts < {to} GROUP BY k"
            ))
            .await?;
        let seen: std::collections::HashMap<i64, u64> =
            rows.into_iter().map(|r| (r.k, r.users)).collect();
        let (first, last) = (bucket.index(from), bucket.index(to - 1));
        Ok((first..=last)
            .map(|k| liftoff_analytics::BucketCount {
                start_ms: bucket.start_ms(k),
                users: seen.get(&k).copied().unwrap_or(0),
            })
            .collect())
    }

    /// Whether [`AnalyticsQueries::funnel`] answers `req` with `windowFunnel` (else the
    /// engine answers from the span's rows).
    pub fn pushes_down(&self, req: &FunnelRequest, now_ms: i64) -> bool {
        self.funnel_plan(req, now_ms).is_some()
    }

    /// The time expression and window `windowFunnel` is given; `None` when the funnel cannot
    /// be pushed down exactly.
    fn funnel_plan(&self, req: &FunnelRequest, now_ms: i64) -> Option<(String, i64)> {
        if req.breakdown.is_some() {
            return None;
        }
        let range = last_days(now_ms, req.days());
        let window_ms = req.window_ms();
        if self.features.funnel_64bit_time {
            return Some(("toUInt64(ts)".to_owned(), window_ms));
        }
        let names: Vec<&str> = req.funnel_steps.iter().map(String::as_str).collect();
        let n = names.len() as i64;
        // With a name twice, one row answers two steps at one time, in whatever order 18.x
        // happens to keep: only the engine is exact there.
        let repeated = (1..names.len()).any(|i| names[..i].contains(&names[i]));
        let span = range.to_ms - range.from_ms;
        if repeated || span.saturating_mul(n).saturating_add(n) > FUNNEL_MAX_SPAN_MS_18 {
            return None;
        }
        // 18.x keeps rows with equal times in the order they arrive, not in step order: each
        // time is scaled by the number of steps and carries its step's rank, so ties between
        // steps order themselves, and the window scales with it. Two times of the span are
        // never further apart than the span, so a longer window is the span: start + window
        // then stays within 32 bits, where 18.x adds them.
        let time = format!(
            "toUInt32((ts - {}) * {n} + indexOf({}, event) - 1)",
            range.from_ms,
            lit_array(names.iter().copied())
        );
        Some((time, window_ms.min(span) * n + n - 1))
    }

    /// Users reaching each step, by `windowFunnel`; `None` when the funnel cannot be pushed
    /// down exactly.
    async fn pushed_funnel(
        &self,
        req: &FunnelRequest,
        now_ms: i64,
    ) -> Result<Option<Vec<u64>>, InsightsError> {
        let Some((time, window)) = self.funnel_plan(req, now_ms) else {
            return Ok(None);
        };
        let range = last_days(now_ms, req.days());
        let names: Vec<&str> = req.funnel_steps.iter().map(String::as_str).collect();
        let conditions: Vec<String> = names
            .iter()
            .map(|n| format!("event = {}", lit(n)))
            .collect();
        let rows: Vec<LevelRow> = self
            .ch()
            .rows(&format!(
                "SELECT level, count() AS users FROM (
                     SELECT user_id, windowFunnel({window})({time}, {conds}) AS level
                     FROM events
                     WHERE ts >= {from} AND ts < {to} AND event IN {names}
                     GROUP BY user_id
                 ) GROUP BY level",
                from = range.from_ms,
                to = range.to_ms,
                conds = conditions.join(", "),
                names = lit_set(names.iter().copied()),
            ))
            .await?;
        // users[k] = users whose level is at least k + 1.
        let mut users = vec![0u64; names.len()];
        for r in rows {
            for u in users.iter_mut().take(r.level as usize) {
                *u += r.users;
            }
        }
        Ok(Some(users))
    }
}

#[async_trait]
impl AnalyticsQueries for ClickHouseQueries {
    async fn event_names(&self) -> Result<Vec<String>, InsightsError> {
        let rows: Vec<NameRow> = self
            .ch()
            .rows("SELECT DISTINCT event FROM events ORDER BY event")
            .await?;
        Ok(rows.into_iter().map(|r| r.event).collect())
    }

    async fn funnel(
        &self,
        req: &FunnelRequest,
        now_ms: i64,
    ) -> Result<FunnelReport, InsightsError> {
        match self.pushed_funnel(req, now_ms).await? {
            Some(users) => Ok(FunnelReport::of(req, &users)),
            None => self.tables.funnel(req, now_ms).await,
        }
    }

    async fn active_users(
        &self,
        minutes: u32,
        now_ms: i64,
    ) -> Result<ActiveUsersReport, InsightsError> {
        use liftoff_analytics::Bucket;
        let w = ActiveWindows::at(minutes, now_ms);
        let counts: Vec<CountsRow> = self
            .ch()
            .rows(&format!(
                "SELECT uniqExactIf(user_id, {recent}) AS recent, uniqExactIf(user_id, {today}) AS today,
                     uniqExactIf(user_id, {week}) AS week, uniqExact(user_id) AS month
                 FROM events WHERE {month}",
                recent = ts_between(w.recent),
                today = ts_between(w.today),
                week = ts_between(w.week),
                month = ts_between(w.month),
            ))
            .await?;
        let c = counts.first().ok_or_else(|| engine("no counts"))?;
        // The recent window's sessions, by the engine over its few rows.
        let recent = self
            .tables
            .table_for(Span::window(w.recent.0, w.recent.1))
            .await?;
        let recent_sessions = recent
            .sessions(
                liftoff_analytics::TimeRange::new(w.recent.0, w.recent.1),
                liftoff_analytics::DEFAULT_SESSION_GAP_MS,
            )
            .sessions;
        let month = self.clipped(w.month).await?;
        Ok(ActiveUsersReport::of(
            minutes,
            now_ms,
            ActiveCounts {
                recent_users: c.recent,
                recent_sessions,
                dau: c.today,
                wau: c.week,
                mau: c.month,
                daily: self.series(month, Bucket::Day).await?,
                weekly: self.series(month, Bucket::Week).await?,
                monthly: self.series(month, Bucket::Month).await?,
            },
        ))
    }

    async fn active_user_counts(
        &self,
        minutes: &[u32],
        now_ms: i64,
    ) -> Result<Vec<u64>, InsightsError> {
        if minutes.is_empty() {
            return Ok(Vec::new());
        }
        let from = |m: &u32| now_ms - i64::from(*m) * 60_000;
        let earliest = minutes.iter().map(from).min().unwrap_or(now_ms);
        let columns: Vec<String> = minutes
            .iter()
            .map(|m| format!("toInt64(uniqExactIf(user_id, ts >= {}))", from(m)))
            .collect();
        let text = self
            .ch()
            .execute(&format!(
                "SELECT {} FROM events WHERE ts >= {earliest} AND ts < {}\nFORMAT TabSeparated",
                columns.join(", "),
                now_ms + 1
            ))
            .await?;
        text.trim()
            .split('\t')
            .map(|v| {
                v.parse()
                    .map_err(|_| engine(format!("ClickHouse counted `{v}`")))
            })
            .collect()
    }

    async fn features(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<FeaturesReport, InsightsError> {
        let range = last_days(now_ms, days);
        let rows: Vec<FeatureRow> = self
            .ch()
            .rows(&format!(
                "SELECT event, count() AS usage, uniqExact(user_id) AS users
                 FROM events FINAL WHERE ts >= {} AND ts < {}
                 GROUP BY event ORDER BY usage DESC, event ASC LIMIT {limit}",
                range.from_ms, range.to_ms
            ))
            .await?;
        Ok(FeaturesReport {
            days,
            features: rows
                .into_iter()
                .map(|r| FeatureUsage {
                    feature: r.event,
                    usage_count: r.usage,
                    unique_users: r.users,
                })
                .collect(),
        })
    }

    async fn retention(&self, days: f64, now_ms: i64) -> Result<RetentionReport, InsightsError> {
        use liftoff_analytics::{Cohort, Retention};
        let Some((from, to)) = self.clipped(retention_days(now_ms, days)).await? else {
            return Ok(RetentionReport::of(
                days,
                &Retention {
                    first_day_ms: 0,
                    days: 0,
                    cohorts: Vec::new(),
                },
            ));
        };
        let first_day = from.div_euclid(DAY_MS);
        let n = ((to - 1).div_euclid(DAY_MS) - first_day + 1) as usize;
        // Each user's distinct active days in the range, joined to the day of their first
        // event ever: cohort × day-after-first counts.
        let cells: Vec<CellRow> = self
            .ch()
            .rows(&format!(
                "SELECT toInt64(first_day) AS cohort, toInt64(day - first_day) AS k, count() AS users
                 FROM (
                     SELECT DISTINCT user_id, intDiv(ts, 86400000) AS day FROM events
                     WHERE ts >= {from} AND ts < {to}
                 ) ANY INNER JOIN (
                     SELECT user_id, intDiv(min(ts), 86400000) AS first_day FROM events GROUP BY user_id
                 ) USING user_id
                 WHERE first_day >= {first_day}
                 GROUP BY cohort, k"
            ))
            .await?;
        let mut active = vec![vec![0u64; n]; n];
        for c in cells {
            let (cohort, k) = ((c.cohort - first_day) as usize, c.k as usize);
            if cohort < n && k < n - cohort {
                active[cohort][k] = c.users;
            }
        }
        let cohorts = active
            .into_iter()
            .enumerate()
            .map(|(c, mut row)| {
                row.truncate(n - c);
                Cohort {
                    day_ms: (first_day + c as i64) * DAY_MS,
                    size: row[0],
                    active: row,
                }
            })
            .collect();
        Ok(RetentionReport::of(
            days,
            &Retention {
                first_day_ms: first_day * DAY_MS,
                days: n,
                cohorts,
            },
        ))
    }

    async fn paths(
        &self,
        days: f64,
        limit: usize,
        now_ms: i64,
    ) -> Result<PathsReport, InsightsError> {
        self.tables.paths(days, limit, now_ms).await
    }

    async fn milestones(&self, days: f64, now_ms: i64) -> Result<MilestonesReport, InsightsError> {
        self.tables.milestones(days, now_ms).await
    }

    async fn new_vs_returning(
        &self,
        days: f64,
        bucket: liftoff_analytics::Bucket,
        now_ms: i64,
    ) -> Result<Vec<NewVsReturningRow>, InsightsError> {
        self.tables.new_vs_returning(days, bucket, now_ms).await
    }

    async fn sessions(&self, days: f64, now_ms: i64) -> Result<SessionsReport, InsightsError> {
        use liftoff_analytics::{
            DEFAULT_SESSION_GAP_MS, ENGAGED_MS_PER_WEEK, POWER_MS_PER_WEEK, SessionStats,
        };
        let range = last_days(now_ms, days);
        // As the engine: a range under a week counts as a week.
        let weeks = ((range.to_ms as f64 - range.from_ms as f64) / (7.0 * DAY_MS as f64)).max(1.0);
        // Each user's events in time order; a row starts a session when it is the first, comes
        // more than the gap after the one before, or both carry session ids that differ (ids
        // compared by hash; no id is 0). A user's session time is the sum of the gaps inside
        // sessions; a bounce is a start followed by another start or by nothing. The
        // neighbours are arrays shifted by one and passed beside each other: a lambda that
        // indexed a captured array would copy it once per element (10M events asked for
        // 17 GiB on 18.16). Every user's events are held at once, so the users are split into
        // shards of about SESSION_SHARD_ROWS events, one query each, and the sums added.
        let filter = format!("ts >= {} AND ts < {}", range.from_ms, range.to_ms);
        let rows_in_range = self
            .ch()
            .number(&format!("SELECT count() FROM events WHERE {filter}"))
            .await? as u64;
        let shards = rows_in_range.div_ceil(self.session_shard_rows).max(1);
        let mut r = SessionsRow::default();
        for shard in 0..shards {
            let rows: Vec<SessionsRow> = self
                .ch()
                .rows(&format!(
                    "SELECT count() AS users, toUInt64(sum(n)) AS sessions, toUInt64(sum(ms)) AS total_ms,
                         toUInt64(sum(b)) AS bounces,
                         countIf(ms / {weeks} > {engaged}) AS engaged, countIf(ms / {weeks} > {power}) AS power
                     FROM (
                         SELECT
                             arraySort(x -> (x.1, x.3), groupArray((ts, ifNull(cityHash64(session_id), 0), seq))) AS e,
                             arrayMap(x -> x.1, e) AS t,
                             arrayMap(x -> x.2, e) AS s,
                             arrayDifference(t) AS d,
                             arrayMap((i, gap, cur, prev) -> i = 1 OR gap > {gap}
                                 OR (cur != prev AND cur != 0 AND prev != 0),
                                 arrayEnumerate(t), d, s, arrayPushFront(arrayPopBack(s), toUInt64(0))) AS starts,
                             arraySum(starts) AS n,
                             arraySum(arrayMap((st, gap) -> st ? 0 : gap, starts, d)) AS ms,
                             arraySum(arrayMap((st, nx) -> st AND nx, starts,
                                 arrayPushBack(arrayPopFront(starts), 1))) AS b
                         FROM events FINAL
                         WHERE {filter} AND cityHash64(user_id) % {shards} = {shard}
                         GROUP BY user_id
                     )",
                    gap = DEFAULT_SESSION_GAP_MS,
                    engaged = ENGAGED_MS_PER_WEEK,
                    power = POWER_MS_PER_WEEK,
                ))
                .await?;
            let part = rows.first().ok_or_else(|| engine("no session counts"))?;
            r.add(part);
        }
        Ok(SessionsReport::of(
            days,
            &SessionStats {
                sessions: r.sessions,
                total_duration_ms: r.total_ms,
                bounces: r.bounces,
                users: r.users,
                engaged_users: r.engaged,
                power_users: r.power,
            },
        ))
    }

    async fn session(&self, id: &str) -> Result<Option<SessionReport>, InsightsError> {
        // Only the session's rows: the engine's answer over them is its answer over all.
        let table = self
            .tables
            .table_where(&format!("session_id = {}", lit(id)))
            .await?;
        Ok(session_report(&table, id))
    }

    async fn errors(&self, hours: f64, now_ms: i64) -> Result<ErrorsReport, InsightsError> {
        self.tables.errors(hours, now_ms).await
    }

    async fn flag_exposures(
        &self,
        flag: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<liftoff_analytics::EventExposure>, InsightsError> {
        self.tables.flag_exposures(flag, from_ms, to_ms).await
    }

    async fn user_totals(
        &self,
        event: &str,
        property: Option<&str>,
        windows: Vec<(String, i64, i64)>,
    ) -> Result<Vec<liftoff_analytics::UserTotals>, InsightsError> {
        self.tables.user_totals(event, property, windows).await
    }

    async fn refresh_soon(&self) {}

    async fn invalidate(&self) {}
}
