//! Experiments: exposures from server-side evaluations and from PostHog-style events,
//! conversions in the window after exposure, results equal to the statistics engine on the
//! same counts, the decision, stop-and-ship, and bad input.

use std::collections::BTreeMap;

use liftoff_core::experiments::stats::{self, Analysis, Method, Statistic};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn};

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post_json(path, Some(token), &body).await
}

async fn flag_with_variants(app: &TestApp, key: &str) {
    let res = post(
        app,
        "/api/feature-flags",
        ADMIN_TOKEN,
        json!({"flag_id": key, "variants": [{"name": "control", "weight": 50}, {"name": "treatment", "weight": 50}]}),
    )
    .await;
    assert_eq!(res.status(), 201);
}

async fn results(app: &TestApp, key: &str) -> Value {
    let res = app
        .get(
            &format!("/api/experiments/{key}/results"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn events(app: &TestApp, ingest: &str, events: Vec<Value>) {
    for chunk in events.chunks(1000) {
        let res = post(
            app,
            "/api/ingest/events",
            ingest,
            Value::Array(chunk.to_vec()),
        )
        .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

#[tokio::test]
async fn server_side_exposures_and_conversions_give_the_engines_answer_and_a_winner() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    flag_with_variants(&app, "checkout-v2").await;
    let res = post(
        &app,
        "/api/experiments",
        ADMIN_TOKEN,
        json!({"key": "checkout-test", "flag_id": "checkout-v2", "hypothesis": "v2 converts better",
               "metrics": {"primary": {"kind": "conversion", "event": "purchase"},
                           "secondary": [{"kind": "mean", "event": "purchase", "property": "amount"}]},
               "analysis": {"method": "frequentist"}}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // 1,000 users evaluated server-side (OFREP for half, /check for the other half, twice
    // each: repeats are one exposure); treatment converts at 30 %, control at 15 %.
    let mut given = BTreeMap::new();
    let mut purchases = Vec::new();
    let mut counts: BTreeMap<String, (f64, f64, f64, f64)> = BTreeMap::new();
    for i in 0..1000 {
        let user = format!("user-{i}");
        let mut variant = String::new();
        for _ in 0..2 {
            variant = if i % 2 == 0 {
                let a: Value = post(
                    &app,
                    "/ofrep/v1/evaluate/flags/checkout-v2",
                    &ingest,
                    json!({"context": {"targetingKey": user}}),
                )
                .await
                .json()
                .await
                .unwrap();
                a["variant"].as_str().unwrap().to_owned()
            } else {
                let a: Value = post(
                    &app,
                    "/api/feature-flags/checkout-v2/check",
                    &ingest,
                    json!({"user_id": user}),
                )
                .await
                .json()
                .await
                .unwrap();
                a["variant"].as_str().unwrap().to_owned()
            };
        }
        let converts = if variant == "treatment" {
            i % 10 < 3
        } else {
            i % 20 < 3
        };
        let c = counts.entry(variant.clone()).or_default();
        c.0 += 1.0;
        if converts {
            let amount = f64::from(10 + i % 7);
            c.1 += 1.0;
            c.2 += amount;
            c.3 += amount * amount;
            purchases.push(
                json!({"event": "purchase", "user_id": user, "properties": {"amount": amount}}),
            );
        }
        given.insert(user, variant);
    }
    // A purchase before the exposure does not count.
    let early = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    purchases.push(json!({"event": "purchase", "user_id": "user-1", "timestamp": early, "properties": {"amount": 999}}));
    // The job writes exposures every second; let one pass before the events.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.state.experiments.flush_exposures().await.unwrap();
    events(&app, &ingest, purchases).await;

    let r = results(&app, "checkout-test").await;
    let users: BTreeMap<String, f64> = r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_str().unwrap().to_owned(),
                v["users"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(users["control"], counts["control"].0);
    assert_eq!(users["treatment"], counts["treatment"].0);
    assert_eq!(r["multiple_exposures"], 0);

    // The primary metric equals the engine on the counts this test made.
    let analysis = Analysis {
        method: Method::Frequentist,
        ..Analysis::default()
    };
    let (c, t) = (counts["control"], counts["treatment"]);
    let expected = stats::compare(
        &Statistic::Proportion { n: c.0, sum: c.1 },
        &Statistic::Proportion { n: t.0, sum: t.1 },
        &analysis,
        false,
    );
    let primary = &r["metrics"][0];
    assert_eq!(primary["metric"], "conversion:purchase");
    let treatment = &primary["variants"][1];
    assert_eq!(treatment["variant"], "treatment");
    assert!((treatment["value"].as_f64().unwrap() - t.1 / t.0).abs() < 1e-12);
    let rel = treatment["uplift"]["relative"].as_f64().unwrap();
    assert!(
        (rel - expected.relative).abs() < 1e-9,
        "{rel} vs {}",
        expected.relative
    );
    assert!((treatment["uplift"]["ci_low"].as_f64().unwrap() - expected.ci_low).abs() < 1e-9);
    // Holm over two goal metrics: the adjusted p is at least the raw one.
    let raw = treatment["p_value_raw"].as_f64().unwrap();
    assert!((raw - expected.p_value.unwrap()).abs() < 1e-9);
    assert!(treatment["p_value"].as_f64().unwrap() >= raw);

    // The secondary metric: mean purchase amount per exposed user.
    let expected_mean = stats::compare(
        &Statistic::Mean {
            n: c.0,
            sum: c.2,
            sum_squares: c.3,
        },
        &Statistic::Mean {
            n: t.0,
            sum: t.2,
            sum_squares: t.3,
        },
        &analysis,
        false,
    );
    let mean = &r["metrics"][1]["variants"][1];
    assert!((mean["uplift"]["relative"].as_f64().unwrap() - expected_mean.relative).abs() < 1e-9);

    assert_eq!(r["srm"]["flagged"], false);
    assert_eq!(r["decision"]["status"], "ship", "{}", r["decision"]);
    assert_eq!(r["decision"]["variant"], "treatment");

    // Stop and ship: the flag keeps only the winner, and the audit says why.
    let res = post(
        &app,
        "/api/experiments/checkout-test/stop",
        ADMIN_TOKEN,
        json!({"ship_variant": "treatment", "reason": "v2 wins"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let stopped: Value = res.json().await.unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["stopped"]["shipped_variant"], "treatment");
    let flag: Value = app
        .get("/api/feature-flags/checkout-v2", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let variants = flag["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 1);
    assert_eq!(variants[0]["name"], "treatment");
    let audit: Value = app
        .get("/api/audit?target_type=experiment", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"experiment.stop") && actions.contains(&"experiment.create"));
    // Stopping twice is a conflict; evaluations after the stop are no exposures.
    problem(
        post(
            &app,
            "/api/experiments/checkout-test/stop",
            ADMIN_TOKEN,
            json!({"reason": "again"}),
        )
        .await,
        409,
    )
    .await;
}

#[tokio::test]
async fn posthog_style_events_are_exposures_and_switching_users_are_left_out() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    flag_with_variants(&app, "new-onboarding").await;
    let res = post(
        &app,
        "/api/experiments",
        ADMIN_TOKEN,
        json!({"key": "onboarding", "flag_id": "new-onboarding",
               "starts_at": chrono::Utc::now() - chrono::Duration::hours(4),
               "metrics": {"primary": {"kind": "count", "event": "step_done", "window_hours": 1}}}),
    )
    .await;
    assert_eq!(res.status(), 201);
    // Exposures 3 hours ago; steps 2 and 30 minutes after (inside the 1-hour window) and 90.
    let now = chrono::Utc::now() - chrono::Duration::hours(3);
    let at = |mins: i64| (now + chrono::Duration::minutes(mins)).to_rfc3339();
    let mut batch = Vec::new();
    for i in 0..40 {
        let variant = if i % 2 == 0 { "control" } else { "treatment" };
        let user = format!("p{i}");
        if i < 20 {
            batch.push(json!({"event": "$feature_flag_called", "user_id": user, "timestamp": at(1),
                "properties": {"$feature_flag": "new-onboarding", "$feature_flag_response": variant}}));
        } else {
            batch.push(
                json!({"event": "$pageview", "user_id": user, "timestamp": at(1),
                "properties": {"$feature/new-onboarding": variant}}),
            );
        }
        // Two steps inside the hour, one after it.
        for m in [2, 30, 90] {
            batch.push(json!({"event": "step_done", "user_id": user, "timestamp": at(m)}));
        }
    }
    // A user who saw both variants.
    batch.push(
        json!({"event": "$feature_flag_called", "user_id": "both", "timestamp": at(1),
        "properties": {"$feature_flag": "new-onboarding", "$feature_flag_response": "control"}}),
    );
    batch.push(
        json!({"event": "$feature_flag_called", "user_id": "both", "timestamp": at(2),
        "properties": {"$feature_flag": "new-onboarding", "$feature_flag_response": "treatment"}}),
    );
    events(&app, &ingest, batch).await;

    let r = results(&app, "onboarding").await;
    assert_eq!(r["multiple_exposures"], 1);
    assert_eq!(r["variants"][0]["users"], 20);
    assert_eq!(r["variants"][1]["users"], 20);
    let m = &r["metrics"][0];
    assert_eq!(m["variants"][0]["value"], 2.0, "{m}");
    assert_eq!(m["variants"][1]["value"], 2.0);
    // 20 users a variant: too few for a decision.
    assert_eq!(r["decision"]["status"], "keep_running");

    // The cumulative chart: 24 moments over the 4 hours; none exposed in the first hour, the
    // users counted never shrink, and the last moment is the results' answer.
    let res = app
        .get("/api/experiments/onboarding/timeline", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let points = t["points"].as_array().unwrap();
    assert_eq!(points.len(), 24, "{t}");
    assert_eq!(t["metric"], m["metric"]);
    let users = |p: &Value| -> u64 {
        p["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(users(&points[0]), 0);
    assert!(points.windows(2).all(|w| users(&w[0]) <= users(&w[1])));
    let last = points.last().unwrap();
    assert_eq!(users(last), 40);
    assert_eq!(last["variants"], m["variants"]);
    let res = app
        .get("/api/experiments/nope/timeline", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn bad_experiments_are_refused_with_the_reason() {
    let app = spawn().await;
    flag_with_variants(&app, "two-way").await;
    let res = post(
        &app,
        "/api/feature-flags",
        ADMIN_TOKEN,
        json!({"flag_id": "plain"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let primary = json!({"kind": "conversion", "event": "signup"});
    let cases = [
        json!({"key": "a", "flag_id": "plain", "metrics": {"primary": primary}}),
        json!({"key": "b", "flag_id": "two-way", "metrics": {"primary": {"kind": "median", "event": "x"}}}),
        json!({"key": "c", "flag_id": "two-way", "metrics": {"primary": primary}, "analysis": {"alpha": 0}}),
        json!({"key": "d", "flag_id": "two-way", "metrics": {"primary": primary}, "analysis": {"alpha": 1}}),
        json!({"key": "e", "flag_id": "two-way", "metrics": {"primary": primary}, "weights": {"control": 50, "treatment": 40}}),
        json!({"key": "f", "flag_id": "two-way", "metrics": {"primary": {"kind": "mean", "event": "buy"}}}),
        json!({"key": "g", "flag_id": "missing", "metrics": {"primary": primary}}),
        json!({"key": "bad key", "flag_id": "two-way", "metrics": {"primary": primary}}),
        json!({"key": "h", "flag_id": "two-way", "metrics": {"primary": primary}, "control": "nope"}),
    ];
    for body in cases {
        let p = problem(
            post(&app, "/api/experiments", ADMIN_TOKEN, body.clone()).await,
            422,
        )
        .await;
        assert!(p["detail"].as_str().unwrap().len() > 10, "{body}: {p}");
    }
    let before: Value = app
        .get("/api/feature-flags/two-way", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        before["variants"][0]["weight"], 50,
        "a refused experiment changes no flag"
    );

    // Weights summing to 100 are set on the flag.
    let res = post(&app, "/api/experiments", ADMIN_TOKEN,
        json!({"key": "split", "flag_id": "two-way", "metrics": {"primary": primary}, "weights": {"control": 80, "treatment": 20}})).await;
    assert_eq!(res.status(), 201);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["variants"][0]["weight"], 80.0);
    // A second experiment on the same flag while the first runs: a conflict.
    problem(
        post(
            &app,
            "/api/experiments",
            ADMIN_TOKEN,
            json!({"key": "split-2", "flag_id": "two-way", "metrics": {"primary": primary}}),
        )
        .await,
        409,
    )
    .await;
    // No key, a read key: refused.
    let (_, read) = app.key("read").await;
    assert_eq!(
        post(&app, "/api/experiments", &read, json!({}))
            .await
            .status(),
        403
    );
    assert_eq!(app.get("/api/experiments", None).await.status(), 401);
    // The calculator refuses what is not a statistic.
    problem(post(&app, "/api/experiments/analyze", &read,
        json!({"variants": [{"kind": "proportion", "n": 10, "sum": 20}, {"kind": "proportion", "n": 10, "sum": 2}]})).await, 422).await;
}

/// A guarded rollout end to end: requests say which value of the flag they were served; the
/// new value fails four times as often; the next check rolls the flag back to 0 %, and one
/// audit entry and one alert say why.
#[tokio::test]
async fn a_guarded_rollout_rolls_back_when_its_error_rate_regresses() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let res = post(
        &app,
        "/api/feature-flags",
        ADMIN_TOKEN,
        json!({"flag_id": "new-search", "strategy": "percentage", "percentage": 10}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let bad = post(
        &app,
        "/api/feature-flags/new-search/gradual-rollout",
        ADMIN_TOKEN,
        json!({"target_percentage": 100, "increment": 10, "guardrails": ["error_rate"]}),
    )
    .await;
    problem(bad, 422).await;
    let res = post(
        &app,
        "/api/feature-flags/new-search/gradual-rollout",
        ADMIN_TOKEN,
        json!({"target_percentage": 100, "increment": 10, "interval_minutes": 1,
               "guardrails": ["error_rate", "latency_p95"], "check_interval_seconds": 1,
               "min_samples_per_step": 50}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let plan: Value = res.json().await.unwrap();
    assert!(
        plan["recommendation"]
            .as_str()
            .unwrap()
            .contains("rolls the flag back")
    );
    // The first pass starts keeping requests per value of the flag.
    app.state.flags.advance_rollouts().await.unwrap();

    let mut records = Vec::new();
    for i in 0..3000 {
        let on = i % 10 == 0;
        let failed = if on { i % 100 < 20 } else { i % 100 == 1 };
        records.push(
            json!({"service": "shop", "method": "GET", "route": "/search",
            "status": if failed { 500 } else { 200 }, "duration_ms": 20.0,
            "flags": {"new-search": if on { "on" } else { "off" }, "unwatched": "x"}}),
        );
    }
    let res = post(&app, "/api/ingest/requests", &ingest, Value::Array(records)).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.state.flags.advance_rollouts().await.unwrap();

    let flag: Value = app
        .get("/api/feature-flags/new-search", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flag["percentage"], 0.0, "{flag}");
    let plans = app.state.flags.rollout_plans().await.unwrap();
    let plan = plans
        .iter()
        .find(|p| p.flag_id.as_str() == "new-search")
        .unwrap();
    assert_eq!(plan.state, liftoff_core::flags::PlanState::RolledBack);
    let check = plan.last_check.as_ref().unwrap();
    let reading = check.readings.iter().find(|r| r.regressed).unwrap();
    assert_eq!(reading.treatment_requests, 300);
    assert!(
        (reading.treatment_value - 0.2).abs() < 1e-9
            && (reading.control_value - 1.0 / 90.0).abs() < 1e-3
    );

    let audit: Value = app
        .get(
            "/api/audit?target_type=flag&target_id=new-search",
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    let rollbacks: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "flag.rollout_rollback")
        .collect();
    assert_eq!(rollbacks.len(), 1, "{audit}");
    assert!(
        rollbacks[0]["reason"]
            .as_str()
            .unwrap()
            .contains("error_rate 20.00 %"),
        "{}",
        rollbacks[0]
    );

    app.state.alerts.evaluate(chrono::Utc::now()).await.unwrap();
    let alerts: Value = app
        .get("/api/alerts", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let firing: Vec<&Value> = alerts
        .as_array()
        .or_else(|| alerts["alerts"].as_array())
        .unwrap()
        .iter()
        .filter(|a| {
            a["rule_name"] == "Guarded rollout regressed"
                || a["name"] == "Guarded rollout regressed"
        })
        .collect();
    assert_eq!(firing.len(), 1, "{alerts}");
}

#[tokio::test]
async fn the_rust_sdks_local_evaluations_report_each_users_exposure_once() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    flag_with_variants(&app, "search-ranking").await;
    let res = post(
        &app,
        "/api/experiments",
        ADMIN_TOKEN,
        json!({"key": "ranking", "flag_id": "search-ranking",
               "starts_at": chrono::Utc::now() - chrono::Duration::hours(1),
               "metrics": {"primary": {"kind": "conversion", "event": "search_click"}}}),
    )
    .await;
    assert_eq!(res.status(), 201);

    let client = liftoff_sdk::FlagClient::builder(&app.url, &ingest)
        .report_exposures(true)
        .build()
        .await
        .unwrap();
    assert!(client.is_ready());
    // 200 users, each evaluated five times (and an anonymous context, which says nothing).
    let mut assigned: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..200 {
        let ctx = liftoff_sdk::Context::with_user(format!("s{i}"));
        let first = client.variant("search-ranking", &ctx).name;
        for _ in 0..4 {
            assert_eq!(client.variant("search-ranking", &ctx).name, first);
        }
        *assigned.entry(first).or_default() += 1;
    }
    client.variant("search-ranking", &liftoff_sdk::Context::default());
    client.is_enabled("no-such-flag", &liftoff_sdk::Context::with_user("s1"));
    client.close().await;
    assert_eq!(client.exposures_sent(), 200, "one event per user");
    assert_eq!(client.exposures_dropped(), 0);

    // The exposure job and the grace period pass within a few seconds.
    let mut r = Value::Null;
    for _ in 0..50 {
        r = results(&app, "ranking").await;
        let users: u64 = r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .sum();
        if users == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for v in r["variants"].as_array().unwrap() {
        let name = v["variant"].as_str().unwrap();
        assert_eq!(v["users"], assigned[name], "{r}");
    }
    assert_eq!(r["multiple_exposures"], 0);
}
