//! Analytics queries over HTTP: events ingested through the API come back as funnels,
//! retention, active users, features, paths, milestones, sessions and errors — exact numbers
//! on a small hand-made log, and DuckDB's answers on generated data when it is available.

use std::io::BufRead as _;

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

async fn ingest(app: &TestApp, token: &str, events: Vec<Value>) {
    for chunk in events.chunks(5_000) {
        let res = app
            .post_json(
                "/api/ingest/events",
                Some(token),
                &Value::Array(chunk.to_vec()),
            )
            .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

fn ev(user: &str, event: &str, ts: i64, session: Option<&str>, props: Value) -> Value {
    let mut e = json!({"user_id": user, "event": event, "timestamp": ts, "properties": props});
    if let Some(s) = session {
        e["session_id"] = json!(s);
    }
    e
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Value {
    let res = app.post_json(path, Some(ADMIN_TOKEN), body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn funnels_retention_and_the_rest_from_ingested_events() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let day0 = (now / DAY - 3) * DAY + 10 * 60 * MIN; // three days ago, 10:00 UTC
    let p = json!({"plan": "pro"});
    let f = json!({"plan": "free"});
    let mut events = vec![
        // a: the whole funnel within a day; back on day 1.
        ev("a", "signup", day0, Some("sa"), p.clone()),
        ev("a", "search", day0 + MIN, Some("sa"), p.clone()),
        ev("a", "purchase", day0 + 2 * MIN, Some("sa"), p.clone()),
        ev("a", "search", day0 + DAY, None, p.clone()),
        // b: signs up and searches, never buys.
        ev("b", "signup", day0 + 5 * MIN, None, f.clone()),
        ev("b", "search", day0 + 6 * MIN, None, f.clone()),
        // c: buys two days later: outside a 1-day window, inside the default 14.
        ev("c", "signup", day0 + 10 * MIN, None, f.clone()),
        ev("c", "search", day0 + 11 * MIN, None, f.clone()),
        ev("c", "purchase", day0 + 2 * DAY, None, f.clone()),
        // d: searches without signing up: not in the funnel.
        ev("d", "search", day0 + 20 * MIN, None, f.clone()),
        ev(
            "d",
            "$exception",
            day0 + 21 * MIN,
            None,
            json!({"$exception_type": "TypeError", "$exception_message": "x is undefined"}),
        ),
    ];
    // e: active right now.
    events.push(ev("e", "page_view", now - MIN, None, json!({})));
    ingest(&app, &token, events).await;

    let steps = json!(["signup", "search", "purchase"]);
    let wide = post(
        &app,
        "/api/analytics/funnel",
        &json!({"funnel_steps": steps, "days": 7}),
    )
    .await;
    let users: Vec<u64> = wide["analysis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, vec![3, 3, 2], "{wide}");
    assert_eq!(wide["conversion_window_days"], 14.0);
    assert_eq!(wide["analysis"][0]["conversion_rate"], 1.0);
    assert_eq!(wide["analysis"][1]["conversion_rate"], 1.0);
    assert_eq!(wide["analysis"][2]["conversion_rate"], 0.6667);
    assert_eq!(wide["analysis"][2]["dropoff_rate"], 0.3333);
    assert_eq!(wide["overall_conversion"], 0.6667);
    let narrow = post(
        &app,
        "/api/analytics/funnel",
        &json!({"funnel_steps": steps, "days": 7, "conversion_window_days": 1, "breakdown": "plan"}),
    )
    .await;
    assert_eq!(
        narrow["analysis"][2]["users"], 1,
        "c bought after the window: {narrow}"
    );
    let by_plan = narrow["breakdown"].as_array().unwrap();
    let pro = by_plan.iter().find(|b| b["value"] == "pro").unwrap();
    assert_eq!(pro["analysis"][2]["users"], 1);
    let free = by_plan.iter().find(|b| b["value"] == "free").unwrap();
    assert_eq!(free["analysis"][0]["users"], 2);

    let retention = post(&app, "/api/analytics/retention", &json!({"days": 7})).await;
    let cohort = retention["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["size"] == 4)
        .expect("a, b, c and d were first seen on day 0");
    assert_eq!(cohort["retention"][0], 1.0);
    assert_eq!(
        cohort["retention"][1], 0.25,
        "a came back on day 1: {cohort}"
    );
    assert_eq!(cohort["retention"][2], 0.25, "c came back on day 2");

    let active = get(&app, "/api/analytics/active-users?minutes=5").await;
    assert_eq!(active["active_users"], 1, "{active}");
    assert_eq!(active["mau"], 5);
    assert_eq!(active["daily"].as_array().unwrap().len(), 30);

    let features = get(&app, "/api/analytics/features?days=7&limit=2").await;
    assert_eq!(features["features"][0]["feature"], "search");
    assert_eq!(features["features"][0]["usage_count"], 5);
    assert_eq!(features["features"][0]["unique_users"], 4);
    assert_eq!(features["features"].as_array().unwrap().len(), 2);

    let paths = get(&app, "/api/analytics/paths?days=7").await;
    let signup_search = paths["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["from"] == "signup" && t["to"] == "search")
        .unwrap();
    assert_eq!(signup_search["count"], 3);

    let milestones = get(&app, "/api/analytics/milestones?days=7").await;
    assert_eq!(milestones["total_users"], 5);
    let purchase = milestones["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event"] == "purchase")
        .unwrap();
    assert_eq!(purchase["users"], 2);
    assert_eq!(purchase["share"], 0.4);

    let session = get(&app, "/api/analytics/session/sa").await;
    assert_eq!(session["event_count"], 3);
    assert_eq!(session["duration_seconds"], 120.0);
    assert_eq!(session["events"][2]["event"], "purchase");
    assert_eq!(session["events"][0]["properties"]["plan"], "pro");
    assert_eq!(
        get(&app, "/api/analytics/session/nope").await,
        json!({"found": false})
    );

    let errors = get(&app, "/api/analytics/errors?hours=96").await;
    assert_eq!(errors["total_errors"], 1);
    assert_eq!(errors["by_type"]["TypeError"], 1);
    assert_eq!(errors["recent"][0]["message"], "x is undefined");

    let nvr = get(&app, "/api/analytics/new-vs-returning?days=7").await;
    let new: u64 = nvr
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["new"].as_u64().unwrap())
        .sum();
    assert_eq!(new, 5, "{nvr}");

    let sessions = get(&app, "/api/analytics/sessions?days=7").await;
    assert!(sessions["sessions"].as_u64().unwrap() >= 5, "{sessions}");

    // Bad queries are problem documents.
    for body in [
        json!({"funnel_steps": ["only"]}),
        json!({"funnel_steps": ["a", "b"], "conversion_window_days": -1}),
        json!({"funnel_steps": ["a", "b"], "days": 0}),
        json!({"funnel_steps": ["a", ""]}),
    ] {
        problem(
            app.post_json("/api/analytics/funnel", Some(ADMIN_TOKEN), &body)
                .await,
            422,
        )
        .await;
    }
    for path in [
        "/api/analytics/active-users?minutes=0",
        "/api/analytics/features?limit=0",
        "/api/analytics/new-vs-returning?bucket=year",
        "/api/analytics/errors?hours=-1",
    ] {
        problem(app.get(path, Some(ADMIN_TOKEN)).await, 400).await;
    }
    let (_, ingest_only) = app.key("ingest").await;
    problem(
        app.get("/api/analytics/active-users", Some(&ingest_only))
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn erasing_a_person_removes_them_from_the_answers() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    ingest(
        &app,
        &token,
        vec![
            ev("x", "signup", now - 10 * MIN, None, json!({})),
            ev("x", "purchase", now - 9 * MIN, None, json!({})),
            ev("y", "signup", now - 8 * MIN, None, json!({})),
        ],
    )
    .await;
    let body = json!({"funnel_steps": ["signup", "purchase"], "days": 1});
    let before = post(&app, "/api/analytics/funnel", &body).await;
    assert_eq!(before["analysis"][1]["users"], 1);
    let res = app
        .http
        .delete(app.at("/api/analytics/user/x"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let after = post(&app, "/api/analytics/funnel", &body).await;
    assert_eq!(after["analysis"][0]["users"], 1, "{after}");
    assert_eq!(after["analysis"][1]["users"], 0);
}

/// DuckDB's answers on generated data (`bench/analytics/prepare.sh small DIR`), through the
/// whole server: ingest over HTTP, then the funnel and sessions come back equal.
#[tokio::test]
async fn generated_data_gives_duckdbs_answers_over_http() {
    let Ok(dir) = std::env::var("LIFTOFF_TEST_ANALYTICS_DATA") else {
        assert!(
            std::env::var("LIFTOFF_TEST_REQUIRE_ANALYTICS_DATA").is_err(),
            "LIFTOFF_TEST_ANALYTICS_DATA is unset: run bench/analytics/prepare.sh small target/analytics-small"
        );
        eprintln!("skipped: LIFTOFF_TEST_ANALYTICS_DATA is unset");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let file = std::fs::File::open(dir.join("events.ndjson.gz")).unwrap();
    let lines = std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines();
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let mut batch = Vec::new();
    let mut n = 0;
    for line in lines {
        let row: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let props: Value = serde_json::from_str(row["properties"].as_str().unwrap()).unwrap();
        batch.push(json!({
            "user_id": row["user_id"], "session_id": row["session_id"], "event": row["event"],
            "timestamp": row["ts"], "properties": props
        }));
        n += 1;
        if batch.len() == 5_000 {
            ingest(&app, &token, std::mem::take(&mut batch)).await;
        }
    }
    ingest(&app, &token, batch).await;
    assert_eq!(n, expected["events"].as_u64().unwrap());
    let funnel = post(
        &app,
        "/api/analytics/funnel",
        &json!({"funnel_steps": ["signup", "search", "view_item", "purchase"],
                "days": 3650, "conversion_window_days": 7}),
    )
    .await;
    let users: Vec<Value> = funnel["analysis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].clone())
        .collect();
    assert_eq!(Value::Array(users), expected["funnel"], "{funnel}");
    let sessions = get(&app, "/api/analytics/sessions?days=3650").await;
    assert_eq!(sessions["sessions"], expected["sessions"][0]);

    // Sealed into day segments, the answers stay the same (ClickHouse seals nothing).
    if crate::harness::events_in_clickhouse(
        "generated_data_gives_duckdbs_answers_over_http, sealed",
    ) {
        return;
    }
    let sealed = app
        .state
        .events
        .seal_finished_days(chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(sealed, n);
    app.state.insights.refresh_soon().await;
    let again = post(
        &app,
        "/api/analytics/funnel",
        &json!({"funnel_steps": ["signup", "search", "view_item", "purchase"],
                "days": 3650, "conversion_window_days": 7}),
    )
    .await;
    assert_eq!(again["analysis"], funnel["analysis"]);
    let sessions = get(&app, "/api/analytics/sessions?days=3650").await;
    assert_eq!(sessions["sessions"], expected["sessions"][0]);
}

/// Finished days sealed into segments answer exactly as rows did: queries, the user page,
/// errors, export and erasure all see them, and a retry of a sealed event stays a duplicate.
#[tokio::test]
async fn sealed_days_answer_as_rows_did() {
    if crate::harness::events_in_clickhouse("sealed_days_answer_as_rows_did") {
        return;
    }
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let day0 = (now / DAY - 3) * DAY + 10 * 60 * MIN;
    let mut events = vec![
        ev("a", "signup", day0, None, json!({})),
        ev("a", "search", day0 + MIN, None, json!({})),
        ev(
            "a",
            "error",
            day0 + 2 * MIN,
            None,
            json!({"error_type": "Timeout"}),
        ),
        ev("b", "signup", day0 + DAY, None, json!({})),
        ev("a", "purchase", day0 + DAY + MIN, None, json!({})),
    ];
    events[0]["uuid"] = json!("00000000-0000-4000-8000-000000000001");
    events.push(ev("b", "search", now - MIN, None, json!({})));
    ingest(&app, &token, events.clone()).await;
    let funnel = json!({"funnel_steps": ["signup", "search", "purchase"], "days": 7});
    let before = post(&app, "/api/analytics/funnel", &funnel).await;
    let retention_before = post(&app, "/api/analytics/retention", &json!({"days": 7})).await;

    let sealed = app.state.events.seal_finished_days(now).await.unwrap();
    assert_eq!(sealed, 5, "the two finished days, not today");
    app.state.insights.refresh_soon().await;
    let after = post(&app, "/api/analytics/funnel", &funnel).await;
    assert_eq!(after["analysis"], before["analysis"]);
    assert_eq!(
        post(&app, "/api/analytics/retention", &json!({"days": 7})).await,
        retention_before
    );
    let user = get(&app, "/api/analytics/user/a?days=7").await;
    assert_eq!(user["total_events"], 4, "{user}");
    let errors = get(&app, "/api/analytics/errors?hours=120").await;
    assert_eq!(errors["by_type"]["Timeout"], 1);
    let export = app
        .get("/api/analytics/export?format=json", Some(ADMIN_TOKEN))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(export.as_array().unwrap().len(), 6, "{export}");
    let csv = app
        .get("/api/analytics/export?format=csv", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 7, "header and six rows");

    // A retry of a sealed event is a duplicate.
    let res = app
        .post_json(
            "/api/ingest/events",
            Some(&token),
            &Value::Array(vec![events[0].clone()]),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["duplicates"], 1);

    // Erasure reaches into the sealed days.
    app.http
        .delete(app.at("/api/analytics/user/a"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let gone = get(&app, "/api/analytics/user/a?days=7").await;
    assert_eq!(gone["total_events"], 0, "{gone}");
    let export = app
        .get("/api/analytics/export?format=ndjson", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(export.lines().count(), 2, "b's two events: {export}");
}
