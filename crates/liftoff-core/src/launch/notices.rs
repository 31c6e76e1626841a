//! Notices of admission: every user given a seat can be announced on one of the alert
//! channels (`admission_channel` in the launch settings), so a welcome email or a CRM update
//! can follow. The launch domain only says what to send; the alerts outbox, which already
//! retries with backoff and survives restarts, delivers it.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The `event` field of an admission notice.
pub const ADMITTED_EVENT: &str = "launch.admitted";

/// Where a notice is queued (the alerts outbox in a running server).
#[async_trait]
pub trait AdmissionNotices: Send + Sync {
    /// Queues `payload` for channel `channel_id`; the error says why it could not be queued.
    async fn queue(&self, channel_id: i64, payload: Value) -> Result<(), String>;
}

/// What gave the seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The user's own ask found a free seat.
    Ask,
    /// An operator admitted the next users from the waitlist.
    Admit,
    /// A seat opened (a higher limit, a preset, a phase, a revoked seat) and the waitlist
    /// moved up in order.
    Waitlist,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Ask => "ask",
            Via::Admit => "admit",
            Via::Waitlist => "waitlist",
        }
    }
}

/// The webhook body of one admission. Slack and email render `title` and `summary`.
pub fn admitted_payload(
    user_id: &str,
    via: Via,
    admitted_count: u64,
    user_limit: Option<u32>,
    at: DateTime<Utc>,
) -> Value {
    let seats = match user_limit {
        Some(l) => format!("{admitted_count} of {l} seats taken"),
        None => format!("{admitted_count} admitted, no limit"),
    };
    json!({
        "version": "1",
        "event": ADMITTED_EVENT,
        "title": format!("{user_id} admitted to the launch"),
        "summary": format!("{user_id} holds a seat ({seats}); via {}.", via.as_str()),
        "user_id": user_id,
        "via": via.as_str(),
        "admitted_count": admitted_count,
        "user_limit": user_limit,
        "admitted_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_names_the_user_the_cause_and_the_seats() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let p = admitted_payload("u-7", Via::Waitlist, 101, Some(150), at);
        assert_eq!(p["event"], "launch.admitted");
        assert_eq!(p["user_id"], "u-7");
        assert_eq!(p["via"], "waitlist");
        assert_eq!(p["admitted_count"], 101);
        assert_eq!(p["user_limit"], 150);
        assert_eq!(p["admitted_at"], "2026-12-01T10:00:00.000Z");
        assert!(p["summary"].as_str().unwrap().contains("101 of 150"));
        let open = admitted_payload("u-8", Via::Ask, 3, None, at);
        assert!(open["user_limit"].is_null());
        assert!(open["summary"].as_str().unwrap().contains("no limit"));
    }
}
