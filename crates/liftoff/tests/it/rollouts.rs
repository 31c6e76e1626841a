//! Scheduled rollouts and stale-flag detection, on the real SQLite store, stepping the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use liftoff_core::auth::Actor;
use liftoff_core::clock::ManualClock;
use liftoff_core::flags::{CriticalAlerts, FlagService, NewFlag, PlanState};
use serde_json::json;

#[derive(Default)]
struct Switch(AtomicBool);

#[async_trait]
impl CriticalAlerts for Switch {
    async fn firing_critical(&self) -> Vec<String> {
        if self.0.load(Ordering::Relaxed) {
            vec!["error rate > 5%".into()]
        } else {
            Vec::new()
        }
    }
}

async fn service(alerts: Arc<Switch>, clock: ManualClock) -> (FlagService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        liftoff_store::sqlite::SqliteState::open(&dir.path().join("state.db"))
            .await
            .unwrap(),
    );
    let audit = liftoff_core::audit::AuditService::new(store.clone());
    (
        FlagService::start(store, audit, alerts, 30)
            .await
            .unwrap()
            .with_clock(Arc::new(clock)),
        dir,
    )
}

fn new_flag(v: serde_json::Value) -> NewFlag {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_scheduled_rollout_steps_on_time_and_pauses_on_a_critical_alert() {
    let alerts = Arc::new(Switch::default());
    let t0 = Utc::now();
    let clock = ManualClock::new(t0);
    let (flags, _dir) = service(alerts.clone(), clock.clone()).await;
    let me = Actor::System;
    flags
        .create(
            &me,
            new_flag(json!({"flag_id": "search-v2", "strategy": "percentage", "percentage": 10})),
        )
        .await
        .unwrap();
    let answer = flags
        .plan_rollout(
            &me,
            "search-v2",
            50.0,
            20.0,
            Some(60),
            Some("launch".into()),
        )
        .await
        .unwrap();
    assert_eq!(answer.steps, vec![30.0, 50.0]);

    clock.set(t0 + Duration::minutes(30));
    flags.advance_rollouts().await.unwrap();
    assert_eq!(
        flags.get("search-v2").unwrap().percentage,
        10.0,
        "nothing before the interval"
    );
    clock.set(t0 + Duration::minutes(61));
    flags.advance_rollouts().await.unwrap();
    assert_eq!(flags.get("search-v2").unwrap().percentage, 30.0);

    alerts.0.store(true, Ordering::Relaxed);
    clock.set(t0 + Duration::minutes(200));
    let did = flags.advance_rollouts().await.unwrap();
    assert!(did.contains("paused"), "{did}");
    assert_eq!(
        flags.get("search-v2").unwrap().percentage,
        30.0,
        "a firing critical alert stops the plan"
    );
    let plan = flags.rollout_plans().await.unwrap().remove(0);
    assert_eq!(plan.state, PlanState::Paused);
    assert!(plan.paused_reason.unwrap().contains("error rate"));

    alerts.0.store(false, Ordering::Relaxed);
    clock.set(t0 + Duration::minutes(300));
    flags.advance_rollouts().await.unwrap();
    assert_eq!(
        flags.get("search-v2").unwrap().percentage,
        30.0,
        "a paused plan waits for a person"
    );
    flags
        .set_plan_state(&me, "search-v2", false, Some("fixed".into()))
        .await
        .unwrap();
    clock.advance(Duration::minutes(61));
    flags.advance_rollouts().await.unwrap();
    assert_eq!(flags.get("search-v2").unwrap().percentage, 50.0);
    assert_eq!(
        flags.rollout_plans().await.unwrap()[0].state,
        PlanState::Completed
    );

    let history = flags.history("search-v2", 100).await.unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    for a in [
        "flag.rollout_plan",
        "flag.rollout",
        "flag.rollout_step",
        "flag.rollout_pause",
        "flag.rollout_resume",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

/// Two replicas stepping the same plan at the same instant (what a lease handover could never
/// allow, and what a crash between the flag change and the plan's record used to leave behind)
/// apply each step once: the flag change and the step are one transaction that only commits if
/// the plan's step count is still the one read.
async fn two_replicas_apply_each_step_once(
    store_a: Arc<dyn liftoff_core::ports::StateStore>,
    store_b: Arc<dyn liftoff_core::ports::StateStore>,
) {
    let t0 = Utc::now();
    let clock = ManualClock::new(t0);
    let replica = |store: Arc<dyn liftoff_core::ports::StateStore>| {
        let clock = clock.clone();
        async move {
            let audit = liftoff_core::audit::AuditService::new(store.clone());
            FlagService::start(store, audit, Arc::new(Switch::default()), 30)
                .await
                .unwrap()
                .with_clock(Arc::new(clock))
        }
    };
    let (a, b) = (replica(store_a).await, replica(store_b).await);
    let me = Actor::System;
    a.create(
        &me,
        new_flag(json!({"flag_id": "checkout-v3", "strategy": "percentage", "percentage": 10})),
    )
    .await
    .unwrap();
    a.plan_rollout(&me, "checkout-v3", 70.0, 20.0, Some(60), None)
        .await
        .unwrap();
    b.reload().await.unwrap();
    for (minutes, expected) in [(61, 30.0), (122, 50.0), (183, 70.0)] {
        clock.set(t0 + Duration::minutes(minutes));
        let (x, y) = tokio::join!(a.advance_rollouts(), b.advance_rollouts());
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(
            [&x, &y]
                .iter()
                .filter(|d| d.contains("applied elsewhere"))
                .count()
                == 1,
            "one replica applied the step, the other saw it done: {x} / {y}"
        );
        a.reload().await.unwrap();
        assert_eq!(a.get("checkout-v3").unwrap().percentage, expected);
    }
    let history = a.history("checkout-v3", 100).await.unwrap();
    let count = |action: &str| history.iter().filter(|h| h.action == action).count();
    assert_eq!(
        count("flag.rollout_step"),
        3,
        "three steps, each recorded once"
    );
    assert_eq!(count("flag.rollout"), 3, "three flag changes");
    let plan = a.rollout_plans().await.unwrap().remove(0);
    assert_eq!((plan.applied, plan.state), (3, PlanState::Completed));
}

#[tokio::test]
async fn two_replicas_on_sqlite_apply_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let open = || async {
        let s: Arc<dyn liftoff_core::ports::StateStore> = Arc::new(
            liftoff_store::sqlite::SqliteState::open(&dir.path().join("state.db"))
                .await
                .unwrap(),
        );
        s
    };
    two_replicas_apply_each_step_once(open().await, open().await).await;
}

#[tokio::test]
async fn two_replicas_on_postgres_apply_each_step_once() {
    let url = liftoff_testkit::postgres::fresh_schema_url().await;
    let open = || async {
        let s: Arc<dyn liftoff_core::ports::StateStore> = Arc::new(
            liftoff_store::postgres::PgState::connect(&url)
                .await
                .unwrap(),
        );
        s
    };
    two_replicas_apply_each_step_once(open().await, open().await).await;
}

#[tokio::test]
async fn evaluation_counts_are_recorded_and_fresh_flags_are_not_stale() {
    let (flags, _dir) = service(Arc::default(), ManualClock::new(Utc::now())).await;
    flags
        .create(&Actor::System, new_flag(json!({"flag_id": "dark-mode"})))
        .await
        .unwrap();
    let ctx = liftoff_eval::Context::default();
    for _ in 0..5 {
        flags.evaluate(
            "dark-mode",
            liftoff_core::flags::Environment::Production,
            &ctx,
        );
    }
    assert_eq!(flags.flush_evaluation_counts().await.unwrap(), 1);
    assert_eq!(
        flags.flush_evaluation_counts().await.unwrap(),
        0,
        "counts are drained"
    );
    let stale = flags.staleness().await.unwrap();
    assert!(!stale["dark-mode"].stale, "changed today, evaluated today");
}
