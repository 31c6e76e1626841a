//! The demo's uptime monitors and a resolved incident with its whole record: opened by a
//! critical alert, updates and status changes, the alert resolving, root cause, resolution,
//! postmortem and action items.

use anyhow::Context as _;
use chrono::{Duration, Utc};
use liftoff_core::alerts::hooks::{AlertListener, AlertStatus, AlertTransition, Severity};
use liftoff_core::auth::Actor;
use liftoff_core::incidents::service::{
    ActionItemInput, ActionItemPatch, IncidentPatch, ManualKind, TimelineInput,
};
use liftoff_core::incidents::{IncidentStatus, Postmortem};
use liftoff_core::uptime::CheckRecord;
use liftoff_core::uptime::service::MonitorInput;
use liftoff_http::AppState;

const RULE_ID: i64 = 1_000_001;

pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let by = Actor::System;
    let now = Utc::now();
    state
        .uptime
        .create(
            &by,
            MonitorInput {
                name: Some("Liftoff itself (/healthz)".into()),
                url: Some("http://127.0.0.1:7070/healthz".into()),
                interval_seconds: Some(30),
                timeout_seconds: Some(5),
                ..MonitorInput::default()
            },
        )
        .await
        .context("creating the demo monitor")?;
    // A paused example with a day of history that includes the incident's outage.
    let shop = state
        .uptime
        .create(
            &by,
            MonitorInput {
                name: Some("Checkout API (example)".into()),
                url: Some("https://shop.example.com/api/health".into()),
                interval_seconds: Some(60),
                timeout_seconds: Some(10),
                keyword: Some("ok".into()),
                retries: Some(1),
                enabled: Some(false),
                ..MonitorInput::default()
            },
        )
        .await
        .context("creating the demo monitor")?;
    let started = now - Duration::hours(20);
    for i in 0..(23 * 6) {
        let at = now - Duration::hours(23) + Duration::minutes(i * 10);
        let outage = at >= started && at < started + Duration::minutes(40);
        let check = CheckRecord {
            monitor_id: shop.id,
            at,
            up: !outage,
            status_code: Some(if outage { 502 } else { 200 }),
            response_ms: if outage {
                30
            } else {
                80 + (i * 37 % 90) as u32
            },
            error: outage.then(|| "unexpected status 502".into()),
        };
        state.uptime.record(&shop, &check).await?;
    }

    // The incident: a critical alert opens it.
    let alert = |status, at| AlertTransition {
        alert_id: 1,
        rule_id: RULE_ID,
        rule_name: "Checkout error rate above 5%".into(),
        severity: Severity::Critical,
        status,
        at,
        summary: "shop POST /checkout: 18.4% of requests failed over 5 minutes".into(),
        value: 0.184,
        labels: Default::default(),
    };
    state
        .incidents
        .on_transition(&alert(AlertStatus::Firing, started))
        .await;
    let id = state
        .incidents
        .list()
        .await?
        .into_iter()
        .find(|i| i.alert_rules.contains(&RULE_ID))
        .context("the demo alert opened no incident")?
        .id;
    let maya = Actor::User {
        id: "demo".into(),
        username: "maya.editor".into(),
    };
    let update = |minutes: i64, message: &str| TimelineInput {
        message: message.into(),
        kind: ManualKind::Update,
        at: Some(started + Duration::minutes(minutes)),
    };
    let status = |minutes: i64, s| IncidentPatch {
        status: Some(s),
        status_at: Some(started + Duration::minutes(minutes)),
        ..IncidentPatch::default()
    };
    let inc = &state.incidents;
    inc.add_timeline(&maya, &id, update(4, "Looking into it: checkout answers 502 for card payments since 14:05; other routes are fine.")).await?;
    inc.patch(&maya, &id, status(12, IncidentStatus::Identified))
        .await?;
    inc.add_timeline(&maya, &id, update(13, "Cause found: payment client 4.2 (flag new-payment-client at 50%) sends an empty idempotency key. Turning the flag off.")).await?;
    inc.patch(&maya, &id, status(18, IncidentStatus::Monitoring))
        .await?;
    inc.add_timeline(
        &maya,
        &id,
        update(
            19,
            "Flag off; error rate back under 1%. Watching for 20 minutes.",
        ),
    )
    .await?;
    state
        .incidents
        .on_transition(&alert(
            AlertStatus::Resolved,
            started + Duration::minutes(24),
        ))
        .await;
    inc.patch(
        &maya,
        &id,
        IncidentPatch {
            root_cause: Some("Payment client 4.2 sent an empty idempotency key, which the payment provider refuses with a 502.".into()),
            resolution: Some("Turned the new-payment-client flag off; 4.2.1 fixes the key and is behind the flag again.".into()),
            ..status(40, IncidentStatus::Resolved)
        },
    )
    .await?;
    inc.set_postmortem(
        &maya,
        &id,
        Postmortem {
            summary: "For 40 minutes about one card payment in five failed after payment client 4.2 reached half of the users.".into(),
            what_went_well: "The error-rate alert fired within two minutes and opened this incident; the flag turned the change off without a deploy.".into(),
            what_could_be_improved: "The rollout went from 10% to 50% without waiting for checkout's error rate; the client's tests used a fake provider that accepts empty keys.".into(),
            lessons: "Gate rollout stages on the checkout error rate; contract-test the provider's validation.".into(),
        },
    )
    .await?;
    let items = [
        (
            "Gate rollout stages on checkout error rate",
            "maya.editor",
            7,
            true,
        ),
        (
            "Contract tests against the payment provider sandbox",
            "sam.viewer",
            14,
            false,
        ),
        (
            "Alert on idempotency-key rejections",
            "maya.editor",
            21,
            false,
        ),
    ];
    for (title, owner, due_days, done) in items {
        let item = inc
            .add_action_item(
                &maya,
                &id,
                ActionItemInput {
                    title: title.into(),
                    owner: Some(owner.into()),
                    due_date: Some((now + Duration::days(due_days)).date_naive()),
                },
            )
            .await?;
        if done {
            inc.update_action_item(
                &maya,
                &id,
                item.id,
                ActionItemPatch {
                    done: Some(true),
                    ..ActionItemPatch::default()
                },
            )
            .await?;
        }
    }
    Ok(())
}
