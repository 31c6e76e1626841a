//! The demo's uptime monitors and a resolved incident with its whole record: opened by a
//! critical alert, updates and status changes, the alert resolving, root cause, resolution,
//! postmortem and action items.

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use liftoff_core::alerts::hooks::{AlertListener, AlertStatus, AlertTransition, Severity};
use liftoff_core::alerts::model::{Alert, Op, Rule, RuleInput, RuleScope};
use liftoff_core::auth::Actor;
use liftoff_core::incidents::service::{
    ActionItemInput, ActionItemPatch, IncidentPatch, ManualKind, TimelineInput,
};
use liftoff_core::incidents::{IncidentStatus, Postmortem};
use liftoff_core::uptime::CheckRecord;
use liftoff_core::uptime::service::MonitorInput;
use liftoff_http::AppState;

/// The flag whose rollout caused the incident; the demo's flags include it, turned off.
pub const FLAG: &str = "new-payment-client";
/// The share of checkout requests that failed while the incident lasted.
pub const ERROR_RATE: f64 = 0.184;
/// How long checkout failed: from the start until the flag was turned off.
pub const FAILING_MINUTES: i64 = 20;
/// The service and endpoint that failed, as recorded in the demo's request metrics.
pub const SERVICE: &str = "shop";
pub const ENDPOINT: &str = "POST:/checkout";

/// When checkout started failing: about 20 hours before `now`, on a 5-minute boundary (the
/// demo's request metrics of the last day come in 5-minute steps).
pub fn incident_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let t = (now - Duration::hours(20)).timestamp();
    DateTime::from_timestamp(t - t.rem_euclid(300), 0).unwrap_or(now)
}

/// The alert rule that caught it, as the team would have written it.
async fn create_rule(state: &AppState, by: &Actor) -> anyhow::Result<Rule> {
    let input = RuleInput {
        name: "Checkout error rate above 5%".into(),
        metric: "error_rate".into(),
        scope: RuleScope {
            service: Some(SERVICE.into()),
            endpoint: Some(ENDPOINT.into()),
            ..RuleScope::default()
        },
        op: Op::Gt,
        threshold: Some(0.05),
        for_seconds: 120,
        keep_firing_for_seconds: 300,
        severity: Severity::Critical,
        enabled: true,
        description: "Card payments failing; check the payment client flags first.".into(),
        slo: None,
    };
    Ok(state.alerts.create_rule(by, input).await?)
}

/// Seeds the incident about 20 hours before `now` (the instant the rest of the demo uses).
pub async fn seed(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let by = Actor::System;
    let started = incident_start(now);
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
    for i in 0..(23 * 6) {
        let at = now - Duration::hours(23) + Duration::minutes(i * 10);
        let outage = at >= started && at < started + Duration::minutes(FAILING_MINUTES);
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

    // The incident: a critical alert of a real rule opens it, and the alert is in history.
    let rule = create_rule(state, &by).await?;
    let summary = format!(
        "{SERVICE} {}: {:.1}% of requests failed over 5 minutes",
        ENDPOINT.replacen(':', " ", 1),
        ERROR_RATE * 100.0
    );
    let fired_at = started + Duration::minutes(2);
    let resolved_at = started + Duration::minutes(FAILING_MINUTES + 6);
    let alert_id = state
        .store
        .save_alert(
            &Alert {
                id: 0,
                rule_id: rule.id,
                rule_name: rule.name.clone(),
                severity: rule.severity,
                status: AlertStatus::Resolved,
                value: ERROR_RATE,
                summary: summary.clone(),
                labels: rule.labels(),
                started_at: started,
                fired_at: Some(fired_at),
                last_true_at: Some(started + Duration::minutes(FAILING_MINUTES)),
                resolved_at: Some(resolved_at),
                acked_by: Some("maya.editor".into()),
                acked_at: Some(started + Duration::minutes(4)),
                notified_at: Some(fired_at),
                suppressed: false,
            },
            &[],
        )
        .await
        .context("recording the demo alert")?;
    let alert = |status, at| AlertTransition {
        alert_id,
        rule_id: rule.id,
        rule_name: rule.name.clone(),
        severity: rule.severity,
        status,
        at,
        summary: summary.clone(),
        value: ERROR_RATE,
        labels: rule.labels(),
    };
    state
        .incidents
        .on_transition(&alert(AlertStatus::Firing, fired_at))
        .await;
    let id = state
        .incidents
        .list()
        .await?
        .into_iter()
        .find(|i| i.alert_rules.contains(&rule.id))
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
    inc.add_timeline(&maya, &id, update(4, &format!("Looking into it: checkout answers 502 for card payments since {}; other routes are fine.", started.format("%H:%M UTC")))).await?;
    inc.patch(&maya, &id, status(12, IncidentStatus::Identified))
        .await?;
    inc.add_timeline(&maya, &id, update(13, &format!("Cause found: payment client 4.2 (flag {FLAG} at 50%) sends an empty idempotency key. Turning the flag off."))).await?;
    inc.patch(
        &maya,
        &id,
        status(FAILING_MINUTES, IncidentStatus::Monitoring),
    )
    .await?;
    inc.add_timeline(
        &maya,
        &id,
        update(
            FAILING_MINUTES + 1,
            "Flag off; checkout's error rate is back under 5%. Watching for 20 minutes.",
        ),
    )
    .await?;
    state
        .incidents
        .on_transition(&alert(AlertStatus::Resolved, resolved_at))
        .await;
    inc.patch(
        &maya,
        &id,
        IncidentPatch {
            root_cause: Some("Payment client 4.2 sent an empty idempotency key, which the payment provider refuses with a 502.".into()),
            resolution: Some(format!("Turned the {FLAG} flag off; 4.2.1 fixes the key and waits behind the flag.")),
            ..status(FAILING_MINUTES + 21, IncidentStatus::Resolved)
        },
    )
    .await?;
    inc.set_postmortem(
        &maya,
        &id,
        Postmortem {
            summary: format!("For {FAILING_MINUTES} minutes about one card payment in five failed after payment client 4.2 reached half of the users."),
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
