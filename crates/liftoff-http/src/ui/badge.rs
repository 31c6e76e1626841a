//! Status badges: a status's label in a pill whose colour says how it stands. The colours are
//! classes of `app.css` (`.badge-ok`, `.badge-warn`, `.badge-crit`, `.badge-info`,
//! `.badge-muted`); [`Tone::of`] is the one place a status is mapped to its class.

use liftoff_core::deployments::VerificationStatus;
use liftoff_core::experiments::model::ExperimentStatus;
use liftoff_core::incidents::{IncidentSeverity, IncidentStatus};
use liftoff_core::launch::feedback::FeedbackStatus;
use liftoff_core::launch::presets::Level;
use liftoff_core::launch::readiness::CheckStatus;
use liftoff_core::launch::scaling::Severity;
use liftoff_core::uptime::MonitorStatus;
use maud::{Markup, html};

/// How a status stands, as a badge colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Crit,
    Info,
    Muted,
    /// The plain grey badge.
    Plain,
}

impl Tone {
    /// The badge's classes.
    pub fn class(self) -> &'static str {
        match self {
            Self::Ok => "badge badge-ok",
            Self::Warn => "badge badge-warn",
            Self::Crit => "badge badge-crit",
            Self::Info => "badge badge-info",
            Self::Muted => "badge badge-muted",
            Self::Plain => "badge",
        }
    }

    /// The tone and label of a status.
    pub fn of(status: impl Into<Status>) -> (Self, &'static str) {
        match status.into() {
            Status::Severity(s) => (
                match s {
                    IncidentSeverity::Critical => Self::Crit,
                    IncidentSeverity::Major => Self::Warn,
                    IncidentSeverity::Minor => Self::Plain,
                },
                s.as_str(),
            ),
            Status::Incident(s) => (
                if s == IncidentStatus::Resolved {
                    Self::Ok
                } else {
                    Self::Info
                },
                s.as_str(),
            ),
            Status::Monitor { status, enabled } => match (enabled, status) {
                (false, _) => (Self::Muted, "paused"),
                (_, MonitorStatus::Up) => (Self::Ok, "up"),
                (_, MonitorStatus::Pending) => (Self::Warn, "pending"),
                (_, MonitorStatus::Down) => (Self::Crit, "down"),
                (_, MonitorStatus::Unknown) => (Self::Plain, "not checked yet"),
            },
            Status::Check(c) => match c {
                CheckStatus::Pass => (Self::Ok, "pass"),
                CheckStatus::Warn => (Self::Warn, "warn"),
                CheckStatus::Fail => (Self::Crit, "fail"),
            },
            Status::Level(l) => match l {
                Level::Ok => (Self::Ok, "ok"),
                Level::Warning => (Self::Warn, "warning"),
                Level::Critical => (Self::Crit, "critical"),
            },
            Status::Advice(s) => match s {
                Severity::Info => (Self::Info, "info"),
                Severity::Warning => (Self::Warn, "warning"),
                Severity::Critical => (Self::Crit, "critical"),
            },
            Status::Feedback(f) => match f {
                FeedbackStatus::Open => (Self::Info, "open"),
                FeedbackStatus::Resolved => (Self::Ok, "resolved"),
            },
            Status::Verification(v) => match v {
                VerificationStatus::Passed => (Self::Ok, "passed"),
                VerificationStatus::Regressed => (Self::Crit, "regressed"),
                VerificationStatus::Pending => (Self::Info, "verifying"),
                VerificationStatus::NoData => (Self::Plain, "too little traffic"),
            },
            Status::Experiment(e) => match e {
                ExperimentStatus::Scheduled => (Self::Plain, "scheduled"),
                ExperimentStatus::Running => (Self::Info, "running"),
                ExperimentStatus::Stopped => (Self::Muted, "stopped"),
            },
        }
    }
}

/// Every status a badge is drawn for.
#[derive(Clone, Copy, Debug)]
pub enum Status {
    Severity(IncidentSeverity),
    Incident(IncidentStatus),
    /// A monitor's last state; a paused monitor is `paused` whatever it was.
    Monitor {
        status: MonitorStatus,
        enabled: bool,
    },
    /// A launch readiness check.
    Check(CheckStatus),
    /// A launch figure against its thresholds.
    Level(Level),
    /// How urgent a scaling recommendation is.
    Advice(Severity),
    Feedback(FeedbackStatus),
    /// A deployment's verification.
    Verification(VerificationStatus),
    Experiment(ExperimentStatus),
}

impl From<VerificationStatus> for Status {
    fn from(s: VerificationStatus) -> Self {
        Self::Verification(s)
    }
}

impl From<ExperimentStatus> for Status {
    fn from(s: ExperimentStatus) -> Self {
        Self::Experiment(s)
    }
}

impl From<CheckStatus> for Status {
    fn from(s: CheckStatus) -> Self {
        Self::Check(s)
    }
}

impl From<Level> for Status {
    fn from(s: Level) -> Self {
        Self::Level(s)
    }
}

impl From<Severity> for Status {
    fn from(s: Severity) -> Self {
        Self::Advice(s)
    }
}

impl From<FeedbackStatus> for Status {
    fn from(s: FeedbackStatus) -> Self {
        Self::Feedback(s)
    }
}

impl From<IncidentSeverity> for Status {
    fn from(s: IncidentSeverity) -> Self {
        Self::Severity(s)
    }
}

impl From<IncidentStatus> for Status {
    fn from(s: IncidentStatus) -> Self {
        Self::Incident(s)
    }
}

/// The badge of a status.
pub fn badge(status: impl Into<Status>) -> Markup {
    let (tone, label) = Tone::of(status);
    html! { span class=(tone.class()) { (label) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes_not_inline_colours() {
        assert_eq!(
            badge(IncidentSeverity::Critical).into_string(),
            r#"<span class="badge badge-crit">critical</span>"#
        );
        assert_eq!(
            badge(IncidentStatus::Resolved).into_string(),
            r#"<span class="badge badge-ok">resolved</span>"#
        );
        let paused = Status::Monitor {
            status: MonitorStatus::Down,
            enabled: false,
        };
        assert_eq!(Tone::of(paused), (Tone::Muted, "paused"));
        let unknown = Status::Monitor {
            status: MonitorStatus::Unknown,
            enabled: true,
        };
        assert_eq!(
            badge(unknown).into_string(),
            r#"<span class="badge">not checked yet</span>"#
        );
    }

    #[test]
    fn every_tone_has_its_rule_in_the_stylesheet() {
        let css = include_str!("../../assets/app.css");
        for tone in [Tone::Ok, Tone::Warn, Tone::Crit, Tone::Info, Tone::Muted] {
            let class = tone.class().trim_start_matches("badge ");
            assert!(css.contains(&format!(".{class} {{")), "{class}");
        }
    }
}
