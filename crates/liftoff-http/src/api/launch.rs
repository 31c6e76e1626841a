//! Launch controls: the soft-launch cap and its waitlist, presets, maintenance mode, the phase
//! plan and user feedback. Apps call `user-limit`, `status` and `feedback` with an ingest key;
//! reads take `read`, changes `admin`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use liftoff_core::launch::feature::{FeatureAnswer, feature_for};
use liftoff_core::launch::feedback::{
    BacklogItem, Feedback, FeedbackInput, FeedbackStatus, FeedbackSummary,
};
use liftoff_core::launch::figures::LaunchMetrics;
use liftoff_core::launch::initialize::{Initialized, PresetTargets};
use liftoff_core::launch::phases::{CriterionResult, Phase};
use liftoff_core::launch::readiness::Readiness;
use liftoff_core::launch::report::LaunchReport;
use liftoff_core::launch::scaling::ScalingReport;
use liftoff_core::launch::service::{InitializeInput, LaunchError, LaunchStatus, MaintenanceInput};
use liftoff_core::launch::store::{AdmissionCounts, FeedbackQuery, LaunchSettings, LaunchUser};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Ingest, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_launch, patch_launch))
        .routes(routes!(initialize))
        .routes(routes!(user_limit))
        .routes(routes!(feature))
        .routes(routes!(admit))
        .routes(routes!(list_users))
        .routes(routes!(revoke_user))
        .routes(routes!(put_maintenance))
        .routes(routes!(list_windows, create_window))
        .routes(routes!(status))
        .routes(routes!(get_phases, put_phases))
        .routes(routes!(advance_phase))
        .routes(routes!(readiness))
        .routes(routes!(metrics))
        .routes(routes!(scaling))
        .routes(routes!(report))
        .merge(
            // The feedback widget posts from the customer's page.
            OpenApiRouter::new()
                .routes(routes!(submit_feedback, list_feedback))
                .layer(axum::middleware::from_fn(crate::mw::cors::public)),
        )
        .routes(routes!(resolve_feedback))
        .routes(routes!(feedback_summary))
        .routes(routes!(feedback_backlog))
}

/// The launch's settings and how many users hold a seat or wait.
#[derive(Serialize, ToSchema)]
pub struct LaunchState {
    #[serde(flatten)]
    pub settings: LaunchSettings,
    pub admitted_count: u64,
    pub waitlist_count: u64,
    /// Users a change just admitted from the waitlist (in order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admitted: Vec<String>,
}

async fn state_of(
    state: &AppState,
    settings: LaunchSettings,
    admitted: Vec<String>,
) -> Result<LaunchState, ApiError> {
    let AdmissionCounts {
        admitted: a,
        waiting,
    } = state.launch.counts().await?;
    Ok(LaunchState {
        settings,
        admitted_count: a,
        waitlist_count: waiting,
        admitted,
    })
}

#[utoipa::path(get, path = "/api/launch", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = LaunchState), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn get_launch(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<LaunchState>, ApiError> {
    let settings = state.launch.settings().await?;
    Ok(Json(state_of(&state, settings, Vec::new()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchPatch {
    /// Seats for admitted users; `null` removes the cap. Raising it admits from the waitlist
    /// in order of first ask. Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 10000000)]
    pub user_limit: Option<Option<u32>>,
    /// The notification channel (`/api/notifications/channels`) told of each admission with a
    /// `launch.admitted` notice; `null` for none. Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub admission_channel: Option<Option<i64>>,
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// A field that is present, `null` included (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes the user limit and/or the admission channel; at least one of them.
#[utoipa::path(patch, path = "/api/launch", tag = "launch", request_body = LaunchPatch, security(("bearer" = ["admin"])),
    responses((status = 200, body = LaunchState), (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn patch_launch(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(patch): ApiJson<LaunchPatch>,
) -> Result<Json<LaunchState>, ApiError> {
    let actor = &caller.principal.actor;
    if patch.user_limit.is_none() && patch.admission_channel.is_none() {
        return Err(LaunchError::Invalid(
            "nothing to change: send `user_limit` and/or `admission_channel`".into(),
        )
        .into());
    }
    let mut settings = None;
    if let Some(channel) = patch.admission_channel {
        let (saved, _) = state
            .set_admission_channel(channel, patch.reason.clone(), actor)
            .await?;
        settings = Some(saved);
    }
    let mut admitted = Vec::new();
    if let Some(limit) = patch.user_limit {
        let (saved, newly) = state
            .launch
            .set_user_limit(limit, patch.reason, actor)
            .await?;
        settings = Some(saved);
        admitted = newly;
    }
    let settings = match settings {
        Some(s) => s,
        None => state.launch.settings().await?,
    };
    Ok(Json(state_of(&state, settings, admitted).await?))
}

/// Applies a preset in one step: development (no limit, every feature on, critical alert
/// rules only), staging (50 users, the listed features, error-rate and response-time rules),
/// production (`user_limit`, default 100; `features` on; `beta_features` on for admitted users;
/// every launch threshold as a rule). Features without a flag get one (audited with the
/// preset as the reason); the preset's rules are replaced by name, never duplicated.
#[utoipa::path(post, path = "/api/launch/initialize", tag = "launch", request_body = InitializeInput, security(("bearer" = ["admin"])),
    responses((status = 200, body = Initialized), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn initialize(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<InitializeInput>,
) -> Result<Json<Initialized>, ApiError> {
    let targets = PresetTargets {
        launch: &state.launch,
        flags: &state.flags,
        alerts: &state.alerts,
    };
    Ok(Json(
        targets.initialize(&input, &caller.principal.actor).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UserParam {
    /// The app's id for the user (1–200 characters, not only spaces, no control characters).
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    user_id: String,
}

/// A scheduled maintenance window for apps.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    /// [default "Scheduled maintenance"]
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: Option<String>,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// After `starts_at`.
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Shown to users while the window runs.
    #[schema(max_length = 1000)]
    pub message: Option<String>,
    /// Hold users out while it runs [default true]; `false` only holds back notifications.
    pub gate: Option<bool>,
    /// Tell every enabled notification channel this many minutes ahead (0: no advance
    /// notice), at the start and at the end (`launch.maintenance` notices); absent: no notices.
    #[schema(maximum = 10080)]
    pub notify_before_minutes: Option<u32>,
}

/// Maintenance windows (the alerts' windows: each also holds back notifications).
#[utoipa::path(get, path = "/api/launch/maintenance/windows", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<liftoff_core::alerts::model::MaintenanceWindow>)))]
async fn list_windows(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<liftoff_core::alerts::model::MaintenanceWindow>>, ApiError> {
    Ok(Json(state.alerts.maintenance_windows().await?))
}

/// Schedules maintenance: from `starts_at` to `ends_at` apps answer 503 (through
/// `/api/launch/status`, `liftoff.maintenance` and the SDK's gate), allow-listed users pass,
/// and alert notifications are held back.
#[utoipa::path(post, path = "/api/launch/maintenance/windows", tag = "launch", request_body = WindowInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = liftoff_core::alerts::model::MaintenanceWindow), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_window(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<WindowInput>,
) -> Result<
    (
        StatusCode,
        Json<liftoff_core::alerts::model::MaintenanceWindow>,
    ),
    ApiError,
> {
    let window = state
        .alerts
        .create_maintenance(
            &caller.principal.actor,
            liftoff_core::alerts::model::MaintenanceInput {
                name: input
                    .name
                    .unwrap_or_else(|| "Scheduled maintenance".to_owned()),
                starts_at: Some(input.starts_at),
                ends_at: Some(input.ends_at),
                weekly: None,
                gate: input.gate.unwrap_or(true),
                message: input.message,
                notify_before_minutes: input.notify_before_minutes,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(window)))
}

/// One user's answer from the soft-launch cap.
#[derive(Serialize, ToSchema)]
pub struct UserLimitAnswer {
    pub user_id: String,
    pub allowed: bool,
    pub admitted_count: u64,
    /// `null`: no cap.
    pub user_limit: Option<u32>,
    /// 1-based; `null` when allowed.
    pub waitlist_position: Option<u64>,
    pub reason: String,
}

/// Asks for a seat for `user_id`: first come, first served, and stable (an admitted user
/// stays admitted across restarts and replicas). Refused users join the waitlist in order of
/// their first ask.
#[utoipa::path(get, path = "/api/launch/user-limit", tag = "launch", params(UserParam), security(("bearer" = ["ingest"])),
    responses((status = 200, body = UserLimitAnswer), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn user_limit(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiQuery(p): ApiQuery<UserParam>,
) -> Result<Json<UserLimitAnswer>, ApiError> {
    let a = state.launch.ask(&p.user_id).await?;
    let reason = match (a.allowed, a.user_limit) {
        (true, None) => "no user limit".to_owned(),
        (true, Some(limit)) => format!("admitted ({} of {limit} seats taken)", a.admitted_count),
        (false, Some(limit)) => format!(
            "the user limit of {limit} is reached; waitlist position {}",
            a.waitlist_position.unwrap_or(0)
        ),
        (false, None) => "waiting to be admitted".to_owned(),
    };
    Ok(Json(UserLimitAnswer {
        user_id: a.user_id,
        allowed: a.allowed,
        admitted_count: a.admitted_count,
        user_limit: a.user_limit,
        waitlist_position: a.waitlist_position,
        reason,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OptionalUser {
    /// The user to answer for; beta features need it.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    user_id: Option<String>,
}

/// Whether a launch feature (a flag) is on for a user; a beta feature only for admitted users.
/// Asking reads admission and never takes a seat.
#[utoipa::path(get, path = "/api/launch/feature/{feature}", tag = "launch", params(("feature" = String, Path), OptionalUser),
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = FeatureAnswer), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn feature(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiPath(feature): ApiPath<String>,
    ApiQuery(p): ApiQuery<OptionalUser>,
) -> Result<Json<FeatureAnswer>, ApiError> {
    Ok(Json(
        feature_for(&state.launch, &state.flags, &feature, p.user_id.as_deref()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmitInput {
    #[schema(minimum = 1, maximum = 100000)]
    pub count: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Admitted {
    /// In waitlist order.
    pub admitted: Vec<String>,
}

/// Admits the next `count` waiting users, whatever the limit.
#[utoipa::path(post, path = "/api/launch/admit", tag = "launch", request_body = AdmitInput, security(("bearer" = ["admin"])),
    responses((status = 200, body = Admitted), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn admit(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<AdmitInput>,
) -> Result<Json<Admitted>, ApiError> {
    let admitted = state
        .launch
        .admit(input.count, &caller.principal.actor)
        .await?;
    Ok(Json(Admitted { admitted }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsersParams {
    /// Only users still waiting [default false].
    waiting: Option<bool>,
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    offset: Option<u64>,
    /// 1–1000 [default 100].
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Users known to admission, in order of first ask.
#[utoipa::path(get, path = "/api/launch/users", tag = "launch", params(UsersParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<LaunchUser>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_users(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<UsersParams>,
) -> Result<Json<Vec<LaunchUser>>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to 1000 (got {limit})"),
        ));
    }
    let offset = p.offset.unwrap_or(0);
    if i64::try_from(offset).is_err() {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`offset` must be at most {} (got {offset})", i64::MAX),
        ));
    }
    Ok(Json(
        state
            .launch
            .users(p.waiting.unwrap_or(false), offset, limit)
            .await?,
    ))
}

/// Revokes a user's seat (or place in the waitlist); a later ask starts at the waitlist's end.
#[utoipa::path(delete, path = "/api/launch/users/{id}", tag = "launch",
    params(("id" = String, Path, description = "The app's id for the user", min_length = 1, max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$")),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn revoke_user(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.launch.revoke(&id, &caller.principal.actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no launch user `{id}`")))
    }
}

/// Turns end-user maintenance mode on or off. Apps enforce it through `GET /api/launch/status`,
/// the `liftoff.maintenance` OFREP flag or the SDK's `LaunchGate`.
#[utoipa::path(put, path = "/api/launch/maintenance", tag = "launch", request_body = MaintenanceInput, security(("bearer" = ["admin"])),
    responses((status = 200, body = LaunchStatus), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_maintenance(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<MaintenanceInput>,
) -> Result<Json<LaunchStatus>, ApiError> {
    state
        .launch
        .set_maintenance(input, &caller.principal.actor)
        .await?;
    Ok(Json(state.launch.status().await?))
}

/// What apps poll: maintenance mode and the current phase. Send the last `ETag` as
/// `If-None-Match` to get 304 while nothing changed.
#[utoipa::path(get, path = "/api/launch/status", tag = "launch", security(("bearer" = ["ingest"])),
    responses((status = 200, body = LaunchStatus), (status = 304, description = "Unchanged since the ETag"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn status(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let s = state.launch.status().await?;
    // A gating window starting or ending changes the answer without a settings revision.
    let etag = match s.window_ends_at {
        Some(end) => format!("\"launch-{}-{}\"", s.revision, end.timestamp()),
        None => format!("\"launch-{}\"", s.revision),
    };
    let fresh = crate::etag::is_fresh(&headers, &etag);
    let etag = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal(e.to_string()))?;
    if fresh {
        return Ok(crate::etag::not_modified(etag));
    }
    Ok(([(header::ETAG, etag)], Json(s)).into_response())
}

/// The phase plan and the current phase.
#[derive(Serialize, ToSchema)]
pub struct PhasePlan {
    pub phases: Vec<Phase>,
    /// Index into `phases`.
    pub current: usize,
    pub current_name: String,
}

fn plan_of(s: &LaunchSettings) -> PhasePlan {
    PhasePlan {
        current: s.phase,
        current_name: s
            .phases
            .get(s.phase)
            .map_or_else(String::new, |p| p.name.clone()),
        phases: s.phases.clone(),
    }
}

#[utoipa::path(get, path = "/api/launch/phases", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = PhasePlan)))]
async fn get_phases(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<PhasePlan>, ApiError> {
    Ok(Json(plan_of(&state.launch.settings().await?)))
}

/// Replaces the plan: 1–20 phases with unique names. The current phase is kept by name.
#[utoipa::path(put, path = "/api/launch/phases", tag = "launch", request_body = Vec<Phase>, security(("bearer" = ["admin"])),
    responses((status = 200, body = PhasePlan), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_phases(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(phases): ApiJson<Vec<Phase>>,
) -> Result<Json<PhasePlan>, ApiError> {
    let saved = state
        .launch
        .set_phases(phases, &caller.principal.actor)
        .await?;
    Ok(Json(plan_of(&saved)))
}

/// Stores a user's feedback (apps and the widget, with an ingest key).
#[utoipa::path(post, path = "/api/launch/feedback", tag = "launch", request_body = FeedbackInput, security(("bearer" = ["ingest"])),
    responses((status = 201, body = Feedback), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn submit_feedback(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiJson(input): ApiJson<FeedbackInput>,
) -> Result<(StatusCode, Json<Feedback>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.launch.submit_feedback(input).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FeedbackParams {
    #[param(max_length = 50)]
    category: Option<String>,
    status: Option<FeedbackStatus>,
    /// 1–500 [default 50].
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `id` of the previous page's last item.
    #[param(minimum = 1)]
    cursor: Option<i64>,
}

/// Feedback, newest first, a page at a time.
#[utoipa::path(get, path = "/api/launch/feedback", tag = "launch", params(FeedbackParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Feedback>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_feedback(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<FeedbackParams>,
) -> Result<Json<Vec<Feedback>>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to 500 (got {limit})"),
        ));
    }
    if let Some(c) = p.category.as_deref().filter(|c| c.chars().count() > 50) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "`category` is at most 50 characters (got {})",
                c.chars().count()
            ),
        ));
    }
    if let Some(c) = p.cursor.filter(|c| *c < 1) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`cursor` is an item id, 1 or more (got {c})"),
        ));
    }
    Ok(Json(
        state
            .launch
            .list_feedback(&FeedbackQuery {
                category: p.category,
                status: p.status,
                before_id: p.cursor,
                limit,
            })
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    #[schema(max_length = 1000)]
    pub resolution: Option<String>,
}

#[utoipa::path(post, path = "/api/launch/feedback/{id}/resolve", tag = "launch", params(("id" = i64, Path)), request_body = ResolveInput, security(("bearer" = ["admin"])),
    responses((status = 200, body = Feedback), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn resolve_feedback(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ResolveInput>,
) -> Result<Json<Feedback>, ApiError> {
    Ok(Json(
        state
            .launch
            .resolve_feedback(id, input.resolution, &caller.principal.actor)
            .await?,
    ))
}

/// Count, average rating, rating histogram, per-category figures and weekly averages.
#[utoipa::path(get, path = "/api/launch/feedback/summary", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = FeedbackSummary)))]
async fn feedback_summary(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<FeedbackSummary>, ApiError> {
    Ok(Json(state.launch.feedback_summary().await?))
}

/// Feature requests ranked by distinct users asking.
#[utoipa::path(get, path = "/api/launch/feedback/backlog", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<BacklogItem>)))]
async fn feedback_backlog(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<BacklogItem>>, ApiError> {
    Ok(Json(state.launch.feedback_backlog().await?))
}

/// Whether the launch is ready, check by check, from live data: error rate and p95 over the
/// last hour, uptime monitors, a tested notification channel, critical alert rules, a flag
/// for every beta feature, free disk, the stores and a recent backup.
#[utoipa::path(get, path = "/api/launch/readiness", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = Readiness), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn readiness(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Readiness>, ApiError> {
    Ok(Json(state.sources().readiness(state.launch.now()).await?))
}

/// The launch's key figures over the last hour, each with its level against the launch
/// thresholds (error rate 3 % / 5 %, p95 1,500 / 2,000 ms, success rate below 95 %).
#[utoipa::path(get, path = "/api/launch/metrics", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = LaunchMetrics), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn metrics(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<LaunchMetrics>, ApiError> {
    Ok(Json(state.sources().metrics(state.launch.now()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceInput {
    /// Required with `force`.
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    /// Advance although criteria fail (audited with the reason).
    #[serde(default)]
    pub force: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Advanced {
    #[serde(flatten)]
    pub plan: PhasePlan,
    /// The left phase's exit criteria as judged.
    pub criteria: Vec<CriterionResult>,
    /// Users the new phase's limit admitted from the waitlist.
    pub admitted: Vec<String>,
}

/// Moves to the next phase when the current one's exit criteria pass (or with `force` and a
/// reason); the next phase's user limit applies at once. 409 with the failing criteria
/// otherwise.
#[utoipa::path(post, path = "/api/launch/phases/advance", tag = "launch", request_body = AdvanceInput, security(("bearer" = ["admin"])),
    responses((status = 200, body = Advanced), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn advance_phase(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<AdvanceInput>,
) -> Result<Json<Advanced>, ApiError> {
    let figures = state.sources().phase_figures(state.launch.now()).await?;
    let result = state
        .launch
        .advance(&figures, input.reason, input.force, &caller.principal.actor)
        .await;
    match result {
        Ok((settings, criteria, admitted)) => Ok(Json(Advanced {
            plan: plan_of(&settings),
            criteria,
            admitted,
        })),
        Err(liftoff_core::launch::LaunchError::CriteriaNotMet { phase, results }) => {
            let detail = format!(
                "the phase `{phase}` cannot be left yet: {} not met; fix them or advance with `force` and a reason",
                results
                    .iter()
                    .filter(|r| !r.pass)
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Err(
                ApiError::new(StatusCode::CONFLICT, "phase_criteria_not_met", detail)
                    .with_extension(
                        "criteria",
                        serde_json::to_value(&results).unwrap_or_default(),
                    ),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// How the launch report is written.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = LaunchReportFormat)]
pub enum ReportFormat {
    #[default]
    Json,
    /// Markdown (GitHub-flavoured tables).
    Md,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (default) or `md`.
    #[param(inline)]
    format: Option<ReportFormat>,
}

/// The launch so far, from its first ask or phase change (at most 90 days back): phase
/// history, admissions per day, seed 002's success targets (uptime ≥ 99.9 %, average response
/// < 1,000 ms, errors < 1 %, rating > 4.0) over that span, incidents, feedback and the most
/// requested features, scaling and readiness. Each figure is what the API answers for the
/// same span.
#[utoipa::path(get, path = "/api/launch/report", tag = "launch", params(ReportParams), security(("bearer" = ["read"])),
    responses((status = 200, description = "The report as JSON or Markdown",
            content((LaunchReport = "application/json"), (String = "text/markdown"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn report(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<ReportParams>,
) -> Result<Response, ApiError> {
    let report = state
        .sources()
        .launch_report(state.launch.now(), state.settings.instance_monthly_cost)
        .await?;
    Ok(match q.format.unwrap_or_default() {
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Md => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            )],
            liftoff_core::reports::Report::Launch(Box::new(report))
                .render(liftoff_core::reports::Format::Md)
                .body,
        )
            .into_response(),
    })
}

/// Scaling recommendations from measured trends: the daily peak request rate over the last 28
/// days fitted log-linearly (growth per week, R²), peaks projected at 30/90/180 days, when
/// an instance's CPU or memory crosses 70 %, and the instances (and monthly cost, with
/// `--instance-monthly-cost`) that keep the projected load under it.
#[utoipa::path(get, path = "/api/launch/scaling", tag = "launch", security(("bearer" = ["read"])),
    responses((status = 200, body = ScalingReport), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn scaling(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<ScalingReport>, ApiError> {
    Ok(Json(
        state
            .sources()
            .scaling(state.launch.now(), state.settings.instance_monthly_cost)
            .await?,
    ))
}
