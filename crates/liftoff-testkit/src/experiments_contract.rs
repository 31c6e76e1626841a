//! What every backend must do for experiments: documents round-trip with a version check,
//! keys are unique, and exposures keep one row per (experiment, user) with the first variant
//! and time, marking users given another variant, however the writes are batched or ordered.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use liftoff_core::audit::Change;
use liftoff_core::auth::Actor;
use liftoff_core::experiments::model::{AnalysisSettings, ExperimentVariant, Metrics};
use liftoff_core::experiments::{Experiment, ExperimentStore, Exposure, Metric, MetricKind};
use liftoff_core::flags::Environment;

fn change(action: &str, key: &str) -> Change {
    Change::new(&Actor::System, action, "experiment", key)
}

fn experiment(key: &str, flag: &str) -> Experiment {
    let at = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    Experiment {
        key: key.into(),
        flag_id: flag.into(),
        name: format!("Experiment {key}"),
        hypothesis: "v2 converts better".into(),
        environment: Environment::Production,
        control: "control".into(),
        variants: vec![
            ExperimentVariant {
                name: "control".into(),
                weight: 50.0,
            },
            ExperimentVariant {
                name: "v2".into(),
                weight: 50.0,
            },
        ],
        metrics: Metrics {
            primary: Metric {
                kind: MetricKind::Conversion,
                event: Some("purchase".into()),
                property: None,
                denominator_event: None,
                window_hours: 72,
                higher_is_better: None,
            },
            secondary: Vec::new(),
            guardrails: Vec::new(),
        },
        analysis: AnalysisSettings::default(),
        starts_at: at,
        ends_at: Some(at + Duration::days(14)),
        stopped: None,
        created_by: "system".into(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

pub async fn experiments_round_trip_with_a_version_check(s: Arc<dyn ExperimentStore>) {
    let a = experiment("checkout", "checkout-v2");
    assert!(
        s.create_experiment(&a, &change("experiment.create", "checkout"))
            .await
            .unwrap()
    );
    assert!(
        !s.create_experiment(&a, &change("experiment.create", "checkout"))
            .await
            .unwrap(),
        "a key is taken once"
    );
    let mut b = experiment("onboarding", "onboarding-v2");
    b.created_at += Duration::hours(1);
    assert!(
        s.create_experiment(&b, &change("experiment.create", "onboarding"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_experiment("checkout").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_experiment("nope").await.unwrap(), None);
    let keys: Vec<String> = s
        .list_experiments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["onboarding", "checkout"], "newest first");

    let mut changed = a.clone();
    changed.name = "Renamed".into();
    changed.version = 2;
    assert!(
        s.update_experiment(&changed, 1, &change("experiment.update", "checkout"))
            .await
            .unwrap()
    );
    assert!(
        !s.update_experiment(&changed, 1, &change("experiment.update", "checkout"))
            .await
            .unwrap(),
        "a stale version writes nothing"
    );
    assert_eq!(
        s.get_experiment("checkout").await.unwrap().unwrap().name,
        "Renamed"
    );
}

pub async fn exposures_keep_the_first_variant_and_mark_switches(s: Arc<dyn ExperimentStore>) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let e = |user: &str, variant: &str, mins: i64| Exposure {
        experiment: "checkout".into(),
        user_id: user.into(),
        variant: variant.into(),
        at: t0 + Duration::minutes(mins),
    };
    s.record_exposures(&[e("a", "control", 5), e("b", "v2", 1), e("a", "control", 9)])
        .await
        .unwrap();
    // In one batch: an earlier exposure to the other variant, and another experiment's row.
    let mut other = e("a", "v2", 0);
    other.experiment = "onboarding".into();
    s.record_exposures(&[e("c", "v2", 3), e("b", "v2", 0), e("a", "v2", 2), other])
        .await
        .unwrap();
    s.record_exposures(&[]).await.unwrap();
    let users = s.exposed_users("checkout").await.unwrap();
    let got: Vec<(&str, &str, i64, bool)> = users
        .iter()
        .map(|u| {
            (
                u.user_id.as_str(),
                u.variant.as_str(),
                (u.first_at - t0).num_minutes(),
                u.multiple,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", "v2", 2, true),
            ("b", "v2", 0, false),
            ("c", "v2", 3, false)
        ],
        "first exposure wins the variant; another variant marks the user"
    );
    assert_eq!(s.exposed_users("onboarding").await.unwrap().len(), 1);
    assert!(s.exposed_users("none").await.unwrap().is_empty());

    // 5,000 users from 8 concurrent writers: every one stored once.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for chunk in (w..5000).step_by(8).collect::<Vec<_>>().chunks(250) {
                let batch: Vec<Exposure> = chunk
                    .iter()
                    .map(|i| Exposure {
                        experiment: "load".into(),
                        user_id: format!("u{i}"),
                        variant: if i % 2 == 0 { "control" } else { "v2" }.into(),
                        at: t0,
                    })
                    .collect();
                s.record_exposures(&batch).await.unwrap();
                s.record_exposures(&batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let load = s.exposed_users("load").await.unwrap();
    assert_eq!(load.len(), 5000);
    assert!(load.iter().all(|u| !u.multiple));
}

/// Runs the experiments contract against the store `$open` returns (an
/// `async fn() -> Arc<dyn ExperimentStore>`).
#[macro_export]
macro_rules! experiments_contract {
    ($open:path) => {
        $crate::experiments_contract!(@cases $open;
            experiments_round_trip_with_a_version_check,
            exposures_keep_the_first_variant_and_mark_switches);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::experiments_contract::$case($open().await).await;
            }
        )+
    };
}
