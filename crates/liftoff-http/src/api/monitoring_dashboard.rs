//! `GET /api/monitoring/dashboard`: the monitoring dashboard's figures in one answer.

use axum::Json;
use axum::extract::State;
use liftoff_core::monitoring::dashboard::{DashboardSources, MonitoringDashboard};
use liftoff_core::monitoring::filter::Filter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::monitoring::range_only;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::mw::auth::{Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// 15m, 1h (default), 4h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    /// Start, RFC 3339 or Unix seconds; with `to`, replaces `window`.
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// Count only this service's requests (default: every app service, Liftoff's own API
    /// traffic left out; `liftoff` shows that).
    service: Option<String>,
}

/// Everything a monitoring dashboard shows, over one window: the performance summary, the
/// busiest endpoints, operations with their cache hit and fallback rates, the alerts firing or
/// pending, and active users over the last 5 minutes, hour and day. Rates are fractions 0–1.
#[utoipa::path(get, path = "/api/monitoring/dashboard", tag = "monitoring", params(DashboardParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = MonitoringDashboard),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn dashboard(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<DashboardParams>,
) -> Result<Json<MonitoringDashboard>, ApiError> {
    let range = range_only(p.window, p.from, p.to)?;
    let sources = DashboardSources {
        monitoring: &state.monitoring,
        operations: &state.operations,
        alerts: &state.alerts,
        events: &*state.insights,
    };
    let filter = Filter::service(p.service.as_deref());
    Ok(Json(sources.gather(range, &filter).await?))
}
