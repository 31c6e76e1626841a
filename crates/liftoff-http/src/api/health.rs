//! Liveness, readiness and a detailed health report. Public: they reveal no data, and load
//! balancers and orchestrators call them without credentials.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::jobs::{JobStatus, QueueDepth};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(detailed))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// 200 while the process lives.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok",
        detail: None,
    })
}

/// 200 once the stores answer; 503 while they do not or while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Status), (status = 503, body = Status)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    if !state.is_accepting() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "unavailable",
                detail: Some("shutting down".into()),
            }),
        );
    }
    match state.health.ping().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Status {
                status: "ready",
                detail: None,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Readiness check failed.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Status {
                    status: "unavailable",
                    detail: Some("state store unreachable".into()),
                }),
            )
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StoreHealthReport {
    /// What the store holds: `state` (keys, users, flags, …), or `events` when product events
    /// are kept in ClickHouse.
    pub name: &'static str,
    /// `sqlite`, `postgres` or `clickhouse`.
    pub backend: &'static str,
    pub ok: bool,
    pub latency_ms: Option<f64>,
    pub schema_version: Option<i64>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DetailedHealth {
    /// `ok` when every store answers, `degraded` otherwise.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub stores: Vec<StoreHealthReport>,
    pub jobs: Vec<JobStatus>,
    pub queues: Vec<QueueDepth>,
    /// This replica's claim on the lease the singleton jobs run under.
    pub lease: liftoff_core::lease::LeaseStatus,
    /// Flag and launch changes the state store announced (PostgreSQL `LISTEN`; 0 on SQLite).
    pub change_notices: u64,
}

/// Each store (reachability, latency, schema), each background job (runs, failures, last
/// error; singleton jobs run only on the replica holding the lease), each bounded queue (depth
/// and capacity) and whether this replica holds the singleton lease.
#[utoipa::path(get, path = "/health/detailed", tag = "health", responses((status = 200, body = DetailedHealth)))]
async fn detailed(State(state): State<AppState>) -> Json<DetailedHealth> {
    let stores: Vec<StoreHealthReport> = state
        .health
        .check_stores()
        .await
        .into_iter()
        .map(|check| StoreHealthReport {
            name: check.name,
            backend: check.backend,
            ok: check.ping.is_ok(),
            latency_ms: check.ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
            schema_version: check.schema_version.ok(),
            // The kind of failure only: messages can carry host names.
            error: check.ping.err().map(|_| "unreachable".to_owned()),
        })
        .collect();
    let ok = stores.iter().all(|s| s.ok);
    Json(DetailedHealth {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        stores,
        jobs: state.jobs.jobs(),
        queues: state.jobs.queues(),
        lease: state.leadership.status(),
        change_notices: state
            .change_notices
            .load(std::sync::atomic::Ordering::Relaxed),
    })
}
