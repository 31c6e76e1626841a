//! `liftoff_sdk::launch::LaunchGate` in front of a real axum app, against a real Liftoff:
//! users without a seat get 403 with their waitlist place, maintenance mode answers 503 with
//! `Retry-After` within a poll of the switch, and allow-listed users pass it.

use std::time::{Duration, Instant};

use liftoff_sdk::launch::LaunchGate;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, spawn};

async fn put_maintenance(app: &TestApp, body: Value) {
    let res = app
        .http
        .put(app.at("/api/launch/maintenance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// Polls `check` until it holds; returns how long that took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("did not happen within {limit:?}");
}

#[tokio::test]
async fn the_gate_enforces_the_cap_and_maintenance_mode() {
    let liftoff = spawn().await;
    let (_, ingest) = liftoff.key("ingest").await;
    let res = liftoff
        .http
        .patch(liftoff.at("/api/launch"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_limit": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let gate = LaunchGate::builder(&liftoff.url, &ingest)
        .poll_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    assert!(!gate.maintenance());
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let get = |user: Option<&'static str>, html: bool| {
        let mut req = http.get(&url);
        if let Some(u) = user {
            req = req.header("x-user-id", u);
        }
        if html {
            req = req.header("accept", "text/html");
        }
        req.send()
    };

    // First come, first served: qa and ann take the two seats, bob waits first in line.
    for user in ["qa", "ann"] {
        let res = get(Some(user), false).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    let bob = get(Some("bob"), false).await.unwrap();
    assert_eq!(bob.status(), 403);
    let body: Value = bob.json().await.unwrap();
    assert_eq!(body["waitlist_position"], 1);
    assert_eq!(body["allowed"], false);
    // Visitors without a user id are not held to the cap.
    assert_eq!(get(None, false).await.unwrap().status(), 200);

    put_maintenance(
        &liftoff,
        json!({"enabled": true, "message": "Back at <14:00>", "retry_after_seconds": 30,
               "allow_users": ["qa"], "reason": "database upgrade"}),
    )
    .await;
    let took = within(Duration::from_secs(3), async || {
        get(Some("ann"), false).await.unwrap().status() == 503
    })
    .await;
    assert!(took < Duration::from_millis(1500), "flipped after {took:?}");
    let ann = get(Some("ann"), false).await.unwrap();
    assert_eq!(ann.headers()["retry-after"], "30");
    let body: Value = ann.json().await.unwrap();
    assert_eq!(body["maintenance"], true);
    assert_eq!(body["message"], "Back at <14:00>");
    let page = get(Some("ann"), true).await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("Back at &lt;14:00&gt;"));
    assert_eq!(get(None, false).await.unwrap().status(), 503);
    // The allow-listed tester keeps working.
    assert_eq!(get(Some("qa"), false).await.unwrap().status(), 200);

    put_maintenance(&liftoff, json!({"enabled": false})).await;
    within(Duration::from_secs(3), async || {
        get(Some("ann"), false).await.unwrap().status() == 200
    })
    .await;
    assert!(!gate.maintenance());
}

#[tokio::test]
async fn a_gate_with_a_wrong_key_fails_at_start() {
    let liftoff = spawn().await;
    let err = LaunchGate::builder(&liftoff.url, "lft_wrong")
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}
