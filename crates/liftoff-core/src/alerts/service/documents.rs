//! Rules, alert instances, silences, maintenance windows and channels: the four documents
//! kinds kept as JSON (plus alert rows), listed, created, changed and deleted with an audit entry.

use super::*;

impl AlertsService {
    pub(super) async fn docs<T: DeserializeOwned>(
        &self,
        kind: DocKind,
    ) -> Result<Vec<T>, AlertError> {
        self.store
            .list_alert_docs(kind)
            .await?
            .into_iter()
            .map(|(id, v)| from_doc(id, v).map_err(AlertError::from))
            .collect()
    }

    pub(super) async fn insert_doc<T: Serialize>(
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

    pub(super) async fn delete_doc(
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

    pub(super) fn build_rule(
        input: RuleInput,
        id: i64,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Rule, AlertError> {
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
            updated_at: now,
        })
    }

    pub async fn create_rule(&self, actor: &Actor, input: RuleInput) -> Result<Rule, AlertError> {
        let now = self.clock.now();
        let mut rule = Self::build_rule(input, 0, now, now)?;
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
        let rule = Self::build_rule(input, id, before.created_at, self.clock.now())?;
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
        let now = self.clock.now();
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
        let message = input
            .message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        if message.as_ref().is_some_and(|m| m.chars().count() > 1000) {
            return Err(AlertError::Invalid(
                "message is at most 1000 characters".into(),
            ));
        }
        if input.notify_before_minutes.is_some_and(|m| m > 7 * 1440) {
            return Err(AlertError::Invalid(
                "notify_before_minutes must be 0 to 10080 (a week)".into(),
            ));
        }
        let mut w = MaintenanceWindow {
            id: 0,
            name: input.name.trim().to_owned(),
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            weekly: input.weekly,
            gate: input.gate,
            message,
            notify_before_minutes: input.notify_before_minutes,
            created_by: actor.to_string(),
        };
        w.id = self
            .insert_doc(DocKind::Maintenance, &w, None, actor, "maintenance.create")
            .await?;
        self.windows_changed();
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
        .await?;
        self.windows_changed();
        Ok(())
    }

    fn windows_changed(&self) {
        self.windows_revision
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    // ---- channels and deliveries ----

    pub(super) async fn stored_channels(&self) -> Result<Vec<StoredChannel>, AlertError> {
        self.store
            .list_alert_docs(DocKind::Channel)
            .await?
            .into_iter()
            .map(|(id, v)| StoredChannel::from_doc(id, v).map_err(AlertError::from))
            .collect()
    }

    pub(super) async fn stored_channel(&self, id: i64) -> Result<StoredChannel, AlertError> {
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

    pub(super) fn channel_doc(&self, c: &Channel) -> Result<serde_json::Value, AlertError> {
        StoredChannel::seal(c, self.secrets.as_deref())?.to_doc()
    }

    pub(super) fn check_channel(&self, input: &ChannelInput) -> Result<(), AlertError> {
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
            created_at: self.clock.now(),
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
}

#[async_trait::async_trait]
impl crate::launch::windows::MaintenanceWindows for AlertsService {
    fn revision(&self) -> u64 {
        self.windows_revision
            .load(std::sync::atomic::Ordering::Acquire)
    }

    async fn gating_window(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::launch::windows::GatingWindow>, String> {
        let windows = self
            .maintenance_windows()
            .await
            .map_err(|e| e.to_string())?;
        Ok(windows
            .into_iter()
            .filter(|w| w.gate)
            .filter_map(|w| {
                w.active_until(now)
                    .map(|ends_at| crate::launch::windows::GatingWindow {
                        id: w.id,
                        message: w.message,
                        ends_at,
                    })
            })
            .max_by_key(|w| w.ends_at))
    }
}
