//! The notification outbox (deliveries, tests, attempts with backoff).

use super::*;

impl AlertsService {
    pub async fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, AlertError> {
        Ok(self.store.list_deliveries(limit.clamp(1, 1000)).await?)
    }

    /// Queues a test message for the channel and attempts it at once; the answer says whether
    /// it was delivered and, if not, why. A failed test is not retried.
    pub async fn test_channel(&self, id: i64) -> Result<Delivery, AlertError> {
        let channel = self.stored_channel(id).await?;
        let now = self.clock.now();
        let payload = test_payload(&channel.channel.name, &self.settings.external_url, now);
        let mut d = Delivery::pending(id, DeliveryKind::Test, payload, now, now);
        d.id = self.store.enqueue_delivery(&d).await?;
        Ok(self.attempt(d, Some(&channel), now).await?)
    }

    /// Queues another domain's notice (its payload carries `event`, `title` and `summary`) for
    /// the channel; the outbox sends and retries it like an alert's.
    pub async fn enqueue_event(
        &self,
        channel_id: i64,
        mut payload: serde_json::Value,
    ) -> Result<Delivery, AlertError> {
        self.stored_channel(channel_id).await?;
        self.link_event(&mut payload);
        let now = self.clock.now();
        let mut d = Delivery::pending(channel_id, DeliveryKind::Event, payload, now, now);
        d.id = self.store.enqueue_delivery(&d).await?;
        Ok(d)
    }

    /// Queues the maintenance-window notices due at `now` for every enabled channel, each
    /// once (a marker per window, occurrence and stage is written with the deliveries). Runs
    /// with the evaluation, on the replica holding the singleton lease; a notice that cannot be queued is tried at the next tick.
    pub(super) async fn queue_window_notices(
        &self,
        windows: &[MaintenanceWindow],
        channels: &[Channel],
        now: DateTime<Utc>,
    ) {
        if channels.is_empty() {
            return;
        }
        for w in windows {
            for notice in window_notices::due(w, now) {
                let mut payload = notice.payload(w);
                self.link_event(&mut payload);
                let deliveries: Vec<_> = channels
                    .iter()
                    .map(|c| {
                        Delivery::pending(c.id, DeliveryKind::Event, payload.clone(), now, now)
                    })
                    .collect();
                match self
                    .store
                    .enqueue_once(&notice.marker(w.id), &deliveries)
                    .await
                {
                    Ok(true) => tracing::info!(
                        window = w.id,
                        stage = notice.stage.as_str(),
                        channels = deliveries.len(),
                        "Maintenance notice queued."
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(window = w.id, error = %e, "Maintenance notice not queued; trying again at the next evaluation.")
                    }
                }
            }
        }
    }

    /// Where an event notice links to, as an alert's does (unless it names its own link).
    fn link_event(&self, payload: &mut serde_json::Value) {
        if let Some(p) = payload.as_object_mut() {
            p.entry("externalURL")
                .or_insert_with(|| self.settings.external_url.clone().into());
        }
    }

    pub(super) fn backoff(&self, attempts: u32) -> Duration {
        let base = self.settings.retry_base.as_secs_f64();
        let secs = (base * 2f64.powi(attempts.saturating_sub(1).min(30) as i32))
            .min(self.settings.retry_cap.as_secs_f64());
        Duration::milliseconds((secs * 1000.0) as i64)
    }

    pub(super) async fn attempt(
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
                d.sent_at = Some(self.clock.now());
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

    /// Sends what is due in the outbox (the `notification-delivery` job runs it on the replica
    /// holding the singleton lease).
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<String, AlertError> {
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
}

#[async_trait::async_trait]
impl crate::launch::notices::AdmissionNotices for AlertsService {
    async fn queue(&self, channel_id: i64, payload: serde_json::Value) -> Result<(), String> {
        self.enqueue_event(channel_id, payload)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Scheduled reports are queued like any other domain's notice, once per period.
#[async_trait::async_trait]
impl crate::reports::service::ReportOutbox for AlertsService {
    async fn queue_once(
        &self,
        marker: &str,
        channels: &[i64],
        mut payload: serde_json::Value,
    ) -> Result<bool, String> {
        self.link_event(&mut payload);
        let now = self.clock.now();
        let known: Vec<i64> = self
            .stored_channels()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|c| c.channel.id)
            .collect();
        let deliveries: Vec<Delivery> = channels
            .iter()
            .filter(|id| known.contains(id))
            .map(|id| Delivery::pending(*id, DeliveryKind::Event, payload.clone(), now, now))
            .collect();
        if deliveries.is_empty() {
            return Err("none of the schedule's channels exists any more".into());
        }
        self.store
            .enqueue_once(marker, &deliveries)
            .await
            .map_err(|e| e.to_string())
    }

    async fn channel_exists(&self, id: i64) -> Result<bool, String> {
        match self.stored_channel(id).await {
            Ok(_) => Ok(true),
            Err(AlertError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
