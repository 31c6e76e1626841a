//! The Uptime page: every monitor with its status and the last 30 days as bars; a monitor's
//! page with uptime figures, daily bars, the response-time chart, downtime periods and recent
//! checks. Editors add, pause and delete monitors here.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use liftoff_core::uptime::service::{DayUptime, MonitorInput};
use liftoff_core::uptime::{HttpMethod, MonitorStatus, UptimeError};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;
use crate::ui::badge::{Status, badge};
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::format::percent_value;
use crate::ui::layout::{Window, WindowQuery, chart_over, error_page, page};
use crate::ui::session::{Refused, UiUser};

fn status_badge(status: MonitorStatus, enabled: bool) -> Markup {
    badge(Status::Monitor { status, enabled })
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), percent_value)
}

/// One bar per day: green at 100 %, amber above 99 %, red below, grey without checks.
fn day_bars(days: &[DayUptime], count: i64) -> Markup {
    let today = Utc::now().date_naive();
    html! {
        div.uptime-bars style="display:flex;gap:2px;align-items:flex-end" {
            @for i in (0..count).rev() {
                @let day = today - chrono::Duration::days(i);
                @let d = days.iter().find(|d| d.day.date_naive() == day);
                @let (color, title) = match d.and_then(|d| d.uptime_percent) {
                    None => ("#e5e7eb", format!("{day}: no checks")),
                    Some(p) if p >= 100.0 => ("#22c55e", format!("{day}: {}", percent_value(p))),
                    Some(p) if p >= 99.0 => ("#f59e0b", format!("{day}: {}", percent_value(p))),
                    Some(p) => ("#ef4444", format!("{day}: {}", percent_value(p))),
                };
                span title=(title) style={ "display:inline-block;width:6px;height:22px;border-radius:2px;background:" (color) } {}
            }
        }
    }
}

async fn list_page(
    state: &AppState,
    user: &UiUser,
    message: Flash,
    status: StatusCode,
) -> Response {
    let now = Utc::now();
    let monitors = match state.uptime.list().await {
        Ok(m) => m,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Uptime", &m);
        }
    };
    let mut rows = Vec::new();
    for m in monitors {
        match state.uptime.detail(m.id, now).await {
            Ok(d) => rows.push(d),
            Err(e) => {
                let (m, s) = failure(&e);
                return error_page(s, "Uptime", &m);
            }
        }
    }
    let body = html! {
        (message)
        @if rows.is_empty() {
            div.empty { p { "No monitors yet. Add one below: Liftoff checks the URL on its interval and records uptime, downtime periods and response times." } }
        } @else {
            table {
                thead { tr { th { "Monitor" } th { "Status" } th { "24 h" } th { "7 d" } th { "30 d" } th { "Last 30 days" } th { "Last check" } } }
                tbody {
                    @for d in &rows {
                        tr {
                            td { a href={ "/uptime/" (d.monitor.id) } { (d.monitor.name) } br; span.muted.mono { (d.monitor.method.as_str()) " " (d.monitor.url) } }
                            td { (status_badge(d.monitor.state.status, d.monitor.enabled)) }
                            td { (percent(d.uptime.h24)) }
                            td { (percent(d.uptime.d7)) }
                            td { (percent(d.uptime.d30)) }
                            td { (day_bars(&d.daily, 30)) }
                            td.mono { (d.monitor.state.last_checked_at.map_or_else(|| "—".into(), |t| t.format("%H:%M:%S").to_string())) }
                        }
                    }
                }
            }
        }
        @if user.user.role.can_edit() {
            h2 { "Add a monitor" }
            form.inline method="post" action="/uptime" {
                input type="hidden" name="csrf" value=(user.csrf);
                input name="name" placeholder="Name" required;
                input name="url" placeholder="https://example.com/healthz" required size="36";
                select name="method" { option value="GET" { "GET" } option value="HEAD" { "HEAD" } }
                label { "every " input name="interval_seconds" type="number" min="10" value="60"; " s" }
                label { "timeout " input name="timeout_seconds" type="number" min="1" value="10"; " s" }
                input name="keyword" placeholder="Keyword (optional)";
                label { "retries " input name="retries" type="number" min="0" value="0"; }
                button type="submit" { "Add" }
            }
        }
    };
    let mut res = page(user, "/uptime", Window::H24, "Uptime", body);
    *res.status_mut() = status;
    res
}

pub async fn list(
    State(state): State<AppState>,
    user: UiUser,
    Query(_q): Query<WindowQuery>,
) -> Response {
    list_page(&state, &user, Flash::None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    url: String,
    method: HttpMethod,
    interval_seconds: u32,
    timeout_seconds: u32,
    #[serde(default)]
    keyword: String,
    #[serde(default)]
    retries: u32,
}

pub async fn create(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<CreateForm>, Refused>,
) -> Response {
    let (message, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            Flash::error(format!("The form was incomplete: {e}")),
            StatusCode::BAD_REQUEST,
        ),
        Ok(f) => {
            let input = MonitorInput {
                name: Some(f.name),
                url: Some(f.url),
                method: Some(f.method),
                interval_seconds: Some(f.interval_seconds),
                timeout_seconds: Some(f.timeout_seconds),
                expected_status: None,
                keyword: Some(f.keyword).filter(|k| !k.is_empty()),
                retries: Some(f.retries),
                enabled: Some(true),
            };
            match state.uptime.create(&user.user.actor(), input).await {
                Ok(m) => (
                    Flash::ok(format!("{} is monitored now.", m.name)),
                    StatusCode::OK,
                ),
                Err(e) => {
                    let (m, s) = failure(&e);
                    (Flash::Error(m), s)
                }
            }
        }
    };
    list_page(&state, &user, message, status).await
}

#[derive(Deserialize)]
pub struct ActionForm {
    /// `pause`, `resume` or `delete`.
    action: String,
}

pub async fn action(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<i64>,
    form: Result<CsrfForm<ActionForm>, Refused>,
) -> Response {
    let f = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Uptime",
                &format!("The form was incomplete: {e}"),
            );
        }
        Ok(f) => f,
    };
    let actor = user.user.actor();
    let result = match f.action.as_str() {
        "pause" | "resume" => state
            .uptime
            .update(
                &actor,
                id,
                MonitorInput {
                    enabled: Some(f.action == "resume"),
                    ..MonitorInput::default()
                },
            )
            .await
            .map(|_| format!("/uptime/{id}")),
        "delete" => state
            .uptime
            .delete(&actor, id)
            .await
            .map(|()| "/uptime".to_owned()),
        _ => Err(UptimeError::Invalid("unknown action".into())),
    };
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => {
            let (m, s) = failure(&e);
            error_page(s, "Uptime", &m)
        }
    }
}

pub async fn detail(State(state): State<AppState>, user: UiUser, Path(id): Path<i64>) -> Response {
    let now = Utc::now();
    let d = match state.uptime.detail(id, now).await {
        Ok(d) => d,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Uptime monitor", &m);
        }
    };
    let m = &d.monitor;
    let xs: Vec<i64> = d.response_times.iter().map(|p| p.t.timestamp()).collect();
    let avg: Vec<f64> = d.response_times.iter().map(|p| p.avg_ms).collect();
    let max: Vec<u32> = d.response_times.iter().map(|p| p.max_ms).collect();
    let mut recent = d.recent_checks.clone();
    recent.reverse();
    let rx: Vec<i64> = recent.iter().map(|c| c.at.timestamp()).collect();
    let ry: Vec<u32> = recent.iter().map(|c| c.response_ms).collect();
    // `response_times` holds the hourly averages of the last 7 days: the chart spans them all.
    let week = (
        (now - chrono::Duration::days(7)).timestamp(),
        now.timestamp(),
    );
    let body = html! {
        p { (status_badge(m.state.status, m.enabled)) " " span.mono { (m.method.as_str()) " " (m.url) }
            " · every " (m.interval_seconds) " s, timeout " (m.timeout_seconds) " s, retries " (m.retries)
            @if let Some(k) = &m.keyword { ", keyword “" (k) "”" } }
        @if let Some(e) = &m.state.last_error { p.bad-text { "Last error: " (e) } }
        div.tiles {
            div.tile { div.muted { "Uptime 24 h" } div.value { (percent(d.uptime.h24)) } }
            div.tile { div.muted { "Uptime 7 d" } div.value { (percent(d.uptime.d7)) } }
            div.tile { div.muted { "Uptime 30 d" } div.value { (percent(d.uptime.d30)) } }
            div.tile { div.muted { "Downtime periods (30 d)" } div.value { (d.downtimes.len()) } }
        }
        h2 { "Last 90 days" }
        (day_bars(&d.daily, 90))
        h2 { "Response time" }
        @if xs.is_empty() {
            p.muted #uptime-latency-empty { "No checks in the last 7 days." }
        } @else {
            (chart_over("uptime-latency", "Hourly response time over the last 7 days (ms)", &["avg", "max"], &json!([xs, avg, max]), week))
        }
        @if let Some(first) = rx.first().copied() {
            (chart_over("uptime-recent", &format!("Response time of the last {} checks (ms)", rx.len()), &["response"], &json!([rx, ry]), (first, now.timestamp())))
        }
        h2 { "Downtime periods" }
        @if d.downtimes.is_empty() { p.muted { "None in the last 30 days." } } @else {
            table {
                thead { tr { th { "Started" } th { "Ended" } th { "Duration" } } }
                tbody { @for p in &d.downtimes { tr {
                    td.mono { (p.started_at.format("%Y-%m-%d %H:%M:%S")) }
                    td.mono { @if let Some(e) = p.ended_at { (e.format("%Y-%m-%d %H:%M:%S")) } @else { span.bad-text { "ongoing" } } }
                    td { (p.duration_seconds) " s" }
                } } }
            }
        }
        h2 { "Recent checks" }
        table {
            thead { tr { th { "When" } th { "Result" } th { "Status" } th { "Time" } th { "Error" } } }
            tbody { @for c in d.recent_checks.iter().take(20) { tr {
                td.mono { (c.at.format("%H:%M:%S")) }
                td { @if c.up { "up" } @else { span.bad-text { "down" } } }
                td { (c.status_code.map_or_else(|| "—".into(), |s| s.to_string())) }
                td { (c.response_ms) " ms" }
                td { (c.error.as_deref().unwrap_or("")) }
            } } }
        }
        @if user.user.role.can_edit() {
            form.inline method="post" action={ "/uptime/" (m.id) "/action" } {
                input type="hidden" name="csrf" value=(user.csrf);
                @if m.enabled { button name="action" value="pause" { "Pause" } } @else { button name="action" value="resume" { "Resume" } }
                " "
                button.danger name="action" value="delete" { "Delete" }
            }
        }
    };
    page(&user, "/uptime", Window::H24, &m.name, body)
}
