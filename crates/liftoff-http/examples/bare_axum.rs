//! The reference for Liftoff's HTTP benchmarks, measured in the same run as Liftoff:
//! - `POST /ofrep/v1/evaluate/flags` answers a fixed OFREP-shaped body for `N` flags — no auth,
//!   no evaluation, no middleware (`bench/ofrep.sh`);
//! - `POST /api/ingest/requests` parses the same JSON batch Liftoff takes into typed records
//!   and answers the count — no validation, no storage (`bench/ingest.sh`);
//! - `GET /api/launch/user-limit?user_id=` answers an admission-shaped body for the user — no
//!   auth, no store (`bench/launch.sh`).
//!
//! Usage: `bare_axum ADDR FLAGS`

use axum::Router;
use axum::routing::{get, post};

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
        let app = Router::new()
            .route(
                "/api/launch/user-limit",
                get(
                    |axum::extract::Query(q): axum::extract::Query<UserQuery>| async move {
                        axum::Json(serde_json::json!({
                            "user_id": q.user_id, "allowed": true, "admitted_count": 1000,
                            "user_limit": 100000, "waitlist_position": null, "reason": "admitted",
                        }))
                    },
                ),
            )
            .route(
                "/api/ingest/requests",
                post(|axum::Json(batch): axum::Json<Vec<Record>>| async move {
                    axum::Json(serde_json::json!({ "accepted": batch.len() }))
                }),
            )
            .route(
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

/// The fields of a request record, parsed as Liftoff parses them.
#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "parsed for a fair comparison, never read")]
struct Record {
    service: Option<String>,
    method: String,
    route: String,
    status: u16,
    duration_ms: f64,
    ts: Option<serde_json::Value>,
    user_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct UserQuery {
    user_id: String,
}
