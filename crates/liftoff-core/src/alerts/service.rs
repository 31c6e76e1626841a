//! `AlertsService`: rules and their defaults, measuring, evaluating (under a lease), alert
//! instances, silences, maintenance windows, channels and the notification outbox.

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
use crate::audit::Change;
use crate::auth::Actor;
use crate::monitoring::operations::service::OperationsService;
use crate::monitoring::service::TimeRange;
use crate::monitoring::{Filter, MonitoringService};
use crate::outbound::OutboundPolicy;
use crate::secret::SecretBox;
use crate::store::{AlertStore, StoreError};

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
    /// This replica's name for the lease.
    pub holder: String,
    /// How long a lease lasts without renewal.
    pub lease_ttl: StdDuration,
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
            holder: format!("liftoff-{:016x}", rand::random::<u64>()),
            lease_ttl: StdDuration::from_secs(60),
            external_url: "http://127.0.0.1:7070".to_owned(),
        }
    }
}

const LEASE: &str = "alerts";
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
    events: Option<Arc<dyn crate::analytics::insights::AnalyticsQueries>>,
    settings: Arc<AlertSettings>,
    /// Seals channel secrets at rest; without it (unit tests) they are stored as given.
    secrets: Option<Arc<SecretBox>>,
    /// Channels whose URL or SMTP host names a denied destination are refused.
    outbound: Arc<OutboundPolicy>,
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
            events: None,
            settings: Arc::new(settings),
            secrets: None,
            outbound: Arc::default(),
        }
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
        let rules = default_rules(Utc::now());
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

    async fn docs<T: DeserializeOwned>(&self, kind: DocKind) -> Result<Vec<T>, AlertError> {
        self.store
            .list_alert_docs(kind)
            .await?
            .into_iter()
            .map(|(id, v)| from_doc(id, v).map_err(AlertError::from))
            .collect()
    }

    async fn insert_doc<T: Serialize>(
        &self,
        kind: DocKind,
        item: &T,
        audit: Option<serde_json::Value>,
        actor: &Actor,
        action: &str,
    ) -> Result<i64, AlertError> {
        let doc = to_value(item)?;
        let change =
            Change::new(actor, action, kind.table(), "").after(audit.unwrap_or(doc.clone()));
        Ok(self.store.insert_alert_doc(kind, &doc, &change).await?)
    }

    async fn delete_doc(
        &self,
        kind: DocKind,
        id: i64,
        actor: &Actor,
        action: &str,
        what: &str,
    ) -> Result<(), AlertError> {
        let change = Change::new(actor, action, kind.table(), &id.to_string());
        if self.store.delete_alert_doc(kind, id, &change).await? {
            Ok(())
        } else {
            Err(AlertError::NotFound(format!("{what} {id}")))
        }
    }

    // ---- rules ----

    pub async fn rules(&self) -> Result<Vec<Rule>, AlertError> {
        self.docs(DocKind::Rule).await
    }

    pub async fn rule(&self, id: i64) -> Result<Rule, AlertError> {
        self.rules()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| AlertError::NotFound(format!("alert rule {id}")))
    }

    fn build_rule(input: RuleInput, id: i64, created: DateTime<Utc>) -> Result<Rule, AlertError> {
        let (metric, threshold) = validate_rule(&input)?;
        Ok(Rule {
            id,
            name: input.name.trim().to_owned(),
            metric,
            scope: input.scope,
            op: input.op,
            threshold,
            for_seconds: input.for_seconds,
            keep_firing_for_seconds: input.keep_firing_for_seconds,
            severity: input.severity,
            enabled: input.enabled,
            description: input.description,
            slo: input.slo,
            created_at: created,
            updated_at: Utc::now(),
        })
    }

    pub async fn create_rule(&self, actor: &Actor, input: RuleInput) -> Result<Rule, AlertError> {
        let mut rule = Self::build_rule(input, 0, Utc::now())?;
        if self.rules().await?.iter().any(|r| r.name == rule.name) {
            return Err(AlertError::Invalid(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        rule.id = self
            .insert_doc(DocKind::Rule, &rule, None, actor, "alert_rule.create")
            .await?;
        Ok(rule)
    }

    pub async fn update_rule(
        &self,
        actor: &Actor,
        id: i64,
        input: RuleInput,
    ) -> Result<Rule, AlertError> {
        let before = self.rule(id).await?;
        let rule = Self::build_rule(input, id, before.created_at)?;
        if self
            .rules()
            .await?
            .iter()
            .any(|r| r.name == rule.name && r.id != id)
        {
            return Err(AlertError::Invalid(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        let doc = to_value(&rule)?;
        let change = Change::new(actor, "alert_rule.update", "alert_rules", &id.to_string())
            .before(to_value(&before)?)
            .after(doc.clone());
        if !self
            .store
            .update_alert_doc(DocKind::Rule, id, &doc, &change)
            .await?
        {
            return Err(AlertError::NotFound(format!("alert rule {id}")));
        }
        Ok(rule)
    }

    pub async fn delete_rule(&self, actor: &Actor, id: i64) -> Result<(), AlertError> {
        self.delete_doc(DocKind::Rule, id, actor, "alert_rule.delete", "alert rule")
            .await
    }

    // ---- alerts ----

    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>, AlertError> {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let fetch = if q.status.is_none() && q.rule_id.is_none() && q.severity.is_none() {
            limit
        } else {
            5000
        };
        Ok(self
            .store
            .list_alerts(q.active, fetch)
            .await?
            .into_iter()
            .filter(|a| q.status.is_none_or(|s| s == a.status))
            .filter(|a| q.rule_id.is_none_or(|r| r == a.rule_id))
            .filter(|a| q.severity.is_none_or(|s| s == a.severity))
            .take(limit)
            .collect())
    }

    /// Alerts not resolved: firing first, then pending, newest first.
    pub async fn active(&self) -> Result<Vec<Alert>, AlertError> {
        let mut a = self.store.list_alerts(true, 1000).await?;
        a.sort_by_key(|a| (a.status != AlertStatus::Firing, std::cmp::Reverse(a.id)));
        Ok(a)
    }

    pub async fn alert(&self, id: i64) -> Result<Alert, AlertError> {
        self.store
            .get_alert(id)
            .await?
            .ok_or_else(|| AlertError::NotFound(format!("alert {id}")))
    }

    pub async fn ack(&self, actor: &Actor, id: i64) -> Result<Alert, AlertError> {
        let now = Utc::now();
        let by = actor.to_string();
        let change = Change::new(actor, "alert.ack", "alert", &id.to_string());
        if !self.store.ack_alert(id, &by, now, &change).await? {
            return Err(AlertError::NotFound(format!("alert {id}")));
        }
        self.alert(id).await
    }

    // ---- silences and maintenance ----

    pub async fn silences(&self) -> Result<Vec<Silence>, AlertError> {
        self.docs(DocKind::Silence).await
    }

    pub async fn create_silence(
        &self,
        actor: &Actor,
        input: SilenceInput,
    ) -> Result<Silence, AlertError> {
        let starts_at = input.starts_at.unwrap_or_else(Utc::now);
        if input.ends_at <= starts_at {
            return Err(AlertError::Invalid(
                "ends_at must be after starts_at".into(),
            ));
        }
        if input.rule_id.is_none() && input.labels.is_empty() {
            return Err(AlertError::Invalid(
                "a silence needs a rule_id or at least one label matcher".into(),
            ));
        }
        let mut s = Silence {
            id: 0,
            rule_id: input.rule_id,
            labels: input.labels,
            starts_at,
            ends_at: input.ends_at,
            created_by: actor.to_string(),
            comment: input.comment,
        };
        s.id = self
            .insert_doc(DocKind::Silence, &s, None, actor, "alert_silence.create")
            .await?;
        Ok(s)
    }

    pub async fn delete_silence(&self, actor: &Actor, id: i64) -> Result<(), AlertError> {
        self.delete_doc(
            DocKind::Silence,
            id,
            actor,
            "alert_silence.delete",
            "silence",
        )
        .await
    }

    pub async fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, AlertError> {
        self.docs(DocKind::Maintenance).await
    }

    pub async fn create_maintenance(
        &self,
        actor: &Actor,
        input: MaintenanceInput,
    ) -> Result<MaintenanceWindow, AlertError> {
        if input.name.trim().is_empty() {
            return Err(AlertError::Invalid("name is required".into()));
        }
        match (&input.starts_at, &input.ends_at, &input.weekly) {
            (Some(s), Some(e), None) if e > s => {}
            (None, None, Some(w)) => {
                if w.days.is_empty() || w.days.iter().any(|d| weekday(d).is_none()) {
                    return Err(AlertError::Invalid(
                        "weekly.days must name days: mon, tue, wed, thu, fri, sat, sun".into(),
                    ));
                }
                if chrono::NaiveTime::parse_from_str(&w.start, "%H:%M").is_err() {
                    return Err(AlertError::Invalid(
                        "weekly.start must be HH:MM (UTC)".into(),
                    ));
                }
                if w.duration_minutes == 0 || w.duration_minutes > 7 * 1440 {
                    return Err(AlertError::Invalid(
                        "weekly.duration_minutes must be 1 to 10080".into(),
                    ));
                }
            }
            _ => {
                return Err(AlertError::Invalid(
                    "give either starts_at and ends_at (after it), or weekly {days, start, duration_minutes}"
                        .into(),
                ));
            }
        }
        let mut w = MaintenanceWindow {
            id: 0,
            name: input.name.trim().to_owned(),
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            weekly: input.weekly,
            created_by: actor.to_string(),
        };
        w.id = self
            .insert_doc(DocKind::Maintenance, &w, None, actor, "maintenance.create")
            .await?;
        Ok(w)
    }

    pub async fn delete_maintenance(&self, actor: &Actor, id: i64) -> Result<(), AlertError> {
        self.delete_doc(
            DocKind::Maintenance,
            id,
            actor,
            "maintenance.delete",
            "maintenance window",
        )
        .await
    }

    // ---- channels and deliveries ----

    async fn stored_channels(&self) -> Result<Vec<StoredChannel>, AlertError> {
        self.store
            .list_alert_docs(DocKind::Channel)
            .await?
            .into_iter()
            .map(|(id, v)| StoredChannel::from_doc(id, v).map_err(AlertError::from))
            .collect()
    }

    async fn stored_channel(&self, id: i64) -> Result<StoredChannel, AlertError> {
        self.stored_channels()
            .await?
            .into_iter()
            .find(|c| c.channel.id == id)
            .ok_or_else(|| AlertError::NotFound(format!("channel {id}")))
    }

    /// Channels with their secrets masked (sealed or not); only sending opens them.
    pub async fn channels(&self) -> Result<Vec<Channel>, AlertError> {
        Ok(self
            .stored_channels()
            .await?
            .iter()
            .map(StoredChannel::masked)
            .collect())
    }

    pub async fn channel(&self, id: i64) -> Result<Channel, AlertError> {
        Ok(self.stored_channel(id).await?.masked())
    }

    fn channel_doc(&self, c: &Channel) -> Result<serde_json::Value, AlertError> {
        StoredChannel::seal(c, self.secrets.as_deref())?.to_doc()
    }

    fn check_channel(&self, input: &ChannelInput) -> Result<(), AlertError> {
        if input.name.trim().is_empty() {
            return Err(AlertError::Invalid("name is required".into()));
        }
        match &input.config {
            ChannelConfig::Slack { url } | ChannelConfig::Webhook { url } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(AlertError::Invalid(
                        "url must be an http:// or https:// URL".into(),
                    ));
                }
                if let Err(denied) = self.outbound.check_url(url) {
                    let shown = input.config.masked();
                    let shown = match &shown {
                        ChannelConfig::Slack { url } | ChannelConfig::Webhook { url } => url,
                        ChannelConfig::Email { host, .. } => host,
                    };
                    return Err(AlertError::Invalid(
                        denied.refusal(&format!("url `{shown}`")),
                    ));
                }
            }
            ChannelConfig::Email {
                host,
                from,
                to,
                tls,
                ..
            } => {
                if host.is_empty() || from.is_empty() || to.is_empty() {
                    return Err(AlertError::Invalid(
                        "email needs host, from and at least one address in to".into(),
                    ));
                }
                if !matches!(tls.as_str(), "none" | "starttls" | "tls") {
                    return Err(AlertError::Invalid(
                        "tls must be none, starttls or tls".into(),
                    ));
                }
                if let Err(denied) = self.outbound.check_host(host) {
                    return Err(AlertError::Invalid(
                        denied.refusal(&format!("SMTP host `{host}`")),
                    ));
                }
            }
        }
        Ok(())
    }

    pub async fn create_channel(
        &self,
        actor: &Actor,
        input: ChannelInput,
    ) -> Result<Channel, AlertError> {
        self.check_channel(&input)?;
        let mut c = Channel {
            id: 0,
            name: input.name.trim().to_owned(),
            config: input.config,
            enabled: input.enabled,
            created_at: Utc::now(),
        };
        let doc = self.channel_doc(&c)?;
        let change = Change::new(
            actor,
            "notification_channel.create",
            DocKind::Channel.table(),
            "",
        )
        .after(to_value(&c.masked())?);
        c.id = self
            .store
            .insert_alert_doc(DocKind::Channel, &doc, &change)
            .await?;
        Ok(c)
    }

    /// Replaces a channel. A masked secret sent back unchanged keeps the stored one.
    pub async fn update_channel(
        &self,
        actor: &Actor,
        id: i64,
        mut input: ChannelInput,
    ) -> Result<Channel, AlertError> {
        let stored = self.stored_channel(id).await?;
        let keeps_secret = match &input.config {
            ChannelConfig::Slack { url } | ChannelConfig::Webhook { url } => url.ends_with(MASK),
            ChannelConfig::Email { password, .. } => password.as_deref() == Some(MASK),
        };
        // The stored secrets are opened only when the input keeps one of them.
        let before = Channel {
            config: if keeps_secret {
                stored.open(self.secrets.as_deref()).map_err(|e| {
                    AlertError::Invalid(format!("{e}; send the secret again instead of the mask"))
                })?
            } else {
                stored.channel.config.clone()
            },
            ..stored.channel.clone()
        };
        match (&mut input.config, &before.config) {
            (ChannelConfig::Slack { url }, ChannelConfig::Slack { url: old })
            | (ChannelConfig::Webhook { url }, ChannelConfig::Webhook { url: old })
                if url.ends_with(MASK) =>
            {
                url.clone_from(old);
            }
            (ChannelConfig::Email { password, .. }, ChannelConfig::Email { password: old, .. })
                if password.as_deref() == Some(MASK) =>
            {
                password.clone_from(old);
            }
            _ => {}
        }
        self.check_channel(&input)?;
        let c = Channel {
            id,
            name: input.name.trim().to_owned(),
            config: input.config,
            enabled: input.enabled,
            created_at: before.created_at,
        };
        let change = Change::new(
            actor,
            "notification_channel.update",
            "notification_channels",
            &id.to_string(),
        )
        .before(to_value(&before.masked())?)
        .after(to_value(&c.masked())?);
        if !self
            .store
            .update_alert_doc(DocKind::Channel, id, &self.channel_doc(&c)?, &change)
            .await?
        {
            return Err(AlertError::NotFound(format!("channel {id}")));
        }
        Ok(c)
    }

    pub async fn delete_channel(&self, actor: &Actor, id: i64) -> Result<(), AlertError> {
        self.delete_doc(
            DocKind::Channel,
            id,
            actor,
            "notification_channel.delete",
            "channel",
        )
        .await
    }

    pub async fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, AlertError> {
        Ok(self.store.list_deliveries(limit.clamp(1, 1000)).await?)
    }

    /// Queues a test message for the channel and attempts it at once; the answer says whether
    /// it was delivered and, if not, why. A failed test is not retried.
    pub async fn test_channel(&self, id: i64) -> Result<Delivery, AlertError> {
        let channel = self.stored_channel(id).await?;
        let now = Utc::now();
        let mut d = Delivery {
            id: 0,
            channel_id: id,
            alert_id: None,
            kind: DeliveryKind::Test,
            payload: test_payload(&channel.channel.name, &self.settings.external_url, now),
            attempts: 0,
            next_attempt_at: now,
            status: DeliveryStatus::Pending,
            last_error: None,
            response_excerpt: None,
            created_at: now,
            sent_at: None,
        };
        d.id = self.store.enqueue_delivery(&d).await?;
        Ok(self.attempt(d, Some(&channel), now).await?)
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.settings.retry_base.as_secs_f64();
        let secs = (base * 2f64.powi(attempts.saturating_sub(1).min(30) as i32))
            .min(self.settings.retry_cap.as_secs_f64());
        Duration::milliseconds((secs * 1000.0) as i64)
    }

    async fn attempt(
        &self,
        mut d: Delivery,
        channel: Option<&StoredChannel>,
        now: DateTime<Utc>,
    ) -> Result<Delivery, StoreError> {
        d.attempts += 1;
        let outcome = match channel {
            None => Err(SendFailure::new("the channel was deleted")),
            Some(c) if !c.channel.enabled => Err(SendFailure::new("the channel is disabled")),
            // The secrets are opened here, for this send only.
            Some(c) => match c.open(self.secrets.as_deref()) {
                Ok(config) => self.notifier.send(&config, &d.payload).await,
                Err(reason) => Err(SendFailure::new(reason)),
            },
        };
        match outcome {
            Ok(()) => {
                d.status = DeliveryStatus::Sent;
                d.sent_at = Some(Utc::now());
                d.last_error = None;
                d.response_excerpt = None;
            }
            Err(e) => {
                // The reason is Liftoff's own words; the receiver's answer only at DEBUG.
                tracing::warn!(delivery = d.id, channel = d.channel_id, attempts = d.attempts, error = %e.reason, "Notification not delivered.");
                if let Some(x) = &e.response_excerpt {
                    tracing::debug!(delivery = d.id, answer = %x, "The receiver's answer.");
                }
                d.last_error = Some(e.reason);
                d.response_excerpt = e.response_excerpt;
                if d.kind == DeliveryKind::Test
                    || d.attempts >= self.settings.max_attempts
                    || channel.is_none()
                {
                    d.status = DeliveryStatus::Failed;
                } else {
                    d.next_attempt_at = now + self.backoff(d.attempts);
                }
            }
        }
        self.store.update_delivery(&d).await?;
        Ok(d)
    }

    /// Sends what is due in the outbox (only on the replica holding the lease).
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<String, AlertError> {
        if !self.lease(now).await? {
            return Ok("another replica delivers".into());
        }
        let due = self.store.due_deliveries(now, 100).await?;
        if due.is_empty() {
            return Ok("nothing due".into());
        }
        let channels: HashMap<i64, StoredChannel> = self
            .stored_channels()
            .await?
            .into_iter()
            .map(|c| (c.channel.id, c))
            .collect();
        let (mut sent, mut failed) = (0, 0);
        for d in due {
            let c = channels.get(&d.channel_id);
            match self.attempt(d, c, now).await?.status {
                DeliveryStatus::Sent => sent += 1,
                _ => failed += 1,
            }
        }
        Ok(format!("{sent} sent, {failed} not delivered"))
    }

    async fn lease(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // Long enough that a slow run (sends time out after 10 s) keeps it between renewals.
        let ttl = self.settings.lease_ttl.max(self.settings.interval * 4);
        self.store
            .try_lease(LEASE, &self.settings.holder, now + dur(ttl), now)
            .await
    }

    /// Gives up the evaluation lease (at shutdown), so another replica or this one restarted
    /// takes over at once instead of after the lease expires.
    pub async fn release_lease(&self) -> Result<(), AlertError> {
        Ok(self
            .store
            .release_lease(LEASE, &self.settings.holder)
            .await?)
    }

    // ---- measuring ----

    async fn error_rate(
        &self,
        scope: &RuleScope,
        range: TimeRange,
    ) -> Result<Option<f64>, StoreError> {
        let filter = Filter::new(scope.service.as_deref(), scope.endpoint.as_deref());
        let s = self.monitoring.summary(range, &filter).await?;
        Ok((s.requests.total > 0).then_some(s.requests.error_rate))
    }

    /// The value a rule compares at `now`; `None` when there is no data.
    pub async fn measure(
        &self,
        rule: &Rule,
        now: DateTime<Utc>,
        monitors: &[MonitorHealth],
    ) -> Result<Option<f64>, StoreError> {
        let range = TimeRange {
            from: now - Duration::seconds(WINDOW),
            to: now,
        };
        let s = &rule.scope;
        Ok(match rule.metric {
            Metric::ErrorRate => self.error_rate(s, range).await?,
            Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => {
                let pick = |p50: f64, p95: f64, p99: f64| match rule.metric {
                    Metric::LatencyP50 => p50,
                    Metric::LatencyP95 => p95,
                    _ => p99,
                };
                let filter = Filter::new(s.service.as_deref(), s.endpoint.as_deref());
                if s.service.is_none() && s.endpoint.is_none() {
                    self.monitoring
                        .series(range, 1, &filter)
                        .await?
                        .into_iter()
                        .filter(|p| p.requests > 0)
                        .find_map(|p| Some(pick(p.p50?, p.p95?, p.p99?)))
                } else {
                    // Per endpoint; a service scope looks at its slowest endpoint.
                    let per = self.monitoring.performance(range, &filter).await?;
                    max_of(per.values().filter(|e| e.request_count > 0).map(|e| {
                        let d = &e.duration_ms;
                        Some(pick(d.p50, d.p95, d.p99))
                    }))
                }
            }
            Metric::SuccessRate | Metric::CacheHitRate | Metric::FallbackRate => {
                let ops = self
                    .operations
                    .operations(range, s.operation.as_deref(), s.service.as_deref(), None)
                    .await?;
                match rule.metric {
                    Metric::SuccessRate => sum_rate(ops.values().map(|o| (o.successes, o.count))),
                    Metric::CacheHitRate => max_of(ops.values().map(|o| o.cache_hit_rate))
                        .filter(|_| ops.len() == 1)
                        .or_else(|| {
                            // Several operations: the lowest hit rate is the one to watch.
                            ops.values()
                                .filter_map(|o| o.cache_hit_rate)
                                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
                        }),
                    _ => max_of(ops.values().map(|o| o.fallback_rate)),
                }
            }
            Metric::CpuPercent | Metric::MemoryPercent | Metric::DiskPercent => {
                let snap = self.monitoring.system.get();
                snap.sampled_at.map(|_| match rule.metric {
                    Metric::CpuPercent => snap.cpu.percent,
                    Metric::MemoryPercent => snap.memory.percent,
                    _ => snap.disk.percent,
                })
            }
            Metric::UptimeFailing => {
                if self.uptime.is_none() {
                    None
                } else if let Some(id) = s.monitor {
                    monitors
                        .iter()
                        .find(|m| m.id == id)
                        .map(|m| if m.failing { 1.0 } else { 0.0 })
                } else {
                    Some(monitors.iter().filter(|m| m.failing).count() as f64)
                }
            }
            Metric::EventCount => match &self.events {
                None => None,
                Some(events) => {
                    let days = WINDOW as f64 / 86_400.0;
                    let top = events
                        .features(days, 1000, now.timestamp_millis())
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    Some(match &s.event {
                        Some(name) => top
                            .features
                            .iter()
                            .find(|f| &f.feature == name)
                            .map_or(0.0, |f| f.usage_count as f64),
                        None => top.features.iter().map(|f| f.usage_count as f64).sum(),
                    })
                }
            },
            Metric::SloBurnRate => {
                let Some(slo) = rule.slo else { return Ok(None) };
                let (_, long, short) = slo.preset.windows();
                let budget = 1.0 - slo.objective;
                let mut burns = Vec::with_capacity(2);
                for w in [long, short] {
                    let r = TimeRange {
                        from: now - Duration::seconds(w),
                        to: now,
                    };
                    burns.push(self.error_rate(s, r).await?.map(|e| e / budget));
                }
                // Both windows must exceed the factor: compare the smaller.
                match (burns[0], burns[1]) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                }
            }
        })
    }

    // ---- evaluation ----

    /// One evaluation of every rule (only on the replica holding the lease): steps each rule's
    /// alert, stores it, queues its notifications and tells the listeners.
    pub async fn evaluate(&self, now: DateTime<Utc>) -> Result<String, AlertError> {
        if !self.lease(now).await? {
            return Ok("another replica evaluates".into());
        }
        let rules = self.rules().await?;
        let mut active: BTreeMap<i64, Alert> = self
            .store
            .list_alerts(true, 10_000)
            .await?
            .into_iter()
            .map(|a| (a.rule_id, a))
            .collect();
        let silences = self.silences().await?;
        let maintenance = self
            .maintenance_windows()
            .await?
            .iter()
            .any(|w| w.active(now));
        let channels: Vec<Channel> = self
            .channels()
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .collect();
        let monitors = match &self.uptime {
            Some(u) if rules.iter().any(|r| r.metric == Metric::UptimeFailing) => {
                u.monitors().await
            }
            _ => Vec::new(),
        };
        let mut transitions = Vec::new();
        let mut firing = 0;
        for rule in rules.iter().filter(|r| r.enabled) {
            let value = match self.measure(rule, now, &monitors).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(rule = rule.id, error = %e, "Could not measure an alert rule.");
                    continue;
                }
            };
            let current = active.remove(&rule.id);
            let prev = current
                .as_ref()
                .map_or_else(AlertState::default, |a| AlertState {
                    alert_id: Some(a.id),
                    status: Some(a.status),
                    started_at: Some(a.started_at),
                    last_true_at: a.last_true_at,
                });
            let (next, transition) = step(rule, value, prev, now);
            let Some(status) = next
                .status
                .filter(|_| next.active() || transition.is_some())
            else {
                continue;
            };
            let mut alert = match current {
                Some(a) if next.alert_id == Some(a.id) => a,
                _ => Alert {
                    id: 0,
                    rule_id: rule.id,
                    rule_name: rule.name.clone(),
                    severity: rule.severity,
                    status,
                    value: 0.0,
                    summary: String::new(),
                    labels: rule.labels(),
                    started_at: next.started_at.unwrap_or(now),
                    fired_at: None,
                    last_true_at: None,
                    resolved_at: None,
                    acked_by: None,
                    acked_at: None,
                    notified_at: None,
                    suppressed: false,
                },
            };
            alert.status = status;
            alert.value = value.unwrap_or(alert.value);
            alert.summary = super::eval::summary(rule, value);
            alert.last_true_at = next.last_true_at;
            match status {
                AlertStatus::Firing if alert.fired_at.is_none() => alert.fired_at = Some(now),
                AlertStatus::Resolved => alert.resolved_at = Some(now),
                _ => {}
            }
            if alert.id == 0 {
                // Stored first so notifications carry its id; a crash before they are queued
                // leaves it un-notified, and the next evaluation queues them.
                alert.id = self.store.save_alert(&alert, &[]).await?;
            }
            let muted = maintenance || silences.iter().any(|s| s.matches(&alert, now));
            let kind = match status {
                AlertStatus::Firing => {
                    firing += 1;
                    let due = alert
                        .notified_at
                        .is_none_or(|n| now - n >= dur(self.settings.repeat_interval));
                    due.then_some(DeliveryKind::Firing)
                }
                // Resolved is told only to those who were told it fired.
                AlertStatus::Resolved if alert.notified_at.is_some() => {
                    Some(DeliveryKind::Resolved)
                }
                _ => None,
            };
            let mut deliveries = Vec::new();
            if let Some(kind) = kind {
                if muted {
                    alert.suppressed = true;
                } else {
                    if kind == DeliveryKind::Firing {
                        alert.notified_at = Some(now);
                    }
                    let wait = if kind == DeliveryKind::Firing && alert.fired_at == Some(now) {
                        dur(self.settings.group_wait)
                    } else {
                        Duration::zero()
                    };
                    for c in &channels {
                        deliveries.push(Delivery {
                            id: 0,
                            channel_id: c.id,
                            alert_id: None,
                            kind,
                            payload: alertmanager_payload(
                                &alert,
                                kind,
                                &c.name,
                                &self.settings.external_url,
                            ),
                            attempts: 0,
                            next_attempt_at: now + wait,
                            status: DeliveryStatus::Pending,
                            last_error: None,
                            response_excerpt: None,
                            created_at: now,
                            sent_at: None,
                        });
                    }
                }
            }
            alert.id = self.store.save_alert(&alert, &deliveries).await?;
            if let Some(mut t) = transition {
                t.alert_id = alert.id;
                transitions.push(t);
            }
        }
        // Alerts whose rule was deleted or disabled end.
        for (_, mut alert) in active {
            alert.status = AlertStatus::Resolved;
            alert.resolved_at = Some(now);
            alert.summary = format!("{} (rule removed or disabled)", alert.rule_name);
            self.store.save_alert(&alert, &[]).await?;
            transitions.push(AlertTransition {
                alert_id: alert.id,
                rule_id: alert.rule_id,
                rule_name: alert.rule_name.clone(),
                severity: alert.severity,
                status: AlertStatus::Resolved,
                at: now,
                summary: alert.summary.clone(),
                value: alert.value,
                labels: alert.labels.clone(),
            });
        }
        for t in &transitions {
            for l in self.listeners.iter() {
                l.on_transition(t).await;
            }
        }
        Ok(format!(
            "{} rules, {firing} firing, {} transitions",
            rules.len(),
            transitions.len()
        ))
    }
}

#[async_trait]
impl crate::flags::CriticalAlerts for AlertsService {
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
