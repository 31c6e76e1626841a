//! The public edge under hostile and broken clients: stalled heads and bodies, idle
//! connections, more connections and requests than the server takes, key guessing, and
//! compressed bodies without a valid key. Each limit is set small here so the tests are quick;
//! `bench/edge/attack.py` runs the same attacks at full size against the release binary.

use std::io::Write as _;
use std::time::{Duration, Instant};

use liftoff::config::Overrides;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn_with};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes; what it sent and when it closed, or `None` if it stayed open
/// for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn short_timeouts(o: Overrides) -> Overrides {
    Overrides {
        header_timeout_seconds: Some(1),
        idle_timeout_seconds: Some(3),
        body_timeout_seconds: Some(1),
        ..o
    }
}

#[tokio::test]
async fn silent_and_stalled_heads_are_closed_within_the_header_timeout() {
    let app = spawn_with(short_timeouts).await;
    let t0 = Instant::now();
    let mut silent = connect(&app).await;
    let mut stalled = connect(&app).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Dripped header lines do not keep the connection open either.
    let mut dripping = connect(&app).await;
    dripping
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        for i in 0..10 {
            if dripping
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    });
    for s in [&mut silent, &mut stalled] {
        closed_within(s, Duration::from_secs(4))
            .await
            .expect("closed by the header timeout");
        let after = t0.elapsed();
        assert!(
            after >= Duration::from_millis(900),
            "closed too early: {after:?}"
        );
    }
    assert!(drip.await.unwrap(), "the dripping connection was closed");
    assert!(
        app.state
            .edge
            .header_timeouts
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn keep_alive_waits_the_idle_timeout_not_the_header_timeout() {
    let app = spawn_with(short_timeouts).await;
    let mut s = connect(&app).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Longer than the header timeout: a keep-alive connection is still there.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    s.write_all(request).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (_, after) = closed_within(&mut s, Duration::from_secs(6))
        .await
        .expect("closed by the idle timeout");
    assert!(
        after >= Duration::from_millis(2_500),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_answers_408_and_closes() {
    let app = spawn_with(short_timeouts).await;
    let (_, ingest) = app.key("ingest").await;
    let mut s = connect(&app).await;
    s.write_all(
        format!(
            "POST /api/ingest/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest}\r\n\
             Content-Type: application/json\r\nContent-Length: 400\r\n\r\n[{{\"event\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, after) = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("the stalled body ends the request");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(after < Duration::from_secs(4));
}

#[tokio::test]
async fn over_the_in_flight_limit_requests_get_503_with_retry_after_and_health_still_answers() {
    let app = spawn_with(|o| Overrides {
        max_requests_in_flight: Some(1),
        queue_timeout_ms: Some(300),
        body_timeout_seconds: Some(10),
        ..o
    })
    .await;
    let (_, ingest) = app.key("ingest").await;
    // One request holds the only slot while its body trickles in.
    let mut holder = connect(&app).await;
    holder
        .write_all(
            format!(
                "POST /api/ingest/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest}\r\n\
                 Content-Type: application/json\r\nContent-Length: 400\r\n\r\n["
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        app.get("/api/audit", Some(ADMIN_TOKEN)),
        app.get("/api/keys", Some(ADMIN_TOKEN))
    );
    for res in [a, b] {
        assert_eq!(res.headers()["retry-after"], "1");
        let p = problem(res, 503).await;
        assert_eq!(p["reason"], "overloaded");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused promptly"
    );
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    drop(holder);
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room() {
    let app = spawn_with(|o| Overrides {
        max_connections: Some(4),
        ..o
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let res = reqwest::Client::new()
        .get(app.at("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(500)).await.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 1, "an idle connection was closed to make room");
}

#[tokio::test]
async fn a_client_that_keeps_failing_authentication_gets_429() {
    let app = spawn_with(|o| Overrides {
        failed_auth_per_minute: Some(20),
        ..o
    })
    .await;
    for i in 0..5 {
        let p = problem(
            app.get("/api/keys", Some(&format!("lft_guess{i}"))).await,
            401,
        )
        .await;
        assert_eq!(p["code"], "invalid_api_key");
    }
    let res = app.get("/api/keys", Some("lft_guess-again")).await;
    assert!(res.headers().contains_key("retry-after"));
    let p = problem(res, 429).await;
    assert_eq!(p["code"], "too_many_failed_authentications");
    // PostHog capture shares the budget.
    let res = app
        .post_json("/batch/", None, &json!({"api_key": "phc_x", "batch": []}))
        .await;
    problem(res, 429).await;
}

/// Behind a trusted load balancer each client has its own failed-authentication budget (the
/// address `X-Forwarded-For` names); a client that is not a trusted proxy cannot pick its
/// address with the header.
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = spawn_with(|o| Overrides {
        failed_auth_per_minute: Some(20),
        trusted_proxies: Some("127.0.0.1/32".into()),
        ..o
    })
    .await;
    let guess = |client: &'static str, i: usize| {
        app.http
            .get(app.at("/api/keys"))
            .bearer_auth(format!("lft_guess{i}"))
            .header("x-forwarded-for", client)
            .send()
    };
    for i in 0..5 {
        assert_eq!(guess("198.51.100.1", i).await.unwrap().status(), 401);
    }
    problem(guess("198.51.100.1", 5).await.unwrap(), 429).await;
    // Another client behind the same proxy is not held for the first one's guesses.
    assert_eq!(guess("198.51.100.2", 0).await.unwrap().status(), 401);
    // A forged entry left of what the proxy appended changes nothing.
    problem(guess("203.0.113.5, 198.51.100.1", 6).await.unwrap(), 429).await;

    // Without trusted proxies the header is ignored: every guess is the loopback client's.
    let plain = spawn_with(|o| Overrides {
        failed_auth_per_minute: Some(20),
        ..o
    })
    .await;
    for i in 0..5 {
        let res = plain
            .http
            .get(plain.at("/api/keys"))
            .bearer_auth(format!("lft_guess{i}"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let res = plain
        .http
        .get(plain.at("/api/keys"))
        .bearer_auth("lft_guess-again")
        .header("x-forwarded-for", "198.51.100.99")
        .send()
        .await
        .unwrap();
    problem(res, 429).await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `{"api_key": KEY, "batch": [...]}` inflating to about 20 MiB.
fn bomb(key: &str) -> Vec<u8> {
    let mut json = format!(r#"{{"api_key":"{key}","batch":["#).into_bytes();
    let event =
        br#"{"event":"x","distinct_id":"u","properties":{"p":"aaaaaaaaaaaaaaaaaaaaaaaa"}},"#;
    while json.len() < 19 << 20 {
        json.extend_from_slice(event);
    }
    json.extend_from_slice(br#"{"event":"x","distinct_id":"u"}]}"#);
    gzip(&json)
}

#[tokio::test]
async fn compressed_bodies_with_an_unknown_or_no_key_are_refused_before_they_are_inflated() {
    let app = spawn_with(|o| Overrides {
        max_body_bytes: Some(4 << 20),
        ..o
    })
    .await;
    let body = bomb("phc_unknown");
    assert!(body.len() < 1 << 20);
    for (path, compression) in [("/batch/", None), ("/e/", Some("gzip-js"))] {
        let mut req = app.http.post(app.at(path)).body(body.clone());
        req = match compression {
            Some(c) => req.query(&[("compression", c)]),
            None => req.header("content-encoding", "gzip"),
        };
        let p = problem(req.send().await.unwrap(), 401).await;
        assert_eq!(p["code"], "invalid_api_key");
    }
    // A wrong key beside the body is refused before the body is read.
    let res = app
        .http
        .post(app.at("/batch/?api_key=phc_wrong"))
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    // A valid key inside still works, compressed or not.
    let (_, ingest) = app.key("ingest").await;
    let ok = gzip(
        json!({"api_key": ingest, "batch": [{"event": "signup", "distinct_id": "u1"}]})
            .to_string()
            .as_bytes(),
    );
    let res = app
        .http
        .post(app.at("/batch/"))
        .header("content-encoding", "gzip")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["accepted"], 1);
}
