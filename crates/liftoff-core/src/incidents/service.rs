//! `IncidentsService`: incidents and their timeline, postmortem, action items, impact and SLA;
//! it is also the [`AlertListener`] that joins alert transitions to incidents.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::IncidentStore;
use super::{
    ActionItem, Incident, IncidentSeverity, IncidentStatus, Postmortem, TimelineEntry, TimelineKind,
};
use crate::alerts::hooks::{AlertListener, AlertStatus, AlertTransition, Severity};
use crate::analytics::EventStore;
use crate::analytics::insights::is_error_event;
use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::Clock;
use crate::monitoring::MetricsStore;
use crate::store::StoreError;

/// The service Liftoff's own API traffic is recorded under; not the app's impact.
const OWN_SERVICE: &str = "liftoff";
/// Events read at most to count affected users.
const MAX_EVENTS_READ: usize = 500_000;

#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    NotFound(String),
    #[error("incident {0} has no action item {1}")]
    ItemNotFound(String, i64),
    #[error("{0}")]
    Invalid(String),
    #[error("incident {0} changed too often meanwhile; retry")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(msg: impl Into<String>) -> IncidentError {
    IncidentError::Invalid(msg.into())
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    pub severity: IncidentSeverity,
    /// [default investigating]
    pub status: Option<IncidentStatus>,
    /// [default now]
    pub started_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: Option<String>,
    pub severity: Option<IncidentSeverity>,
    pub status: Option<IncidentStatus>,
    /// When the status changed [default now].
    pub status_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub root_cause: Option<String>,
    pub resolution: Option<String>,
    pub why_missed: Option<String>,
    pub long_term_fix: Option<String>,
    pub communication: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualKind {
    #[default]
    Update,
    Note,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineInput {
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    pub message: String,
    /// `update` (default) or `note`.
    #[serde(default)]
    pub kind: ManualKind,
    /// [default now]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionItemInput {
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub title: String,
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionItemPatch {
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub title: Option<String>,
    /// `""` clears it.
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub done: Option<bool>,
}

/// What the incident cost, computed from the stored data for `[from, to]`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Impact {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Requests of the window (every service but Liftoff's own), from the request metrics.
    /// The window is taken in whole minutes (hours or days where data is compacted).
    pub requests_total: u64,
    /// Of those, answered 5xx.
    pub requests_failed: u64,
    pub failed_percent: f64,
    /// Distinct users with at least one error event (`$exception`, `error`, `exception`,
    /// `*_error`) in the window, from the stored product events.
    pub users_affected: u64,
    pub error_events: u64,
    /// True when the window held more events than one computation reads (500,000).
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    pub impact: Impact,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SlaIncident {
    pub id: String,
    pub title: String,
    pub minutes: f64,
}

/// Downtime of resolved critical incidents in a month against the allowance of a target.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SlaReport {
    /// `YYYY-MM`.
    pub month: String,
    pub target_percent: f64,
    /// Minutes of the month times `1 - target`: 43.2 for 99.9 % of a 30-day month.
    pub allowance_minutes: f64,
    /// Resolved critical incidents' duration within the month.
    pub downtime_minutes: f64,
    pub remaining_minutes: f64,
    /// `100 × (1 - downtime / month)`.
    pub achieved_percent: f64,
    pub met: bool,
    pub incidents: Vec<SlaIncident>,
}

#[derive(Clone)]
pub struct IncidentsService {
    store: Arc<dyn IncidentStore>,
    metrics: Arc<dyn MetricsStore>,
    events: Arc<dyn EventStore>,
    /// Alert transitions are handled one at a time, so one alert opens one incident.
    alerts: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
}

fn text(field: &str, v: &str, max: usize) -> Result<String, IncidentError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(invalid(format!("{field} must be 1 to {max} characters")));
    }
    Ok(v.to_owned())
}

fn optional_text(
    v: Option<String>,
    max: usize,
    field: &str,
) -> Result<Option<String>, IncidentError> {
    match v.map(|s| s.trim().to_owned()) {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => {
            Err(invalid(format!("{field} must be at most {max} characters")))
        }
        other => Ok(other),
    }
}

fn not_future(at: DateTime<Utc>, now: DateTime<Utc>, field: &str) -> Result<(), IncidentError> {
    if at > now + Duration::minutes(5) {
        return Err(invalid(format!("{field} is in the future")));
    }
    Ok(())
}

/// `2026-03` → the first instants of that month and of the next.
pub fn month_bounds(month: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let start = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let end = Utc.with_ymd_and_hms(ny, nm, 1, 0, 0, 0).single()?;
    Some((start, end))
}

impl IncidentsService {
    pub fn new(
        store: Arc<dyn IncidentStore>,
        metrics: Arc<dyn MetricsStore>,
        events: Arc<dyn EventStore>,
    ) -> Self {
        Self {
            store,
            metrics,
            events,
            alerts: Arc::default(),
            clock: crate::clock::system(),
        }
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Newest first.
    pub async fn list(&self) -> Result<Vec<Incident>, IncidentError> {
        Ok(self.store.list_incidents().await?)
    }

    pub async fn get(&self, id: &str) -> Result<Incident, IncidentError> {
        self.store
            .get_incident(id)
            .await?
            .ok_or_else(|| IncidentError::NotFound(id.to_owned()))
    }

    pub async fn detail(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<IncidentDetail, IncidentError> {
        let incident = self.get(id).await?;
        let impact = self.impact(&incident, now).await?;
        Ok(IncidentDetail { incident, impact })
    }

    pub async fn create(
        &self,
        actor: &Actor,
        input: NewIncident,
    ) -> Result<Incident, IncidentError> {
        let now = self.clock.now();
        let started_at = input.started_at.unwrap_or(now);
        not_future(started_at, now, "started_at")?;
        let author = actor.to_string();
        let mut incident = Incident {
            id: String::new(),
            title: text("title", &input.title, 200)?,
            severity: input.severity,
            status: IncidentStatus::Investigating,
            started_at,
            identified_at: None,
            monitoring_at: None,
            resolved_at: None,
            created_at: now,
            updated_at: now,
            created_by: author.clone(),
            description: optional_text(input.description, 10_000, "description")?,
            root_cause: None,
            resolution: None,
            why_missed: None,
            long_term_fix: None,
            communication: None,
            postmortem: Postmortem::default(),
            timeline: Vec::new(),
            action_items: Vec::new(),
            alert_rules: Vec::new(),
            auto_opened: false,
            version: 1,
        };
        incident.push(TimelineEntry {
            at: started_at,
            kind: TimelineKind::Update,
            message: format!(
                "Incident opened ({}): {}",
                input.severity.as_str(),
                incident.title
            ),
            author: author.clone(),
            alert_id: None,
        });
        if let Some(status) = input.status {
            incident.set_status(status, now, &author);
        }
        self.insert(actor, incident).await
    }

    async fn insert(&self, actor: &Actor, incident: Incident) -> Result<Incident, IncidentError> {
        let change = Change::new(actor, "incident.create", "incident", "")
            .after(json!({"title": incident.title, "severity": incident.severity}));
        Ok(self.store.create_incident(&incident, &change).await?)
    }

    /// Reads, changes and writes the incident, retrying when another writer got there first.
    async fn modify<T>(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
        mut f: impl FnMut(&mut Incident) -> Result<T, IncidentError>,
    ) -> Result<(Incident, T), IncidentError> {
        for _ in 0..8 {
            let before = self.get(id).await?;
            let mut after = before.clone();
            let out = f(&mut after)?;
            after.version = before.version + 1;
            after.updated_at = self.clock.now();
            let change = Change::new(actor, action, "incident", id)
                .before(json!({"status": before.status, "version": before.version}))
                .after(json!({"status": after.status, "version": after.version}));
            if self
                .store
                .update_incident(&after, before.version, &change)
                .await?
            {
                return Ok((after, out));
            }
        }
        Err(IncidentError::Busy(id.to_owned()))
    }

    pub async fn patch(
        &self,
        actor: &Actor,
        id: &str,
        p: IncidentPatch,
    ) -> Result<Incident, IncidentError> {
        let now = self.clock.now();
        let author = actor.to_string();
        let title = p
            .title
            .as_deref()
            .map(|t| text("title", t, 200))
            .transpose()?;
        let description = p
            .description
            .map(|d| optional_text(Some(d), 10_000, "description"))
            .transpose()?;
        let root_cause = p
            .root_cause
            .map(|d| optional_text(Some(d), 10_000, "root_cause"))
            .transpose()?;
        let resolution = p
            .resolution
            .map(|d| optional_text(Some(d), 10_000, "resolution"))
            .transpose()?;
        let why_missed = p
            .why_missed
            .map(|d| optional_text(Some(d), 10_000, "why_missed"))
            .transpose()?;
        let long_term_fix = p
            .long_term_fix
            .map(|d| optional_text(Some(d), 10_000, "long_term_fix"))
            .transpose()?;
        let communication = p
            .communication
            .map(|d| optional_text(Some(d), 10_000, "communication"))
            .transpose()?;
        let status_at = p.status_at.unwrap_or(now);
        not_future(status_at, now, "status_at")?;
        if let Some(s) = p.started_at {
            not_future(s, now, "started_at")?;
        }
        let (incident, ()) = self
            .modify(actor, id, "incident.update", |i| {
                if let Some(t) = &title {
                    i.title.clone_from(t);
                }
                if let Some(s) = p.severity {
                    i.severity = s;
                }
                if let Some(s) = p.started_at {
                    i.started_at = s;
                }
                if let Some(d) = &description {
                    i.description.clone_from(d);
                }
                if let Some(d) = &root_cause {
                    i.root_cause.clone_from(d);
                }
                if let Some(d) = &resolution {
                    i.resolution.clone_from(d);
                }
                if let Some(d) = &why_missed {
                    i.why_missed.clone_from(d);
                }
                if let Some(d) = &long_term_fix {
                    i.long_term_fix.clone_from(d);
                }
                if let Some(d) = &communication {
                    i.communication.clone_from(d);
                }
                if let Some(s) = p.status {
                    i.set_status(s, status_at, &author);
                }
                if i.resolved_at.is_some_and(|r| r < i.started_at) {
                    return Err(invalid("the incident cannot be resolved before it started"));
                }
                Ok(())
            })
            .await?;
        Ok(incident)
    }

    pub async fn add_timeline(
        &self,
        actor: &Actor,
        id: &str,
        input: TimelineInput,
    ) -> Result<Incident, IncidentError> {
        let now = self.clock.now();
        let at = input.at.unwrap_or(now);
        not_future(at, now, "at")?;
        let entry = TimelineEntry {
            at,
            kind: match input.kind {
                ManualKind::Update => TimelineKind::Update,
                ManualKind::Note => TimelineKind::Note,
            },
            message: text("message", &input.message, 10_000)?,
            author: actor.to_string(),
            alert_id: None,
        };
        let (incident, ()) = self
            .modify(actor, id, "incident.timeline", |i| {
                i.push(entry.clone());
                Ok(())
            })
            .await?;
        Ok(incident)
    }

    pub async fn set_postmortem(
        &self,
        actor: &Actor,
        id: &str,
        postmortem: Postmortem,
    ) -> Result<Postmortem, IncidentError> {
        let fields = [
            &postmortem.summary,
            &postmortem.what_went_well,
            &postmortem.what_could_be_improved,
            &postmortem.lessons,
        ];
        if fields.iter().any(|f| f.chars().count() > 50_000) {
            return Err(invalid(
                "each postmortem section must be at most 50,000 characters",
            ));
        }
        let (incident, ()) = self
            .modify(actor, id, "incident.postmortem", |i| {
                i.postmortem = postmortem.clone();
                Ok(())
            })
            .await?;
        Ok(incident.postmortem)
    }

    pub async fn add_action_item(
        &self,
        actor: &Actor,
        id: &str,
        input: ActionItemInput,
    ) -> Result<ActionItem, IncidentError> {
        let title = text("title", &input.title, 500)?;
        let owner = optional_text(input.owner, 200, "owner")?;
        let (_, item) = self
            .modify(actor, id, "incident.action_item", |i| {
                let item = ActionItem {
                    id: i.action_items.iter().map(|a| a.id).max().unwrap_or(0) + 1,
                    title: title.clone(),
                    owner: owner.clone(),
                    due_date: input.due_date,
                    done: false,
                };
                i.action_items.push(item.clone());
                Ok(item)
            })
            .await?;
        Ok(item)
    }

    pub async fn update_action_item(
        &self,
        actor: &Actor,
        id: &str,
        item_id: i64,
        p: ActionItemPatch,
    ) -> Result<ActionItem, IncidentError> {
        let title = p
            .title
            .as_deref()
            .map(|t| text("title", t, 500))
            .transpose()?;
        let owner = p
            .owner
            .map(|o| optional_text(Some(o), 200, "owner"))
            .transpose()?;
        let (_, item) = self
            .modify(actor, id, "incident.action_item", |i| {
                let item = i
                    .action_items
                    .iter_mut()
                    .find(|a| a.id == item_id)
                    .ok_or_else(|| IncidentError::ItemNotFound(id.to_owned(), item_id))?;
                if let Some(t) = &title {
                    item.title.clone_from(t);
                }
                if let Some(o) = &owner {
                    item.owner.clone_from(o);
                }
                if let Some(d) = p.due_date {
                    item.due_date = Some(d);
                }
                if let Some(d) = p.done {
                    item.done = d;
                }
                Ok(item.clone())
            })
            .await?;
        Ok(item)
    }

    pub async fn delete_action_item(
        &self,
        actor: &Actor,
        id: &str,
        item_id: i64,
    ) -> Result<(), IncidentError> {
        self.modify(actor, id, "incident.action_item", |i| {
            let n = i.action_items.len();
            i.action_items.retain(|a| a.id != item_id);
            if i.action_items.len() == n {
                return Err(IncidentError::ItemNotFound(id.to_owned(), item_id));
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Failed requests and affected users of the incident's window.
    pub async fn impact(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<Impact, IncidentError> {
        let (from, to) = incident.window(now);
        let (from_min, to_min) = (
            from.timestamp().div_euclid(60),
            to.timestamp().div_euclid(60) + 1,
        );
        let (mut total, mut failed) = (0u64, 0u64);
        for (k, sketch) in self.metrics.request_totals(from_min, to_min).await? {
            if k.service == OWN_SERVICE {
                continue;
            }
            total += sketch.count();
            if k.status >= 500 {
                failed += sketch.count();
            }
        }
        let mut users = BTreeSet::new();
        let (mut errors, mut read, mut after, mut truncated) = (0u64, 0usize, 0i64, false);
        loop {
            let page = self
                .events
                .events_between(
                    from.timestamp_millis(),
                    to.timestamp_millis() + 1,
                    1000,
                    after,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            read += page.len();
            let full = page.len() == 1000;
            for e in page {
                if is_error_event(&e.event.event) {
                    errors += 1;
                    users.insert(e.event.user);
                }
            }
            if !full {
                break;
            }
            if read >= MAX_EVENTS_READ {
                truncated = true;
                break;
            }
        }
        Ok(Impact {
            from,
            to,
            requests_total: total,
            requests_failed: failed,
            failed_percent: if total == 0 {
                0.0
            } else {
                (failed as f64 * 100_000.0 / total as f64).round() / 1000.0
            },
            users_affected: users.len() as u64,
            error_events: errors,
            truncated,
        })
    }

    /// The SLA of `month` (`YYYY-MM`) against `target_percent` (for example 99.9).
    pub async fn sla(&self, month: &str, target_percent: f64) -> Result<SlaReport, IncidentError> {
        let (start, end) = month_bounds(month)
            .ok_or_else(|| invalid(format!("month `{month}` must be YYYY-MM")))?;
        if !(target_percent > 0.0 && target_percent < 100.0) {
            return Err(invalid("target must be between 0 and 100 (exclusive)"));
        }
        let month_minutes = (end - start).num_minutes() as f64;
        let allowance = month_minutes * (1.0 - target_percent / 100.0);
        let mut incidents = Vec::new();
        let mut downtime = 0.0;
        for i in self.list().await? {
            let (Some(resolved), IncidentSeverity::Critical) = (i.resolved_at, i.severity) else {
                continue;
            };
            let (a, b) = (i.started_at.max(start), resolved.min(end));
            if b <= a {
                continue;
            }
            let minutes = (b - a).num_seconds() as f64 / 60.0;
            downtime += minutes;
            incidents.push(SlaIncident {
                id: i.id,
                title: i.title,
                minutes: (minutes * 100.0).round() / 100.0,
            });
        }
        let round = |v: f64| (v * 100.0).round() / 100.0;
        Ok(SlaReport {
            month: month.to_owned(),
            target_percent,
            allowance_minutes: round(allowance),
            downtime_minutes: round(downtime),
            remaining_minutes: round(allowance - downtime),
            achieved_percent: (100_000.0 * (1.0 - downtime / month_minutes)).round() / 1000.0,
            met: downtime <= allowance,
            incidents,
        })
    }

    /// The month `now` is in, as `YYYY-MM`.
    pub fn current_month(now: DateTime<Utc>) -> String {
        format!("{:04}-{:02}", now.year(), now.month())
    }

    async fn handle_transition(&self, t: &AlertTransition) -> Result<(), IncidentError> {
        let _one_at_a_time = self.alerts.lock().await;
        let status = match t.status {
            AlertStatus::Pending => "PENDING",
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "RESOLVED",
        };
        let entry = TimelineEntry {
            at: t.at,
            kind: TimelineKind::Alert,
            message: if t.summary.is_empty() {
                format!("[{status}] {}", t.rule_name)
            } else {
                format!("[{status}] {}: {}", t.rule_name, t.summary)
            },
            author: "liftoff".into(),
            alert_id: Some(t.alert_id),
        };
        let open = self
            .list()
            .await?
            .into_iter()
            .find(|i| i.is_open() && i.alert_rules.contains(&t.rule_id));
        if let Some(incident) = open {
            self.modify(&Actor::System, &incident.id, "incident.timeline", |i| {
                i.push(entry.clone());
                Ok(())
            })
            .await?;
            return Ok(());
        }
        if t.status != AlertStatus::Firing || t.severity != Severity::Critical {
            return Ok(());
        }
        let now = self.clock.now();
        let mut incident = Incident {
            id: String::new(),
            title: t.rule_name.chars().take(200).collect(),
            severity: IncidentSeverity::Critical,
            status: IncidentStatus::Investigating,
            started_at: t.at.min(now),
            identified_at: None,
            monitoring_at: None,
            resolved_at: None,
            created_at: now,
            updated_at: now,
            created_by: Actor::System.to_string(),
            description: (!t.summary.is_empty()).then(|| t.summary.clone()),
            root_cause: None,
            resolution: None,
            why_missed: None,
            long_term_fix: None,
            communication: None,
            postmortem: Postmortem::default(),
            timeline: Vec::new(),
            action_items: Vec::new(),
            alert_rules: vec![t.rule_id],
            auto_opened: true,
            version: 1,
        };
        incident.push(entry);
        let created = self.insert(&Actor::System, incident).await?;
        tracing::info!(incident = %created.id, rule = %t.rule_name, "A critical alert opened an incident.");
        Ok(())
    }
}

#[async_trait]
impl AlertListener for IncidentsService {
    async fn on_transition(&self, t: &AlertTransition) {
        if let Err(e) = self.handle_transition(t).await {
            tracing::warn!(error = %e, rule = %t.rule_name, "Could not record an alert transition on an incident.");
        }
    }
}
