//! Alerts end to end: rules over ingested requests, the outbox delivering to a local webhook
//! receiver through an outage and a restart, maintenance windows, and bad input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use liftoff::config::Overrides;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn_at, spawn_with};

/// A webhook receiver on 127.0.0.1: records every body; while `up` is false it answers 503.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    pub(crate) up: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) async fn start(up: bool) -> (Self, String) {
        let r = Receiver::default();
        r.up.store(up, Ordering::SeqCst);
        let app = axum::Router::new()
            .route(
                "/hook",
                post(
                    |State(r): State<Receiver>, axum::Json(v): axum::Json<Value>| async move {
                        if !r.up.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        r.got.lock().unwrap().push(v);
                        StatusCode::OK
                    },
                ),
            )
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    pub(crate) fn got(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

pub(crate) fn fast(o: Overrides) -> Overrides {
    Overrides {
        alert_interval_ms: Some(200),
        alert_group_wait_ms: Some(0),
        alert_retry_base_ms: Some(200),
        ..o
    }
}

pub(crate) async fn wait_for<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn ingest(app: &TestApp, service: &str, status: u16, n: usize) {
    let records: Vec<Value> = (0..n)
        .map(|_| json!({"service": service, "method": "GET", "route": "/checkout", "status": status, "duration_ms": 12.0}))
        .collect();
    let res = app
        .post_json(
            "/api/ingest/requests",
            Some(ADMIN_TOKEN),
            &Value::Array(records),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post_json(path, Some(ADMIN_TOKEN), &body).await;
    assert_eq!(res.status(), 201, "{path}: {}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn error_rule(app: &TestApp, service: &str) -> i64 {
    let rule = create(
        app,
        "/api/alerts/rules",
        json!({"name": format!("{service} errors"), "metric": "error_rate", "scope": {"service": service},
               "op": "gt", "threshold": 0.5, "for_seconds": 1, "keep_firing_for_seconds": 0,
               "severity": "critical"}),
    )
    .await;
    rule["id"].as_i64().unwrap()
}

async fn alerts_of(app: &TestApp, rule: i64) -> Vec<Value> {
    get_json(app, &format!("/api/alerts?rule_id={rule}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_webhook_gets_one_firing_and_one_resolved_through_an_outage_and_a_restart() {
    outage_and_restart(None).await;
}

#[tokio::test]
async fn the_same_on_postgres() {
    outage_and_restart(Some(crate::harness::postgres_state_url().await)).await;
}

async fn outage_and_restart(state_url: Option<String>) {
    let (receiver, url) = Receiver::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = move |o: Overrides| {
        fast(Overrides {
            state_url: state_url.clone(),
            ..o
        })
    };
    let app = spawn_at(dir.path(), settings.clone()).await;
    let defaults = get_json(&app, "/api/alerts/rules").await;
    assert_eq!(
        defaults.as_array().unwrap().len(),
        5,
        "SPEC §6 defaults: {defaults}"
    );
    create(
        &app,
        "/api/notifications/channels",
        json!({"name": "ops", "config": {"kind": "webhook", "url": url}}),
    )
    .await;
    let rule = error_rule(&app, "shop").await;
    ingest(&app, "shop", 503, 100).await;

    // Pending first, firing after `for`.
    wait_for("the alert to fire", 15, || async {
        alerts_of(&app, rule)
            .await
            .first()
            .is_some_and(|a| a["status"] == "firing")
    })
    .await;
    let active = get_json(&app, "/api/monitoring/alerts").await;
    assert!(
        active
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule_id"] == rule && a["status"] == "firing"),
        "{active}"
    );
    // The receiver is down: the delivery is retried, the error visible.
    wait_for("a failed attempt", 15, || async {
        get_json(&app, "/api/notifications/deliveries")
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|d| {
                d["status"] == "pending"
                    && d["attempts"].as_u64().unwrap() >= 2
                    && d["last_error"].as_str().is_some_and(|e| e.contains("503"))
            })
    })
    .await;
    assert!(receiver.got().is_empty());

    // Liftoff restarts while the notification waits; the receiver comes back meanwhile.
    app.shutdown().await;
    receiver.up.store(true, Ordering::SeqCst);
    let app = spawn_at(dir.path(), settings).await;
    wait_for("the firing notification", 20, || async {
        !receiver.got().is_empty()
    })
    .await;

    // The spike ends: enough successful requests bring the rate under the threshold.
    ingest(&app, "shop", 200, 5000).await;
    wait_for("the resolved notification", 20, || async {
        receiver.got().len() >= 2
    })
    .await;
    // Nothing more arrives (no repeat within the repeat interval, resolved sent once).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["status"], "firing");
    assert_eq!(got[1]["status"], "resolved");
    for m in &got {
        assert_eq!(m["version"], "4");
        assert_eq!(m["receiver"], "ops");
        assert_eq!(m["groupLabels"]["alertname"], "shop errors");
        let a = &m["alerts"][0];
        assert_eq!(a["labels"]["service"], "shop");
        assert_eq!(a["labels"]["severity"], "critical");
        for field in ["startsAt", "endsAt", "generatorURL", "fingerprint"] {
            assert!(a[field].is_string(), "{field} in {m}");
        }
    }
    assert_eq!(
        got[0]["alerts"][0]["fingerprint"],
        got[1]["alerts"][0]["fingerprint"]
    );
    let history = alerts_of(&app, rule).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["status"], "resolved");
    assert!(history[0]["fired_at"].is_string());

    // Acknowledgement records who and when.
    let id = history[0]["id"].as_i64().unwrap();
    let acked: Value = app
        .post_json(
            &format!("/api/alerts/{id}/ack"),
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(acked["acked_by"].is_string() && acked["acked_at"].is_string());
    app.shutdown().await;
}

#[tokio::test]
async fn a_maintenance_window_holds_back_notifications_but_keeps_the_alert() {
    let (receiver, url) = Receiver::start(true).await;
    let app = spawn_with(fast).await;
    create(
        &app,
        "/api/notifications/channels",
        json!({"name": "ops", "config": {"kind": "webhook", "url": url}}),
    )
    .await;
    let now = chrono::Utc::now();
    create(
        &app,
        "/api/alerts/maintenance",
        json!({"name": "deploy", "starts_at": now - chrono::Duration::minutes(1),
               "ends_at": now + chrono::Duration::hours(1)}),
    )
    .await;
    let rule = error_rule(&app, "billing").await;
    ingest(&app, "billing", 500, 50).await;
    wait_for("the alert to fire", 15, || async {
        alerts_of(&app, rule)
            .await
            .first()
            .is_some_and(|a| a["status"] == "firing")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(receiver.got().is_empty(), "{:?}", receiver.got());
    assert_eq!(
        get_json(&app, "/api/notifications/deliveries").await,
        json!([])
    );
    let a = &alerts_of(&app, rule).await[0];
    assert_eq!(a["suppressed"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_rules_are_refused_and_delivery_errors_are_visible() {
    let app = spawn_with(fast).await;
    let p = problem(
        app.post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "x", "metric": "error_ratio", "threshold": 1}),
        )
        .await,
        422,
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("error_ratio")
            && detail.contains("error_rate")
            && detail.contains("latency_p95"),
        "{detail}"
    );
    let p = problem(
        app.post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "x", "metric": "error_rate", "threshold": 0.1, "for_seconds": -5}),
        )
        .await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("negative"), "{p}");

    // An unreachable webhook: the test send answers with the error; the outbox shows it.
    let hook = create(
        &app,
        "/api/notifications/channels",
        json!({"name": "nowhere", "config": {"kind": "webhook", "url": "http://127.0.0.1:1/secret-path"}}),
    )
    .await;
    assert_eq!(
        hook["config"]["url"], "http://127.0.0.1:1/********",
        "masked"
    );
    let id = hook["id"].as_i64().unwrap();
    let d: Value = app
        .post_json(
            &format!("/api/notifications/channels/{id}/test"),
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach 127.0.0.1:1")),
        "{d}"
    );

    // SMTP to a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mail = create(
        &app,
        "/api/notifications/channels",
        json!({"name": "mail", "config": {"kind": "email", "host": "127.0.0.1", "port": closed, "tls": "none",
               "username": "u", "password": "hunter2", "from": "liftoff@example.com", "to": ["ops@example.com"]}}),
    )
    .await;
    assert_eq!(mail["config"]["password"], "********");
    let mid = mail["id"].as_i64().unwrap();
    let d: Value = app
        .post_json(
            &format!("/api/notifications/channels/{mid}/test"),
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["last_error"].as_str().is_some_and(|e| e.contains("SMTP")),
        "{d}"
    );
    let listed = get_json(&app, "/api/notifications/deliveries").await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "failed" && d["last_error"].is_string())
    );
    let channels = get_json(&app, "/api/notifications/channels").await;
    assert!(!channels.to_string().contains("hunter2"));
    assert!(!channels.to_string().contains("secret-path"));

    // A real alert towards the unreachable webhook keeps being retried, never stuck.
    app.http
        .delete(app.at(&format!("/api/notifications/channels/{mid}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    error_rule(&app, "api").await;
    ingest(&app, "api", 502, 20).await;
    wait_for("retries with the error", 20, || async {
        get_json(&app, "/api/notifications/deliveries")
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|d| {
                d["kind"] == "firing"
                    && d["attempts"].as_u64().unwrap() >= 2
                    && d["last_error"].is_string()
            })
    })
    .await;
    app.shutdown().await;
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

fn cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_alerts_page_shows_firing_alerts_and_acknowledges_and_silences() {
    let app = spawn_with(fast).await;
    let rule = error_rule(&app, "web").await;
    ingest(&app, "web", 500, 30).await;
    wait_for("the alert to fire", 15, || async {
        alerts_of(&app, rule)
            .await
            .first()
            .is_some_and(|a| a["status"] == "firing")
    })
    .await;
    let alert_id = alerts_of(&app, rule).await[0]["id"].as_i64().unwrap();

    let login = app.http.get(app.at("/login")).send().await.unwrap();
    let login_cookie = cookie(&login, "liftoff_login_csrf");
    let csrf = hidden(&login.text().await.unwrap(), "csrf");
    let res = app
        .http
        .post(app.at("/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("username", "admin"),
            ("password", crate::harness::ADMIN_PASSWORD),
            ("csrf", &csrf),
            ("next", "/alerts"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session = cookie(&res, "liftoff_session");
    let page = app
        .http
        .get(app.at("/alerts"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("web errors") && html.contains("Firing (1)"),
        "{html}"
    );
    let csrf = hidden(&html, "csrf");

    let forged = app
        .http
        .post(app.at(&format!("/alerts/{alert_id}/ack")))
        .header("cookie", &session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let acked = app
        .http
        .post(app.at(&format!("/alerts/{alert_id}/ack")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    assert!(acked.text().await.unwrap().contains("acknowledged"));
    assert_eq!(
        get_json(&app, &format!("/api/alerts/{alert_id}")).await["acked_by"],
        "user:admin"
    );
    let silenced = app
        .http
        .post(app.at("/alerts/silences"))
        .header("cookie", &session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("rule_id", &rule.to_string()),
            ("hours", "2"),
            ("comment", "known issue"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(silenced.status(), 200);
    assert!(silenced.text().await.unwrap().contains("silenced until"));
    let silences = get_json(&app, "/api/alerts/silences").await;
    assert_eq!(silences[0]["rule_id"], rule);
    assert_eq!(silences[0]["comment"], "known issue");
    app.shutdown().await;
}

#[tokio::test]
async fn an_slo_burn_rate_rule_fires_when_both_windows_burn() {
    let app = spawn_with(fast).await;
    let rule = create(
        &app,
        "/api/alerts/rules",
        json!({"name": "checkout SLO", "metric": "slo_burn_rate", "scope": {"service": "slo"},
               "slo": {"objective": 0.99, "preset": "fast"}, "severity": "critical"}),
    )
    .await;
    assert_eq!(rule["threshold"], 14.4, "the preset's factor");
    let id = rule["id"].as_i64().unwrap();
    // 10 % errors against a 1 % budget: a burn rate of 10, under 14.4.
    ingest(&app, "slo", 500, 10).await;
    ingest(&app, "slo", 200, 90).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(alerts_of(&app, id).await.is_empty());
    // 40 % now: 40× in both windows.
    ingest(&app, "slo", 500, 50).await;
    wait_for("the burn-rate alert", 15, || async {
        alerts_of(&app, id)
            .await
            .first()
            .is_some_and(|a| a["status"] == "firing")
    })
    .await;
    let a = &alerts_of(&app, id).await[0];
    assert!((a["value"].as_f64().unwrap() - 40.0).abs() < 1e-6, "{a}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_event_count_rule_fires_on_product_events() {
    let app = spawn_with(fast).await;
    let rule = create(
        &app,
        "/api/alerts/rules",
        json!({"name": "checkout errors", "metric": "event_count", "scope": {"event": "checkout_error"},
               "op": "gt", "threshold": 2, "for_seconds": 0, "keep_firing_for_seconds": 0,
               "severity": "warning"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let events: Vec<Value> = (0..3)
        .map(|i| json!({"event": "checkout_error", "user_id": format!("u{i}")}))
        .chain(std::iter::once(
            json!({"event": "page_view", "user_id": "u9"}),
        ))
        .collect();
    let res = app
        .post_json(
            "/api/ingest/events",
            Some(ADMIN_TOKEN),
            &Value::Array(events),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    wait_for("the event-count alert to fire", 15, || async {
        alerts_of(&app, rule)
            .await
            .iter()
            .any(|a| a["status"] == "firing" && a["value"] == 3.0)
    })
    .await;
}
