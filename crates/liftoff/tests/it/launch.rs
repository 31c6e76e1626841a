//! Launch controls over HTTP: the soft-launch cap with its waitlist (SQLite, a restart, and two
//! replicas sharing PostgreSQL), maintenance status with its ETag, phases, feedback.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, postgres_state_url, problem, spawn, spawn_at};

async fn ask(app: &TestApp, key: &str, user: &str) -> Value {
    let res = app
        .get(&format!("/api/launch/user-limit?user_id={user}"), Some(key))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn patch_limit(app: &TestApp, limit: u32) -> Value {
    let res = app
        .http
        .patch(app.at("/api/launch"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_limit": limit, "reason": "more capacity"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// 150 distinct users from 16 concurrent clients, spread over `apps` (replicas of one store).
async fn crowd(apps: &[&TestApp], key: &str) -> HashMap<String, Value> {
    let mut tasks = Vec::new();
    for client in 0..16usize {
        let app = apps[client % apps.len()];
        let (http, url, key) = (app.http.clone(), app.url.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for user in (client..150).step_by(16) {
                let v: Value = http
                    .get(format!("{url}/api/launch/user-limit?user_id=user-{user}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                out.push((format!("user-{user}"), v));
            }
            out
        }));
    }
    let mut answers = HashMap::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    answers
}

/// Checks the crowd's outcome against one replica: exactly 100 admitted, the same answers
/// again, waitlist 1–50 in order of first ask; then raising the limit to 120 admits the first
/// 20 waiting.
async fn exactly_the_limit(app: &TestApp, key: &str, answers: &HashMap<String, Value>) {
    assert_eq!(answers.len(), 150);
    let admitted = answers.values().filter(|v| v["allowed"] == true).count();
    assert_eq!(admitted, 100);
    let mut positions = Vec::new();
    for (user, first) in answers {
        let again = ask(app, key, user).await;
        assert_eq!(again["allowed"], first["allowed"], "{user}");
        assert_eq!(again["admitted_count"], 100);
        assert_eq!(again["user_limit"], 100);
        if again["allowed"] == true {
            assert!(again["waitlist_position"].is_null());
        } else {
            positions.push(again["waitlist_position"].as_u64().unwrap());
        }
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=50).collect::<Vec<u64>>());

    let waiting: Vec<Value> = app
        .get(
            "/api/launch/users?waiting=true&limit=1000",
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting.len(), 50);
    let state = patch_limit(app, 120).await;
    assert_eq!(state["user_limit"], 120);
    assert_eq!(state["admitted_count"], 120);
    assert_eq!(state["waitlist_count"], 30);
    let expected: Vec<&Value> = waiting[..20].iter().map(|u| &u["user_id"]).collect();
    let got: Vec<&Value> = state["admitted"].as_array().unwrap().iter().collect();
    assert_eq!(got, expected, "the waitlist's first 20, in order");
    let next = ask(app, key, waiting[20]["user_id"].as_str().unwrap()).await;
    assert_eq!(next["waitlist_position"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_the_limit_is_admitted_and_a_restart_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_at(dir.path(), |o| o).await;
    let (_, key) = app.key("ingest").await;
    patch_limit(&app, 100).await;
    let answers = crowd(&[&app], &key).await;
    app.shutdown().await;
    let app = spawn_at(dir.path(), |o| o).await;
    exactly_the_limit(&app, &key, &answers).await;
}

/// Two servers sharing one fresh PostgreSQL schema (the directories live as long as they do).
async fn two_replicas_on_postgres() -> (TestApp, TestApp, [tempfile::TempDir; 2]) {
    let url = postgres_state_url().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let with_pg = |o: liftoff::config::Overrides| liftoff::config::Overrides {
        state_url: Some(url.clone()),
        ..o
    };
    let one = spawn_at(dirs[0].path(), with_pg).await;
    let two = spawn_at(dirs[1].path(), with_pg).await;
    (one, two, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_admit_exactly_the_limit() {
    let (one, two, _dirs) = two_replicas_on_postgres().await;
    let (_, key) = one.key("ingest").await;
    patch_limit(&one, 100).await;
    let answers = crowd(&[&one, &two], &key).await;
    exactly_the_limit(&two, &key, &answers).await;
}

#[tokio::test]
async fn scopes_and_bad_input_are_refused() {
    let app = spawn().await;
    let (_, read) = app.key("read").await;
    let (_, ingest) = app.key("ingest").await;
    problem(app.get("/api/launch/user-limit?user_id=a", None).await, 401).await;
    problem(
        app.get("/api/launch/user-limit?user_id=a", Some(&read))
            .await,
        403,
    )
    .await;
    problem(app.get("/api/launch/user-limit", Some(&ingest)).await, 400).await;
    problem(
        app.get("/api/launch/user-limit?user_id=%20", Some(&ingest))
            .await,
        422,
    )
    .await;
    problem(
        app.post_json("/api/launch/admit", Some(&ingest), &json!({"count": 1}))
            .await,
        403,
    )
    .await;
    problem(
        app.post_json("/api/launch/admit", Some(ADMIN_TOKEN), &json!({"count": 0}))
            .await,
        422,
    )
    .await;
    let res = app
        .http
        .put(app.at("/api/launch/maintenance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"enabled": true, "message": "x", "retry_after_seconds": 0}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let res = app
        .http
        .put(app.at("/api/launch/phases"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!([{"name": "a"}, {"name": "a"}]))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let res = app
        .http
        .delete(app.at("/api/launch/users/nobody"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
}

#[tokio::test]
async fn maintenance_status_carries_an_etag_and_allow_users() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let res = app.get("/api/launch/status", Some(&ingest)).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["maintenance"], false);
    assert_eq!(v["phase"], "internal");
    let res = app
        .http
        .get(app.at("/api/launch/status"))
        .bearer_auth(&ingest)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    let res = app
        .http
        .put(app.at("/api/launch/maintenance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"enabled": true, "message": "Back at 14:00", "retry_after_seconds": 600,
            "allow_users": ["tester"], "reason": "database upgrade"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .get(app.at("/api/launch/status"))
        .bearer_auth(&ingest)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a change changes the ETag");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["maintenance"], true);
    assert_eq!(v["message"], "Back at 14:00");
    assert_eq!(v["retry_after_seconds"], 600);
    let audit: Value = app
        .get("/api/audit?action=launch.maintenance", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("database upgrade"), "{audit}");
}

#[tokio::test]
async fn feedback_is_stored_summarized_ranked_and_resolved() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let mut ids = Vec::new();
    for (user, rating, category, request) in [
        ("u1", 5, "feature", Some("Dark mode")),
        ("u2", 4, "feature", Some("dark  MODE")),
        ("u2", 2, "bug", None),
        ("u3", 3, "feature", Some("CSV export")),
    ] {
        let res = app
            .post_json(
                "/api/launch/feedback",
                Some(&ingest),
                &json!({"user_id": user, "rating": rating, "category": category,
                    "message": "text", "request": request, "page": "/home"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        ids.push(v["id"].as_i64().unwrap());
    }
    for bad in [
        json!({"user_id": "u", "rating": 0, "category": "bug", "message": "m"}),
        json!({"user_id": "u", "rating": 6, "category": "bug", "message": "m"}),
        json!({"user_id": "u", "rating": 3, "category": "Bug Report", "message": "m"}),
        json!({"user_id": "u", "rating": 3, "category": 7, "message": "m"}),
        json!({"user_id": "u", "rating": 3, "category": "bug", "message": "x".repeat(100 * 1024)}),
    ] {
        let res = app
            .post_json("/api/launch/feedback", Some(&ingest), &bad)
            .await;
        assert!(
            [413, 422].contains(&res.status().as_u16()),
            "{}",
            res.status()
        );
    }
    let summary: Value = app
        .get("/api/launch/feedback/summary", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["count"], 4,
        "nothing of the refused items was stored"
    );
    assert_eq!(summary["average_rating"], 3.5);
    assert_eq!(summary["rating_distribution"]["5"], 1);
    assert_eq!(summary["by_category"]["feature"]["count"], 3);
    assert_eq!(summary["by_category"]["feature"]["average_rating"], 4.0);
    let backlog: Value = app
        .get("/api/launch/feedback/backlog", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backlog[0]["users"], 2);
    assert_eq!(backlog[0]["request"], "dark  MODE");
    assert_eq!(backlog[1]["request"], "CSV export");

    let res = app
        .post_json(
            &format!("/api/launch/feedback/{}/resolve", ids[2]),
            Some(ADMIN_TOKEN),
            &json!({"resolution": "Fixed in 1.2"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let open: Value = app
        .get("/api/launch/feedback?status=open", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open.as_array().unwrap().len(), 3);
    let page: Value = app
        .get(
            &format!("/api/launch/feedback?limit=2&cursor={}", ids[3]),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[2], ids[1]]);
    problem(
        app.post_json(
            "/api/launch/feedback/999999/resolve",
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
}

/// `n` requests of the `shop` service at `at` (RFC 3339), every tenth a 503 when `failing`.
fn requests(n: usize, at: &str, failing: bool) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let status = if failing && i % 10 == 0 { 503 } else { 200 };
                json!({"service": "shop", "method": "GET", "route": "/items", "status": status,
                    "duration_ms": 40.0, "ts": at})
            })
            .collect(),
    )
}

fn check<'a>(readiness: &'a Value, name: &str) -> &'a Value {
    readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {readiness}"))
}

#[tokio::test]
async fn readiness_follows_the_last_hour_of_errors_and_phases_need_their_criteria() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let now = chrono::Utc::now();
    let old = (now - chrono::Duration::minutes(70)).to_rfc3339();
    let recent = (now - chrono::Duration::minutes(1)).to_rfc3339();
    // 10 % 5xx over an hour ago have aged out of the window: the check passes.
    for body in [requests(200, &old, true), requests(200, &recent, false)] {
        let res = app
            .post_json("/api/ingest/requests", Some(&ingest), &body)
            .await;
        assert_eq!(res.status(), 200);
    }
    let r: Value = app
        .get("/api/launch/readiness", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check(&r, "error_rate")["status"], "pass", "{r}");
    assert_eq!(check(&r, "error_rate")["value"], 0.0);
    assert_eq!(check(&r, "p95_latency")["status"], "pass");
    assert_eq!(check(&r, "backup")["status"], "fail", "no backup yet");
    assert_eq!(r["ready"], false);
    assert_eq!(r["checks"].as_array().unwrap().len(), 9);

    // 10 % 5xx now (with the 200 good ones: 20 of 400, 5 %): critical.
    let res = app
        .post_json(
            "/api/ingest/requests",
            Some(&ingest),
            &requests(200, &recent, true),
        )
        .await;
    assert_eq!(res.status(), 200);
    let r: Value = app
        .get("/api/launch/readiness", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let e = check(&r, "error_rate");
    assert_eq!(e["status"], "fail", "{r}");
    assert!((e["value"].as_f64().unwrap() - 0.05).abs() < 1e-9, "{e}");

    let m: Value = app
        .get("/api/launch/metrics", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["requests_last_hour"], 400);
    assert!((m["success_rate"].as_f64().unwrap() - 0.95).abs() < 1e-9);
    assert_eq!(m["status"]["error_rate"], "critical");
    assert_eq!(m["status"]["success_rate"], "ok", "95 % is not below 95 %");
    assert_eq!(m["phase"], "internal");
    assert_eq!(m["users"]["user_limit"], 100);

    // The first phase needs readiness: refused with the failing criteria, then forced.
    let p = problem(
        app.post_json("/api/launch/phases/advance", Some(ADMIN_TOKEN), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "phase_criteria_not_met");
    assert_eq!(p["criteria"][0]["name"], "readiness");
    assert_eq!(p["criteria"][0]["pass"], false);
    problem(
        app.post_json(
            "/api/launch/phases/advance",
            Some(ADMIN_TOKEN),
            &json!({"force": true}),
        )
        .await,
        422,
    )
    .await;
    let res = app
        .post_json(
            "/api/launch/phases/advance",
            Some(ADMIN_TOKEN),
            &json!({"force": true, "reason": "internal testing done"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["current_name"], "beta");
    let status: Value = app
        .get("/api/launch/status", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["phase"], "beta");
    let audit: Value = app
        .get(
            "/api/audit?action=launch.phase.force_advance",
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("internal testing done"),
        "{audit}"
    );
}

#[tokio::test]
async fn presets_set_the_limit_create_features_and_replace_their_rules() {
    let app = spawn().await;
    let res = app
        .post_json(
            "/api/feature-flags",
            Some(ADMIN_TOKEN),
            &json!({"flag_id": "search", "enabled": false}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body = json!({"environment": "production", "user_limit": 250,
        "features": ["search", "new-checkout"], "beta_features": ["ai-summary"]});
    let res = app
        .post_json("/api/launch/initialize", Some(ADMIN_TOKEN), &body)
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["environment"], "production");
    assert_eq!(v["user_limit"], 250);
    assert_eq!(v["flags_created"], json!(["ai-summary", "new-checkout"]));
    assert_eq!(v["flags_enabled"], json!(["search"]));
    assert_eq!(v["rules"].as_array().unwrap().len(), 9);
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["enabled"] == true)
    );

    // A beta feature is on only for admitted users; asking about it takes no seat.
    let (_, ingest) = app.key("ingest").await;
    let feature = |path: &'static str| {
        let (app, ingest) = (&app, ingest.clone());
        async move {
            let res = app.get(path, Some(&ingest)).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let f = feature("/api/launch/feature/ai-summary?user_id=ann").await;
    assert_eq!(
        (f["enabled"].clone(), f["beta"].clone()),
        (json!(false), json!(true))
    );
    let f = feature("/api/launch/feature/ai-summary?user_id=ann").await;
    assert_eq!(f["enabled"], false, "asking took no seat: {f}");
    assert_eq!(ask(&app, &ingest, "ann").await["allowed"], true);
    let f = feature("/api/launch/feature/ai-summary?user_id=ann").await;
    assert_eq!(f["enabled"], true, "{f}");
    let f = feature("/api/launch/feature/new-checkout?user_id=zed").await;
    assert_eq!(
        (f["enabled"].clone(), f["beta"].clone()),
        (json!(true), json!(false))
    );
    let f = feature("/api/launch/feature/nope").await;
    assert_eq!(f["enabled"], false);

    // Again, as staging: no duplicate rules, resource rules switched off, limit 50.
    let res = app
        .post_json(
            "/api/launch/initialize",
            Some(ADMIN_TOKEN),
            &json!({"environment": "staging", "features": ["search"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["user_limit"], 50);
    let rules: Value = app
        .get("/api/alerts/rules", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let launch_rules: Vec<&Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("Launch: "))
        .collect();
    assert_eq!(launch_rules.len(), 9, "replaced by name, not duplicated");
    let cpu = launch_rules
        .iter()
        .find(|r| r["name"] == "Launch: CPU critical")
        .unwrap();
    assert_eq!(cpu["enabled"], false);
    assert_eq!(cpu["threshold"], 90.0);
    let audit: Value = app
        .get("/api/audit?action=flag.create", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("launch preset `production`"),
        "{audit}"
    );
    problem(
        app.post_json(
            "/api/launch/initialize",
            Some(ADMIN_TOKEN),
            &json!({"environment": "production", "features": ["liftoff.admitted"]}),
        )
        .await,
        422,
    )
    .await;
    problem(
        app.post_json(
            "/api/launch/initialize",
            Some(ADMIN_TOKEN),
            &json!({"environment": "moon"}),
        )
        .await,
        422,
    )
    .await;
}

/// 28 days of traffic growing 10 % a week: the fitted growth and the 90-day projection match
/// the true curve, and an instance at 50 % CPU is told when it crosses 70 %.
#[tokio::test]
async fn scaling_recovers_ten_percent_a_week_from_28_days_of_traffic() {
    let app = crate::harness::spawn_with(|o| liftoff::config::Overrides {
        instance_monthly_cost: Some(40.0),
        ..o
    })
    .await;
    let (_, ingest) = app.key("ingest").await;
    let now = chrono::Utc::now() - chrono::Duration::minutes(5);
    let daily = 1.1f64.ln() / 7.0;
    let mut truth_last = 0.0;
    for days_ago in (0..28).rev() {
        let age = 27 - days_ago;
        let n = (360.0 * (daily * f64::from(age)).exp()).round() as usize;
        truth_last = 360.0 * (daily * f64::from(age)).exp() / 3600.0;
        let at = (now - chrono::Duration::days(i64::from(days_ago))).to_rfc3339();
        let body: Vec<Value> = (0..n)
            .map(|_| {
                json!({"service": "shop", "method": "GET", "route": "/", "status": 200,
                "duration_ms": 20.0, "ts": at})
            })
            .collect();
        let res = app
            .post_json("/api/ingest/requests", Some(&ingest), &Value::Array(body))
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = app
        .post_json(
            "/api/ingest/system",
            Some(&ingest),
            &json!({"service": "shop", "instance": "web-1",
                "cpu": {"percent": 50.0, "count": 2.0},
                "memory": {"percent": 20.0, "used_mb": 400.0, "total_mb": 2000.0},
                "disk": {"percent": 30.0, "used_gb": 3.0, "total_gb": 10.0},
                "process_rss_mb": 50.0}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let s: Value = app
        .get("/api/launch/scaling", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let growth = s["fit"]["weekly_growth"].as_f64().unwrap();
    assert!((growth - 0.10).abs() < 0.01, "weekly growth {growth}: {s}");
    let p90 = s["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["days_ahead"] == 90)
        .unwrap()["peak_rps"]
        .as_f64()
        .unwrap();
    let truth = truth_last * (daily * 90.0).exp();
    assert!(
        (p90 / truth - 1.0).abs() < 0.10,
        "90 days: {p90} vs {truth}"
    );
    let capacity = s["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "capacity")
        .unwrap_or_else(|| panic!("no capacity item: {s}"));
    assert_eq!(capacity["evidence"]["resource"], "cpu");
    assert!(s["recommended_instances"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(
        s["monthly_cost"].as_f64().unwrap(),
        40.0 * s["recommended_instances"].as_f64().unwrap()
    );
}

#[tokio::test]
async fn the_feedback_widget_is_served_and_may_post_from_any_origin() {
    let app = spawn().await;
    let res = app.get("/widget/feedback.js", None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        res.headers()["cross-origin-resource-policy"],
        "cross-origin"
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let js = res.text().await.unwrap();
    assert!(js.contains("/api/launch/feedback") && js.contains("window.LiftoffFeedback"));
    let again = app
        .http
        .get(app.at("/widget/feedback.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // A browser's preflight from the customer's page, then the post itself.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("/api/launch/feedback"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    assert!(!h.contains_key("access-control-allow-credentials"));

    let (_, ingest) = app.key("ingest").await;
    let body = json!({"user_id": "u-1", "rating": 4, "category": "ux", "message": "nice"});
    let posted = app
        .http
        .post(app.at("/api/launch/feedback"))
        .header("origin", "https://shop.example")
        .bearer_auth(&ingest)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    assert_eq!(posted.headers()["access-control-allow-origin"], "*");
    // Refusals are readable too, so the widget can show why.
    let refused = app
        .http
        .post(app.at("/api/launch/feedback"))
        .header("origin", "https://shop.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");

    // The rest of the API stays same-origin.
    let other = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("/api/launch"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let state = app.get("/api/launch", Some(ADMIN_TOKEN)).await;
    assert!(!state.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn each_admission_is_announced_on_the_admission_channel() {
    use crate::alerts::{Receiver, fast, wait_for};
    let (receiver, url) = Receiver::start(true).await;
    let app = crate::harness::spawn_with(fast).await;
    let channel: Value = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "crm", "config": {"kind": "webhook", "url": url}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let patch = |body: Value| {
        app.http
            .patch(app.at("/api/launch"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    // Nothing to change, or a channel that does not exist: refused, nothing saved.
    problem(patch(json!({})).await.unwrap(), 422).await;
    let missing = problem(
        patch(json!({"admission_channel": 999_999})).await.unwrap(),
        422,
    )
    .await;
    assert!(
        missing["detail"].as_str().unwrap().contains("999999"),
        "{missing}"
    );
    let set = patch(json!({"admission_channel": channel["id"], "user_limit": 2}))
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["admission_channel"], channel["id"]);
    assert_eq!(set["user_limit"], 2);

    let (_, ingest) = app.key("ingest").await;
    for user in ["ann", "bob", "cyd"] {
        ask(&app, &ingest, user).await;
    }
    // Absent `user_limit` leaves the limit alone; a higher one admits cyd from the waitlist.
    let unchanged: Value =
        patch(json!({"reason": "no-op on the limit", "admission_channel": channel["id"]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(unchanged["user_limit"], 2);
    assert_eq!(patch_limit(&app, 3).await["admitted"], json!(["cyd"]));

    wait_for("three admission notices", 15, || async {
        receiver.got().len() >= 3
    })
    .await;
    let got = receiver.got();
    let by_user: HashMap<&str, &Value> = got
        .iter()
        .map(|n| (n["user_id"].as_str().unwrap(), n))
        .collect();
    assert_eq!(by_user.len(), 3, "one notice per admission: {got:?}");
    assert_eq!(by_user["ann"]["via"], "ask");
    assert_eq!(by_user["bob"]["via"], "ask");
    assert_eq!(by_user["cyd"]["via"], "waitlist");
    assert!(got.iter().all(|n| n["event"] == "launch.admitted"));
    assert_eq!(by_user["cyd"]["admitted_count"], 3);
    assert_eq!(by_user["cyd"]["user_limit"], 3);

    // With the channel cleared, admissions are silent.
    let cleared: Value = patch(json!({"admission_channel": null}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(cleared["admission_channel"].is_null());
    patch_limit(&app, 4).await;
    ask(&app, &ingest, "dan").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(receiver.got().len(), 3);
}

#[tokio::test]
async fn a_gating_window_is_maintenance_while_it_runs() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    // The allow-list is kept with the manual switch off; it applies to windows too.
    let res = app
        .http
        .put(app.at("/api/launch/maintenance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"enabled": false, "allow_users": ["qa"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = app.get("/api/launch/status", Some(&ingest)).await;
    let etag_before = before.headers()["etag"].clone();
    let before: Value = before.json().await.unwrap();
    assert_eq!(before["maintenance"], false);

    let now = chrono::Utc::now();
    let bad = app
        .post_json(
            "/api/launch/maintenance/windows",
            Some(ADMIN_TOKEN),
            &json!({"starts_at": now, "ends_at": now - chrono::Duration::minutes(1)}),
        )
        .await;
    problem(bad, 422).await;
    let created = app
        .post_json(
            "/api/launch/maintenance/windows",
            Some(ADMIN_TOKEN),
            &json!({"starts_at": now - chrono::Duration::minutes(1),
                    "ends_at": now + chrono::Duration::minutes(10),
                    "message": "Database upgrade until 10 past"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let window: Value = created.json().await.unwrap();
    assert_eq!(window["gate"], true);
    // One concept: the alerts see the same window.
    let alerts_view: Value = app
        .get("/api/alerts/maintenance", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alerts_view[0]["id"], window["id"]);

    let during = app.get("/api/launch/status", Some(&ingest)).await;
    assert_ne!(
        during.headers()["etag"],
        etag_before,
        "a window changes the ETag"
    );
    let during: Value = during.json().await.unwrap();
    assert_eq!(during["maintenance"], true);
    assert_eq!(during["message"], "Database upgrade until 10 past");
    assert!(during["window_ends_at"].is_string(), "{during}");
    let left = during["retry_after_seconds"].as_u64().unwrap();
    assert!((540..=600).contains(&left), "{left}");
    let flag = async |user: &str| -> Value {
        app.post_json(
            "/ofrep/v1/evaluate/flags/liftoff.maintenance",
            Some(&ingest),
            &json!({"context": {"targetingKey": user}}),
        )
        .await
        .json()
        .await
        .unwrap()
    };
    let held = flag("ann").await;
    assert_eq!(held["value"], true);
    let qa = flag("qa").await;
    assert_eq!(qa["value"], false, "allow-listed users pass a window too");

    let deleted = app
        .http
        .delete(app.at(&format!("/api/alerts/maintenance/{}", window["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let after: Value = app
        .get("/api/launch/status", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["maintenance"], false);
    assert!(after["window_ends_at"].is_null());
}

#[tokio::test]
async fn a_window_with_notices_is_announced_ahead_at_start_and_at_end_once_each() {
    use crate::alerts::{Receiver, fast, wait_for};
    let (receiver, url) = Receiver::start(true).await;
    let app = crate::harness::spawn_with(fast).await;
    let created = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "status page", "config": {"kind": "webhook", "url": url}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    // A lead time over a week is refused, nothing stored.
    let now = chrono::Utc::now();
    let too_early = app
        .post_json(
            "/api/launch/maintenance/windows",
            Some(ADMIN_TOKEN),
            &json!({"starts_at": now + chrono::Duration::minutes(5),
                    "ends_at": now + chrono::Duration::minutes(10),
                    "notify_before_minutes": 20_000}),
        )
        .await;
    problem(too_early, 422).await;
    // Starts in 3 s, runs 3 s; 30 minutes' notice means "upcoming" is due at once.
    let starts = now + chrono::Duration::seconds(3);
    let ends = starts + chrono::Duration::seconds(3);
    let created = app
        .post_json(
            "/api/launch/maintenance/windows",
            Some(ADMIN_TOKEN),
            &json!({"starts_at": starts, "ends_at": ends, "message": "Back soon",
                    "notify_before_minutes": 30}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let window: Value = created.json().await.unwrap();
    assert_eq!(window["notify_before_minutes"], 30);
    let stages = || {
        receiver
            .got()
            .iter()
            .filter(|n| n["event"] == "launch.maintenance")
            .map(|n| n["stage"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    wait_for("the three notices", 20, || async { stages().len() >= 3 }).await;
    // Many evaluations ran meanwhile (every 200 ms): each stage still went out once.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!(stages(), ["upcoming", "started", "ended"]);
    let got = receiver.got();
    let ended = got.iter().find(|n| n["stage"] == "ended").unwrap();
    assert_eq!(ended["window_id"], window["id"]);
    assert_eq!(ended["message"], "Back soon");
    assert_eq!(ended["gate"], true);
    assert!(
        ended["title"].as_str().unwrap().contains("has ended"),
        "{ended}"
    );
}

#[tokio::test]
async fn the_launch_report_tells_the_launch_so_far_in_json_and_markdown() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    patch_limit(&app, 2).await;
    for user in ["ann", "bob", "cyd"] {
        ask(&app, &ingest, user).await;
    }
    let recent = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339();
    let res = app
        .post_json(
            "/api/ingest/requests",
            Some(&ingest),
            &requests(200, &recent, true),
        )
        .await;
    assert_eq!(res.status(), 200);
    for (user, rating, request) in [
        ("ann", 5, "Dark mode"),
        ("bob", 3, "dark mode"),
        ("cyd", 4, "CSV export"),
    ] {
        let res = app
            .post_json(
                "/api/launch/feedback",
                Some(&ingest),
                &json!({"user_id": user, "rating": rating, "category": "feature",
                    "message": "more please", "request": request}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let res = app
        .post_json(
            "/api/incidents",
            Some(ADMIN_TOKEN),
            &json!({"title": "Checkout | failing", "severity": "major"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post_json(
            "/api/launch/phases/advance",
            Some(ADMIN_TOKEN),
            &json!({"force": true, "reason": "dogfooding done"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Scopes and bad input.
    problem(app.get("/api/launch/report", Some(&ingest)).await, 403).await;
    problem(
        app.get("/api/launch/report?format=pdf", Some(ADMIN_TOKEN))
            .await,
        400,
    )
    .await;

    let r: Value = app
        .get("/api/launch/report", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["phase"], "beta");
    let history = r["phase_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{r}");
    assert_eq!(history[0]["from"], "internal");
    assert_eq!(history[0]["to"], "beta");
    assert_eq!(history[0]["forced"], true);
    assert_eq!(history[0]["reason"], "dogfooding done");
    // Entering beta raised the limit to 100: cyd was seated from the waitlist.
    assert_eq!(r["users"]["admitted"], 3);
    assert_eq!(r["users"]["waitlist"], 0);
    let today: u64 = r["admissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["asked"].as_u64().unwrap())
        .sum();
    assert_eq!(today, 3);
    let target = |name: &str| {
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["metric"] == name)
            .unwrap_or_else(|| panic!("no target {name}: {r}"))
            .clone()
    };
    // 20 of 200 failed: 10 % against "below 1 %".
    assert!((target("error_rate")["value"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(target("error_rate")["met"], false);
    assert_eq!(target("avg_response_time_ms")["met"], true);
    assert_eq!(target("uptime")["met"], Value::Null, "no monitors, no data");
    assert_eq!(target("average_rating")["value"], 4.0);
    assert_eq!(
        target("average_rating")["met"],
        false,
        "4.0 is not above 4.0"
    );
    assert_eq!(r["traffic"]["requests"], 200);
    // The same figures the feedback API gives.
    let summary: Value = app
        .get("/api/launch/feedback/summary", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["feedback"], summary);
    assert_eq!(r["top_requests"][0]["users"], 2);
    assert_eq!(r["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(r["readiness"]["checks"].as_array().unwrap().len(), 9);

    let md = app
        .get("/api/launch/report?format=md", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(md.status(), 200);
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = md.text().await.unwrap();
    assert!(md.starts_with("# Launch report"), "{md}");
    assert!(
        md.contains("| Error rate | 10.0 % | < 1.0 % | missed |"),
        "{md}"
    );
    assert!(md.contains("| internal | beta |"), "{md}");
    assert!(
        md.contains("Checkout \\| failing"),
        "a pipe cannot break the table: {md}"
    );
}

/// `liftoff.admitted` from an OFREP bulk answer for `user`.
async fn admitted_flag(app: &TestApp, key: &str, user: &str) -> Value {
    let res = app
        .post_json(
            "/ofrep/v1/evaluate/flags",
            Some(key),
            &json!({"context": {"targetingKey": user}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "liftoff.admitted")
        .map(|f| f["value"].clone())
        .expect("the bulk answer carries liftoff.admitted")
}

/// Asks until `user`'s `liftoff.admitted` is `want`, for at most 5 s: well under the 10 s a
/// remembered seat lasts without a notice.
async fn admitted_flag_becomes(app: &TestApp, key: &str, user: &str, want: bool, stale: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while admitted_flag(app, key, user).await != want {
        assert!(std::time::Instant::now() < deadline, "{stale}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A returning user's seat is answered from memory, and a revocation (on `revoking`) is
/// seen at once by the replica that remembered the seat (`serving`).
async fn a_revoked_seat_is_not_answered_from_memory(revoking: &TestApp, serving: &TestApp) {
    let (_, key) = serving.key("ingest").await;
    patch_limit(revoking, 1).await;
    assert_eq!(admitted_flag(serving, &key, "alice").await, true);
    assert_eq!(admitted_flag(serving, &key, "alice").await, true);
    assert_eq!(admitted_flag(serving, &key, "bob").await, false);
    let res = revoking
        .http
        .delete(revoking.at("/api/launch/users/alice"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // Alice asks again: bob waited first, so the free seat is his and she waits.
    admitted_flag_becomes(
        serving,
        &key,
        "alice",
        false,
        "the revoked seat is still answered from memory",
    )
    .await;
    assert_eq!(admitted_flag(serving, &key, "bob").await, true);
    let alice = ask(serving, &key, "alice").await;
    assert_eq!(alice["allowed"], false, "{alice}");
    assert_eq!(alice["waitlist_position"], 1, "{alice}");
    assert_eq!(admitted_flag(serving, &key, "alice").await, false);

    // Seated past the limit by an admin (on the other replica): its notice forgets the
    // remembered place (which would otherwise last ten seconds, past this wait).
    let res = revoking
        .post_json("/api/launch/admit", Some(ADMIN_TOKEN), &json!({"count": 1}))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    admitted_flag_becomes(
        serving,
        &key,
        "alice",
        true,
        "the old place is still answered from memory",
    )
    .await;
}

#[tokio::test]
async fn a_revoked_seat_is_not_answered_from_memory_on_sqlite() {
    let app = spawn().await;
    a_revoked_seat_is_not_answered_from_memory(&app, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_seat_is_not_answered_from_memory_by_another_replica() {
    let (one, two, _dirs) = two_replicas_on_postgres().await;
    a_revoked_seat_is_not_answered_from_memory(&one, &two).await;
}
