//! What alerts are made of: rules, alert instances, silences, maintenance windows, channels and
//! deliveries (the notification outbox).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::hooks::{AlertStatus, Severity};

/// What a rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of 5xx responses over the last 5 minutes, 0–1.
    ErrorRate,
    /// Latency percentiles over the last 5 minutes, milliseconds.
    LatencyP50,
    LatencyP95,
    LatencyP99,
    /// Operations over the last 5 minutes, 0–1.
    SuccessRate,
    CacheHitRate,
    FallbackRate,
    /// The latest system reading, percent.
    CpuPercent,
    MemoryPercent,
    DiskPercent,
    /// Failing uptime monitors (or 1/0 for the monitor in scope).
    UptimeFailing,
    /// SLO error-budget burn rate over a long and a short window (the smaller of the two).
    SloBurnRate,
    /// Product events over the last 5 minutes: of the scope's `event`, or all.
    EventCount,
    /// Guarded rollouts whose guardrails regressed (and that rolled back or paused) in the
    /// last 15 minutes.
    RolloutRegressions,
    /// Deployments of the last 2 hours whose verification found a significant regression.
    DeploymentRegression,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
        Metric::ErrorRate,
        Metric::LatencyP50,
        Metric::LatencyP95,
        Metric::LatencyP99,
        Metric::SuccessRate,
        Metric::CacheHitRate,
        Metric::FallbackRate,
        Metric::CpuPercent,
        Metric::MemoryPercent,
        Metric::DiskPercent,
        Metric::UptimeFailing,
        Metric::SloBurnRate,
        Metric::EventCount,
        Metric::RolloutRegressions,
        Metric::DeploymentRegression,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
            Metric::SuccessRate => "success_rate",
            Metric::CacheHitRate => "cache_hit_rate",
            Metric::FallbackRate => "fallback_rate",
            Metric::CpuPercent => "cpu_percent",
            Metric::MemoryPercent => "memory_percent",
            Metric::DiskPercent => "disk_percent",
            Metric::UptimeFailing => "uptime_failing",
            Metric::SloBurnRate => "slo_burn_rate",
            Metric::EventCount => "event_count",
            Metric::RolloutRegressions => "rollout_regressions",
            Metric::DeploymentRegression => "deployment_regression",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Gt,
    Lt,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Lt => value < threshold,
        }
    }
}

/// What part of the data a rule looks at; empty means everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `/route` or `METHOD:/route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// An uptime monitor id (for `uptime_failing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<i64>,
    /// A product event name (for `event_count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// The SRE workbook's multi-window burn-rate alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BurnPreset {
    /// 14.4× over 1 h and 5 m (2 % of a 30-day budget in an hour): page.
    Fast,
    /// 6× over 6 h and 30 m (5 % in 6 hours): page.
    Medium,
    /// 1× over 3 d and 6 h (10 % in 3 days): ticket.
    Slow,
}

impl BurnPreset {
    /// `(factor, long window, short window)` in seconds.
    pub fn windows(self) -> (f64, i64, i64) {
        match self {
            BurnPreset::Fast => (14.4, 3600, 300),
            BurnPreset::Medium => (6.0, 6 * 3600, 1800),
            BurnPreset::Slow => (1.0, 3 * 86_400, 6 * 3600),
        }
    }
}

/// An SLO for `slo_burn_rate`: the objective (e.g. 0.999) and the preset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Slo {
    pub objective: f64,
    pub preset: BurnPreset,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub metric: Metric,
    #[serde(default)]
    pub scope: RuleScope,
    pub op: Op,
    pub threshold: f64,
    /// How long the condition must hold before the alert fires.
    pub for_seconds: i64,
    /// How long a firing alert stays firing after the condition stops holding.
    pub keep_firing_for_seconds: i64,
    pub severity: Severity,
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Rule {
    /// The labels an alert of this rule carries (Alertmanager's `labels`).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            ("alertname".to_owned(), self.name.clone()),
            ("rule_id".to_owned(), self.id.to_string()),
            ("metric".to_owned(), self.metric.as_str().to_owned()),
            (
                "severity".to_owned(),
                match self.severity {
                    Severity::Warning => "warning",
                    Severity::Critical => "critical",
                }
                .to_owned(),
            ),
        ]);
        let s = &self.scope;
        for (k, v) in [
            ("service", s.service.clone()),
            ("endpoint", s.endpoint.clone()),
            ("operation", s.operation.clone()),
            ("monitor", s.monitor.map(|m| m.to_string())),
        ] {
            if let Some(v) = v {
                l.insert(k.to_owned(), v);
            }
        }
        l
    }
}

/// What people write to create or replace a rule.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RuleInput {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// One of `error_rate`, `latency_p50`, `latency_p95`, `latency_p99`, `success_rate`,
    /// `cache_hit_rate`, `fallback_rate`, `cpu_percent`, `memory_percent`, `disk_percent`,
    /// `uptime_failing`, `slo_burn_rate`, `event_count`, `rollout_regressions`,
    /// `deployment_regression`.
    #[schema(
        pattern = "^(error_rate|latency_p50|latency_p95|latency_p99|success_rate|cache_hit_rate|fallback_rate|cpu_percent|memory_percent|disk_percent|uptime_failing|slo_burn_rate|event_count|rollout_regressions|deployment_regression)$"
    )]
    pub metric: String,
    #[serde(default)]
    pub scope: RuleScope,
    #[serde(default = "default_op")]
    pub op: Op,
    /// For `slo_burn_rate`, defaults to the preset's factor.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Seconds (Prometheus' `for`).
    #[serde(default, alias = "for")]
    #[schema(minimum = 0, maximum = 2592000)]
    pub for_seconds: i64,
    #[serde(default, alias = "keep_firing_for")]
    #[schema(minimum = 0, maximum = 2592000)]
    pub keep_firing_for_seconds: i64,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub slo: Option<Slo>,
}

fn default_op() -> Op {
    Op::Gt
}
fn default_severity() -> Severity {
    Severity::Warning
}
fn default_true() -> bool {
    true
}

/// One alert instance: from the moment a rule's condition first held until it resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub severity: Severity,
    pub status: AlertStatus,
    /// The latest value seen.
    pub value: f64,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    /// When the condition first held.
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// The last evaluation at which the condition held.
    pub last_true_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    /// When a firing notification was last queued.
    pub notified_at: Option<DateTime<Utc>>,
    /// Whether a silence or maintenance window held back its notifications.
    pub suppressed: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", self.id)
    }
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `pending`, `firing` or `resolved`.
    pub status: Option<AlertStatus>,
    pub rule_id: Option<i64>,
    pub severity: Option<Severity>,
    /// Only alerts not resolved.
    #[serde(default)]
    pub active: bool,
    /// At most this many, newest first [default 100, at most 1000].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Holds back notifications of the alerts it matches while active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    pub id: i64,
    /// Matches alerts of this rule, if set.
    pub rule_id: Option<i64>,
    /// Matches alerts carrying all these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    pub fn matches(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.starts_at <= now
            && now < self.ends_at
            && self.rule_id.is_none_or(|r| r == alert.rule_id)
            && self
                .labels
                .iter()
                .all(|(k, v)| alert.labels.get(k) == Some(v))
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SilenceInput {
    pub rule_id: Option<i64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Defaults to now.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub comment: String,
}

/// A weekly recurrence: on these days, from `start` (UTC) for `duration_minutes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Weekly {
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, UTC.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[schema(minimum = 1, maximum = 10080)]
    pub duration_minutes: u32,
}

/// Notifications are held back while a window is active; alerts are still recorded. A window
/// with `gate` also puts the launch's apps into maintenance mode for its duration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub name: String,
    /// A one-off window.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// A recurring window.
    pub weekly: Option<Weekly>,
    /// Apps answer 503 while it is active (`/api/launch/status`, `liftoff.maintenance`).
    #[serde(default)]
    pub gate: bool,
    /// What apps show users while the window gates them.
    #[serde(default)]
    pub message: Option<String>,
    /// When set, every enabled notification channel is told this many minutes before each
    /// occurrence starts (0: no advance notice), when it starts and when it ends
    /// (`launch.maintenance` notices).
    #[serde(default)]
    pub notify_before_minutes: Option<u32>,
    pub created_by: String,
}

pub(crate) fn weekday(s: &str) -> Option<Weekday> {
    match s.to_ascii_lowercase().get(..3)? {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

impl MaintenanceWindow {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.active_until(now).is_some()
    }

    /// When the occurrence running at `now` ends; `None` when none runs.
    pub fn active_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.occurrences(now, now + chrono::Duration::nanoseconds(1))
            .into_iter()
            .map(|(_, ends)| ends)
            .max()
    }

    /// The occurrences `(start, end)` that overlap `[from, to)`, earliest first.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let overlaps = |s: DateTime<Utc>, e: DateTime<Utc>| s < to && from < e;
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            return if overlaps(s, e) {
                vec![(s, e)]
            } else {
                Vec::new()
            };
        }
        let Some(w) = self.weekly.as_ref() else {
            return Vec::new();
        };
        let Ok(start) = NaiveTime::parse_from_str(&w.start, "%H:%M") else {
            return Vec::new();
        };
        let len = chrono::Duration::minutes(i64::from(w.duration_minutes));
        // An occurrence may start up to a week before `from` and still run then.
        let mut day = from.date_naive() - chrono::Duration::days(7);
        let mut out = Vec::new();
        while day <= to.date_naive() {
            let begins = day.and_time(start).and_utc();
            if w.days.iter().any(|d| weekday(d) == Some(day.weekday()))
                && overlaps(begins, begins + len)
            {
                out.push((begins, begins + len));
            }
            day += chrono::Duration::days(1);
        }
        out
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MaintenanceInput {
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub weekly: Option<Weekly>,
    /// Also hold the launch's users out (maintenance mode for apps) while it is active.
    #[serde(default)]
    pub gate: bool,
    /// Shown to users while it gates them (at most 1,000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub message: Option<String>,
    /// Tell every enabled channel this many minutes ahead (0: no advance notice), at the
    /// start and at the end of each occurrence; absent: no notices.
    #[serde(default)]
    #[schema(maximum = 10080)]
    pub notify_before_minutes: Option<u32>,
}

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// A Slack-compatible incoming webhook (`text` + `blocks`).
    Slack {
        #[schema(pattern = "^https?://")]
        url: String,
    },
    /// A generic webhook receiving Alertmanager's v4 JSON.
    Webhook {
        #[schema(pattern = "^https?://")]
        url: String,
    },
    /// SMTP; `tls` is `none`, `starttls` or `tls`.
    Email {
        #[schema(min_length = 1)]
        host: String,
        #[schema(minimum = 0, maximum = 65535)]
        port: u16,
        #[serde(default = "default_tls")]
        #[schema(pattern = "^(none|starttls|tls)$")]
        tls: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[schema(min_length = 1)]
        from: String,
        #[schema(min_items = 1)]
        to: Vec<String>,
    },
}

fn default_tls() -> String {
    "starttls".to_owned()
}

pub const MASK: &str = "********";

fn mask_url(url: &str) -> String {
    // Keep the scheme, host and port; credentials, path, query and fragment of a webhook URL
    // are its secret.
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{}{host}/{MASK}", &url[..i + 3])
        }
        None => MASK.to_owned(),
    }
}

impl ChannelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Email { .. } => "email",
        }
    }

    /// The configuration with its secrets masked, for reading back and for the audit log.
    pub fn masked(&self) -> Self {
        match self {
            ChannelConfig::Slack { url } => ChannelConfig::Slack { url: mask_url(url) },
            ChannelConfig::Webhook { url } => ChannelConfig::Webhook { url: mask_url(url) },
            ChannelConfig::Email { password, .. } => {
                let mut c = self.clone();
                if let ChannelConfig::Email { password: p, .. } = &mut c {
                    *p = password.as_ref().map(|_| MASK.to_owned());
                }
                c
            }
        }
    }
}

/// The secret parts of a channel's configuration (a webhook's URL, an SMTP password): what is
/// sealed at rest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl ChannelSecrets {
    pub fn is_empty(&self) -> bool {
        self.url.is_none() && self.password.is_none()
    }
}

impl ChannelConfig {
    /// The configuration with its secrets masked, and the secrets apart.
    pub fn split_secrets(&self) -> (ChannelConfig, ChannelSecrets) {
        let secrets = match self {
            ChannelConfig::Slack { url } | ChannelConfig::Webhook { url } => ChannelSecrets {
                url: Some(url.clone()),
                password: None,
            },
            ChannelConfig::Email { password, .. } => ChannelSecrets {
                url: None,
                password: password.clone(),
            },
        };
        (self.masked(), secrets)
    }

    /// Puts secrets taken by [`Self::split_secrets`] back.
    pub fn with_secrets(mut self, secrets: ChannelSecrets) -> ChannelConfig {
        match &mut self {
            ChannelConfig::Slack { url } | ChannelConfig::Webhook { url } => {
                if let Some(u) = secrets.url {
                    *url = u;
                }
            }
            ChannelConfig::Email { password, .. } => {
                if secrets.password.is_some() {
                    *password = secrets.password;
                }
            }
        }
        self
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub config: ChannelConfig,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl Channel {
    pub fn masked(&self) -> Self {
        Self {
            config: self.config.masked(),
            ..self.clone()
        }
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ChannelInput {
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    pub config: ChannelConfig,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    Firing,
    Resolved,
    Test,
    /// A notice from another domain (`launch.admitted`): the payload names its `event`.
    Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Firing => "firing",
            DeliveryKind::Resolved => "resolved",
            DeliveryKind::Test => "test",
            DeliveryKind::Event => "event",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Firing, Self::Resolved, Self::Test, Self::Event]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One notification in the outbox: queued in the same place it is retried from, so nothing is
/// lost when Liftoff restarts or the receiver is down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub channel_id: i64,
    pub alert_id: Option<i64>,
    pub kind: DeliveryKind,
    /// The Alertmanager v4 webhook body; other channels are rendered from it.
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub status: DeliveryStatus,
    /// Why the last attempt failed, in Liftoff's words (status, what failed).
    pub last_error: Option<String>,
    /// The start of what the receiver answered to the last failed attempt (at most 100 bytes
    /// of cleaned text). Only admins see it: omitted for `read` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A notification waiting in the outbox for its first attempt at `due`.
    pub fn pending(
        channel_id: i64,
        kind: DeliveryKind,
        payload: serde_json::Value,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Self {
        Self {
            id: 0,
            channel_id,
            alert_id: None,
            kind,
            payload,
            attempts: 0,
            next_attempt_at: due,
            status: DeliveryStatus::Pending,
            last_error: None,
            response_excerpt: None,
            created_at: now,
            sent_at: None,
        }
    }
}

/// Which document table of [`AlertStore`](crate::alerts::AlertStore) a call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Rule,
    Silence,
    Maintenance,
    Channel,
}

impl DocKind {
    pub fn table(self) -> &'static str {
        match self {
            DocKind::Rule => "alert_rules",
            DocKind::Silence => "alert_silences",
            DocKind::Maintenance => "maintenance_windows",
            DocKind::Channel => "notification_channels",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn weekly_windows_cover_their_days_and_cross_midnight() {
        let w = MaintenanceWindow {
            id: 1,
            name: "nightly".into(),
            starts_at: None,
            ends_at: None,
            weekly: Some(Weekly {
                days: vec!["sun".into(), "Wednesday".into()],
                start: "23:00".into(),
                duration_minutes: 120,
            }),
            gate: false,
            message: None,
            notify_before_minutes: None,
            created_by: "system".into(),
        };
        // 2026-11-22 is a Sunday.
        assert!(w.active(at("2026-11-22T23:30:00Z")));
        assert_eq!(
            w.active_until(at("2026-11-23T00:30:00Z")),
            Some(at("2026-11-23T01:00:00Z")),
            "the occurrence that began on Sunday ends at 01:00"
        );
        assert_eq!(w.active_until(at("2026-11-23T01:00:00Z")), None);
        assert!(w.active(at("2026-11-23T00:59:00Z")), "runs into Monday");
        assert!(!w.active(at("2026-11-23T01:00:00Z")));
        assert!(!w.active(at("2026-11-23T23:30:00Z")), "not on Monday");
        assert!(w.active(at("2026-11-25T23:00:00Z")));
        let once = MaintenanceWindow {
            weekly: None,
            starts_at: Some(at("2026-11-22T10:00:00Z")),
            ends_at: Some(at("2026-11-22T11:00:00Z")),
            ..w
        };
        assert!(once.active(at("2026-11-22T10:30:00Z")));
        assert_eq!(
            once.active_until(at("2026-11-22T10:30:00Z")),
            Some(at("2026-11-22T11:00:00Z"))
        );
        assert!(!once.active(at("2026-11-22T11:00:00Z")));
    }

    #[test]
    fn silences_match_rule_and_labels_while_active() {
        let alert = Alert {
            id: 1,
            rule_id: 3,
            rule_name: "x".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            value: 1.0,
            summary: String::new(),
            labels: [("service".to_owned(), "shop".to_owned())].into(),
            started_at: at("2026-11-22T10:00:00Z"),
            fired_at: None,
            last_true_at: None,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            notified_at: None,
            suppressed: false,
        };
        let s = Silence {
            id: 1,
            rule_id: Some(3),
            labels: [("service".to_owned(), "shop".to_owned())].into(),
            starts_at: at("2026-11-22T09:00:00Z"),
            ends_at: at("2026-11-22T12:00:00Z"),
            created_by: "user:ada".into(),
            comment: String::new(),
        };
        let now = at("2026-11-22T10:00:00Z");
        assert!(s.matches(&alert, now));
        assert!(!s.matches(&alert, at("2026-11-22T12:00:00Z")), "ended");
        let other_rule = Silence {
            rule_id: Some(4),
            ..s.clone()
        };
        assert!(!other_rule.matches(&alert, now));
        let other_label = Silence {
            rule_id: None,
            labels: [("service".to_owned(), "api".to_owned())].into(),
            ..s
        };
        assert!(!other_label.matches(&alert, now));
    }

    #[test]
    fn secrets_are_masked() {
        let c = ChannelConfig::Slack {
            url: "https://hooks.slack.com/services/T0/B0/secret".into(),
        };
        assert_eq!(
            c.masked(),
            ChannelConfig::Slack {
                url: format!("https://hooks.slack.com/{MASK}")
            }
        );
        let e = ChannelConfig::Email {
            host: "smtp".into(),
            port: 587,
            tls: "starttls".into(),
            username: Some("u".into()),
            password: Some("hunter2".into()),
            from: "a@b".into(),
            to: vec!["c@d".into()],
        };
        assert!(
            !serde_json::to_string(&e.masked())
                .unwrap()
                .contains("hunter2")
        );
        for (url, masked) in [
            ("https://u:p@hooks.example/x?y", "https://hooks.example/"),
            ("https://hooks.example?token=abc", "https://hooks.example/"),
            ("http://127.0.0.1:9/a#b", "http://127.0.0.1:9/"),
        ] {
            assert_eq!(mask_url(url), format!("{masked}{MASK}"));
        }
        for c in [c, e] {
            let (masked, secrets) = c.split_secrets();
            assert_eq!(masked, c.masked());
            assert!(!secrets.is_empty());
            assert_eq!(masked.masked(), masked, "masking is idempotent");
            assert_eq!(masked.with_secrets(secrets), c);
        }
    }
}
