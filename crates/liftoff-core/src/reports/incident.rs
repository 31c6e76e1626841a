//! The incident report: the record a team sends after an outage. Header, timeline, impact
//! (failed requests of all, users affected, the SLA against the month's allowance), root cause
//! (symptom, cause, why it was missed), the immediate and long-term fixes, the postmortem,
//! action items with owners and due dates, and what was communicated.

use chrono::{DateTime, Utc};
use liftoff_report::numbers::{count, or_dash, share};
use liftoff_report::{Block, Cell, Column, Document, Table, Tone};
use serde::Serialize;
use utoipa::ToSchema;

use super::targets::Targets;
use super::{ReportError, Sources, fraction, when};
use crate::incidents::service::{Impact, SlaReport};
use crate::incidents::{Incident, IncidentsService, TimelineKind};

/// This incident against the month's downtime allowance.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IncidentSla {
    /// The month's SLA, every critical incident of it counted.
    pub month: SlaReport,
    /// Minutes of this incident inside its month (critical incidents count as downtime).
    pub counted_minutes: f64,
    /// Fraction of the month's allowance this incident used; `null` when it does not count.
    pub allowance_used: Option<f64>,
}

/// `GET /api/reports/incident?id=INC-YYYY-NNN`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IncidentReport {
    pub generated_at: DateTime<Utc>,
    pub incident: Incident,
    /// Until resolution, or until now for an open incident.
    pub duration_minutes: i64,
    /// What `GET /api/incidents/{id}` answers as its impact.
    pub impact: Impact,
    pub sla: IncidentSla,
}

impl Sources<'_> {
    /// The report of incident `id`; the SLA is judged against the uptime target.
    pub async fn incident_report(
        &self,
        id: &str,
        targets: &Targets,
    ) -> Result<IncidentReport, ReportError> {
        let now = self.now();
        let incident = self.incidents.get(id).await?;
        let month = IncidentsService::current_month(incident.started_at);
        let (impact, sla) = tokio::join!(
            self.incidents.impact(&incident, now),
            self.incidents.sla(&month, targets.uptime * 100.0),
        );
        let (impact, sla) = (impact?, sla?);
        let counted_minutes = sla
            .incidents
            .iter()
            .find(|i| i.id == incident.id)
            .map_or(0.0, |i| i.minutes);
        let allowance_used = (counted_minutes > 0.0 && sla.allowance_minutes > 0.0)
            .then(|| counted_minutes / sla.allowance_minutes);
        Ok(IncidentReport {
            generated_at: now,
            duration_minutes: (incident.resolved_at.unwrap_or(now) - incident.started_at)
                .num_minutes(),
            impact,
            sla: IncidentSla {
                month: sla,
                counted_minutes,
                allowance_used,
            },
            incident,
        })
    }
}

fn text_or(v: &Option<String>, missing: &str) -> String {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(missing)
        .to_owned()
}

impl IncidentReport {
    pub fn document(&self) -> Document {
        let i = &self.incident;
        let mut blocks = Vec::new();
        blocks.push(Block::Table(Table {
            columns: vec![Column::left("Field"), Column::left("Value")],
            rows: vec![
                vec!["Incident".into(), i.id.as_str().into()],
                vec!["Severity".into(), i.severity.as_str().into()],
                vec![
                    "Status".into(),
                    Cell::toned(
                        i.status.as_str(),
                        if i.is_open() { Tone::Bad } else { Tone::Good },
                    ),
                ],
                vec!["Started".into(), when(i.started_at).into()],
                vec![
                    "Resolved".into(),
                    i.resolved_at
                        .map_or_else(|| "not yet".to_owned(), when)
                        .into(),
                ],
                vec![
                    "Duration".into(),
                    format!("{} min", self.duration_minutes).into(),
                ],
                vec!["Opened by".into(), i.created_by.as_str().into()],
            ],
            empty: String::new(),
        }));

        blocks.push(Block::Heading {
            text: "Timeline".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("When"),
                Column::left("Kind"),
                Column::left("What happened"),
                Column::left("By"),
            ],
            rows: i
                .timeline
                .iter()
                .map(|e| {
                    vec![
                        when(e.at).into(),
                        match e.kind {
                            TimelineKind::Alert => "alert",
                            TimelineKind::Update => "update",
                            TimelineKind::StatusChange => "status",
                            TimelineKind::Note => "note",
                        }
                        .into(),
                        e.message.as_str().into(),
                        e.author.as_str().into(),
                    ]
                })
                .collect(),
            empty: "No timeline entries.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Impact".into(),
        });
        let im = &self.impact;
        let sla = &self.sla;
        blocks.push(Block::Table(Table {
            columns: vec![Column::left("Measure"), Column::right("Value")],
            rows: vec![
                vec![
                    "Requests failed".into(),
                    format!(
                        "{} of {} ({})",
                        count(im.requests_failed),
                        count(im.requests_total),
                        share(fraction(im.requests_failed, im.requests_total))
                    )
                    .into(),
                ],
                vec!["Users affected".into(), count(im.users_affected).into()],
                vec!["Error events".into(), count(im.error_events).into()],
                vec![
                    format!("Downtime counted in {}", sla.month.month).into(),
                    format!("{:.1} min", sla.counted_minutes).into(),
                ],
                vec![
                    format!("Monthly allowance at {:.2} %", sla.month.target_percent).into(),
                    format!(
                        "{:.1} min, {} used by this incident",
                        sla.month.allowance_minutes,
                        or_dash(sla.allowance_used, share)
                    )
                    .into(),
                ],
                vec![
                    "Month so far".into(),
                    Cell::toned(
                        format!(
                            "{:.3} % achieved, {:.1} min left",
                            sla.month.achieved_percent, sla.month.remaining_minutes
                        ),
                        if sla.month.met { Tone::Good } else { Tone::Bad },
                    ),
                ],
            ],
            empty: String::new(),
        }));
        if im.truncated {
            blocks.push(Block::Paragraph {
                text: "Users affected and error events count the first events of the window only."
                    .into(),
            });
        }

        blocks.push(Block::Heading {
            text: "Root cause".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![Column::left(""), Column::left("")],
            rows: vec![
                vec![
                    "Symptom".into(),
                    text_or(&i.description, "Not described.").into(),
                ],
                vec![
                    "Cause".into(),
                    text_or(&i.root_cause, "Not recorded yet.").into(),
                ],
                vec![
                    "Why it was missed".into(),
                    text_or(&i.why_missed, "Not recorded yet.").into(),
                ],
            ],
            empty: String::new(),
        }));

        blocks.push(Block::Heading {
            text: "Fixes".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![Column::left(""), Column::left("")],
            rows: vec![
                vec![
                    "Immediate".into(),
                    text_or(&i.resolution, "Not recorded yet.").into(),
                ],
                vec![
                    "Long term".into(),
                    text_or(&i.long_term_fix, "Not recorded yet.").into(),
                ],
            ],
            empty: String::new(),
        }));

        blocks.push(Block::Heading {
            text: "Postmortem".into(),
        });
        let pm = &i.postmortem;
        let part = |s: &str| {
            if s.trim().is_empty() {
                "Not written yet.".to_owned()
            } else {
                s.to_owned()
            }
        };
        for (title, text) in [
            ("Summary", &pm.summary),
            ("What went well", &pm.what_went_well),
            ("What could be improved", &pm.what_could_be_improved),
            ("Lessons", &pm.lessons),
        ] {
            blocks.push(Block::Subheading { text: title.into() });
            blocks.push(Block::Paragraph { text: part(text) });
        }

        blocks.push(Block::Heading {
            text: "Action items".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Action"),
                Column::left("Owner"),
                Column::left("Due"),
                Column::left("Status"),
            ],
            rows: i
                .action_items
                .iter()
                .map(|a| {
                    let overdue = !a.done
                        && a.due_date
                            .is_some_and(|d| d < self.generated_at.date_naive());
                    vec![
                        a.title.as_str().into(),
                        a.owner
                            .clone()
                            .unwrap_or_else(|| "unassigned".into())
                            .into(),
                        a.due_date
                            .map_or_else(|| "–".to_owned(), |d| d.to_string())
                            .into(),
                        if a.done {
                            Cell::toned("done", Tone::Good)
                        } else if overdue {
                            Cell::toned("overdue", Tone::Bad)
                        } else {
                            Cell::toned("open", Tone::Warning)
                        },
                    ]
                })
                .collect(),
            empty: "No action items.".into(),
        }));

        blocks.push(Block::Heading {
            text: "Communication".into(),
        });
        blocks.push(Block::Paragraph {
            text: text_or(&i.communication, "Nothing recorded."),
        });
        Document {
            title: format!("Incident report {}: {}", i.id, i.title),
            subtitle: format!(
                "Generated {}",
                self.generated_at.format("%Y-%m-%d %H:%M UTC")
            ),
            blocks,
        }
    }

    pub fn summary(&self) -> String {
        let i = &self.incident;
        format!(
            "{} ({}, {}): {} min, {} of {} requests failed, {} users affected.",
            i.id,
            i.severity.as_str(),
            i.status.as_str(),
            self.duration_minutes,
            count(self.impact.requests_failed),
            count(self.impact.requests_total),
            count(self.impact.users_affected)
        )
    }
}
