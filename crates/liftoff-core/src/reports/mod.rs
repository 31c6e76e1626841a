//! Reports: the documents a team reads every week and forwards to stakeholders.
//!
//! One engine: a report is computed from the services ([`Sources`], never the stores) as a
//! typed value whose JSON is the API's answer, laid out once as a [`liftoff_report::Document`]
//! and rendered from that to Markdown, self-contained HTML and PDF. Every format therefore
//! shows the same figures, and each figure is what the API answers for the same window.
//!
//! - [`weekly`]: seed 003's weekly health report.
//! - [`incident`]: one incident's report (timeline, impact, SLA, root cause, postmortem).
//! - [`performance`]: a month's response-time trend (a tested verdict), opportunities and
//!   capacity with the growth fit `/api/launch/scaling` uses.
//! - [`product`]: a month's users, retention, adoption, funnel, flows, sessions, feature
//!   requests and experiments.
//! - the launch report (`crate::launch::report`), rendered by the same engine.
//! - [`schedule`]: when reports are generated and sent; [`service`]: the archive and delivery.

pub mod incident;
pub mod performance;
pub mod product;
pub mod schedule;
pub mod service;
pub mod targets;
pub mod weekly;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::sources::Sources;
pub use service::{ArchivedReport, ReportStore, ReportsService};
use targets::Targets;

/// The reports there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Weekly,
    Incident,
    Performance,
    Product,
    Launch,
}

impl ReportKind {
    pub const ALL: [Self; 5] = [
        Self::Weekly,
        Self::Incident,
        Self::Performance,
        Self::Product,
        Self::Launch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Incident => "incident",
            Self::Performance => "performance",
            Self::Product => "product",
            Self::Launch => "launch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Weekly => "Weekly health report",
            Self::Incident => "Incident report",
            Self::Performance => "Performance trend and capacity report",
            Self::Product => "Product analytics report",
            Self::Launch => "Launch report",
        }
    }
}

/// What a report is rendered as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Md,
    Html,
    Pdf,
}

impl Format {
    pub const ALL: [Self; 4] = [Self::Json, Self::Md, Self::Html, Self::Pdf];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Md => "md",
            Self::Html => "html",
            Self::Pdf => "pdf",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Md => "text/markdown; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Pdf => "application/pdf",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A service the report reads failed.
    #[error("a report source failed: {0}")]
    Sources(String),
    /// Other reports are being computed; try again shortly.
    #[error("other reports are being computed; retry in a few seconds")]
    Busy,
}

macro_rules! sources_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ReportError {
            fn from(e: $t) -> Self {
                Self::Sources(e.to_string())
            }
        }
    )*};
}
sources_error!(
    crate::store::StoreError,
    crate::uptime::UptimeError,
    crate::analytics::insights::InsightsError,
    crate::launch::LaunchError
);

impl From<crate::incidents::IncidentError> for ReportError {
    fn from(e: crate::incidents::IncidentError) -> Self {
        use crate::incidents::IncidentError as E;
        match e {
            E::NotFound(_) => Self::NotFound(e.to_string()),
            E::Invalid(m) => Self::Invalid(m),
            other => Self::Sources(other.to_string()),
        }
    }
}

/// What to report on: the kind and its window or subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub kind: ReportKind,
    /// The window's start (weekly: 7 days before `to` when absent).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// The window's end (weekly: now when absent).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// The incident, for `incident` (`INC-YYYY-NNN`).
    #[serde(default)]
    pub id: Option<String>,
    /// `YYYY-MM`, for `performance` and `product` (the current month by default), instead of
    /// `from` and `to`.
    #[serde(default)]
    pub month: Option<String>,
    /// The product report's funnel steps, in order (by default the most reached events).
    #[serde(default)]
    pub funnel: Option<Vec<String>>,
}

/// The longest window a report covers.
pub const MAX_WINDOW_DAYS: i64 = 93;

impl ReportRequest {
    /// A request for `kind` with every other field at its default.
    pub fn of(kind: ReportKind) -> Self {
        Self {
            kind,
            from: None,
            to: None,
            id: None,
            month: None,
            funnel: None,
        }
    }

    /// The window of a monthly report: `month`, else `from`/`to`, else the current month so
    /// far.
    pub fn month_window(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ReportError> {
        if let Some(m) = &self.month {
            if self.from.is_some() || self.to.is_some() {
                return Err(ReportError::Invalid(
                    "give `month` or `from` and `to`, not both".into(),
                ));
            }
            let (from, to) = crate::incidents::service::month_bounds(m)
                .ok_or_else(|| ReportError::Invalid(format!("month `{m}` must be YYYY-MM")))?;
            if from > now {
                return Err(ReportError::Invalid(format!("month `{m}` has not begun")));
            }
            return Ok((from, to));
        }
        if self.from.is_some() || self.to.is_some() {
            let to = self.to.unwrap_or(now);
            let from = self.from.unwrap_or(to - Duration::days(30));
            return Self {
                from: Some(from),
                to: Some(to),
                ..self.clone()
            }
            .window(now);
        }
        let month = crate::incidents::IncidentsService::current_month(now);
        let (from, _) = crate::incidents::service::month_bounds(&month)
            .ok_or_else(|| ReportError::Invalid(format!("month `{month}`")))?;
        Ok((from, now.max(from + Duration::minutes(1))))
    }

    /// The weekly window: `[from, to)`, 7 days back from `to` by default, at most
    /// [`MAX_WINDOW_DAYS`], never reaching past `now`.
    pub fn window(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ReportError> {
        let to = self.to.unwrap_or(now);
        let from = self.from.unwrap_or(to - Duration::days(7));
        if from >= to {
            return Err(ReportError::Invalid("`from` must be before `to`".into()));
        }
        if to - from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(ReportError::Invalid(format!(
                "a report covers at most {MAX_WINDOW_DAYS} days"
            )));
        }
        if from > now {
            return Err(ReportError::Invalid("`from` is in the future".into()));
        }
        Ok((from, to))
    }
}

/// A computed report.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Report {
    Weekly(Box<weekly::WeeklyReport>),
    Incident(Box<incident::IncidentReport>),
    Performance(Box<performance::PerformanceReport>),
    Product(Box<product::ProductReport>),
    Launch(Box<crate::launch::report::LaunchReport>),
}

/// A report in one format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub format: Format,
    pub body: Vec<u8>,
}

impl Report {
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Weekly(_) => ReportKind::Weekly,
            Report::Incident(_) => ReportKind::Incident,
            Report::Performance(_) => ReportKind::Performance,
            Report::Product(_) => ReportKind::Product,
            Report::Launch(_) => ReportKind::Launch,
        }
    }

    /// The window the report covers.
    pub fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Report::Weekly(r) => (r.from, r.to),
            Report::Incident(r) => r.incident.window(r.generated_at),
            Report::Performance(r) => (r.from, r.to),
            Report::Product(r) => (r.from, r.to),
            Report::Launch(r) => (r.from, r.to),
        }
    }

    pub fn generated_at(&self) -> DateTime<Utc> {
        match self {
            Report::Weekly(r) => r.generated_at,
            Report::Incident(r) => r.generated_at,
            Report::Performance(r) => r.generated_at,
            Report::Product(r) => r.generated_at,
            Report::Launch(r) => r.generated_at,
        }
    }

    pub fn document(&self) -> liftoff_report::Document {
        match self {
            Report::Weekly(r) => r.document(),
            Report::Incident(r) => r.document(),
            Report::Performance(r) => r.document(),
            Report::Product(r) => r.document(),
            Report::Launch(r) => r.document(),
        }
    }

    /// One line for a chat message or an archive listing.
    pub fn summary(&self) -> String {
        match self {
            Report::Weekly(r) => r.summary(),
            Report::Incident(r) => r.summary(),
            Report::Performance(r) => r.summary(),
            Report::Product(r) => r.summary(),
            Report::Launch(r) => r.summary(),
        }
    }

    pub fn render(&self, format: Format) -> Rendered {
        let body = match format {
            // Serialising plain data (strings, numbers, maps with string keys) cannot fail.
            Format::Json => serde_json::to_vec_pretty(self).unwrap_or_default(),
            Format::Md => liftoff_report::markdown(&self.document()).into_bytes(),
            Format::Html => liftoff_report::html(&self.document()).into_bytes(),
            Format::Pdf => liftoff_report::pdf(&self.document()),
        };
        Rendered { format, body }
    }

    /// A file name for a download: `weekly-2026-06-01-2026-06-08.pdf`.
    pub fn file_name(&self, format: Format) -> String {
        match self {
            Report::Incident(r) => format!("incident-{}.{}", r.incident.id, format.as_str()),
            _ => {
                let (from, to) = self.span();
                file_name(self.kind(), from, to, format)
            }
        }
    }
}

impl Sources<'_> {
    /// Computes the report `req` asks for.
    pub async fn compute(
        &self,
        req: &ReportRequest,
        targets: &Targets,
        instance_monthly_cost: Option<f64>,
    ) -> Result<Report, ReportError> {
        let now = self.now();
        Ok(match req.kind {
            ReportKind::Weekly => {
                let (from, to) = req.window(now)?;
                Report::Weekly(Box::new(self.weekly(from, to, targets).await?))
            }
            ReportKind::Incident => {
                let id = req.id.as_deref().ok_or_else(|| {
                    ReportError::Invalid("an incident report needs `id` (INC-YYYY-NNN)".into())
                })?;
                Report::Incident(Box::new(self.incident_report(id, targets).await?))
            }
            ReportKind::Performance => {
                let (from, to) = req.month_window(now)?;
                Report::Performance(Box::new(
                    self.performance_report(from, to, targets, instance_monthly_cost)
                        .await?,
                ))
            }
            ReportKind::Product => {
                let (from, to) = req.month_window(now)?;
                if let Some(steps) = &req.funnel
                    && !(2..=32).contains(&steps.len())
                {
                    return Err(ReportError::Invalid("a funnel has 2 to 32 steps".into()));
                }
                Report::Product(Box::new(self.product(from, to, req.funnel.clone()).await?))
            }
            ReportKind::Launch => Report::Launch(Box::new(
                self.launch_report(now, instance_monthly_cost).await?,
            )),
        })
    }
}

/// `weekly-2026-06-01-2026-06-08.pdf`: a report's file, generated now or archived.
pub fn file_name(
    kind: ReportKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    format: Format,
) -> String {
    format!(
        "{}-{}-{}.{}",
        kind.as_str(),
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d"),
        format.as_str()
    )
}

/// `2026-06-03 14:00 UTC`: how a report writes a moment.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `part / whole`, 0 for nothing of nothing.
pub(crate) fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `2026-06-01 00:00 – 2026-06-08 00:00 UTC · generated 2026-06-08 06:00 UTC`.
pub fn period(from: DateTime<Utc>, to: DateTime<Utc>, generated: DateTime<Utc>) -> String {
    format!(
        "{} – {} UTC · generated {} UTC",
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M"),
        generated.format("%Y-%m-%d %H:%M")
    )
}
