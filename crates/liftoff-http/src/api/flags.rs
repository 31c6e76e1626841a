//! Feature flags, the seed's endpoints: CRUD, check, a user's flags, stats, gradual rollouts
//! and history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::audit::{AuditEntry, AuditQuery};
use liftoff_core::flags::{
    Environment, Flag, FlagPatch, NewFlag, RolloutAnswer, RolloutPlan, context, payload_value,
};
use liftoff_eval::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Ingest, Read, ReadOrIngest};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flags, create_flag))
        .routes(routes!(stats))
        .routes(routes!(user_flags))
        .routes(routes!(get_flag, patch_flag, delete_flag))
        .routes(routes!(check_flag))
        .routes(routes!(gradual_rollout))
        .routes(routes!(rollout_action))
        .routes(routes!(history))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvParam {
    /// development, staging or production (default; `dev`, `stage`, `prod` also accepted).
    #[param(pattern = "^(|development|dev|staging|stage|production|prod)$")]
    environment: Option<String>,
}

pub(crate) fn environment(raw: Option<&str>) -> Result<Environment, ApiError> {
    match raw {
        None | Some("") => Ok(Environment::Production),
        Some(e) => Environment::parse(e).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_environment",
                format!("unknown environment `{e}`: use development, staging or production"),
            )
        }),
    }
}

/// A flag as read: the definition, the sizes of its user lists (the seed's fields) and
/// whether it is stale.
#[derive(Serialize, ToSchema)]
pub struct FlagView {
    #[serde(flatten)]
    pub flag: Flag,
    pub user_whitelist_count: usize,
    pub user_blacklist_count: usize,
    pub stale: bool,
    pub stale_reason: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only flags that are switched on.
    #[serde(default)]
    enabled_only: bool,
}

async fn views(state: &AppState, flags: Vec<Flag>) -> Result<Vec<FlagView>, ApiError> {
    let mut stale = state.flags.staleness().await?;
    Ok(flags
        .into_iter()
        .map(|flag| {
            let s = stale.remove(flag.flag_id.as_str());
            FlagView {
                user_whitelist_count: flag.user_whitelist.len(),
                user_blacklist_count: flag.user_blacklist.len(),
                flag,
                stale: s.as_ref().is_some_and(|s| s.stale),
                stale_reason: s.and_then(|s| s.reason),
            }
        })
        .collect())
}

/// Every flag, by id.
#[utoipa::path(get, path = "/api/feature-flags", tag = "flags", params(ListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<FlagView>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_flags(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Vec<FlagView>>, ApiError> {
    let flags = state
        .flags
        .list()
        .into_iter()
        .filter(|f| !p.enabled_only || f.enabled)
        .collect();
    Ok(Json(views(&state, flags).await?))
}

/// Creates a flag. Only `flag_id` is required: a new flag is on for all users unless told otherwise.
#[utoipa::path(post, path = "/api/feature-flags", tag = "flags", request_body = NewFlag,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, body = Flag),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A flag with this id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition; every problem is listed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_flag(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(new): ApiJson<NewFlag>,
) -> Result<(StatusCode, Json<Flag>), ApiError> {
    let flag = state.flags.create(&caller.principal.actor, new).await?;
    Ok((StatusCode::CREATED, Json(flag)))
}

#[utoipa::path(get, path = "/api/feature-flags/{flag_id}", tag = "flags",
    params(("flag_id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = FlagView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_flag(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<FlagView>, ApiError> {
    let flag = state.flags.get(&key)?;
    let mut views = views(&state, vec![flag]).await?;
    Ok(Json(views.remove(0)))
}

/// Changes the fields present. `{"enabled": false}` is the kill switch: it takes effect on the
/// next evaluation on every replica and reaches streaming SDKs at once.
#[utoipa::path(patch, path = "/api/feature-flags/{flag_id}", tag = "flags", request_body = FlagPatch,
    params(("flag_id" = String, Path)), security(("bearer" = ["admin"])),
    responses(
        (status = 200, body = Flag),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn patch_flag(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(key): ApiPath<String>,
    ApiJson(patch): ApiJson<FlagPatch>,
) -> Result<Json<Flag>, ApiError> {
    Ok(Json(
        state
            .flags
            .update(&caller.principal.actor, &key, patch)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReasonParam {
    /// Why; kept in the audit log.
    pub(super) reason: Option<String>,
}

#[utoipa::path(delete, path = "/api/feature-flags/{flag_id}", tag = "flags",
    params(("flag_id" = String, Path), ReasonParam), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Another flag depends on it", body = Problem, content_type = "application/problem+json")))]
async fn delete_flag(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(p): ApiQuery<ReasonParam>,
) -> Result<StatusCode, ApiError> {
    state
        .flags
        .delete(&caller.principal.actor, &key, p.reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CheckRequest {
    pub user_id: Option<String>,
    /// Attributes for targeting: strings, numbers or booleans.
    #[serde(default)]
    pub user_attributes: BTreeMap<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckAnswer {
    pub flag_id: String,
    pub user_id: Option<String>,
    pub enabled: bool,
    /// The variant's name; `on`/`off` for a flag without variants.
    pub variant: String,
    pub payload: Option<Value>,
    /// An OpenFeature reason: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED.
    pub reason: &'static str,
    pub environment: Environment,
}

/// Evaluates one flag for one user.
#[utoipa::path(post, path = "/api/feature-flags/{flag_id}/check", tag = "flags", request_body = CheckRequest,
    params(("flag_id" = String, Path), EnvParam), security(("bearer" = ["ingest"])),
    responses((status = 200, body = CheckAnswer), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn check_flag(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(env): ApiQuery<EnvParam>,
    ApiJson(req): ApiJson<CheckRequest>,
) -> Result<Json<CheckAnswer>, ApiError> {
    let env = environment(env.environment.as_deref())?;
    let ctx = context(req.user_id, req.user_attributes);
    let e = state.flags.evaluate(&key, env, &ctx);
    state
        .experiments
        .observe_evaluation(&key, env, ctx.user_id.as_deref(), e.given_variant());
    if !e.found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "flag_not_found",
            format!("flag `{key}` not found"),
        ));
    }
    Ok(Json(CheckAnswer {
        flag_id: key,
        user_id: ctx.user_id,
        enabled: e.enabled,
        variant: e.served_value().to_owned(),
        payload: e.variant.payload.as_ref().map(payload_value),
        reason: e.reason.as_str(),
        environment: env,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFlagsParams {
    #[param(pattern = "^(|development|dev|staging|stage|production|prod)$")]
    environment: Option<String>,
}

/// Every flag's on/off for one user: `{flag_id: bool, …}`.
#[utoipa::path(get, path = "/api/feature-flags/user/{user_id}", tag = "flags",
    params(("user_id" = String, Path), UserFlagsParams), security(("bearer" = ["read", "ingest"])),
    responses((status = 200, body = BTreeMap<String, bool>)))]
async fn user_flags(
    State(state): State<AppState>,
    _caller: Caller<ReadOrIngest>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(p): ApiQuery<UserFlagsParams>,
) -> Result<Json<BTreeMap<String, bool>>, ApiError> {
    let env = environment(p.environment.as_deref())?;
    let ctx = Context {
        user_id: Some(user_id),
        ..Default::default()
    };
    let catalog = state.flags.catalog();
    Ok(Json(
        catalog
            .evaluate_all(env, &ctx)
            .map(|(f, e)| (f.flag_id.to_string(), e.enabled))
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct FlagStats {
    pub total_flags: usize,
    pub enabled_flags: usize,
    pub disabled_flags: usize,
    pub stale_flags: usize,
    /// Flags per strategy.
    pub strategies: BTreeMap<String, usize>,
    pub flags: Vec<FlagSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct FlagSummary {
    pub flag_id: String,
    pub name: String,
    pub enabled: bool,
    pub strategy: String,
    pub percentage: f64,
    pub user_whitelist_count: usize,
    pub user_blacklist_count: usize,
    pub variants: usize,
    pub stale: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(get, path = "/api/feature-flags/stats", tag = "flags", security(("bearer" = ["read"])),
    responses((status = 200, body = FlagStats)))]
async fn stats(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<FlagStats>, ApiError> {
    let views = views(&state, state.flags.list()).await?;
    let mut strategies = BTreeMap::new();
    for v in &views {
        *strategies
            .entry(v.flag.strategy.as_str().to_owned())
            .or_insert(0) += 1;
    }
    let enabled = views.iter().filter(|v| v.flag.enabled).count();
    Ok(Json(FlagStats {
        total_flags: views.len(),
        enabled_flags: enabled,
        disabled_flags: views.len() - enabled,
        stale_flags: views.iter().filter(|v| v.stale).count(),
        strategies,
        flags: views
            .into_iter()
            .map(|v| FlagSummary {
                flag_id: v.flag.flag_id.to_string(),
                name: v.flag.name,
                enabled: v.flag.enabled,
                strategy: v.flag.strategy.as_str().to_owned(),
                percentage: v.flag.percentage,
                user_whitelist_count: v.user_whitelist_count,
                user_blacklist_count: v.user_blacklist_count,
                variants: v.flag.variants.len(),
                stale: v.stale,
                updated_at: v.flag.updated_at,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RolloutRequest {
    #[schema(minimum = 0, maximum = 100)]
    pub target_percentage: f64,
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub increment: f64,
    /// Minutes between steps: with it, Liftoff applies the steps on schedule.
    #[schema(minimum = 1, maximum = 43200)]
    pub interval_minutes: Option<u32>,
    /// Guard the plan with request metrics per flag value (`error_rate`, `latency_p95`):
    /// requests must say which value they were served (the SDK request layer, OpenTelemetry
    /// `feature_flag.*` attributes, or `flags` on request records).
    #[schema(min_items = 1)]
    pub guardrails: Option<Vec<liftoff_core::flags::guard::GuardrailMetric>>,
    /// `rollback` (to 0 %, the default) or `pause`.
    pub on_regression: Option<liftoff_core::flags::guard::OnRegression>,
    /// Requests served the new value during a step before the next step. [default 200]
    #[schema(maximum = 10000000)]
    pub min_samples_per_step: Option<u64>,
    /// [default 60]
    #[schema(minimum = 1, maximum = 86400)]
    pub check_interval_seconds: Option<u32>,
    pub reason: Option<String>,
}

/// Plans a gradual rollout. With `interval_minutes`, Liftoff applies each step when due and
/// pauses the plan while a critical alert fires. A disabled flag is refused (409): enable it
/// first.
#[utoipa::path(post, path = "/api/feature-flags/{flag_id}/gradual-rollout", tag = "flags", request_body = RolloutRequest,
    params(("flag_id" = String, Path)), security(("bearer" = ["admin"])),
    responses((status = 200, body = RolloutAnswer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The flag is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn gradual_rollout(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(key): ApiPath<String>,
    ApiJson(r): ApiJson<RolloutRequest>,
) -> Result<Json<RolloutAnswer>, ApiError> {
    Ok(Json(
        state
            .flags
            .plan_guarded_rollout(
                &caller.principal.actor,
                &key,
                r.target_percentage,
                r.increment,
                r.interval_minutes,
                r.guardrails.map(|g| {
                    let mut guard = liftoff_core::flags::guard::Guarding::new(g);
                    if let Some(o) = r.on_regression {
                        guard.on_regression = o;
                    }
                    if let Some(n) = r.min_samples_per_step {
                        guard.min_samples_per_step = n;
                    }
                    if let Some(s) = r.check_interval_seconds {
                        guard.check_interval_seconds = s;
                    }
                    guard
                }),
                r.reason,
            )
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Pause,
    Resume,
}

/// Pauses or resumes the flag's scheduled rollout plan.
#[utoipa::path(post, path = "/api/feature-flags/{flag_id}/gradual-rollout/{action}", tag = "flags",
    params(("flag_id" = String, Path), ("action" = PlanAction, Path, description = "pause or resume"), ReasonParam),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = RolloutPlan), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn rollout_action(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath((key, action)): ApiPath<(String, PlanAction)>,
    ApiQuery(p): ApiQuery<ReasonParam>,
) -> Result<Json<RolloutPlan>, ApiError> {
    let pause = matches!(action, PlanAction::Pause);
    Ok(Json(
        state
            .flags
            .set_plan_state(&caller.principal.actor, &key, pause, p.reason)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Entries, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The flag's audit entries, newest first: who changed what, from what to what, and why.
#[utoipa::path(get, path = "/api/feature-flags/{flag_id}/history", tag = "flags",
    params(("flag_id" = String, Path), HistoryParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<AuditEntry>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(p): ApiQuery<HistoryParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = super::monitoring::bounded(
        p.limit,
        AuditQuery::DEFAULT_LIMIT,
        1,
        AuditQuery::MAX_LIMIT,
        "limit",
    )?;
    Ok(Json(state.flags.history(&key, limit).await?))
}
