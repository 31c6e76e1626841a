//! `POST /api/keys`, `GET /api/keys`, `DELETE /api/keys/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::auth::{ApiKey, CreatedKey, KeyName, Scope};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// What the key is for, e.g. `checkout-service ingest`.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    name: String,
    scope: Scope,
    /// Why the key is created; kept in the audit log.
    reason: Option<String>,
}

/// Creates an API key. The token is in this answer only; Liftoff stores its SHA-256 digest.
#[utoipa::path(post, path = "/api/keys", tag = "keys", request_body = CreateKeyRequest,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Key created; `token` is shown once", body = CreatedKey),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or scope", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = KeyName::parse(&req.name)?;
    let created = state
        .keys
        .create(&caller.principal.actor, name, req.scope, req.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists every key, revoked ones included, newest first. Tokens are never listed.
#[utoipa::path(get, path = "/api/keys", tag = "keys",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, body = Vec<ApiKey>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_keys(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(state.keys.list().await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeParams {
    /// Why the key is revoked; kept in the audit log.
    reason: Option<String>,
}

/// Revokes a key at once: it stops authenticating on this replica immediately and on others
/// within 5 seconds.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id"), RevokeParams),
    security(("bearer" = ["admin"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active key with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<RevokeParams>,
) -> Result<StatusCode, ApiError> {
    state
        .keys
        .revoke(&caller.principal.actor, &id, params.reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
