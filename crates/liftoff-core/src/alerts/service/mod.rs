//! `AlertsService`: rules and their defaults, measuring, evaluating, alert
//! instances, silences, maintenance windows, channels and the notification outbox.
//!
//! - this module: settings, construction, default rules and rule validation;
//! - `documents`: CRUD of rules, alerts, silences, maintenance windows and channels;
//! - `delivery`: the notification outbox;
//! - `measure`: a rule's metric over its window;
//! - `evaluate`: one evaluation of every rule.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::eval::{AlertState, step};
use super::hooks::{AlertListener, AlertTransition, MonitorHealth, UptimeSource};
use super::model::*;
use super::notify::{Notifier, SendFailure, alertmanager_payload, test_payload};
use super::secrets::{Resealed, StoredChannel, reseal_channels};
use super::window_notices;
use crate::alerts::AlertStore;
use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::Clock;
use crate::monitoring::operations::service::OperationsService;
use crate::monitoring::service::TimeRange;
use crate::monitoring::{Filter, MonitoringService};
use crate::outbound::OutboundPolicy;
use crate::secret::SecretBox;
use crate::store::StoreError;

mod delivery;
mod documents;
mod evaluate;
mod measure;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Timing of evaluation and notification (Alertmanager's defaults unless set).
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// How often the evaluation job runs [15 s]; the delivery job runs at least every 5 s.
    pub interval: StdDuration,
    /// How long the first notification of a new alert waits [30 s].
    pub group_wait: StdDuration,
    /// How long before a still-firing alert is notified again [4 h].
    pub repeat_interval: StdDuration,
    /// The first retry's delay; each next one doubles, up to `retry_cap` [10 s].
    pub retry_base: StdDuration,
    pub retry_cap: StdDuration,
    /// Attempts before a delivery is marked failed [10].
    pub max_attempts: u32,
    /// Where people reach the dashboard (links in notifications).
    pub external_url: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            interval: StdDuration::from_secs(15),
            group_wait: StdDuration::from_secs(30),
            repeat_interval: StdDuration::from_secs(4 * 3600),
            retry_base: StdDuration::from_secs(10),
            retry_cap: StdDuration::from_secs(20 * 60),
            max_attempts: 10,
            external_url: "http://127.0.0.1:7070".to_owned(),
        }
    }
}

/// The window rate and latency rules look at.
const WINDOW: i64 = 5 * 60;

#[derive(Clone)]
pub struct AlertsService {
    store: Arc<dyn AlertStore>,
    monitoring: MonitoringService,
    operations: OperationsService,
    notifier: Arc<dyn Notifier>,
    listeners: Arc<Vec<Arc<dyn AlertListener>>>,
    uptime: Option<Arc<dyn UptimeSource>>,
    rollouts: Option<Arc<dyn super::hooks::RolloutSource>>,
    deployments: Option<Arc<dyn super::hooks::DeploymentSource>>,
    events: Option<Arc<dyn crate::analytics::insights::AnalyticsQueries>>,
    settings: Arc<AlertSettings>,
    /// Seals channel secrets at rest; without it (unit tests) they are stored as given.
    secrets: Option<Arc<SecretBox>>,
    /// Channels whose URL or SMTP host names a denied destination are refused.
    outbound: Arc<OutboundPolicy>,
    clock: Arc<dyn Clock>,
    /// Bumped by every maintenance-window change made here (the launch's hot path keys on it).
    windows_revision: Arc<std::sync::atomic::AtomicU64>,
}

fn dur(d: StdDuration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

fn to_value<T: Serialize>(t: &T) -> Result<serde_json::Value, AlertError> {
    serde_json::to_value(t).map_err(|e| AlertError::Store(StoreError::Corrupt(e.to_string())))
}

fn from_doc<T: DeserializeOwned>(id: i64, mut v: serde_json::Value) -> Result<T, StoreError> {
    if let Some(o) = v.as_object_mut() {
        o.insert("id".to_owned(), id.into());
    }
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("alert document {id}: {e}")))
}

/// The defaults of SPEC §6 (the launch playbook), created on first start.
pub fn default_rules(now: DateTime<Utc>) -> Vec<Rule> {
    let rule = |name: &str, metric, threshold, for_s, severity, description: &str| Rule {
        id: 0,
        name: name.to_owned(),
        metric,
        scope: RuleScope::default(),
        op: Op::Gt,
        threshold,
        for_seconds: for_s,
        keep_firing_for_seconds: 300,
        severity,
        enabled: true,
        description: description.to_owned(),
        slo: None,
        created_at: now,
        updated_at: now,
    };
    vec![
        rule(
            "High error rate",
            Metric::ErrorRate,
            0.05,
            120,
            Severity::Critical,
            "More than 5% of requests answered 5xx over the last 5 minutes.",
        ),
        rule(
            "Slow responses",
            Metric::LatencyP95,
            2000.0,
            300,
            Severity::Warning,
            "p95 latency above 2 s over the last 5 minutes.",
        ),
        rule(
            "High CPU",
            Metric::CpuPercent,
            80.0,
            300,
            Severity::Warning,
            "CPU above 80%.",
        ),
        rule(
            "High memory",
            Metric::MemoryPercent,
            90.0,
            300,
            Severity::Critical,
            "Memory above 90%.",
        ),
        rule(
            "Health check failing",
            Metric::UptimeFailing,
            0.0,
            60,
            Severity::Critical,
            "An uptime monitor is failing.",
        ),
    ]
}

/// Checks a rule as written; the message names what is wrong (and the known metrics).
pub fn validate_rule(input: &RuleInput) -> Result<(Metric, f64), AlertError> {
    let metric = Metric::parse(&input.metric).ok_or_else(|| {
        AlertError::Invalid(format!(
            "unknown metric `{}`; known metrics are {}",
            input.metric,
            Metric::ALL.map(Metric::as_str).join(", ")
        ))
    })?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AlertError::Invalid("name must be 1–200 characters".into()));
    }
    if input.for_seconds < 0 || input.keep_firing_for_seconds < 0 {
        return Err(AlertError::Invalid(
            "`for_seconds` and `keep_firing_for_seconds` must not be negative".into(),
        ));
    }
    if input.for_seconds > 30 * 86_400 || input.keep_firing_for_seconds > 30 * 86_400 {
        return Err(AlertError::Invalid(
            "`for_seconds` and `keep_firing_for_seconds` must be at most 30 days".into(),
        ));
    }
    let threshold = match (metric, input.threshold, input.slo) {
        (Metric::SloBurnRate, t, Some(slo)) => {
            if !(slo.objective > 0.0 && slo.objective < 1.0) {
                return Err(AlertError::Invalid(
                    "slo.objective must be between 0 and 1 (e.g. 0.999)".into(),
                ));
            }
            t.unwrap_or(slo.preset.windows().0)
        }
        (Metric::SloBurnRate, _, None) => {
            return Err(AlertError::Invalid(
                "slo_burn_rate needs `slo: {objective, preset: fast|medium|slow}`".into(),
            ));
        }
        (_, Some(t), _) => t,
        (_, None, _) => return Err(AlertError::Invalid("threshold is required".into())),
    };
    if !threshold.is_finite() {
        return Err(AlertError::Invalid("threshold must be a number".into()));
    }
    Ok((metric, threshold))
}

fn sum_rate(stats: impl Iterator<Item = (u64, u64)>) -> Option<f64> {
    let (errors, total) = stats.fold((0, 0), |(e, t), (de, dt)| (e + de, t + dt));
    (total > 0).then(|| errors as f64 / total as f64)
}

fn max_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

impl AlertsService {
    pub fn new(
        store: Arc<dyn AlertStore>,
        monitoring: MonitoringService,
        operations: OperationsService,
        notifier: Arc<dyn Notifier>,
        settings: AlertSettings,
    ) -> Self {
        Self {
            store,
            monitoring,
            operations,
            notifier,
            listeners: Arc::default(),
            uptime: None,
            rollouts: None,
            deployments: None,
            events: None,
            settings: Arc::new(settings),
            secrets: None,
            outbound: Arc::default(),
            clock: crate::clock::system(),
            windows_revision: Arc::default(),
        }
    }

    /// Reads the time (documents stamped, channel tests, notices queued) from `clock` instead
    /// of the system clock. Evaluation and delivery take `now` from their caller.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seals channel secrets (webhook URLs, SMTP passwords) with `secrets` when they are
    /// written; opens them only to send.
    pub fn with_secrets(mut self, secrets: Arc<SecretBox>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Refuses channels whose destination `outbound` denies (the notifier checks every
    /// connection too).
    pub fn with_outbound(mut self, outbound: Arc<OutboundPolicy>) -> Self {
        self.outbound = outbound;
        self
    }

    /// Seals what is not sealed under the current key yet (documents from before sealing, or
    /// from before a key change whose old key is still known); returns what it did. Runs at
    /// start.
    pub async fn seal_stored_secrets(&self) -> Result<Resealed, AlertError> {
        let Some(b) = &self.secrets else {
            return Ok(Resealed::default());
        };
        reseal_channels(&*self.store, Some(b), b, false, "notification_channel.seal").await
    }

    /// Adds a listener told about every alert transition (incidents).
    pub fn with_listener(mut self, listener: Arc<dyn AlertListener>) -> Self {
        let mut l: Vec<_> = self.listeners.iter().cloned().collect();
        l.push(listener);
        self.listeners = Arc::new(l);
        self
    }

    /// Where `uptime_failing` rules read monitor health.
    pub fn with_uptime(mut self, uptime: Arc<dyn UptimeSource>) -> Self {
        self.uptime = Some(uptime);
        self
    }

    /// Where `deployment_regression` rules read release verifications.
    pub fn with_deployments(
        mut self,
        deployments: Arc<dyn super::hooks::DeploymentSource>,
    ) -> Self {
        self.deployments = Some(deployments);
        self
    }

    /// Where `rollout_regressions` rules read guarded rollouts.
    pub fn with_rollouts(mut self, rollouts: Arc<dyn super::hooks::RolloutSource>) -> Self {
        self.rollouts = Some(rollouts);
        self
    }

    /// Where `event_count` rules read product events.
    pub fn with_events(
        mut self,
        events: Arc<dyn crate::analytics::insights::AnalyticsQueries>,
    ) -> Self {
        self.events = Some(events);
        self
    }

    pub fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    /// Creates the default rules the first time Liftoff starts on this store.
    pub async fn ensure_defaults(&self) -> Result<usize, AlertError> {
        if !self.store.mark_once("alerts.default_rules").await? {
            return Ok(0);
        }
        let rules = default_rules(self.clock.now());
        for r in &rules {
            let doc = to_value(r)?;
            let change = Change::new(&Actor::System, "alert_rule.create", "alert_rule", "")
                .after(doc.clone())
                .reason(Some("default rules on first start".into()));
            self.store
                .insert_alert_doc(DocKind::Rule, &doc, &change)
                .await?;
        }
        Ok(rules.len())
    }
}

/// The rule a guarded rollout arms when it is planned (not a default: the launch playbook's
/// defaults stay as SPEC §6 lists them).
pub const ROLLOUT_RULE: &str = "Guarded rollout regressed";

#[async_trait]
impl crate::flags::CriticalAlerts for AlertsService {
    async fn arm_rollout_alert(&self) -> Result<(), String> {
        let rules = self.rules().await.map_err(|e| e.to_string())?;
        if rules.iter().any(|r| r.metric == Metric::RolloutRegressions) {
            return Ok(());
        }
        let input = RuleInput {
            name: ROLLOUT_RULE.to_owned(),
            metric: Metric::RolloutRegressions.as_str().to_owned(),
            scope: RuleScope::default(),
            op: Op::Gt,
            threshold: Some(0.0),
            for_seconds: 0,
            keep_firing_for_seconds: 0,
            severity: Severity::Critical,
            enabled: true,
            description: "A guarded rollout's guardrail regressed: the flag was rolled back (or the plan paused). The flag's audit trail has the evidence.".to_owned(),
            slo: None,
        };
        match self.create_rule(&Actor::System, input).await {
            Ok(_) => Ok(()),
            // Another replica armed it meanwhile.
            Err(AlertError::Invalid(m)) if m.contains("exists") => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn firing_critical(&self) -> Vec<String> {
        match self.store.list_alerts(true, 1000).await {
            Ok(alerts) => alerts
                .into_iter()
                .filter(|a| a.status == AlertStatus::Firing && a.severity == Severity::Critical)
                .map(|a| a.rule_name)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not read firing alerts for rollouts.");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(metric: &str, for_seconds: i64) -> RuleInput {
        serde_json::from_value(serde_json::json!({
            "name": "r", "metric": metric, "threshold": 1.0, "for_seconds": for_seconds
        }))
        .unwrap()
    }

    #[test]
    fn rules_are_validated() {
        let e = validate_rule(&input("errors", 0)).unwrap_err().to_string();
        assert!(
            e.contains("unknown metric `errors`") && e.contains("slo_burn_rate"),
            "{e}"
        );
        let e = validate_rule(&input("error_rate", -1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("negative"), "{e}");
        assert!(validate_rule(&input("latency_p99", 60)).is_ok());
        let e = validate_rule(&input("slo_burn_rate", 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("slo"), "{e}");
        let mut slo = input("slo_burn_rate", 0);
        slo.threshold = None;
        slo.slo = Some(Slo {
            objective: 0.999,
            preset: BurnPreset::Fast,
        });
        assert_eq!(validate_rule(&slo).unwrap().1, 14.4, "the preset's factor");
    }

    #[test]
    fn the_defaults_follow_the_playbook() {
        let d = default_rules(Utc::now());
        let find = |m| d.iter().find(|r| r.metric == m).unwrap();
        assert_eq!(find(Metric::ErrorRate).threshold, 0.05);
        assert_eq!(find(Metric::ErrorRate).severity, Severity::Critical);
        assert_eq!(find(Metric::LatencyP95).threshold, 2000.0);
        assert_eq!(find(Metric::CpuPercent).severity, Severity::Warning);
        assert_eq!(find(Metric::MemoryPercent).threshold, 90.0);
        assert_eq!(find(Metric::UptimeFailing).severity, Severity::Critical);
    }
}
