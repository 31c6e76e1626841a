//! `GET /api/audit`: the audit trail, newest first, paged by id.

use axum::Json;
use axum::extract::State;
use liftoff_core::audit::{AuditEntry, AuditQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::mw::auth::{Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries about this kind of object (`key`, `user`, `flag`, …).
    target_type: Option<String>,
    /// Only entries about this object.
    target_id: Option<String>,
    /// Only entries by this actor (`user:NAME`, `key:NAME`, `system`).
    actor: Option<String>,
    /// Only entries older than this id: pass `next_before_id` to get the next page.
    before_id: Option<i64>,
    /// Entries per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_id` for the next page; null on the last page.
    pub next_before_id: Option<i64>,
}

/// Reads the audit trail: who changed what, when, from what to what, and why.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditParams),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = p.limit.unwrap_or(AuditQuery::DEFAULT_LIMIT);
    if !(1..=AuditQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {}", AuditQuery::MAX_LIMIT),
        ));
    }
    let query = AuditQuery {
        target_type: p.target_type,
        target_id: p.target_id,
        actor: p.actor,
        before_id: p.before_id,
        limit,
    };
    let entries = state.audit.list(&query).await?;
    let next_before_id = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before_id,
    }))
}
