//! Malformed, oversized and hostile requests get clear 4xx problem documents; nothing already
//! stored is lost.

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, problem, spawn};

#[tokio::test]
async fn bad_bodies_are_refused_and_stored_data_survives() {
    let app = spawn().await;
    let (id, _) = app.key("read").await;
    let post = |body: Vec<u8>, ct: &'static str| {
        app.http
            .post(app.at("/api/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
    };

    let p = problem(
        post(b"{\"name\": \"x\", ".to_vec(), "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(p["code"], "malformed_json");
    problem(
        post(b"not json".to_vec(), "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    problem(
        post(vec![0xff, 0xfe, 0x7b], "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    // Nesting far past the parser's depth limit (128) cannot be parsed: 400, as on every route.
    let nested = format!(
        r#"{{"name": "x", "scope": "read", "reason": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let p = problem(
        post(nested.into_bytes(), "application/json").await.unwrap(),
        400,
    )
    .await;
    assert_eq!(p["code"], "malformed_json");
    let nested = format!(r#"{{"name": {}"#, "{\"a\":".repeat(10_000));
    problem(
        post(nested.into_bytes(), "application/json").await.unwrap(),
        400,
    )
    .await;
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    problem(
        post(nested.into_bytes(), "application/json").await.unwrap(),
        400,
    )
    .await;
    // A struct is never read from an array, and whole numbers with a zero fraction are integers.
    let p = problem(
        post(br#"["x", "read"]"#.to_vec(), "application/json")
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(p["code"], "invalid_body");
    problem(
        post(br#"{"name": "x"}"#.to_vec(), "application/json")
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        post(
            br#"{"name": "x", "scope": "root"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    problem(
        post(
            br#"{"name": 5, "scope": "read"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    let long = json!({"name": "x".repeat(101), "scope": "read"}).to_string();
    problem(
        post(long.into_bytes(), "application/json").await.unwrap(),
        422,
    )
    .await;
    let control = json!({"name": "bad\u{0007}name", "scope": "read"}).to_string();
    problem(
        post(control.into_bytes(), "application/json")
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        post(br#"{"name": "x", "scope": "read"}"#.to_vec(), "text/plain")
            .await
            .unwrap(),
        415,
    )
    .await;

    // 50 MB, announced by Content-Length: refused before it is read.
    let big = vec![b'a'; 50 * 1024 * 1024];
    let p = problem(post(big.clone(), "application/json").await.unwrap(), 413).await;
    assert_eq!(p["code"], "payload_too_large");
    // The same without a length (chunked): capped while read.
    let stream = futures_stream(big);
    let res = app
        .http
        .post(app.at("/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(res, 413).await;

    let keys: Vec<Value> = app
        .get("/api/keys", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "nothing half-stored");
    assert_eq!(keys[0]["id"], id.as_str(), "earlier data intact");
    assert_eq!(app.get("/healthz", None).await.status(), 200, "still up");
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Chunks(Vec<u8>, usize);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            let start = self.1;
            if start >= self.0.len() {
                return std::task::Poll::Ready(None);
            }
            let end = (start + 64 * 1024).min(self.0.len());
            self.1 = end;
            std::task::Poll::Ready(Some(Ok(self.0[start..end].to_vec())))
        }
    }
    Chunks(data, 0)
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn().await;
    let p = problem(app.get("/api/nope", Some(ADMIN_TOKEN)).await, 404).await;
    assert!(p["detail"].as_str().unwrap().contains("/api/nope"));
    let res = app
        .http
        .put(app.at("/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("allow"));
    problem(res, 405).await;
    problem(app.get("/api/keys/%ZZ", Some(ADMIN_TOKEN)).await, 405).await;
    let res = app
        .http
        .delete(app.at("/api/keys/%FF%FE"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn hostile_headers_do_not_break_anything() {
    let app = spawn().await;
    let huge = "a".repeat(60_000);
    let res = app
        .http
        .get(app.at("/api/keys"))
        .header("authorization", format!("Bearer {huge}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    let res = app
        .http
        .get(app.at("/api/keys"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let res = app
        .http
        .post(app.at("/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .header("content-length", "99999999999999999999")
        .body("{}")
        .send()
        .await;
    // Either the client refuses to send a lying length or the server refuses it: never a 5xx.
    if let Ok(res) = res {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

/// A JSON body with a `Content-Encoding` Liftoff does not speak is a 415 problem document, not
/// bytes read as JSON; OTLP and PostHog capture, where gzip is part of the protocol, keep it.
#[tokio::test]
async fn unknown_content_encoding_is_415() {
    let app = spawn().await;
    for (path, encoding) in [
        ("/api/keys", "br"),
        ("/api/keys", "gzip"),
        ("/api/feature-flags", "x-unknown"),
        ("/ofrep/v1/evaluate/flags", "deflate"),
    ] {
        let res = app
            .http
            .post(app.at(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(r#"{"name": "x", "scope": "read"}"#)
            .send()
            .await
            .unwrap();
        let p = problem(res, 415).await;
        assert_eq!(p["code"], "unsupported_encoding", "{path} {encoding}: {p}");
    }
    // `identity` is no encoding at all.
    let res = app
        .http
        .post(app.at("/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .body(r#"{"name": "x", "scope": "read"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // gzip stays part of the PostHog capture protocol.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, br#"{"api_key": "nope", "batch": []}"#).unwrap();
    let res = app
        .http
        .post(app.at("/batch/"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 415);
}
