//! The Incidents page: the list with this month's SLA, and an incident's page with its impact,
//! timeline, status changes, root cause, postmortem editor and action items. Editors change
//! them through CSRF-protected forms.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use liftoff_core::incidents::service::{
    ActionItemInput, ActionItemPatch, IncidentPatch, ManualKind, NewIncident, TimelineInput,
};
use liftoff_core::incidents::{
    IncidentError, IncidentSeverity, IncidentStatus, IncidentsService, Postmortem, TimelineKind,
};
use maud::html;
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::badge::badge;
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::format::percent_value;
use crate::ui::layout::{Window, error_page, page};
use crate::ui::session::{Refused, UiUser};

fn minutes(secs: i64) -> String {
    if secs < 3600 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h {} min", secs / 3600, secs % 3600 / 60)
    }
}

async fn list_page(
    state: &AppState,
    user: &UiUser,
    message: Flash,
    status: StatusCode,
) -> Response {
    let now = Utc::now();
    let month = IncidentsService::current_month(now);
    let (incidents, sla) =
        match tokio::try_join!(state.incidents.list(), state.incidents.sla(&month, 99.9)) {
            Ok(v) => v,
            Err(e) => {
                let (m, s) = failure(&e);
                return error_page(s, "Incidents", &m);
            }
        };
    let body = html! {
        (message)
        div.tiles {
            div.tile { div.muted { "Open incidents" } div.value { (incidents.iter().filter(|i| i.is_open()).count()) } }
            div.tile { div.muted { "SLA " (sla.month) " (" (percent_value(sla.target_percent)) ")" } div.value { (percent_value(sla.achieved_percent)) } }
            div.tile { div.muted { "Critical downtime this month" } div.value { (format!("{:.1} of {:.1} min", sla.downtime_minutes, sla.allowance_minutes)) } }
            div.tile { div.muted { "SLA" } div.value { @if sla.met { "met" } @else { span.bad-text { "missed" } } } }
        }
        @if incidents.is_empty() {
            div.empty { p { "No incidents. A critical alert opens one automatically; you can also open one below." } }
        } @else {
            table {
                thead { tr { th { "Incident" } th { "Title" } th { "Severity" } th { "Status" } th { "Started" } th { "Duration" } } }
                tbody { @for i in &incidents { tr {
                    td.mono { a href={ "/incidents/" (i.id) } { (i.id) } }
                    td { (i.title) @if i.auto_opened { " " span.badge { "from alert" } } }
                    td { (badge(i.severity)) }
                    td { (badge(i.status)) }
                    td.mono { (i.started_at.format("%Y-%m-%d %H:%M")) }
                    td { (minutes((i.resolved_at.unwrap_or(now) - i.started_at).num_seconds())) }
                } } }
            }
        }
        @if user.user.role.can_edit() {
            h2 { "Open an incident" }
            form.inline method="post" action="/incidents" {
                input type="hidden" name="csrf" value=(user.csrf);
                input name="title" placeholder="What is wrong" required size="40";
                select name="severity" {
                    option value="critical" { "critical" } option value="major" selected { "major" } option value="minor" { "minor" }
                }
                button type="submit" { "Open" }
            }
        }
    };
    let mut res = page(user, "/incidents", Window::H24, "Incidents", body);
    *res.status_mut() = status;
    res
}

pub async fn list(State(state): State<AppState>, user: UiUser) -> Response {
    list_page(&state, &user, Flash::None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    title: String,
    severity: IncidentSeverity,
}

pub async fn create(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<CreateForm>, Refused>,
) -> Response {
    let f = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => {
            return list_page(
                &state,
                &user,
                Flash::error(format!("The form was incomplete: {e}")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Ok(f) => f,
    };
    let input = NewIncident {
        title: f.title,
        severity: f.severity,
        status: None,
        started_at: None,
        description: None,
    };
    match state.incidents.create(&user.user.actor(), input).await {
        Ok(i) => Redirect::to(&format!("/incidents/{}", i.id)).into_response(),
        Err(e) => {
            let (m, s) = failure(&e);
            list_page(&state, &user, Flash::Error(m), s).await
        }
    }
}

async fn detail_page(
    state: &AppState,
    user: &UiUser,
    id: &str,
    message: Flash,
    status: StatusCode,
) -> Response {
    let d = match state.incidents.detail(id, Utc::now()).await {
        Ok(d) => d,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Incident", &m);
        }
    };
    let (i, impact) = (&d.incident, &d.impact);
    let edit = user.user.role.can_edit();
    let body = html! {
        (message)
        p { (badge(i.severity)) " " (badge(i.status)) " · started " span.mono { (i.started_at.format("%Y-%m-%d %H:%M:%S")) }
            @if let Some(r) = i.resolved_at { " · resolved " span.mono { (r.format("%Y-%m-%d %H:%M:%S")) } } }
        @if let Some(desc) = &i.description { p { (desc) } }
        h2 { "Impact" }
        div.tiles {
            div.tile { div.muted { "Requests failed (5xx)" } div.value { (impact.requests_failed) " of " (impact.requests_total) } div.muted { (percent_value(impact.failed_percent)) } }
            div.tile { div.muted { "Users affected" } div.value { (impact.users_affected) } div.muted { (impact.error_events) " error events" } }
            div.tile { div.muted { "Duration" } div.value { (minutes((impact.to - impact.from).num_seconds())) } }
        }
        p.note.muted { "Computed for " (impact.from.format("%H:%M")) "–" (impact.to.format("%H:%M")) " UTC from the request metrics (every service but Liftoff's own) and the error events (distinct users)." }
        @if edit {
            form.inline method="post" action={ "/incidents/" (i.id) "/status" } {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Status " select name="status" {
                    @for s in IncidentStatus::ALL { option value=(s.as_str()) selected[s == i.status] { (s.as_str()) } }
                } }
                button type="submit" { "Change status" }
            }
        }
        h2 { "Timeline" }
        table {
            thead { tr { th { "When" } th { "Kind" } th { "What" } th { "Who" } } }
            tbody { @for e in &i.timeline { tr {
                td.mono { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                td { span.badge { (match e.kind { TimelineKind::Alert => "alert", TimelineKind::Update => "update", TimelineKind::StatusChange => "status", TimelineKind::Note => "note" }) } }
                td { (e.message) }
                td { (e.author) }
            } } }
        }
        @if edit {
            form.inline method="post" action={ "/incidents/" (i.id) "/timeline" } {
                input type="hidden" name="csrf" value=(user.csrf);
                input name="message" placeholder="Post an update" required size="60";
                select name="kind" { option value="update" { "update" } option value="note" { "note" } }
                button type="submit" { "Post" }
            }
        }
        h2 { "Postmortem" }
        p { a #incident-report href={ "/reports?kind=incident&id=" (i.id) } { "The incident report" } " (Markdown, HTML, PDF) from these fields." }
        form #postmortem method="post" action={ "/incidents/" (i.id) "/postmortem" } {
            input type="hidden" name="csrf" value=(user.csrf);
            @for (name, label, value) in [
                ("root_cause", "Root cause", i.root_cause.as_deref().unwrap_or("")),
                ("why_missed", "Why it was missed", i.why_missed.as_deref().unwrap_or("")),
                ("resolution", "Resolution (the immediate fix)", i.resolution.as_deref().unwrap_or("")),
                ("long_term_fix", "Long-term fix", i.long_term_fix.as_deref().unwrap_or("")),
                ("communication", "Communication (who was told what, when)", i.communication.as_deref().unwrap_or("")),
                ("summary", "Summary", i.postmortem.summary.as_str()),
                ("what_went_well", "What went well", i.postmortem.what_went_well.as_str()),
                ("what_could_be_improved", "What could be improved", i.postmortem.what_could_be_improved.as_str()),
                ("lessons", "Lessons", i.postmortem.lessons.as_str()),
            ] {
                label style="display:block;margin:.6rem 0 .2rem" for=(name) { (label) }
                textarea id=(name) name=(name) rows="3" style="width:100%" disabled[!edit] { (value) }
            }
            @if edit { button type="submit" style="margin-top:.6rem" { "Save postmortem" } }
        }
        h2 { "Action items" }
        @if i.action_items.is_empty() { p.muted { "None yet." } } @else {
            table {
                thead { tr { th { "Item" } th { "Owner" } th { "Due" } th { "Done" } } }
                tbody { @for a in &i.action_items { tr {
                    td { @if a.done { s { (a.title) } } @else { (a.title) } }
                    td { (a.owner.as_deref().unwrap_or("—")) }
                    td.mono { (a.due_date.map_or_else(|| "—".into(), |d| d.to_string())) }
                    td { @if edit {
                        form.inline method="post" action={ "/incidents/" (i.id) "/action-items/" (a.id) "/toggle" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" { @if a.done { "Reopen" } @else { "Done" } }
                        }
                    } @else { @if a.done { "yes" } @else { "no" } } }
                } } }
            }
        }
        @if edit {
            form.inline method="post" action={ "/incidents/" (i.id) "/action-items" } {
                input type="hidden" name="csrf" value=(user.csrf);
                input name="title" placeholder="Action item" required size="40";
                input name="owner" placeholder="Owner";
                input name="due_date" type="date";
                button type="submit" { "Add" }
            }
        }
    };
    let mut res = page(
        user,
        "/incidents",
        Window::H24,
        &format!("{} · {}", i.id, i.title),
        body,
    );
    *res.status_mut() = status;
    res
}

pub async fn detail(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
) -> Response {
    detail_page(&state, &user, &id, Flash::None, StatusCode::OK).await
}

/// Runs an editor form on incident `id`: redirects to its page on success, shows the page with
/// the error otherwise.
async fn on_incident<T>(
    state: &AppState,
    user: &UiUser,
    id: &str,
    form: Result<CsrfForm<T>, Refused>,
    act: impl AsyncFnOnce(T) -> Result<(), IncidentError>,
) -> Response {
    let (message, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            format!("The form was incomplete: {e}"),
            StatusCode::BAD_REQUEST,
        ),
        Ok(f) => match act(f).await {
            Ok(()) => return Redirect::to(&format!("/incidents/{id}")).into_response(),
            Err(e) => failure(&e),
        },
    };
    detail_page(state, user, id, Flash::Error(message), status).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: IncidentStatus,
}

pub async fn set_status(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<StatusForm>, Refused>,
) -> Response {
    on_incident(&state, &user, &id, form, async |f: StatusForm| {
        let patch = IncidentPatch {
            status: Some(f.status),
            ..IncidentPatch::default()
        };
        state
            .incidents
            .patch(&user.user.actor(), &id, patch)
            .await
            .map(drop)
    })
    .await
}

#[derive(Deserialize)]
pub struct TimelineForm {
    message: String,
    #[serde(default)]
    kind: ManualKind,
}

pub async fn add_timeline(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<TimelineForm>, Refused>,
) -> Response {
    on_incident(&state, &user, &id, form, async |f: TimelineForm| {
        let input = TimelineInput {
            message: f.message,
            kind: f.kind,
            at: None,
        };
        state
            .incidents
            .add_timeline(&user.user.actor(), &id, input)
            .await
            .map(drop)
    })
    .await
}

#[derive(Deserialize)]
pub struct PostmortemForm {
    #[serde(default)]
    root_cause: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    why_missed: String,
    #[serde(default)]
    long_term_fix: String,
    #[serde(default)]
    communication: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    what_went_well: String,
    #[serde(default)]
    what_could_be_improved: String,
    #[serde(default)]
    lessons: String,
}

pub async fn save_postmortem(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<PostmortemForm>, Refused>,
) -> Response {
    on_incident(&state, &user, &id, form, async |f: PostmortemForm| {
        let actor = user.user.actor();
        let patch = IncidentPatch {
            root_cause: Some(f.root_cause),
            resolution: Some(f.resolution),
            why_missed: Some(f.why_missed),
            long_term_fix: Some(f.long_term_fix),
            communication: Some(f.communication),
            ..IncidentPatch::default()
        };
        state.incidents.patch(&actor, &id, patch).await?;
        let pm = Postmortem {
            summary: f.summary,
            what_went_well: f.what_went_well,
            what_could_be_improved: f.what_could_be_improved,
            lessons: f.lessons,
        };
        state
            .incidents
            .set_postmortem(&actor, &id, pm)
            .await
            .map(drop)
    })
    .await
}

#[derive(Deserialize)]
pub struct ItemForm {
    title: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    due_date: String,
}

pub async fn add_item(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    form: Result<CsrfForm<ItemForm>, Refused>,
) -> Response {
    on_incident(&state, &user, &id, form, async |f: ItemForm| {
        let due_date = match f.due_date.trim() {
            "" => None,
            d => Some(d.parse::<NaiveDate>().map_err(|_| {
                IncidentError::Invalid(format!("due date `{d}` must be YYYY-MM-DD"))
            })?),
        };
        let input = ActionItemInput {
            title: f.title,
            owner: Some(f.owner),
            due_date,
        };
        state
            .incidents
            .add_action_item(&user.user.actor(), &id, input)
            .await
            .map(drop)
    })
    .await
}

#[derive(Deserialize)]
pub struct ToggleForm {}

pub async fn toggle_item(
    State(state): State<AppState>,
    user: UiUser,
    Path((id, item)): Path<(String, i64)>,
    form: Result<CsrfForm<ToggleForm>, Refused>,
) -> Response {
    on_incident(&state, &user, &id, form, async |_f: ToggleForm| {
        let incident = state.incidents.get(&id).await?;
        let done = incident
            .action_items
            .iter()
            .find(|a| a.id == item)
            .ok_or_else(|| IncidentError::ItemNotFound(id.clone(), item))?
            .done;
        let patch = ActionItemPatch {
            done: Some(!done),
            ..ActionItemPatch::default()
        };
        state
            .incidents
            .update_action_item(&user.user.actor(), &id, item, patch)
            .await
            .map(drop)
    })
    .await
}
