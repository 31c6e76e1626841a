//! Incidents: `INC-YYYY-NNN`, severity, status with its timestamps, a timeline that alert
//! transitions join, impact computed from the data, postmortem and action items, and the SLA
//! of a month.
//!
//! Severity is `critical | major | minor` (an alert's `critical` opens a `critical` incident,
//! a `warning` would be `major`). An incident is stored as one JSON document with a version
//! (like a flag): it is read and written whole, and concurrent writers retry on the version.
//! The per-year number is allocated in the transaction that inserts the incident.

pub mod service;
mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use service::{IncidentError, IncidentsService};
pub use store::IncidentStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSeverity {
    Critical,
    Major,
    Minor,
}

impl IncidentSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Major => "major",
            Self::Minor => "minor",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
        }
    }

    pub const ALL: [Self; 4] = [
        Self::Investigating,
        Self::Identified,
        Self::Monitoring,
        Self::Resolved,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Alert,
    Update,
    StatusChange,
    Note,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub message: String,
    pub author: String,
    /// The alert this entry records, for `alert` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Postmortem {
    pub summary: String,
    pub what_went_well: String,
    pub what_could_be_improved: String,
    pub lessons: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionItem {
    pub id: i64,
    pub title: String,
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// `INC-YYYY-NNN`.
    pub id: String,
    pub title: String,
    pub severity: IncidentSeverity,
    pub status: IncidentStatus,
    pub started_at: DateTime<Utc>,
    pub identified_at: Option<DateTime<Utc>>,
    pub monitoring_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub description: Option<String>,
    pub root_cause: Option<String>,
    /// Why monitoring or review did not catch the cause before users did.
    #[serde(default)]
    pub why_missed: Option<String>,
    /// The immediate fix.
    pub resolution: Option<String>,
    /// What keeps it from happening again.
    #[serde(default)]
    pub long_term_fix: Option<String>,
    /// Who was told what and when (status page, customers, stakeholders).
    #[serde(default)]
    pub communication: Option<String>,
    pub postmortem: Postmortem,
    /// Oldest first.
    pub timeline: Vec<TimelineEntry>,
    pub action_items: Vec<ActionItem>,
    /// Alert rules whose transitions join this incident while it is open.
    #[serde(default)]
    pub alert_rules: Vec<i64>,
    /// Opened by a critical alert rather than a person.
    #[serde(default)]
    pub auto_opened: bool,
    /// Grows with every write (optimistic concurrency).
    pub version: i64,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }

    /// The window impact is computed over: start until resolution (or `now`).
    pub fn window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.started_at, self.resolved_at.unwrap_or(now))
    }

    pub(crate) fn push(&mut self, entry: TimelineEntry) {
        self.timeline.push(entry);
        self.timeline.sort_by_key(|e| e.at);
    }

    /// Moves to `status` at `at`, recording the timestamps and a `status_change` entry.
    pub(crate) fn set_status(&mut self, status: IncidentStatus, at: DateTime<Utc>, author: &str) {
        if status == self.status {
            return;
        }
        let from = self.status;
        self.status = status;
        match status {
            IncidentStatus::Investigating => {}
            IncidentStatus::Identified => self.identified_at = Some(at),
            IncidentStatus::Monitoring => self.monitoring_at = Some(at),
            IncidentStatus::Resolved => self.resolved_at = Some(at),
        }
        if status != IncidentStatus::Resolved {
            // Reopened.
            self.resolved_at = None;
        }
        self.push(TimelineEntry {
            at,
            kind: TimelineKind::StatusChange,
            message: format!(
                "Status changed from {} to {}",
                from.as_str(),
                status.as_str()
            ),
            author: author.to_owned(),
            alert_id: None,
        });
    }
}

/// `INC-2026-007`.
pub fn format_id(year: i32, seq: i64) -> String {
    format!("INC-{year}-{seq:03}")
}
