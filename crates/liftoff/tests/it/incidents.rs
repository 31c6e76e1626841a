//! Incidents: numbering, impact computed from ingested data, timeline, postmortem, action
//! items, SLA, bad input, and alert transitions opening and joining incidents.

use std::sync::Arc;

use chrono::{Datelike, Utc};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    app.http
        .request(method, app.at(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn create(app: &TestApp, body: &Value) -> Value {
    let res = app
        .post_json("/api/incidents", Some(ADMIN_TOKEN), body)
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_incident_shows_the_impact_of_its_window_and_keeps_its_record() {
    let app = spawn().await;
    let year = Utc::now().year();
    let started = Utc::now() - chrono::Duration::minutes(3);
    let a = create(
        &app,
        &json!({"title": "Checkout failing", "severity": "critical", "started_at": started}),
    )
    .await;
    let b = create(&app, &json!({"title": "Slow search", "severity": "minor"})).await;
    assert_eq!(a["id"], format!("INC-{year}-001"));
    assert_eq!(b["id"], format!("INC-{year}-002"));
    assert_eq!(a["status"], "investigating");
    let id = a["id"].as_str().unwrap().to_owned();

    // Data of the window: 10 requests of which 3 are 5xx (and one 404), error events of 3 users.
    let (_, ingest) = app.key("ingest").await;
    let mut requests = Vec::new();
    for status in [200, 200, 200, 200, 201, 404, 204, 500, 503, 502] {
        requests.push(json!({"service": "shop", "method": "POST", "route": "/checkout", "status": status, "duration_ms": 12.0, "user_id": "u1"}));
    }
    let res = app
        .post_json(
            "/api/ingest/requests",
            Some(&ingest),
            &Value::Array(requests),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = json!([
        {"event": "checkout_error", "user_id": "u1", "properties": {"message": "card declined"}},
        {"event": "checkout_error", "user_id": "u1"},
        {"event": "$exception", "user_id": "u2"},
        {"event": "error", "user_id": "u3"},
        {"event": "page_view", "user_id": "u4"},
    ]);
    let res = app
        .post_json("/api/ingest/events", Some(&ingest), &events)
        .await;
    assert_eq!(res.status(), 200);

    // Through the statuses, with updates; then resolved.
    for status in ["identified", "monitoring"] {
        let res = send(
            &app,
            reqwest::Method::PATCH,
            &format!("/api/incidents/{id}"),
            &json!({"status": status}),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let res = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/incidents/{id}/timeline"),
        &json!({"message": "Rolled back the payment client."}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/incidents/{id}"),
        &json!({"status": "resolved", "root_cause": "A bad deploy", "resolution": "Rollback"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let resolved: Value = res.json().await.unwrap();
    assert!(resolved["resolved_at"].is_string());
    assert!(resolved["identified_at"].is_string() && resolved["monitoring_at"].is_string());

    let d: Value = app
        .get(&format!("/api/incidents/{id}"), Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let impact = &d["impact"];
    assert_eq!(impact["requests_total"], 10, "{impact}");
    assert_eq!(impact["requests_failed"], 3, "{impact}");
    assert_eq!(impact["failed_percent"], 30.0);
    assert_eq!(impact["users_affected"], 3, "{impact}");
    assert_eq!(impact["error_events"], 4);
    assert_eq!(d["root_cause"], "A bad deploy");
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "update",
            "status_change",
            "status_change",
            "update",
            "status_change"
        ]
    );
    assert_eq!(
        d["timeline"][1]["message"],
        "Status changed from investigating to identified"
    );
    assert_eq!(d["timeline"][3]["author"], "key:LIFTOFF_ADMIN_TOKEN");

    // Another incident's window that has no data shows none.
    let other: Value = app
        .get(
            &format!("/api/incidents/{}", b["id"].as_str().unwrap()),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(other["impact"]["requests_total"].as_u64().unwrap() <= 10);

    // Postmortem and action items.
    let pm = json!({"summary": "Checkout failed for 3 minutes.", "what_went_well": "Alert fired at once.",
                    "what_could_be_improved": "Canary the payment client.", "lessons": "Roll out gradually."});
    let res = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/incidents/{id}/postmortem"),
        &pm,
    )
    .await;
    assert_eq!(res.status(), 200);
    let got: Value = app
        .get(
            &format!("/api/incidents/{id}/postmortem"),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, pm);
    let res = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/incidents/{id}/action-items"),
        &json!({"title": "Add a canary stage", "owner": "ada", "due_date": "2026-12-01"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let item: Value = res.json().await.unwrap();
    assert_eq!(
        (item["id"].as_i64(), item["done"].as_bool()),
        (Some(1), Some(false))
    );
    let res = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/incidents/{id}/action-items/1"),
        &json!({"done": true}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["done"], true);
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/incidents/{id}/action-items/1"),
        &json!({}),
    )
    .await;
    assert_eq!(res.status(), 204);
    problem(
        send(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/incidents/{id}/action-items/1"),
            &json!({}),
        )
        .await,
        404,
    )
    .await;

    // The SLA of this month counts the resolved critical incident only.
    let month = format!("{year}-{:02}", Utc::now().month());
    let sla: Value = app
        .get(
            &format!("/api/incidents/sla?month={month}&target=99.9"),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sla["incidents"].as_array().unwrap().len(), 1, "{sla}");
    assert!(sla["downtime_minutes"].as_f64().unwrap() >= 3.0);
    assert_eq!(sla["met"], true);

    // Bad input.
    for (body, status) in [
        (json!({"status": "fixed"}), 422),
        (json!({"title": ""}), 422),
        (json!({"severity": "huge"}), 422),
        (json!({"started_at": "2999-01-01T00:00:00Z"}), 422),
    ] {
        problem(
            send(
                &app,
                reqwest::Method::PATCH,
                &format!("/api/incidents/{id}"),
                &body,
            )
            .await,
            status,
        )
        .await;
    }
    problem(
        app.post_json(
            "/api/incidents",
            Some(ADMIN_TOKEN),
            &json!({"title": "x", "severity": "sev1"}),
        )
        .await,
        422,
    )
    .await;
    problem(
        app.get("/api/incidents/INC-1999-001", Some(ADMIN_TOKEN))
            .await,
        404,
    )
    .await;
    problem(
        app.get("/api/incidents/sla?month=2026-13", Some(ADMIN_TOKEN))
            .await,
        422,
    )
    .await;
    problem(app.get("/api/incidents", None).await, 401).await;
    app.shutdown().await;
}

/// A firing critical alert opens an incident; its later transitions join that incident's
/// timeline; a warning opens nothing.
#[tokio::test]
async fn critical_alerts_open_incidents_and_their_transitions_join_them() {
    use liftoff_core::alerts::hooks::{AlertListener, AlertStatus, AlertTransition, Severity};
    let dir = tempfile::tempdir().unwrap();
    let stores = liftoff_store::open_stores(None, None, dir.path())
        .await
        .unwrap();
    let service = liftoff_core::incidents::IncidentsService::new(
        stores.state.clone(),
        stores.metrics.clone(),
        stores.events.clone(),
    );
    let listener: Arc<dyn AlertListener> = Arc::new(service.clone());
    let t = |rule_id: i64, severity, status| AlertTransition {
        alert_id: rule_id * 10,
        rule_id,
        rule_name: format!("Error rate above 5% (rule {rule_id})"),
        severity,
        status,
        at: Utc::now(),
        summary: "error rate 12%".into(),
        value: 0.12,
        labels: Default::default(),
    };
    listener
        .on_transition(&t(2, Severity::Warning, AlertStatus::Firing))
        .await;
    assert!(service.list().await.unwrap().is_empty());
    listener
        .on_transition(&t(1, Severity::Critical, AlertStatus::Pending))
        .await;
    assert!(service.list().await.unwrap().is_empty());
    listener
        .on_transition(&t(1, Severity::Critical, AlertStatus::Firing))
        .await;
    let list = service.list().await.unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(i.title, "Error rate above 5% (rule 1)");
    assert_eq!(
        i.severity,
        liftoff_core::incidents::IncidentSeverity::Critical
    );
    assert_eq!(
        i.status,
        liftoff_core::incidents::IncidentStatus::Investigating
    );
    assert!(i.auto_opened);
    listener
        .on_transition(&t(1, Severity::Critical, AlertStatus::Resolved))
        .await;
    let i = service.get(&i.id).await.unwrap();
    let messages: Vec<&str> = i.timeline.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "[FIRING] Error rate above 5% (rule 1): error rate 12%",
            "[RESOLVED] Error rate above 5% (rule 1): error rate 12%"
        ]
    );
    assert!(i.timeline.iter().all(|e| e.alert_id == Some(10)));
    // Firing again while the incident is open joins it rather than opening another.
    listener
        .on_transition(&t(1, Severity::Critical, AlertStatus::Firing))
        .await;
    assert_eq!(service.list().await.unwrap().len(), 1);
}

/// The dashboard's incident and uptime pages render, and the postmortem editor saves with the
/// session's CSRF token (and refuses without it).
#[tokio::test]
async fn dashboard_pages_and_the_postmortem_editor() {
    use crate::harness::ADMIN_PASSWORD;
    let app = spawn().await;
    let login = app.http.get(app.at("/login")).send().await.unwrap();
    let login_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("liftoff_login_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = login.text().await.unwrap();
    let hidden = |html: &str| {
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let res = app
        .http
        .post(app.at("/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &hidden(&html)),
            ("next", "/incidents"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("liftoff_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = async |path: &str| {
        let res = app
            .http
            .get(app.at(path))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.text().await.unwrap()
    };
    let i = create(&app, &json!({"title": "Login errors", "severity": "major"})).await;
    let id = i["id"].as_str().unwrap();
    assert!(get("/incidents").await.contains(id));
    assert!(get("/uptime").await.contains("No monitors yet"));
    let page = get(&format!("/incidents/{id}")).await;
    assert!(page.contains("Postmortem") && page.contains("Users affected"));
    let csrf = hidden(&page);
    let post = |csrf: String| {
        app.http
            .post(app.at(&format!("/incidents/{id}/postmortem")))
            .header("cookie", &session)
            .form(&[
                ("csrf", csrf.as_str()),
                ("root_cause", "Expired certificate"),
                ("resolution", "Renewed it"),
                ("summary", "Logins failed."),
                ("what_went_well", "Quick rollback"),
                ("what_could_be_improved", "Expiry alerts"),
                ("lessons", "Automate renewal"),
            ])
            .send()
    };
    assert_eq!(post("forged".into()).await.unwrap().status(), 403);
    let res = post(csrf).await.unwrap();
    assert_eq!(res.status(), 303);
    let pm: Value = app
        .get(
            &format!("/api/incidents/{id}/postmortem"),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pm["what_could_be_improved"], "Expiry alerts");
    let page = get(&format!("/incidents/{id}")).await;
    assert!(page.contains("Automate renewal") && page.contains("Expired certificate"));
    app.shutdown().await;
}

/// `liftoff demo`'s incident: resolved, opened by an alert, with updates, status changes,
/// postmortem and action items; and its monitors, one with a downtime period.
#[tokio::test]
async fn the_demo_has_a_resolved_incident_with_a_full_record() {
    use liftoff_core::incidents::{IncidentStatus, TimelineKind};
    let dir = tempfile::tempdir().unwrap();
    let settings = liftoff::config::Settings::from_overrides(liftoff::config::Overrides {
        data: Some(dir.path().to_owned()),
        admin_password: Some(crate::harness::ADMIN_PASSWORD.into()),
        ..Default::default()
    })
    .unwrap();
    let built = liftoff::startup::build(&settings).await.unwrap();
    liftoff::demo_incidents::seed(&built.state, chrono::Utc::now())
        .await
        .unwrap();
    let list = built.state.incidents.list().await.unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(i.status, IncidentStatus::Resolved);
    assert!(i.auto_opened && i.root_cause.is_some() && !i.postmortem.lessons.is_empty());
    let kinds: Vec<TimelineKind> = i.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&TimelineKind::Alert));
    assert_eq!(kinds.last(), Some(&TimelineKind::StatusChange));
    for k in [TimelineKind::Update, TimelineKind::StatusChange] {
        assert!(kinds.contains(&k));
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == TimelineKind::Alert).count(),
        2
    );
    assert_eq!(i.action_items.len(), 3);
    let monitors = built.state.uptime.list().await.unwrap();
    assert_eq!(monitors.len(), 2);
    let shop = built
        .state
        .uptime
        .detail(monitors[1].id, Utc::now())
        .await
        .unwrap();
    assert_eq!(shop.downtimes.len(), 1);
    assert!(!shop.downtimes[0].ongoing);
    assert!(shop.uptime.h24.unwrap() < 100.0);
}
