//! The Reports page: generate any report for a chosen period and preview its HTML, download
//! it in every format, keep it in the archive, manage the schedules that send reports, and
//! browse the archive. Everything goes through the report engine and `ReportsService`, so
//! the page and `/api/reports` answer alike.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use liftoff_core::reports::schedule::{ScheduleInput, WeeklyAt};
use liftoff_core::reports::{Format, ReportKind, ReportRequest};
use maud::html;
use serde::Deserialize;

use crate::api::reports::{Disposition, rendered};
use crate::state::AppState;
use crate::ui::badge::Tone;
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::layout::{Window, page};
use crate::ui::session::{Refused, UiUser};

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// What the generator form asks: the kind, a period of whole days, the incident.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    kind: Option<String>,
    /// `YYYY-MM-DD`, UTC.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    id: Option<String>,
    /// `YYYY-MM`, for the monthly reports.
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

fn day(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Some(t.and_utc()))
            .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)")),
    }
}

impl ReportQuery {
    fn kind(&self) -> ReportKind {
        self.kind
            .as_deref()
            .and_then(ReportKind::parse)
            .unwrap_or(ReportKind::Weekly)
    }

    /// The request the engine runs; `to` is the end of its day, so a period of whole days
    /// includes the last one.
    fn request(&self) -> Result<ReportRequest, String> {
        let to = day(self.to.as_deref())?.map(|t| t + chrono::Duration::days(1));
        let kind = self.kind();
        let monthly = matches!(kind, ReportKind::Performance | ReportKind::Product);
        let month = self
            .month
            .clone()
            .filter(|m| monthly && !m.trim().is_empty());
        Ok(ReportRequest {
            kind,
            // A chosen month replaces the days.
            from: if month.is_some() {
                None
            } else {
                day(self.from.as_deref())?
            },
            to: if month.is_some() { None } else { to },
            id: self.id.clone().filter(|s| !s.trim().is_empty()),
            month,
            funnel: None,
        })
    }

    /// The query string that repeats this choice (for the preview and the downloads).
    fn query(&self, format: Option<Format>) -> String {
        let mut parts = vec![format!("kind={}", self.kind().as_str())];
        for (name, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("id", &self.id),
            ("month", &self.month),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!(
                    "{name}={}",
                    crate::ui::session::encode_component(v)
                ));
            }
        }
        if let Some(f) = format {
            parts.push(format!("format={}", f.as_str()));
        }
        parts.join("&")
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<ReportQuery>,
) -> Response {
    reports_page(&state, &user, &q, Flash::None, StatusCode::OK).await
}

async fn reports_page(
    state: &AppState,
    user: &UiUser,
    q: &ReportQuery,
    flash: Flash,
    status: StatusCode,
) -> Response {
    let (schedules, archive, channels, incidents) = tokio::join!(
        state.reports.schedules(),
        state.reports.archive_list(50),
        state.alerts.channels(),
        state.incidents.list(),
    );
    let schedules = schedules.unwrap_or_default();
    let archive = archive.unwrap_or_default();
    let channels = channels.unwrap_or_default();
    let incidents = incidents.unwrap_or_default();
    let kind = q.kind();
    let checked = q.request();
    let channel_name = |id: i64| {
        channels
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| format!("#{id} (deleted)"), |c| c.name.clone())
    };
    let body = html! {
        (flash)
        section #generate {
            h2 { "Generate" }
            form.inline method="get" action="/reports" {
                label { "Report "
                    select name="kind" {
                        @for k in ReportKind::ALL {
                            option value=(k.as_str()) selected[k == kind] { (k.title()) }
                        }
                    }
                }
                label { "From " input type="date" name="from" value=[q.from.as_deref()]; }
                label { "To " input type="date" name="to" value=[q.to.as_deref()]; }
                label { "Month " input type="month" name="month" value=[q.month.as_deref()]; }
                label { "Incident "
                    select name="id" {
                        option value="" { "—" }
                        @for i in &incidents {
                            option value=(i.id) selected[q.id.as_deref() == Some(i.id.as_str())] { (i.id) " " (i.title) }
                        }
                    }
                }
                button type="submit" { "Preview" }
            }
            p.muted { "Weekly: the 7 days before the end date (today by default). Performance and product: the month (this month so far by default), or the days chosen. Incident: pick the incident. Launch: the launch's whole span." }
            @match &checked {
                Err(e) => p.flash.error { (e) },
                Ok(_) if kind == ReportKind::Incident && q.id.as_deref().is_none_or(str::is_empty) => {
                    p.muted { "Pick an incident to preview its report." }
                }
                Ok(_) => {
                    p.downloads {
                        "Download: "
                        @for f in Format::ALL {
                            a.download href={ "/reports/download?" (q.query(Some(f))) } download { (f.as_str().to_uppercase()) } " "
                        }
                    }
                    @if user.user.role.can_edit() {
                        form.inline method="post" action="/reports/archive" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            input type="hidden" name="kind" value=(kind.as_str());
                            input type="hidden" name="from" value=[q.from.as_deref()];
                            input type="hidden" name="to" value=[q.to.as_deref()];
                            input type="hidden" name="id" value=[q.id.as_deref()];
                            input type="hidden" name="month" value=[q.month.as_deref()];
                            button type="submit" { "Keep in the archive" }
                        }
                    }
                    iframe #report-preview title="Report preview" sandbox="" src={ "/reports/preview?" (q.query(None)) } {}
                }
            }
        }
        section #schedules {
            h2 { "Schedules" }
            @if schedules.is_empty() {
                p.muted { "No report is sent on a schedule yet." }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Report" } th { "When" } th { "Channels" } th { "Attached" } th { "Last sent period" } th {} } }
                    tbody {
                        @for s in &schedules {
                            tr {
                                td { (s.name) }
                                td { (s.kind.title()) }
                                td { code { (s.cron) } " " span.muted { (s.timezone) } }
                                td { (s.channels.iter().map(|c| channel_name(*c)).collect::<Vec<_>>().join(", ")) }
                                td { (s.format.as_str()) }
                                td.mono { (s.last_period.map_or_else(|| "—".to_owned(), |p| p.format("%Y-%m-%d %H:%M UTC").to_string())) }
                                td {
                                    @if user.user.role.can_edit() {
                                        form.inline method="post" action={ "/reports/schedules/" (s.id) "/delete" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button.danger type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if user.user.role.can_edit() {
                @if channels.is_empty() {
                    p.muted { "Schedules send through notification channels: add one on the Alerts page first." }
                } @else {
                    h3 { "New schedule" }
                    form.inline #new-schedule method="post" action="/reports/schedules" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        label { "Name " input type="text" name="name" maxlength="100" placeholder="Weekly health report"; }
                        label { "Report "
                            select name="kind" {
                                @for k in ReportKind::ALL.into_iter().filter(|k| *k != ReportKind::Incident) {
                                    option value=(k.as_str()) { (k.title()) }
                                }
                            }
                        }
                        label { "Every "
                            select name="day" {
                                @for (i, d) in WEEKDAYS.iter().enumerate() {
                                    option value=(i) selected[i == 1] { (d) }
                                }
                            }
                        }
                        label { "at hour " input type="number" name="hour" min="0" max="23" value="9"; }
                        label { "or cron " input type="text" name="cron" placeholder="0 9 * * MON" maxlength="100"; }
                        label { "Time zone " input type="text" name="timezone" value="UTC" maxlength="64"; }
                        label { "Attach "
                            select name="format" {
                                option value="pdf" { "PDF" }
                                option value="html" { "HTML" }
                                option value="md" { "Markdown" }
                            }
                        }
                        fieldset {
                            legend { "Channels" }
                            @for c in &channels {
                                label { input type="checkbox" name={ "channel_" (c.id) } value="on"; " " (c.name) }
                            }
                        }
                        button type="submit" { "Schedule" }
                    }
                }
            }
        }
        section #archive {
            h2 { "Archive" }
            @if archive.is_empty() {
                p.muted { "Reports kept by hand and every scheduled delivery appear here, as they were generated." }
            } @else {
                table {
                    thead { tr { th { "Report" } th { "Period" } th { "Generated" } th { "Summary" } th { "Formats" } } }
                    tbody {
                        @for a in &archive {
                            tr {
                                td { (a.title) @if a.schedule_id.is_some() { " " span class=(Tone::Info.class()) { "scheduled" } } }
                                td.mono { (a.from.format("%Y-%m-%d")) " – " (a.to.format("%Y-%m-%d")) }
                                td.mono { (a.generated_at.format("%Y-%m-%d %H:%M")) }
                                td { (a.summary) }
                                td {
                                    @for f in Format::ALL {
                                        a href={ "/reports/archive/" (a.id) "." (f.as_str()) } { (f.as_str()) } " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut res = page(user, "/reports", Window::H24, "Reports", body);
    *res.status_mut() = status;
    res
}

/// The report rendered for the preview frame or a download.
async fn render(
    state: &AppState,
    q: &ReportQuery,
    format: Format,
    disposition: Disposition,
) -> Response {
    let req = match q.request() {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    match state.report(&req).await {
        Ok(report) => rendered(&report, format, disposition),
        Err(e) => {
            let (message, status) = failure(&e);
            (status, message).into_response()
        }
    }
}

/// The HTML report for the page's frame: the report's own policy (no scripts, nothing
/// fetched), framed by this origin only.
pub async fn preview(
    State(state): State<AppState>,
    _user: UiUser,
    Query(q): Query<ReportQuery>,
) -> Response {
    let mut res = render(&state, &q, Format::Html, Disposition::Inline).await;
    framable(&mut res);
    res
}

fn framable(res: &mut Response) {
    let h = res.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
        ),
    );
}

pub async fn download(
    State(state): State<AppState>,
    _user: UiUser,
    Query(q): Query<ReportQuery>,
) -> Response {
    let format = q
        .format
        .as_deref()
        .and_then(Format::parse)
        .unwrap_or(Format::Html);
    render(&state, &q, format, Disposition::Attachment).await
}

/// `/reports/archive/{id}.{format}`: an archived report exactly as it was generated.
pub async fn archived(
    State(state): State<AppState>,
    _user: UiUser,
    Path(file): Path<String>,
) -> Response {
    let parsed = file
        .rsplit_once('.')
        .and_then(|(id, ext)| Some((id.parse::<i64>().ok()?, Format::parse(ext)?)));
    let Some((id, format)) = parsed else {
        return (StatusCode::NOT_FOUND, "no such archived report").into_response();
    };
    match crate::api::reports::archived_response(&state, id, format).await {
        Ok(mut res) => {
            if format == Format::Html {
                framable(&mut res);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// An editor's complete form, or the page to answer with (refused, or incomplete with why).
async fn accepted<T>(
    state: &AppState,
    user: &UiUser,
    form: Result<CsrfForm<T>, Refused>,
) -> Result<T, Response> {
    match user.accept(form, UiUser::require_editor) {
        Ok(f) => Ok(f),
        Err(Refused::Page(res)) => Err(res),
        Err(Refused::Incomplete(e)) => {
            let flash = Flash::error(format!("The form was incomplete: {e}"));
            Err(reports_page(
                state,
                user,
                &ReportQuery::default(),
                flash,
                StatusCode::BAD_REQUEST,
            )
            .await)
        }
    }
}

#[derive(Deserialize)]
pub struct KeepForm {
    kind: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    month: Option<String>,
}

pub async fn keep(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<KeepForm>, Refused>,
) -> Response {
    let f = match accepted(&state, &user, form).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let q = ReportQuery {
        kind: Some(f.kind),
        from: f.from,
        to: f.to,
        id: f.id,
        month: f.month,
        format: None,
    };
    let req = match q.request() {
        Ok(r) => r,
        Err(e) => {
            return reports_page(
                &state,
                &user,
                &q,
                Flash::Error(e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let outcome = async {
        let report = state.report(&req).await?;
        state.reports.archive(report, None).await
    }
    .await;
    match outcome {
        Ok(g) => {
            let flash = Flash::Ok(format!("Kept “{}” in the archive.", g.archived.title));
            reports_page(&state, &user, &q, flash, StatusCode::OK).await
        }
        Err(e) => {
            let (m, s) = failure(&e);
            reports_page(&state, &user, &q, Flash::Error(m), s).await
        }
    }
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    name: String,
    kind: String,
    #[serde(default)]
    day: Option<u8>,
    #[serde(default)]
    hour: Option<u8>,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    format: String,
    /// `channel_<id>=on` per ticked channel (a urlencoded form cannot repeat a field).
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, String>,
}

impl ScheduleForm {
    fn channels(&self) -> Vec<i64> {
        self.rest
            .keys()
            .filter_map(|k| k.strip_prefix("channel_")?.parse().ok())
            .collect()
    }
}

pub async fn create_schedule(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<ScheduleForm>, Refused>,
) -> Response {
    let f = match accepted(&state, &user, form).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let channels = f.channels();
    let cron = Some(f.cron.trim().to_owned()).filter(|c| !c.is_empty());
    let input = ScheduleInput {
        name: Some(f.name),
        kind: ReportKind::parse(&f.kind).unwrap_or(ReportKind::Weekly),
        weekly: if cron.is_some() {
            None
        } else {
            Some(WeeklyAt {
                day: f.day.unwrap_or(1),
                hour: f.hour.unwrap_or(9),
            })
        },
        cron,
        timezone: Some(f.timezone.trim().to_owned()).filter(|t| !t.is_empty()),
        channels,
        format: Format::parse(&f.format),
        enabled: Some(true),
    };
    let outcome = match input.validate() {
        Err(e) => Err(liftoff_core::reports::ReportError::Invalid(e)),
        Ok(input) => {
            state
                .reports
                .create_schedule(&user.user.actor(), input, &state.alerts)
                .await
        }
    };
    match outcome {
        Ok(_) => Redirect::to("/reports#schedules").into_response(),
        Err(e) => {
            let (m, s) = failure(&e);
            reports_page(&state, &user, &ReportQuery::default(), Flash::Error(m), s).await
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn delete_schedule(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<i64>,
    form: Result<CsrfForm<DeleteForm>, Refused>,
) -> Response {
    if let Err(Refused::Page(res)) = user.accept(form, UiUser::require_editor) {
        return res;
    }
    match state.reports.delete_schedule(id).await {
        Ok(()) => Redirect::to("/reports#schedules").into_response(),
        Err(e) => {
            let (m, s) = failure(&e);
            reports_page(&state, &user, &ReportQuery::default(), Flash::Error(m), s).await
        }
    }
}
