//! The dashboard's pages. Each calls the same services as the JSON API.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use liftoff_core::audit::{AuditEntry, AuditQuery};
use liftoff_core::auth::{KeyName, Scope};
use liftoff_core::users::Role;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;
use crate::ui::failure::{STORE_DOWN, failure};
use crate::ui::flash::Flash;
use crate::ui::form::{CsrfForm, NoFields};
use crate::ui::format::{percent, percent_value};
use crate::ui::layout::{Window, WindowQuery, chart, error_page, page};
use crate::ui::session::{Refused, UiUser};

fn store_down() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Store unavailable",
        STORE_DOWN,
    )
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn audit_table(entries: &[AuditEntry]) -> Markup {
    html! {
        @if entries.is_empty() {
            p.muted { "No changes yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Target" } th { "Reason" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td.mono { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (e.actor) }
                            td { code { (e.action) } }
                            td { (e.target_type) " " code { (e.target_id) } }
                            td { (e.reason.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

/// Changes per day over the last 14 days, as chart data.
fn changes_per_day(entries: &[AuditEntry]) -> serde_json::Value {
    let today = Utc::now().date_naive();
    let mut days: BTreeMap<chrono::NaiveDate, u64> = (0..14)
        .map(|i| (today - Duration::days(13 - i), 0))
        .collect();
    for e in entries {
        if let Some(n) = days.get_mut(&e.at.date_naive()) {
            *n += 1;
        }
    }
    let xs: Vec<i64> = days
        .keys()
        .filter_map(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .collect();
    let ys: Vec<u64> = days.values().copied().collect();
    json!([xs, ys])
}

pub async fn overview(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<WindowQuery>,
) -> Response {
    let window = q.window();
    let since = Utc::now() - Duration::days(14);
    let all_recent = AuditQuery {
        limit: AuditQuery::MAX_LIMIT,
        ..Default::default()
    };
    let range = liftoff_core::monitoring::TimeRange {
        from: Utc::now() - window.duration(),
        to: Utc::now(),
    };
    // Liftoff's own API traffic is not the app's: the tile counts the app services only.
    let app_services = liftoff_core::monitoring::Filter::default();
    let (store_check, users, keys, audit, traffic) = tokio::join!(
        state.health.check_store(),
        state.users.count(),
        state.keys.count_active(None),
        state.audit.list(&all_recent),
        state.monitoring.summary(range, &app_services),
    );
    let (ping, schema) = (store_check.ping, store_check.schema_version);
    let (Ok(users), Ok(keys), Ok(audit)) = (users, keys, audit) else {
        return store_down();
    };
    let recent: Vec<AuditEntry> = audit
        .iter()
        .filter(|e| e.at >= Utc::now() - window.duration())
        .take(20)
        .cloned()
        .collect();
    let last_14: Vec<AuditEntry> = audit.into_iter().filter(|e| e.at >= since).collect();
    let jobs = state.jobs.jobs();
    let failing_jobs = jobs.iter().filter(|j| j.last_error.is_some()).count();
    let healthy = ping.is_ok() && failing_jobs == 0;
    let body = html! {
        section.tiles {
            div class={ "tile " (if healthy { "ok" } else { "bad" }) } {
                div.label { "System" } div.value { (if healthy { "Healthy" } else { "Degraded" }) }
            }
            div.tile {
                div.label { "State store" }
                div.value { (store_check.backend) }
                div.muted {
                    @match &ping { Ok(d) => { (format!("{:.2} ms", d.as_secs_f64() * 1000.0)) }, Err(_) => { "unreachable" } }
                    @if let Ok(v) = schema { " · schema v" (v) }
                }
            }
            div.tile { div.label { "Uptime" } div.value { (human_duration(state.started.elapsed().as_secs())) } }
            div.tile { div.label { "Users" } div.value { (users) } }
            @if let Ok(t) = &traffic {
                a.tile href="/performance" {
                    div.label { "Requests" } div.value { (t.requests.total) }
                    div.muted { (percent(t.requests.error_rate)) " errors · p95 " (format!("{:.0}", t.performance.p95_duration_ms)) " ms" }
                }
                div class={ "tile " (if t.system.cpu.percent > 80.0 || t.system.memory.percent > 90.0 { "warn" } else { "" }) } {
                    div.label { "CPU · memory" }
                    div.value { (percent_value(t.system.cpu.percent)) " · " (percent_value(t.system.memory.percent)) }
                }
            }
            div.tile { div.label { "Active API keys" } div.value { (keys) } }
            @let flags = state.flags.list();
            a.tile href="/flags" {
                div.label { "Flags on" }
                div.value { (flags.iter().filter(|f| f.enabled).count()) " / " (flags.len()) }
            }
            div class={ "tile " (if failing_jobs == 0 { "ok" } else { "warn" }) } {
                div.label { "Background jobs" } div.value { (jobs.len() - failing_jobs) " / " (jobs.len()) } div.muted { "running cleanly" }
            }
        }
        h2 { "Changes per day" }
        (chart("changes-chart", "Audited changes per day, last 14 days", &["changes"], &changes_per_day(&last_14)))
        h2 { "Recent changes · " (window.label().to_lowercase()) }
        (audit_table(&recent))
        h2 { "Background jobs" }
        @let lease = state.leadership.status();
        p.muted #lease {
            @if lease.held {
                "This replica (" code { (lease.holder) } ") holds the singleton lease: it runs the jobs marked “one replica”."
            } @else {
                "Another replica holds the singleton lease: the jobs marked “one replica” run there, and move here within "
                (format!("{:.0}", lease.ttl_seconds * 4.0 / 3.0)) " s if it stops."
            }
        }
        table #jobs {
            thead { tr { th { "Job" } th { "Runs on" } th { "Every" } th { "Runs" } th { "Failures" } th { "Last run" } th { "Last error" } } }
            tbody {
                @for j in &jobs {
                    tr {
                        td { code { (j.name) } }
                        td { @if j.singleton { "one replica" @if j.standby_ticks > 0 && !lease.held { " " span.badge { "standby" } } } @else { "every replica" } }
                        td { (human_duration(j.interval_seconds)) }
                        td { (j.runs) }
                        td { (j.failures) }
                        td.mono { (j.last_run_at.map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_else(|| "—".into())) }
                        td { (j.last_error.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
    };
    page(&user, "/", window, "Overview", body)
}

#[derive(Deserialize)]
pub struct NewUserForm {
    username: String,
    password: String,
    role: String,
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    name: String,
    scope: String,
}

async fn settings_page(
    state: &AppState,
    user: &UiUser,
    window: Window,
    flash: Flash,
    status: StatusCode,
) -> Response {
    let (users, keys) = tokio::join!(state.users.list(), state.keys.list());
    let (Ok(users), Ok(keys)) = (users, keys) else {
        return store_down();
    };
    let admin = user.user.role.can_administer();
    let body = html! {
        (flash)
        h2 { "Users" }
        table {
            thead { tr { th { "User" } th { "Role" } th { "Created" } } }
            tbody { @for u in &users { tr { td { (u.username) } td { span.badge { (u.role.as_str()) } } td.mono { (u.created_at.format("%Y-%m-%d")) } } } }
        }
        @if admin {
            form.inline method="post" action="/settings/users" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "User name" input name="username" required; }
                label { "Password" input name="password" type="password" minlength="8" required; }
                label { "Role" select name="role" { option value="viewer" { "viewer" } option value="editor" { "editor" } option value="admin" { "admin" } } }
                button type="submit" { "Add user" }
            }
        }
        h2 { "API keys" }
        table {
            thead { tr { th { "Name" } th { "Scope" } th { "Prefix" } th { "Created" } th { "Last used" } th { "Status" } @if admin { th {} } } }
            tbody {
                @for k in &keys {
                    tr {
                        td { (k.name) } td { span.badge { (k.scope.as_str()) } } td { code { (k.prefix) "…" } }
                        td.mono { (k.created_at.format("%Y-%m-%d")) }
                        td.mono { (k.last_used_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into())) }
                        td { @if k.revoked_at.is_some() { span.badge.bad { "revoked" } } @else { span.badge.ok { "active" } } }
                        @if admin {
                            td {
                                @if k.revoked_at.is_none() {
                                    form method="post" action={ "/settings/keys/" (k.id) "/revoke" } data-confirm={ "Revoke key " (k.name) "? Apps using it stop working." } {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            form.inline method="post" action="/settings/keys" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Name" input name="name" required maxlength="100"; }
                label { "Scope" select name="scope" { option value="ingest" { "ingest" } option value="read" { "read" } option value="admin" { "admin" } } }
                button type="submit" { "Create key" }
            }
        }
    };
    let mut res = page(user, "/settings", window, "Settings", body);
    *res.status_mut() = status;
    res
}

pub async fn settings(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<WindowQuery>,
) -> Response {
    settings_page(&state, &user, q.window(), Flash::None, StatusCode::OK).await
}

/// A settings form's outcome: the message to show and the status to answer with.
type Outcome = (Flash, StatusCode);

fn failed(message: impl Into<String>, status: StatusCode) -> Outcome {
    (Flash::Error(message.into()), status)
}

/// Runs an admin-only settings form: checks the body, CSRF token and role, runs `act`, and
/// shows the settings page with its outcome.
async fn admin_form<T>(
    state: &AppState,
    user: &UiUser,
    form: Result<CsrfForm<T>, Refused>,
    act: impl AsyncFnOnce(T) -> Outcome,
) -> Response {
    let (flash, status) = match user.accept(form, UiUser::require_admin) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(_)) => failed("Fill in every field.", StatusCode::BAD_REQUEST),
        Ok(form) => act(form).await,
    };
    settings_page(state, user, Window::H24, flash, status).await
}

pub async fn create_user(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<NewUserForm>, Refused>,
) -> Response {
    admin_form(&state, &user, form, async |form: NewUserForm| {
        let Some(role) = Role::parse(&form.role) else {
            return failed("Unknown role.", StatusCode::UNPROCESSABLE_ENTITY);
        };
        match state
            .users
            .create(&user.user.actor(), &form.username, &form.password, role)
            .await
        {
            Ok(u) => (
                Flash::Ok(format!("User {} added as {}.", u.username, u.role)),
                StatusCode::OK,
            ),
            Err(e) => {
                let (message, status) = failure(&e);
                failed(message, status)
            }
        }
    })
    .await
}

pub async fn create_key(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<NewKeyForm>, Refused>,
) -> Response {
    admin_form(&state, &user, form, async |form: NewKeyForm| {
        let (Ok(name), Some(scope)) = (KeyName::parse(&form.name), Scope::parse(&form.scope))
        else {
            return failed(
                "Give the key a name (up to 100 characters) and a scope.",
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        };
        match state
            .keys
            .create(&user.user.actor(), name, scope, None)
            .await
        {
            Ok(k) => (
                Flash::Token {
                    name: k.name,
                    token: k.token,
                },
                StatusCode::OK,
            ),
            Err(e) => {
                let (message, status) = failure(&e);
                failed(message, status)
            }
        }
    })
    .await
}

pub async fn revoke_key(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<NoFields>, Refused>,
) -> Response {
    admin_form(&state, &user, form, async |_: NoFields| {
        match state.keys.revoke(&user.user.actor(), &id, None).await {
            Ok(()) => (Flash::Ok("Key revoked.".into()), StatusCode::OK),
            Err(e) => {
                let (message, status) = failure(&e);
                failed(message, status)
            }
        }
    })
    .await
}
