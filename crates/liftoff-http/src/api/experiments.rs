//! Experiments: define on a flag with variants, read, change, stop (and ship), results; and
//! the statistics calculator. Read scope for GET and the calculator, admin for changes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::experiments::results::{
    Calculation, CalculationResult, ExperimentResults, Timeline,
};
use liftoff_core::experiments::{ExperimentPatch, ExperimentView, NewExperiment, StopExperiment};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_experiments, create_experiment))
        .routes(routes!(get_experiment, patch_experiment))
        .routes(routes!(stop_experiment))
        .routes(routes!(experiment_results))
        .routes(routes!(experiment_timeline))
        .routes(routes!(analyze))
}

/// Every experiment with its status (`scheduled`, `running`, `stopped`), newest first.
#[utoipa::path(get, path = "/api/experiments", tag = "experiments", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<ExperimentView>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_experiments(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<ExperimentView>>, ApiError> {
    Ok(Json(state.experiments.list().await?))
}

/// Starts an experiment on a flag with at least two variants: `{key, flag_id, name?,
/// hypothesis?, control?, environment?, metrics: {primary, secondary?, guardrails?},
/// analysis?: {method: bayesian|frequentist, sequential, fixed_at_end, alpha, sequential_tuning,
/// cuped}, starts_at?, ends_at?}`. Evaluations of the flag for a user (`/check`, OFREP with a
/// `targetingKey`) and `$feature_flag_called` or `$feature/<flag>` events are its exposures.
#[utoipa::path(post, path = "/api/experiments", tag = "experiments", request_body = NewExperiment, security(("bearer" = ["admin"])),
    responses((status = 201, body = ExperimentView), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_experiment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<NewExperiment>,
) -> Result<(StatusCode, Json<ExperimentView>), ApiError> {
    let e = state
        .experiments
        .create(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(get, path = "/api/experiments/{key}", tag = "experiments", params(("key" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = ExperimentView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_experiment(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ExperimentView>, ApiError> {
    Ok(Json(state.experiments.get(&key).await?))
}

/// Changes name, hypothesis, metrics, analysis or the planned end; absent fields stay.
#[utoipa::path(patch, path = "/api/experiments/{key}", tag = "experiments", params(("key" = String, Path)),
    request_body = ExperimentPatch, security(("bearer" = ["admin"])),
    responses((status = 200, body = ExperimentView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn patch_experiment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(key): ApiPath<String>,
    ApiJson(p): ApiJson<ExperimentPatch>,
) -> Result<Json<ExperimentView>, ApiError> {
    Ok(Json(
        state
            .experiments
            .update(&caller.principal.actor, &key, p)
            .await?,
    ))
}

/// Stops collecting exposures: `{reason, ship_variant?}`. With `ship_variant`, the flag is left
/// with that variant only, so everyone gets it (an audited flag change).
#[utoipa::path(post, path = "/api/experiments/{key}/stop", tag = "experiments", params(("key" = String, Path)),
    request_body = StopExperiment, security(("bearer" = ["admin"])),
    responses((status = 200, body = ExperimentView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn stop_experiment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(key): ApiPath<String>,
    ApiJson(stop): ApiJson<StopExperiment>,
) -> Result<Json<ExperimentView>, ApiError> {
    Ok(Json(
        state
            .experiments
            .stop(&caller.principal.actor, &key, stop)
            .await?,
    ))
}

/// Per-variant users, each metric per variant (value, relative uplift with its interval,
/// p-value or chance to beat control and risk), the sample-ratio check, users exposed to
/// several variants (left out), guardrails and the decision with its reason.
#[utoipa::path(get, path = "/api/experiments/{key}/results", tag = "experiments", params(("key" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = ExperimentResults), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn experiment_results(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ExperimentResults>, ApiError> {
    Ok(Json(state.experiments.results(&key).await?))
}

/// The primary metric as it stood at 24 moments from the start to now (or the end): users
/// exposed before each, their events until it; per variant the value and the relative uplift
/// with its interval. The cumulative uplift chart. No points for a metric read from request
/// monitoring (no per-user history) or before the experiment started.
#[utoipa::path(get, path = "/api/experiments/{key}/timeline", tag = "experiments", params(("key" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Timeline), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn experiment_timeline(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Timeline>, ApiError> {
    Ok(Json(state.experiments.timeline(&key).await?))
}

/// The statistics engine on counts you bring: control first, each variant as `{kind:
/// proportion, n, sum}`, `{kind: mean, n, sum, sum_squares}`, `ratio` or `adjusted` (CUPED).
/// Answers each treatment's relative uplift with its interval, p-value (frequentist, fixed or
/// sequential) or chance to beat control and risk (Bayesian), the Holm-adjusted p-values and
/// the sample-ratio check. Matches GrowthBook's gbstats.
#[utoipa::path(post, path = "/api/experiments/analyze", tag = "experiments", request_body = Calculation,
    security(("bearer" = ["read"])),
    responses((status = 200, body = CalculationResult), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn analyze(
    _caller: Caller<Read>,
    ApiJson(calc): ApiJson<Calculation>,
) -> Result<Json<CalculationResult>, ApiError> {
    calc.run().map(Json).map_err(|detail| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_experiment",
            detail,
        )
    })
}
