//! `UptimeService`: monitor CRUD with validation, recording check results, and the figures
//! computed from them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::UptimeStore;
use super::{
    CHECKS_KEPT_HOURS, CheckRecord, DAILY_KEPT_DAYS, Downtime, HOURLY_KEPT_DAYS, HttpMethod,
    MAX_INTERVAL_SECONDS, Monitor, MonitorState, MonitorStatus, Resolution, Rollup, next_state,
};
use crate::alerts::hooks::{MonitorHealth, UptimeSource};
use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::Clock;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum UptimeError {
    #[error("no uptime monitor with id {0}")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new monitor, or (for PATCH) the fields to change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    /// Seconds between checks [default 60; at least 10].
    pub interval_seconds: Option<u32>,
    /// Seconds a check may take [default 10; less than the interval].
    pub timeout_seconds: Option<u32>,
    /// Accepted status codes [default: any of 200–399]; `[]` restores the default.
    #[schema(schema_with = expected_status_schema)]
    pub expected_status: Option<Vec<u16>>,
    /// A substring the body must contain (GET only); `""` removes it.
    #[schema(max_length = 1000)]
    pub keyword: Option<String>,
    /// Failing checks in a row tolerated (as `pending`) before `down` [default 0].
    #[schema(maximum = 100)]
    pub retries: Option<u32>,
    pub enabled: Option<bool>,
}

/// Uptime % over the usual windows; absent when there was no check.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UptimeWindows {
    pub h24: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DowntimeView {
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ongoing: bool,
    pub duration_seconds: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DayUptime {
    /// The UTC day's first instant.
    pub day: DateTime<Utc>,
    pub up: u64,
    pub total: u64,
    pub uptime_percent: Option<f64>,
    pub avg_response_ms: f64,
    pub max_response_ms: u32,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResponsePoint {
    pub t: DateTime<Utc>,
    pub avg_ms: f64,
    pub max_ms: u32,
}

/// One monitor's checks over a window (`GET /api/uptime/summary`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MonitorWindow {
    pub id: i64,
    pub name: String,
    pub up: u64,
    pub total: u64,
    /// Fraction 0–1 of passing checks; `null` without checks.
    pub uptime: Option<f64>,
    /// Downtime periods overlapping the window, oldest first.
    pub downtimes: Vec<DowntimeView>,
}

/// Every enabled monitor over a window, and all of them together.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct UptimeSummary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub up: u64,
    pub total: u64,
    /// Fraction 0–1 of passing checks of every enabled monitor; `null` without checks.
    pub uptime: Option<f64>,
    pub monitors: Vec<MonitorWindow>,
}

/// A monitor with everything the detail page shows.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonitorDetail {
    pub monitor: Monitor,
    pub uptime: UptimeWindows,
    /// Newest first, the last 30 days.
    pub downtimes: Vec<DowntimeView>,
    /// Newest first, at most 50.
    pub recent_checks: Vec<CheckRecord>,
    /// Oldest first, the last 90 days (days without checks left out).
    pub daily: Vec<DayUptime>,
    /// Hourly averages of the last 7 days, oldest first.
    pub response_times: Vec<ResponsePoint>,
}

#[derive(Clone)]
pub struct UptimeService {
    store: Arc<dyn UptimeStore>,
    min_interval: u32,
    /// Monitors whose URL names a denied destination are refused.
    outbound: Arc<crate::outbound::OutboundPolicy>,
    clock: Arc<dyn Clock>,
}

fn percent(up: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| (up as f64 * 100_000.0 / total as f64).round() / 1000.0)
}

fn fraction(up: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| up as f64 / total as f64)
}

fn invalid(msg: impl Into<String>) -> UptimeError {
    UptimeError::Invalid(msg.into())
}

/// Checks the URL is http(s) with a host and no spaces.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("url `{url}` must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || url.chars().any(char::is_whitespace) {
        return Err(format!("url `{url}` has no host or contains spaces"));
    }
    if url.len() > 2000 {
        return Err("url is longer than 2000 characters".into());
    }
    Ok(())
}

impl UptimeService {
    /// `min_interval` is the smallest `interval_seconds` accepted: 10 in production; tests lower
    /// it through a hidden setting.
    pub fn new(store: Arc<dyn UptimeStore>, min_interval: u32) -> Self {
        Self {
            store,
            min_interval: min_interval.max(1),
            outbound: Arc::default(),
            clock: crate::clock::system(),
        }
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses monitors whose URL names a destination `outbound` denies (the checker checks
    /// every connection and redirect too).
    pub fn with_outbound(mut self, outbound: Arc<crate::outbound::OutboundPolicy>) -> Self {
        self.outbound = outbound;
        self
    }

    /// The policy checks must obey.
    pub fn outbound(&self) -> Arc<crate::outbound::OutboundPolicy> {
        self.outbound.clone()
    }

    fn validate(&self, m: &Monitor) -> Result<(), UptimeError> {
        let name = m.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name must be 1 to 200 characters"));
        }
        validate_url(&m.url).map_err(UptimeError::Invalid)?;
        self.outbound
            .check_url(&m.url)
            .map_err(|d| invalid(d.refusal(&format!("url `{}`", m.url))))?;
        if !(self.min_interval..=MAX_INTERVAL_SECONDS).contains(&m.interval_seconds) {
            return Err(invalid(format!(
                "interval_seconds must be between {} and {MAX_INTERVAL_SECONDS}",
                self.min_interval
            )));
        }
        if m.timeout_seconds == 0 || m.timeout_seconds >= m.interval_seconds {
            return Err(invalid(
                "timeout_seconds must be at least 1 and less than interval_seconds",
            ));
        }
        if let Some(list) = &m.expected_status
            && list.iter().any(|c| !(100..=599).contains(c))
        {
            return Err(invalid("expected_status codes must be between 100 and 599"));
        }
        if let Some(k) = &m.keyword {
            if m.method == HttpMethod::Head {
                return Err(invalid("a keyword needs method GET: HEAD has no body"));
            }
            if k.len() > 1000 {
                return Err(invalid("keyword must be at most 1000 bytes"));
            }
        }
        if m.retries > 100 {
            return Err(invalid("retries must be at most 100"));
        }
        Ok(())
    }

    fn apply(m: &mut Monitor, i: MonitorInput) {
        if let Some(v) = i.name {
            m.name = v.trim().to_owned();
        }
        if let Some(v) = i.url {
            m.url = v.trim().to_owned();
        }
        if let Some(v) = i.method {
            m.method = v;
        }
        if let Some(v) = i.interval_seconds {
            m.interval_seconds = v;
        }
        if let Some(v) = i.timeout_seconds {
            m.timeout_seconds = v;
        }
        if let Some(v) = i.expected_status {
            m.expected_status = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = i.keyword {
            m.keyword = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = i.retries {
            m.retries = v;
        }
        if let Some(v) = i.enabled {
            m.enabled = v;
        }
    }

    pub async fn list(&self) -> Result<Vec<Monitor>, UptimeError> {
        Ok(self.store.list_monitors().await?)
    }

    pub async fn get(&self, id: i64) -> Result<Monitor, UptimeError> {
        self.store
            .get_monitor(id)
            .await?
            .ok_or(UptimeError::NotFound(id))
    }

    pub async fn create(&self, actor: &Actor, input: MonitorInput) -> Result<Monitor, UptimeError> {
        let now = self.clock.now();
        if input.name.is_none() || input.url.is_none() {
            return Err(invalid("name and url are required"));
        }
        let mut m = Monitor {
            id: 0,
            name: String::new(),
            url: String::new(),
            method: HttpMethod::Get,
            interval_seconds: 60,
            timeout_seconds: 10,
            expected_status: None,
            keyword: None,
            retries: 0,
            enabled: true,
            created_at: now,
            updated_at: now,
            state: MonitorState::default(),
        };
        Self::apply(&mut m, input);
        self.validate(&m)?;
        let change = Change::new(actor, "uptime_monitor.create", "uptime_monitor", "")
            .after(json!({"name": m.name, "url": m.url}));
        m.id = self.store.insert_monitor(&m, &change).await?;
        Ok(m)
    }

    pub async fn update(
        &self,
        actor: &Actor,
        id: i64,
        input: MonitorInput,
    ) -> Result<Monitor, UptimeError> {
        let before = self.get(id).await?;
        let mut m = before.clone();
        Self::apply(&mut m, input);
        m.updated_at = self.clock.now();
        self.validate(&m)?;
        let change = Change::new(
            actor,
            "uptime_monitor.update",
            "uptime_monitor",
            &id.to_string(),
        )
        .before(json!({"name": before.name, "url": before.url, "enabled": before.enabled}))
        .after(json!({"name": m.name, "url": m.url, "enabled": m.enabled}));
        if !self.store.update_monitor(&m, &change).await? {
            return Err(UptimeError::NotFound(id));
        }
        Ok(m)
    }

    pub async fn delete(&self, actor: &Actor, id: i64) -> Result<(), UptimeError> {
        let change = Change::new(
            actor,
            "uptime_monitor.delete",
            "uptime_monitor",
            &id.to_string(),
        );
        if self.store.delete_monitor(id, &change).await? {
            Ok(())
        } else {
            Err(UptimeError::NotFound(id))
        }
    }

    /// Enabled monitors whose next check is due at `now`.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Monitor>, UptimeError> {
        Ok(self
            .store
            .list_monitors()
            .await?
            .into_iter()
            .filter(|m| m.due(now))
            .collect())
    }

    /// Stores a check's result and moves the monitor's state; returns the new status (`None`
    /// when the monitor was deleted meanwhile).
    pub async fn record(
        &self,
        monitor: &Monitor,
        check: &CheckRecord,
    ) -> Result<Option<MonitorStatus>, UptimeError> {
        // Read the state again: the configuration or state may have moved since `monitor` was read.
        let Some(current) = self.store.get_monitor(monitor.id).await? else {
            return Ok(None);
        };
        let (state, edge) = next_state(&current.state, current.retries, check);
        let status = state.status;
        if current.state.status != status {
            tracing::info!(monitor = %current.name, from = current.state.status.as_str(), to = status.as_str(), "Uptime monitor changed state.");
        }
        Ok(self
            .store
            .record_check(check, &state, edge)
            .await?
            .then_some(status))
    }

    /// Deletes what is older than each resolution keeps.
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<u64, UptimeError> {
        Ok(self
            .store
            .purge_uptime(
                now - Duration::hours(CHECKS_KEPT_HOURS),
                now - Duration::days(HOURLY_KEPT_DAYS),
                now - Duration::days(DAILY_KEPT_DAYS),
            )
            .await?)
    }

    /// Checks of the last `hours` hours, newest first, at most `limit`.
    pub async fn checks(
        &self,
        id: i64,
        hours: i64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<CheckRecord>, UptimeError> {
        self.get(id).await?;
        Ok(self
            .store
            .uptime_checks(id, now - Duration::hours(hours.clamp(1, 24)), limit)
            .await?)
    }

    /// Checks per UTC day from `since`'s day on, oldest first (days without checks left out).
    pub async fn daily(
        &self,
        id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayUptime>, UptimeError> {
        Ok(self
            .store
            .uptime_rollups(id, Resolution::Day, since)
            .await?
            .iter()
            .map(day_uptime)
            .collect())
    }

    /// Every enabled monitor's checks in the hours that start in `[from, to)` (hourly
    /// rollups: kept [`HOURLY_KEPT_DAYS`] days, so older windows count what is left) and the
    /// downtime periods overlapping the window.
    pub async fn summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<UptimeSummary, UptimeError> {
        let (lo, hi) = (Resolution::Hour.bucket_ms(from), to.timestamp_millis());
        let mut monitors = Vec::new();
        for m in self.list().await? {
            if !m.enabled {
                continue;
            }
            let (up, total) = self
                .store
                .uptime_rollups(m.id, Resolution::Hour, from)
                .await?
                .iter()
                .filter(|r| (lo..hi).contains(&r.start.timestamp_millis()))
                .fold((0, 0), |(u, t), r| (u + r.up, t + r.total));
            let mut downtimes: Vec<DowntimeView> = self
                .store
                .downtimes(m.id, from)
                .await?
                .iter()
                .filter(|d| d.started_at < to && d.ended_at.is_none_or(|e| e > from))
                .map(|d| downtime_view(d, now))
                .collect();
            downtimes.sort_by_key(|d| d.started_at);
            monitors.push(MonitorWindow {
                id: m.id,
                name: m.name,
                up,
                total,
                uptime: fraction(up, total),
                downtimes,
            });
        }
        let (up, total) = monitors
            .iter()
            .fold((0, 0), |(u, t), m| (u + m.up, t + m.total));
        Ok(UptimeSummary {
            from,
            to,
            up,
            total,
            uptime: fraction(up, total),
            monitors,
        })
    }

    pub async fn detail(&self, id: i64, now: DateTime<Utc>) -> Result<MonitorDetail, UptimeError> {
        let monitor = self.get(id).await?;
        let day_checks = self
            .store
            .uptime_checks(id, now - Duration::hours(24), 100_000)
            .await?;
        let up24 = day_checks.iter().filter(|c| c.up).count() as u64;
        let hours = self
            .store
            .uptime_rollups(id, Resolution::Hour, now - Duration::days(30))
            .await?;
        let sum_since = |from: DateTime<Utc>| {
            let from = Resolution::Hour.bucket_ms(from);
            hours
                .iter()
                .filter(|r| r.start.timestamp_millis() >= from)
                .fold((0, 0), |(u, t), r| (u + r.up, t + r.total))
        };
        let (up7, total7) = sum_since(now - Duration::days(7));
        let (up30, total30) = sum_since(now - Duration::days(30));
        let daily = self.daily(id, now - Duration::days(90)).await?;
        let downtimes = self
            .store
            .downtimes(id, now - Duration::days(30))
            .await?
            .into_iter()
            .map(|d| downtime_view(&d, now))
            .collect();
        let week_from = Resolution::Hour.bucket_ms(now - Duration::days(7));
        Ok(MonitorDetail {
            uptime: UptimeWindows {
                h24: percent(up24, day_checks.len() as u64),
                d7: percent(up7, total7),
                d30: percent(up30, total30),
            },
            downtimes,
            recent_checks: day_checks.into_iter().take(50).collect(),
            daily,
            response_times: hours
                .iter()
                .filter(|r| r.start.timestamp_millis() >= week_from)
                .map(|r| ResponsePoint {
                    t: r.start,
                    avg_ms: (r.avg_ms() * 10.0).round() / 10.0,
                    max_ms: r.max_ms,
                })
                .collect(),
            monitor,
        })
    }
}

pub fn downtime_view(d: &Downtime, now: DateTime<Utc>) -> DowntimeView {
    DowntimeView {
        started_at: d.started_at,
        ended_at: d.ended_at,
        ongoing: d.ended_at.is_none(),
        duration_seconds: (d.ended_at.unwrap_or(now) - d.started_at)
            .num_seconds()
            .max(0),
    }
}

fn day_uptime(r: &Rollup) -> DayUptime {
    DayUptime {
        day: r.start,
        up: r.up,
        total: r.total,
        uptime_percent: percent(r.up, r.total),
        avg_response_ms: (r.avg_ms() * 10.0).round() / 10.0,
        max_response_ms: r.max_ms,
    }
}

#[async_trait]
impl UptimeSource for UptimeService {
    async fn monitors(&self) -> Vec<MonitorHealth> {
        match self.store.list_monitors().await {
            Ok(list) => list
                .into_iter()
                .filter(|m| m.enabled)
                .map(|m| MonitorHealth {
                    id: m.id,
                    failing: m.state.status == MonitorStatus::Down,
                    consecutive_failures: m.state.consecutive_failures,
                    name: m.name,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not read uptime monitors for alert rules.");
                Vec::new()
            }
        }
    }
}

/// `expected_status`: HTTP status codes, 100 to 599.
fn expected_status_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(100))
                .maximum(Some(599)),
        )
        .description(Some(
            "Accepted status codes [default: any of 200–399]; `[]` restores the default.",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_http_urls_with_a_host() {
        use super::validate_url;
        assert!(validate_url("http://127.0.0.1:8080/healthz").is_ok());
        assert!(validate_url("https://example.com").is_ok());
        assert!(validate_url("ftp://example.com").is_err());
        assert!(validate_url("http://").is_err());
        assert!(validate_url("http:// x").is_err());
        assert!(validate_url("example.com").is_err());
    }
}
