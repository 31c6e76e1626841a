//! Incidents: list/create, get (with computed impact)/patch, timeline, postmortem, action
//! items and the monthly SLA. Read scope for GET, admin for changes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::incidents::service::{
    ActionItemInput, ActionItemPatch, IncidentDetail, IncidentPatch, NewIncident, SlaReport,
    TimelineInput,
};
use liftoff_core::incidents::{ActionItem, Incident, IncidentsService, Postmortem, TimelineEntry};
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
        .routes(routes!(list_incidents, create_incident))
        .routes(routes!(sla))
        .routes(routes!(get_incident, patch_incident))
        .routes(routes!(get_timeline, add_timeline))
        .routes(routes!(get_postmortem, put_postmortem))
        .routes(routes!(list_action_items, add_action_item))
        .routes(routes!(patch_action_item, delete_action_item))
}

/// Newest first.
#[utoipa::path(get, path = "/api/incidents", tag = "incidents", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Incident>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_incidents(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    Ok(Json(state.incidents.list().await?))
}

/// Opens an incident: `{title, severity: critical|major|minor, status?, started_at?, description?}`.
/// Its id is `INC-YYYY-NNN`, numbered per year in order.
#[utoipa::path(post, path = "/api/incidents", tag = "incidents", request_body = NewIncident, security(("bearer" = ["admin"])),
    responses((status = 201, body = Incident), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_incident(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<NewIncident>,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    let i = state
        .incidents
        .create(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(i)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SlaParams {
    /// `YYYY-MM` [default: this month].
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    month: Option<String>,
    /// Availability target in percent [default 99.9].
    #[param(exclusive_minimum = 0, exclusive_maximum = 100)]
    target: Option<f64>,
}

/// Downtime of resolved critical incidents in a month against the allowance of the target.
#[utoipa::path(get, path = "/api/incidents/sla", tag = "incidents", params(SlaParams), security(("bearer" = ["read"])),
    responses((status = 200, body = SlaReport), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn sla(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<SlaParams>,
) -> Result<Json<SlaReport>, ApiError> {
    let month = p
        .month
        .unwrap_or_else(|| IncidentsService::current_month(chrono::Utc::now()));
    Ok(Json(
        state
            .incidents
            .sla(&month, p.target.unwrap_or(99.9))
            .await?,
    ))
}

/// The incident with its impact computed for its window (start until resolution or now).
#[utoipa::path(get, path = "/api/incidents/{id}", tag = "incidents", params(("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_incident(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    Ok(Json(state.incidents.detail(&id, chrono::Utc::now()).await?))
}

/// Changes title, severity, status (`investigating`, `identified`, `monitoring`, `resolved`;
/// reopening allowed), start, description, root cause or resolution. A status change joins the
/// timeline.
#[utoipa::path(patch, path = "/api/incidents/{id}", tag = "incidents", params(("id" = String, Path)), request_body = IncidentPatch,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Incident), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn patch_incident(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(p): ApiJson<IncidentPatch>,
) -> Result<Json<Incident>, ApiError> {
    Ok(Json(
        state
            .incidents
            .patch(&caller.principal.actor, &id, p)
            .await?,
    ))
}

/// Oldest first.
#[utoipa::path(get, path = "/api/incidents/{id}/timeline", tag = "incidents", params(("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<TimelineEntry>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_timeline(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<TimelineEntry>>, ApiError> {
    Ok(Json(state.incidents.get(&id).await?.timeline))
}

/// Adds a manual update or note: `{message, kind?: update|note, at?}`.
#[utoipa::path(post, path = "/api/incidents/{id}/timeline", tag = "incidents", params(("id" = String, Path)), request_body = TimelineInput,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = Vec<TimelineEntry>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn add_timeline(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TimelineInput>,
) -> Result<(StatusCode, Json<Vec<TimelineEntry>>), ApiError> {
    let i = state
        .incidents
        .add_timeline(&caller.principal.actor, &id, input)
        .await?;
    Ok((StatusCode::CREATED, Json(i.timeline)))
}

#[utoipa::path(get, path = "/api/incidents/{id}/postmortem", tag = "incidents", params(("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Postmortem), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_postmortem(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Postmortem>, ApiError> {
    Ok(Json(state.incidents.get(&id).await?.postmortem))
}

/// Replaces the postmortem: `{summary, what_went_well, what_could_be_improved, lessons}`.
#[utoipa::path(put, path = "/api/incidents/{id}/postmortem", tag = "incidents", params(("id" = String, Path)), request_body = Postmortem,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Postmortem), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_postmortem(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(p): ApiJson<Postmortem>,
) -> Result<Json<Postmortem>, ApiError> {
    Ok(Json(
        state
            .incidents
            .set_postmortem(&caller.principal.actor, &id, p)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/incidents/{id}/action-items", tag = "incidents", params(("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<ActionItem>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn list_action_items(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<ActionItem>>, ApiError> {
    Ok(Json(state.incidents.get(&id).await?.action_items))
}

/// Adds an action item: `{title, owner?, due_date?: YYYY-MM-DD}`.
#[utoipa::path(post, path = "/api/incidents/{id}/action-items", tag = "incidents", params(("id" = String, Path)), request_body = ActionItemInput,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = ActionItem), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn add_action_item(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ActionItemInput>,
) -> Result<(StatusCode, Json<ActionItem>), ApiError> {
    let item = state
        .incidents
        .add_action_item(&caller.principal.actor, &id, input)
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(patch, path = "/api/incidents/{id}/action-items/{item_id}", tag = "incidents",
    params(("id" = String, Path), ("item_id" = i64, Path)), request_body = ActionItemPatch, security(("bearer" = ["admin"])),
    responses((status = 200, body = ActionItem), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn patch_action_item(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath((id, item_id)): ApiPath<(String, i64)>,
    ApiJson(p): ApiJson<ActionItemPatch>,
) -> Result<Json<ActionItem>, ApiError> {
    Ok(Json(
        state
            .incidents
            .update_action_item(&caller.principal.actor, &id, item_id, p)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/incidents/{id}/action-items/{item_id}", tag = "incidents",
    params(("id" = String, Path), ("item_id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_action_item(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath((id, item_id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .incidents
        .delete_action_item(&caller.principal.actor, &id, item_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
