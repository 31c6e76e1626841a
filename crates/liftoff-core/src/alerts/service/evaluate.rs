//! Evaluation: steps every rule's alert, stores it, queues notifications
//! and tells the listeners.

use super::*;

impl AlertsService {
    /// One evaluation of every rule (the `alert-evaluation` job runs it on the replica holding
    /// the singleton lease): steps each rule's alert, stores it, queues its notifications and
    /// tells the listeners.
    pub async fn evaluate(&self, now: DateTime<Utc>) -> Result<String, AlertError> {
        let rules = self.rules().await?;
        let mut active: BTreeMap<i64, Alert> = self
            .store
            .list_alerts(true, 10_000)
            .await?
            .into_iter()
            .map(|a| (a.rule_id, a))
            .collect();
        let silences = self.silences().await?;
        let windows = self.maintenance_windows().await?;
        let maintenance = windows.iter().any(|w| w.active(now));
        let channels: Vec<Channel> = self
            .channels()
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .collect();
        self.queue_window_notices(&windows, &channels, now).await;
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
            alert.summary = crate::alerts::eval::summary(rule, value);
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
                        let payload = alertmanager_payload(
                            &alert,
                            kind,
                            &c.name,
                            &self.settings.external_url,
                        );
                        deliveries.push(Delivery::pending(c.id, kind, payload, now, now + wait));
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
