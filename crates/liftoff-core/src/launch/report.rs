//! The launch report: the soft launch so far in one document a team forwards to its
//! stakeholders. Phase history, admissions per day, seed 002's success targets (uptime
//! 99.9 %, average response under 1,000 ms, errors under 1 %, rating above 4.0) judged on the
//! launch's whole span, incidents, feedback, scaling and readiness. It is gathered from the
//! services (the same answers the API gives for the same span), kept as a typed value and
//! rendered to Markdown here; JSON is its serialisation.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::feedback::{BacklogItem, FeedbackSummary};
use super::figures::LaunchSources;
use super::readiness::{CheckStatus, Readiness};
use super::scaling::ScalingReport;
use super::service::LaunchError;
use super::store::{AdmissionDay, PhaseChange};
use crate::incidents::{IncidentSeverity, IncidentStatus};
use crate::monitoring::filter::Filter;
use crate::monitoring::service::TimeRange;

/// How far back a launch report reaches at most.
pub const MAX_SPAN_DAYS: i64 = 90;
/// The span of a launch without asks or phase changes yet.
const DEFAULT_SPAN_DAYS: i64 = 7;
/// Feature requests listed.
const TOP_REQUESTS: usize = 5;

/// How a target's value must stand to its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    AtLeast,
    Below,
    Above,
}

impl Comparison {
    fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= target,
            Comparison::Below => value < target,
            Comparison::Above => value > target,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => "≥",
            Comparison::Below => "<",
            Comparison::Above => ">",
        }
    }
}

/// One success target and how the launch stands against it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Target {
    /// `uptime`, `avg_response_time_ms`, `error_rate` or `average_rating`.
    pub metric: &'static str,
    /// Over the report's span; `null` without data.
    pub value: Option<f64>,
    pub target: f64,
    pub comparison: Comparison,
    /// `null` without data.
    pub met: Option<bool>,
}

impl Target {
    fn judge(
        metric: &'static str,
        value: Option<f64>,
        target: f64,
        comparison: Comparison,
    ) -> Self {
        let met = value.map(|v| comparison.holds(v, target));
        Self {
            metric,
            value,
            target,
            comparison,
            met,
        }
    }
}

/// Requests of the apps over the report's span.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SpanTraffic {
    pub requests: u64,
    /// Fraction 0–1; `null` without requests.
    pub error_rate: Option<f64>,
    pub avg_response_time_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// An incident that started in the span or is still open.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IncidentLine {
    pub id: String,
    pub title: String,
    pub severity: IncidentSeverity,
    pub status: IncidentStatus,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Until resolution, or until the report for an open one.
    pub duration_minutes: i64,
}

/// Seats and the waitlist now.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ReportUsers {
    pub admitted: u64,
    pub user_limit: Option<u32>,
    pub waitlist: u64,
}

/// `GET /api/launch/report`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LaunchReport {
    pub generated_at: DateTime<Utc>,
    /// The span: from the launch's first ask or phase change (at most 90 days back) to now.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub phase: String,
    pub phase_history: Vec<PhaseChange>,
    pub users: ReportUsers,
    /// Per UTC day, oldest first; days without asks or seats are left out.
    pub admissions: Vec<AdmissionDay>,
    /// Seed 002's success targets over the span.
    pub targets: Vec<Target>,
    pub traffic: SpanTraffic,
    pub incidents: Vec<IncidentLine>,
    pub feedback: FeedbackSummary,
    /// The most asked-for features, by distinct users.
    pub top_requests: Vec<BacklogItem>,
    pub scaling: ScalingReport,
    pub readiness: Readiness,
}

impl LaunchSources<'_> {
    /// The launch so far, gathered from the services.
    pub async fn report(
        &self,
        now: DateTime<Utc>,
        instance_monthly_cost: Option<f64>,
    ) -> Result<LaunchReport, LaunchError> {
        let earliest = now - Duration::days(MAX_SPAN_DAYS);
        let (settings, days, counts) = tokio::join!(
            self.launch.settings(),
            self.launch.admissions_by_day(earliest),
            self.launch.counts(),
        );
        let (settings, days, counts) = (settings?, days?, counts?);
        let began = days
            .first()
            .map(|d| d.day)
            .into_iter()
            .chain(settings.phase_history.first().map(|p| p.at))
            .min()
            .unwrap_or(now - Duration::days(DEFAULT_SPAN_DAYS));
        let from = began.max(earliest);
        let span = TimeRange { from, to: now };
        let apps = Filter::default();
        let (summary, uptime, incidents, feedback, scaling, readiness) = tokio::join!(
            self.monitoring.summary(span, &apps),
            self.uptime_fraction(from),
            self.incidents.list(),
            self.launch.feedback_summary_and_backlog(),
            self.scaling(now, instance_monthly_cost),
            self.readiness(now),
        );
        let summary = summary?;
        let traffic = if summary.requests.total == 0 {
            SpanTraffic {
                requests: 0,
                error_rate: None,
                avg_response_time_ms: None,
                p95_ms: None,
            }
        } else {
            SpanTraffic {
                requests: summary.requests.total,
                error_rate: Some(summary.requests.error_rate),
                avg_response_time_ms: Some(summary.performance.avg_duration_ms),
                p95_ms: Some(summary.performance.p95_duration_ms),
            }
        };
        let (feedback, mut top_requests) = feedback?;
        let targets = vec![
            Target::judge("uptime", uptime?, 0.999, Comparison::AtLeast),
            Target::judge(
                "avg_response_time_ms",
                traffic.avg_response_time_ms,
                1_000.0,
                Comparison::Below,
            ),
            Target::judge("error_rate", traffic.error_rate, 0.01, Comparison::Below),
            Target::judge(
                "average_rating",
                feedback.average_rating,
                4.0,
                Comparison::Above,
            ),
        ];
        let mut incidents: Vec<IncidentLine> = incidents
            .map_err(|e| LaunchError::Sources(e.to_string()))?
            .into_iter()
            .filter(|i| i.started_at >= from || i.resolved_at.is_none())
            .map(|i| IncidentLine {
                duration_minutes: (i.resolved_at.unwrap_or(now) - i.started_at).num_minutes(),
                id: i.id,
                title: i.title,
                severity: i.severity,
                status: i.status,
                started_at: i.started_at,
                resolved_at: i.resolved_at,
            })
            .collect();
        incidents.sort_by_key(|i| i.started_at);
        top_requests.truncate(TOP_REQUESTS);
        Ok(LaunchReport {
            generated_at: now,
            from,
            to: now,
            phase: settings
                .phases
                .get(settings.phase)
                .map_or_else(String::new, |p| p.name.clone()),
            phase_history: settings.phase_history,
            users: ReportUsers {
                admitted: counts.admitted,
                user_limit: settings.user_limit,
                waitlist: counts.waiting,
            },
            // Read from the span's first day already: `from` is never before `earliest`.
            admissions: days,
            targets,
            traffic,
            incidents,
            feedback,
            top_requests,
            scaling: scaling?,
            readiness: readiness?,
        })
    }

    /// The share of passing checks over every enabled monitor's days from `from`'s day on;
    /// `None` without checks.
    async fn uptime_fraction(&self, from: DateTime<Utc>) -> Result<Option<f64>, LaunchError> {
        let sources = |e: crate::uptime::UptimeError| LaunchError::Sources(e.to_string());
        let (mut up, mut total) = (0u64, 0u64);
        for m in self.uptime.list().await.map_err(sources)? {
            if !m.enabled {
                continue;
            }
            for d in self.uptime.daily(m.id, from).await.map_err(sources)? {
                up += d.up;
                total += d.total;
            }
        }
        Ok((total > 0).then(|| up as f64 / total as f64))
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".to_owned())
}

/// A table cell: pipes and line breaks would break the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl Target {
    fn shown(&self, v: f64) -> String {
        match self.metric {
            "uptime" | "error_rate" => format!("{:.2} %", v * 100.0),
            "avg_response_time_ms" => format!("{v:.0} ms"),
            _ => format!("{v:.2}"),
        }
    }

    fn wanted(&self) -> String {
        format!("{} {}", self.comparison.symbol(), self.shown(self.target))
    }

    fn label(&self) -> &'static str {
        match self.metric {
            "uptime" => "Uptime",
            "avg_response_time_ms" => "Average response",
            "error_rate" => "Error rate",
            _ => "Average rating",
        }
    }
}

impl LaunchReport {
    /// The report as Markdown (GitHub-flavoured tables), for a wiki page, an email or a chat.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        // `write!` to a String cannot fail.
        let _ = writeln!(md, "# Launch report\n");
        let _ = writeln!(
            md,
            "{} to {} · phase **{}** · {} admitted{} · {} waiting\n",
            when(self.from),
            when(self.to),
            cell(&self.phase),
            self.users.admitted,
            self.users
                .user_limit
                .map_or_else(|| " (no limit)".to_owned(), |l| format!(" of {l}")),
            self.users.waitlist
        );

        let _ = writeln!(md, "## Success targets\n");
        let _ = writeln!(
            md,
            "| Target | Launch so far | Wanted | Met |\n|---|---|---|---|"
        );
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                t.label(),
                or_dash(t.value.map(|v| t.shown(v))),
                t.wanted(),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "no data",
                }
            );
        }
        let _ = writeln!(
            md,
            "\n{} requests; p95 {}.\n",
            self.traffic.requests,
            or_dash(self.traffic.p95_ms.map(|p| format!("{p:.0} ms")))
        );

        let _ = writeln!(md, "## Phases\n");
        if self.phase_history.is_empty() {
            let _ = writeln!(md, "Still in the first phase, **{}**.\n", cell(&self.phase));
        } else {
            let _ = writeln!(
                md,
                "| When | From | To | By | Note |\n|---|---|---|---|---|"
            );
            for p in &self.phase_history {
                let note = match (&p.reason, p.forced) {
                    (Some(r), true) => format!("forced: {}", cell(r)),
                    (None, true) => "forced".to_owned(),
                    (Some(r), false) => cell(r),
                    (None, false) => String::new(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {note} |",
                    when(p.at),
                    cell(&p.from),
                    cell(&p.to),
                    cell(&p.by)
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Admissions\n");
        if self.admissions.is_empty() {
            let _ = writeln!(md, "No one has asked for a seat yet.\n");
        } else {
            let _ = writeln!(md, "| Day | First asks | Seats given |\n|---|---|---|");
            for d in &self.admissions {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    d.day.format("%Y-%m-%d"),
                    d.asked,
                    d.admitted
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Incidents\n");
        if self.incidents.is_empty() {
            let _ = writeln!(md, "None.\n");
        } else {
            let _ = writeln!(
                md,
                "| Incident | Title | Severity | Status | Started | Duration |\n|---|---|---|---|---|---|"
            );
            for i in &self.incidents {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} min |",
                    cell(&i.id),
                    cell(&i.title),
                    i.severity.as_str(),
                    i.status.as_str(),
                    when(i.started_at),
                    i.duration_minutes
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Feedback\n");
        let _ = writeln!(
            md,
            "{} items, average rating {}.\n",
            self.feedback.count,
            or_dash(self.feedback.average_rating.map(|r| format!("{r:.2}")))
        );
        if !self.top_requests.is_empty() {
            let _ = writeln!(
                md,
                "| Most requested | Users | Average rating |\n|---|---|---|"
            );
            for r in &self.top_requests {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.1} |",
                    cell(&r.request),
                    r.users,
                    r.average_rating
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Scaling\n");
        if let Some(fit) = &self.scaling.fit {
            let _ = writeln!(
                md,
                "Daily peaks grow {:.1} % a week (R² {:.2}, {} days). {} instance(s) recommended for the next 90 days.\n",
                fit.weekly_growth * 100.0,
                fit.r_squared,
                fit.days,
                self.scaling.recommended_instances
            );
        }
        for r in &self.scaling.recommendations {
            let _ = writeln!(md, "- {}", cell(&r.message));
        }
        let _ = writeln!(md);

        let _ = writeln!(
            md,
            "## Readiness: {}\n",
            if self.readiness.ready {
                "ready"
            } else {
                "not ready"
            }
        );
        let _ = writeln!(md, "| Check | Status | Detail |\n|---|---|---|");
        for c in &self.readiness.checks {
            let status = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "**fail**",
            };
            let _ = writeln!(md, "| {} | {status} | {} |", c.name, cell(&c.detail));
        }
        let _ = writeln!(
            md,
            "\nGenerated {}.",
            self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_by_their_comparison_and_without_data_are_unknown() {
        assert_eq!(
            Target::judge("uptime", Some(0.999), 0.999, Comparison::AtLeast).met,
            Some(true)
        );
        assert_eq!(
            Target::judge("error_rate", Some(0.01), 0.01, Comparison::Below).met,
            Some(false)
        );
        assert_eq!(
            Target::judge("average_rating", Some(4.0), 4.0, Comparison::Above).met,
            Some(false)
        );
        assert_eq!(
            Target::judge("uptime", None, 0.999, Comparison::AtLeast).met,
            None
        );
    }

    #[test]
    fn table_cells_cannot_break_their_row() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
