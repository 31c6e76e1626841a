//! `POST /api/import/unleash`: Unleash feature JSON in, Liftoff flags out.

use axum::Json;
use axum::extract::State;
use liftoff_core::flags::ImportReport;
use liftoff_eval::ClientFeatures;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Admin, Caller};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_unleash))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Why; kept in the audit log of every imported flag.
    reason: Option<String>,
}

/// Imports an Unleash client-features document (`{version, features, segments}`, as served by
/// Unleash's `/api/client/features`). Existing flags with the same names are replaced;
/// segments are inlined into the strategies that use them.
#[utoipa::path(post, path = "/api/import/unleash", tag = "flags", params(ImportParams),
    request_body(content = Object, description = "Unleash client features JSON"),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = ImportReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A feature cannot become a flag; nothing was written", body = Problem, content_type = "application/problem+json")))]
async fn import_unleash(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiQuery(p): ApiQuery<ImportParams>,
    ApiJson(features): ApiJson<ClientFeatures>,
) -> Result<Json<ImportReport>, ApiError> {
    Ok(Json(
        state
            .flags
            .import_unleash(&caller.principal.actor, &features, p.reason)
            .await?,
    ))
}
