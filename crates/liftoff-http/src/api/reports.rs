//! Reports: generate any report in JSON, Markdown, HTML or PDF (read scope), keep one in the
//! archive, and schedule deliveries through the alert channels (admin scope).
//!
//! `GET /api/reports/{kind}` computes and renders without keeping anything: a read stays safe
//! to repeat and a `read` key cannot fill the disk. `POST /api/reports/archive` generates and
//! keeps a report (every format at once); scheduled deliveries are archived the same way.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use liftoff_core::reports::schedule::{Schedule, ScheduleInput};
use liftoff_core::reports::service::ArchivedReport;
use liftoff_core::reports::{Format, Report, ReportKind, ReportRequest};
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
        .routes(routes!(render_report))
        .routes(routes!(archive_list, archive_report))
        .routes(routes!(archived))
        .routes(routes!(archived_report))
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(delete_schedule))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportParams {
    /// `json` (default), `md`, `html` or `pdf`.
    #[param(inline)]
    pub format: Option<Format>,
    /// The window's start, RFC 3339 (weekly: 7 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// The window's end, RFC 3339 (weekly: now).
    pub to: Option<DateTime<Utc>>,
    /// The incident (`INC-YYYY-NNN`), for `incident`.
    pub id: Option<String>,
    /// `YYYY-MM`, for `performance` and `product` (the current month by default).
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
    /// The product report's funnel: event names in order, comma-separated.
    pub funnel: Option<String>,
}

impl ReportParams {
    pub(crate) fn request(self, kind: ReportKind) -> ReportRequest {
        ReportRequest {
            kind,
            from: self.from,
            to: self.to,
            id: self.id,
            month: self.month,
            funnel: self.funnel.map(|f| {
                f.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        }
    }
}

fn kind(raw: &str) -> Result<ReportKind, ApiError> {
    ReportKind::parse(raw).ok_or_else(|| {
        ApiError::not_found(format!(
            "no report `{raw}`: the reports are weekly, incident, performance, product and launch"
        ))
    })
}

/// Whether a browser shows a report file or saves it.
#[derive(Clone, Copy)]
pub(crate) enum Disposition {
    Inline,
    Attachment,
}

/// A report's bytes with their content type and, when named, the file name a browser uses.
pub(crate) fn report_file(
    format: Format,
    body: Vec<u8>,
    name: Option<String>,
    disposition: Disposition,
) -> Response {
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response();
    let how = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    if let Some(v) =
        name.and_then(|n| HeaderValue::from_str(&format!("{how}; filename=\"{n}\"")).ok())
    {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// A rendered report; every format but JSON names its file.
pub(crate) fn rendered(report: &Report, format: Format, disposition: Disposition) -> Response {
    let name = (format != Format::Json).then(|| report.file_name(format));
    report_file(format, report.render(format).body, name, disposition)
}

/// Computes a report for a window and renders it. `weekly` (seed 003's weekly health report:
/// the grade and its rule, figures against targets, week over week, incidents and downtime,
/// top endpoints, errors by status, slowest endpoints, resources, recommendations),
/// `incident` (`id` required), `performance` (a month's trend verdict, opportunities and
/// capacity), `product` (a month's users, retention, adoption, funnel, sessions, requests
/// and experiments) or `launch`. Each figure equals the API's answer for the same
/// window; HTML is self-contained (inline CSS and SVG, no scripts), PDF is written by Liftoff.
#[utoipa::path(get, path = "/api/reports/{kind}", tag = "reports",
    params(("kind" = ReportKind, Path, description = "weekly, incident, performance, product or launch"), ReportParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The report in the asked format",
            content((Report = "application/json"), (String = "text/markdown"), (String = "text/html"), (String = "application/pdf"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn render_report(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportParams>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_default();
    let req = q.request(kind(&raw)?);
    let report = state.report(&req).await?;
    Ok(rendered(&report, format, Disposition::Inline))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ArchiveParams {
    /// [default 100]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Archived reports, newest first (scheduled deliveries and reports generated to keep).
#[utoipa::path(get, path = "/api/reports/archive", tag = "reports", params(ArchiveParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<ArchivedReport>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn archive_list(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(p): ApiQuery<ArchiveParams>,
) -> Result<Json<Vec<ArchivedReport>>, ApiError> {
    let limit = match p.limit.unwrap_or(100) {
        n @ 1..=1000 => n as usize,
        n => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit {n} must be 1 to 1000"),
            ));
        }
    };
    Ok(Json(state.reports.archive_list(limit).await?))
}

/// Generates a report and keeps it in the archive, every format at once.
#[utoipa::path(post, path = "/api/reports/archive", tag = "reports", request_body = ReportRequest,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = ArchivedReport),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn archive_report(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> Result<(StatusCode, Json<ArchivedReport>), ApiError> {
    let report = state.report(&req).await?;
    let generated = state.reports.archive(report, None).await?;
    Ok((StatusCode::CREATED, Json(generated.archived)))
}

/// One archived report's entry: what, when, which schedule.
#[utoipa::path(get, path = "/api/reports/archive/{id}", tag = "reports",
    params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = ArchivedReport),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn archived(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ArchivedReport>, ApiError> {
    Ok(Json(state.reports.archived(id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ArchivedParams {
    /// `json` (default), `md`, `html` or `pdf`.
    #[param(inline)]
    format: Option<Format>,
}

/// An archived report exactly as it was generated, in one format.
#[utoipa::path(get, path = "/api/reports/archive/{id}/report", tag = "reports",
    params(("id" = i64, Path), ArchivedParams), security(("bearer" = ["read"])),
    responses((status = 200, description = "The report in the asked format",
            content((Report = "application/json"), (String = "text/markdown"), (String = "text/html"), (String = "application/pdf"))),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn archived_report(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<ArchivedParams>,
) -> Result<Response, ApiError> {
    archived_response(&state, id, p.format.unwrap_or_default()).await
}

/// An archived report's bytes in `format` (API and dashboard downloads alike).
pub(crate) async fn archived_response(
    state: &AppState,
    id: i64,
    format: Format,
) -> Result<Response, ApiError> {
    let entry = state.reports.archived(id).await?;
    let body = state.reports.archived_body(id, format).await?;
    Ok(report_file(
        format,
        body,
        Some(entry.file_name(format)),
        Disposition::Inline,
    ))
}

/// Report schedules, oldest first.
#[utoipa::path(get, path = "/api/reports/schedules", tag = "reports",
    security(("bearer" = ["read"])), responses((status = 200, body = Vec<Schedule>)))]
async fn list_schedules(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(state.reports.schedules().await?))
}

/// Schedules a report: `{kind, cron ("0 9 * * MON") or weekly {day 0–6, hour}, timezone
/// (IANA, UTC by default), channels [alert channel ids], format (what email attaches: pdf by
/// default)}`. Each period is generated, archived and queued once, across restarts; email
/// gets the HTML as its body and the report attached, Slack a summary and a link, webhooks
/// the summary and links as JSON.
#[utoipa::path(post, path = "/api/reports/schedules", tag = "reports", request_body = ScheduleInput,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = Schedule), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let input = input
        .validate()
        .map_err(liftoff_core::reports::ReportError::Invalid)?;
    let s = state
        .reports
        .create_schedule(&caller.principal.actor, input, &state.alerts)
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(delete, path = "/api/reports/schedules/{id}", tag = "reports",
    params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_schedule(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.reports.delete_schedule(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
