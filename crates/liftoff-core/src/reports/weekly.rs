//! The weekly health report, in seed 003's order: the overall grade and the rule behind it,
//! the week's figures against their targets, week over week, incidents, downtime, top
//! endpoints by traffic, errors by status code, slowest endpoints, resources per instance and
//! recommendations with their evidence. Each figure is read from the service whose API answers
//! the same question for the same window.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use liftoff_report::numbers::{count, ms, or_dash, share, signed_percent};
use liftoff_report::{Block, Cell, Chart, ChartKind, Column, Document, Series, Table, Tone};
use serde::Serialize;
use utoipa::ToSchema;

use super::targets::{Comparison, Target, Targets};
use super::{ReportError, Sources, fraction, period};
use crate::incidents::{IncidentSeverity, IncidentStatus};
use crate::monitoring::filter::Filter;
use crate::monitoring::resources::{
    Concern, FILLS_SOON_DAYS, ResourceTrend, days_phrase, describe,
};
use crate::monitoring::service::{EndpointStats, OWN_SERVICE, TimeRange, own_instance};
use crate::uptime::service::UptimeSummary;

/// Endpoints listed by traffic and by latency.
const TOP_ENDPOINTS: usize = 5;
/// A relative change smaller than this is "stable" week over week.
const STABLE_CHANGE: f64 = 0.05;
/// An endpoint carrying at least this share of requests is worth caching first.
const HOT_ENDPOINT_SHARE: f64 = 0.3;
/// Resource use above which an instance needs room.
const BUSY_PERCENT: f64 = 80.0;

/// The overall grade: A when every target is met, one letter down per missed target, F when
/// uptime is under 99 % or errors reach 5 % whatever else holds.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HealthGrade {
    /// `A`–`F`; `null` without requests or checks to judge.
    pub grade: Option<char>,
    pub label: String,
    /// The rule the grade follows, in words.
    pub rule: String,
    /// The targets missed this week.
    pub missed: Vec<String>,
}

/// The week's figures (also last week's, for the comparison).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WeekFigures {
    /// Fraction 0–1 of passing uptime checks; `null` without checks.
    pub uptime: Option<f64>,
    pub avg_response_time_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Fraction 0–1 of requests answered 5xx; `null` without requests.
    pub error_rate: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    /// Distinct users with an event in the week.
    pub active_users: u64,
    /// Users whose first event falls in the week.
    pub new_users: u64,
}

/// One day of the week's traffic (the series the Performance page charts, a day per step).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DayTraffic {
    /// The step's start.
    pub day: DateTime<Utc>,
    pub requests: u64,
    pub errors: u64,
    pub p95_ms: Option<f64>,
}

/// Which way a figure moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    Improved,
    Stable,
    Worse,
    /// One of the weeks has no value.
    Unknown,
}

/// One row of the week-over-week table.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WeekChange {
    pub metric: String,
    pub this_week: Option<f64>,
    pub last_week: Option<f64>,
    /// `this_week - last_week`, in the metric's unit.
    pub change: Option<f64>,
    /// The change relative to last week (0.1 = 10 % more); `null` when last week was 0.
    pub relative_change: Option<f64>,
    /// Better or worse for the product, within 5 % counts as stable.
    pub status: Movement,
}

/// An incident that started in the week or is still open.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IncidentRow {
    pub id: String,
    pub title: String,
    pub severity: IncidentSeverity,
    pub status: IncidentStatus,
    pub started_at: DateTime<Utc>,
    /// Until resolution, or until the report's end for an open one.
    pub duration_minutes: i64,
    /// Requests answered 5xx during the incident, of all requests then.
    pub requests_failed: u64,
    pub requests_total: u64,
    pub users_affected: u64,
    pub root_cause: Option<String>,
    pub resolution: Option<String>,
}

/// A period an uptime monitor was down.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DowntimeRow {
    pub monitor: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_seconds: i64,
    /// Overlaps a maintenance window.
    pub planned: bool,
    /// The maintenance window it overlaps.
    pub window: Option<String>,
}

/// An endpoint and its share of the week's requests.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct EndpointShare {
    pub service: String,
    pub method: String,
    pub endpoint: String,
    pub requests: u64,
    /// Fraction 0–1 of the week's requests.
    pub share: f64,
    pub avg_ms: f64,
    pub p95_ms: f64,
    /// Fraction 0–1 answered 5xx.
    pub error_rate: f64,
}

/// Responses of one status code (400 and above).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct StatusShare {
    pub status: u16,
    pub count: u64,
    /// Fraction 0–1 of the week's 4xx and 5xx responses.
    pub share: f64,
    /// Fraction 0–1 of all the week's requests.
    pub share_of_requests: f64,
}

/// An instance's latest reading, used against what it has.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ResourceRow {
    pub service: String,
    pub instance: String,
    pub cpu_percent: f64,
    pub cpu_count: f64,
    pub memory_used_mb: f64,
    pub memory_total_mb: f64,
    pub memory_percent: f64,
    pub disk_used_gb: f64,
    pub disk_total_gb: f64,
    pub disk_percent: f64,
    pub read_at: DateTime<Utc>,
    /// Over the report's window, as `/api/monitoring/resources` answers for it; absent for an
    /// instance with no hour in the window.
    pub cpu_trend: Option<ResourceTrend>,
    pub memory_trend: Option<ResourceTrend>,
    pub disk_trend: Option<ResourceTrend>,
}

/// Something to do, and the figures that say so.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(as = ReportRecommendation)]
pub struct Recommendation {
    pub title: String,
    pub evidence: String,
}

/// `GET /api/reports/weekly`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WeeklyReport {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub grade: HealthGrade,
    pub this_week: WeekFigures,
    /// The same span right before `from`.
    pub last_week: WeekFigures,
    /// Uptime, average response and error rate against the configured targets.
    pub targets: Vec<Target>,
    pub week_over_week: Vec<WeekChange>,
    /// The window cut into days (at most 31 steps), oldest first.
    pub daily: Vec<DayTraffic>,
    pub incidents: Vec<IncidentRow>,
    pub downtime: Vec<DowntimeRow>,
    pub top_endpoints: Vec<EndpointShare>,
    pub errors_by_status: Vec<StatusShare>,
    pub slowest_endpoints: Vec<EndpointShare>,
    pub resources: Vec<ResourceRow>,
    pub recommendations: Vec<Recommendation>,
}

impl Sources<'_> {
    /// The weekly report of `[from, to)`, compared with the same span before it.
    pub async fn weekly(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        targets: &Targets,
    ) -> Result<WeeklyReport, ReportError> {
        let now = self.now();
        let week = TimeRange { from, to };
        let before = TimeRange {
            from: from - (to - from),
            to: from,
        };
        let apps = Filter::default();
        let days = usize::try_from((to - from).num_days().clamp(1, 31)).unwrap_or(7);
        let (this_week, last_week, endpoints, incidents, series) = tokio::join!(
            self.week_figures(week),
            self.week_figures(before),
            self.monitoring.performance(week, &apps),
            self.incidents.list(),
            self.monitoring.series(week, days, &apps),
        );
        // The week's uptime answer also holds its downtime periods: read once.
        let ((this_week, uptime), (last_week, _)) = (this_week?, last_week?);
        let endpoints = endpoints?;
        let daily = series?
            .into_iter()
            .map(|p| DayTraffic {
                day: DateTime::from_timestamp(p.t, 0).unwrap_or(from),
                requests: p.requests,
                errors: p.errors,
                p95_ms: p.p95,
            })
            .collect();
        let endpoints: Vec<EndpointStats> = endpoints.into_values().collect();
        let targets = vec![
            Target::judge(
                "uptime",
                this_week.uptime,
                targets.uptime,
                Comparison::AtLeast,
            ),
            Target::judge(
                "avg_response_time_ms",
                this_week.avg_response_time_ms,
                targets.avg_response_time_ms,
                Comparison::Below,
            ),
            Target::judge(
                "error_rate",
                this_week.error_rate,
                targets.error_rate,
                Comparison::Below,
            ),
        ];
        let mut rows = Vec::new();
        for i in incidents? {
            if !(i.started_at < to
                && (i.started_at >= from || i.resolved_at.is_none_or(|r| r > from)))
            {
                continue;
            }
            let impact = self.incidents.impact(&i, to.min(now)).await?;
            rows.push(IncidentRow {
                duration_minutes: (i.resolved_at.unwrap_or(to.min(now)) - i.started_at)
                    .num_minutes(),
                requests_failed: impact.requests_failed,
                requests_total: impact.requests_total,
                users_affected: impact.users_affected,
                id: i.id,
                title: i.title,
                severity: i.severity,
                status: i.status,
                started_at: i.started_at,
                root_cause: i.root_cause,
                resolution: i.resolution,
            });
        }
        rows.sort_by_key(|r| r.started_at);
        let windows = self
            .alerts
            .maintenance_windows()
            .await
            .map_err(|e| ReportError::Sources(e.to_string()))?;
        let mut downtime: Vec<DowntimeRow> = uptime
            .monitors
            .iter()
            .flat_map(|m| {
                m.downtimes.iter().map(|d| {
                    let end = d.ended_at.unwrap_or(now);
                    let window = windows
                        .iter()
                        .find(|w| !w.occurrences(d.started_at, end).is_empty())
                        .map(|w| w.name.clone());
                    DowntimeRow {
                        monitor: m.name.clone(),
                        started_at: d.started_at,
                        ended_at: d.ended_at,
                        duration_seconds: d.duration_seconds,
                        planned: window.is_some(),
                        window,
                    }
                })
            })
            .collect();
        downtime.sort_by_key(|d| d.started_at);
        let total = this_week.requests;
        let shares = |e: &EndpointStats| EndpointShare {
            service: e.service.clone(),
            method: e.method.clone(),
            endpoint: e.endpoint.clone(),
            requests: e.request_count,
            share: fraction(e.request_count, total),
            avg_ms: e.duration_ms.avg,
            p95_ms: e.duration_ms.p95,
            error_rate: e.error_rate,
        };
        let mut by_traffic: Vec<&EndpointStats> = endpoints.iter().collect();
        by_traffic.sort_by_key(|e| std::cmp::Reverse(e.request_count));
        let top_endpoints: Vec<EndpointShare> = by_traffic
            .iter()
            .take(TOP_ENDPOINTS)
            .map(|e| shares(e))
            .collect();
        let mut by_latency: Vec<&EndpointStats> =
            endpoints.iter().filter(|e| e.request_count > 0).collect();
        by_latency.sort_by(|a, b| {
            b.duration_ms
                .p95
                .total_cmp(&a.duration_ms.p95)
                .then_with(|| b.request_count.cmp(&a.request_count))
        });
        let slowest_endpoints: Vec<EndpointShare> = by_latency
            .iter()
            .take(TOP_ENDPOINTS)
            .map(|e| shares(e))
            .collect();
        let errors_by_status = status_shares(&endpoints, total);
        let resources = self.resources(from, to).await?;
        let week_over_week = week_over_week(&this_week, &last_week);
        let grade = grade(&this_week, &targets);
        let recommendations = recommend(
            &targets,
            &top_endpoints,
            &slowest_endpoints,
            &errors_by_status,
            &resources,
            &rows,
        );
        Ok(WeeklyReport {
            generated_at: now,
            from,
            to,
            grade,
            this_week,
            last_week,
            targets,
            week_over_week,
            daily,
            incidents: rows,
            downtime,
            top_endpoints,
            errors_by_status,
            slowest_endpoints,
            resources,
            recommendations,
        })
    }

    /// One week's headline figures, each from the service the API reads, with the uptime
    /// answer they came from.
    async fn week_figures(
        &self,
        range: TimeRange,
    ) -> Result<(WeekFigures, UptimeSummary), ReportError> {
        let apps = Filter::default();
        let minutes =
            u32::try_from((range.to - range.from).num_minutes().max(1)).unwrap_or(u32::MAX);
        let days = (range.to - range.from).num_seconds() as f64 / 86_400.0;
        let to_ms = range.to.timestamp_millis();
        let windows = [minutes];
        let (summary, uptime, active, new) = tokio::join!(
            self.monitoring.summary(range, &apps),
            self.uptime.summary(range.from, range.to, self.now()),
            self.events.active_user_counts(&windows, to_ms),
            self.events
                .new_vs_returning(days, liftoff_analytics::Bucket::Day, to_ms),
        );
        let (summary, uptime) = (summary?, uptime?);
        let requests = summary.requests.total;
        let has = requests > 0;
        let figures = WeekFigures {
            uptime: uptime.uptime,
            avg_response_time_ms: has.then_some(summary.performance.avg_duration_ms),
            p95_ms: has.then_some(summary.performance.p95_duration_ms),
            error_rate: has.then_some(summary.requests.error_rate),
            requests,
            errors: summary.requests.errors,
            active_users: active?.first().copied().unwrap_or(0),
            new_users: new?.iter().map(|r| r.new).sum(),
        };
        Ok((figures, uptime))
    }

    /// Each instance's latest reading with the trend of its window.
    async fn resources(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ResourceRow>, ReportError> {
        let now = self.now();
        let mut rows: Vec<ResourceRow> = self
            .monitoring
            .instances
            .list(now)
            .into_iter()
            .map(|i| resource_row(i.service, i.instance, &i.sample, i.last_seen))
            .collect();
        let own = self.monitoring.system.get();
        if let Some(at) = own.sampled_at {
            rows.push(resource_row(
                OWN_SERVICE.to_owned(),
                own_instance().to_owned(),
                &own.sample(),
                at,
            ));
        }
        let history = self.monitoring.resource_history(from, to).await?;
        for row in &mut rows {
            if let Some(h) = history
                .iter()
                .find(|h| h.service == row.service && h.instance == row.instance)
            {
                row.cpu_trend = Some(h.cpu.clone());
                row.memory_trend = Some(h.memory.clone());
                row.disk_trend = Some(h.disk.clone());
            }
        }
        Ok(rows)
    }
}

fn resource_row(
    service: String,
    instance: String,
    s: &liftoff_system::Sample,
    read_at: DateTime<Utc>,
) -> ResourceRow {
    ResourceRow {
        service,
        instance,
        cpu_percent: s.cpu.percent,
        cpu_count: s.cpu.count,
        memory_used_mb: s.memory.used_mb,
        memory_total_mb: s.memory.total_mb,
        memory_percent: s.memory.percent,
        disk_used_gb: s.disk.used_gb,
        disk_total_gb: s.disk.total_gb,
        disk_percent: s.disk.percent,
        read_at,
        cpu_trend: None,
        memory_trend: None,
        disk_trend: None,
    }
}

fn status_shares(endpoints: &[EndpointStats], total: u64) -> Vec<StatusShare> {
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    for e in endpoints {
        for (code, n) in &e.status_codes {
            if let Ok(code) = code.parse::<u16>()
                && code >= 400
            {
                *codes.entry(code).or_default() += n;
            }
        }
    }
    let failed: u64 = codes.values().sum();
    let mut out: Vec<StatusShare> = codes
        .into_iter()
        .map(|(status, count)| StatusShare {
            status,
            count,
            share: fraction(count, failed),
            share_of_requests: fraction(count, total),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.status.cmp(&b.status)));
    out
}

/// Week over week, each figure judged by which way is better for it.
fn week_over_week(this: &WeekFigures, last: &WeekFigures) -> Vec<WeekChange> {
    let count = |n: u64| Some(n as f64);
    // (metric, this week, last week, higher is better)
    let rows = [
        ("uptime", this.uptime, last.uptime, true),
        (
            "avg_response_time_ms",
            this.avg_response_time_ms,
            last.avg_response_time_ms,
            false,
        ),
        ("p95_ms", this.p95_ms, last.p95_ms, false),
        ("error_rate", this.error_rate, last.error_rate, false),
        ("requests", count(this.requests), count(last.requests), true),
        (
            "active_users",
            count(this.active_users),
            count(last.active_users),
            true,
        ),
        (
            "new_users",
            count(this.new_users),
            count(last.new_users),
            true,
        ),
    ];
    rows.into_iter()
        .map(|(metric, now, before, higher_is_better)| {
            let change = now.zip(before).map(|(a, b)| a - b);
            let relative_change = now
                .zip(before)
                .and_then(|(a, b)| (b != 0.0).then(|| (a - b) / b.abs()));
            let status = match (change, relative_change) {
                (None, _) => Movement::Unknown,
                (Some(0.0), _) => Movement::Stable,
                (Some(_), Some(r)) if r.abs() < STABLE_CHANGE => Movement::Stable,
                (Some(c), _) => {
                    if (c > 0.0) == higher_is_better {
                        Movement::Improved
                    } else {
                        Movement::Worse
                    }
                }
            };
            WeekChange {
                metric: metric.to_owned(),
                this_week: now,
                last_week: before,
                change,
                relative_change,
                status,
            }
        })
        .collect()
}

fn grade(week: &WeekFigures, targets: &[Target]) -> HealthGrade {
    let rule = "A when uptime, average response time and error rate all meet their targets; \
                one letter lower for each missed target; F when uptime is under 99 % or the \
                error rate reaches 5 %."
        .to_owned();
    let missed: Vec<String> = targets
        .iter()
        .filter(|t| t.met == Some(false))
        .map(|t| t.metric.to_owned())
        .collect();
    if targets.iter().all(|t| t.met.is_none()) {
        return HealthGrade {
            grade: None,
            label: "No data".to_owned(),
            rule,
            missed,
        };
    }
    let failing =
        week.uptime.is_some_and(|u| u < 0.99) || week.error_rate.is_some_and(|e| e >= 0.05);
    let (grade, label) = match (failing, missed.len()) {
        (true, _) => ('F', "Failing"),
        (false, 0) => ('A', "Excellent"),
        (false, 1) => ('B', "Good"),
        (false, 2) => ('C', "Fair"),
        _ => ('D', "Poor"),
    };
    HealthGrade {
        grade: Some(grade),
        label: label.to_owned(),
        rule,
        missed,
    }
}

fn recommend(
    targets: &[Target],
    top: &[EndpointShare],
    slowest: &[EndpointShare],
    errors: &[StatusShare],
    resources: &[ResourceRow],
    incidents: &[IncidentRow],
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for t in targets.iter().filter(|t| t.met == Some(false)) {
        if let Some(v) = t.value {
            out.push(Recommendation {
                title: format!("Bring the {} back on target", t.label().to_lowercase()),
                evidence: format!(
                    "{} this week against a target of {}.",
                    t.shown(v),
                    t.wanted()
                ),
            });
        }
    }
    if let Some(hot) = top
        .iter()
        .find(|e| e.method == "GET" && e.share >= HOT_ENDPOINT_SHARE)
    {
        out.push(Recommendation {
            title: format!("Cache GET {} first", hot.endpoint),
            evidence: format!(
                "{} of requests ({} of them), average {}.",
                share(hot.share),
                count(hot.requests),
                ms(hot.avg_ms)
            ),
        });
    }
    if let Some(slow) = slowest.first().filter(|e| e.p95_ms >= 1_000.0) {
        out.push(Recommendation {
            title: format!("Speed up {} {}", slow.method, slow.endpoint),
            evidence: format!(
                "p95 {} over {} requests, the slowest endpoint this week.",
                ms(slow.p95_ms),
                count(slow.requests)
            ),
        });
    }
    if let Some(e) = errors
        .iter()
        .find(|e| e.status >= 500 && e.share_of_requests >= 0.001)
    {
        out.push(Recommendation {
            title: format!("Find what answers {}", e.status),
            evidence: format!(
                "{} responses, {} of all requests and {} of the errors.",
                count(e.count),
                share(e.share_of_requests),
                share(e.share)
            ),
        });
    }
    for r in resources {
        let (what, used) = if r.cpu_percent >= BUSY_PERCENT {
            ("CPU", r.cpu_percent)
        } else if r.memory_percent >= BUSY_PERCENT {
            ("memory", r.memory_percent)
        } else if r.disk_percent >= BUSY_PERCENT {
            ("disk", r.disk_percent)
        } else {
            continue;
        };
        out.push(Recommendation {
            title: format!("Give {} / {} more {what}", r.service, r.instance),
            evidence: format!("{what} at {used:.0} % at its last reading."),
        });
    }
    for r in resources {
        for (what, trend) in [("memory", &r.memory_trend), ("disk", &r.disk_trend)] {
            let Some(t) = trend else { continue };
            let (Some(days), Some(per_week)) = (t.full_in_days, t.change_per_week) else {
                continue;
            };
            if days > FILLS_SOON_DAYS {
                continue;
            }
            out.push(Recommendation {
                title: format!(
                    "Find what fills the {what} of {} / {} before it runs out",
                    r.service, r.instance
                ),
                evidence: format!(
                    "{what} averaged {:.0} % this week and rises {per_week:.1} points a week \
                     (least-squares slope of the daily averages): full in about {} at this rate.",
                    t.average_percent,
                    days_phrase(days)
                ),
            });
        }
    }
    for i in incidents.iter().filter(|i| i.root_cause.is_none()) {
        out.push(Recommendation {
            title: format!("Write down the root cause of {}", i.id),
            evidence: format!(
                "{} lasted {} minutes and has no root cause recorded.",
                i.title, i.duration_minutes
            ),
        });
    }
    out
}

fn trend_cell(r: &ResourceRow) -> Cell {
    let (text, concern) = describe(
        r.cpu_trend.as_ref(),
        r.memory_trend.as_ref(),
        r.disk_trend.as_ref(),
    );
    match concern {
        Concern::None => text.into(),
        Concern::Watch => Cell::toned(text, Tone::Warning),
        Concern::Urgent => Cell::toned(text, Tone::Bad),
    }
}

impl WeeklyReport {
    /// The report laid out in seed 003's order.
    pub fn document(&self) -> Document {
        let mut blocks = Vec::new();
        let tw = &self.this_week;
        blocks.push(Block::Heading {
            text: "Executive summary".into(),
        });
        let (tone, title) = match self.grade.grade {
            Some('A') => (Tone::Good, "Overall health: A (Excellent)".to_owned()),
            Some(g @ ('B' | 'C')) => (
                Tone::Warning,
                format!("Overall health: {g} ({})", self.grade.label),
            ),
            Some(g) => (
                Tone::Bad,
                format!("Overall health: {g} ({})", self.grade.label),
            ),
            None => (Tone::Neutral, "Overall health: no data".to_owned()),
        };
        let mut text = self.grade.rule.clone();
        if !self.grade.missed.is_empty() {
            let missed: Vec<String> = self
                .grade
                .missed
                .iter()
                .map(|m| metric_label(m).to_lowercase())
                .collect();
            text.push_str(&format!(" Missed: {}.", missed.join(", ")));
        }
        blocks.push(Block::Callout { tone, title, text });
        let mut rows: Vec<Vec<Cell>> = self
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.label().into(),
                    or_dash(t.value, |v| t.shown(v)).into(),
                    t.wanted().into(),
                    t.status_cell(),
                ]
            })
            .collect();
        rows.push(vec![
            "p95 response time".into(),
            or_dash(tw.p95_ms, ms).into(),
            "–".into(),
            Cell::from("–"),
        ]);
        rows.push(vec![
            "Total requests".into(),
            count(tw.requests).into(),
            "–".into(),
            Cell::from("–"),
        ]);
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Metric"),
                Column::right("This week"),
                Column::right("Target"),
                Column::left("Status"),
            ],
            rows,
            empty: String::new(),
        }));

        if self.daily.len() > 1 {
            let labels: Vec<String> = self
                .daily
                .iter()
                .map(|d| d.day.format("%a %d").to_string())
                .collect();
            blocks.push(Block::Chart(Chart {
                title: "Requests and errors per day".into(),
                kind: ChartKind::Bar,
                unit: "per day".into(),
                x_labels: labels.clone(),
                series: vec![
                    Series {
                        name: "Requests".into(),
                        values: self.daily.iter().map(|d| Some(d.requests as f64)).collect(),
                    },
                    Series {
                        name: "Errors (5xx)".into(),
                        values: self.daily.iter().map(|d| Some(d.errors as f64)).collect(),
                    },
                ],
            }));
            blocks.push(Block::Chart(Chart {
                title: "p95 response time per day".into(),
                kind: ChartKind::Line,
                unit: "ms".into(),
                x_labels: labels,
                series: vec![Series {
                    name: "p95".into(),
                    values: self.daily.iter().map(|d| d.p95_ms).collect(),
                }],
            }));
        }

        blocks.push(Block::Heading {
            text: "Week over week".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Metric"),
                Column::right("This week"),
                Column::right("Last week"),
                Column::right("Change"),
                Column::left("Status"),
            ],
            rows: self
                .week_over_week
                .iter()
                .map(|w| {
                    let show = |v: Option<f64>| or_dash(v, |v| show_metric(&w.metric, v));
                    vec![
                        metric_label(&w.metric).into(),
                        show(w.this_week).into(),
                        show(w.last_week).into(),
                        change_text(w).into(),
                        movement_cell(w.status),
                    ]
                })
                .collect(),
            empty: String::new(),
        }));

        blocks.push(Block::Heading {
            text: "Incidents".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Id"),
                Column::left("Date"),
                Column::right("Duration"),
                Column::left("Impact"),
                Column::left("Root cause"),
                Column::left("Resolution"),
                Column::left("Status"),
            ],
            rows: self
                .incidents
                .iter()
                .map(|i| {
                    vec![
                        format!("{} {}", i.id, i.title).into(),
                        i.started_at.format("%Y-%m-%d %H:%M").to_string().into(),
                        format!("{} min", i.duration_minutes).into(),
                        format!(
                            "{} of {} requests failed; {} users",
                            count(i.requests_failed),
                            count(i.requests_total),
                            count(i.users_affected)
                        )
                        .into(),
                        i.root_cause.clone().unwrap_or_else(|| "–".into()).into(),
                        i.resolution.clone().unwrap_or_else(|| "–".into()).into(),
                        Cell::toned(
                            i.status.as_str(),
                            if i.status == IncidentStatus::Resolved {
                                Tone::Good
                            } else {
                                Tone::Bad
                            },
                        ),
                    ]
                })
                .collect(),
            empty: "No incidents this week.".into(),
        }));
        blocks.push(Block::Subheading {
            text: "Downtime".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Monitor"),
                Column::left("From"),
                Column::left("To"),
                Column::right("Duration"),
                Column::left("Kind"),
            ],
            rows: self
                .downtime
                .iter()
                .map(|d| {
                    vec![
                        d.monitor.as_str().into(),
                        d.started_at.format("%Y-%m-%d %H:%M").to_string().into(),
                        d.ended_at
                            .map_or_else(
                                || "ongoing".to_owned(),
                                |e| e.format("%Y-%m-%d %H:%M").to_string(),
                            )
                            .into(),
                        minutes_text(d.duration_seconds).into(),
                        match &d.window {
                            Some(w) => Cell::toned(format!("planned ({w})"), Tone::Neutral),
                            None => Cell::toned("unplanned", Tone::Bad),
                        },
                    ]
                })
                .collect(),
            empty: "No downtime this week.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Top endpoints by traffic".into(),
        });
        blocks.push(Block::Table(endpoint_table(
            &self.top_endpoints,
            "No requests this week.",
        )));

        blocks.push(Block::Heading {
            text: "Errors by status code".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Status"),
                Column::right("Responses"),
                Column::right("Share of errors"),
                Column::right("Share of requests"),
            ],
            rows: self
                .errors_by_status
                .iter()
                .map(|e| {
                    vec![
                        e.status.to_string().into(),
                        count(e.count).into(),
                        share(e.share).into(),
                        share(e.share_of_requests).into(),
                    ]
                })
                .collect(),
            empty: "No error responses this week.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Slowest endpoints".into(),
        });
        blocks.push(Block::Table(endpoint_table(
            &self.slowest_endpoints,
            "No requests this week.",
        )));

        blocks.push(Block::Heading {
            text: "Resources".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Instance"),
                Column::right("CPU"),
                Column::right("Memory"),
                Column::right("Disk"),
                Column::left("Trend this week"),
                Column::left("Read at"),
            ],
            rows: self
                .resources
                .iter()
                .map(|r| {
                    vec![
                        format!("{} / {}", r.service, r.instance).into(),
                        format!("{:.0} % of {:.0} CPUs", r.cpu_percent, r.cpu_count).into(),
                        format!(
                            "{} of {} MB ({:.0} %)",
                            count(r.memory_used_mb.round() as u64),
                            count(r.memory_total_mb.round() as u64),
                            r.memory_percent
                        )
                        .into(),
                        format!(
                            "{:.1} of {:.1} GB ({:.0} %)",
                            r.disk_used_gb, r.disk_total_gb, r.disk_percent
                        )
                        .into(),
                        trend_cell(r),
                        r.read_at.format("%Y-%m-%d %H:%M").to_string().into(),
                    ]
                })
                .collect(),
            empty: "No instance has reported its resources in the last 10 minutes.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Recommendations".into(),
        });
        if self.recommendations.is_empty() {
            blocks.push(Block::Paragraph {
                text: "Nothing needs attention: every target is met and no figure stands out."
                    .into(),
            });
        } else {
            blocks.push(Block::Bullets {
                items: self
                    .recommendations
                    .iter()
                    .map(|r| format!("{}: {}", r.title, r.evidence))
                    .collect(),
            });
        }
        Document {
            title: "Weekly health report".into(),
            subtitle: period(self.from, self.to, self.generated_at),
            blocks,
        }
    }

    /// One line for a chat message.
    pub fn summary(&self) -> String {
        let t = &self.this_week;
        format!(
            "Health {}: uptime {}, average {}, errors {}, {} requests, {} incidents.",
            self.grade
                .grade
                .map_or_else(|| "n/a".to_owned(), |g| g.to_string()),
            or_dash(t.uptime, share),
            or_dash(t.avg_response_time_ms, ms),
            or_dash(t.error_rate, share),
            count(t.requests),
            self.incidents.len()
        )
    }
}

fn endpoint_table(rows: &[EndpointShare], empty: &str) -> Table {
    Table {
        columns: vec![
            Column::left("Endpoint"),
            Column::right("Requests"),
            Column::right("Share"),
            Column::right("Average"),
            Column::right("p95"),
            Column::right("Errors"),
        ],
        rows: rows
            .iter()
            .map(|e| {
                vec![
                    format!("{} {}", e.method, e.endpoint).into(),
                    count(e.requests).into(),
                    share(e.share).into(),
                    ms(e.avg_ms).into(),
                    ms(e.p95_ms).into(),
                    share(e.error_rate).into(),
                ]
            })
            .collect(),
        empty: empty.to_owned(),
    }
}

fn movement_cell(m: Movement) -> Cell {
    match m {
        Movement::Improved => Cell::toned("improved", Tone::Good),
        Movement::Stable => Cell::toned("stable", Tone::Neutral),
        Movement::Worse => Cell::toned("worse", Tone::Bad),
        Movement::Unknown => Cell::toned("–", Tone::Neutral),
    }
}

fn metric_label(metric: &str) -> &'static str {
    match metric {
        "uptime" => "Uptime",
        "avg_response_time_ms" => "Average response time",
        "p95_ms" => "p95 response time",
        "error_rate" => "Error rate",
        "requests" => "Requests",
        "active_users" => "Active users",
        "new_users" => "New users",
        _ => "Other",
    }
}

fn show_metric(metric: &str, v: f64) -> String {
    match metric {
        "uptime" | "error_rate" => share(v),
        "avg_response_time_ms" | "p95_ms" => ms(v),
        _ => count(v.max(0.0).round() as u64),
    }
}

fn change_text(w: &WeekChange) -> String {
    match (w.change, w.relative_change) {
        (None, _) => "–".to_owned(),
        // Rates change in points: 99.9 % → 99.5 % is -0.4 points, not -0.4 %.
        (Some(c), _) if matches!(w.metric.as_str(), "uptime" | "error_rate") => {
            format!("{:+.2} pts", c * 100.0)
        }
        (Some(_), Some(r)) => signed_percent(r),
        (Some(c), None) => format!("{c:+}"),
    }
}

fn minutes_text(seconds: i64) -> String {
    if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(uptime: f64, avg: f64, errors: f64) -> WeekFigures {
        WeekFigures {
            uptime: Some(uptime),
            avg_response_time_ms: Some(avg),
            p95_ms: Some(avg * 2.0),
            error_rate: Some(errors),
            requests: 1_000,
            errors: (errors * 1_000.0) as u64,
            active_users: 100,
            new_users: 10,
        }
    }

    fn judged(w: &WeekFigures) -> Vec<Target> {
        let t = Targets::default();
        vec![
            Target::judge("uptime", w.uptime, t.uptime, Comparison::AtLeast),
            Target::judge(
                "avg_response_time_ms",
                w.avg_response_time_ms,
                t.avg_response_time_ms,
                Comparison::Below,
            ),
            Target::judge("error_rate", w.error_rate, t.error_rate, Comparison::Below),
        ]
    }

    #[test]
    fn the_grade_drops_a_letter_per_missed_target_and_fails_on_outages() {
        let g = |w: WeekFigures| grade(&w, &judged(&w)).grade;
        assert_eq!(g(figures(0.9995, 120.0, 0.002)), Some('A'));
        assert_eq!(g(figures(0.9995, 250.0, 0.002)), Some('B'));
        assert_eq!(g(figures(0.995, 250.0, 0.002)), Some('C'));
        assert_eq!(g(figures(0.995, 250.0, 0.02)), Some('D'));
        assert_eq!(g(figures(0.98, 120.0, 0.002)), Some('F'));
        assert_eq!(g(figures(0.9995, 120.0, 0.05)), Some('F'));
        let empty = WeekFigures {
            uptime: None,
            avg_response_time_ms: None,
            p95_ms: None,
            error_rate: None,
            requests: 0,
            errors: 0,
            active_users: 0,
            new_users: 0,
        };
        assert_eq!(grade(&empty, &judged(&empty)).grade, None);
    }

    #[test]
    fn week_over_week_knows_which_way_is_better() {
        let this = figures(0.9990, 150.0, 0.004);
        let mut last = figures(0.9995, 200.0, 0.004);
        last.active_users = 80;
        last.new_users = 10;
        let rows = week_over_week(&this, &last);
        let by = |m: &str| rows.iter().find(|r| r.metric == m).map(|r| r.status);
        assert_eq!(by("avg_response_time_ms"), Some(Movement::Improved));
        assert_eq!(by("active_users"), Some(Movement::Improved));
        assert_eq!(by("new_users"), Some(Movement::Stable));
        assert_eq!(by("error_rate"), Some(Movement::Stable));
        // 99.95 % → 99.90 % is within 5 % relative: stable, and shown in points.
        assert_eq!(by("uptime"), Some(Movement::Stable));
        let avg = rows.iter().find(|r| r.metric == "avg_response_time_ms");
        assert_eq!(avg.and_then(|r| r.relative_change), Some(-0.25));
    }

    #[test]
    fn recommendations_carry_their_evidence() {
        let hot = EndpointShare {
            service: "api".into(),
            method: "GET".into(),
            endpoint: "/users".into(),
            requests: 500,
            share: 0.5,
            avg_ms: 80.0,
            p95_ms: 1_500.0,
            error_rate: 0.0,
        };
        let errors = vec![StatusShare {
            status: 503,
            count: 30,
            share: 0.75,
            share_of_requests: 0.03,
        }];
        let hot = [hot];
        let recs = recommend(&[], &hot, &hot, &errors, &[], &[]);
        let titles: Vec<&str> = recs.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Cache GET /users first",
                "Speed up GET /users",
                "Find what answers 503"
            ]
        );
        assert!(
            recs[0].evidence.starts_with("50.0 % of requests"),
            "{}",
            recs[0].evidence
        );
        assert!(
            recs[2].evidence.contains("3.0 % of all requests"),
            "{}",
            recs[2].evidence
        );
    }
}
