//! Release verification: CI records deployments (ingest scope); each one's verification
//! compares error rate and p95 after it with the span before (read scope).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::deployments::{Deployment, NewDeployment, Verification};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Caller, Ingest, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments, record_deployment))
        .routes(routes!(verification))
}

/// Records a deployment, from a CI pipeline: `{service, version, environment?, commit?,
/// description?, deployed_at?, verify_minutes? (30)}`. `service` is the name request metrics
/// carry, so the verification compares that service's traffic.
#[utoipa::path(post, path = "/api/deployments", tag = "monitoring", request_body = NewDeployment,
    security(("bearer" = ["ingest"])),
    responses((status = 201, body = Deployment), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn record_deployment(
    State(state): State<AppState>,
    caller: Caller<Ingest>,
    ApiJson(input): ApiJson<NewDeployment>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let d = state
        .deployments
        .record(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// [default 100]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Deployments, newest first.
#[utoipa::path(get, path = "/api/deployments", tag = "monitoring", params(ListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Deployment>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_deployments(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    Ok(Json(state.deployments.list(p.limit.unwrap_or(100)).await?))
}

/// The service's error rate and p95 in the `verify_minutes` after the deployment against the
/// same span before, each with a two-sided test of the difference: `passed`, `regressed`,
/// `pending` (the window has not passed) or `no_data` (under 100 requests on a side).
#[utoipa::path(get, path = "/api/deployments/{id}/verification", tag = "monitoring",
    params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Verification), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn verification(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Verification>, ApiError> {
    Ok(Json(state.deployments.verification(id).await?))
}
