use serde_json::json;

use crate::harness::{ADMIN_TOKEN, problem, spawn, spawn_with};

#[tokio::test]
async fn no_token_is_401_with_a_challenge() {
    let app = spawn().await;
    let res = app.get("/api/keys", None).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"liftoff\""
    );
    let p = problem(res, 401).await;
    assert_eq!(p["code"], "unauthorized");
    problem(
        app.get("/api/keys", Some("lft_not-a-real-token")).await,
        401,
    )
    .await;
    let res = app
        .http
        .get(app.at("/api/keys"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
}

#[tokio::test]
async fn scopes_are_enforced() {
    let app = spawn().await;
    let (_, read) = app.key("read").await;
    let (_, ingest) = app.key("ingest").await;
    let p = problem(
        app.post_json(
            "/api/keys",
            Some(&read),
            &json!({"name": "x", "scope": "read"}),
        )
        .await,
        403,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("needs `admin`"),
        "{p}"
    );
    problem(
        app.post_json(
            "/api/keys",
            Some(&ingest),
            &json!({"name": "x", "scope": "read"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(
        app.get("/api/keys", Some(&read)).await.status(),
        200,
        "read may GET"
    );
    problem(app.get("/api/keys", Some(&ingest)).await, 403).await;
    assert_eq!(
        app.get("/api/audit", Some(ADMIN_TOKEN)).await.status(),
        200,
        "admin may do everything"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = spawn_with(|mut o| {
        o.rate_limit_per_second = Some(0.5);
        o.rate_limit_burst = Some(3.0);
        o
    })
    .await;
    let (_, read) = app.key("read").await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/keys", Some(&read)).await.status(), 200);
    }
    let res = app.get("/api/keys", Some(&read)).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    problem(res, 429).await;
    // Another key has its own bucket.
    let (_, other) = app.key("read").await;
    assert_eq!(app.get("/api/keys", Some(&other)).await.status(), 200);
}

#[tokio::test]
async fn health_endpoints_are_public() {
    let app = spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let detailed: serde_json::Value = app
        .get("/health/detailed", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detailed["status"], "ok");
    assert_eq!(
        detailed["stores"][0]["backend"],
        crate::harness::state_backend()
    );
    assert_eq!(detailed["stores"][0]["ok"], true);
    assert!(detailed["stores"][0]["schema_version"].as_i64().unwrap() >= 1);
    // Events in ClickHouse are a store of their own, checked beside the state.
    if std::env::var("LIFTOFF_TEST_EVENTS").as_deref() == Ok("clickhouse") {
        assert_eq!(detailed["stores"][1]["name"], "events");
        assert_eq!(detailed["stores"][1]["backend"], "clickhouse");
        assert_eq!(detailed["stores"][1]["ok"], true);
        assert!(detailed["stores"][1]["schema_version"].as_i64().unwrap() >= 3);
    } else {
        assert_eq!(detailed["stores"].as_array().unwrap().len(), 1);
    }
    let jobs: Vec<&str> = detailed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(jobs.contains(&"session-cleanup"), "{jobs:?}");
    assert!(detailed["queues"].is_array());
}
