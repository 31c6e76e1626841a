//! Notices of scheduled maintenance: a window with `notify_before_minutes` tells the
//! notification channels ahead of each occurrence, when it starts and when it ends, so a team
//! (and, through a webhook, its users) hear of downtime before it happens. Which notices are
//! due is decided here, purely; the alerts service queues them under its lease, each exactly
//! once (a marker is written in the same transaction as the deliveries).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::model::MaintenanceWindow;

/// The `event` field of a maintenance notice.
pub const MAINTENANCE_EVENT: &str = "launch.maintenance";

/// How long after its moment a notice is still worth sending (a server that was down longer
/// stays silent rather than announce old news).
const LATE_BY_AT_MOST: Duration = Duration::hours(1);

/// Which moment of an occurrence a notice is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Upcoming,
    Started,
    Ended,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Upcoming => "upcoming",
            Stage::Started => "started",
            Stage::Ended => "ended",
        }
    }
}

/// One notice for one occurrence of a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowNotice {
    pub stage: Stage,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The notices of `w` due at `now`: each becomes due at its moment (the lead time before the
/// start, the start, the end) and stays due until the next moment (or an hour after the end),
/// so the caller's markers, not the tick's timing, make each one go out once.
pub fn due(w: &MaintenanceWindow, now: DateTime<Utc>) -> Vec<WindowNotice> {
    let Some(lead) = w.notify_before_minutes else {
        return Vec::new();
    };
    let lead = Duration::minutes(i64::from(lead));
    let mut out = Vec::new();
    for (starts_at, ends_at) in
        w.occurrences(now - LATE_BY_AT_MOST, now + lead + Duration::seconds(1))
    {
        let stage = if now >= ends_at {
            (now < ends_at + LATE_BY_AT_MOST).then_some(Stage::Ended)
        } else if now >= starts_at {
            Some(Stage::Started)
        } else if !lead.is_zero() && now >= starts_at - lead {
            Some(Stage::Upcoming)
        } else {
            None
        };
        if let Some(stage) = stage {
            out.push(WindowNotice {
                stage,
                starts_at,
                ends_at,
            });
        }
    }
    out
}

impl WindowNotice {
    /// The name under which this notice is recorded as sent: one per window, occurrence and
    /// stage.
    pub fn marker(&self, window_id: i64) -> String {
        format!(
            "maintenance-notice:{window_id}:{}:{}",
            self.starts_at.timestamp_millis(),
            self.stage.as_str()
        )
    }

    /// The webhook body. Slack and email render `title` and `summary`.
    pub fn payload(&self, w: &MaintenanceWindow) -> Value {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let what = if w.gate {
            "apps are in maintenance mode"
        } else {
            "alert notifications are held back"
        };
        let (title, summary) = match self.stage {
            Stage::Upcoming => (
                format!(
                    "Maintenance \"{}\" starts at {}",
                    w.name,
                    at(self.starts_at)
                ),
                format!(
                    "From {} to {} {what}.",
                    at(self.starts_at),
                    at(self.ends_at)
                ),
            ),
            Stage::Started => (
                format!("Maintenance \"{}\" has started", w.name),
                format!("Until {} {what}.", at(self.ends_at)),
            ),
            Stage::Ended => (
                format!("Maintenance \"{}\" has ended", w.name),
                format!(
                    "It ran from {} to {}.",
                    at(self.starts_at),
                    at(self.ends_at)
                ),
            ),
        };
        json!({
            "version": "1",
            "event": MAINTENANCE_EVENT,
            "stage": self.stage.as_str(),
            "title": title,
            "summary": summary,
            "window_id": w.id,
            "name": w.name,
            "message": w.message,
            "gate": w.gate,
            "starts_at": at(self.starts_at),
            "ends_at": at(self.ends_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::Weekly;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn window(lead: Option<u32>) -> MaintenanceWindow {
        MaintenanceWindow {
            id: 7,
            name: "database upgrade".into(),
            starts_at: Some(at("2026-12-06T10:00:00Z")),
            ends_at: Some(at("2026-12-06T11:00:00Z")),
            weekly: None,
            gate: true,
            message: Some("Back at 11:00 UTC".into()),
            notify_before_minutes: lead,
            created_by: "admin".into(),
        }
    }

    fn stages(w: &MaintenanceWindow, now: &str) -> Vec<Stage> {
        due(w, at(now)).into_iter().map(|n| n.stage).collect()
    }

    #[test]
    fn each_moment_is_due_from_its_time_until_the_next() {
        let w = window(Some(30));
        assert_eq!(stages(&w, "2026-12-06T09:29:59Z"), vec![]);
        assert_eq!(stages(&w, "2026-12-06T09:30:00Z"), vec![Stage::Upcoming]);
        assert_eq!(stages(&w, "2026-12-06T09:59:59Z"), vec![Stage::Upcoming]);
        assert_eq!(stages(&w, "2026-12-06T10:00:00Z"), vec![Stage::Started]);
        assert_eq!(stages(&w, "2026-12-06T10:59:59Z"), vec![Stage::Started]);
        assert_eq!(stages(&w, "2026-12-06T11:00:00Z"), vec![Stage::Ended]);
        assert_eq!(stages(&w, "2026-12-06T11:59:59Z"), vec![Stage::Ended]);
        // Old news is not sent.
        assert_eq!(stages(&w, "2026-12-06T12:00:00Z"), vec![]);
    }

    #[test]
    fn without_a_lead_time_only_start_and_end_and_without_the_setting_nothing() {
        let w = window(Some(0));
        assert_eq!(stages(&w, "2026-12-06T09:59:00Z"), vec![]);
        assert_eq!(stages(&w, "2026-12-06T10:00:00Z"), vec![Stage::Started]);
        assert!(due(&window(None), at("2026-12-06T10:30:00Z")).is_empty());
    }

    #[test]
    fn a_weekly_window_announces_each_occurrence_under_its_own_marker() {
        let w = MaintenanceWindow {
            starts_at: None,
            ends_at: None,
            weekly: Some(Weekly {
                // 2026-12-06 is a Sunday.
                days: vec!["sun".into(), "mon".into()],
                start: "23:30".into(),
                duration_minutes: 60,
            }),
            ..window(Some(45))
        };
        let sunday = due(&w, at("2026-12-06T22:50:00Z"));
        assert_eq!(sunday.len(), 1);
        assert_eq!(sunday[0].stage, Stage::Upcoming);
        assert_eq!(sunday[0].starts_at, at("2026-12-06T23:30:00Z"));
        // Across midnight the Sunday occurrence still runs.
        let running = due(&w, at("2026-12-07T00:10:00Z"));
        assert_eq!(running[0].stage, Stage::Started);
        assert_eq!(running[0].ends_at, at("2026-12-07T00:30:00Z"));
        // Monday's occurrence: a new marker.
        let monday = due(&w, at("2026-12-07T22:45:00Z"));
        assert_eq!(monday.len(), 1);
        assert_ne!(monday[0].marker(7), sunday[0].marker(7));
        assert_eq!(
            sunday[0].marker(7),
            format!(
                "maintenance-notice:7:{}:upcoming",
                at("2026-12-06T23:30:00Z").timestamp_millis()
            )
        );
    }

    #[test]
    fn the_payload_says_what_when_and_what_users_see() {
        let w = window(Some(30));
        let n = &due(&w, at("2026-12-06T09:45:00Z"))[0];
        let p = n.payload(&w);
        assert_eq!(p["event"], "launch.maintenance");
        assert_eq!(p["stage"], "upcoming");
        assert_eq!(p["window_id"], 7);
        assert_eq!(p["starts_at"], "2026-12-06T10:00:00Z");
        assert_eq!(p["ends_at"], "2026-12-06T11:00:00Z");
        assert_eq!(p["message"], "Back at 11:00 UTC");
        assert!(p["title"].as_str().unwrap().contains("database upgrade"));
        assert!(p["summary"].as_str().unwrap().contains("maintenance mode"));
    }
}
