//! Product-event capture over real HTTP: native ingest, every PostHog payload shape and
//! encoding, persons, idempotent retries, bad input refused whole, export and erasure.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn uuid(n: u32) -> String {
    format!("0190c3d2-7a4b-7c00-8000-{n:012x}")
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.http.post(app.at(path)).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn user(app: &TestApp, id: &str) -> Value {
    let res = app
        .get(
            &format!("/api/analytics/user/{id}?days=30"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn export(app: &TestApp, format: &str) -> String {
    let res = app
        .get(
            &format!("/api/analytics/export?format={format}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn stored_count(app: &TestApp) -> usize {
    export(app, "ndjson").await.lines().count()
}

#[tokio::test]
async fn native_ingest_is_idempotent_on_uuid_and_counted() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let now = chrono::Utc::now().timestamp_millis();
    let batch = json!([
        {"event": "signup", "user_id": "u1", "uuid": uuid(1), "timestamp": now - 60_000, "properties": {"plan": "pro"}},
        {"event": "view", "user_id": "u1", "uuid": uuid(2), "session_id": "s1", "timestamp": now - 30_000},
        {"event": "view", "distinct_id": "u1", "uuid": uuid(3), "session_id": "s1"},
    ]);
    let res = app
        .post_json("/api/ingest/events", Some(&ingest), &batch)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 3, "duplicates": 0})
    );
    // A retry (the client never saw the answer), wrapped, with one new event.
    let mut retry = batch.as_array().unwrap().clone();
    retry.push(json!({"event": "buy", "user_id": "u1", "uuid": uuid(4)}));
    let res = app
        .post_json(
            "/api/ingest/events",
            Some(&ingest),
            &json!({"events": retry}),
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 3})
    );

    let u = user(&app, "u1").await;
    assert_eq!(u["total_events"], 4);
    assert_eq!(u["event_counts"], json!({"signup": 1, "view": 2, "buy": 1}));
    assert_eq!(u["recent_events"][0]["event"], "buy");
    assert_eq!(u["recent_events"][3]["uuid"], uuid(1));
    assert_eq!(u["recent_events"][3]["properties"], json!({"plan": "pro"}));
    let sessions = u["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let named: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["session_id"] == "s1")
        .collect();
    assert_eq!(named[0]["events"], 2);
    assert!(u["person"]["first_seen"].as_str().is_some());

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("liftoff_events_ingested_total 4\n"),
        "{metrics}"
    );
    assert!(metrics.contains("liftoff_events_duplicate_total 3\n"));
    assert!(metrics.contains("liftoff_events_rejected_total 0\n"));
    // Scopes: ingest sends, read reads, and neither erases.
    let (_, read) = app.key("read").await;
    problem(
        app.post_json("/api/ingest/events", Some(&read), &batch)
            .await,
        403,
    )
    .await;
    problem(app.get("/api/analytics/user/u1", Some(&ingest)).await, 403).await;
    let res = app
        .http
        .delete(app.at("/api/analytics/user/u1"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
}

#[tokio::test]
async fn every_posthog_shape_and_encoding_is_stored() {
    let app = spawn().await;
    let (_, key) = app.key("ingest").await;
    let ev = |n: u32| json!({"event": format!("e{n}"), "distinct_id": "ph", "uuid": uuid(100 + n), "properties": {"n": n}});
    let json_ct = [("content-type", "application/json")];

    // One event object, the key in the body.
    let mut single = ev(1);
    single["api_key"] = json!(key);
    let res = post_raw(&app, "/capture/", single.to_string().into_bytes(), &json_ct).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], 1);
    // An array, the key as each event's `token` (posthog-js puts it in properties).
    let mut a = ev(2);
    a["properties"]["token"] = json!(key);
    let res = post_raw(
        &app,
        "/e",
        json!([a, ev(3)]).to_string().into_bytes(),
        &json_ct,
    )
    .await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": 1, "accepted": 2, "duplicates": 0})
    );
    // The batch envelope (posthog-python), plain and with Content-Encoding: gzip.
    let env = |events: Vec<Value>| json!({"api_key": key, "batch": events, "sent_at": chrono::Utc::now().to_rfc3339()});
    let res = post_raw(
        &app,
        "/batch/",
        env(vec![ev(4), ev(5)]).to_string().into_bytes(),
        &json_ct,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post_raw(
        &app,
        "/batch",
        gzip(env(vec![ev(6)]).to_string().as_bytes()),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    // posthog-js: ?compression=gzip-js with a gzip body, and base64 bodies.
    let res = post_raw(
        &app,
        "/e/?compression=gzip-js&ver=1.0",
        gzip(env(vec![ev(7)]).to_string().as_bytes()),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post_raw(
        &app,
        "/i/v0/e/?compression=base64",
        base64(env(vec![ev(8)]).to_string().as_bytes()).into_bytes(),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post_raw(
        &app,
        "/i/v0/e",
        base64(env(vec![ev(9)]).to_string().as_bytes()).into_bytes(),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    // Form bodies: data=<base64> with a compression field, and data=<json>; key in the query.
    let form = format!(
        "data={}&compression=base64",
        form_escape(&base64(env(vec![ev(10)]).to_string().as_bytes()))
    );
    let form_ct = [("content-type", "application/x-www-form-urlencoded")];
    let res = post_raw(&app, "/e/", form.into_bytes(), &form_ct).await;
    assert_eq!(res.status(), 200);
    let form = format!("data={}", form_escape(&json!([ev(11)]).to_string()));
    let res = post_raw(
        &app,
        &format!("/capture?api_key={key}"),
        form.into_bytes(),
        &form_ct,
    )
    .await;
    assert_eq!(res.status(), 200);

    let u = user(&app, "ph").await;
    assert_eq!(u["total_events"], 11);
    let counts = u["event_counts"].as_object().unwrap();
    assert_eq!(counts.len(), 11);
    assert!(counts.values().all(|n| *n == 1));
    // Stored once each, with properties as sent and the key not kept.
    let lines = export(&app, "ndjson").await;
    assert_eq!(lines.lines().count(), 11);
    assert!(!lines.contains(&key));
}

#[tokio::test]
async fn identify_set_and_set_once_update_the_person() {
    let app = spawn().await;
    let (_, key) = app.key("ingest").await;
    let now = chrono::Utc::now();
    let t = |s: i64| (now - chrono::Duration::seconds(s)).to_rfc3339();
    let batch = json!({"api_key": key, "sent_at": now.to_rfc3339(), "batch": [
        {"event": "pageview", "distinct_id": "anon-7", "timestamp": t(300), "properties": {"$set_once": {"landing": "/pricing"}, "$set": {"utm": "ad"}}},
        // What posthog-python's identify() sends: $set at the top level.
        {"event": "$identify", "distinct_id": "ada", "timestamp": t(200), "$set": {"email": "ada@x", "plan": "free"},
         "properties": {"$anon_distinct_id": "anon-7"}},
        {"event": "$set", "distinct_id": "ada", "timestamp": t(100), "$set": {"plan": "pro"}},
        {"event": "signup", "distinct_id": "ada", "timestamp": t(50), "properties": {"$set_once": {"plan": "never", "first_plan": "pro"}, "$session_id": "sess-1"}},
    ]});
    let res = app.post_json("/batch/", None, &batch).await;
    assert_eq!(res.status(), 200);
    let u = user(&app, "ada").await;
    assert_eq!(
        u["person"]["properties"],
        json!({"email": "ada@x", "plan": "pro", "first_plan": "pro", "landing": "/pricing", "utm": "ad"})
    );
    assert_eq!(
        u["event_counts"],
        json!({"$identify": 1, "$set": 1, "signup": 1})
    );
    // First seen comes from the anonymous person merged in by $identify.
    let first =
        chrono::DateTime::parse_from_rfc3339(u["person"]["first_seen"].as_str().unwrap()).unwrap();
    assert!(
        (first.timestamp() - (now.timestamp() - 300)).abs() <= 1,
        "{first}"
    );
    let last =
        chrono::DateTime::parse_from_rfc3339(u["person"]["last_seen"].as_str().unwrap()).unwrap();
    assert!(
        (last.timestamp() - (now.timestamp() - 50)).abs() <= 1,
        "{last}"
    );
    assert!(
        u["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == "sess-1" && s["events"] == 1)
    );
    assert_eq!(user(&app, "anon-7").await["total_events"], 1);
}

#[tokio::test]
async fn bad_input_is_refused_whole_and_earlier_events_stay() {
    let app = spawn().await;
    let (_, key) = app.key("ingest").await;
    let good = json!([{"event": "ok", "user_id": "g", "uuid": uuid(1)}, {"event": "ok", "user_id": "g", "uuid": uuid(2)}]);
    assert_eq!(
        app.post_json("/api/ingest/events", Some(&key), &good)
            .await
            .status(),
        200
    );
    let native = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move { app.post_json("/api/ingest/events", Some(&key), &body).await }
    };
    // A good event beside a bad one: neither is stored.
    let p = problem(
        native(json!([{"event": "fine", "user_id": "g"}, {"user_id": "g"}])).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("event 1"), "{p}");
    let big = json!([{"event": "fine", "user_id": "g"}, {"event": "x", "user_id": "g", "properties": {"blob": "x".repeat(1_000_000)}}]);
    let p = problem(native(big).await, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("properties.blob"),
        "{p}"
    );
    let p = problem(
        native(json!([{"event": "x", "user_id": "g", "timestamp": "not a time"}])).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("timestamp"), "{p}");
    problem(
        native(json!([{"event": "x", "user_id": "g", "timestamp": "2999-01-01T00:00:00Z"}])).await,
        422,
    )
    .await;
    let mut deep = json!(1);
    for _ in 0..11 {
        deep = json!({"a": deep});
    }
    let p = problem(
        native(json!([{"event": "x", "user_id": "g", "properties": deep}])).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("levels deep"), "{p}");
    // 100,000 levels: the parser refuses it (no stack overflow), on both kinds of route.
    let nested = format!(
        "[{{\"event\":\"x\",\"user_id\":\"g\",\"properties\":{{\"a\":{}{}}}}}]",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let res = post_raw(
        &app,
        "/api/ingest/events",
        nested.clone().into_bytes(),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {key}")),
        ],
    )
    .await;
    problem(res, 400).await;
    let res = post_raw(
        &app,
        &format!("/batch/?api_key={key}"),
        nested.into_bytes(),
        &[],
    )
    .await;
    problem(res, 400).await;

    // PostHog: a wrong key, a missing event name, corrupt gzip, a gzip bomb.
    let env = |key: &str, events: Value| json!({"api_key": key, "batch": events});
    let p = problem(
        app.post_json(
            "/batch/",
            None,
            &env(
                "phc_not_a_liftoff_key",
                json!([{"event": "x", "distinct_id": "g"}]),
            ),
        )
        .await,
        401,
    )
    .await;
    assert_eq!(p["code"], "invalid_api_key");
    problem(
        app.post_json(
            "/capture/",
            None,
            &json!({"event": "x", "distinct_id": "g"}),
        )
        .await,
        401,
    )
    .await;
    let p = problem(
        app.post_json(
            "/batch/",
            None,
            &env(
                &key,
                json!([{"event": "a", "distinct_id": "g"}, {"distinct_id": "g"}]),
            ),
        )
        .await,
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("missing `event`"),
        "{p}"
    );
    let mut corrupt = gzip(
        env(&key, json!([{"event": "x", "distinct_id": "g"}]))
            .to_string()
            .as_bytes(),
    );
    let mid = corrupt.len() / 2;
    corrupt[mid..].iter_mut().for_each(|b| *b = !*b);
    let res = post_raw(
        &app,
        &format!("/batch/?api_key={key}"),
        corrupt,
        &[("content-encoding", "gzip")],
    )
    .await;
    problem(res, 400).await;
    let res = post_raw(
        &app,
        &format!("/e/?compression=gzip-js&api_key={key}"),
        b"not gzip at all".to_vec(),
        &[],
    )
    .await;
    problem(res, 400).await;
    let bomb = gzip(&vec![b' '; 30 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "the bomb fits under the body limit: {}",
        bomb.len()
    );
    let res = post_raw(
        &app,
        &format!("/batch/?api_key={key}"),
        bomb,
        &[("content-encoding", "gzip")],
    )
    .await;
    problem(res, 413).await;

    assert_eq!(
        stored_count(&app).await,
        2,
        "only the first good batch is stored"
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let rejected: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("liftoff_events_rejected_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rejected, 2 + 2 + 1 + 1 + 1 + 2, "events of refused batches");
}

/// A minimal RFC 4180 reader: quoted fields with doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn export_round_trips_in_every_format_and_erase_removes_a_person() {
    let app = spawn().await;
    let (_, key) = app.key("ingest").await;
    let base = chrono::Utc::now().timestamp_millis() - 3_600_000;
    // 2,500 events: more than two export pages.
    let sent: Vec<Value> = (0..2_500u32)
        .map(|i| {
            json!({"event": if i % 3 == 0 { "a,b \"quoted\"" } else { "plain" },
                   "user_id": format!("user-{}", i % 7),
                   "session_id": if i % 2 == 0 { Value::Null } else { json!("s,1 \"x\"") },
                   "timestamp": base + i64::from(i),
                   "uuid": uuid(i),
                   "properties": {"i": i, "text": "comma, \"quote\"\nnewline"}})
        })
        .collect();
    for chunk in sent.chunks(1_000) {
        let res = app
            .post_json("/api/ingest/events", Some(&key), &json!(chunk))
            .await;
        assert_eq!(res.status(), 200);
    }
    let want: Vec<(String, i64, String, Option<String>, String, Value)> = sent
        .iter()
        .map(|e| {
            (
                e["uuid"].as_str().unwrap().to_owned(),
                e["timestamp"].as_i64().unwrap(),
                e["user_id"].as_str().unwrap().to_owned(),
                e["session_id"].as_str().map(str::to_owned),
                e["event"].as_str().unwrap().to_owned(),
                e["properties"].clone(),
            )
        })
        .collect();

    let ndjson: Vec<_> = export(&app, "ndjson")
        .await
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["uuid"].as_str().unwrap().to_owned(),
                v["ts"].as_i64().unwrap(),
                v["user_id"].as_str().unwrap().to_owned(),
                v["session_id"].as_str().map(str::to_owned),
                v["event"].as_str().unwrap().to_owned(),
                serde_json::from_str::<Value>(v["properties"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(ndjson, want);
    let json_rows: Vec<Value> = serde_json::from_str(&export(&app, "json").await).unwrap();
    let json_rows: Vec<_> = json_rows
        .iter()
        .map(|v| {
            (
                v["uuid"].as_str().unwrap().to_owned(),
                v["ts"].as_i64().unwrap(),
                v["user_id"].as_str().unwrap().to_owned(),
                v["session_id"].as_str().map(str::to_owned),
                v["event"].as_str().unwrap().to_owned(),
                v["properties"].clone(),
            )
        })
        .collect();
    assert_eq!(json_rows, want);
    let csv = parse_csv(&export(&app, "csv").await);
    assert_eq!(
        csv[0],
        [
            "uuid",
            "ts",
            "timestamp",
            "user_id",
            "session_id",
            "event",
            "properties"
        ]
    );
    let csv_rows: Vec<_> = csv[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 7, "{r:?}");
            (
                r[0].clone(),
                r[1].parse::<i64>().unwrap(),
                r[3].clone(),
                Some(r[4].clone()).filter(|s| !s.is_empty()),
                r[5].clone(),
                serde_json::from_str::<Value>(&r[6]).unwrap(),
            )
        })
        .collect();
    assert_eq!(csv_rows, want);
    // A time range: from included, to excluded.
    let res = app
        .get(
            &format!(
                "/api/analytics/export?format=ndjson&from={}&to={}",
                base + 10,
                base + 20
            ),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.text().await.unwrap().lines().count(), 10);
    problem(
        app.get("/api/analytics/export?from=soon", Some(ADMIN_TOKEN))
            .await,
        400,
    )
    .await;
    problem(
        app.get("/api/analytics/export?format=xml", Some(ADMIN_TOKEN))
            .await,
        400,
    )
    .await;

    // Erase user-3: 357 of the 2,500 events are theirs (i % 7 == 3).
    let res = app
        .http
        .delete(app.at("/api/analytics/user/user-3"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"user_id": "user-3", "events_deleted": 357, "person_deleted": true})
    );
    let gone = user(&app, "user-3").await;
    assert_eq!(gone["total_events"], 0);
    assert!(gone["person"].is_null());
    assert_eq!(user(&app, "user-4").await["total_events"], 357);
    let left = export(&app, "ndjson").await;
    assert_eq!(left.lines().count(), 2_500 - 357);
    assert!(!left.contains("\"user-3\""));
}

#[tokio::test]
async fn posthog_flags_evaluates_with_person_properties() {
    let app = spawn().await;
    let (_, key) = app.key("ingest").await;
    let res = app
        .post_json(
            "/api/feature-flags",
            Some(ADMIN_TOKEN),
            &json!({"flag_id": "pro-search", "strategy": "user_attribute", "attributes": {"plan": ["pro", "team"]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let ask = |plan: &str| json!({"api_key": key, "distinct_id": "ada", "person_properties": {"plan": plan}});
    for path in ["/flags/?v=2", "/decide/?v=4", "/decide"] {
        let res = app.post_json(path, None, &ask("pro")).await;
        assert_eq!(res.status(), 200, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["flags"]["pro-search"]["enabled"], true, "{v}");
        assert_eq!(v["featureFlags"]["pro-search"], true);
        assert_eq!(v["errorsWhileComputingFlags"], false);
    }
    let v: Value = app
        .post_json("/flags/?v=2", None, &ask("free"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["flags"]["pro-search"]["enabled"], false, "{v}");
    problem(
        app.post_json(
            "/flags/?v=2",
            None,
            &json!({"api_key": "nope", "distinct_id": "ada"}),
        )
        .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn erasure_is_audited_like_every_other_change() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let batch = json!([
        {"event": "signup", "user_id": "gone", "uuid": uuid(900)},
        {"event": "view", "user_id": "gone", "uuid": uuid(901)},
    ]);
    let res = app
        .post_json("/api/ingest/events", Some(&ingest), &batch)
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .delete(app.at("/api/analytics/user/gone"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .get("/api/audit?target_type=person", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    let e = &entries[0];
    assert_eq!(e["action"], "person.erase");
    assert_eq!(e["target_id"], "gone");
    assert!(!e["actor"].as_str().unwrap().is_empty());
    assert_eq!(
        e["after"],
        json!({"events_deleted": 2, "person_deleted": true})
    );
}
