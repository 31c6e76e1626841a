//! Uptime monitors against a local server that goes away and comes back.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn_with};

/// A tiny server answering `GET /healthz` with `ok`, on `addr` (port 0 picks one); stops when
/// the sender is dropped or fires.
async fn health_server(addr: &str) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (addr, tx)
}

async fn detail(app: &TestApp, id: i64) -> Value {
    let res = app
        .get(&format!("/api/uptime/monitors/{id}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn checks(app: &TestApp, id: i64) -> Vec<Value> {
    let res = app
        .get(
            &format!("/api/uptime/monitors/{id}/checks"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Waits until the monitor's status is `status` and it has at least `min_checks` checks.
async fn wait_for(app: &TestApp, id: i64, status: &str, min_checks: usize) {
    for _ in 0..200 {
        let d = detail(app, id).await;
        if d["monitor"]["state"]["status"] == status && checks(app, id).await.len() >= min_checks {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("monitor {id} never became {status}");
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[tokio::test]
async fn a_server_that_stops_and_starts_shows_its_downtime_and_uptime() {
    let app = spawn_with(|mut o| {
        o.uptime_min_interval_seconds = Some(1);
        o
    })
    .await;
    let (addr, stop) = health_server("127.0.0.1:0").await;
    let res = app
        .post_json(
            "/api/uptime/monitors",
            Some(ADMIN_TOKEN),
            &json!({"name": "health", "url": format!("http://{addr}/healthz"),
                    "interval_seconds": 2, "timeout_seconds": 1, "keyword": "ok"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    wait_for(&app, id, "up", 2).await;
    let _ = stop.send(());
    wait_for(&app, id, "down", 4).await;
    let d = detail(&app, id).await;
    assert_eq!(d["downtimes"].as_array().unwrap().len(), 1);
    assert_eq!(d["downtimes"][0]["ongoing"], true);
    // The same port again.
    let (_, _stop_again) = health_server(&addr.to_string()).await;
    let seen = checks(&app, id).await.len();
    wait_for(&app, id, "up", seen + 1).await;
    // Stop checking so the figures and the check list describe the same checks.
    let res = app
        .http
        .patch(app.at(&format!("/api/uptime/monitors/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let d = detail(&app, id).await;
    let mut all = checks(&app, id).await;
    all.reverse(); // oldest first
    let up = all.iter().filter(|c| c["up"] == true).count();
    assert!(up >= 3 && up < all.len(), "{all:?}");
    let want = round3(up as f64 * 100.0 / all.len() as f64);
    assert_eq!(d["uptime"]["h24"].as_f64().unwrap(), want);
    assert_eq!(d["uptime"]["d7"].as_f64().unwrap(), want);
    assert_eq!(d["uptime"]["d30"].as_f64().unwrap(), want);

    // One period: from the first failed check to the first good one after it.
    let first_down = all.iter().position(|c| c["up"] == false).unwrap();
    let back_up = first_down
        + all[first_down..]
            .iter()
            .position(|c| c["up"] == true)
            .unwrap();
    assert!(all[back_up..].iter().all(|c| c["up"] == true));
    assert!(all[first_down].get("error").is_some_and(|e| e.is_string()));
    let periods = d["downtimes"].as_array().unwrap();
    assert_eq!(periods.len(), 1, "{periods:?}");
    let p = &periods[0];
    assert_eq!(p["ongoing"], false);
    let ts = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(ts(&p["started_at"]), ts(&all[first_down]["at"]));
    assert_eq!(ts(&p["ended_at"]), ts(&all[back_up]["at"]));
    assert_eq!(
        p["duration_seconds"].as_i64().unwrap(),
        (ts(&p["ended_at"]) - ts(&p["started_at"])).num_seconds()
    );
    assert!(p["duration_seconds"].as_i64().unwrap() >= 2);
    // Today's bar counts the same checks; response times have a point for this hour.
    let today = d["daily"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["total"], all.len());
    assert_eq!(today["up"], up);
    assert!(!d["response_times"].as_array().unwrap().is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn bad_monitors_are_refused_with_problems() {
    let app = spawn_with(|o| o).await;
    for body in [
        json!({"name": "x", "url": "ftp://example.com"}),
        json!({"name": "x", "url": "localhost:8080"}),
        json!({"name": "x", "url": "http://example.com", "interval_seconds": 5}),
        json!({"name": "x", "url": "http://example.com", "interval_seconds": 30, "timeout_seconds": 30}),
        json!({"name": "x", "url": "http://example.com", "interval_seconds": 30, "timeout_seconds": 45}),
        json!({"name": "x", "url": "http://example.com", "method": "HEAD", "keyword": "ok"}),
        json!({"name": "", "url": "http://example.com"}),
        json!({"name": "x", "url": "http://example.com", "method": "POST"}),
    ] {
        problem(
            app.post_json("/api/uptime/monitors", Some(ADMIN_TOKEN), &body)
                .await,
            422,
        )
        .await;
    }
    problem(
        app.get("/api/uptime/monitors/999", Some(ADMIN_TOKEN)).await,
        404,
    )
    .await;
    problem(app.get("/api/uptime/monitors", None).await, 401).await;
    // A good one, then a patch that breaks the timeout rule.
    let res = app
        .post_json(
            "/api/uptime/monitors",
            Some(ADMIN_TOKEN),
            &json!({"name": "ok", "url": "https://example.com/", "interval_seconds": 30, "timeout_seconds": 10, "enabled": false}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["method"], "GET");
    assert_eq!(m["state"]["status"], "unknown");
    let res = app
        .http
        .patch(app.at(&format!("/api/uptime/monitors/{}", m["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"interval_seconds": 10}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let res = app
        .http
        .delete(app.at(&format!("/api/uptime/monitors/{}", m["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    app.shutdown().await;
}

/// End to end: a failing monitor fires a critical `uptime_failing` alert, which opens an
/// incident; when the server comes back the alert resolves and joins the incident's timeline.
#[tokio::test]
async fn a_failing_monitor_fires_a_critical_alert_that_opens_an_incident() {
    let app = spawn_with(|mut o| {
        o.uptime_min_interval_seconds = Some(1);
        o.alert_interval_ms = Some(200);
        o.alert_group_wait_ms = Some(0);
        o
    })
    .await;
    // A port nobody listens on yet.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let res = app
        .post_json(
            "/api/uptime/monitors",
            Some(ADMIN_TOKEN),
            &json!({"name": "checkout", "url": format!("http://{addr}/healthz"),
                    "interval_seconds": 2, "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = app
        .post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "Checkout health failing", "metric": "uptime_failing", "threshold": 0,
                    "for_seconds": 0, "severity": "critical", "scope": {"monitor": id}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    let mut incident = Value::Null;
    for _ in 0..150 {
        let list: Value = app
            .get("/api/incidents", Some(ADMIN_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        if let Some(i) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == "Checkout health failing")
        {
            incident = i.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(incident["severity"], "critical", "no incident opened");
    assert_eq!(incident["status"], "investigating");
    assert_eq!(incident["auto_opened"], true);
    assert!(
        incident["timeline"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING] Checkout health failing")
    );

    let (_, _stop) = health_server(&addr.to_string()).await;
    let path = format!(
        "/api/incidents/{}/timeline",
        incident["id"].as_str().unwrap()
    );
    for _ in 0..150 {
        let timeline: Vec<Value> = app
            .get(&path, Some(ADMIN_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        if timeline.iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("[RESOLVED] Checkout health failing"))
        }) {
            assert_eq!(
                app.get("/api/incidents", Some(ADMIN_TOKEN))
                    .await
                    .json::<Vec<Value>>()
                    .await
                    .unwrap()
                    .len(),
                1,
                "the alert's resolution joins the incident, it opens no other"
            );
            app.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the resolved alert never joined the incident");
}
