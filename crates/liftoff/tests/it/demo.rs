//! The demo tells one story: the incident's error spike is in the request metrics, the alert
//! rule that opened it exists and its alert is in history, and the flag it names exists. And
//! demo data never goes into a data directory that holds data of its own.

use chrono::Duration;
use liftoff::demo_incidents::{ENDPOINT, ERROR_RATE, FAILING_MINUTES, FLAG, SERVICE};
use liftoff_core::alerts::hooks::AlertStatus;
use liftoff_core::alerts::model::AlertQuery;
use liftoff_core::auth::Actor;
use liftoff_core::monitoring::{Filter, TimeRange};

fn settings(dir: &std::path::Path) -> liftoff::config::Settings {
    liftoff::config::Settings::from_overrides(liftoff::config::Overrides {
        data: Some(dir.to_owned()),
        admin_password: Some(crate::harness::ADMIN_PASSWORD.into()),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn the_demo_incident_is_in_the_metrics_alerts_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let built = liftoff::startup::build(&settings(dir.path()))
        .await
        .unwrap();
    let s = &built.state;
    liftoff::demo::seed(s).await.unwrap();

    let incidents = s.incidents.list().await.unwrap();
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];

    // The rule that opened it exists, scoped to the endpoint that failed.
    let rules = s.alerts.rules().await.unwrap();
    let rule = rules
        .iter()
        .find(|r| incident.alert_rules.contains(&r.id))
        .expect("the incident's alert rule exists");
    assert_eq!(rule.scope.service.as_deref(), Some(SERVICE));
    assert_eq!(rule.scope.endpoint.as_deref(), Some(ENDPOINT));

    // Its alert is in the alert history, resolved, with the incident's figure.
    let alerts = s
        .alerts
        .alerts(&AlertQuery {
            rule_id: Some(rule.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.status, AlertStatus::Resolved);
    assert_eq!(alert.value, ERROR_RATE);
    assert!(
        incident
            .timeline
            .iter()
            .any(|e| e.alert_id == Some(alert.id)),
        "the incident's timeline records that alert"
    );

    // The flag the timeline blames exists, turned off.
    assert!(incident.timeline.iter().any(|e| e.message.contains(FLAG)));
    let flag = s.flags.get(FLAG).expect("the incident's flag exists");
    assert!(!flag.enabled);

    // The spike is in the request metrics: 18.4 % of checkouts failed while it lasted, with
    // the 502s the timeline speaks of, and far fewer in the hour before.
    let started = alert.started_at;
    let checkout = Filter::new(Some(SERVICE), Some(ENDPOINT));
    let during = TimeRange {
        from: started,
        to: started + Duration::minutes(FAILING_MINUTES - 1),
    };
    let perf = s.monitoring.performance(during, &checkout).await.unwrap();
    let c = &perf[ENDPOINT];
    assert!(c.request_count > 0);
    // Whole requests: the spike's rate holds to within one request (fewer at night).
    let expected = c.request_count as f64 * ERROR_RATE;
    assert!(
        (c.error_count as f64 - expected).abs() <= 1.0,
        "{} errors of {} requests during the incident",
        c.error_count,
        c.request_count
    );
    assert!(c.status_codes.contains_key("502"), "{:?}", c.status_codes);
    let before = TimeRange {
        from: started - Duration::hours(6),
        to: started - Duration::minutes(1),
    };
    let quiet = s.monitoring.performance(before, &checkout).await.unwrap();
    assert!(quiet[ENDPOINT].error_rate < rule.threshold);

    // The rule, measured on those metrics, is above its threshold during the incident.
    let at = started + Duration::minutes(5);
    let value = s.alerts.measure(rule, at, &[]).await.unwrap().unwrap();
    assert!(value > rule.threshold, "{value}");

    // Seeding again leaves the demo as it is.
    liftoff::demo::seed(s).await.unwrap();
    assert_eq!(s.incidents.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn demo_data_is_refused_where_data_of_its_own_lives() {
    let dir = tempfile::tempdir().unwrap();
    let built = liftoff::startup::build(&settings(dir.path()))
        .await
        .unwrap();
    let s = &built.state;
    // A first start alone (admin user and key, Liftoff's own traffic) is still empty.
    s.monitoring.record_own("GET", "/api/keys", 200, 1.0);
    s.monitoring.flush_own().await.unwrap();
    let flag: liftoff_core::flags::NewFlag =
        serde_json::from_value(serde_json::json!({"flag_id": "real-flag"})).unwrap();
    s.flags.create(&Actor::System, flag).await.unwrap();

    let err = liftoff::demo::seed(s).await.unwrap_err().to_string();
    assert!(
        err.contains("already holds data of its own (1 flag)"),
        "{err}"
    );
    assert!(err.contains("--data ./liftoff-demo"), "{err}");
    assert_eq!(s.flags.list().len(), 1, "nothing was added");
    assert!(s.incidents.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_demo_launch_is_a_soft_launch_with_a_waitlist_and_dated_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let built = liftoff::startup::build(&settings(dir.path()))
        .await
        .unwrap();
    let s = &built.state;
    liftoff::demo::seed(s).await.unwrap();

    let status = s.launch.status().await.unwrap();
    assert_eq!(status.phase, "soft_launch");
    assert!(!status.maintenance);
    let settings = s.launch.settings().await.unwrap();
    assert_eq!(settings.user_limit, Some(200));
    let counts = s.launch.counts().await.unwrap();
    assert_eq!(counts.admitted, 200);
    assert_eq!(counts.waiting, u64::from(liftoff::demo_launch::ASKED) - 200);

    // First come, first served: the first asks hold seats, the last ones wait in order.
    assert!(s.launch.ask("user-0").await.unwrap().allowed);
    let last = s.launch.ask("user-239").await.unwrap();
    assert!(!last.allowed);
    assert_eq!(last.waitlist_position, Some(40));

    let summary = s.launch.feedback_summary().await.unwrap();
    assert!(summary.count >= 30, "{}", summary.count);
    assert!(summary.trend.len() >= 2, "{:?}", summary.trend);
    let avg = summary.average_rating.unwrap();
    assert!((1.0..=5.0).contains(&avg));
    let now = chrono::Utc::now();
    let feedback = s
        .launch
        .list_feedback(&liftoff_core::launch::store::FeedbackQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(feedback.iter().all(|f| f.created_at <= now));
    assert!(
        feedback
            .iter()
            .any(|f| f.created_at < now - Duration::days(7)),
        "feedback carries the dates of the story"
    );
}

#[tokio::test]
async fn the_demo_experiments_shipped_a_winner_and_a_guardrail_rolled_back_a_flag() {
    use liftoff::demo::{
        ROLLED_BACK_FLAG, RUNNING_EXPERIMENT, SHIPPED_EXPERIMENT, SHIPPED_VARIANT,
    };
    use liftoff_core::experiments::model::ExperimentStatus;
    use liftoff_core::experiments::results::DecisionStatus;

    let dir = tempfile::tempdir().unwrap();
    let built = liftoff::startup::build(&settings(dir.path()))
        .await
        .unwrap();
    let s = &built.state;
    liftoff::demo::seed(s).await.unwrap();

    // The finished experiment found the redesign better, and shipped it to everyone.
    let shipped = s.experiments.get(SHIPPED_EXPERIMENT).await.unwrap();
    assert_eq!(shipped.status, ExperimentStatus::Stopped);
    let stopped = shipped.experiment.stopped.as_ref().unwrap();
    assert_eq!(stopped.shipped_variant.as_deref(), Some(SHIPPED_VARIANT));
    let r = s.experiments.results(SHIPPED_EXPERIMENT).await.unwrap();
    assert_eq!(
        r.decision.status,
        DecisionStatus::Ship,
        "{}",
        r.decision.why
    );
    assert_eq!(r.decision.variant.as_deref(), Some(SHIPPED_VARIANT));
    assert!(!r.srm.flagged, "{:?}", r.srm);
    let users: u64 = r.variants.iter().map(|v| v.users).sum();
    assert_eq!(users + r.multiple_exposures, 2000);
    let flag = s.flags.get(SHIPPED_EXPERIMENT).unwrap();
    assert_eq!(flag.variants.len(), 1);
    assert_eq!(flag.variants[0].name, SHIPPED_VARIANT);

    // The running one collects, with numbers for its goals and its guardrail.
    let running = s.experiments.get(RUNNING_EXPERIMENT).await.unwrap();
    assert_eq!(running.status, ExperimentStatus::Running);
    let r = s.experiments.results(RUNNING_EXPERIMENT).await.unwrap();
    assert!(!r.srm.flagged, "{:?}", r.srm);
    assert_eq!(r.variants.iter().map(|v| v.users).sum::<u64>(), 600);
    assert_eq!((r.metrics.len(), r.guardrails.len()), (2, 1));
    for m in r.metrics.iter().chain(&r.guardrails) {
        assert!(m.unavailable.is_none() && !m.variants.is_empty(), "{m:?}");
    }

    // The guarded rollout rolled back on its error rate, long enough ago to page nobody.
    let plans = s.flags.rollout_plans().await.unwrap();
    let plan = plans
        .iter()
        .find(|p| p.flag_id.as_str() == ROLLED_BACK_FLAG)
        .unwrap();
    assert_eq!(plan.state, liftoff_core::flags::PlanState::RolledBack);
    let check = plan.last_check.as_ref().unwrap();
    assert!(check.readings.iter().any(|r| r.regressed), "{check:?}");
    assert!(check.at < chrono::Utc::now() - Duration::minutes(15));
    assert_eq!(s.flags.get(ROLLED_BACK_FLAG).unwrap().percentage, 0.0);
    assert!(
        s.flags
            .regressions_since(chrono::Utc::now() - Duration::minutes(15))
            .await
            .unwrap()
            .is_empty()
    );
}
