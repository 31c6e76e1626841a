//! The product analytics report of a month: users (total, new, MAU, average DAU), retention on
//! days 1, 7 and 30, feature adoption, a funnel with its biggest drop, the most common flow,
//! sessions with engaged (> 30 min a week) and power users (> 2 h a week), the most requested
//! features from feedback and the experiments with their decisions. Each figure is what the
//! analytics API answers for the same window (the window's end as its "now").

use chrono::{DateTime, Utc};
use liftoff_report::numbers::{count, or_dash, share};
use liftoff_report::{Block, Cell, Chart, ChartKind, Column, Document, Series, Table, Tone};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ReportError, Sources, fraction, period};
use crate::analytics::insights::{FlowRow, FunnelRequest, FunnelStep, SessionsReport};
use crate::experiments::model::ExperimentStatus;
use crate::experiments::results::DecisionStatus;
use crate::launch::feedback::BacklogItem;

/// Features (events) listed by users.
const TOP_FEATURES: usize = 10;
/// Steps of the default funnel: the most reached first events.
const FUNNEL_STEPS: usize = 4;
/// Feature requests listed.
const TOP_REQUESTS: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProductUsers {
    /// Users with an event before the window's end (first seen at any time).
    pub total: u64,
    /// Users first seen in the window.
    pub new: u64,
    /// Distinct users with an event in the window (its monthly active users).
    pub mau: u64,
    /// Daily active users averaged over the window's days.
    pub avg_dau: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Adoption {
    pub feature: String,
    pub users: u64,
    /// Fraction 0–1 of the window's active users.
    pub rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FunnelSummary {
    pub steps: Vec<FunnelStepRow>,
    /// Fraction 0–1 of the first step's users who reached the last.
    pub overall_conversion: f64,
    /// The step most users were lost before (1-based, never the first).
    pub biggest_drop_step: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FunnelStepRow {
    pub event: String,
    pub users: u64,
    /// Fraction 0–1 of the previous step's users.
    pub conversion_rate: f64,
    pub dropoff_rate: f64,
}

impl From<&FunnelStep> for FunnelStepRow {
    fn from(s: &FunnelStep) -> Self {
        Self {
            event: s.event_type.clone(),
            users: s.users,
            conversion_rate: s.conversion_rate,
            dropoff_rate: s.dropoff_rate,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProductSessions {
    pub sessions: u64,
    pub avg_duration_seconds: f64,
    /// Fraction 0–1 of sessions with one event.
    pub bounce_rate: f64,
    /// Users with more than 30 minutes of sessions a week.
    pub engaged_users: u64,
    /// Users with more than 2 hours a week.
    pub power_users: u64,
}

impl From<&SessionsReport> for ProductSessions {
    fn from(s: &SessionsReport) -> Self {
        Self {
            sessions: s.sessions,
            avg_duration_seconds: s.avg_duration_seconds,
            bounce_rate: s.bounce_rate,
            engaged_users: s.engaged_users,
            power_users: s.power_users,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ExperimentLine {
    pub key: String,
    pub name: String,
    pub status: ExperimentStatus,
    pub users: u64,
    pub decision: DecisionStatus,
    /// The variant to ship or keep.
    pub winner: Option<String>,
    pub why: String,
}

/// `GET /api/reports/product`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProductReport {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub users: ProductUsers,
    /// Fractions 0–1 of users active on day N after first seen; `null` when no cohort is old
    /// enough to tell.
    pub retention_d1: Option<f64>,
    pub retention_d7: Option<f64>,
    pub retention_d30: Option<f64>,
    pub adoption: Vec<Adoption>,
    pub funnel: Option<FunnelSummary>,
    /// The most common three events in a row within a session (not the same event thrice),
    /// and how often.
    pub top_flow: Option<FlowRow>,
    pub sessions: ProductSessions,
    pub feature_requests: Vec<BacklogItem>,
    pub experiments: Vec<ExperimentLine>,
}

/// Events Liftoff and the SDKs send about themselves, not features of the product.
fn is_internal(event: &str) -> bool {
    event.starts_with('$') && event != "$pageview" && event != "$screen"
}

impl Sources<'_> {
    /// The product report of `[from, to)`; `funnel` names its steps (by default the most
    /// reached first events).
    pub async fn product(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        funnel: Option<Vec<String>>,
    ) -> Result<ProductReport, ReportError> {
        let now = self.now();
        let end = to.min(now);
        let end_ms = end.timestamp_millis();
        let days = ((end - from).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
        let minutes = u32::try_from((end - from).num_minutes().max(1)).unwrap_or(u32::MAX);
        let windows = [minutes, u32::MAX / 2];
        let (counts, daily, retention, features, paths, sessions, milestones) = tokio::join!(
            self.events.active_user_counts(&windows, end_ms),
            self.events
                .new_vs_returning(days, liftoff_analytics::Bucket::Day, end_ms),
            self.events.retention(days.max(31.0), end_ms),
            self.events.features(days, TOP_FEATURES * 3, end_ms),
            self.events.paths(days, 20, end_ms),
            self.events.sessions(days, end_ms),
            self.events.milestones(days, end_ms),
        );
        let counts = counts?;
        let mau = counts.first().copied().unwrap_or(0);
        let daily = daily?;
        let dau_days = daily.len().max(1) as f64;
        let users = ProductUsers {
            total: counts.get(1).copied().unwrap_or(0),
            new: daily.iter().map(|r| r.new).sum(),
            mau,
            avg_dau: daily
                .iter()
                .map(|r| (r.new + r.returning) as f64)
                .sum::<f64>()
                / dau_days,
        };
        let retention = retention?;
        let mut features = features?.features;
        features.retain(|f| !is_internal(&f.feature));
        features.sort_by(|a, b| {
            b.unique_users
                .cmp(&a.unique_users)
                .then(a.feature.cmp(&b.feature))
        });
        let adoption: Vec<Adoption> = features
            .into_iter()
            .take(TOP_FEATURES)
            .map(|f| Adoption {
                rate: fraction(f.unique_users, mau),
                feature: f.feature,
                users: f.unique_users,
            })
            .collect();
        let steps = match funnel {
            Some(s) => s,
            None => milestones?
                .milestones
                .into_iter()
                .filter(|m| !is_internal(&m.event))
                .take(FUNNEL_STEPS)
                .map(|m| m.event)
                .collect(),
        };
        let funnel = if steps.len() >= 2 {
            let req = FunnelRequest {
                funnel_steps: steps,
                days: Some(days),
                conversion_window_days: None,
                breakdown: None,
            };
            let f = self.events.funnel(&req, end_ms).await?;
            let steps: Vec<FunnelStepRow> = f.analysis.iter().map(FunnelStepRow::from).collect();
            let biggest_drop_step = steps
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, s)| (i, steps[i - 1].users.saturating_sub(s.users)))
                .filter(|(_, lost)| *lost > 0)
                .max_by_key(|(i, lost)| (*lost, std::cmp::Reverse(*i)))
                .map(|(i, _)| i + 1);
            Some(FunnelSummary {
                steps,
                overall_conversion: f.overall_conversion,
                biggest_drop_step,
            })
        } else {
            None
        };
        // A page viewed three times is not a flow: the first with more than one event wins.
        let flows = paths?.flows;
        let top_flow = flows
            .iter()
            .find(|f| f.steps.iter().any(|s| s != &f.steps[0]))
            .or(flows.first())
            .cloned();
        let mut feature_requests = self.launch.feedback_backlog().await?;
        feature_requests.truncate(TOP_REQUESTS);
        let mut experiments = Vec::new();
        for e in self
            .experiments
            .list()
            .await
            .map_err(|e| ReportError::Sources(e.to_string()))?
        {
            if e.status == ExperimentStatus::Scheduled {
                continue;
            }
            let key = e.experiment.key.clone();
            let Ok(results) = self.experiments.results(&key).await else {
                continue;
            };
            experiments.push(ExperimentLine {
                name: e.experiment.name.clone(),
                status: e.status,
                users: results.variants.iter().map(|v| v.users).sum(),
                decision: results.decision.status,
                winner: results.decision.variant.clone(),
                why: results.decision.why.clone(),
                key,
            });
        }
        Ok(ProductReport {
            generated_at: now,
            from,
            to,
            users,
            retention_d1: retention.d1,
            retention_d7: retention.d7,
            retention_d30: retention.d30,
            adoption,
            funnel,
            top_flow,
            sessions: ProductSessions::from(&sessions?),
            feature_requests,
            experiments,
        })
    }
}

/// The most requested features, as the product and launch reports list them.
pub(crate) fn requests_table(items: &[BacklogItem], empty: &str) -> Table {
    Table {
        columns: vec![
            Column::left("Feature request"),
            Column::right("Users"),
            Column::right("Average rating"),
        ],
        rows: items
            .iter()
            .map(|r| {
                vec![
                    r.request.as_str().into(),
                    count(r.users).into(),
                    format!("{:.1}", r.average_rating).into(),
                ]
            })
            .collect(),
        empty: empty.to_owned(),
    }
}

impl ProductReport {
    pub fn document(&self) -> Document {
        let u = &self.users;
        let mut blocks = vec![
            Block::Heading {
                text: "Users".into(),
            },
            Block::Table(Table {
                columns: vec![Column::left("Measure"), Column::right("Value")],
                rows: vec![
                    vec!["Total users".into(), count(u.total).into()],
                    vec!["New users".into(), count(u.new).into()],
                    vec!["Monthly active users".into(), count(u.mau).into()],
                    vec![
                        "Average daily active users".into(),
                        count(u.avg_dau.round() as u64).into(),
                    ],
                ],
                empty: String::new(),
            }),
            Block::Heading {
                text: "Retention".into(),
            },
            Block::Table(Table {
                columns: vec![Column::left("Day"), Column::right("Retained")],
                rows: [
                    ("Day 1", self.retention_d1),
                    ("Day 7", self.retention_d7),
                    ("Day 30", self.retention_d30),
                ]
                .into_iter()
                .map(|(d, v)| vec![d.into(), or_dash(v, share).into()])
                .collect(),
                empty: String::new(),
            }),
            Block::Heading {
                text: "Feature adoption".into(),
            },
        ];
        if self.adoption.len() > 1 {
            blocks.push(Block::Chart(Chart {
                title: "Users per feature".into(),
                kind: ChartKind::Bar,
                unit: String::new(),
                x_labels: self.adoption.iter().map(|a| a.feature.clone()).collect(),
                series: vec![Series {
                    name: "Users".into(),
                    values: self.adoption.iter().map(|a| Some(a.users as f64)).collect(),
                }],
            }));
        }
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Feature"),
                Column::right("Users"),
                Column::right("Adoption"),
            ],
            rows: self
                .adoption
                .iter()
                .map(|a| {
                    vec![
                        a.feature.as_str().into(),
                        count(a.users).into(),
                        share(a.rate).into(),
                    ]
                })
                .collect(),
            empty: "No events this month.".into(),
        }));
        blocks.push(Block::Heading {
            text: "Funnel".into(),
        });
        match &self.funnel {
            None => blocks.push(Block::Paragraph {
                text: "Not enough distinct events for a funnel.".into(),
            }),
            Some(f) => {
                if let Some(step) = f.biggest_drop_step {
                    let (before, at) = (&f.steps[step - 2], &f.steps[step - 1]);
                    blocks.push(Block::Callout {
                        tone: Tone::Warning,
                        title: format!("Biggest drop: {} → {}", before.event, at.event),
                        text: format!(
                            "{} of {} users ({}) did not go on to {}.",
                            count(before.users - at.users),
                            count(before.users),
                            share(at.dropoff_rate),
                            at.event
                        ),
                    });
                }
                blocks.push(Block::Table(Table {
                    columns: vec![
                        Column::left("Step"),
                        Column::right("Users"),
                        Column::right("From previous"),
                        Column::right("Dropped"),
                    ],
                    rows: f
                        .steps
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let drop = if i == 0 {
                                "–".to_owned()
                            } else {
                                share(s.dropoff_rate)
                            };
                            let cell = if Some(i + 1) == f.biggest_drop_step {
                                Cell::toned(drop, Tone::Bad)
                            } else {
                                Cell::from(drop)
                            };
                            vec![
                                format!("{}. {}", i + 1, s.event).into(),
                                count(s.users).into(),
                                share(s.conversion_rate).into(),
                                cell,
                            ]
                        })
                        .collect(),
                    empty: String::new(),
                }));
                blocks.push(Block::Paragraph {
                    text: format!("Overall conversion {}.", share(f.overall_conversion)),
                });
            }
        }
        blocks.push(Block::Heading {
            text: "Most common flow".into(),
        });
        blocks.push(Block::Paragraph {
            text: match &self.top_flow {
                Some(f) => format!("{} ({} times)", f.steps.join(" → "), count(f.count)),
                None => "No session has three events yet.".into(),
            },
        });
        let s = &self.sessions;
        blocks.push(Block::Heading {
            text: "Sessions".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![Column::left("Measure"), Column::right("Value")],
            rows: vec![
                vec!["Sessions".into(), count(s.sessions).into()],
                vec![
                    "Average length".into(),
                    format!("{:.1} min", s.avg_duration_seconds / 60.0).into(),
                ],
                vec!["Bounce rate".into(), share(s.bounce_rate).into()],
                vec![
                    "Engaged users (> 30 min a week)".into(),
                    count(s.engaged_users).into(),
                ],
                vec![
                    "Power users (> 2 h a week)".into(),
                    count(s.power_users).into(),
                ],
            ],
            empty: String::new(),
        }));
        blocks.push(Block::Heading {
            text: "Feature requests".into(),
        });
        blocks.push(Block::Table(requests_table(
            &self.feature_requests,
            "No feature requests in the feedback.",
        )));
        blocks.push(Block::Heading {
            text: "Experiments".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Experiment"),
                Column::left("Status"),
                Column::right("Users"),
                Column::left("Decision"),
                Column::left("Why"),
            ],
            rows: self
                .experiments
                .iter()
                .map(|e| {
                    let (word, tone) = match e.decision {
                        DecisionStatus::Ship => ("ship", Tone::Good),
                        DecisionStatus::Rollback => ("roll back", Tone::Bad),
                        DecisionStatus::KeepRunning => ("keep running", Tone::Neutral),
                        DecisionStatus::Inconclusive => ("inconclusive", Tone::Warning),
                    };
                    let decision = match &e.winner {
                        Some(v) => format!("{word} {v}"),
                        None => word.to_owned(),
                    };
                    vec![
                        e.name.as_str().into(),
                        format!("{:?}", e.status).to_lowercase().into(),
                        count(e.users).into(),
                        Cell::toned(decision, tone),
                        e.why.as_str().into(),
                    ]
                })
                .collect(),
            empty: "No experiments ran.".into(),
        }));
        Document {
            title: "Product analytics report".into(),
            subtitle: period(self.from, self.to, self.generated_at),
            blocks,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} monthly active users ({} new), day-7 retention {}, {} sessions.",
            count(self.users.mau),
            count(self.users.new),
            or_dash(self.retention_d7, share),
            count(self.sessions.sessions)
        )
    }
}
