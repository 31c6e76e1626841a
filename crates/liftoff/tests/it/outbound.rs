//! The edge towards the outside: `--outbound-deny` on uptime checks and webhooks (by literal
//! address, by resolved address, on every redirect), Liftoff-written errors with the receiver's
//! answer kept apart for admins, channel secrets sealed at rest (read from the raw rows of
//! SQLite and PostgreSQL), `liftoff secrets rotate`, and private database files.
//!
//! Nothing here connects anywhere but loopback: a denied destination is refused before any
//! connection, and the tests that prove it use loopback addresses as the denied ones first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use liftoff::config::{Overrides, Settings};
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_TOKEN, TestApp, problem, spawn_at, spawn_with};

const SECRET_BODY: &str = "SECRET-BODY";

/// A local server: `POST /hook` records the body and answers 200; `/fail` answers 500 with a
/// long body that starts with `SECRET-BODY`; `/go` redirects to `location`; every request is
/// counted.
#[derive(Clone, Default)]
struct Local {
    hits: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Local {
    async fn start(ip: &str, location: Option<String>) -> (Self, std::net::SocketAddr) {
        let me = Local::default();
        let (hits, got) = (me.hits.clone(), me.got.clone());
        let count = move |hits: &Arc<AtomicUsize>| {
            hits.fetch_add(1, Ordering::SeqCst);
        };
        let h1 = hits.clone();
        let h2 = hits.clone();
        let h3 = hits.clone();
        let h4 = hits.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                post(move |axum::Json(v): axum::Json<Value>| {
                    count(&h1);
                    got.lock().unwrap().push(v);
                    async { StatusCode::OK }
                }),
            )
            .route(
                "/fail",
                get(fail).post(move || {
                    count(&h2);
                    fail()
                }),
            )
            .route(
                "/go",
                get({
                    let location = location.clone();
                    move || {
                        count(&h3);
                        let to = location.clone().unwrap_or_default();
                        async move { (StatusCode::FOUND, [(header::LOCATION, to)]) }
                    }
                })
                .post(move || {
                    count(&h4);
                    let to = location.clone().unwrap_or_default();
                    async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]) }
                }),
            )
            .fallback({
                let hits = hits.clone();
                move || {
                    count(&hits);
                    async { "ok" }
                }
            });
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn fail() -> impl IntoResponse {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{SECRET_BODY}\n\x1b[31m{}", "x".repeat(400)),
    )
}

fn fast(o: Overrides) -> Overrides {
    Overrides {
        uptime_min_interval_seconds: Some(1),
        alert_interval_ms: Some(200),
        alert_group_wait_ms: Some(0),
        alert_retry_base_ms: Some(200),
        ..o
    }
}

fn deny(list: &str) -> impl FnOnce(Overrides) -> Overrides {
    let list = list.to_owned();
    move |o| {
        fast(Overrides {
            outbound_deny: Some(list),
            ..o
        })
    }
}

async fn channel(app: &TestApp, url: &str) -> i64 {
    let res = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "ops", "config": {"kind": "webhook", "url": url}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn test_send(app: &TestApp, id: i64) -> Value {
    let res = app
        .post_json(
            &format!("/api/notifications/channels/{id}/test"),
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn monitor(app: &TestApp, url: &str) -> i64 {
    let res = app
        .post_json(
            "/api/uptime/monitors",
            Some(ADMIN_TOKEN),
            &json!({"name": "m", "url": url, "interval_seconds": 2, "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// The first check of monitor `id`.
async fn first_check(app: &TestApp, id: i64) -> Value {
    for _ in 0..100 {
        let res = app
            .get(
                &format!("/api/uptime/monitors/{id}/checks"),
                Some(ADMIN_TOKEN),
            )
            .await;
        let checks: Vec<Value> = res.json().await.unwrap();
        if let Some(c) = checks.last() {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("monitor {id} was never checked");
}

#[tokio::test]
async fn a_webhook_whose_host_resolves_to_a_denied_address_is_not_delivered() {
    resolves_to_denied(None).await;
}

#[tokio::test]
async fn a_webhook_whose_host_resolves_to_a_denied_address_is_not_delivered_on_postgres() {
    resolves_to_denied(Some(crate::harness::postgres_state_url().await)).await;
}

async fn resolves_to_denied(state_url: Option<String>) {
    // Loopback stands in for a denied network: `localhost` is a name, so the channel is
    // accepted, and it resolves only to denied addresses.
    let app = spawn_with(|o| {
        deny("127.0.0.0/8, ::1")(Overrides {
            state_url: state_url.clone(),
            ..o
        })
    })
    .await;
    let (local, addr) = Local::start("127.0.0.1", None).await;
    let id = channel(&app, &format!("http://localhost:{}/hook", addr.port())).await;
    let d = test_send(&app, id).await;
    assert_eq!(d["status"], "failed", "{d}");
    let reason = d["last_error"].as_str().unwrap();
    assert!(
        reason.starts_with("destination ") && reason.ends_with(" is denied by --outbound-deny"),
        "{reason}"
    );
    assert_eq!(local.hits(), 0, "nothing reached the receiver");
    assert!(local.got.lock().unwrap().is_empty());
    // Read keys see the reason in the outbox.
    let (_, read) = app.key("read").await;
    let listed: Value = app
        .get("/api/notifications/deliveries", Some(&read))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["last_error"], reason);
    // A literal denied address is refused at creation already.
    let p = problem(
        app.post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "x", "config": {"kind": "webhook", "url": format!("http://127.0.0.1:{}/hook", addr.port())}}),
        )
        .await,
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("--outbound-deny"),
        "{p}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn redirects_to_denied_destinations_are_not_followed() {
    // Loopback first: 127.0.0.1 (and ::1) are denied, and a server there counts what reaches
    // it; the checked servers live on 127.0.0.2, which is allowed.
    let (target, target_addr) = Local::start("127.0.0.1", None).await;
    let port = target_addr.port();
    let app = spawn_with(deny("127.0.0.1, ::1, localhost.test")).await;
    for (location, reason) in [
        // An address literal, checked by the redirect policy.
        (
            format!("http://127.0.0.1:{port}/x"),
            "destination 127.0.0.1 is denied by --outbound-deny",
        ),
        // The same address IPv4-mapped.
        (
            format!("http://[::ffff:127.0.0.1]:{port}/x"),
            "destination 127.0.0.1 is denied by --outbound-deny",
        ),
        // A name refused by name.
        (
            "http://LOCALHOST.TEST./x".to_owned(),
            "destination localhost.test is denied by --outbound-deny",
        ),
        // A name that resolves only to denied addresses.
        (format!("http://localhost:{port}/x"), ""),
    ] {
        let (_, from) = Local::start("127.0.0.2", Some(location.clone())).await;
        let id = monitor(&app, &format!("http://{from}/go")).await;
        let c = first_check(&app, id).await;
        assert_eq!(c["up"], false, "{location}: {c}");
        let error = c["error"].as_str().unwrap();
        if reason.is_empty() {
            assert!(
                error.starts_with("destination ")
                    && error.ends_with(" is denied by --outbound-deny"),
                "{location}: {error}"
            );
        } else {
            assert_eq!(error, reason, "{location}");
        }
    }
    assert_eq!(target.hits(), 0, "no redirect was followed");

    // An allowed redirect is still followed.
    let (ok, ok_addr) = Local::start("127.0.0.3", None).await;
    let (_, to_ok) = Local::start("127.0.0.2", Some(format!("http://{ok_addr}/fine"))).await;
    let id = monitor(&app, &format!("http://{to_ok}/go")).await;
    let c = first_check(&app, id).await;
    assert_eq!(c["up"], true, "{c}");
    assert!(ok.hits() >= 1);
    app.shutdown().await;

    // The metadata address itself, with the default policy: refused before any connection.
    let app = spawn_with(fast).await;
    let (_, to_metadata) = Local::start(
        "127.0.0.1",
        Some("http://169.254.169.254/latest/meta-data/".into()),
    )
    .await;
    let id = monitor(&app, &format!("http://{to_metadata}/go")).await;
    let c = first_check(&app, id).await;
    assert_eq!(
        c["error"], "destination 169.254.169.254 is denied by --outbound-deny",
        "{c}"
    );
    // A webhook never follows redirects at all: a 3xx is a failed delivery.
    let id = channel(&app, &format!("http://{to_metadata}/go")).await;
    let d = test_send(&app, id).await;
    assert_eq!(d["status"], "failed");
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 307 Temporary Redirect from the receiver"),
        "{d}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn monitors_and_channels_on_denied_destinations_are_refused_at_creation() {
    let app = spawn_with(fast).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0xa9fea9fe/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fd00:ec2::254]/",
    ] {
        let p = problem(
            app.post_json(
                "/api/uptime/monitors",
                Some(ADMIN_TOKEN),
                &json!({"name": "m", "url": url}),
            )
            .await,
            422,
        )
        .await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("--outbound-deny") && detail.contains("LIFTOFF_OUTBOUND_DENY"),
            "{detail}"
        );
        for kind in ["webhook", "slack"] {
            let p = problem(
                app.post_json(
                    "/api/notifications/channels",
                    Some(ADMIN_TOKEN),
                    &json!({"name": "c", "config": {"kind": kind, "url": format!("{url}secret-path")}}),
                )
                .await,
                422,
            )
            .await;
            let detail = p["detail"].as_str().unwrap();
            assert!(detail.contains("--outbound-deny"), "{detail}");
            assert!(
                !detail.contains("secret-path"),
                "the path is masked: {detail}"
            );
        }
    }
    let p = problem(
        app.post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "mail", "config": {"kind": "email", "host": "169.254.169.254", "port": 25,
                "tls": "none", "from": "a@example.com", "to": ["b@example.com"]}}),
        )
        .await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("SMTP host"), "{p}");
    // Changing a good monitor to a denied URL is refused too.
    let (_, addr) = Local::start("127.0.0.1", None).await;
    let id = monitor(&app, &format!("http://{addr}/healthz")).await;
    let res = app
        .http
        .patch(app.at(&format!("/api/uptime/monitors/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"url": "http://169.254.169.254/"}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    app.shutdown().await;

    // The setting allows them: "" denies nothing (nothing is sent: disabled, never tested).
    let app = spawn_with(deny("")).await;
    let res = app
        .post_json(
            "/api/uptime/monitors",
            Some(ADMIN_TOKEN),
            &json!({"name": "m", "url": "http://169.254.169.254/", "enabled": false}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "c", "enabled": false, "config": {"kind": "webhook", "url": "http://169.254.169.254/"}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    app.shutdown().await;
}

#[tokio::test]
async fn a_receivers_answer_stays_out_of_errors_and_away_from_read_keys() {
    let app = spawn_with(fast).await;
    let (local, addr) = Local::start("127.0.0.1", None).await;
    let id = channel(&app, &format!("http://{addr}/fail")).await;
    let d = test_send(&app, id).await;
    assert_eq!(local.hits(), 1);
    assert_eq!(d["status"], "failed");
    assert_eq!(
        d["last_error"],
        format!("HTTP 500 Internal Server Error from the receiver at {addr}")
    );
    let excerpt = d["response_excerpt"].as_str().unwrap();
    assert!(excerpt.starts_with(SECRET_BODY), "{excerpt}");
    assert!(excerpt.len() <= 100, "{}", excerpt.len());
    assert!(!excerpt.chars().any(char::is_control), "{excerpt:?}");

    let (_, read) = app.key("read").await;
    let as_read = app
        .get("/api/notifications/deliveries", Some(&read))
        .await
        .text()
        .await
        .unwrap();
    assert!(!as_read.contains(SECRET_BODY), "{as_read}");
    let as_read: Value = serde_json::from_str(&as_read).unwrap();
    assert!(as_read[0].get("response_excerpt").is_none(), "{as_read}");
    let as_admin: Value = app
        .get("/api/notifications/deliveries", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(as_admin[0]["response_excerpt"], excerpt);
    assert!(
        !as_admin[0]["last_error"]
            .as_str()
            .unwrap()
            .contains(SECRET_BODY)
    );

    // An uptime check of the same server stores only the status.
    let m = monitor(&app, &format!("http://{addr}/fail")).await;
    let c = first_check(&app, m).await;
    assert_eq!(c["error"], "unexpected status 500", "{c}");
    let detail = app
        .get(&format!("/api/uptime/monitors/{m}"), Some(&read))
        .await
        .text()
        .await
        .unwrap();
    assert!(!detail.contains(SECRET_BODY));
    app.shutdown().await;
}

/// The raw stored documents of the notification channels, as text, from the database itself.
async fn raw_channel_rows(app: &TestApp, state_url: Option<&str>) -> String {
    match state_url {
        None => {
            let c = rusqlite::Connection::open_with_flags(
                app.data.join("state.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let mut stmt = c.prepare("SELECT doc FROM notification_channels").unwrap();
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.join("\n")
        }
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query("SELECT doc::text FROM notification_channels", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

#[tokio::test]
async fn channel_secrets_are_encrypted_at_rest_and_survive_a_key_rotation() {
    if crate::harness::state_in_postgres(
        "channel_secrets_are_encrypted_at_rest_and_survive_a_key_rotation",
    ) {
        return;
    }
    secrets_at_rest(None).await;
}

#[tokio::test]
async fn channel_secrets_are_encrypted_at_rest_and_survive_a_key_rotation_on_postgres() {
    secrets_at_rest(Some(crate::harness::postgres_state_url().await)).await;
}

async fn secrets_at_rest(state_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = {
        let state_url = state_url.clone();
        move |o: Overrides| {
            fast(Overrides {
                state_url: state_url.clone(),
                ..o
            })
        }
    };
    let app = spawn_at(dir.path(), settings.clone()).await;
    let (local, addr) = Local::start("127.0.0.1", None).await;
    let url = format!("http://{addr}/hook?token=hook-token-0123456789");
    let id = channel(&app, &url).await;
    let res = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "mail", "enabled": false, "config": {"kind": "email", "host": "127.0.0.1", "port": 2525,
                "tls": "none", "username": "u", "password": "smtp-password-42", "from": "a@example.com", "to": ["b@example.com"]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let raw = raw_channel_rows(&app, state_url.as_deref()).await;
    assert!(!raw.contains("hook-token-0123456789"), "{raw}");
    assert!(!raw.contains(&url));
    assert!(!raw.contains("smtp-password-42"), "{raw}");
    assert!(raw.contains("enc:v1:"), "{raw}");
    assert_eq!(test_send(&app, id).await["status"], "sent");
    assert_eq!(local.got.lock().unwrap().len(), 1);
    let key_file = dir.path().join("secret-key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    // A plaintext row from before encryption is still read, and encrypted at the next start.
    let legacy_url = format!("http://{addr}/hook?token=legacy-token-42");
    let change = liftoff_core::audit::Change::new(
        &liftoff_core::auth::Actor::System,
        "notification_channel.create",
        "notification_channels",
        "",
    );
    let legacy = app
        .state
        .store
        .insert_alert_doc(
            liftoff_core::alerts::model::DocKind::Channel,
            &json!({"name": "legacy", "config": {"kind": "webhook", "url": legacy_url},
                "enabled": true, "created_at": "2026-01-01T00:00:00Z"}),
            &change,
        )
        .await
        .unwrap();
    assert!(
        raw_channel_rows(&app, state_url.as_deref())
            .await
            .contains("legacy-token-42")
    );
    assert_eq!(test_send(&app, legacy).await["status"], "sent");
    app.shutdown().await;

    // The key changes offline; every channel stays deliverable.
    let overrides = settings(Overrides {
        data: Some(dir.path().to_owned()),
        admin_token: Some(ADMIN_TOKEN.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        ..Default::default()
    });
    let rotated = liftoff::secrets::rotate(&Settings::from_overrides(overrides).unwrap())
        .await
        .unwrap();
    assert_eq!(rotated.channels, 3);
    assert!(
        rotated
            .report()
            .contains(&format!("Data directory: {}", rotated.data_dir.display()))
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(new_key.trim(), rotated.new_key.encode());
    assert!(!dir.path().join("secret-key.new").exists());

    let app = spawn_at(dir.path(), settings.clone()).await;
    let raw = raw_channel_rows(&app, state_url.as_deref()).await;
    assert!(!raw.contains("legacy-token-42"), "{raw}");
    assert!(raw.contains(&format!("enc:v1:{}:", rotated.new_key.id())));
    assert!(!raw.contains(&format!("enc:v1:{}:", rotated.old_key_id)));
    assert_eq!(test_send(&app, id).await["status"], "sent");
    assert_eq!(test_send(&app, legacy).await["status"], "sent");
    assert_eq!(local.got.lock().unwrap().len(), 4);
    // Reads stay masked.
    let listed = app
        .get("/api/notifications/channels", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("hook-token")
            && !listed.contains("smtp-password-42")
            && !listed.contains("enc:v1"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("http://{addr}/********")),
        "{listed}"
    );
    // Masked secrets sent back keep the stored ones.
    let res = app
        .http
        .put(app.at(&format!("/api/notifications/channels/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "renamed", "config": {"kind": "webhook", "url": format!("http://{addr}/********")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(test_send(&app, id).await["status"], "sent");
    assert_eq!(local.got.lock().unwrap().len(), 5);
    app.shutdown().await;
}

#[tokio::test]
async fn the_rotate_command_names_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_at(dir.path(), fast).await;
    app.shutdown().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liftoff"))
        .args(["secrets", "rotate", "--data", dir.path().to_str().unwrap()])
        .env_remove("LIFTOFF_SECRET_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert!(
        stdout.contains(&format!("Data directory: {}", canonical.display())),
        "{stdout}"
    );
    assert!(stdout.contains("State store: sqlite"), "{stdout}");
    assert!(stdout.contains("0 notification channels"), "{stdout}");
}

#[tokio::test]
async fn database_files_are_private() {
    if crate::harness::state_in_postgres("database_files_are_private") {
        return;
    }
    let app = spawn_with(|o| o).await;
    let _ = app.key("read").await;
    for name in ["state.db", "metrics.db", "events.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let path = app.data.join(format!("{name}{suffix}"));
            let meta =
                std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            assert_eq!(
                mode & 0o777,
                0o600,
                "{} has mode {:o}",
                path.display(),
                mode
            );
        }
    }
    app.shutdown().await;
}

/// A minimal SMTP server on 127.0.0.1: counts connections and keeps each message's data.
async fn fake_smtp() -> (Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>, u16) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(Mutex::new(Vec::new()));
    let (c, m) = (connections.clone(), messages.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let m = m.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = &mut data {
                        if line == "." {
                            m.lock().unwrap().push(data.take().unwrap());
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    if write.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (connections, messages, port)
}

async fn email_channel(app: &TestApp, host: &str, port: u16) -> i64 {
    let res = app
        .post_json(
            "/api/notifications/channels",
            Some(ADMIN_TOKEN),
            &json!({"name": "mail", "config": {"kind": "email", "host": host, "port": port,
                "tls": "none", "from": "liftoff@example.com", "to": ["ops@example.com"]}}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn smtp_connects_only_to_an_allowed_address() {
    let (connections, messages, port) = fake_smtp().await;
    // Allowed: `localhost` is resolved by Liftoff and the message delivered to 127.0.0.1.
    let app = spawn_with(fast).await;
    let id = email_channel(&app, "localhost", port).await;
    let d = test_send(&app, id).await;
    assert_eq!(d["status"], "sent", "{d}");
    let got = messages.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("LiftoffTestNotification"), "{got:?}");
    app.shutdown().await;
    let before = connections.load(Ordering::SeqCst);

    // Denied: the same name resolves only to denied addresses; nothing connects.
    let app = spawn_with(deny("127.0.0.0/8, ::1")).await;
    let id = email_channel(&app, "localhost", port).await;
    let d = test_send(&app, id).await;
    assert_eq!(d["status"], "failed", "{d}");
    let reason = d["last_error"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("SMTP localhost:{port}: destination "))
            && reason.ends_with("is denied by --outbound-deny"),
        "{reason}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), before);
    app.shutdown().await;
}
