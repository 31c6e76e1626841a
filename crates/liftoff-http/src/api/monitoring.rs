//! Request monitoring: `POST /api/ingest/requests` and the seed's performance queries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use liftoff_core::monitoring::instances::{InstanceReport, InstanceView, MAX_INSTANCES};
use liftoff_core::monitoring::requests::RequestRecord;
use liftoff_core::monitoring::resources::InstanceHistory;
use liftoff_core::monitoring::service::{HistogramBucket, SortBy};
use liftoff_core::monitoring::{EndpointStats, Filter, Summary, SystemSnapshot, TimeRange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::batch::{Batch, BatchItem};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Caller, Ingest, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_requests))
        .routes(routes!(ingest_system))
        .routes(routes!(performance))
        .routes(routes!(summary))
        .routes(routes!(histogram))
        .routes(routes!(top))
        .routes(routes!(slow))
        .routes(routes!(system))
        .routes(routes!(resources))
}

impl BatchItem for RequestRecord {
    const KEY: &'static str = "requests";
}

#[derive(Serialize, ToSchema)]
#[schema(as = RecordsAccepted)]
pub struct Accepted {
    /// Records committed.
    pub accepted: usize,
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
    _room: crate::mw::room::Room<crate::mw::room::Requests>,
    ApiJson(Batch(records)): ApiJson<Batch<RequestRecord>>,
) -> Result<Json<Accepted>, ApiError> {
    Ok(Json(Accepted {
        accepted: state.monitoring.ingest(records).await?,
    }))
}

/// Records an app instance's resource reading (the SDK's instance reporter sends one every
/// few seconds). `/api/monitoring/system` lists the instances heard from in the last 10 minutes.
#[utoipa::path(post, path = "/api/ingest/system", tag = "monitoring", request_body = InstanceReport,
    security(("bearer" = ["ingest"])),
    responses((status = 204, description = "Kept as the instance's latest reading"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The reading is impossible (e.g. a share over 100 %)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many instances report", body = Problem, content_type = "application/problem+json")))]
async fn ingest_system(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiJson(report): ApiJson<InstanceReport>,
) -> Result<StatusCode, ApiError> {
    report
        .validate(Utc::now())
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_reading", m))?;
    state
        .monitoring
        .instances
        .record(report, Utc::now())
        .map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_instances",
                format!(
                    "{MAX_INSTANCES} instances already report; silent ones are forgotten after 10 minutes"
                ),
            )
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// 15m, 1h (default), 4h, 24h, 7d or 30d.
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    /// Start, RFC 3339 or Unix seconds; with `to`, replaces `window`.
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// One endpoint: `/route` or `METHOD:/route`.
    endpoint: Option<String>,
    /// One service (`liftoff` for Liftoff's own API traffic); by default every app service,
    /// without Liftoff's own.
    service: Option<String>,
}

impl RangeParams {
    fn filter(&self) -> Filter<'_> {
        Filter::new(self.service.as_deref(), self.endpoint.as_deref())
    }
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

/// Latency percentiles, error rate and status codes per endpoint, keyed `"METHOD:/route"`;
/// where two services in the answer share an endpoint, each is keyed
/// `"service:METHOD:/route"` instead (services are never merged). Every entry names its
/// service. Percentiles follow the nearest-rank definition.
#[utoipa::path(get, path = "/api/monitoring/performance", tag = "monitoring", params(RangeParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = BTreeMap<String, EndpointStats>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn performance(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<BTreeMap<String, EndpointStats>>, ApiError> {
    let r = range(&p)?;
    Ok(Json(state.monitoring.performance(r, &p.filter()).await?))
}

/// Totals over the endpoints asked for (by default every endpoint of every app service):
/// requests, errors, latency, endpoints with errors, the services counted, and the machine's
/// resources.
#[utoipa::path(get, path = "/api/monitoring/performance/summary", tag = "monitoring", params(RangeParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Summary), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn summary(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<Summary>, ApiError> {
    Ok(Json(
        state.monitoring.summary(range(&p)?, &p.filter()).await?,
    ))
}

/// How request latencies spread over fixed buckets (5 ms … 30 s, then above), the endpoints
/// asked for together.
#[utoipa::path(get, path = "/api/monitoring/performance/histogram", tag = "monitoring", params(RangeParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<HistogramBucket>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn histogram(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<Vec<HistogramBucket>>, ApiError> {
    Ok(Json(
        state
            .monitoring
            .latency_histogram(range(&p)?, &p.filter())
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// 1–1000 (default 10).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// request_count (default), error_rate or avg_duration_ms.
    sort_by: Option<SortBy>,
    /// One service; by default every app service, without Liftoff's own.
    service: Option<String>,
}

/// `raw`, or `default` when absent; 400 naming the parameter outside `lo..=hi`.
pub(crate) fn bounded<T>(
    raw: Option<T>,
    default: T,
    lo: T,
    hi: T,
    name: &str,
) -> Result<T, ApiError>
where
    T: PartialOrd + Copy + std::fmt::Display,
{
    let n = raw.unwrap_or(default);
    if n < lo || n > hi {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`{name}` must be {lo} to {hi} (got {n})"),
        ));
    }
    Ok(n)
}

pub(crate) fn limit(raw: Option<usize>) -> Result<usize, ApiError> {
    match raw.unwrap_or(10) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit {n} must be 1 to 1000"),
        )),
    }
}

pub(crate) fn range_only(
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<TimeRange, ApiError> {
    range(&RangeParams {
        window,
        from,
        to,
        endpoint: None,
        service: None,
    })
}

/// The busiest, most error-prone or slowest endpoints.
#[utoipa::path(get, path = "/api/monitoring/performance/top", tag = "monitoring", params(TopParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<EndpointStats>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn top(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<TopParams>,
) -> Result<Json<Vec<EndpointStats>>, ApiError> {
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state
            .monitoring
            .top(
                r,
                &Filter::service(p.service.as_deref()),
                p.sort_by.unwrap_or(SortBy::RequestCount),
                limit(p.limit)?,
            )
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlowParams {
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// p95 above this counts as slow (default 1000 ms).
    #[param(minimum = 0)]
    threshold_ms: Option<f64>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// One service; by default every app service, without Liftoff's own.
    service: Option<String>,
}

/// Endpoints whose p95 latency is above the threshold, slowest first.
#[utoipa::path(get, path = "/api/monitoring/performance/slow", tag = "monitoring", params(SlowParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<EndpointStats>), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn slow(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<SlowParams>,
) -> Result<Json<Vec<EndpointStats>>, ApiError> {
    let threshold = p.threshold_ms.unwrap_or(1000.0);
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "threshold_ms must be 0 or more",
        ));
    }
    let r = range_only(p.window, p.from, p.to)?;
    Ok(Json(
        state
            .monitoring
            .slow(
                r,
                &Filter::service(p.service.as_deref()),
                threshold,
                limit(p.limit)?,
            )
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SystemReport {
    #[serde(flatten)]
    pub snapshot: SystemSnapshot,
    pub uptime_seconds: u64,
    /// App instances that reported in the last 10 minutes.
    pub instances: Vec<InstanceView>,
}

/// Liftoff's CPU, memory and disk (cgroup-aware), sampled every 5 seconds, its uptime, and
/// the latest reading of every app instance that reports.
#[utoipa::path(get, path = "/api/monitoring/system", tag = "monitoring", security(("bearer" = ["read"])),
    responses((status = 200, body = SystemReport)))]
async fn system(State(state): State<AppState>, _caller: Caller<Read>) -> Json<SystemReport> {
    Json(SystemReport {
        snapshot: state.monitoring.system.get(),
        uptime_seconds: state.started.elapsed().as_secs(),
        instances: state.monitoring.instances.list(Utc::now()),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ResourceParams {
    /// `15m`, `1h`, `4h`, `24h`, `7d` (default) or `30d` back from now.
    #[param(pattern = "^(15m|1h|4h|24h|7d|30d)$")]
    window: Option<String>,
    /// Start, RFC 3339 or Unix seconds; with `to`, replaces `window`.
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    /// One service (`liftoff` for Liftoff's own replicas).
    service: Option<String>,
    /// One instance (with or without `service`).
    instance: Option<String>,
}

/// The most hours one answer lists (1,000 instances × 50 hours): a bigger fleet asks per
/// service or instance.
const MAX_HOURS_ANSWERED: usize = 50_000;

/// Resource histories built at once. One answer holds up to [`MAX_HOURS_ANSWERED`] hours
/// (about 8 MB of JSON, more while it is built); a read key asking for a hundred at once
/// would otherwise hold a hundred of them. The rest wait their turn, then are told to retry.
static RESOURCE_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// How long a resource history waits for its turn.
const RESOURCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Each instance's resource use per hour (averages and peaks) over a window and the trend of
/// its CPU, memory and disk: the least-squares slope of the daily averages in percentage
/// points a week, `rising`/`falling` only when significant (p < 0.05) and at least 2 points a
/// week, and when a rising resource reaches 100 %. Hours are kept as long as hourly request
/// metrics (30 days by default); the weekly report reads this answer. At most 31 days and
/// 50,000 hours in one answer, two answers built at once.
#[utoipa::path(get, path = "/api/monitoring/resources", tag = "monitoring", params(ResourceParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<InstanceHistory>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More hours than one answer holds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Other histories are being built; retry after the Retry-After seconds", body = Problem, content_type = "application/problem+json")))]
async fn resources(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<ResourceParams>,
) -> Result<Json<Vec<InstanceHistory>>, ApiError> {
    let window = p.window.or_else(|| Some("7d".to_owned()));
    let range = range_only(window, p.from, p.to)?;
    if range.to - range.from > chrono::Duration::days(31) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "resource history covers at most 31 days; narrow `from` and `to`",
        ));
    }
    let _turn = tokio::time::timeout(RESOURCE_WAIT, RESOURCE_TURNS.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::unavailable(
                5,
                "resource histories are being built for other requests; retry in a few seconds",
            )
        })?;
    let mut all = state
        .monitoring
        .resource_history(range.from, range.to)
        .await?;
    all.retain(|h| {
        p.service.as_ref().is_none_or(|s| &h.service == s)
            && p.instance.as_ref().is_none_or(|i| &h.instance == i)
    });
    let hours: usize = all.iter().map(|h| h.hours.len()).sum();
    if hours > MAX_HOURS_ANSWERED {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_hours",
            format!(
                "{hours} instance-hours in this window, more than the {MAX_HOURS_ANSWERED} one answer holds; name a `service` or `instance`, or narrow the window"
            ),
        ));
    }
    Ok(Json(all))
}
