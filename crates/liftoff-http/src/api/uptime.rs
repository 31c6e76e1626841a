//! Uptime monitors: CRUD (admin), status with uptime %, downtime periods and checks (read).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::uptime::service::{MonitorDetail, MonitorInput, UptimeSummary};
use liftoff_core::uptime::{CheckRecord, Monitor};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_monitors, create_monitor))
        .routes(routes!(get_monitor, update_monitor, delete_monitor))
        .routes(routes!(monitor_checks))
        .routes(routes!(uptime_summary))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SummaryParams {
    /// `15m`, `1h`, `4h`, `24h`, `7d` (default) or `30d` back from now.
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    /// Start, RFC 3339; with `to`, replaces `window`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End, RFC 3339 [default now].
    #[param(format = DateTime)]
    to: Option<String>,
}

/// Every enabled monitor over a window: passing checks of all (`uptime`, a fraction) and per
/// monitor, with the downtime periods that overlap it. Counts whole hours (hourly rollups,
/// kept 30 days): the weekly report reads the same answer.
#[utoipa::path(get, path = "/api/uptime/summary", tag = "uptime", params(SummaryParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = UptimeSummary), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn uptime_summary(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<SummaryParams>,
) -> Result<Json<UptimeSummary>, ApiError> {
    let window = p.window.or_else(|| Some("7d".to_owned()));
    let range = super::monitoring::range_only(window, p.from, p.to)?;
    Ok(Json(
        state
            .uptime
            .summary(range.from, range.to, state.launch.now())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/uptime/monitors", tag = "uptime", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Monitor>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_monitors(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Monitor>>, ApiError> {
    Ok(Json(state.uptime.list().await?))
}

/// Creates a monitor: `{name, url, method?, interval_seconds?, timeout_seconds?, expected_status?, keyword?, retries?, enabled?}`.
#[utoipa::path(post, path = "/api/uptime/monitors", tag = "uptime", request_body = MonitorInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = Monitor), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_monitor(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<MonitorInput>,
) -> Result<(StatusCode, Json<Monitor>), ApiError> {
    let m = state.uptime.create(&caller.principal.actor, input).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// The monitor with its status, uptime over 24 h / 7 d / 30 d, downtime periods, daily uptime,
/// response times and recent checks.
#[utoipa::path(get, path = "/api/uptime/monitors/{id}", tag = "uptime", params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = MonitorDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_monitor(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<MonitorDetail>, ApiError> {
    Ok(Json(state.uptime.detail(id, chrono::Utc::now()).await?))
}

/// Changes the fields given.
#[utoipa::path(patch, path = "/api/uptime/monitors/{id}", tag = "uptime", params(("id" = i64, Path)), request_body = MonitorInput,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Monitor), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_monitor(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<MonitorInput>,
) -> Result<Json<Monitor>, ApiError> {
    Ok(Json(
        state
            .uptime
            .update(&caller.principal.actor, id, input)
            .await?,
    ))
}

/// Deletes the monitor and its history.
#[utoipa::path(delete, path = "/api/uptime/monitors/{id}", tag = "uptime", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_monitor(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.uptime.delete(&caller.principal.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChecksParams {
    /// Hours back, 1–24 [default 24].
    #[param(minimum = 1, maximum = 24)]
    hours: Option<i64>,
    /// At most this many, newest first [default 500, at most 10000].
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// Raw checks (kept 24 hours), newest first.
#[utoipa::path(get, path = "/api/uptime/monitors/{id}/checks", tag = "uptime", params(("id" = i64, Path), ChecksParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<CheckRecord>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn monitor_checks(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<ChecksParams>,
) -> Result<Json<Vec<CheckRecord>>, ApiError> {
    Ok(Json(
        state
            .uptime
            .checks(
                id,
                super::monitoring::bounded(p.hours, 24, 1, 24, "hours")?,
                super::monitoring::bounded(p.limit, 500, 1, 10_000, "limit")?,
                chrono::Utc::now(),
            )
            .await?,
    ))
}
