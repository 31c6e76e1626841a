//! The dashboard's sign-in, session and CSRF rules, over HTTP. (The browser test in `e2e/`
//! drives the same flow in Chromium.)

use crate::harness::{ADMIN_PASSWORD, TestApp, spawn};

fn cookie_from(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn value_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// The login form's CSRF field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn sign_in(app: &TestApp, password: &str) -> reqwest::Response {
    let page = app.http.get(app.at("/login")).send().await.unwrap();
    let csrf_cookie = value_of(&cookie_from(&page, "liftoff_login_csrf").unwrap());
    let html = page.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    assert_eq!(csrf, csrf_cookie);
    app.http
        .post(app.at("/login"))
        .header("cookie", format!("liftoff_login_csrf={csrf_cookie}"))
        .form(&[
            ("username", "admin"),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/flags?window=1h"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_and_out() {
    let app = spawn().await;
    let res = app.http.get(app.at("/")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");

    let wrong = sign_in(&app, "wrong-password").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Invalid username or password")
    );

    let ok = sign_in(&app, ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(
        ok.headers()["location"],
        "/flags?window=1h",
        "back where the user was going"
    );
    let session = cookie_from(&ok, "liftoff_session").unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let cookie = format!("liftoff_session={}", value_of(&session));

    let page = app
        .http
        .get(app.at("/?window=4h"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Overview</h1>"));
    assert!(
        html.contains(r#"<option value="4h" selected>"#),
        "window kept"
    );
    for path in [
        "/performance",
        "/analytics",
        "/flags",
        "/experiments",
        "/alerts",
        "/launch",
        "/reports",
    ] {
        assert!(
            html.contains(&format!("href=\"{path}?window=4h\"")),
            "nav lacks {path}"
        );
        let section = app
            .http
            .get(app.at(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(section.status(), 200, "{path}");
    }

    // Sign-out needs the session's CSRF token.
    let csrf = hidden(&html, "csrf");
    let forged = app
        .http
        .post(app.at("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let out = app
        .http
        .post(app.at("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = app
        .http
        .get(app.at("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session is gone from the store");
}

#[tokio::test]
async fn login_needs_its_csrf_token_and_same_origin() {
    let app = spawn().await;
    let res = app
        .http
        .post(app.at("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .post(app.at("/login"))
        .header("cookie", "liftoff_login_csrf=abc")
        .header("origin", "http://evil.example")
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", "abc"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn open_redirects_are_refused() {
    let app = spawn().await;
    let page = app
        .http
        .get(app.at("/login?next=//evil.example/x"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("evil.example"),
        "next is sanitised before it reaches the form"
    );
}

#[tokio::test]
async fn admins_create_keys_from_settings_and_viewers_cannot() {
    let app = spawn().await;
    let res = sign_in(&app, ADMIN_PASSWORD).await;
    let cookie = format!(
        "liftoff_session={}",
        value_of(&cookie_from(&res, "liftoff_session").unwrap())
    );
    let html = app
        .http
        .get(app.at("/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let created = app
        .http
        .post(app.at("/settings/keys"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "<script>alert(1)</script>"),
            ("scope", "ingest"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "names are escaped"
    );
    assert!(!html.contains("<script>alert(1)</script>"));
    let token = hidden_token(&html);
    assert_eq!(
        app.get("/api/keys", Some(&token)).await.status(),
        403,
        "the shown token is a real ingest key"
    );

    let res = app
        .http
        .post(app.at("/settings/users"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "val"),
            ("password", "viewer-password"),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn hidden_token(html: &str) -> String {
    let start = html.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let app = spawn().await;
    for _ in 0..5 {
        assert_eq!(sign_in(&app, "wrong-password").await.status(), 401);
    }
    let res = sign_in(&app, ADMIN_PASSWORD).await;
    assert_eq!(
        res.status(),
        429,
        "from the client that spent the budget, even the right password waits"
    );
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many attempts"));
}

/// The text of the element with `id`, up to its first child tag.
fn text_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no #{id}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

/// The users column of the funnel table, in step order.
fn funnel_users(html: &str) -> Vec<u64> {
    html.match_indices("<td class=\"users\">")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('<').unwrap()].parse().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn analytics_page_shows_ingested_events() {
    use serde_json::{Value, json};
    let app = spawn().await;
    let res = sign_in(&app, ADMIN_PASSWORD).await;
    let cookie = format!(
        "liftoff_session={}",
        value_of(&cookie_from(&res, "liftoff_session").unwrap())
    );
    let get = async |path: &str| {
        let res = app
            .http
            .get(app.at(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };

    let (status, empty) = get("/analytics").await;
    assert_eq!(status, 200);
    assert!(empty.contains("No product events yet"), "{empty}");
    assert!(empty.contains("/api/ingest/events") && empty.contains("api_host"));

    const DAY: i64 = 86_400_000;
    let now = chrono::Utc::now().timestamp_millis();
    let today = now / DAY * DAY;
    // Seconds apart within the last minutes, but never before today (UTC) began.
    let at = |secs_ago: i64| (now - secs_ago * 1000).max(today);
    let ev = |user: &str, event: &str, ts: i64| {
        json!({"user_id": user, "event": event, "timestamp": ts, "session_id": format!("s-{user}"),
               "properties": {"plan": if user == "u1" { "pro" } else { "free" }}})
    };
    let mut events: Vec<Value> = Vec::new();
    let journeys: [(&str, &[&str]); 4] = [
        ("u1", &["signup", "search", "view_item", "purchase"]),
        ("u2", &["signup", "search", "view_item"]),
        ("u3", &["signup", "search"]),
        ("u4", &["signup", "<script>alert(1)</script>"]),
    ];
    for (user, steps) in journeys {
        for (i, step) in steps.iter().enumerate() {
            events.push(ev(user, step, at(300 - 10 * i as i64)));
        }
    }
    events.push(
        json!({"user_id": "u2", "event": "$exception", "timestamp": at(30),
        "properties": {"$exception_type": "TypeError", "$exception_message": "x is undefined"}}),
    );
    // u5: first seen two days ago, back today: a cohort row of its own.
    events.push(ev("u5", "page_view", today - 2 * DAY + 3_600_000));
    events.push(ev("u5", "page_view", at(20)));
    let (_, token) = app.key("ingest").await;
    let res = app
        .post_json("/api/ingest/events", Some(&token), &Value::Array(events))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // The engine refreshes its table at most every two seconds.
    let mut html = String::new();
    for _ in 0..50 {
        html = get("/analytics").await.1;
        if !html.contains("No product events yet") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(text_of(&html, "au-dau"), "5", "u1–u5 today");
    assert_eq!(text_of(&html, "au-mau"), "5");
    assert_eq!(text_of(&html, "au-now"), "5");
    assert_eq!(text_of(&html, "au-errors"), "1");
    assert!(html.contains("id=\"dau-chart\""), "DAU chart");
    assert!(html.contains("x is undefined"), "recent errors");
    assert!(html.contains("id=\"top-events\""));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "event names are escaped"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert_eq!(
        funnel_users(&html),
        vec![4, 3, 2, 1],
        "the default funnel is signup → search → view_item → purchase"
    );
    // The API's fractions read as percent, in the one format of every page.
    assert!(html.contains("75.0\u{a0}%"), "signup 4 → search 3");
    assert!(html.contains("Overall conversion <strong>25.0\u{a0}%</strong>"));
    let two_days_ago = chrono::DateTime::from_timestamp_millis(today - 2 * DAY)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        html.contains(&format!("<th class=\"cohort\">{two_days_ago}</th>")),
        "u5's cohort row"
    );

    let (status, asked) = get(
        "/analytics?window=1h&step=signup&step=view_item&step=purchase&conversion_window_days=1&breakdown=plan",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(funnel_users(&asked), vec![4, 2, 1]);
    assert!(asked.contains("id=\"funnel-breakdown\""));
    assert!(
        asked.contains("value=\"view_item\""),
        "the form keeps the steps"
    );

    let (status, bad) = get("/analytics?step=signup&step=").await;
    assert!(status == 200 || status == 400, "{status}");
    assert!(bad.contains("A funnel needs 2 to 10 steps"), "{bad}");
    let long = "x".repeat(201);
    let (status, bad) = get(&format!("/analytics?step=signup&step={long}")).await;
    assert!(status == 200 || status == 400, "{status}");
    assert!(bad.contains("longer than 200 characters"));
    let (status, bad) = get("/analytics?step=a&step=b&conversion_window_days=soon").await;
    assert!(status == 200 || status == 400, "{status}");
    assert!(bad.contains("conversion window"));
}

/// A signed-in admin's GET of a dashboard page: status and HTML.
async fn page_of(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = app
        .http
        .get(app.at(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn admin_cookie(app: &TestApp) -> String {
    let res = sign_in(app, ADMIN_PASSWORD).await;
    format!(
        "liftoff_session={}",
        value_of(&cookie_from(&res, "liftoff_session").unwrap())
    )
}

#[tokio::test]
async fn the_performance_page_selects_a_service_and_says_what_is_true_when_empty() {
    use serde_json::json;
    let app = spawn().await;
    let cookie = admin_cookie(&app).await;
    let (status, empty) = page_of(&app, &cookie, "/performance?window=1h").await;
    assert_eq!(status, 200);
    assert!(
        empty.contains("No requests from the app services in this window."),
        "{empty}"
    );

    let (_, token) = app.key("ingest").await;
    let records = json!([
        {"service": "shop", "method": "GET", "route": "/items", "status": 200, "duration_ms": 20},
        {"service": "api", "method": "GET", "route": "/items", "status": 200, "duration_ms": 40},
        {"service": "liftoff", "method": "GET", "route": "/api/keys", "status": 503, "duration_ms": 1}
    ]);
    let res = app
        .post_json("/api/ingest/requests", Some(&token), &records)
        .await;
    assert_eq!(res.status(), 200);

    let (_, all) = page_of(&app, &cookie, "/performance?window=1h").await;
    // The selector lists the app services and Liftoff's own traffic, all apps by default.
    assert!(
        all.contains(r#"<select id="service" name="service" data-autosubmit>"#),
        "{all}"
    );
    assert!(all.contains(r#"<option value="" selected>All app services</option>"#));
    assert!(all.contains(r#"<option value="api">api</option>"#));
    assert!(all.contains(r#"<option value="liftoff">Liftoff's own API traffic</option>"#));
    assert!(
        all.contains(r#"<div class="value" id="perf-requests">2</div>"#),
        "Liftoff's own request is not counted"
    );
    assert!(all.contains("Counting api, shop."));
    // Both services' GET /items are rows of their own, each with its service.
    assert!(all.contains("<td>shop</td>") && all.contains("<td>api</td>"));
    // Requests but no errors: the errors table says so, not "no requests".
    assert!(all.contains("No errors in this window."), "{all}");

    let (_, own) = page_of(&app, &cookie, "/performance?window=1h&service=liftoff").await;
    assert!(own.contains(r#"<option value="liftoff" selected>"#));
    assert!(own.contains(r#"<div class="value" id="perf-requests">1</div>"#));
    assert!(!own.contains("No errors in this window."));
    let (_, none) = page_of(&app, &cookie, "/performance?window=1h&service=billing").await;
    assert!(
        none.contains("No requests from billing in this window."),
        "{none}"
    );
}

#[tokio::test]
async fn the_uptime_chart_spans_the_week_it_shows() {
    use crate::harness::{ADMIN_TOKEN, spawn_with};
    use serde_json::{Value, json};
    let app = spawn_with(|mut o| {
        o.uptime_min_interval_seconds = Some(1);
        o
    })
    .await;
    let cookie = admin_cookie(&app).await;
    let create = async |body: Value| -> Value {
        app.post_json("/api/uptime/monitors", Some(ADMIN_TOKEN), &body)
            .await
            .json()
            .await
            .unwrap()
    };
    let paused =
        create(json!({"name": "paused", "url": "https://example.com/", "enabled": false})).await;
    let (status, html) = page_of(&app, &cookie, &format!("/uptime/{}", paused["id"])).await;
    assert_eq!(status, 200);
    assert!(html.contains("No checks in the last 7 days."), "{html}");
    assert!(!html.contains("uptime-recent"), "no chart of zero checks");

    // With a check an hour old at most, the hourly chart's x-axis is still the whole week.
    let live = create(json!({"name": "self", "url": app.at("/healthz"), "interval_seconds": 2, "timeout_seconds": 1})).await;
    assert!(live["id"].is_i64(), "{live}");
    let checks = format!("/api/uptime/monitors/{}/checks", live["id"]);
    for _ in 0..100 {
        let list: Vec<Value> = app
            .get(&checks, Some(ADMIN_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        if !list.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let now = chrono::Utc::now().timestamp();
    let (_, html) = page_of(&app, &cookie, &format!("/uptime/{}", live["id"])).await;
    let marker = "&quot;x_range&quot;:[";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("the hourly chart has no x range: {html}"));
    let rest = &html[at + marker.len()..];
    let range: Vec<i64> = rest[..rest.find(']').unwrap()]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(range[1] - range[0], 7 * 86_400, "{range:?}");
    assert!((range[1] - now).abs() < 60, "{range:?} ends now");
}

#[tokio::test]
async fn the_favicon_is_a_cacheable_icon_for_anyone() {
    let app = spawn().await;
    let res = app.http.get(app.at("/favicon.ico")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/x-icon");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let body = res.bytes().await.unwrap();
    assert_eq!(&body[..4], &[0, 0, 1, 0], "an ICO header");
}

/// A dashboard form answers the status the API answers for the same failure.
#[tokio::test]
async fn dashboard_failures_answer_the_api_status() {
    let app = spawn().await;
    let ok = sign_in(&app, ADMIN_PASSWORD).await;
    let session = cookie_from(&ok, "liftoff_session").unwrap();
    let cookie = format!("liftoff_session={}", value_of(&session));
    let page = app
        .http
        .get(app.at("/flags"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let create = || {
        app.http
            .post(app.at("/flags"))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&[
                ("csrf", csrf.as_str()),
                ("flag_id", "twice"),
                ("strategy", "all_users"),
                ("reason", "test"),
            ])
            .send()
    };
    assert_eq!(create().await.unwrap().status(), 200);
    let again = create().await.unwrap();
    assert_eq!(again.status(), 409, "as POST /api/feature-flags answers");
    assert!(again.text().await.unwrap().contains("already exists"));

    // The overview reads the store's health through the service.
    let overview = app
        .http
        .get(app.at("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    assert!(
        overview
            .text()
            .await
            .unwrap()
            .contains(crate::harness::state_backend())
    );
}

#[tokio::test]
async fn dashboard_forms_check_body_then_token_then_origin() {
    let app = spawn().await;
    let cookie = admin_cookie(&app).await;
    let (_, html) = page_of(&app, &cookie, "/flags").await;
    let csrf = hidden(&html, "csrf");
    let post = |path: &'static str, form: Vec<(&'static str, String)>, origin: Option<&str>| {
        let mut req = app
            .http
            .post(app.at(path))
            .header("cookie", &cookie)
            .form(&form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let toggle = |token: &str| {
        vec![
            ("enabled", "true".to_owned()),
            ("reason", "test".to_owned()),
            ("csrf", token.to_owned()),
        ]
    };
    // A complete form with a forged or missing token, or from another site: "Form expired".
    for (path, form, origin) in [
        ("/flags/none/toggle", toggle("forged"), None),
        (
            "/flags/none/toggle",
            vec![("enabled", "true".to_owned())],
            None,
        ),
        (
            "/settings/keys/none/revoke",
            vec![("csrf", "forged".to_owned())],
            None,
        ),
        (
            "/flags/none/toggle",
            toggle(&csrf),
            Some("http://evil.example"),
        ),
    ] {
        let res = post(path, form, origin).await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
        assert!(res.text().await.unwrap().contains("Form expired"));
    }
    // An incomplete form is reported as such, whatever its token.
    let res = post("/flags", vec![("csrf", "forged".to_owned())], None)
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("The form was incomplete"), "{html}");
    assert!(
        html.contains(r#"class="flash error" role="alert""#),
        "{html}"
    );
    // The right token from this site reaches the service (which knows no such flag).
    let res = post("/flags/none/toggle", toggle(&csrf), None)
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// The Launch page shows the cap, the waitlist, readiness and feedback, and its forms steer
/// the launch through the same service as the API.
#[tokio::test]
async fn the_launch_page_steers_admission_maintenance_and_feedback() {
    use crate::harness::ADMIN_TOKEN;
    use serde_json::{Value, json};
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let init = app
        .post_json(
            "/api/launch/initialize",
            Some(ADMIN_TOKEN),
            &json!({"environment": "production", "user_limit": 2}),
        )
        .await;
    assert_eq!(init.status(), 200);
    for user in ["ann", "bob", "cyd"] {
        let res = app
            .get(
                &format!("/api/launch/user-limit?user_id={user}"),
                Some(&ingest),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let fb = app
        .post_json(
            "/api/launch/feedback",
            Some(&ingest),
            &json!({"user_id": "ann", "rating": 4, "category": "ux", "message": "Nice <b>work</b>"}),
        )
        .await;
    assert_eq!(fb.status(), 201);

    let cookie = admin_cookie(&app).await;
    let (status, html) = page_of(&app, &cookie, "/launch").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<strong>2</strong> of 2 seats taken"),
        "{html}"
    );
    assert!(html.contains("id=\"launch-waitlist\""));
    assert!(html.contains("cyd"));
    assert!(html.contains("id=\"launch-readiness\""));
    assert!(
        html.contains("Nice &lt;b&gt;work&lt;/b&gt;"),
        "feedback is escaped"
    );
    assert!(!html.contains("Coming to this page"));
    let csrf = hidden(&html, "csrf");

    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("csrf", csrf.clone()));
        app.http
            .post(app.at(path))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&form)
            .send()
    };
    let raised = post(
        "/launch/limit",
        vec![("user_limit", "3".into()), ("reason", "more seats".into())],
    )
    .await
    .unwrap();
    assert_eq!(raised.status(), 200);
    assert!(
        raised
            .text()
            .await
            .unwrap()
            .contains("1 admitted from the waitlist")
    );
    let cyd: Value = app
        .get("/api/launch/user-limit?user_id=cyd", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cyd["allowed"], true);

    // Admission notices go to a channel picked from the list.
    let channel: Value = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "crm", "config": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = channel["id"].as_i64().unwrap();
    let picked = post(
        "/launch/notices",
        vec![("admission_channel", id.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(picked.status(), 200);
    let page = picked.text().await.unwrap();
    assert!(page.contains("announced on crm"), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{id}\" selected>crm</option>")),
        "{page}"
    );
    let launch: Value = app
        .get("/api/launch", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(launch["admission_channel"], id);
    let unknown = post(
        "/launch/notices",
        vec![("admission_channel", "999999".into())],
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 422);
    let cleared = post(
        "/launch/notices",
        vec![("admission_channel", String::new())],
    )
    .await
    .unwrap();
    assert_eq!(cleared.status(), 200);
    let launch: Value = app
        .get("/api/launch", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert!(launch["admission_channel"].is_null());

    let on = post(
        "/launch/maintenance",
        vec![
            ("enabled", "true".into()),
            ("message", "Back soon".into()),
            ("retry_after_seconds", "120".into()),
            ("allow_users", "qa-1, qa-2".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(on.status(), 200);
    let status: Value = app
        .get("/api/launch/status", Some(&ingest))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["maintenance"], true);
    assert_eq!(status["retry_after_seconds"], 120);

    // Scheduled maintenance: refused when it ends before it starts, then listed.
    let minute = |d: chrono::Duration| {
        (chrono::Utc::now() + d)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let backwards = post(
        "/launch/maintenance/windows",
        vec![
            ("starts_at", minute(chrono::Duration::hours(2))),
            ("ends_at", minute(chrono::Duration::hours(1))),
        ],
    )
    .await
    .unwrap();
    assert_eq!(backwards.status(), 422);
    let scheduled = post(
        "/launch/maintenance/windows",
        vec![
            ("starts_at", minute(chrono::Duration::hours(1))),
            ("ends_at", minute(chrono::Duration::hours(2))),
            ("message", "Upgrade <tonight>".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(scheduled.status(), 200);
    let page = scheduled.text().await.unwrap();
    assert!(page.contains("Maintenance scheduled"), "{page}");
    assert!(page.contains("id=\"launch-windows\""));
    assert!(page.contains("Upgrade &lt;tonight&gt;"));
    let windows: Value = app
        .get("/api/launch/maintenance/windows", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(windows[0]["gate"], true);
    assert_eq!(windows[0]["message"], "Upgrade <tonight>");

    let bad = post(
        "/launch/feedback",
        vec![
            ("rating", "6".into()),
            ("category", "ux".into()),
            ("message", "too good".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 422, "as POST /api/launch/feedback answers");
    let list: Value = app
        .get("/api/launch/feedback", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_i64().unwrap();
    let resolved = app
        .http
        .post(app.at(&format!("/launch/feedback/{id}/resolve")))
        .header("cookie", &cookie)
        .header("origin", &app.url)
        .form(&[("csrf", csrf.as_str()), ("resolution", "shipped")])
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let list: Value = app
        .get("/api/launch/feedback", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["status"], "resolved");
    assert_eq!(list[0]["resolution"], "shipped");
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the refused item was not stored"
    );
}

/// The Experiments page lists experiments with their decision and starts one from its form;
/// an experiment's page shows users per variant and the decision, escapes what people typed,
/// and stops (and ships) through the same service as the API. Viewers read, never change.
#[tokio::test]
async fn experiments_page_lists_and_escapes() {
    use crate::harness::ADMIN_TOKEN;
    use serde_json::{Value, json};
    let app = spawn().await;
    let cookie = admin_cookie(&app).await;
    let (status, html) = page_of(&app, &cookie, "/experiments").await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("Coming to this page"));
    assert!(html.contains("No experiments yet"), "{html}");
    assert!(html.contains("id=\"no-variant-flags\""), "{html}");
    let csrf = hidden(&html, "csrf");

    let flag = app
        .post_json(
            "/api/feature-flags",
            Some(ADMIN_TOKEN),
            &json!({"flag_id": "checkout-v2", "variants": [{"name": "control", "weight": 50}, {"name": "treatment", "weight": 50}]}),
        )
        .await;
    assert_eq!(flag.status(), 201);
    let (_, html) = page_of(&app, &cookie, "/experiments").await;
    assert!(
        html.contains(r#"<option value="checkout-v2">"#),
        "flags with variants are offered: {html}"
    );

    let post = |path: String, form: Vec<(&'static str, &'static str)>, token: &str| {
        let mut form: Vec<(&str, String)> =
            form.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        form.push(("csrf", token.to_owned()));
        app.http
            .post(app.at(&path))
            .header("cookie", &cookie)
            .header("origin", &app.url)
            .form(&form)
            .send()
    };
    let new = |key: &'static str, method: &'static str, sequential: bool| {
        let mut form = vec![
            ("key", key),
            ("flag_id", "checkout-v2"),
            ("hypothesis", "<script>alert(1)</script> converts"),
            ("metric_kind", "conversion"),
            ("event", "purchase"),
            ("property", "ignored for a conversion"),
            ("method", method),
        ];
        if sequential {
            form.push(("sequential", "true"));
        }
        form
    };
    // The service's refusal is the page's message, with the API's status.
    let refused = post("/experiments".into(), new("seq", "bayesian", true), &csrf)
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains(r#"class="flash error""#), "{html}");
    assert!(html.contains("frequentist"), "{html}");

    let created = post(
        "/experiments".into(),
        new("checkout-test", "frequentist", true),
        &csrf,
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 303);
    assert_eq!(created.headers()["location"], "/experiments/checkout-test");
    let view: Value = app
        .get("/api/experiments/checkout-test", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["analysis"]["sequential"], true);
    assert_eq!(
        view["metrics"]["primary"],
        json!({"kind": "conversion", "event": "purchase", "window_hours": 72})
    );

    let (_, html) = page_of(&app, &cookie, "/experiments").await;
    assert!(
        html.contains(r#"data-experiment="checkout-test""#),
        "{html}"
    );
    assert!(html.contains("conversion:purchase"));
    assert!(html.contains("Keep running"), "no users yet: {html}");

    let (status, html) = page_of(&app, &cookie, "/experiments/checkout-test").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; converts"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("id=\"experiment-variants\""));
    assert!(html.contains("id=\"experiment-decision\""));
    assert!(html.contains("id=\"experiment-stop\""));
    assert!(!html.contains("id=\"srm-banner\""), "no users, no mismatch");

    // Exposures from events, split 60 / 10 against a configured 50 / 50, and one user who saw
    // both variants: both warnings say what they mean, and no decision is offered.
    let (_, ingest) = app.key("ingest").await;
    let called = |user: String, variant: &str| {
        json!({"event": "$feature_flag_called", "user_id": user,
               "properties": {"$feature_flag": "checkout-v2", "$feature_flag_response": variant}})
    };
    let mut batch: Vec<Value> = (0..70)
        .map(|i| {
            called(
                format!("u{i}"),
                if i < 60 { "control" } else { "treatment" },
            )
        })
        .collect();
    batch.push(called("both".into(), "control"));
    batch.push(called("both".into(), "treatment"));
    let sent = app
        .post_json("/api/ingest/events", Some(&ingest), &Value::Array(batch))
        .await;
    assert_eq!(sent.status(), 200);
    let (_, html) = page_of(&app, &cookie, "/experiments/checkout-test").await;
    assert!(html.contains("id=\"srm-banner\""), "{html}");
    assert!(html.contains("Sample ratio mismatch"));
    assert!(html.contains("id=\"multiple-exposures\""), "{html}");
    assert!(html.contains("1 user saw more than one variant"));
    assert!(html.contains("Inconclusive"), "{html}");

    let stop = |form, token: &str| post("/experiments/checkout-test/stop".into(), form, token);
    let forged = stop(vec![("reason", "done")], "forged").await.unwrap();
    assert_eq!(forged.status(), 403);
    let blank = stop(vec![("reason", " ")], &csrf).await.unwrap();
    assert_eq!(blank.status(), 422);
    assert!(blank.text().await.unwrap().contains("reason: say why"));
    let stopped = stop(
        vec![("reason", "ship <it>"), ("ship_variant", "treatment")],
        &csrf,
    )
    .await
    .unwrap();
    assert_eq!(stopped.status(), 303);
    let (_, html) = page_of(&app, &cookie, "/experiments/checkout-test").await;
    assert!(html.contains("id=\"experiment-stopped\""), "{html}");
    assert!(html.contains("ship &lt;it&gt;"));
    assert!(!html.contains("id=\"experiment-stop\""), "stopped once");
    let flag: Value = app
        .get("/api/feature-flags/checkout-v2", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flag["variants"].as_array().unwrap().len(), 1);
    assert_eq!(flag["variants"][0]["name"], "treatment");

    // A viewer reads the pages without their forms, and a forged-in change is refused.
    let added = post(
        "/settings/users".into(),
        vec![
            ("username", "val"),
            ("password", "viewer-password"),
            ("role", "viewer"),
        ],
        &csrf,
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 200);
    let login = app.http.get(app.at("/login")).send().await.unwrap();
    let login_cookie = value_of(&cookie_from(&login, "liftoff_login_csrf").unwrap());
    let login_csrf = hidden(&login.text().await.unwrap(), "csrf");
    let signed_in = app
        .http
        .post(app.at("/login"))
        .header("cookie", format!("liftoff_login_csrf={login_cookie}"))
        .form(&[
            ("username", "val"),
            ("password", "viewer-password"),
            ("csrf", &login_csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let viewer = format!(
        "liftoff_session={}",
        value_of(&cookie_from(&signed_in, "liftoff_session").unwrap())
    );
    let (status, html) = page_of(&app, &viewer, "/experiments").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-experiment="checkout-test""#));
    assert!(!html.contains("id=\"new-experiment\"") && !html.contains("id=\"no-variant-flags\""));
    let viewer_csrf = hidden(&html, "csrf");
    let res = app
        .http
        .post(app.at("/experiments"))
        .header("cookie", &viewer)
        .header("origin", &app.url)
        .form(&[
            ("csrf", viewer_csrf.as_str()),
            ("key", "by-viewer"),
            ("flag_id", "checkout-v2"),
            ("metric_kind", "conversion"),
            ("event", "purchase"),
            ("method", "bayesian"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Only editors and admins")
    );
}
