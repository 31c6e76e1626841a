//! Segments: named groups of constraints that flags refer to by id.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::flags::{Segment, SegmentInput};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::flags::ReasonParam;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(get_segment, update_segment, delete_segment))
}

#[utoipa::path(get, path = "/api/segments", tag = "flags", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Segment>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_segments(State(state): State<AppState>, _caller: Caller<Read>) -> Json<Vec<Segment>> {
    Json(state.flags.segments())
}

/// Creates a segment: `{name, description?, constraints: [{contextName, operator, values|value, inverted?, caseInsensitive?}]}`.
#[utoipa::path(post, path = "/api/segments", tag = "flags", request_body = SegmentInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = Segment), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_segment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<SegmentInput>,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .flags
                .create_segment(&caller.principal.actor, input)
                .await?,
        ),
    ))
}

#[utoipa::path(get, path = "/api/segments/{id}", tag = "flags", params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Segment), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_segment(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Segment>, ApiError> {
    Ok(Json(state.flags.segment(id)?))
}

/// Replaces a segment; every flag using it follows at the next evaluation.
#[utoipa::path(put, path = "/api/segments/{id}", tag = "flags", params(("id" = i64, Path)), request_body = SegmentInput,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Segment), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_segment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<SegmentInput>,
) -> Result<Json<Segment>, ApiError> {
    Ok(Json(
        state
            .flags
            .update_segment(&caller.principal.actor, id, input)
            .await?,
    ))
}

/// Deletes a segment that no flag uses.
#[utoipa::path(delete, path = "/api/segments/{id}", tag = "flags", params(("id" = i64, Path), ReasonParam),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A flag uses it", body = Problem, content_type = "application/problem+json")))]
async fn delete_segment(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<ReasonParam>,
) -> Result<StatusCode, ApiError> {
    state
        .flags
        .delete_segment(&caller.principal.actor, id, p.reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
