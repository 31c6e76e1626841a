//! Notification payloads and the port that sends them. The outbox stores Alertmanager's v4
//! webhook body; Slack and email are rendered from it when sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::model::{Alert, AlertStatus, ChannelConfig, DeliveryKind};

/// Why a notification was not delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendFailure {
    /// A short reason Liftoff writes (status, what failed, the policy): stored as the
    /// delivery's `last_error`, readable by `read` keys and logged. Never the receiver's words.
    pub reason: String,
    /// At most [`EXCERPT_BYTES`] of what the receiver answered, cleaned by
    /// [`response_excerpt`]: shown to admins only, never logged above DEBUG.
    pub response_excerpt: Option<String>,
}

impl SendFailure {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            response_excerpt: None,
        }
    }
}

impl From<String> for SendFailure {
    fn from(reason: String) -> Self {
        Self::new(reason)
    }
}

/// The most of a receiver's answer kept with a failed delivery.
pub const EXCERPT_BYTES: usize = 100;

/// The first [`EXCERPT_BYTES`] bytes of a receiver's answer as text: invalid UTF-8 replaced,
/// control characters (newlines and escapes included) dropped, and never more than
/// [`EXCERPT_BYTES`] bytes. `None` when nothing is left.
pub fn response_excerpt(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(EXCERPT_BYTES)];
    let mut out = String::new();
    for c in String::from_utf8_lossy(head).chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > EXCERPT_BYTES {
            break;
        }
        out.push(c);
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

/// Sends one rendered notification; the binary implements it over HTTP and SMTP.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// `Err` says why, in Liftoff's words, with the receiver's answer apart.
    async fn send(&self, channel: &ChannelConfig, payload: &Value) -> Result<(), SendFailure>;
}

/// A notifier that refuses everything (for tests and tools that never send).
pub struct NoNotifier;

impl NoNotifier {
    pub const REASON: &'static str = "no notifier configured";
}

#[async_trait]
impl Notifier for NoNotifier {
    async fn send(&self, _: &ChannelConfig, _: &Value) -> Result<(), SendFailure> {
        Err(SendFailure::new(Self::REASON))
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

/// One line per alert: `[FIRING] summary`; for another domain's notice `[EVENT] title`.
pub fn headline(payload: &Value) -> String {
    if let Some(event) = payload["event"].as_str() {
        let title = payload["title"].as_str().unwrap_or_default();
        return format!("[{}] {title}", event.to_uppercase());
    }
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
    if payload["event"].is_string() {
        return payload["summary"].as_str().unwrap_or_default().to_owned();
    }
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
    // A notice names its domain first (`launch.admitted` → the Launch page).
    let page = payload["event"]
        .as_str()
        .and_then(|e| e.split('.').next())
        .unwrap_or("alerts");
    (
        headline(payload),
        format!("{}\n\n{url}/{page}\n", details(payload)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_render_their_title_summary_and_page() {
        let p = json!({"event": "launch.admitted", "title": "u-1 admitted to the launch",
            "summary": "u-1 holds a seat (3 of 10 seats taken); via ask.",
            "externalURL": "https://liftoff.example"});
        assert_eq!(headline(&p), "[LAUNCH.ADMITTED] u-1 admitted to the launch");
        let (subject, body) = email_text(&p);
        assert_eq!(subject, headline(&p));
        assert!(body.contains("3 of 10") && body.contains("https://liftoff.example/launch"));
        assert!(slack_body(&p)["text"].as_str().unwrap().contains("via ask"));
    }

    #[test]
    fn excerpts_are_short_clean_text() {
        assert_eq!(response_excerpt(b""), None);
        assert_eq!(response_excerpt(b"\r\n\t"), None);
        assert_eq!(
            response_excerpt(b"oops\r\n\x1b[31mred\x00").as_deref(),
            Some("oops[31mred")
        );
        let long = "SECRET-BODY ".repeat(50);
        let e = response_excerpt(long.as_bytes()).unwrap_or_default();
        assert!(
            e.len() <= EXCERPT_BYTES && e.starts_with("SECRET-BODY"),
            "{e}"
        );
        // A character cut at byte 100 becomes U+FFFD, and the whole stays within 100 bytes.
        let mut cut = vec![b'a'; 99];
        cut.extend("é".as_bytes());
        let e = response_excerpt(&cut).unwrap_or_default();
        assert!(e.len() <= EXCERPT_BYTES, "{}", e.len());
        assert!(e.starts_with("aaa"));
        let e = response_excerpt(&[0xff; 300]).unwrap_or_default();
        assert!(e.len() <= EXCERPT_BYTES && e.chars().all(|c| c == '\u{fffd}'));
    }

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
