//! The alert store's contract: each function takes a fresh, empty, migrated state store and
//! panics on the first broken promise.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use liftoff_core::alerts::model::{
    Alert, AlertStatus, Delivery, DeliveryKind, DeliveryStatus, DocKind, Severity,
};
use liftoff_core::audit::{AuditQuery, Change};
use liftoff_core::auth::Actor;
use liftoff_core::ports::StateStore;
use liftoff_core::store::StoreError;
use serde_json::json;

fn change(action: &str) -> Change {
    Change::new(&Actor::System, action, "test", "")
}

fn alert(rule_id: i64) -> Alert {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    Alert {
        id: 0,
        rule_id,
        rule_name: format!("rule {rule_id}"),
        severity: Severity::Critical,
        status: AlertStatus::Firing,
        value: 0.5,
        summary: "s".into(),
        labels: [("alertname".to_owned(), "x".to_owned())].into(),
        started_at: at,
        fired_at: Some(at),
        last_true_at: Some(at),
        resolved_at: None,
        acked_by: None,
        acked_at: None,
        notified_at: Some(at),
        suppressed: false,
    }
}

fn delivery(channel_id: i64, due: chrono::DateTime<Utc>) -> Delivery {
    Delivery {
        id: 0,
        channel_id,
        alert_id: None,
        kind: DeliveryKind::Firing,
        payload: json!({"version": "4"}),
        attempts: 0,
        next_attempt_at: due,
        status: DeliveryStatus::Pending,
        last_error: None,
        response_excerpt: None,
        created_at: due,
        sent_at: None,
    }
}

/// Documents of every kind: ids, update, delete, each with an audit entry naming the new id.
pub async fn alert_docs_round_trip(s: Arc<dyn StateStore>) {
    for kind in [
        DocKind::Rule,
        DocKind::Silence,
        DocKind::Maintenance,
        DocKind::Channel,
    ] {
        let a = s
            .insert_alert_doc(kind, &json!({"name": "a"}), &change("doc.create"))
            .await
            .unwrap();
        let b = s
            .insert_alert_doc(kind, &json!({"name": "b"}), &change("doc.create"))
            .await
            .unwrap();
        assert!(b > a);
        assert!(
            s.update_alert_doc(kind, a, &json!({"name": "a2"}), &change("doc.update"))
                .await
                .unwrap()
        );
        assert!(
            !s.update_alert_doc(kind, 9999, &json!({}), &change("doc.update"))
                .await
                .unwrap()
        );
        assert!(
            s.delete_alert_doc(kind, b, &change("doc.delete"))
                .await
                .unwrap()
        );
        assert!(
            !s.delete_alert_doc(kind, b, &change("doc.delete"))
                .await
                .unwrap()
        );
        let docs = s.list_alert_docs(kind).await.unwrap();
        assert_eq!(docs, vec![(a, json!({"name": "a2"}))]);
    }
    let audit = s
        .list_audit(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 4 * 4, "create ×2, update, delete per kind");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "doc.create" && e.target_id == "1")
    );
    assert!(s.mark_once("seed").await.unwrap());
    assert!(!s.mark_once("seed").await.unwrap());
}

/// Alerts with their deliveries in one write; the outbox hands out what is due.
pub async fn alerts_and_outbox(s: Arc<dyn StateStore>) {
    let t0 = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    let id = s
        .save_alert(&alert(7), &[delivery(1, t0), delivery(2, t0)])
        .await
        .unwrap();
    assert!(id > 0);
    let mut a = s.get_alert(id).await.unwrap().unwrap();
    assert_eq!(a.id, id);
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(s.list_alerts(true, 10).await.unwrap().len(), 1);
    a.status = AlertStatus::Resolved;
    a.resolved_at = Some(t0 + Duration::minutes(5));
    s.save_alert(&a, &[]).await.unwrap();
    assert!(s.list_alerts(true, 10).await.unwrap().is_empty());
    assert_eq!(s.list_alerts(false, 10).await.unwrap(), vec![a.clone()]);
    assert!(
        s.ack_alert(id, "user:ada", t0, &change("alert.ack"))
            .await
            .unwrap()
    );
    assert!(
        !s.ack_alert(999, "user:ada", t0, &change("alert.ack"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_alert(id).await.unwrap().unwrap().acked_by.as_deref(),
        Some("user:ada")
    );
    // An evaluation that read the alert before the ack saves it: the ack stays, the rest of
    // the evaluation's changes land.
    let mut stale = a.clone();
    stale.summary = "re-evaluated".into();
    assert_eq!(stale.acked_by, None);
    s.save_alert(&stale, &[]).await.unwrap();
    let stored = s.get_alert(id).await.unwrap().unwrap();
    assert_eq!(stored.acked_by.as_deref(), Some("user:ada"));
    assert_eq!(stored.acked_at, Some(t0));
    assert_eq!(stored.summary, "re-evaluated");

    let due = s.due_deliveries(t0, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|d| d.alert_id == Some(id)));
    let mut d = due[0].clone();
    d.attempts = 1;
    d.last_error = Some("HTTP 500 Internal Server Error from the receiver".into());
    d.response_excerpt = Some("oops".into());
    d.next_attempt_at = t0 + Duration::seconds(10);
    s.update_delivery(&d).await.unwrap();
    let mut sent = due[1].clone();
    sent.attempts = 1;
    sent.status = DeliveryStatus::Sent;
    sent.sent_at = Some(t0);
    s.update_delivery(&sent).await.unwrap();
    assert!(s.due_deliveries(t0, 10).await.unwrap().is_empty());
    assert_eq!(
        s.due_deliveries(t0 + Duration::seconds(10), 10)
            .await
            .unwrap(),
        vec![d.clone()]
    );
    let test = s.enqueue_delivery(&delivery(3, t0)).await.unwrap();
    let all = s.list_deliveries(10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, test, "newest first");
    assert_eq!(all[0].alert_id, None);

    // A marked batch is queued once: a second try with the same marker queues nothing.
    let batch = [delivery(4, t0), delivery(5, t0)];
    assert!(s.enqueue_once("notice:1:upcoming", &batch).await.unwrap());
    assert!(!s.enqueue_once("notice:1:upcoming", &batch).await.unwrap());
    assert!(!s.mark_once("notice:1:upcoming").await.unwrap());
    assert_eq!(s.list_deliveries(10).await.unwrap().len(), 5);
}

/// Several documents replaced in one transaction with one audit entry; a missing one changes
/// nothing.
pub async fn alert_docs_replaced_together(s: Arc<dyn StateStore>) {
    let kind = DocKind::Channel;
    let a = s
        .insert_alert_doc(kind, &json!({"name": "a"}), &change("doc.create"))
        .await
        .unwrap();
    let b = s
        .insert_alert_doc(kind, &json!({"name": "b"}), &change("doc.create"))
        .await
        .unwrap();
    s.replace_alert_docs(
        kind,
        &[(a, json!({"name": "a2"})), (b, json!({"name": "b2"}))],
        &change("docs.replace"),
    )
    .await
    .unwrap();
    let err = s
        .replace_alert_docs(
            kind,
            &[(a, json!({"name": "a3"})), (9999, json!({"name": "x"}))],
            &change("docs.replace"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        s.list_alert_docs(kind).await.unwrap(),
        vec![(a, json!({"name": "a2"})), (b, json!({"name": "b2"}))],
        "all or nothing"
    );
    let audit = s
        .list_audit(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "docs.replace").count(),
        1
    );
}

/// Channel secrets: a plaintext document from before sealing is sealed, a rotation seals
/// everything under the new key, and a rotation that cannot open a secret changes nothing.
pub async fn channel_secrets_are_sealed_and_rotated(s: Arc<dyn StateStore>) {
    use liftoff_core::alerts::secrets::{StoredChannel, reseal_channels};
    use liftoff_core::secret::{SecretBox, SecretKey};
    let url = "https://hooks.example.com/services/T0/B0/very-secret-token";
    let legacy = json!({"name": "ops", "config": {"kind": "slack", "url": url},
        "enabled": true, "created_at": "2026-01-01T00:00:00Z"});
    let id = s
        .insert_alert_doc(DocKind::Channel, &legacy, &change("doc.create"))
        .await
        .unwrap();
    let mail = json!({"name": "mail", "config": {"kind": "email", "host": "smtp.example.com",
        "port": 587, "tls": "starttls", "username": "u", "password": "hunter2",
        "from": "a@example.com", "to": ["b@example.com"]},
        "enabled": true, "created_at": "2026-01-01T00:00:00Z"});
    let mail_id = s
        .insert_alert_doc(DocKind::Channel, &mail, &change("doc.create"))
        .await
        .unwrap();
    let stored = |docs: Vec<(i64, serde_json::Value)>| -> Vec<StoredChannel> {
        docs.into_iter()
            .map(|(id, d)| StoredChannel::from_doc(id, d).unwrap())
            .collect()
    };
    let first = SecretBox::new(SecretKey::generate());
    let r = reseal_channels(
        &*s,
        Some(&first),
        &first,
        false,
        "notification_channel.seal",
    )
    .await
    .unwrap();
    assert_eq!(r.sealed, 2);
    let raw = serde_json::to_string(&s.list_alert_docs(DocKind::Channel).await.unwrap()).unwrap();
    assert!(
        !raw.contains("very-secret-token") && !raw.contains("hunter2"),
        "{raw}"
    );
    assert!(
        raw.contains("hooks.example.com"),
        "the masked form stays readable"
    );
    let channels = stored(s.list_alert_docs(DocKind::Channel).await.unwrap());
    let opened: Vec<_> = channels
        .iter()
        .map(|c| c.open(Some(&first)).unwrap())
        .collect();
    assert_eq!(serde_json::to_value(&opened[0]).unwrap()["url"], url);
    assert_eq!(
        serde_json::to_value(&opened[1]).unwrap()["password"],
        "hunter2"
    );
    // Already sealed under the current key: nothing to do.
    let again = reseal_channels(
        &*s,
        Some(&first),
        &first,
        false,
        "notification_channel.seal",
    )
    .await
    .unwrap();
    assert_eq!(again.sealed, 0);

    let second = SecretBox::new(SecretKey::generate());
    let r = reseal_channels(&*s, Some(&first), &second, true, "secrets.rotate")
        .await
        .unwrap();
    assert_eq!(r.sealed, 2);
    let channels = stored(s.list_alert_docs(DocKind::Channel).await.unwrap());
    assert!(channels.iter().all(|c| c.open(Some(&first)).is_err()));
    let opened = channels[0].open(Some(&second)).unwrap();
    assert_eq!(serde_json::to_value(&opened).unwrap()["url"], url);

    // The wrong key: nothing changes.
    let wrong = SecretBox::new(SecretKey::generate());
    let before = s.list_alert_docs(DocKind::Channel).await.unwrap();
    assert!(
        reseal_channels(&*s, Some(&wrong), &wrong, true, "secrets.rotate")
            .await
            .is_err()
    );
    assert_eq!(s.list_alert_docs(DocKind::Channel).await.unwrap(), before);
    // At start, unreadable channels are reported and left.
    let r = reseal_channels(
        &*s,
        Some(&wrong),
        &wrong,
        false,
        "notification_channel.seal",
    )
    .await
    .unwrap();
    assert_eq!((r.sealed, r.unreadable), (0, vec![id, mail_id]));
}

/// PostgreSQL: one holder at a time until the lease expires. SQLite: always held.
pub async fn lease_is_exclusive(s: Arc<dyn StateStore>) {
    let t0 = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    let until = t0 + Duration::seconds(60);
    assert!(s.try_lease("alerts", "a", until, t0).await.unwrap());
    assert!(
        s.try_lease("alerts", "a", until, t0).await.unwrap(),
        "renewal"
    );
    let b_now = s.try_lease("alerts", "b", until, t0).await.unwrap();
    assert_eq!(b_now, s.backend() == "sqlite");
    let later = t0 + Duration::seconds(61);
    assert!(
        s.try_lease("alerts", "b", later + Duration::seconds(60), later)
            .await
            .unwrap()
    );
    assert!(s.try_lease("other", "a", until, t0).await.unwrap());
    // Released by its holder, free at once for another; a non-holder's release changes nothing.
    s.release_lease("other", "b").await.unwrap();
    assert_eq!(
        s.try_lease("other", "c", until, t0).await.unwrap(),
        s.backend() == "sqlite"
    );
    s.release_lease("other", "a").await.unwrap();
    assert!(s.try_lease("other", "c", until, t0).await.unwrap());
}

/// Declares one `#[tokio::test]` per alert-store case on a fresh store from `$open`.
#[macro_export]
macro_rules! alert_store_contract {
    ($open:path) => {
        $crate::alert_store_contract!(@cases $open;
            alert_docs_round_trip, alerts_and_outbox, lease_is_exclusive,
            alert_docs_replaced_together, channel_secrets_are_sealed_and_rotated);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::alerts_contract::$case($open().await).await;
            }
        )+
    };
}
