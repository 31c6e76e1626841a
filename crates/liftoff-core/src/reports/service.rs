//! The archive of generated reports and the schedules that send them.
//!
//! A generated report is archived in every format at once, so last week's report keeps saying
//! what it said whatever changes later. A scheduled delivery is three idempotent steps keyed
//! by (schedule, period): archive (unique per period), queue one notice per channel in the
//! alerts outbox (a marker per period in the same transaction), then note the period as
//! delivered. A process that dies between them leaves the schedule due; the next run finds
//! the archive and the marker and sends nothing twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::schedule::{NewSchedule, Schedule};
use super::targets::Targets;
use super::{Format, Report, ReportError, ReportKind, ReportRequest, Sources};
use crate::auth::Actor;
use crate::clock::Clock;
use crate::store::StoreError;

/// Reports kept in the archive; the oldest beyond it are dropped.
pub const ARCHIVE_KEPT: usize = 1_000;
/// The `event` prefix of a report notice (its page is `/reports`).
pub const EVENT_PREFIX: &str = "reports.";

/// A report in the archive, without its bodies.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ArchivedReport {
    pub id: i64,
    pub kind: ReportKind,
    pub title: String,
    pub summary: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// The schedule that produced it; `null` when someone generated it.
    pub schedule_id: Option<i64>,
    /// The schedule's period (its occurrence) it was sent for.
    pub period: Option<DateTime<Utc>>,
    /// Size of the PDF, bytes.
    pub pdf_bytes: u64,
}

/// What the archive stores: the report's metadata and every format.
#[derive(Clone, Debug, PartialEq)]
pub struct NewArchive {
    pub meta: ArchivedReport,
    pub json: Vec<u8>,
    pub markdown: Vec<u8>,
    pub html: Vec<u8>,
    pub pdf: Vec<u8>,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    async fn create_schedule(&self, s: &Schedule) -> Result<Schedule, StoreError>;
    /// Oldest first.
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;
    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError>;
    /// Notes `period` as delivered (never moving backwards).
    async fn set_last_period(&self, id: i64, period: DateTime<Utc>) -> Result<(), StoreError>;
    /// Archives `report` unless its (schedule, period) is archived already; the archive's id
    /// either way. Drops the oldest beyond `keep`.
    async fn archive(&self, report: &NewArchive, keep: usize) -> Result<i64, StoreError>;
    /// Newest first.
    async fn archive_list(&self, limit: usize) -> Result<Vec<ArchivedReport>, StoreError>;
    async fn archived(&self, id: i64) -> Result<Option<ArchivedReport>, StoreError>;
    /// One format's bytes.
    async fn archived_body(&self, id: i64, format: Format) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Where report notices are queued (the alerts outbox in a running server).
#[async_trait]
pub trait ReportOutbox: Send + Sync {
    /// Queues `payload` for each channel once per `marker`: `false` when it was queued
    /// before. Unknown channels are skipped; the error says why nothing could be queued.
    async fn queue_once(
        &self,
        marker: &str,
        channels: &[i64],
        payload: serde_json::Value,
    ) -> Result<bool, String>;
    /// Whether the channel exists.
    async fn channel_exists(&self, id: i64) -> Result<bool, String>;
}

/// Reports computed at once. A weekly report holds a week of metric cells while it merges
/// them (tens of MB on a busy service); more at once would only share the same cores, so the
/// rest wait their turn instead of each holding its cells.
pub const CONCURRENT_REPORTS: usize = 2;
/// How long a report waits for its turn before the caller is told to come back.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Clone)]
pub struct ReportsService {
    store: Arc<dyn ReportStore>,
    clock: Arc<dyn Clock>,
    turns: Arc<tokio::sync::Semaphore>,
}

/// A report and its archive entry.
pub struct Generated {
    pub report: Report,
    pub archived: ArchivedReport,
}

/// What a schedule's period reports on: the weekly report the 7 days before the occurrence;
/// the monthly reports the calendar month of the day before it (on the 1st, the month that
/// just ended; later in a month, that month so far).
pub fn period_request(kind: ReportKind, period: DateTime<Utc>) -> ReportRequest {
    match kind {
        ReportKind::Performance | ReportKind::Product => ReportRequest {
            month: Some((period - Duration::days(1)).format("%Y-%m").to_string()),
            ..ReportRequest::of(kind)
        },
        _ => ReportRequest {
            from: Some(period - Duration::days(7)),
            to: Some(period),
            ..ReportRequest::of(kind)
        },
    }
}

impl ArchivedReport {
    /// The file name a download of `format` gets.
    pub fn file_name(&self, format: Format) -> String {
        super::file_name(self.kind, self.from, self.to, format)
    }
}

impl ReportsService {
    pub fn new(store: Arc<dyn ReportStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            turns: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_REPORTS)),
        }
    }

    /// Computes the report `req` asks for, at most [`CONCURRENT_REPORTS`] at once; `Busy`
    /// after [`QUEUE_WAIT`] in line.
    pub async fn compute(
        &self,
        sources: &Sources<'_>,
        req: &ReportRequest,
        targets: &Targets,
        instance_monthly_cost: Option<f64>,
    ) -> Result<Report, ReportError> {
        let _turn = tokio::time::timeout(QUEUE_WAIT, self.turns.acquire())
            .await
            .map_err(|_| ReportError::Busy)?
            .map_err(|_| ReportError::Busy)?;
        sources.compute(req, targets, instance_monthly_cost).await
    }

    pub fn store(&self) -> Arc<dyn ReportStore> {
        self.store.clone()
    }

    /// Archives `report` in every format.
    pub async fn archive(
        &self,
        report: Report,
        schedule: Option<(i64, DateTime<Utc>)>,
    ) -> Result<Generated, ReportError> {
        let (from, to) = report.span();
        let document = report.document();
        let pdf = liftoff_report::pdf(&document);
        let mut meta = ArchivedReport {
            id: 0,
            kind: report.kind(),
            title: document.title.clone(),
            summary: report.summary(),
            from,
            to,
            generated_at: report.generated_at(),
            schedule_id: schedule.map(|s| s.0),
            period: schedule.map(|s| s.1),
            pdf_bytes: pdf.len() as u64,
        };
        let entry = NewArchive {
            json: report.render(Format::Json).body,
            markdown: liftoff_report::markdown(&document).into_bytes(),
            html: liftoff_report::html(&document).into_bytes(),
            pdf,
            meta: meta.clone(),
        };
        meta.id = self.store.archive(&entry, ARCHIVE_KEPT).await?;
        Ok(Generated {
            report,
            archived: meta,
        })
    }

    pub async fn archive_list(&self, limit: usize) -> Result<Vec<ArchivedReport>, ReportError> {
        Ok(self
            .store
            .archive_list(limit.clamp(1, ARCHIVE_KEPT))
            .await?)
    }

    pub async fn archived(&self, id: i64) -> Result<ArchivedReport, ReportError> {
        self.store
            .archived(id)
            .await?
            .ok_or_else(|| ReportError::NotFound(format!("no archived report {id}")))
    }

    pub async fn archived_body(&self, id: i64, format: Format) -> Result<Vec<u8>, ReportError> {
        self.store
            .archived_body(id, format)
            .await?
            .ok_or_else(|| ReportError::NotFound(format!("no archived report {id}")))
    }

    pub async fn schedules(&self) -> Result<Vec<Schedule>, ReportError> {
        Ok(self.store.schedules().await?)
    }

    pub async fn create_schedule(
        &self,
        actor: &Actor,
        input: NewSchedule,
        outbox: &dyn ReportOutbox,
    ) -> Result<Schedule, ReportError> {
        for id in &input.channels {
            if !outbox
                .channel_exists(*id)
                .await
                .map_err(ReportError::Sources)?
            {
                return Err(ReportError::Invalid(format!(
                    "no alert channel {id}: create it under /api/alerts/channels first"
                )));
            }
        }
        let s = Schedule {
            id: 0,
            name: input.name,
            kind: input.kind,
            cron: input.cron,
            timezone: input.timezone,
            channels: input.channels,
            format: input.format,
            enabled: input.enabled,
            created_at: self.clock.now(),
            created_by: actor.to_string(),
            last_period: None,
        };
        Ok(self.store.create_schedule(&s).await?)
    }

    pub async fn delete_schedule(&self, id: i64) -> Result<(), ReportError> {
        if self.store.delete_schedule(id).await? {
            Ok(())
        } else {
            Err(ReportError::NotFound(format!("no report schedule {id}")))
        }
    }

    /// Generates, archives and queues every schedule due now; answers how many periods were
    /// delivered. A schedule that fails is logged and tried again at the next run.
    pub async fn run_due(
        &self,
        sources: &Sources<'_>,
        outbox: &dyn ReportOutbox,
        targets: &Targets,
        instance_monthly_cost: Option<f64>,
        external_url: &str,
    ) -> Result<usize, ReportError> {
        let now = self.clock.now();
        let mut delivered = 0;
        for s in self.store.schedules().await? {
            let Some(period) = s.due(now) else { continue };
            match self
                .deliver(
                    &s,
                    period,
                    sources,
                    outbox,
                    targets,
                    instance_monthly_cost,
                    external_url,
                )
                .await
            {
                Ok(queued) => {
                    delivered += 1;
                    tracing::info!(schedule = s.id, period = %period, queued, "Scheduled report delivered to the outbox.");
                }
                Err(e) => {
                    tracing::warn!(schedule = s.id, period = %period, error = %e, "Scheduled report not delivered; trying again at the next run.");
                }
            }
        }
        Ok(delivered)
    }

    /// Generates, archives and queues `period` of schedule `s`; idempotent per (schedule,
    /// period): the archive finds the report kept before and the outbox's marker refuses a
    /// second queueing (`false`).
    #[allow(clippy::too_many_arguments)]
    pub async fn deliver(
        &self,
        s: &Schedule,
        period: DateTime<Utc>,
        sources: &Sources<'_>,
        outbox: &dyn ReportOutbox,
        targets: &Targets,
        instance_monthly_cost: Option<f64>,
        external_url: &str,
    ) -> Result<bool, ReportError> {
        let req = period_request(s.kind, period);
        let report = self
            .compute(sources, &req, targets, instance_monthly_cost)
            .await?;
        let generated = self.archive(report, Some((s.id, period))).await?;
        let a = &generated.archived;
        let link = |f: Format| format!("{external_url}/reports/archive/{}.{}", a.id, f.as_str());
        let payload = json!({
            "version": "1",
            "event": format!("{EVENT_PREFIX}{}", s.kind.as_str()),
            "title": format!("{} ({} – {})", a.title, a.from.format("%Y-%m-%d"), a.to.format("%Y-%m-%d")),
            "summary": format!("{} Full report: {}", a.summary, link(Format::Html)),
            "report": {
                "archive_id": a.id,
                "kind": s.kind,
                "from": a.from,
                "to": a.to,
                "schedule_id": s.id,
                "period": period,
                "attach": s.format,
            },
            "links": {
                "html": link(Format::Html),
                "pdf": link(Format::Pdf),
                "md": link(Format::Md),
                "json": link(Format::Json),
            },
        });
        let marker = format!("report:{}:{}", s.id, period.timestamp());
        let queued = outbox
            .queue_once(&marker, &s.channels, payload)
            .await
            .map_err(ReportError::Sources)?;
        self.store.set_last_period(s.id, period).await?;
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_period_reports_the_week_before_or_the_month_it_closes() {
        let at = |d: u32| {
            Utc.with_ymd_and_hms(2026, 12, d, 9, 0, 0)
                .single()
                .unwrap_or_default()
        };
        let weekly = period_request(ReportKind::Weekly, at(7));
        assert_eq!(
            (weekly.from, weekly.to),
            (Some(at(7) - Duration::days(7)), Some(at(7)))
        );
        assert_eq!(weekly.month, None);
        assert_eq!(
            period_request(ReportKind::Product, at(1)).month.as_deref(),
            Some("2026-11"),
            "on the 1st, the month that ended"
        );
        let mid = period_request(ReportKind::Performance, at(15));
        assert_eq!(
            mid.month.as_deref(),
            Some("2026-12"),
            "mid-month: this month so far"
        );
        assert_eq!((mid.from, mid.to), (None, None));
    }
}
