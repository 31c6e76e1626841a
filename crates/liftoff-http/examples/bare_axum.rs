//! The reference for Liftoff's HTTP benchmarks: a bare axum server that answers
//! `POST /ofrep/v1/evaluate/flags` with a fixed OFREP-shaped body for `N` flags — no auth, no
//! evaluation, no middleware. Liftoff's own endpoint is measured against it in the same run
//! (`bench/ofrep.sh`).
//!
//! Usage: `bare_axum ADDR FLAGS`

use axum::Router;
use axum::routing::post;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7099".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let flags: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"key": format!("flag-{i}"), "value": i % 2 == 0, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}}))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "flags": flags }))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/ofrep/v1/evaluate/flags",
            post(move || {
                let body = body.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        axum::serve(listener, app).await
    })?;
    Ok(())
}
