//! The Launch page: the phase and its exit criteria, admitted users against the cap and the
//! waitlist, the key figures against the launch thresholds, readiness, maintenance mode,
//! scaling advice and feedback. Editors steer the launch here; every change goes through
//! `LaunchService` and is audited like its API twin.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use liftoff_core::alerts::model::MaintenanceWindow;
use liftoff_core::launch::LaunchError;
use liftoff_core::launch::feedback::{Feedback, FeedbackInput, FeedbackStatus, FeedbackSummary};
use liftoff_core::launch::figures::LaunchMetrics;
use liftoff_core::launch::phases::{CriterionResult, judge_exit};
use liftoff_core::launch::presets::Level;
use liftoff_core::launch::readiness::Readiness;
use liftoff_core::launch::scaling::ScalingReport;
use liftoff_core::launch::service::MaintenanceInput;
use liftoff_core::launch::store::{FeedbackQuery, LaunchSettings, LaunchUser};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::ui::badge::badge;
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::format::percent;
use crate::ui::layout::{Window, chart_over, error_page, page};
use crate::ui::session::{Refused, UiUser};

/// Rows of the waitlist and of the admitted users shown.
const USERS_SHOWN: u32 = 20;
/// Feedback items shown, newest first.
const FEEDBACK_SHOWN: u32 = 20;

/// Everything the page shows, read at once.
struct Figures {
    settings: LaunchSettings,
    metrics: LaunchMetrics,
    readiness: Readiness,
    criteria: Vec<CriterionResult>,
    scaling: ScalingReport,
    waiting: Vec<LaunchUser>,
    admitted: Vec<LaunchUser>,
    summary: FeedbackSummary,
    recent: Vec<Feedback>,
    /// Notification channels, by id and name, for the admission-notice choice.
    channels: Vec<(i64, String)>,
    /// Gating maintenance windows that have not ended.
    windows: Vec<MaintenanceWindow>,
}

async fn gather(state: &AppState) -> Result<Figures, LaunchError> {
    let now = state.launch.now();
    let sources = state.sources();
    let (settings, metrics, readiness, phase_figures, scaling) = tokio::join!(
        state.launch.settings(),
        sources.metrics(now),
        sources.readiness(now),
        sources.phase_figures(now),
        sources.scaling(now, state.settings.instance_monthly_cost),
    );
    let newest = FeedbackQuery {
        limit: FEEDBACK_SHOWN,
        ..FeedbackQuery::default()
    };
    let (waiting, admitted, summary, recent, channels, windows) = tokio::join!(
        state.launch.users(true, 0, USERS_SHOWN),
        state.launch.users(false, 0, USERS_SHOWN),
        state.launch.feedback_summary(),
        state.launch.list_feedback(&newest),
        state.alerts.channels(),
        state.alerts.maintenance_windows(),
    );
    let settings = settings?;
    let phase_figures = phase_figures?;
    let criteria = settings
        .phases
        .get(settings.phase)
        .map(|p| judge_exit(&p.exit, &phase_figures))
        .unwrap_or_default();
    Ok(Figures {
        settings,
        metrics: metrics?,
        readiness: readiness?,
        criteria,
        scaling: scaling?,
        waiting: waiting?,
        admitted: admitted?
            .into_iter()
            .filter(|u| u.admitted_at.is_some())
            .collect(),
        summary: summary?,
        recent: recent?,
        channels: channels
            .map_err(|e| LaunchError::Sources(e.to_string()))?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect(),
        windows: windows
            .map_err(|e| LaunchError::Sources(e.to_string()))?
            .into_iter()
            .filter(|w| w.gate && (w.weekly.is_some() || w.ends_at.is_some_and(|e| e > now)))
            .collect(),
    })
}

fn level_class(level: Option<&Level>) -> &'static str {
    match level {
        Some(Level::Ok) => "tile ok",
        Some(Level::Warning) => "tile warn",
        Some(Level::Critical) => "tile bad",
        None => "tile",
    }
}

/// A figure as a tile coloured by its level against the launch thresholds.
fn metric_tile(label: &str, value: String, level: Option<&Level>, id: &str) -> Markup {
    html! {
        div class=(level_class(level)) id=(id) {
            div.label { (label) }
            div.value { (value) }
            @if let Some(l) = level { div { (badge(*l)) } }
        }
    }
}

fn opt<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "—".into(), show)
}

fn json_text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |f| format!("{}", (f * 100.0).round() / 100.0),
        ),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn progress(admitted: u64, limit: Option<u32>) -> Markup {
    let share = limit
        .filter(|l| *l > 0)
        .map(|l| (admitted as f64 / f64::from(l) * 100.0).min(100.0));
    html! {
        div #launch-seats {
            @match share {
                Some(share) => {
                    div.bar.wide title=(format!("{share:.0} % of seats taken")) { div.fill style={ "width:" (share) "%" } {} }
                    span { strong { (admitted) } " of " (limit.unwrap_or_default()) " seats taken" }
                }
                None => { span { strong { (admitted) } " admitted · no user limit" } }
            }
        }
    }
}

/// Ratings 5 to 1 as horizontal bars, the way app stores show them.
fn rating_bars(summary: &FeedbackSummary) -> Markup {
    let most = summary
        .rating_distribution
        .values()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        table #launch-ratings {
            tbody {
                @for r in (1..=5).rev() {
                    @let n = summary.rating_distribution.get(&r.to_string()).copied().unwrap_or(0);
                    tr {
                        td { (r) " ★" }
                        td { div.bar.wide { div.fill style={ "width:" (n as f64 / most as f64 * 100.0) "%" } {} } }
                        td.mono { (n) }
                    }
                }
            }
        }
    }
}

fn rating_trend(summary: &FeedbackSummary) -> Markup {
    let xs: Vec<i64> = summary
        .trend
        .iter()
        .filter_map(|w| w.week_start.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .collect();
    let ys: Vec<f64> = summary.trend.iter().map(|w| w.average_rating).collect();
    match (xs.first(), xs.last()) {
        (Some(first), Some(last)) if xs.len() > 1 => chart_over(
            "launch-rating-trend",
            "Average rating per week",
            &["average rating"],
            &json!([xs, ys]),
            (*first, *last),
        ),
        _ => html! {},
    }
}

fn render(figures: &Figures, user: &UiUser) -> Markup {
    let Figures {
        settings: s,
        metrics: m,
        readiness,
        criteria,
        scaling,
        waiting,
        admitted,
        summary,
        recent,
        channels,
        windows,
    } = figures;
    let editor = user.user.role.can_edit();
    let phase = s.phases.get(s.phase);
    let status = |k: &str| m.status.get(k);
    html! {
        p #launch-phase {
            "Phase " strong { (phase.map_or("—", |p| p.name.as_str())) }
            " (" (s.phase + 1) " of " (s.phases.len()) ")"
            @if let Some(env) = s.environment { " · preset " code { (env.as_str()) } }
            @if s.maintenance.enabled { " · " span.badge.badge-warn #launch-maintenance-on { "maintenance on" } }
        }
        (progress(m.users.admitted, m.users.user_limit))
        div.tiles {
            (metric_tile("Success rate", opt(m.success_rate, percent), status("success_rate"), "launch-success-rate"))
            (metric_tile("Error rate", opt(m.error_rate, percent), status("error_rate"), "launch-error-rate"))
            (metric_tile("Avg response", opt(m.avg_response_time_ms, |v| format!("{v:.0}\u{a0}ms")), status("avg_response_time_ms"), "launch-avg"))
            (metric_tile("p95 response", opt(m.p95_ms, |v| format!("{v:.0}\u{a0}ms")), status("p95_ms"), "launch-p95"))
            div.tile { div.label { "Waitlist" } div.value #launch-waitlist-count { (m.users.waitlist) } }
            div.tile { div.label { "Active users 5 m / 24 h" } div.value { (m.users.active_5m) " / " (m.users.active_24h) } }
            div.tile { div.label { "Feedback" } div.value { (opt(m.feedback.average_rating, |r| format!("{r:.1} ★"))) } div.muted { (m.feedback.count) " items" } }
        }
        p.muted { "Over the last hour: " (m.requests_last_hour) " requests. Levels are the launch thresholds (errors 3 % / 5 %, p95 1.5 s / 2 s, success below 95 %)." }

        h2 { "Phases" }
        table #launch-phases {
            thead { tr { th { "Phase" } th { "User limit" } th { "Features" } th { "Exit criteria" } } }
            tbody {
                @for (i, p) in s.phases.iter().enumerate() {
                    tr class=[(i == s.phase).then_some("current")] {
                        td { (p.name) @if i == s.phase { " " span.badge.badge-info { "current" } } @else if i < s.phase { " " span.badge.badge-muted { "done" } } }
                        td { (opt(p.user_limit, |l| l.to_string())) }
                        td { @if p.features.is_empty() { "—" } @else { (p.features.join(", ")) } }
                        td.muted { (exit_summary(&p.exit)) }
                    }
                }
            }
        }
        @if !criteria.is_empty() {
            h3 { "Exit criteria of " (phase.map_or("", |p| p.name.as_str())) }
            table #launch-criteria {
                thead { tr { th { "Criterion" } th { "Result" } th { "Value" } th { "Target" } } }
                tbody { @for c in criteria { tr {
                    td { (c.name) }
                    td { @if c.pass { span.badge.badge-ok { "met" } } @else { span.badge.badge-crit { "not met" } } }
                    td.mono { (json_text(&c.value)) }
                    td.mono { (json_text(&c.target)) }
                } } }
            }
        }
        @if editor && s.phase + 1 < s.phases.len() {
            form.inline #launch-advance method="post" action="/launch/advance" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Reason" input name="reason" size="40" placeholder="Required when forcing"; }
                label { "Force" input type="checkbox" name="force" value="true"; }
                button type="submit" { "Advance to " (s.phases[s.phase + 1].name) }
            }
        }

        h2 { "Readiness " @if readiness.ready { span.badge.badge-ok #launch-ready { "ready" } } @else { span.badge.badge-crit #launch-ready { "not ready" } } }
        table #launch-readiness {
            thead { tr { th { "Check" } th { "Status" } th { "Value" } th { "Threshold" } th { "Detail" } } }
            tbody { @for c in &readiness.checks { tr {
                td { (c.name) }
                td { (badge(c.status)) }
                td.mono { (json_text(&c.value)) }
                td.mono { (json_text(&c.threshold)) }
                td { (c.detail) }
            } } }
        }

        h2 { "Users" }
        div.columns {
            div {
                h3 { "Waitlist (first " (USERS_SHOWN) ")" }
                @if waiting.is_empty() { p.muted { "Nobody is waiting." } } @else {
                    table #launch-waitlist {
                        thead { tr { th { "#" } th { "User" } th { "Waiting since" } } }
                        tbody { @for (i, u) in waiting.iter().enumerate() { tr {
                            td { (i + 1) } td.mono { (u.user_id) } td.mono { (u.first_asked_at.format("%Y-%m-%d %H:%M")) }
                        } } }
                    }
                }
            }
            div {
                h3 { "Admitted (first " (USERS_SHOWN) ")" }
                @if admitted.is_empty() { p.muted { "Nobody is admitted yet." } } @else {
                    table #launch-admitted {
                        thead { tr { th { "User" } th { "Admitted" } @if editor { th {} } } }
                        tbody { @for u in admitted { tr {
                            td.mono { (u.user_id) }
                            td.mono { (opt(u.admitted_at, |t| t.format("%Y-%m-%d %H:%M").to_string())) }
                            @if editor { td.actions { form method="post" action={ "/launch/users/" (urlencoding(&u.user_id)) "/revoke" } data-confirm={ "Revoke " (u.user_id) "'s seat?" } {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button.danger type="submit" { "Revoke" }
                            } } }
                        } } }
                    }
                }
            }
        }
        @if editor {
            div.columns {
                form.inline #launch-limit method="post" action="/launch/limit" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label { "User limit (empty: none)" input type="number" name="user_limit" min="0" value=(opt(s.user_limit, |l| l.to_string()).replace('—', "")); }
                    label { "Reason" input name="reason"; }
                    button type="submit" { "Set limit" }
                }
                form.inline #launch-admit method="post" action="/launch/admit" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label { "Admit next" input type="number" name="count" min="1" max="10000" value="10" required; }
                    button type="submit" { "Admit" }
                }
                form.inline #launch-notices method="post" action="/launch/notices" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label { "Announce admissions on"
                        select name="admission_channel" {
                            option value="" selected[s.admission_channel.is_none()] { "no channel" }
                            @for (id, name) in channels {
                                option value=(id) selected[s.admission_channel == Some(*id)] { (name) }
                            }
                        }
                    }
                    button type="submit" { "Save" }
                }
            }
        }

        h2 { "Maintenance mode" }
        @if s.maintenance.enabled {
            p { span.badge.badge-warn { "on" } " " (s.maintenance.message)
                @if !s.maintenance.allow_users.is_empty() { span.muted { " · passes: " (s.maintenance.allow_users.join(", ")) } } }
        } @else {
            p.muted { "Off: apps serve everyone. When on, apps answer 503 with the message (through " code { "/api/launch/status" } ", the " code { "liftoff.maintenance" } " flag or the SDK)." }
        }
        @if editor {
            form.inline #launch-maintenance method="post" action="/launch/maintenance" {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="enabled" value=(if s.maintenance.enabled { "false" } else { "true" });
                @if !s.maintenance.enabled {
                    label { "Message" input name="message" size="40" placeholder="Back at 14:00 UTC"; }
                    label { "Retry after (s)" input type="number" name="retry_after_seconds" min="1" max="86400" value="300"; }
                    label { "Users who pass (comma-separated)" input name="allow_users" size="24"; }
                }
                label { "Reason" input name="reason"; }
                @if s.maintenance.enabled { button type="submit" { "Turn maintenance off" } } @else { button.danger type="submit" { "Turn maintenance on" } }
            }
        }
        h3 { "Scheduled" }
        @if windows.is_empty() { p.muted { "No maintenance scheduled." } } @else {
            table #launch-windows {
                thead { tr { th { "Window" } th { "From (UTC)" } th { "To (UTC)" } th { "Message" } th { "Notices" } } }
                tbody { @for w in windows { tr {
                    td { (w.name) }
                    td { (opt(w.starts_at, |t| t.format("%Y-%m-%d %H:%M").to_string())) }
                    td { (opt(w.ends_at, |t| t.format("%Y-%m-%d %H:%M").to_string())) }
                    td { (w.message.as_deref().unwrap_or("")) }
                    td { @match w.notify_before_minutes {
                        None => "none",
                        Some(0) => "at start and end",
                        Some(m) => (format!("{m} min ahead, at start and end")),
                    } }
                } } }
            }
        }
        @if editor {
            form.inline #launch-schedule method="post" action="/launch/maintenance/windows" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "From (UTC)" input type="datetime-local" name="starts_at" required; }
                label { "To (UTC)" input type="datetime-local" name="ends_at" required; }
                label { "Message" input name="message" size="30" placeholder="Upgrade until 03:00 UTC"; }
                label title="Tell the notification channels this many minutes ahead, at the start and at the end; leave empty for no notices" {
                    "Notify (min ahead)" input type="number" name="notify_before_minutes" min="0" max="10080" size="5" placeholder="none";
                }
                button type="submit" { "Schedule" }
            }
        }

        p { a #launch-report href="/launch/report.md" download { "Download the launch report (Markdown)" } }

        h2 { "Scaling" }
        div.tiles.compact {
            div.tile { div.label { "Weekly growth" } div.value #launch-growth { (opt(scaling.fit.as_ref().map(|f| f.weekly_growth), percent)) } }
            @for p in &scaling.projections { div.tile { div.label { "Peak in " (p.days_ahead) " d" } div.value { (format!("{:.1}", p.peak_rps)) " rps" } } }
            div.tile { div.label { "Instances (90 d)" } div.value { (scaling.recommended_instances) } }
            @if let Some(cost) = scaling.monthly_cost { div.tile { div.label { "Monthly cost" } div.value { (format!("{cost:.0}")) } } }
        }
        @if scaling.recommendations.is_empty() { p.muted { "No recommendations." } } @else {
            table #launch-scaling {
                thead { tr { th { "Kind" } th { "Severity" } th { "Recommendation" } } }
                tbody { @for r in &scaling.recommendations { tr { td { (r.kind) } td { (badge(r.severity)) } td { (r.message) } } } }
            }
        }

        h2 { "Feedback" }
        div.columns {
            div {
                h3 { "Ratings · " (summary.count) " items" @if let Some(a) = summary.average_rating { ", average " (format!("{a:.2}")) } }
                (rating_bars(summary))
            }
            div {
                h3 { "By category" }
                @if summary.by_category.is_empty() { p.muted { "No feedback yet." } } @else {
                    table { thead { tr { th { "Category" } th { "Items" } th { "Average" } } }
                        tbody { @for (name, c) in &summary.by_category { tr { td { (name) } td { (c.count) } td { (format!("{:.2}", c.average_rating)) } } } } }
                }
            }
        }
        (rating_trend(summary))
        h3 { "Recent feedback" }
        @if recent.is_empty() { p.muted { "None yet. Apps post to " code { "/api/launch/feedback" } " or embed " code { "/widget/feedback.js" } "." } } @else {
            table #launch-feedback {
                thead { tr { th { "When" } th { "User" } th { "Rating" } th { "Category" } th { "Message" } th { "Status" } @if editor { th {} } } }
                tbody { @for f in recent { tr {
                    td.mono { (f.created_at.format("%m-%d %H:%M")) }
                    td.mono { (f.user_id) }
                    td { (f.rating) " ★" }
                    td { (f.category) }
                    td { (f.message) @if let Some(r) = &f.request { br; span.muted { "Asks for: " (r) } } }
                    td { (badge(f.status)) @if let Some(r) = &f.resolution { br; span.muted { (r) } } }
                    @if editor { td.actions { @if f.status == FeedbackStatus::Open {
                        form method="post" action={ "/launch/feedback/" (f.id) "/resolve" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            input name="resolution" placeholder="Resolution";
                            button type="submit" { "Resolve" }
                        }
                    } } }
                } } }
            }
        }
        details #launch-feedback-dialog {
            summary { "Submit feedback" }
            form.inline method="post" action="/launch/feedback" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Rating" select name="rating" { @for r in (1..=5).rev() { option value=(r) { (r) " ★" } } } }
                label { "Category" input name="category" value="general" required pattern="[a-z0-9][a-z0-9_-]*" maxlength="50"; }
                label { "Message" input name="message" size="40" maxlength="5000"; }
                label { "Feature request (optional)" input name="request" maxlength="200"; }
                button type="submit" { "Submit" }
            }
        }
    }
}

fn exit_summary(exit: &liftoff_core::launch::phases::ExitCriteria) -> String {
    let mut parts = Vec::new();
    if exit.readiness {
        parts.push("ready".to_owned());
    }
    if let Some(e) = exit.max_error_rate {
        parts.push(format!("errors < {}", percent(e)));
    }
    if let Some(p) = exit.max_p95_ms {
        parts.push(format!("p95 < {p:.0} ms"));
    }
    if let Some(r) = exit.min_average_rating {
        parts.push(format!("rating > {r:.1}"));
    }
    if let Some(n) = exit.min_admitted {
        parts.push(format!("≥ {n} admitted"));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// A user id as one path segment.
fn urlencoding(id: &str) -> String {
    crate::ui::session::encode_component(id)
}

async fn launch_page(
    state: &AppState,
    user: &UiUser,
    flash: Flash,
    status: StatusCode,
) -> Response {
    let figures = match gather(state).await {
        Ok(f) => f,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Launch", &m);
        }
    };
    let body = html! { (flash) (render(&figures, user)) };
    let mut res = page(user, "/launch", Window::H1, "Launch", body);
    *res.status_mut() = status;
    res
}

pub async fn show(State(state): State<AppState>, user: UiUser) -> Response {
    launch_page(&state, &user, Flash::None, StatusCode::OK).await
}

/// The launch report as a Markdown download (what `GET /api/launch/report?format=md` answers).
pub async fn report(State(state): State<AppState>, _user: UiUser) -> Response {
    match state
        .sources()
        .launch_report(state.launch.now(), state.settings.instance_monthly_cost)
        .await
    {
        Ok(r) => (
            [
                (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"launch-report.md\"",
                ),
            ],
            liftoff_core::reports::Report::Launch(Box::new(r))
                .render(liftoff_core::reports::Format::Md)
                .body,
        )
            .into_response(),
        Err(e) => crate::ui::failure::failure_page(&e),
    }
}

/// Runs an editor form: body, CSRF token and role checked, then `act`, then the page with
/// the outcome.
async fn editor_form<T>(
    state: &AppState,
    user: &UiUser,
    form: Result<CsrfForm<T>, Refused>,
    act: impl AsyncFnOnce(T) -> Result<String, LaunchError>,
) -> Response {
    let (flash, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            Flash::error(format!("The form was incomplete: {e}")),
            StatusCode::BAD_REQUEST,
        ),
        Ok(form) => match act(form).await {
            Ok(m) => (Flash::Ok(m), StatusCode::OK),
            Err(e) => {
                let (m, s) = failure(&e);
                (Flash::Error(m), s)
            }
        },
    };
    launch_page(state, user, flash, status).await
}

fn text(s: String) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub struct LimitForm {
    #[serde(default)]
    user_limit: String,
    #[serde(default)]
    reason: String,
}

pub async fn set_limit(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<LimitForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: LimitForm| {
        let limit = optional_count(&f.user_limit, "the user limit must be a whole number")?;
        let (_, admitted) = state
            .launch
            .set_user_limit(limit, text(f.reason), &user.user.actor())
            .await?;
        Ok(match limit {
            Some(l) => format!(
                "The user limit is {l}; {} admitted from the waitlist.",
                admitted.len()
            ),
            None => format!(
                "No user limit; {} admitted from the waitlist.",
                admitted.len()
            ),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct NoticesForm {
    #[serde(default)]
    admission_channel: String,
}

/// Names the channel told of each admission (`launch.admitted`), or none.
pub async fn set_notices(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<NoticesForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: NoticesForm| {
        let channel = match f.admission_channel.trim() {
            "" => None,
            id => Some(id.parse::<i64>().map_err(|_| {
                LaunchError::Invalid(format!("`{id}` is not a notification channel"))
            })?),
        };
        let (_, name) = state
            .set_admission_channel(channel, None, &user.user.actor())
            .await?;
        Ok(match name {
            Some(name) => format!("Each admission is announced on {name}."),
            None => "Admissions are no longer announced.".to_owned(),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct AdmitForm {
    count: u32,
}

pub async fn admit(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<AdmitForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: AdmitForm| {
        let admitted = state.launch.admit(f.count, &user.user.actor()).await?;
        Ok(format!("{} admitted from the waitlist.", admitted.len()))
    })
    .await
}

#[derive(Deserialize)]
pub struct RevokeForm {}

pub async fn revoke(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<RevokeForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |_: RevokeForm| {
        Ok(if state.launch.revoke(&id, &user.user.actor()).await? {
            format!("{id} no longer holds a seat.")
        } else {
            format!("{id} held no seat.")
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct MaintenanceForm {
    enabled: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    retry_after_seconds: String,
    #[serde(default)]
    allow_users: String,
    #[serde(default)]
    reason: String,
}

pub async fn maintenance(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<MaintenanceForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: MaintenanceForm| {
        let retry_after_seconds = optional_count(
            &f.retry_after_seconds,
            "retry after must be a number of seconds",
        )?;
        let input = MaintenanceInput {
            enabled: f.enabled,
            message: f.message,
            retry_after_seconds,
            allow_users: f
                .allow_users
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
            reason: text(f.reason),
        };
        state
            .launch
            .set_maintenance(input, &user.user.actor())
            .await?;
        Ok(if f.enabled {
            "Maintenance mode is on: apps answer 503.".into()
        } else {
            "Maintenance mode is off.".into()
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    message: String,
    /// Minutes ahead to tell the notification channels; empty: no notices.
    #[serde(default)]
    notify_before_minutes: String,
}

/// An optional whole-number field: empty is `None`; anything else must parse, or `must` (what
/// the field must be) is the message.
fn optional_count(raw: &str, must: &str) -> Result<Option<u32>, LaunchError> {
    match raw.trim() {
        "" => Ok(None),
        n => n
            .parse::<u32>()
            .map(Some)
            .map_err(|_| LaunchError::Invalid(format!("{must}, not `{n}`"))),
    }
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`, seconds optional) read as UTC.
fn utc_minute(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, LaunchError> {
    let raw = raw.trim();
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|_| LaunchError::Invalid(format!("{field} must be a date and time, not `{raw}`")))
}

/// Schedules a gating maintenance window.
pub async fn schedule(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<ScheduleForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: ScheduleForm| {
        let starts_at = utc_minute("From", &f.starts_at)?;
        let ends_at = utc_minute("To", &f.ends_at)?;
        let notify_before_minutes = optional_count(
            &f.notify_before_minutes,
            "notify before must be a number of minutes",
        )?;
        let w = state
            .alerts
            .create_maintenance(
                &user.user.actor(),
                liftoff_core::alerts::model::MaintenanceInput {
                    name: "Scheduled maintenance".into(),
                    starts_at: Some(starts_at),
                    ends_at: Some(ends_at),
                    weekly: None,
                    gate: true,
                    message: text(f.message),
                    notify_before_minutes,
                },
            )
            .await
            .map_err(|e| LaunchError::Invalid(e.to_string()))?;
        Ok(format!(
            "Maintenance scheduled from {} to {} UTC.",
            starts_at.format("%Y-%m-%d %H:%M"),
            w.ends_at
                .map_or_else(String::new, |e| e.format("%Y-%m-%d %H:%M").to_string())
        ))
    })
    .await
}

#[derive(Deserialize)]
pub struct AdvanceForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
}

pub async fn advance(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<AdvanceForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: AdvanceForm| {
        let figures = state.sources().phase_figures(state.launch.now()).await?;
        let (settings, _, admitted) = state
            .launch
            .advance(&figures, text(f.reason), f.force, &user.user.actor())
            .await?;
        Ok(format!(
            "The launch is in phase {} now; {} admitted from the waitlist.",
            settings
                .phases
                .get(settings.phase)
                .map_or("—", |p| p.name.as_str()),
            admitted.len()
        ))
    })
    .await
}

#[derive(Deserialize)]
pub struct FeedbackForm {
    rating: u8,
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request: String,
}

pub async fn submit_feedback(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<FeedbackForm>, Refused>,
) -> Response {
    // Anyone signed in may leave feedback; the role check is only for changes to the launch.
    let (flash, status) = match user.accept(form, |_| Ok(())) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            Flash::error(format!("The form was incomplete: {e}")),
            StatusCode::BAD_REQUEST,
        ),
        Ok(f) => {
            let input = FeedbackInput {
                user_id: user.user.username.clone(),
                rating: f.rating,
                category: f.category.trim().to_owned(),
                message: f.message,
                page: Some("/launch".into()),
                request: text(f.request),
            };
            match state.launch.submit_feedback(input).await {
                Ok(saved) => (
                    Flash::ok(format!("Thanks: feedback #{} is recorded.", saved.id)),
                    StatusCode::OK,
                ),
                Err(e) => {
                    let (m, s) = failure(&e);
                    (Flash::Error(m), s)
                }
            }
        }
    };
    launch_page(&state, &user, flash, status).await
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    resolution: String,
}

pub async fn resolve_feedback(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<i64>,
    form: Result<CsrfForm<ResolveForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: ResolveForm| {
        state
            .launch
            .resolve_feedback(id, text(f.resolution), &user.user.actor())
            .await?;
        Ok(format!("Feedback #{id} is resolved."))
    })
    .await
}
