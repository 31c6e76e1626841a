//! Request monitoring: `POST /api/ingest/requests` and the seed's performance queries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use liftoff_core::batch::SubmitError;
use liftoff_core::monitoring::requests::RequestRecord;
use liftoff_core::monitoring::{EndpointStats, IngestError, TimeRange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Caller, Ingest, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_requests))
        .routes(routes!(performance))
}

/// A batch: a bare array, or `{"requests": [...]}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RequestBatch {
    Bare(Vec<RequestRecord>),
    Wrapped { requests: Vec<RequestRecord> },
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Records committed.
    pub accepted: usize,
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid { .. } | IngestError::Empty => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_records",
                format!("{e}; nothing of this batch was stored"),
            ),
            IngestError::Submit(SubmitError::Overloaded) => ApiError::too_many_requests(1),
            IngestError::Submit(SubmitError::Closed) => {
                ApiError::unavailable(5, "Liftoff is shutting down; retry")
            }
            IngestError::Submit(SubmitError::Store(cause)) => {
                ApiError::unavailable(5, "the batch could not be committed; retry").with_extension(
                    "cause_kind",
                    if cause.contains("Corrupt") {
                        "corrupt"
                    } else {
                        "store"
                    },
                )
            }
        }
    }
}

/// Records a batch of requests: `{service?, method, route, status, duration_ms, ts?, user_id?}`
/// each. All are validated before any is stored; the answer comes once they are committed.
#[utoipa::path(post, path = "/api/ingest/requests", tag = "monitoring", request_body = Vec<RequestRecord>,
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = Accepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A record is invalid; nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
async fn ingest_requests(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiJson(batch): ApiJson<RequestBatch>,
) -> Result<Json<Accepted>, ApiError> {
    let records = match batch {
        RequestBatch::Bare(r) | RequestBatch::Wrapped { requests: r } => r,
    };
    Ok(Json(Accepted {
        accepted: state.monitoring.ingest(records).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct RangeParams {
    /// 15m, 1h (default), 4h, 24h, 7d or 30d.
    window: Option<String>,
    /// Start, RFC 3339 or Unix seconds; with `to`, replaces `window`.
    from: Option<String>,
    to: Option<String>,
    /// One endpoint: `/route` or `METHOD:/route`.
    endpoint: Option<String>,
    service: Option<String>,
}

fn instant(raw: &str, name: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    raw.parse::<i64>()
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be RFC 3339 or Unix seconds"),
            )
        })
}

pub(crate) fn range(p: &RangeParams) -> Result<TimeRange, ApiError> {
    let now = Utc::now();
    if p.from.is_some() || p.to.is_some() {
        let from = p
            .from
            .as_deref()
            .map(|f| instant(f, "from"))
            .transpose()?
            .unwrap_or(now - chrono::Duration::hours(1));
        let to =
            p.to.as_deref()
                .map(|t| instant(t, "to"))
                .transpose()?
                .unwrap_or(now);
        if from >= to || to - from > chrono::Duration::days(366) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`from` must be before `to`, at most 366 days apart",
            ));
        }
        return Ok(TimeRange { from, to });
    }
    let w = p.window.as_deref().unwrap_or("1h");
    TimeRange::window(w, now).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!("unknown window `{w}`: use 15m, 1h, 4h, 24h, 7d or 30d"),
        )
    })
}

/// Latency percentiles, error rate and status codes per endpoint (`"METHOD:/route"`).
#[utoipa::path(get, path = "/api/monitoring/performance", tag = "monitoring", params(RangeParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = BTreeMap<String, EndpointStats>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn performance(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<BTreeMap<String, EndpointStats>>, ApiError> {
    let r = range(&p)?;
    Ok(Json(
        state
            .monitoring
            .performance(r, p.endpoint.as_deref(), p.service.as_deref())
            .await?,
    ))
}
