//! Operations (named units of work): `POST /api/ingest/operations` and the
//! `/api/monitoring/stats/*` queries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use liftoff_core::monitoring::IngestError;
use liftoff_core::monitoring::operations::OperationRecord;
use liftoff_core::monitoring::operations::service::{
    ErrorsReport, OperationKind, OperationStats, OperationsSummary, UserFunnel,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::monitoring::{Accepted, limit, range_only};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Caller, Ingest, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_operations))
        .routes(routes!(stats_summary))
        .routes(routes!(stats_operations))
        .routes(routes!(stats_errors))
        .routes(routes!(user_funnel))
}

/// The records of a batch: a bare array, `{"operations": [...]}`, or one record. Each record
/// is read on its own so a refusal names the record and the field.
fn records(body: Value) -> Result<Vec<OperationRecord>, IngestError> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut o) if o.len() == 1 && o.contains_key("operations") => {
            match o.remove("operations") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(IngestError::Invalid {
                        index: 0,
                        message: "`operations` must be an array".into(),
                    });
                }
            }
        }
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(IngestError::Invalid {
                index: 0,
                message: "the body must be a record or an array of records".into(),
            });
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            serde_json::from_value(v).map_err(|e| IngestError::Invalid {
                index,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Records runs of named operations: `{operation, status: success|failure, duration_ms,
/// user_id?, context?, error?, error_type?, stack_trace?, cache_hit?, layer?, ts?, service?}`
/// each (a JSON array, or one object). All are validated before any is stored; the answer
/// comes once they are committed. Names starting with `external:` are external calls.
#[utoipa::path(post, path = "/api/ingest/operations", tag = "monitoring", request_body = Vec<OperationRecord>,
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = Accepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A record is invalid; nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
async fn ingest_operations(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    _room: crate::mw::room::Room<crate::mw::room::Operations>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Accepted>, ApiError> {
    Ok(Json(Accepted {
        accepted: state.operations.ingest(records(body)?).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// 15m, 1h (default), 4h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    /// Start, RFC 3339 or Unix seconds; with `to`, replaces `window`.
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// Only this service.
    service: Option<String>,
}

/// Totals over every operation: runs, success rate, latency, cache hit rate, error types.
#[utoipa::path(get, path = "/api/monitoring/stats/summary", tag = "monitoring", params(StatsParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = OperationsSummary), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn stats_summary(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Json<OperationsSummary>, ApiError> {
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state.operations.summary(r, p.service.as_deref()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OperationParams {
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    service: Option<String>,
    /// One operation.
    operation: Option<String>,
    /// `external` (names starting with `external:`) or `internal`.
    kind: Option<OperationKind>,
}

/// Per operation: runs, success rate, duration percentiles, cache hit rate, layer distribution
/// and fallback rate (share of runs that named a layer and were not served by the primary
/// layer: the one named `primary` if reported, else the most frequent), distinct users.
#[utoipa::path(get, path = "/api/monitoring/stats/operations", tag = "monitoring", params(OperationParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = BTreeMap<String, OperationStats>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn stats_operations(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<OperationParams>,
) -> Result<Json<BTreeMap<String, OperationStats>>, ApiError> {
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state
            .operations
            .operations(r, p.operation.as_deref(), p.service.as_deref(), p.kind)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorParams {
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// One operation.
    operation: Option<String>,
    /// 1–1000 (default 10).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The newest failures with their details (at most 20 are kept per operation, error type and
/// minute), and the count of every failure per error type.
#[utoipa::path(get, path = "/api/monitoring/stats/errors", tag = "monitoring", params(ErrorParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = ErrorsReport), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn stats_errors(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<ErrorParams>,
) -> Result<Json<ErrorsReport>, ApiError> {
    let n = limit(p.limit)?;
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state
            .operations
            .errors(r, p.operation.as_deref(), n)
            .await?,
    ))
}

/// Milestones: operations ordered by how many distinct users completed them successfully in
/// the window, each with its share of the first; `total_users` counts everyone who ran any
/// operation. User counts are per whole hour (the window is widened to whole hours) and cover
/// the last 30 days.
#[utoipa::path(get, path = "/api/monitoring/stats/user-funnel", tag = "monitoring", params(StatsParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = UserFunnel), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn user_funnel(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Json<UserFunnel>, ApiError> {
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state
            .operations
            .user_funnel(r, p.service.as_deref())
            .await?,
    ))
}
