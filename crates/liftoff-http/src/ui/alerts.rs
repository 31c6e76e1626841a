//! The alerts page: firing and pending alerts (acknowledge, silence), the history, the rules and
//! the latest notification deliveries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use liftoff_core::alerts::AlertError;
use liftoff_core::alerts::model::{Alert, AlertQuery, AlertStatus, Rule, SilenceInput};
use maud::{Markup, html};
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::{CsrfForm, NoFields};
use crate::ui::format::metric_value;
use crate::ui::layout::{Window, page};
use crate::ui::session::{Refused, UiUser};

fn when(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn status_label(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Pending => "pending",
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// `rules` gives each alert's metric, so its value reads in the metric's unit.
fn alert_rows(user: &UiUser, alerts: &[Alert], rules: &[Rule], actions: bool) -> Markup {
    let can_edit = actions && user.require_editor().is_ok();
    html! {
        table {
            thead { tr {
                th { "Alert" } th { "Status" } th { "Severity" } th { "Value" } th { "Started" }
                th { "Resolved" } th { "Acknowledged" }
                @if can_edit { th { "Actions" } }
            } }
            tbody {
                @for a in alerts {
                    tr {
                        td { strong { (a.rule_name) } br; small { (a.summary) } }
                        td { span class={ "badge " (status_label(a.status)) } { (status_label(a.status)) }
                            @if a.suppressed { " " small { "(silenced)" } } }
                        td { (format!("{:?}", a.severity).to_lowercase()) }
                        td.mono {
                            @match rules.iter().find(|r| r.id == a.rule_id) {
                                Some(r) => { (metric_value(r.metric, a.value)) },
                                None => { (format!("{:.4}", a.value)) },
                            }
                        }
                        td.mono { (when(Some(a.started_at))) }
                        td.mono { (when(a.resolved_at)) }
                        td { @if let Some(by) = &a.acked_by { (by) " " small.mono { (when(a.acked_at)) } } @else { "—" } }
                        @if can_edit {
                            td.actions {
                                @if a.acked_by.is_none() {
                                    form method="post" action={ "/alerts/" (a.id) "/ack" } {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" { "Acknowledge" }
                                    }
                                }
                                form method="post" action="/alerts/silences" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    input type="hidden" name="rule_id" value=(a.rule_id);
                                    input type="number" name="hours" min="1" max="720" value="2" aria-label="Hours";
                                    input name="comment" placeholder="Why" maxlength="500" aria-label="Comment";
                                    button type="submit" { "Silence" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn alerts_page(
    state: &AppState,
    user: &UiUser,
    message: Flash,
    status: StatusCode,
) -> Response {
    let active = state.alerts.active().await.unwrap_or_default();
    let history = state
        .alerts
        .alerts(&AlertQuery {
            status: Some(AlertStatus::Resolved),
            limit: Some(50),
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let rules = state.alerts.rules().await.unwrap_or_default();
    let now = Utc::now();
    let silences: Vec<_> = state
        .alerts
        .silences()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.ends_at > now)
        .collect();
    let deliveries = state.alerts.deliveries(20).await.unwrap_or_default();
    let firing: Vec<Alert> = active
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .cloned()
        .collect();
    let pending: Vec<Alert> = active
        .iter()
        .filter(|a| a.status == AlertStatus::Pending)
        .cloned()
        .collect();
    let body = html! {
        (message)
        h2 { "Firing (" (firing.len()) ")" }
        @if firing.is_empty() { p.empty { "Nothing is firing." } } @else { (alert_rows(user, &firing, &rules, true)) }
        h2 { "Pending (" (pending.len()) ")" }
        @if pending.is_empty() { p.empty { "Nothing is pending." } } @else { (alert_rows(user, &pending, &rules, true)) }
        h2 { "Silences" }
        @if silences.is_empty() { p.empty { "No active or upcoming silences." } } @else {
            ul { @for s in &silences {
                li { "Rule " (s.rule_id.map_or("any".to_owned(), |r| r.to_string()))
                     @for (k, v) in &s.labels { " " code { (k) "=" (v) } }
                     " until " span.mono { (when(Some(s.ends_at))) } " by " (s.created_by)
                     @if !s.comment.is_empty() { " — " (s.comment) } }
            } }
        }
        h2 { "History" }
        @if history.is_empty() { p.empty { "No resolved alerts yet." } } @else { (alert_rows(user, &history, &rules, false)) }
        h2 { "Rules" }
        table {
            thead { tr { th { "Rule" } th { "Metric" } th { "Condition" } th { "For" } th { "Severity" } th { "Enabled" } } }
            tbody { @for r in &rules {
                tr {
                    td { (r.name) }
                    td.mono { (r.metric.as_str()) }
                    td.mono { (format!("{:?}", r.op).to_lowercase()) " " (metric_value(r.metric, r.threshold)) }
                    td.mono { (r.for_seconds) " s" }
                    td { (format!("{:?}", r.severity).to_lowercase()) }
                    td { (if r.enabled { "yes" } else { "no" }) }
                }
            } }
        }
        p { small { "Rules, channels, silences and maintenance windows are managed through " code { "/api/alerts" } " and " code { "/api/notifications" } "." } }
        h2 { "Latest notifications" }
        @if deliveries.is_empty() { p.empty { "No notifications sent yet." } } @else {
            table {
                thead { tr { th { "#" } th { "Kind" } th { "Channel" } th { "Status" } th { "Attempts" } th { "Last error" } } }
                tbody { @for d in &deliveries {
                    tr {
                        td.mono { (d.id) }
                        td { (d.kind.as_str()) }
                        td.mono { (d.channel_id) }
                        td { (d.status.as_str()) }
                        td.mono { (d.attempts) }
                        td { (d.last_error.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
    };
    let mut res = page(user, "/alerts", Window::H24, "Alerts", body);
    *res.status_mut() = status;
    res
}

pub async fn show(State(state): State<AppState>, user: UiUser) -> Response {
    alerts_page(&state, &user, Flash::None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct SilenceForm {
    rule_id: i64,
    hours: i64,
    #[serde(default)]
    comment: String,
}

fn outcome(result: Result<String, AlertError>) -> (Flash, StatusCode) {
    match result {
        Ok(m) => (Flash::Ok(m), StatusCode::OK),
        Err(e) => {
            let (message, status) = failure(&e);
            (Flash::Error(message), status)
        }
    }
}

async fn editor_form<T>(
    state: &AppState,
    user: &UiUser,
    form: Result<CsrfForm<T>, Refused>,
    act: impl AsyncFnOnce(T) -> Result<String, AlertError>,
) -> Response {
    let (message, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            Flash::error(format!("The form was incomplete: {e}")),
            StatusCode::BAD_REQUEST,
        ),
        Ok(form) => outcome(act(form).await),
    };
    alerts_page(state, user, message, status).await
}

pub async fn ack(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<i64>,
    form: Result<CsrfForm<NoFields>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |_f: NoFields| {
        let a = state.alerts.ack(&user.user.actor(), id).await?;
        Ok(format!("{} acknowledged.", a.rule_name))
    })
    .await
}

pub async fn silence(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<SilenceForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: SilenceForm| {
        if !(1..=720).contains(&f.hours) {
            return Err(AlertError::Invalid("silence for 1 to 720 hours".into()));
        }
        let s = state
            .alerts
            .create_silence(
                &user.user.actor(),
                SilenceInput {
                    rule_id: Some(f.rule_id),
                    labels: Default::default(),
                    starts_at: None,
                    ends_at: Utc::now() + chrono::Duration::hours(f.hours),
                    comment: f.comment,
                },
            )
            .await?;
        Ok(format!(
            "Notifications of rule {} silenced until {}.",
            f.rule_id,
            when(Some(s.ends_at))
        ))
    })
    .await
}
