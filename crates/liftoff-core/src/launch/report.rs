//! The launch report: the soft launch so far in one document a team forwards to its
//! stakeholders. Phase history, admissions per day, seed 002's success targets (uptime
//! 99.9 %, average response under 1,000 ms, errors under 1 %, rating above 4.0) judged on the
//! launch's whole span, incidents, feedback, scaling and readiness. It is gathered from the
//! services (the same answers the API gives for the same span), kept as a typed value and laid
//! out here for the report engine (`crate::reports`); JSON is its serialisation.

use chrono::{DateTime, Duration, Utc};
use liftoff_report::numbers::{count, ms, or_dash};
use liftoff_report::{Block, Cell, Chart, ChartKind, Column, Document, Series, Table, Tone};
use serde::Serialize;
use utoipa::ToSchema;

use super::feedback::{BacklogItem, FeedbackSummary};
use super::readiness::{CheckStatus, Readiness};
use super::scaling::ScalingReport;
use super::service::LaunchError;
use super::store::{AdmissionDay, PhaseChange};
use crate::incidents::{IncidentSeverity, IncidentStatus};
use crate::monitoring::filter::Filter;
use crate::monitoring::service::TimeRange;
use crate::reports::targets::{Comparison, Target};
use crate::reports::when;
use crate::sources::Sources;

/// How far back a launch report reaches at most.
pub const MAX_SPAN_DAYS: i64 = 90;
/// The span of a launch without asks or phase changes yet.
const DEFAULT_SPAN_DAYS: i64 = 7;
/// Feature requests listed.
const TOP_REQUESTS: usize = 5;

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

impl Sources<'_> {
    /// The launch so far, gathered from the services.
    pub async fn launch_report(
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

impl LaunchReport {
    /// The report laid out for every format (`liftoff_report` renders it).
    pub fn document(&self) -> Document {
        let mut blocks = Vec::new();
        blocks.push(Block::Paragraph {
            text: format!(
                "Phase {} · {} admitted{} · {} waiting.",
                self.phase,
                count(self.users.admitted),
                self.users.user_limit.map_or_else(
                    || " (no limit)".to_owned(),
                    |l| format!(" of {}", count(u64::from(l)))
                ),
                count(self.users.waitlist)
            ),
        });
        blocks.push(Block::Heading {
            text: "Success targets".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Target"),
                Column::right("Launch so far"),
                Column::right("Wanted"),
                Column::left("Status"),
            ],
            rows: self
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
                .collect(),
            empty: String::new(),
        }));
        blocks.push(Block::Paragraph {
            text: format!(
                "{} requests; p95 {}.",
                count(self.traffic.requests),
                or_dash(self.traffic.p95_ms, ms)
            ),
        });

        blocks.push(Block::Heading {
            text: "Phases".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("When"),
                Column::left("From"),
                Column::left("To"),
                Column::left("By"),
                Column::left("Note"),
            ],
            rows: self
                .phase_history
                .iter()
                .map(|p| {
                    let note = match (&p.reason, p.forced) {
                        (Some(r), true) => format!("forced: {r}"),
                        (None, true) => "forced".to_owned(),
                        (Some(r), false) => r.clone(),
                        (None, false) => String::new(),
                    };
                    vec![
                        when(p.at).into(),
                        p.from.as_str().into(),
                        p.to.as_str().into(),
                        p.by.as_str().into(),
                        note.into(),
                    ]
                })
                .collect(),
            empty: format!("Still in the first phase, {}.", self.phase),
        }));

        blocks.push(Block::Heading {
            text: "Admissions".into(),
        });
        if self.admissions.len() > 1 {
            blocks.push(Block::Chart(Chart {
                title: "First asks and seats given per day".into(),
                kind: ChartKind::Bar,
                unit: "users".into(),
                x_labels: self
                    .admissions
                    .iter()
                    .map(|d| d.day.format("%m-%d").to_string())
                    .collect(),
                series: vec![
                    Series {
                        name: "First asks".into(),
                        values: self
                            .admissions
                            .iter()
                            .map(|d| Some(d.asked as f64))
                            .collect(),
                    },
                    Series {
                        name: "Seats given".into(),
                        values: self
                            .admissions
                            .iter()
                            .map(|d| Some(d.admitted as f64))
                            .collect(),
                    },
                ],
            }));
        }
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Day"),
                Column::right("First asks"),
                Column::right("Seats given"),
            ],
            rows: self
                .admissions
                .iter()
                .map(|d| {
                    vec![
                        d.day.format("%Y-%m-%d").to_string().into(),
                        count(d.asked).into(),
                        count(d.admitted).into(),
                    ]
                })
                .collect(),
            empty: "No one has asked for a seat yet.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Incidents".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Incident"),
                Column::left("Title"),
                Column::left("Severity"),
                Column::left("Status"),
                Column::left("Started"),
                Column::right("Duration"),
            ],
            rows: self
                .incidents
                .iter()
                .map(|i| {
                    vec![
                        i.id.as_str().into(),
                        i.title.as_str().into(),
                        i.severity.as_str().into(),
                        i.status.as_str().into(),
                        when(i.started_at).into(),
                        format!("{} min", i.duration_minutes).into(),
                    ]
                })
                .collect(),
            empty: "None.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Feedback".into(),
        });
        blocks.push(Block::Paragraph {
            text: format!(
                "{} items, average rating {}.",
                count(self.feedback.count),
                or_dash(self.feedback.average_rating, |r| format!("{r:.2}"))
            ),
        });
        if !self.top_requests.is_empty() {
            blocks.push(Block::Table(crate::reports::product::requests_table(
                &self.top_requests,
                "",
            )));
        }

        blocks.push(Block::Heading {
            text: "Scaling".into(),
        });
        if let Some(fit) = &self.scaling.fit {
            blocks.push(Block::Paragraph {
                text: format!(
                    "Daily peaks grow {:.1} % a week (R² {:.2}, {} days). {} instance(s) recommended for the next 90 days.",
                    fit.weekly_growth * 100.0,
                    fit.r_squared,
                    fit.days,
                    self.scaling.recommended_instances
                ),
            });
        }
        if !self.scaling.recommendations.is_empty() {
            blocks.push(Block::Bullets {
                items: self
                    .scaling
                    .recommendations
                    .iter()
                    .map(|r| r.message.clone())
                    .collect(),
            });
        }

        blocks.push(Block::Heading {
            text: format!(
                "Readiness: {}",
                if self.readiness.ready {
                    "ready"
                } else {
                    "not ready"
                }
            ),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Check"),
                Column::left("Status"),
                Column::left("Detail"),
            ],
            rows: self
                .readiness
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.into(),
                        match c.status {
                            CheckStatus::Pass => Cell::toned("pass", Tone::Good),
                            CheckStatus::Warn => Cell::toned("warn", Tone::Warning),
                            CheckStatus::Fail => Cell::toned("fail", Tone::Bad),
                        },
                        c.detail.as_str().into(),
                    ]
                })
                .collect(),
            empty: String::new(),
        }));
        Document {
            title: "Launch report".into(),
            subtitle: crate::reports::period(self.from, self.to, self.generated_at),
            blocks,
        }
    }

    /// One line for a chat message.
    pub fn summary(&self) -> String {
        let missed = self.targets.iter().filter(|t| t.met == Some(false)).count();
        format!(
            "Phase {}: {} admitted, {} waiting; {} of {} targets missed; {}.",
            self.phase,
            count(self.users.admitted),
            count(self.users.waitlist),
            missed,
            self.targets.len(),
            if self.readiness.ready {
                "ready"
            } else {
                "not ready"
            }
        )
    }
}
