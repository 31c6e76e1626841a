//! The seed's JSON shapes, exactly: field names and units as the seed's examples write them
//! (rates are fractions 0–1), on SQLite and on PostgreSQL.

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, postgres_state_url, problem, spawn, spawn_with};

const MIN: i64 = 60_000;

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Value {
    let res = app.post_json(path, Some(token), body).await;
    assert_eq!(res.status(), 200, "{path}: {}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn on_postgres() -> TestApp {
    let url = postgres_state_url().await;
    spawn_with(|mut o| {
        o.state_url = Some(url);
        o
    })
    .await
}

fn ev(user: &str, event: &str, ts: i64, session: Option<&str>, props: Value) -> Value {
    let mut e = json!({"user_id": user, "event": event, "timestamp": ts, "properties": props});
    if let Some(s) = session {
        e["session_id"] = json!(s);
    }
    e
}

/// Asks until the analytics engine has seen the events (it refreshes at most every 2 s).
async fn settled(app: &TestApp, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..60 {
        last = get(app, path).await;
        if ready(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{path} never settled: {last}");
}

fn close(got: &Value, want: f64) -> bool {
    got.as_f64().is_some_and(|g| (g - want).abs() < 1e-9)
}

/// Funnel 4 → 3 → 1 users, retention, milestones, bounce rate and the request error rate:
/// every rate a fraction, as the seed writes `conversion_rate` 0.75 and `error_rate` 0.0078.
async fn rates_are_fractions(app: &TestApp) {
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = now - 60 * MIN;
    let mut events = Vec::new();
    for (i, user) in ["a", "b", "c", "d"].iter().enumerate() {
        let at = t0 + i as i64 * MIN;
        events.push(ev(user, "signup", at, None, json!({})));
        if *user != "d" {
            events.push(ev(user, "search", at + 10_000, None, json!({})));
        }
        if *user == "a" {
            events.push(ev(user, "purchase", at + 20_000, None, json!({})));
        }
    }
    post(app, "/api/ingest/events", &token, &json!(events)).await;

    let body = json!({"funnel_steps": ["signup", "search", "purchase"], "days": 1});
    let funnel = post(app, "/api/analytics/funnel", ADMIN_TOKEN, &body).await;
    let step = |i: usize, field: &str| funnel["analysis"][i][field].clone();
    assert_eq!(step(0, "users"), 4, "{funnel}");
    assert_eq!(step(0, "conversion_rate"), 1.0);
    assert_eq!(step(0, "dropoff_rate"), 0.0);
    assert_eq!(step(1, "users"), 3);
    assert_eq!(step(1, "conversion_rate"), 0.75, "the seed's example");
    assert_eq!(step(1, "dropoff_rate"), 0.25);
    assert_eq!(step(2, "conversion_rate"), 0.3333);
    assert_eq!(step(2, "dropoff_rate"), 0.6667);
    assert_eq!(funnel["overall_conversion"], 0.25);
    assert_eq!(funnel["time_window_days"], 1.0);

    let retention = post(
        app,
        "/api/analytics/retention",
        ADMIN_TOKEN,
        &json!({"days": 7}),
    )
    .await;
    assert_eq!(retention["cohorts"][0]["retention"][0], 1.0, "{retention}");
    let milestones = get(app, "/api/analytics/milestones?days=1").await;
    let purchase = milestones["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event"] == "purchase")
        .unwrap()
        .clone();
    assert_eq!(purchase["share"], 0.25, "1 of 4 users");
    let sessions = get(app, "/api/analytics/sessions?days=1").await;
    assert_eq!(sessions["sessions"], 4);
    assert_eq!(sessions["bounce_rate"], 0.25, "d's session has one event");

    // 1 error in 128 requests: the seed's 0.0078.
    let requests: Vec<Value> = (0..128)
        .map(|i| {
            json!({"service": "shop", "method": "GET", "route": "/items",
                   "status": if i == 0 { 503 } else { 200 }, "duration_ms": 10})
        })
        .collect();
    post(app, "/api/ingest/requests", &token, &json!(requests)).await;
    let perf = get(app, "/api/monitoring/performance?service=shop").await;
    let items = &perf["GET:/items"];
    assert_eq!(items["request_count"], 128, "{perf}");
    assert!(close(&items["error_rate"], 1.0 / 128.0), "{items}");
    assert!((items["error_rate"].as_f64().unwrap() - 0.0078).abs() < 1e-4);
}

#[tokio::test]
async fn rates_are_fractions_on_sqlite() {
    rates_are_fractions(&spawn().await).await;
}

#[tokio::test]
async fn rates_are_fractions_on_postgres() {
    rates_are_fractions(&on_postgres().await).await;
}

/// Active users, a session, errors, a user and flag reads carry the seed's fields.
async fn seed_fields(app: &TestApp) {
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    let events = vec![
        // u1: one explicit session now, one implicit session yesterday.
        ev("u1", "page_view", now - 10 * MIN, Some("s1"), json!({})),
        ev("u1", "search", now - 9 * MIN, Some("s1"), json!({})),
        ev("u1", "search", now - 8 * MIN, Some("s1"), json!({})),
        ev("u1", "page_view", now - day, None, json!({})),
        // u2: active now in its own session, and hits two errors.
        ev("u2", "page_view", now - 2 * MIN, Some("s2"), json!({})),
        ev(
            "u2",
            "$exception",
            now - MIN,
            Some("s2"),
            json!({"$exception_type": "TypeError", "$exception_message": "x is undefined"}),
        ),
        ev(
            "u2",
            "checkout_error",
            now - MIN / 2,
            Some("s2"),
            json!({"error_type": "Timeout", "message": "gateway"}),
        ),
        // u3: long ago; outside the windows asked.
        ev("u3", "page_view", now - 3 * day, None, json!({})),
    ];
    post(app, "/api/ingest/events", &token, &json!(events)).await;

    let active = settled(app, "/api/analytics/active-users?minutes=15", |a| {
        a["active_users"] == 2
    })
    .await;
    assert_eq!(active["time_window_minutes"], 15);
    assert_eq!(active["minutes"], 15);
    assert_eq!(active["active_sessions"], 2, "s1 and s2: {active}");
    let at = chrono::DateTime::parse_from_rfc3339(active["timestamp"].as_str().unwrap()).unwrap();
    assert!((at.timestamp_millis() - now).abs() < 60_000, "{at}");

    let session = get(app, "/api/analytics/session/s1").await;
    assert_eq!(session["found"], true);
    assert_eq!(session["session_id"], "s1");
    assert_eq!(session["user_id"], "u1");
    assert_eq!(session["event_types"], json!({"page_view": 1, "search": 2}));
    assert_eq!(session["event_count"], 3);
    let start = chrono::DateTime::parse_from_rfc3339(session["start_time"].as_str().unwrap());
    let last = chrono::DateTime::parse_from_rfc3339(session["last_activity"].as_str().unwrap());
    assert_eq!(start.unwrap().timestamp_millis(), now - 10 * MIN);
    assert_eq!(last.unwrap().timestamp_millis(), now - 8 * MIN);
    assert_eq!(
        get(app, "/api/analytics/session/unknown").await,
        json!({"found": false}),
        "an unknown session is 200 with found: false, as the seed answers"
    );

    let errors = get(app, "/api/analytics/errors?hours=1").await;
    assert_eq!(errors["time_window_hours"], 1.0);
    assert_eq!(errors["total_errors"], 2);
    assert_eq!(errors["unique_users_affected"], 1);
    assert_eq!(errors["error_types"], json!({"Timeout": 1, "TypeError": 1}));
    let recent = errors["recent_errors"].as_array().unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["event"], "checkout_error", "newest first");
    assert_eq!(recent[1]["message"], "x is undefined");
    assert_eq!(recent[1]["user_id"], "u2");

    let user = get(app, "/api/analytics/user/u1?days=7").await;
    assert_eq!(user["total_events"], 4);
    assert_eq!(user["event_types"], json!({"page_view": 2, "search": 2}));
    assert_eq!(user["event_types"], user["event_counts"]);
    assert_eq!(user["session_count"], 2, "{user}");
    assert_eq!(user["avg_events_per_session"], 2.0);
    // Yesterday and today (UTC days), however close to midnight the test runs.
    let days: std::collections::BTreeSet<i64> =
        [now - 10 * MIN, now - 9 * MIN, now - 8 * MIN, now - day]
            .iter()
            .map(|t| t.div_euclid(day))
            .collect();
    assert_eq!(user["days_active"], days.len());

    let created = app
        .post_json(
            "/api/feature-flags",
            Some(ADMIN_TOKEN),
            &json!({"flag_id": "beta", "strategy": "user_list",
                    "user_whitelist": ["u1", "u2", "u3"], "user_blacklist": ["u9"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let flag = get(app, "/api/feature-flags/beta").await;
    assert_eq!(flag["user_whitelist_count"], 3);
    assert_eq!(flag["user_blacklist_count"], 1);
    let list = get(app, "/api/feature-flags").await;
    assert_eq!(list[0]["user_whitelist_count"], 3);
    assert_eq!(list[0]["user_blacklist_count"], 1);
    let stats = get(app, "/api/feature-flags/stats").await;
    assert_eq!(stats["flags"][0]["user_whitelist_count"], 3);
    assert_eq!(stats["flags"][0]["user_blacklist_count"], 1);
}

#[tokio::test]
async fn seed_fields_on_sqlite() {
    seed_fields(&spawn().await).await;
}

#[tokio::test]
async fn seed_fields_on_postgres() {
    seed_fields(&on_postgres().await).await;
}

/// `GET /api/monitoring/dashboard`: summary, top endpoints, operations with cache hit and
/// fallback rates, active alerts and active users in one call, read scope.
async fn monitoring_dashboard(app: &TestApp) {
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let mut requests = Vec::new();
    for i in 0..40 {
        requests.push(
            json!({"service": "shop", "method": "GET", "route": "/items",
                             "status": if i < 4 { 500 } else { 200 }, "duration_ms": 20}),
        );
    }
    for _ in 0..10 {
        requests.push(
            json!({"service": "shop", "method": "POST", "route": "/checkout",
                             "status": 201, "duration_ms": 300}),
        );
    }
    post(app, "/api/ingest/requests", &token, &json!(requests)).await;
    // 8 runs: 4 report the cache (3 hits); layers primary ×6, fallback ×2.
    let ops: Vec<Value> = (0..8)
        .map(|i| {
            let mut r = json!({"operation": "outfit_generation", "status": "success",
                               "duration_ms": 100, "user_id": format!("u{i}"),
                               "layer": if i < 6 { "primary" } else { "fallback" }});
            if i < 4 {
                r["cache_hit"] = json!(i != 0);
            }
            r
        })
        .collect();
    post(app, "/api/ingest/operations", &token, &json!(ops)).await;
    let events = vec![
        ev("a", "page_view", now - 2 * MIN, None, json!({})),
        ev("b", "page_view", now - 30 * MIN, None, json!({})),
        ev("c", "page_view", now - 3 * 60 * MIN, None, json!({})),
        ev("d", "page_view", now - 30 * 60 * MIN, None, json!({})),
    ];
    post(app, "/api/ingest/events", &token, &json!(events)).await;
    let rule = app
        .post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "Any error", "metric": "error_rate", "op": "gt", "threshold": 0.01,
                    "for_seconds": 0, "severity": "critical"}),
        )
        .await;
    assert_eq!(rule.status(), 201, "{}", rule.text().await.unwrap());
    app.state.alerts.evaluate(chrono::Utc::now()).await.unwrap();

    let d = settled(app, "/api/monitoring/dashboard?window=1h", |d| {
        d["active_users"]["24h"] == 3
    })
    .await;
    assert_eq!(
        d["active_users"],
        json!({"5m": 1, "1h": 2, "24h": 3}),
        "{d}"
    );
    let summary = &d["summary"];
    assert!(
        summary["requests"]["total"].as_u64().unwrap() >= 50,
        "{summary}"
    );
    assert!(summary["uptime_seconds"].is_u64());
    assert!(summary["system"]["cpu"]["percent"].is_number());
    let top = d["top_endpoints"].as_array().unwrap();
    let items = top.iter().find(|e| e["endpoint"] == "/items").unwrap();
    assert_eq!(items["request_count"], 40);
    assert!(close(&items["error_rate"], 0.1), "a fraction: {items}");
    let op = &d["operations"][0];
    assert_eq!(op["operation"], "outfit_generation");
    assert_eq!(op["count"], 8);
    assert!(close(&op["cache_hit_rate"], 0.75), "{op}");
    assert!(close(&op["fallback_rate"], 0.25), "{op}");
    assert!(close(&d["operations_summary"]["cache_hit_rate"], 0.75));
    let alerts = d["active_alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["rule_name"] == "Any error"),
        "{alerts:?}"
    );
    assert!(d["from"].is_string() && d["to"].is_string());
    assert!(
        top.iter().all(|e| e["service"] != "liftoff"),
        "Liftoff's own traffic is not an app's: {top:?}"
    );
    let other = get(app, "/api/monitoring/dashboard?window=1h&service=nosuch").await;
    assert_eq!(other["top_endpoints"], json!([]), "{other}");
    assert_eq!(other["summary"]["requests"]["total"], 0, "{other}");

    let (_, read) = app.key("read").await;
    let res = app.get("/api/monitoring/dashboard", Some(&read)).await;
    assert_eq!(res.status(), 200);
    problem(
        app.get("/api/monitoring/dashboard", Some(&token)).await,
        403,
    )
    .await;
    problem(app.get("/api/monitoring/dashboard", None).await, 401).await;
    problem(
        app.get("/api/monitoring/dashboard?window=2y", Some(ADMIN_TOKEN))
            .await,
        400,
    )
    .await;
    let doc = get(app, "/api/openapi.json").await;
    let op = &doc["paths"]["/api/monitoring/dashboard"]["get"];
    assert_eq!(op["security"][0]["bearer"][0], "read");
    for p in op["parameters"].as_array().unwrap() {
        assert_eq!(p["in"], "query", "{p}");
        assert_ne!(p["required"], true, "{p}");
    }
    assert!(doc["components"]["schemas"]["MonitoringDashboard"].is_object());
}

#[tokio::test]
async fn monitoring_dashboard_on_sqlite() {
    monitoring_dashboard(&spawn().await).await;
}

#[tokio::test]
async fn monitoring_dashboard_on_postgres() {
    monitoring_dashboard(&on_postgres().await).await;
}

/// `/metrics` has `liftoff_active_users{window="5m|1h|24h"}`, a gauge promtool accepts.
async fn active_users_metric(app: &TestApp) {
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let events = vec![
        ev("a", "page_view", now - 2 * MIN, None, json!({})),
        ev("a", "search", now - MIN, None, json!({})),
        ev("b", "page_view", now - 40 * MIN, None, json!({})),
        ev("c", "page_view", now - 5 * 60 * MIN, None, json!({})),
        ev("d", "page_view", now - 26 * 60 * MIN, None, json!({})),
    ];
    post(app, "/api/ingest/events", &token, &json!(events)).await;
    let mut text = String::new();
    for _ in 0..60 {
        text = app.get("/metrics", None).await.text().await.unwrap();
        if text.contains("liftoff_active_users{window=\"24h\"} 3") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(text.contains("# TYPE liftoff_active_users gauge"), "{text}");
    assert!(text.contains("# HELP liftoff_active_users "));
    for line in [
        "liftoff_active_users{window=\"5m\"} 1",
        "liftoff_active_users{window=\"1h\"} 2",
        "liftoff_active_users{window=\"24h\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    crate::operations::promtool_accepts(&text);
}

#[tokio::test]
async fn active_users_metric_on_sqlite() {
    active_users_metric(&spawn().await).await;
}

#[tokio::test]
async fn active_users_metric_on_postgres() {
    active_users_metric(&on_postgres().await).await;
}
