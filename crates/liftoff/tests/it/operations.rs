//! Operations (named units of work) over HTTP: ingest, the four `/stats` queries, bad input,
//! scopes, and the SDK's timers delivering to a real Liftoff.

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, postgres_state_url, problem, spawn, spawn_with};

async fn ingest(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post_json("/api/ingest/operations", Some(token), body)
        .await
}

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

fn close(got: &Value, want: f64) -> bool {
    (got.as_f64().unwrap() - want).abs() < 1e-9
}

/// 100 outfit generations (10 failures, 80 reporting the cache, layers cache/primary/fallback,
/// users u0–u9 of whom u0 always fails), 8 Stripe charges (users u0–u3, 2 failures that the
/// same users retry successfully) and 3 sign-ups (u0–u2).
fn known_set(now: i64) -> Vec<Value> {
    let mut records = Vec::new();
    for i in 0..100i64 {
        let failed = i % 10 == 0;
        let layer = match i % 5 {
            0 => "fallback",
            1 | 2 => "cache",
            _ => "primary",
        };
        let mut r = json!({
            "operation": "outfit_generation", "service": "stylist",
            "status": if failed { "failure" } else { "success" },
            "duration_ms": (i + 1) as f64, "user_id": format!("u{}", i % 10), "layer": layer,
            "ts": now - 200 + i,
        });
        if i < 80 {
            r["cache_hit"] = json!(i % 2 == 0);
        }
        if failed {
            r["error"] = json!(format!("model timed out after {i} tries"));
            r["error_type"] = json!("ModelTimeout");
            r["stack_trace"] = json!("at generate()\nat handler()");
            r["context"] = json!({"style": "casual", "i": i});
        }
        records.push(r);
    }
    for i in 0..8i64 {
        let mut r = json!({
            "operation": "external:stripe.charge", "service": "stylist",
            "status": if i < 2 { "failure" } else { "success" },
            "duration_ms": 200.0, "user_id": format!("u{}", i % 4), "ts": now - 60 + i,
        });
        if i < 2 {
            r["error_type"] = json!("CardError");
            r["error"] = json!("card declined");
        }
        records.push(r);
    }
    for i in 0..3 {
        records.push(
            json!({"operation": "signup", "service": "stylist", "status": "success",
            "duration_ms": 5.0, "user_id": format!("u{i}"), "ts": now - 30}),
        );
    }
    records
}

async fn stats_round_trip(app: &TestApp) {
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp();
    let records = known_set(now);
    // Two batches, the second merging into the minutes the first wrote; one single object.
    let (a, b) = records.split_at(50);
    for chunk in [a, &b[..b.len() - 1]] {
        let res = ingest(app, &token, &Value::Array(chunk.to_vec())).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["accepted"], chunk.len());
    }
    let res = ingest(app, &token, &records[records.len() - 1]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], 1);

    let s = get(app, "/api/monitoring/stats/summary?window=1h").await;
    assert_eq!(s["total_operations"], 111);
    assert_eq!(s["successes"], 99);
    assert_eq!(s["failures"], 12);
    assert!(close(&s["success_rate"], 99.0 / 111.0), "{s}");
    assert!(close(&s["cache_hit_rate"], 0.5), "{s}");
    assert_eq!(s["operations"], 3);
    assert_eq!(
        s["error_types"],
        json!({"ModelTimeout": 10, "CardError": 2})
    );
    let avg = (5050.0 + 1600.0 + 15.0) / 111.0;
    assert!(
        (s["avg_duration_ms"].as_f64().unwrap() - avg).abs() < avg * 0.01,
        "{s}"
    );

    let ops = get(app, "/api/monitoring/stats/operations?window=1h").await;
    assert_eq!(ops.as_object().unwrap().len(), 3);
    let o = &ops["outfit_generation"];
    assert_eq!(o["operation"], "outfit_generation");
    assert_eq!(o["external"], false);
    assert_eq!(
        (
            o["count"].as_u64(),
            o["successes"].as_u64(),
            o["failures"].as_u64()
        ),
        (Some(100), Some(90), Some(10))
    );
    assert!(close(&o["success_rate"], 0.9));
    assert!(close(&o["cache_hit_rate"], 0.5));
    assert_eq!(
        o["layers"],
        json!({"cache": 40, "primary": 40, "fallback": 20})
    );
    assert_eq!(o["primary_layer"], "primary");
    assert!(
        close(&o["fallback_rate"], 0.6),
        "everything not served by `primary`: {o}"
    );
    assert_eq!(o["users"], 10);
    assert_eq!(o["duration_ms"]["min"], 1.0);
    assert_eq!(o["duration_ms"]["max"], 100.0);
    for (field, want) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
        let got = o["duration_ms"][field].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 0.01,
            "{field}: {got} vs {want}"
        );
    }
    assert!(close(&o["duration_ms"]["avg"], 50.5));
    let stripe = &ops["external:stripe.charge"];
    assert_eq!(stripe["external"], true);
    assert_eq!(stripe["count"], 8);
    assert!(close(&stripe["success_rate"], 0.75));
    assert!(
        stripe["cache_hit_rate"].is_null(),
        "no run reported the cache"
    );
    assert!(stripe["fallback_rate"].is_null(), "no run named a layer");
    assert_eq!(stripe["users"], 4);
    assert!(((stripe["duration_ms"]["p50"].as_f64().unwrap()) - 200.0).abs() <= 2.0);

    let one = get(
        app,
        "/api/monitoring/stats/operations?operation=signup&window=15m",
    )
    .await;
    assert_eq!(
        one.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["signup"]
    );
    let external = get(app, "/api/monitoring/stats/operations?kind=external").await;
    assert_eq!(
        external.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["external:stripe.charge"]
    );
    let elsewhere = get(app, "/api/monitoring/stats/operations?service=nope").await;
    assert!(elsewhere.as_object().unwrap().is_empty());

    let e = get(app, "/api/monitoring/stats/errors?limit=100").await;
    assert_eq!(e["total"], 12);
    assert_eq!(e["totals"], json!({"ModelTimeout": 10, "CardError": 2}));
    let rows = e["errors"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let ats: Vec<&str> = rows.iter().map(|r| r["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted, "newest first");
    assert_eq!(rows[0]["operation"], "external:stripe.charge");
    assert_eq!(rows[0]["error_type"], "CardError");
    assert_eq!(rows[0]["user_id"], "u1");
    let oldest = &rows[11];
    assert_eq!(oldest["error"], "model timed out after 0 tries");
    assert_eq!(oldest["stack_trace"], "at generate()\nat handler()");
    assert_eq!(oldest["context"], json!({"style": "casual", "i": 0}));
    assert_eq!(oldest["user_id"], "u0");
    let limited = get(
        app,
        "/api/monitoring/stats/errors?limit=5&operation=outfit_generation",
    )
    .await;
    assert_eq!(limited["errors"].as_array().unwrap().len(), 5);
    assert_eq!(limited["totals"], json!({"ModelTimeout": 10}));

    let f = get(app, "/api/monitoring/stats/user-funnel?window=24h").await;
    assert_eq!(f["total_users"], 10);
    assert_eq!(
        f["milestones"],
        json!([
            {"operation": "outfit_generation", "users": 9, "share": 1.0},
            {"operation": "external:stripe.charge", "users": 4, "share": 4.0 / 9.0},
            {"operation": "signup", "users": 3, "share": 3.0 / 9.0},
        ])
    );

    // An explicit range that ends before the data holds nothing.
    let before = get(
        app,
        &format!(
            "/api/monitoring/stats/summary?from={}&to={}",
            now - 7200,
            now - 3600 - 60
        ),
    )
    .await;
    assert_eq!(before["total_operations"], 0);
    assert!(before["success_rate"].is_null() && before["cache_hit_rate"].is_null());
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains(
        "liftoff_operations_total{service=\"stylist\",operation=\"outfit_generation\",status=\"failure\"} 10"
    ), "{metrics}");
    assert!(metrics.contains(
        "liftoff_operation_duration_seconds_count{service=\"stylist\",operation=\"signup\"} 3"
    ));
    promtool_accepts(&metrics);
}

/// `promtool check metrics` accepts the exposition (when promtool is installed; `scripts/test`
/// installs it and sets `LIFTOFF_TEST_REQUIRE_PROMTOOL`).
pub(crate) fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let run = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        });
    match run {
        Ok(out) => assert!(
            out.status.success(),
            "promtool refused the exposition:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => assert!(
            std::env::var_os("LIFTOFF_TEST_REQUIRE_PROMTOOL").is_none(),
            "promtool is required but not installed"
        ),
    }
}

#[tokio::test]
async fn stats_on_sqlite() {
    stats_round_trip(&spawn().await).await;
}

#[tokio::test]
async fn stats_on_postgres() {
    let url = postgres_state_url().await;
    stats_round_trip(
        &spawn_with(|mut o| {
            o.state_url = Some(url);
            o
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn bad_operations_are_refused_whole_and_scopes_hold() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let (_, read) = app.key("read").await;
    let good = json!({"operation": "ok", "status": "success", "duration_ms": 1.0});
    for bad in [
        json!({"operation": "x", "status": "success", "duration_ms": -5}),
        json!({"operation": "x", "status": "maybe", "duration_ms": 1}),
        json!({"operation": "x", "status": "failure", "duration_ms": 1, "stack_trace": "s".repeat(1 << 20)}),
        json!({"operation": "x", "status": "failure", "duration_ms": 1, "stack_trace": "s".repeat(17 * 1024)}),
        json!({"operation": "x".repeat(10_000), "status": "success", "duration_ms": 1}),
        json!({"operation": "has spaces", "status": "success", "duration_ms": 1}),
        json!({"operation": "x", "status": "success", "duration_ms": 86_400_000.0}),
        json!({"operation": "x", "status": "success", "duration_ms": 1, "ts": "last tuesday"}),
        json!({"operation": "x", "status": "failure", "duration_ms": 1, "context": {"blob": "c".repeat(9000)}}),
        json!({"status": "success", "duration_ms": 1}),
    ] {
        let res = ingest(&app, &token, &json!([good, bad])).await;
        let status = res.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{}: {status}",
            bad.to_string().chars().take(80).collect::<String>()
        );
        problem(res, status).await;
    }
    problem(ingest(&app, &token, &json!([])).await, 422).await;
    let refused = problem(
        ingest(
            &app,
            &token,
            &json!([good, {"operation": "x", "status": "maybe", "duration_ms": 1}]),
        )
        .await,
        422,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("record 1"),
        "the refusal names the record: {refused}"
    );
    problem(
        ingest(&app, &token, &json!({"operations": "nope"})).await,
        422,
    )
    .await;
    problem(ingest(&app, &token, &json!(42)).await, 422).await;
    let res = app
        .http
        .post(app.at("/api/ingest/operations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    problem(res, 400).await;
    let s = get(&app, "/api/monitoring/stats/summary").await;
    assert_eq!(
        s["total_operations"], 0,
        "nothing of a refused batch is stored: {s}"
    );
    let e = get(&app, "/api/monitoring/stats/errors").await;
    assert_eq!(e["errors"], json!([]));

    // Scopes: like /api/ingest/requests and /api/monitoring/performance.
    problem(ingest(&app, &read, &json!([good])).await, 403).await;
    for path in [
        "/api/monitoring/stats/summary",
        "/api/monitoring/stats/operations",
        "/api/monitoring/stats/errors",
        "/api/monitoring/stats/user-funnel",
    ] {
        problem(app.get(path, Some(&token)).await, 403).await;
        problem(app.get(path, None).await, 401).await;
        assert_eq!(app.get(path, Some(&read)).await.status(), 200, "{path}");
    }
    problem(
        app.get("/api/monitoring/stats/summary?window=2y", Some(&read))
            .await,
        400,
    )
    .await;
    problem(
        app.get("/api/monitoring/stats/errors?limit=0", Some(&read))
            .await,
        400,
    )
    .await;
    problem(
        app.get("/api/monitoring/stats/operations?kind=weird", Some(&read))
            .await,
        400,
    )
    .await;
    assert_eq!(ingest(&app, &token, &json!([good])).await.status(), 200);
    assert_eq!(
        get(&app, "/api/monitoring/stats/summary").await["total_operations"],
        1
    );
}

#[derive(Debug)]
struct QuotaExceeded;

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("style quota exceeded")
    }
}

#[tokio::test]
async fn the_sdk_timers_deliver_to_liftoff() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let ops = liftoff_sdk::OperationReporter::builder(&app.url, &token)
        .service("stylist-app")
        .build()
        .unwrap();
    // Guards: three successes served from the cache, one failure from the fallback layer.
    for i in 0..3 {
        let _t = ops
            .operation("outfit_generation")
            .user(format!("u{i}"))
            .layer("cache")
            .cache_hit(true);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    {
        let mut t = ops
            .operation("outfit_generation")
            .user("u9")
            .layer("fallback")
            .cache_hit(false)
            .context(json!({"style": "formal"}));
        t.fail(&QuotaExceeded).stack_trace("at generate()");
    }
    // The closure helpers: Ok is a success, Err a failure with its Display and type name.
    let ok: Result<u8, std::num::ParseIntError> = ops.time_operation("parse", || "7".parse());
    assert_eq!(ok.unwrap(), 7);
    let err: Result<u8, _> = ops.time_operation("parse", || "x".parse::<u8>());
    assert!(err.is_err());
    let charged = ops
        .time_operation_async("external:stripe.charge", async {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            Err::<(), _>(QuotaExceeded)
        })
        .await;
    assert!(charged.is_err());
    ops.shutdown().await;
    assert_eq!((ops.sent(), ops.dropped()), (7, 0));

    let stats = get(&app, "/api/monitoring/stats/operations?service=stylist-app").await;
    let outfit = &stats["outfit_generation"];
    assert_eq!(
        (outfit["count"].as_u64(), outfit["failures"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(close(&outfit["cache_hit_rate"], 0.75));
    assert_eq!(outfit["layers"], json!({"cache": 3, "fallback": 1}));
    assert_eq!(outfit["primary_layer"], "cache", "the most frequent layer");
    assert!(close(&outfit["fallback_rate"], 0.25));
    assert_eq!(outfit["users"], 4);
    assert!(
        outfit["duration_ms"]["p50"].as_f64().unwrap() >= 19.0,
        "three slept 20 ms: {outfit}"
    );
    assert_eq!(
        (
            stats["parse"]["count"].as_u64(),
            stats["parse"]["failures"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let stripe = &stats["external:stripe.charge"];
    assert_eq!(
        (stripe["external"].as_bool(), stripe["failures"].as_u64()),
        (Some(true), Some(1))
    );
    assert!(stripe["duration_ms"]["max"].as_f64().unwrap() >= 29.0);

    let e = get(&app, "/api/monitoring/stats/errors").await;
    assert_eq!(e["totals"], json!({"QuotaExceeded": 2, "ParseIntError": 1}));
    let quota = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "outfit_generation")
        .unwrap();
    assert_eq!(quota["error"], "style quota exceeded");
    assert_eq!(quota["error_type"], "QuotaExceeded");
    assert_eq!(quota["stack_trace"], "at generate()");
    assert_eq!(quota["context"], json!({"style": "formal"}));
    assert_eq!(quota["user_id"], "u9");
}
