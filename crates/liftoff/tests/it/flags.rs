//! Feature flags over HTTP: the seed endpoints, kill switch, rollouts, OFREP, the SDK feed and
//! stream, the Unleash importer, and bad input.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, postgres_state_url, problem, spawn, spawn_with};

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/api/feature-flags", Some(ADMIN_TOKEN), &body)
        .await
}

async fn check(app: &TestApp, token: &str, flag: &str, user: &str, attrs: Value) -> Value {
    let res = app
        .post_json(
            &format!("/api/feature-flags/{flag}/check"),
            Some(token),
            &json!({"user_id": user, "user_attributes": attrs}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn patch(app: &TestApp, flag: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.at(&format!("/api/feature-flags/{flag}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Create, evaluate, kill, history: the launch-day loop, on any backend.
async fn flag_lifecycle(app: &TestApp) {
    let (_, ingest) = app.key("ingest").await;
    let res = create(
        app,
        json!({"flag_id": "new-checkout", "name": "New checkout", "strategy": "percentage", "percentage": 50,
               "user_whitelist": ["vip"], "user_blacklist": ["troll"], "reason": "launch"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let flag: Value = res.json().await.unwrap();
    assert_eq!(flag["flag_id"], "new-checkout");
    assert_eq!(flag["enabled"], true);
    problem(create(app, json!({"flag_id": "new-checkout"})).await, 409).await;

    let mut on = 0;
    for i in 0..1000 {
        let a = check(
            app,
            &ingest,
            "new-checkout",
            &format!("user-{i}"),
            json!({}),
        )
        .await;
        assert_eq!(a["flag_id"], "new-checkout");
        if a["enabled"] == true {
            on += 1;
            assert_eq!(a["reason"], "TARGETING_MATCH");
            assert_eq!(a["variant"], "on");
        }
    }
    assert!((430..=570).contains(&on), "50% rollout gave {on} of 1000");
    let vip = check(app, &ingest, "new-checkout", "vip", json!({})).await;
    assert_eq!(
        (vip["enabled"].clone(), vip["reason"].clone()),
        (json!(true), json!("TARGETING_MATCH"))
    );
    assert_eq!(
        check(app, &ingest, "new-checkout", "troll", json!({})).await["enabled"],
        false
    );

    // The same user gets the same answer, and raising the rollout keeps everyone who was in.
    let before: Vec<bool> = futures_join(app, &ingest, "new-checkout", 200).await;
    assert_eq!(
        patch(
            app,
            "new-checkout",
            json!({"percentage": 80, "reason": "ramp"})
        )
        .await
        .status(),
        200
    );
    let after = futures_join(app, &ingest, "new-checkout", 200).await;
    assert!(
        before.iter().zip(&after).all(|(b, a)| !b || *a),
        "raising the percentage dropped a user"
    );

    // Kill switch: the next evaluation is off.
    assert_eq!(
        patch(
            app,
            "new-checkout",
            json!({"enabled": false, "reason": "checkout errors"})
        )
        .await
        .status(),
        200
    );
    let off = check(app, &ingest, "new-checkout", "vip", json!({})).await;
    assert_eq!(
        (off["enabled"].clone(), off["reason"].clone()),
        (json!(false), json!("DISABLED"))
    );

    let history: Vec<Value> = app
        .get("/api/feature-flags/new-checkout/history", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let reasons: Vec<&str> = history
        .iter()
        .map(|h| h["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["checkout errors", "ramp", "launch"]);
    assert_eq!(history[0]["before"]["enabled"], true);
    assert_eq!(history[0]["after"]["enabled"], false);

    let only: Vec<Value> = app
        .get("/api/feature-flags?enabled_only=true", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert!(only.is_empty());
}

async fn futures_join(app: &TestApp, token: &str, flag: &str, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(check(app, token, flag, &format!("user-{i}"), json!({})).await["enabled"] == true);
    }
    out
}

#[tokio::test]
async fn flag_lifecycle_on_sqlite() {
    flag_lifecycle(&spawn().await).await;
}

#[tokio::test]
async fn flag_lifecycle_on_postgres() {
    let url = postgres_state_url().await;
    flag_lifecycle(
        &spawn_with(|mut o| {
            o.state_url = Some(url);
            o
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn attributes_variants_environments_and_stats() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    assert_eq!(
        create(&app, json!({"flag_id": "pro-search", "strategy": "user_attribute", "attributes": {"plan": ["pro", "team"]}})).await.status(),
        201
    );
    assert_eq!(
        check(&app, &ingest, "pro-search", "a", json!({"plan": "pro"})).await["enabled"],
        true
    );
    assert_eq!(
        check(&app, &ingest, "pro-search", "a", json!({"plan": "free"})).await["enabled"],
        false
    );

    assert_eq!(
        create(&app, json!({"flag_id": "button-color", "variants": [
            {"name": "blue", "weight": 50, "payload": {"hex": "#00f"}}, {"name": "green", "weight": 50}],
            "environments": {"staging": {"enabled": false}}})).await.status(),
        201
    );
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..400 {
        let a = check(&app, &ingest, "button-color", &format!("u{i}"), json!({})).await;
        assert_eq!(a["reason"], "SPLIT");
        if a["variant"] == "blue" {
            assert_eq!(a["payload"], json!({"hex": "#00f"}));
        }
        *seen
            .entry(a["variant"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| (150..=250).contains(n)), "{seen:?}");
    let staging = app
        .post_json(
            "/api/feature-flags/button-color/check?environment=staging",
            Some(&ingest),
            &json!({"user_id": "u1"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(staging["enabled"], false, "off in staging only");
    problem(
        app.post_json(
            "/api/feature-flags/nope/check",
            Some(&ingest),
            &json!({"user_id": "u1"}),
        )
        .await,
        404,
    )
    .await;

    let user: Value = app
        .get("/api/feature-flags/user/u1", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user, json!({"button-color": true, "pro-search": false}));
    let stats: Value = app
        .get("/api/feature-flags/stats", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_flags"], 2);
    assert_eq!(stats["enabled_flags"], 2);
    assert_eq!(stats["disabled_flags"], 0);
    assert_eq!(stats["strategies"]["user_attribute"], 1);
    assert_eq!(stats["flags"].as_array().unwrap().len(), 2);
    problem(
        app.get("/api/feature-flags/stats", Some(&ingest)).await,
        403,
    )
    .await;
}

#[tokio::test]
async fn gradual_rollout_plans() {
    let app = spawn().await;
    create(
        &app,
        json!({"flag_id": "search-v2", "strategy": "percentage", "percentage": 10}),
    )
    .await;
    let manual: Value = app
        .post_json(
            "/api/feature-flags/search-v2/gradual-rollout",
            Some(ADMIN_TOKEN),
            &json!({"target_percentage": 50, "increment": 15}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(manual["current_percentage"], 10.0);
    assert_eq!(manual["steps"], json!([25.0, 40.0, 50.0]));
    assert_eq!(manual["total_steps"], 3);
    assert_eq!(manual["mode"], "manual");
    assert!(
        manual["recommendation"]
            .as_str()
            .unwrap()
            .contains("3 steps")
    );

    let scheduled: Value = app
        .post_json(
            "/api/feature-flags/search-v2/gradual-rollout",
            Some(ADMIN_TOKEN),
            &json!({"target_percentage": 100, "increment": 30, "interval_minutes": 60}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scheduled["mode"], "scheduled");
    assert_eq!(scheduled["plan"]["state"], "active");
    let paused: Value = app
        .post_json(
            "/api/feature-flags/search-v2/gradual-rollout/pause?reason=errors",
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (paused["state"].clone(), paused["paused_reason"].clone()),
        (json!("paused"), json!("errors"))
    );
    let resumed: Value = app
        .post_json(
            "/api/feature-flags/search-v2/gradual-rollout/resume",
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["state"], "active");
    let bad = app
        .post_json(
            "/api/feature-flags/search-v2/gradual-rollout",
            Some(ADMIN_TOKEN),
            &json!({"target_percentage": 150, "increment": 0}),
        )
        .await;
    let p = problem(bad, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("target_percentage"));
}

#[tokio::test]
async fn a_rollout_of_a_disabled_flag_is_refused_until_it_is_enabled() {
    let app = spawn().await;
    create(
        &app,
        json!({"flag_id": "dormant", "strategy": "percentage", "percentage": 10, "enabled": false}),
    )
    .await;
    for body in [
        json!({"target_percentage": 50, "increment": 10}),
        json!({"target_percentage": 50, "increment": 10, "interval_minutes": 30}),
    ] {
        let res = app
            .post_json(
                "/api/feature-flags/dormant/gradual-rollout",
                Some(ADMIN_TOKEN),
                &body,
            )
            .await;
        let p = problem(res, 409).await;
        assert_eq!(p["code"], "flag_disabled", "{p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("`dormant` is disabled") && detail.contains("enable it first"),
            "{detail}"
        );
    }
    let plans: Value = app
        .get("/api/feature-flags/dormant", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plans["enabled"], false, "nothing changed: {plans}");
    assert_eq!(plans["percentage"], 10.0);
    let enabled = patch(
        &app,
        "dormant",
        json!({"enabled": true, "reason": "ready for the rollout"}),
    )
    .await;
    assert_eq!(enabled.status(), 200);
    let planned: Value = app
        .post_json(
            "/api/feature-flags/dormant/gradual-rollout",
            Some(ADMIN_TOKEN),
            &json!({"target_percentage": 50, "increment": 10, "interval_minutes": 30}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(planned["mode"], "scheduled");
}

#[tokio::test]
async fn bad_flags_are_refused_and_nothing_is_half_stored() {
    let app = spawn().await;
    create(&app, json!({"flag_id": "good"})).await;
    let unknown_op = json!({"flag_id": "x1", "rules": [{"name": "default", "constraints": [{"contextName": "plan", "operator": "SOUNDS_LIKE", "values": ["pro"]}]}]});
    let p = problem(create(&app, unknown_op).await, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("rules[0]"), "{p}");
    let bad_regex = json!({"flag_id": "x2", "rules": [{"name": "default", "constraints": [{"contextName": "email", "operator": "REGEX", "value": "(unclosed"}]}]});
    problem(create(&app, bad_regex).await, 422).await;
    problem(
        create(
            &app,
            json!({"flag_id": "x3", "strategy": "percentage", "percentage": 150}),
        )
        .await,
        422,
    )
    .await;
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("v{i}"), "weight": 1}))
        .collect();
    let p = problem(
        create(&app, json!({"flag_id": "x4", "variants": many})).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("at most 100"), "{p}");
    problem(create(&app, json!({"flag_id": "x5", "variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]})).await, 422).await;
    problem(create(&app, json!({"flag_id": "has space"})).await, 422).await;
    problem(
        create(
            &app,
            json!({"flag_id": "x6", "dependencies": [{"feature": "missing"}]}),
        )
        .await,
        422,
    )
    .await;
    problem(
        create(&app, json!({"flag_id": "x7", "strategy": "sometimes"})).await,
        422,
    )
    .await;
    let res = app
        .http
        .post(app.at("/api/feature-flags"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    problem(patch(&app, "good", json!({"percentage": -1})).await, 422).await;
    problem(patch(&app, "missing", json!({"enabled": false})).await, 404).await;

    let flags: Vec<Value> = app
        .get("/api/feature-flags", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flags.len(), 1, "only the good flag is stored");
    assert_eq!(
        flags[0]["percentage"], 100.0,
        "the refused patch changed nothing"
    );
    let audit: Value = app
        .get("/api/audit?target_type=flag", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ofrep_single_bulk_and_etag() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    create(
        &app,
        json!({"flag_id": "dark-mode", "strategy": "user_list", "user_whitelist": ["ada"]}),
    )
    .await;
    create(
        &app,
        json!({"flag_id": "theme", "variants": [{"name": "ocean", "weight": 1}]}),
    )
    .await;
    let one: Value = app
        .post_json(
            "/ofrep/v1/evaluate/flags/dark-mode",
            Some(&ingest),
            &json!({"context": {"targetingKey": "ada"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        one,
        json!({"key": "dark-mode", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}})
    );
    let res = app
        .http
        .post(app.at("/ofrep/v1/evaluate/flags/theme"))
        .bearer_auth(&ingest)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a body without context is accepted");
    let theme: Value = res.json().await.unwrap();
    assert_eq!(
        (theme["value"].clone(), theme["variant"].clone()),
        (json!("ocean"), json!("ocean"))
    );
    let missing = app
        .post_json(
            "/ofrep/v1/evaluate/flags/nope",
            Some(&ingest),
            &json!({"context": {}}),
        )
        .await;
    let p = problem(missing, 404).await;
    assert_eq!(p["errorCode"], "FLAG_NOT_FOUND");

    let bulk = app
        .post_json(
            "/ofrep/v1/evaluate/flags",
            Some(&ingest),
            &json!({"context": {"targetingKey": "bob"}}),
        )
        .await;
    let etag = bulk.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = bulk.json().await.unwrap();
    let mut keys: Vec<&str> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    // The app's two flags, then the launch state Liftoff reserves under `liftoff.`.
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.contains(&"liftoff.maintenance") && keys.contains(&"liftoff.admitted"));
    let again = app
        .http
        .post(app.at("/ofrep/v1/evaluate/flags"))
        .bearer_auth(&ingest)
        .header("if-none-match", &etag)
        .json(&json!({"context": {"targetingKey": "bob"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    patch(&app, "dark-mode", json!({"enabled": false})).await;
    let changed = app
        .http
        .post(app.at("/ofrep/v1/evaluate/flags"))
        .bearer_auth(&ingest)
        .header("if-none-match", &etag)
        .json(&json!({"context": {"targetingKey": "bob"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "a flag change invalidates the ETag");
    let malformed = app
        .http
        .post(app.at("/ofrep/v1/evaluate/flags"))
        .bearer_auth(&ingest)
        .body("{nope")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
    problem(
        app.post_json("/ofrep/v1/evaluate/flags", None, &json!({}))
            .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn sdk_feed_and_stream_follow_changes_within_a_second() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    create(&app, json!({"flag_id": "beta"})).await;
    let feed = app.get("/api/sdk/flags", Some(&ingest)).await;
    let etag = feed.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = feed.json().await.unwrap();
    assert_eq!(body["features"][0]["name"], "beta");
    assert_eq!(body["features"][0]["enabled"], true);
    let same = app
        .http
        .get(app.at("/api/sdk/flags"))
        .bearer_auth(&ingest)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 304);

    let mut stream = app
        .http
        .get(app.at("/api/sdk/stream"))
        .bearer_auth(&ingest)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = next_event(&mut stream).await;
    assert!(
        first.contains("event: flags") && first.contains("\"beta\""),
        "{first}"
    );

    let started = Instant::now();
    assert_eq!(
        patch(&app, "beta", json!({"enabled": false}))
            .await
            .status(),
        200
    );
    let update = tokio::time::timeout(Duration::from_secs(1), next_event(&mut stream))
        .await
        .expect("no event within 1 s");
    let elapsed = started.elapsed();
    assert!(update.contains("\"enabled\":false"), "{update}");
    eprintln!("flag change reached the stream in {elapsed:?}");
}

/// Reads one complete SSE event (up to the blank line), skipping keep-alive comments.
async fn next_event(res: &mut reqwest::Response) -> String {
    let mut buf = String::new();
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event = buf[..end].to_owned();
            if event.lines().all(|l| l.starts_with(':')) {
                buf.drain(..end + 2);
                continue;
            }
            return event;
        }
        let chunk = res.chunk().await.unwrap().expect("stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn unleash_import() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/unleash-client-spec");
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("15-global-constraints.json")).unwrap(),
    )
    .unwrap();
    let res = app
        .post_json(
            "/api/import/unleash?reason=migration",
            Some(ADMIN_TOKEN),
            &spec["state"],
        )
        .await;
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert!(!report["created"].as_array().unwrap().is_empty());
    for case in spec["tests"].as_array().unwrap() {
        let ctx = &case["context"];
        let mut attrs = ctx["properties"].as_object().cloned().unwrap_or_default();
        for (k, v) in ctx.as_object().unwrap() {
            if k != "properties" && k != "userId" {
                attrs.insert(k.clone(), v.clone());
            }
        }
        let user = ctx["userId"].as_str().unwrap_or("");
        let flag = case["toggleName"].as_str().unwrap();
        let a = check(&app, &ingest, flag, user, Value::Object(attrs)).await;
        assert_eq!(
            a["enabled"], case["expectedResult"],
            "{}",
            case["description"]
        );
    }
    // Importing again replaces, and a feature name that cannot be a flag refuses the whole import.
    let again: Value = app
        .post_json("/api/import/unleash", Some(ADMIN_TOKEN), &spec["state"])
        .await
        .json()
        .await
        .unwrap();
    assert!(again["created"].as_array().unwrap().is_empty());
    let bad = json!({"version": 2, "features": [{"name": "ok-one", "enabled": true}, {"name": "bad name", "enabled": true}]});
    problem(
        app.post_json("/api/import/unleash", Some(ADMIN_TOKEN), &bad)
            .await,
        422,
    )
    .await;
    problem(
        app.get("/api/feature-flags/ok-one", Some(ADMIN_TOKEN))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn rust_sdk_follows_a_kill_switch_within_a_second() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    create(
        &app,
        json!({"flag_id": "new-checkout", "strategy": "percentage", "percentage": 100}),
    )
    .await;
    let client = liftoff_sdk::FlagClient::builder(&app.url, &ingest)
        .build()
        .await
        .unwrap();
    assert!(client.is_ready());
    let ctx = liftoff_sdk::Context {
        user_id: Some("u1".into()),
        ..Default::default()
    };
    assert!(client.is_enabled("new-checkout", &ctx));

    let updated = client.wait_for_update();
    let started = Instant::now();
    assert_eq!(
        patch(
            &app,
            "new-checkout",
            json!({"enabled": false, "reason": "errors"})
        )
        .await
        .status(),
        200
    );
    tokio::time::timeout(Duration::from_secs(1), updated)
        .await
        .expect("the SDK did not see the change within 1 s");
    eprintln!(
        "kill switch reached the Rust SDK in {:?}",
        started.elapsed()
    );
    assert!(!client.is_enabled("new-checkout", &ctx));
    assert_eq!(
        client.evaluate("new-checkout", &ctx).reason,
        liftoff_sdk::Reason::Disabled
    );
    client.shutdown();
}

#[tokio::test]
async fn segments_target_flags_and_are_managed_safely() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let res = app
        .post_json(
            "/api/segments",
            Some(ADMIN_TOKEN),
            &json!({"name": "paying EU", "constraints": [
                {"contextName": "plan", "operator": "IN", "values": ["pro", "team"]},
                {"contextName": "country", "operator": "IN", "values": ["de", "fr"]}]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let seg: Value = res.json().await.unwrap();
    let id = seg["id"].as_i64().unwrap();
    problem(
        app.post_json(
            "/api/segments",
            Some(ADMIN_TOKEN),
            &json!({"name": "paying EU", "constraints": seg["constraints"]}),
        )
        .await,
        409,
    )
    .await;
    let bad = json!({"name": "bad", "constraints": [{"contextName": "x", "operator": "REGEX", "value": "("}]});
    problem(
        app.post_json("/api/segments", Some(ADMIN_TOKEN), &bad)
            .await,
        422,
    )
    .await;

    assert_eq!(
        create(&app, json!({"flag_id": "eu-pricing", "segments": [id]}))
            .await
            .status(),
        201
    );
    problem(
        create(&app, json!({"flag_id": "ghost", "segments": [9999]})).await,
        422,
    )
    .await;
    assert_eq!(
        check(
            &app,
            &ingest,
            "eu-pricing",
            "a",
            json!({"plan": "pro", "country": "de"})
        )
        .await["enabled"],
        true
    );
    assert_eq!(
        check(
            &app,
            &ingest,
            "eu-pricing",
            "a",
            json!({"plan": "pro", "country": "us"})
        )
        .await["enabled"],
        false
    );

    // Widening the segment changes the flag at the next evaluation.
    let widened = json!({"name": "paying EU", "reason": "add Spain", "constraints": [
        {"contextName": "plan", "operator": "IN", "values": ["pro", "team"]},
        {"contextName": "country", "operator": "IN", "values": ["de", "fr", "es"]}]});
    let res = app
        .http
        .put(app.at(&format!("/api/segments/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&widened)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        check(
            &app,
            &ingest,
            "eu-pricing",
            "a",
            json!({"plan": "team", "country": "es"})
        )
        .await["enabled"],
        true
    );
    let feed: Value = app
        .get("/api/sdk/flags", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        feed["segments"][0]["id"], id,
        "SDKs receive the segments they need"
    );

    let del = app
        .http
        .delete(app.at(&format!("/api/segments/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let p = problem(del, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("eu-pricing"));
    assert_eq!(
        patch(&app, "eu-pricing", json!({"segments": []}))
            .await
            .status(),
        200
    );
    let del = app
        .http
        .delete(app.at(&format!("/api/segments/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    problem(
        app.get(&format!("/api/segments/{id}"), Some(ADMIN_TOKEN))
            .await,
        404,
    )
    .await;
}

/// Writes racing on one replica: whichever reload finishes last, the catalog served is the
/// newest one (its revision is the store's, and so is every flag's version).
#[tokio::test]
async fn concurrent_changes_leave_the_newest_catalog_live() {
    let app = spawn().await;
    for key in ["race-a", "race-b"] {
        assert_eq!(create(&app, json!({"flag_id": key})).await.status(), 201);
    }
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..16u32 {
            let http = app.http.clone();
            let url = app.at(if i % 2 == 0 {
                "/api/feature-flags/race-a"
            } else {
                "/api/feature-flags/race-b"
            });
            tasks.push(tokio::spawn(async move {
                http.patch(url)
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&json!({"percentage": f64::from(round * 16 + i) / 2.0}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for t in tasks {
            let status = t.await.unwrap();
            assert!(status == 200 || status == 409, "{status}");
        }
        let catalog = app.state.flags.catalog();
        let revision = app.state.store.flags_revision().await.unwrap();
        assert_eq!(catalog.revision, revision, "round {round}");
        for stored in app.state.store.list_flags().await.unwrap() {
            let live = &catalog.flags[&stored.flag_id];
            assert_eq!(live.version, stored.version, "round {round}");
            assert_eq!(live.percentage, stored.percentage, "round {round}");
        }
    }
}

/// A hundred connected SDK streams: a change serializes the feed once per environment, not
/// once per stream.
#[tokio::test]
async fn the_feed_is_serialized_once_per_catalog_not_per_stream() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    create(&app, json!({"flag_id": "fanout"})).await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        let mut s = app
            .http
            .get(app.at("/api/sdk/stream"))
            .bearer_auth(&ingest)
            .send()
            .await
            .unwrap();
        assert_eq!(s.status(), 200);
        assert!(next_event(&mut s).await.contains("\"fanout\""));
        streams.push(s);
    }
    let before = app.state.flags.feeds_serialized();
    assert_eq!(
        patch(&app, "fanout", json!({"enabled": false}))
            .await
            .status(),
        200
    );
    for s in &mut streams {
        let update = tokio::time::timeout(Duration::from_secs(5), next_event(s))
            .await
            .expect("no event within 5 s");
        assert!(update.contains("\"enabled\":false"), "{update}");
    }
    let serialized = app.state.flags.feeds_serialized() - before;
    // Three environments per catalog built; the replica's change poller may build one more.
    assert!(
        (3..=6).contains(&serialized),
        "{serialized} serializations for 100 streams"
    );
    eprintln!("100 streams, one change: {serialized} feed serializations");
}
