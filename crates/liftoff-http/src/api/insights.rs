//! Analytics queries answered by the columnar engine: funnels, retention, active users,
//! features, paths, milestones, new vs returning, sessions, and error events.

use axum::Json;
use axum::extract::State;
use liftoff_analytics::Bucket;
use liftoff_core::analytics::event::now_ms;
use liftoff_core::analytics::insights::{
    ActiveUsersReport, ErrorsReport, FeaturesReport, FunnelReport, FunnelRequest, MilestonesReport,
    NewVsReturningRow, PathsReport, RetentionReport, RetentionRequest, SessionLookup,
    SessionsReport,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::mw::auth::{Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(funnel))
        .routes(routes!(retention))
        .routes(routes!(active_users))
        .routes(routes!(features))
        .routes(routes!(paths))
        .routes(routes!(milestones))
        .routes(routes!(new_vs_returning))
        .routes(routes!(sessions))
        .routes(routes!(session))
        .routes(routes!(errors))
}

fn days(raw: Option<f64>) -> Result<f64, ApiError> {
    match raw.unwrap_or(30.0) {
        d if d.is_finite() && d > 0.0 && d <= 3650.0 => Ok(d),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "`days` must be more than 0 and at most 3650",
        )),
    }
}

fn count(raw: Option<usize>, default: usize, name: &str) -> Result<usize, ApiError> {
    match raw.unwrap_or(default) {
        n @ 1..=1000 => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("`{name}` must be between 1 and 1000"),
        )),
    }
}

/// An ordered funnel: users who did each step after the previous one, within the conversion
/// window of their first step (ClickHouse `windowFunnel` semantics). Rates are fractions 0–1,
/// each step's relative to the previous step.
#[utoipa::path(post, path = "/api/analytics/funnel", tag = "analytics", request_body = FunnelRequest,
    security(("bearer" = ["read"])),
    responses((status = 200, body = FunnelReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn funnel(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiJson(req): ApiJson<FunnelRequest>,
) -> Result<Json<FunnelReport>, ApiError> {
    req.validate()?;
    Ok(Json(state.insights.funnel(&req, now_ms()).await?))
}

/// First-seen cohorts (UTC days) and the fraction (0–1) of each active on day N after ("on
/// day N" retention), with D1/D7/D30 over the cohorts old enough to tell.
#[utoipa::path(post, path = "/api/analytics/retention", tag = "analytics", request_body = Option<RetentionRequest>,
    security(("bearer" = ["read"])),
    responses((status = 200, body = RetentionReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn retention(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    OptionalJson(req): OptionalJson<RetentionRequest>,
) -> Result<Json<RetentionReport>, ApiError> {
    let d = days(req.days)?;
    Ok(Json(state.insights.retention(d, now_ms()).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MinutesParam {
    /// Users active in the last `minutes` minutes, 1–43200 (default 30).
    #[param(minimum = 1, maximum = 43200)]
    minutes: Option<u32>,
}

/// Users and sessions active in the last minutes, DAU/WAU/MAU with their series over 30 days,
/// and stickiness (average DAU / MAU).
#[utoipa::path(get, path = "/api/analytics/active-users", tag = "analytics", params(MinutesParam),
    security(("bearer" = ["read"])),
    responses((status = 200, body = ActiveUsersReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn active_users(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<MinutesParam>,
) -> Result<Json<ActiveUsersReport>, ApiError> {
    let minutes = q.minutes.unwrap_or(30);
    if !(1..=43_200).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`minutes` must be between 1 and 43200",
        ));
    }
    Ok(Json(state.insights.active_users(minutes, now_ms()).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowParams {
    /// Days back from now (default 30).
    #[param(exclusive_minimum = 0, maximum = 3650)]
    days: Option<f64>,
    /// Rows, 1–1000 (default 10).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The most used events with how often and by how many users.
#[utoipa::path(get, path = "/api/analytics/features", tag = "analytics", params(WindowParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = FeaturesReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn features(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<WindowParams>,
) -> Result<Json<FeaturesReport>, ApiError> {
    let (d, limit) = (days(q.days)?, count(q.limit, 10, "limit")?);
    Ok(Json(state.insights.features(d, limit, now_ms()).await?))
}

/// The most common transitions (event A directly followed by B in a session) and three-step
/// flows.
#[utoipa::path(get, path = "/api/analytics/paths", tag = "analytics", params(WindowParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = PathsReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn paths(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<WindowParams>,
) -> Result<Json<PathsReport>, ApiError> {
    let (d, limit) = (days(q.days)?, count(q.limit, 10, "limit")?);
    Ok(Json(state.insights.paths(d, limit, now_ms()).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// Days back from now (default 30).
    #[param(exclusive_minimum = 0, maximum = 3650)]
    days: Option<f64>,
}

/// The user journey: for each event, the users whose first time doing it falls in the window,
/// and how long after they were first seen.
#[utoipa::path(get, path = "/api/analytics/milestones", tag = "analytics", params(DaysParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = MilestonesReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn milestones(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<DaysParams>,
) -> Result<Json<MilestonesReport>, ApiError> {
    Ok(Json(
        state.insights.milestones(days(q.days)?, now_ms()).await?,
    ))
}

/// Sessions (explicit ids, else 30 minutes of inactivity): count, average length, bounces.
#[utoipa::path(get, path = "/api/analytics/sessions", tag = "analytics", params(DaysParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = SessionsReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn sessions(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<DaysParams>,
) -> Result<Json<SessionsReport>, ApiError> {
    Ok(Json(
        state.insights.sessions(days(q.days)?, now_ms()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NewVsReturningParams {
    /// Days back from now (default 30).
    #[param(exclusive_minimum = 0, maximum = 3650)]
    days: Option<f64>,
    /// `day` (default), `week` or `month`.
    #[param(pattern = "^(day|week|month)$")]
    bucket: Option<String>,
}

/// Active users per bucket, split into those first seen in it and those seen before.
#[utoipa::path(get, path = "/api/analytics/new-vs-returning", tag = "analytics", params(NewVsReturningParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<NewVsReturningRow>),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn new_vs_returning(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<NewVsReturningParams>,
) -> Result<Json<Vec<NewVsReturningRow>>, ApiError> {
    let bucket = match q.bucket.as_deref().unwrap_or("day") {
        "day" => Bucket::Day,
        "week" => Bucket::Week,
        "month" => Bucket::Month,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`bucket` is day, week or month",
            ));
        }
    };
    Ok(Json(
        state
            .insights
            .new_vs_returning(days(q.days)?, bucket, now_ms())
            .await?,
    ))
}

/// One session (by its explicit `session_id`): its user, first and last activity, events per
/// name and the events, oldest first. An id no event carries answers `{"found": false}`, as
/// the seed does.
#[utoipa::path(get, path = "/api/analytics/session/{session_id}", tag = "analytics",
    params(("session_id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = SessionLookup)))]
async fn session(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionLookup>, ApiError> {
    Ok(Json(state.insights.session(&id).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoursParam {
    /// Hours back from now, more than 0 and at most 8760 (default 24).
    #[param(exclusive_minimum = 0, maximum = 8760)]
    hours: Option<f64>,
}

/// Error events (`$exception`, `error`, `exception`, `*_error`) of the last hours: totals by
/// type and event, affected users, the latest 50.
#[utoipa::path(get, path = "/api/analytics/errors", tag = "analytics", params(HoursParam),
    security(("bearer" = ["read"])),
    responses((status = 200, body = ErrorsReport),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn errors(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<HoursParam>,
) -> Result<Json<ErrorsReport>, ApiError> {
    let hours = q.hours.unwrap_or(24.0);
    if !(hours.is_finite() && hours > 0.0 && hours <= 8760.0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`hours` must be more than 0 and at most 8760",
        ));
    }
    Ok(Json(state.insights.errors(hours, now_ms()).await?))
}
