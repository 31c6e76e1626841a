//! `TestApp`: the real application on 127.0.0.1, port 0, with a fresh data directory.

use liftoff::config::{Overrides, Settings};
use liftoff::startup;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const ADMIN_PASSWORD: &str = "test-password-42";

pub struct TestApp {
    pub url: String,
    /// The running app's services, for what no HTTP route does (running a job now).
    pub state: liftoff_http::state::AppState,
    pub http: reqwest::Client,
    pub data: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn spawn() -> TestApp {
    spawn_with(|o| o).await
}

/// Starts the app with settings adjusted by `adjust` (data dir, admin token and password are set).
pub async fn spawn_with(adjust: impl FnOnce(Overrides) -> Overrides) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_at(dir.path(), adjust).await;
    app._dir = Some(dir);
    app
}

/// Starts the app on an existing data directory (which the caller keeps).
pub async fn spawn_at(
    data: &std::path::Path,
    adjust: impl FnOnce(Overrides) -> Overrides,
) -> TestApp {
    let overrides = adjust(Overrides {
        data: Some(data.to_owned()),
        admin_token: Some(ADMIN_TOKEN.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        // Tests call routes without a key by the hundred; the edge tests set their own limit.
        failed_auth_per_minute: Some(0),
        events_url: matrix_events_url(data),
        ..Default::default()
    });
    let overrides = match overrides.state_url {
        None => Overrides {
            state_url: matrix_state_url(data).await,
            ..overrides
        },
        Some(_) => overrides,
    };
    let settings = Settings::from_overrides(overrides).unwrap();
    let built = startup::build(&settings).await.unwrap();
    let state = built.state.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(startup::serve(listener, built, async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        url,
        state,
        http,
        data: data.to_owned(),
        stop: Some(tx),
        server: Some(server),
        _dir: None,
    }
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.at(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.at(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Creates a key with the admin token; returns `(id, token)`.
    pub async fn key(&self, scope: &str) -> (String, String) {
        let res = self
            .post_json(
                "/api/keys",
                Some(ADMIN_TOKEN),
                &json!({"name": format!("{scope} key"), "scope": scope}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Stops the server the way SIGTERM does and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts a problem document with `status` and returns it.
pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "problem lacks {field}: {body}"
        );
    }
    body
}

/// A fresh, empty schema on the test PostgreSQL, as a state URL.
/// `"postgres"` when this run keeps every app's state in PostgreSQL (the CI matrix's third
/// row), else `"sqlite"`.
pub fn state_backend() -> &'static str {
    if std::env::var("LIFTOFF_TEST_STATE").as_deref() == Ok("postgres") {
        "postgres"
    } else {
        "sqlite"
    }
}

/// Whether this run keeps state in PostgreSQL; tests of the SQLite state files return early
/// there, saying so.
pub fn state_in_postgres(test: &str) -> bool {
    let yes = state_backend() == "postgres";
    if yes {
        eprintln!("{test}: not applicable with state in PostgreSQL (it tests the SQLite files)");
    }
    yes
}

/// Whether this run keeps events in ClickHouse (the CI matrix's third row). Tests of what
/// only the data directory's events file does (sealing, file backups, offline demo data)
/// return early there, saying so.
pub fn events_in_clickhouse(test: &str) -> bool {
    let yes = std::env::var("LIFTOFF_TEST_EVENTS").as_deref() == Ok("clickhouse");
    if yes {
        eprintln!("{test}: not applicable with events in ClickHouse (it tests the events file)");
    }
    yes
}

/// With `LIFTOFF_TEST_STATE=postgres` (the CI matrix's third row) every app keeps its state
/// in a schema of its own, one per data directory so a restarted app finds it again.
async fn matrix_state_url(data: &std::path::Path) -> Option<String> {
    if std::env::var("LIFTOFF_TEST_STATE").as_deref() != Ok("postgres") {
        return None;
    }
    let marker = data.join(".postgres-schema");
    match std::fs::read_to_string(&marker) {
        Ok(url) => Some(url),
        Err(_) => {
            let url = postgres_state_url().await;
            std::fs::write(&marker, &url).unwrap();
            Some(url)
        }
    }
}

/// With `LIFTOFF_TEST_EVENTS=clickhouse` (the CI matrix's third row) every app keeps its
/// events in a database of its own on the test ClickHouse server, one per data directory so
/// a restarted app finds its events again.
fn matrix_events_url(data: &std::path::Path) -> Option<String> {
    if std::env::var("LIFTOFF_TEST_EVENTS").as_deref() != Ok("clickhouse") {
        return None;
    }
    let marker = data.join(".clickhouse-database");
    let url = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
        let url = liftoff_testkit::clickhouse::fresh_database_url();
        std::fs::write(&marker, &url).unwrap();
        url
    });
    Some(url)
}

pub async fn postgres_state_url() -> String {
    liftoff_testkit::postgres::fresh_schema_url().await
}
