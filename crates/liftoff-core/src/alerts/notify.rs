//! Notification payloads and the port that sends them. The outbox stores Alertmanager's v4
//! webhook body; Slack and email are rendered from it when sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::model::{Alert, AlertStatus, ChannelConfig, DeliveryKind};

/// Sends one rendered notification; the binary implements it over HTTP and SMTP.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// `Err` carries a message shown to people in the deliveries list.
    async fn send(&self, channel: &ChannelConfig, payload: &Value) -> Result<(), String>;
}

/// A notifier that refuses everything (for tests and tools that never send).
pub struct NoNotifier;

impl NoNotifier {
    pub const REASON: &'static str = "no notifier configured";
}

#[async_trait]
impl Notifier for NoNotifier {
    async fn send(&self, _: &ChannelConfig, _: &Value) -> Result<(), String> {
        Err(Self::REASON.to_owned())
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Alertmanager's v4 webhook body for one alert (one group per rule).
pub fn alertmanager_payload(
    alert: &Alert,
    kind: DeliveryKind,
    receiver: &str,
    external_url: &str,
) -> Value {
    let status = match kind {
        DeliveryKind::Resolved => "resolved",
        _ => "firing",
    };
    let annotations = json!({
        "summary": alert.summary,
        "value": alert.value.to_string(),
    });
    // Alertmanager's zero time for an alert that has not ended.
    let ends_at = match (kind, alert.resolved_at) {
        (DeliveryKind::Resolved, Some(t)) => rfc3339(t),
        _ => "0001-01-01T00:00:00Z".to_owned(),
    };
    let group_labels = json!({ "alertname": alert.rule_name });
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", alert.rule_name),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": alert.labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": alert.labels,
            "annotations": annotations,
            "startsAt": rfc3339(alert.fired_at.unwrap_or(alert.started_at)),
            "endsAt": ends_at,
            "generatorURL": format!("{external_url}/alerts?alert={}", alert.id),
            "fingerprint": alert.fingerprint(),
        }],
    })
}

/// A test message in the same shape, so receivers can be checked end to end.
pub fn test_payload(receiver: &str, external_url: &str, at: DateTime<Utc>) -> Value {
    let alert = Alert {
        id: 0,
        rule_id: 0,
        rule_name: "LiftoffTestNotification".to_owned(),
        severity: super::model::Severity::Warning,
        status: AlertStatus::Firing,
        value: 0.0,
        summary: "A test notification from Liftoff: this channel works.".to_owned(),
        labels: [("alertname".to_owned(), "LiftoffTestNotification".to_owned())].into(),
        started_at: at,
        fired_at: Some(at),
        last_true_at: None,
        resolved_at: None,
        acked_by: None,
        acked_at: None,
        notified_at: None,
        suppressed: false,
    };
    alertmanager_payload(&alert, DeliveryKind::Test, receiver, external_url)
}

/// One line per alert: `[FIRING] summary`.
pub fn headline(payload: &Value) -> String {
    let status = payload["status"]
        .as_str()
        .unwrap_or("firing")
        .to_uppercase();
    let name = payload["groupLabels"]["alertname"]
        .as_str()
        .unwrap_or("alert");
    let severity = payload["commonLabels"]["severity"].as_str().unwrap_or("");
    let mut s = format!("[{status}] {name}");
    if !severity.is_empty() {
        s.push_str(&format!(" ({severity})"));
    }
    s
}

fn details(payload: &Value) -> String {
    let mut lines = Vec::new();
    for a in payload["alerts"].as_array().into_iter().flatten() {
        if let Some(summary) = a["annotations"]["summary"].as_str() {
            lines.push(summary.to_owned());
        }
        if let Some(s) = a["startsAt"].as_str() {
            lines.push(format!("started {s}"));
        }
        if let Some(e) = a["endsAt"].as_str().filter(|e| !e.starts_with("0001")) {
            lines.push(format!("ended {e}"));
        }
    }
    lines.join("\n")
}

/// A Slack incoming-webhook body: `text` (the fallback) and `blocks`.
pub fn slack_body(payload: &Value) -> Value {
    let head = headline(payload);
    let body = details(payload);
    json!({
        "text": format!("{head}\n{body}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ],
    })
}

/// Subject and plain-text body of an email.
pub fn email_text(payload: &Value) -> (String, String) {
    let url = payload["externalURL"].as_str().unwrap_or_default();
    (
        headline(payload),
        format!("{}\n\n{url}/alerts\n", details(payload)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_alert() {
        let p = test_payload("ops", "http://liftoff", Utc::now());
        assert_eq!(p["version"], "4");
        assert_eq!(
            p["alerts"][0]["labels"]["alertname"],
            "LiftoffTestNotification"
        );
        let s = slack_body(&p);
        assert!(
            s["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("[FIRING] LiftoffTestNotification"))
        );
        assert_eq!(s["blocks"].as_array().map(Vec::len), Some(2));
        let (subject, body) = email_text(&p);
        assert!(subject.contains("FIRING"));
        assert!(body.contains("this channel works"));
    }
}
