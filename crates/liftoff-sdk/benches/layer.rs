//! Per-request overhead of `ReportLayer`: an axum Router with a trivial handler, called with
//! `oneshot`, without and with the layer (the reporter sends to a minimal local ingest
//! endpoint on the runtime's worker threads). Criterion measures both; then an interleaved
//! run prints the difference in nanoseconds.
//!
//! `cargo bench -p liftoff-sdk --bench layer` (add `--features axum` for `MatchedPath`).
#![allow(clippy::unwrap_used, reason = "benchmark")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use liftoff_sdk::RequestReporter;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower::ServiceExt;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Answers every post with 200 `{"accepted":0}` (the count does not matter here).
async fn ingest_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                              content-length: 14\r\nconnection: close\r\n\r\n{\"accepted\":0}";
                let _ = write.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

fn routes() -> Router {
    Router::new().route("/users/{id}", get(|| async { "ok" }))
}

fn apps(rt: &Runtime) -> (Router, Router, RequestReporter) {
    let reporter = rt.block_on(async {
        let url = ingest_endpoint().await;
        let builder = RequestReporter::builder(url, "bench-token")
            .service("bench")
            .user_header("x-user");
        let builder = if cfg!(feature = "axum") {
            builder
        } else {
            builder.route_fn(|parts| {
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_owned())
            })
        };
        builder.build().unwrap()
    });
    let with = routes().layer(reporter.layer());
    (routes(), with, reporter)
}

fn request() -> Request<Body> {
    Request::get("/users/42").body(Body::empty()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let (without, with, reporter) = apps(&rt);
    let mut group = c.benchmark_group("axum_oneshot");
    group.bench_function("without_layer", |b| {
        b.iter(|| rt.block_on(without.clone().oneshot(black_box(request()))))
    });
    group.bench_function("with_layer", |b| {
        b.iter(|| rt.block_on(with.clone().oneshot(black_box(request()))))
    });
    group.finish();
    rt.block_on(reporter.shutdown());
    println!(
        "reporter: {} records sent, {} dropped",
        reporter.sent(),
        reporter.dropped()
    );
}

/// Alternating rounds of each, median per-request time, so drift affects both alike.
fn difference() {
    let rt = runtime();
    let (without, with, reporter) = apps(&rt);
    const N: u32 = 20_000;
    let time = |app: &Router| {
        let start = Instant::now();
        for _ in 0..N {
            black_box(rt.block_on(app.clone().oneshot(request())).unwrap());
        }
        start.elapsed() / N
    };
    // Warm up.
    time(&without);
    time(&with);
    let (mut a, mut b): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        a.push(time(&without));
        b.push(time(&with));
    }
    a.sort();
    b.sort();
    let (a, b) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "interleaved medians: without layer {} ns, with layer {} ns, overhead {} ns per request",
        a.as_nanos(),
        b.as_nanos(),
        b.as_nanos() as i128 - a.as_nanos() as i128
    );
    rt.block_on(reporter.shutdown());
    println!(
        "reporter: {} records sent, {} dropped",
        reporter.sent(),
        reporter.dropped()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    difference();
}
