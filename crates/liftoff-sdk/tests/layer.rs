//! The request-reporting layer against a fake ingest endpoint (hand-written HTTP/1.1 on a
//! local port): route templates, statuses, durations, users, overflow, outages, refusals,
//! shutdown.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use liftoff_sdk::{ReportedUser, RequestReporter, RequestReporterBuilder};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::sleep;
use tower::ServiceExt;

const TOKEN: &str = "ingest-token";

/// What the fake answers `POST /api/ingest/requests` with.
#[derive(Clone)]
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
}

#[derive(Default)]
struct Seen {
    /// Every posted body, parsed.
    batches: Vec<Value>,
    /// `Authorization` of every post.
    auth: Vec<Option<String>>,
}

struct FakeIngest {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Seen>>,
    accept: AbortHandle,
}

impl FakeIngest {
    async fn start() -> FakeIngest {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(Answer {
            status: 200,
            retry_after: None,
        }));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (a, s) = (answer.clone(), seen.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(handle(socket, a.clone(), s.clone()));
            }
        })
        .abort_handle();
        FakeIngest {
            addr,
            answer,
            seen,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(&self, status: u16, retry_after: Option<&'static str>) {
        *self.answer.lock().unwrap() = Answer {
            status,
            retry_after,
        };
    }

    fn posts(&self) -> usize {
        self.seen.lock().unwrap().batches.len()
    }

    /// Every record of every batch, in order.
    fn records(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .batches
            .iter()
            .flat_map(|b| b.as_array().unwrap().clone())
            .collect()
    }
}

impl Drop for FakeIngest {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn handle(socket: TcpStream, answer: Arc<Mutex<Answer>>, seen: Arc<Mutex<Seen>>) {
    let (read, mut writer) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0;
    let mut auth = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => auth = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    assert!(line.starts_with("POST /api/ingest/requests "), "{line}");
    let batch: Value = serde_json::from_slice(&body).unwrap();
    let n = batch.as_array().unwrap().len();
    let answer = answer.lock().unwrap().clone();
    {
        let mut seen = seen.lock().unwrap();
        seen.batches.push(batch);
        seen.auth.push(auth);
    }
    let (reason, body) = match answer.status {
        200 => ("OK", format!(r#"{{"accepted":{n}}}"#)),
        status => (
            "Nope",
            format!(r#"{{"type":"about:blank","title":"Nope","status":{status}}}"#),
        ),
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        body.len()
    );
    if let Some(after) = answer.retry_after {
        head.push_str(&format!("retry-after: {after}\r\n"));
    }
    head.push_str("\r\n");
    let _ = writer.write_all(head.as_bytes()).await;
    let _ = writer.write_all(body.as_bytes()).await;
    let _ = writer.shutdown().await;
}

/// Polls `cond` every 5 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(5)).await;
    }
}

/// An address where nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A reporter for `url`; without the `axum` feature, the route template comes from a
/// `route_fn` reading the same `MatchedPath`.
fn reporter(url: &str) -> RequestReporterBuilder {
    let builder = RequestReporter::builder(url, TOKEN).service("checkout");
    if cfg!(feature = "axum") {
        builder
    } else {
        builder.route_fn(|parts| {
            parts
                .extensions
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
        })
    }
}

fn app(reporter: &RequestReporter) -> Router {
    Router::new()
        .route(
            "/users/{id}",
            get(|| async {
                sleep(Duration::from_millis(20)).await;
                "user"
            }),
        )
        .route(
            "/orders/{id}/items",
            post(|| async {
                let mut response = Response::new(axum::body::Body::from("created"));
                *response.status_mut() = StatusCode::CREATED;
                response
                    .extensions_mut()
                    .insert(ReportedUser("user-from-handler".to_owned()));
                response
            }),
        )
        .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .layer(reporter.layer())
}

fn request(method: &str, uri: &str) -> Request<axum::body::Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn reports_route_templates_statuses_durations_and_users() {
    let server = FakeIngest::start().await;
    let reporter = reporter(&server.url())
        .user_header("x-user")
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let app = app(&reporter);

    let mut r = request("GET", "/users/42");
    r.headers_mut().insert("x-user", "alice".parse().unwrap());
    let response = app.clone().oneshot(r).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .clone()
        .oneshot(request("POST", "/orders/977/items"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut r = request("GET", "/boom");
    r.extensions_mut()
        .insert(ReportedUser("user-from-request".to_owned()));
    app.clone().oneshot(r).await.unwrap();
    // No route: the fallback (Router::layer wraps it too), reported as `unmatched`.
    let response = app
        .clone()
        .oneshot(request("GET", "/nope/123"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    assert!(eventually(Duration::from_secs(5), || server.records().len() == 4).await);
    assert_eq!(reporter.sent(), 4);
    assert_eq!(reporter.dropped(), 0);
    let records = server.records();
    let raw = serde_json::to_string(&records).unwrap();
    for raw_path in ["/users/42", "/orders/977", "/nope/123"] {
        assert!(
            !raw.contains(raw_path),
            "raw path {raw_path} reported: {raw}"
        );
    }
    let find = |route: &str| {
        records
            .iter()
            .find(|r| r["route"] == route)
            .unwrap_or_else(|| panic!("no {route} in {raw}"))
    };

    let user = find("/users/{id}");
    assert_eq!(user["method"], "GET");
    assert_eq!(user["status"], 200);
    assert_eq!(user["service"], "checkout");
    assert_eq!(user["user_id"], "alice");
    let ms = user["duration_ms"].as_f64().unwrap();
    assert!((20.0..2000.0).contains(&ms), "duration {ms}");
    let ts = user["ts"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "ts {ts}");

    let order = find("/orders/{id}/items");
    assert_eq!(order["method"], "POST");
    assert_eq!(order["status"], 201);
    assert_eq!(order["user_id"], "user-from-handler");
    let ms = order["duration_ms"].as_f64().unwrap();
    assert!((0.0..20.0).contains(&ms), "duration {ms}");

    let boom = find("/boom");
    assert_eq!(boom["status"], 503);
    assert_eq!(boom["user_id"], "user-from-request");

    let unmatched = find("unmatched");
    assert_eq!(unmatched["status"], 404);
    assert!(unmatched.get("user_id").is_none());

    assert!(
        server
            .seen
            .lock()
            .unwrap()
            .auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer ingest-token"))
    );
    reporter.shutdown().await;
}

/// Any tower service with http types: route from `route_fn`, inner errors reported as 500.
#[tokio::test]
async fn plain_tower_services_and_inner_errors() {
    let server = FakeIngest::start().await;
    let reporter = RequestReporter::builder(server.url(), TOKEN)
        .route_fn(|parts| (parts.uri.path() == "/health").then(|| "/health".to_owned()))
        .flush_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(reporter.layer())
        .service(tower::service_fn(|req: Request<()>| async move {
            if req.uri().path() == "/health" {
                Ok(Response::new("ok"))
            } else {
                Err("inner failure")
            }
        }));
    let health = Request::get("/health").body(()).unwrap();
    assert_eq!(svc.clone().oneshot(health).await.unwrap().into_body(), "ok");
    let other = Request::get("/items/7").body(()).unwrap();
    assert!(svc.clone().oneshot(other).await.is_err());

    assert!(eventually(Duration::from_secs(5), || server.records().len() == 2).await);
    let records = server.records();
    assert_eq!(records[0]["route"], "/health");
    assert_eq!(records[0]["status"], 200);
    assert!(records[0].get("service").is_none());
    assert_eq!(records[1]["route"], "unmatched");
    assert_eq!(records[1]["status"], 500);
    reporter.shutdown().await;
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let server = FakeIngest::start().await;
    let reporter = reporter(&server.url())
        .queue_capacity(10)
        .batch_size(1000)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = app(&reporter);
    let started = Instant::now();
    // The background task does not get to run between these (current-thread runtime, nothing
    // pending), so the queue fills after 10.
    for i in 0..100 {
        let response = app
            .clone()
            .oneshot(request("POST", &format!("/orders/{i}/items")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(reporter.dropped(), 90);
    reporter.shutdown().await;
    assert_eq!(reporter.sent(), 10);
    assert_eq!(server.records().len(), 10);
}

#[tokio::test]
async fn liftoff_down_requests_stay_fast_and_drops_are_counted() {
    let reporter = reporter(&dead_url().await)
        .batch_size(5)
        .flush_interval(Duration::from_millis(5))
        .retries(2, Duration::from_millis(10))
        .build()
        .unwrap();
    let app = app(&reporter);
    for i in 0..20 {
        let started = Instant::now();
        app.clone()
            .oneshot(request("POST", &format!("/orders/{i}/items")))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(250));
        // Let the background task fail meanwhile.
        if i % 5 == 0 {
            sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        eventually(Duration::from_secs(10), || reporter.dropped() == 20).await,
        "dropped {}",
        reporter.dropped()
    );
    assert_eq!(reporter.sent(), 0);
    reporter.shutdown().await;
}

#[tokio::test]
async fn retries_5xx_and_429_then_gives_up_and_never_retries_422() {
    let server = FakeIngest::start().await;
    let reporter = reporter(&server.url())
        .flush_interval(Duration::from_millis(5))
        .retries(2, Duration::from_millis(10))
        .build()
        .unwrap();
    let app = app(&reporter);

    // 503 three times (first attempt and two retries), then the batch is dropped.
    server.answer(503, None);
    app.clone().oneshot(request("GET", "/boom")).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || reporter.dropped() == 1).await);
    assert_eq!(server.posts(), 3);

    // 429 with Retry-After (honoured over the shorter backoff), then the server recovers:
    // delivered on the retry.
    server.answer(429, Some("1"));
    app.clone().oneshot(request("GET", "/boom")).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || server.posts() == 4).await);
    server.answer(200, None);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(server.posts(), 4);
    assert!(eventually(Duration::from_secs(5), || reporter.sent() == 1).await);
    assert_eq!(server.posts(), 5);

    // 422: refused for good, no retry.
    server.answer(422, None);
    app.clone().oneshot(request("GET", "/boom")).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || reporter.dropped() == 2).await);
    sleep(Duration::from_millis(100)).await;
    assert_eq!(server.posts(), 6);
    reporter.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_what_is_queued() {
    let server = FakeIngest::start().await;
    let reporter = reporter(&server.url())
        .batch_size(2)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = app(&reporter);
    for i in 0..3 {
        app.clone()
            .oneshot(request("POST", &format!("/orders/{i}/items")))
            .await
            .unwrap();
    }
    // A full batch of 2 goes at once; the third waits for the flush interval.
    assert!(eventually(Duration::from_secs(5), || server.records().len() == 2).await);
    sleep(Duration::from_millis(50)).await;
    assert_eq!(server.records().len(), 2);

    reporter.shutdown().await;
    assert_eq!(server.records().len(), 3);
    assert_eq!(server.posts(), 2);
    assert_eq!(reporter.sent(), 3);

    // After shutdown requests are still served; their records are dropped and counted.
    let response = app
        .clone()
        .oneshot(request("POST", "/orders/9/items"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(reporter.dropped(), 1);
}
