//! The flags page: every flag with its status, strategy, rollout and stale marker; toggling
//! (confirmed, with a reason), editing the rollout, creating a flag, and each flag's history.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use liftoff_core::flags::{
    Environment, Flag, FlagError, NewFlag, PlanState, RolloutPlan, StrategyKind,
};
use maud::html;
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::format::percent_value;
use crate::ui::layout::{Window, WindowQuery, error_page, page};
use crate::ui::session::{Refused, UiUser, encode_component};

fn strategy_label(f: &Flag) -> String {
    match f.strategy {
        StrategyKind::AllUsers => "all users".into(),
        StrategyKind::Percentage | StrategyKind::Gradual => {
            format!("{} · {}", f.strategy.as_str(), percent_value(f.percentage))
        }
        StrategyKind::UserList => format!("user list · {}", f.user_whitelist.len()),
        StrategyKind::UserAttribute => format!(
            "attributes · {}",
            f.attributes.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        StrategyKind::Rules => format!("rules · {}", f.rules.len()),
    }
}

/// The share of users who get the flag in production, for the rollout bar.
fn rollout_share(f: &Flag) -> f64 {
    if !f.enabled_in(Environment::Production) {
        return 0.0;
    }
    match f.strategy {
        StrategyKind::AllUsers => 100.0,
        StrategyKind::Percentage | StrategyKind::Gradual => {
            f.percentage_in(Environment::Production)
        }
        _ => f64::NAN,
    }
}

async fn flags_page(
    state: &AppState,
    user: &UiUser,
    window: Window,
    message: Flash,
    status: StatusCode,
) -> Response {
    let flags = state.flags.list();
    let stale = state.flags.staleness().await.unwrap_or_default();
    let plans: BTreeMap<String, RolloutPlan> = state
        .flags
        .rollout_plans()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.flag_id.to_string(), p))
        .collect();
    let can_edit = user.user.role.can_edit();
    let body = html! {
        (message)
        @if flags.is_empty() {
            p.muted { "No flags yet." }
        } @else {
            table #flags {
                thead { tr {
                    th { "Flag" } th { "Status" } th { "Strategy" } th { "Rollout (production)" } th { "Environments" } th { "Updated" }
                    @if can_edit { th { "Change" } }
                } }
                tbody {
                    @for f in &flags {
                        @let key = f.flag_id.as_str();
                        @let share = rollout_share(f);
                        @let s = stale.get(key);
                        tr data-flag=(key) {
                            td {
                                a href={ "/flags/" (encode_component(key)) } { code { (key) } }
                                @if f.name != key { div.muted { (f.name) } }
                                @if let Some(s) = s.filter(|s| s.stale) {
                                    " " span.badge.stale title=(s.reason.clone().unwrap_or_default()) { "stale" }
                                }
                            }
                            td { @if f.enabled { span.badge.ok.status { "on" } } @else { span.badge.bad.status { "off" } } }
                            td {
                                (strategy_label(f))
                                @if !f.variants.is_empty() { div.muted { (f.variants.len()) " variants: " (f.variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")) } }
                                @if let Some(p) = plans.get(key) {
                                    div.muted.plan {
                                        "plan → " (percent_value(p.target_percentage)) " · "
                                        @match p.state {
                                            PlanState::Active => { "next step " (p.next_at.map(|t| t.format("%H:%M UTC").to_string()).unwrap_or_default()) },
                                            PlanState::Paused => { "paused: " (p.paused_reason.clone().unwrap_or_default()) },
                                            PlanState::Completed => { "done" },
                                            PlanState::RolledBack => { "rolled back: " (p.paused_reason.clone().unwrap_or_default()) },
                                        }
                                    }
                                }
                            }
                            td {
                                @if share.is_nan() { span.muted { "targeted" } } @else {
                                    div.bar title=(percent_value(share)) { div.fill style={ "width:" (share) "%" } {} }
                                    span.mono { (percent_value(share)) }
                                }
                            }
                            td {
                                @for env in Environment::ALL {
                                    span class={ "env " (if f.enabled_in(env) { "on" } else { "off" }) } title={ (env.as_str()) ": " (if f.enabled_in(env) { "on" } else { "off" }) } {
                                        (env.as_str()[..3].to_uppercase())
                                    }
                                }
                            }
                            td.mono { (f.updated_at.format("%Y-%m-%d %H:%M")) }
                            @if can_edit {
                                td.actions {
                                    form.toggle method="post" action={ "/flags/" (encode_component(key)) "/toggle" }
                                        data-confirm={ "Turn " (key) (if f.enabled { " OFF for everyone" } else { " ON" }) "?" } {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        input type="hidden" name="enabled" value=(if f.enabled { "false" } else { "true" });
                                        input name="reason" placeholder="Reason" required maxlength="500" aria-label="Reason";
                                        button type="submit" class=[f.enabled.then_some("danger")] { (if f.enabled { "Turn off" } else { "Turn on" }) }
                                    }
                                    @if matches!(f.strategy, StrategyKind::Percentage | StrategyKind::Gradual | StrategyKind::AllUsers) {
                                        form.rollout method="post" action={ "/flags/" (encode_component(key)) "/percentage" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            input type="number" name="percentage" min="0" max="100" step="0.1" value=(f.percentage) aria-label="Percentage" required;
                                            input name="reason" placeholder="Reason" required maxlength="500" aria-label="Reason";
                                            button type="submit" { "Set %" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_edit {
            h2 { "New flag" }
            form.inline #new-flag method="post" action="/flags" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Flag id" input name="flag_id" required maxlength="200" placeholder="new-checkout"; }
                label { "Strategy" select name="strategy" {
                    option value="percentage" { "percentage" } option value="all_users" { "all users" } option value="user_list" { "user list" }
                } }
                label { "Percentage" input type="number" name="percentage" min="0" max="100" step="0.1" value="0"; }
                label { "Reason" input name="reason" maxlength="500"; }
                button type="submit" { "Create" }
            }
        }
    };
    let mut res = page(user, "/flags", window, "Flags", body);
    *res.status_mut() = status;
    res
}

pub async fn list(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<WindowQuery>,
) -> Response {
    flags_page(&state, &user, q.window(), Flash::None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ToggleForm {
    enabled: bool,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct PercentageForm {
    percentage: f64,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    flag_id: String,
    strategy: StrategyKind,
    percentage: Option<f64>,
    #[serde(default)]
    reason: String,
}

fn outcome(result: Result<String, FlagError>) -> (Flash, StatusCode) {
    match result {
        Ok(m) => (Flash::Ok(m), StatusCode::OK),
        Err(e) => {
            let (message, status) = failure(&e);
            (Flash::Error(message), status)
        }
    }
}

fn reason(r: String) -> Option<String> {
    Some(r).filter(|r| !r.trim().is_empty())
}

/// Runs an editor form: body, CSRF token and role checked, then `act`, then the flags page
/// with the outcome.
async fn editor_form<T>(
    state: &AppState,
    user: &UiUser,
    form: Result<CsrfForm<T>, Refused>,
    act: impl AsyncFnOnce(T) -> Result<String, FlagError>,
) -> Response {
    let (message, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            Flash::error(format!("The form was incomplete: {e}")),
            StatusCode::BAD_REQUEST,
        ),
        Ok(form) => outcome(act(form).await),
    };
    flags_page(state, user, Window::H24, message, status).await
}

pub async fn toggle(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    form: Result<CsrfForm<ToggleForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: ToggleForm| {
        if f.reason.trim().is_empty() {
            return Err(FlagError::Invalid(vec![
                "give a reason for turning a flag on or off".into(),
            ]));
        }
        let flag = state
            .flags
            .set_enabled(&user.user.actor(), &key, f.enabled, reason(f.reason))
            .await?;
        Ok(format!(
            "{} is now {}.",
            flag.flag_id,
            if flag.enabled { "on" } else { "off" }
        ))
    })
    .await
}

pub async fn percentage(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    form: Result<CsrfForm<PercentageForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: PercentageForm| {
        let flag = state
            .flags
            .set_percentage(&user.user.actor(), &key, f.percentage, reason(f.reason))
            .await?;
        Ok(format!(
            "{} now reaches {} of users.",
            flag.flag_id,
            percent_value(flag.percentage)
        ))
    })
    .await
}

pub async fn create(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<CreateForm>, Refused>,
) -> Response {
    editor_form(&state, &user, form, async |f: CreateForm| {
        let flag_id = f
            .flag_id
            .trim()
            .to_owned()
            .try_into()
            .map_err(|e: String| FlagError::Invalid(vec![e]))?;
        let new = NewFlag {
            flag_id,
            name: None,
            description: String::new(),
            enabled: Some(true),
            strategy: f.strategy,
            percentage: if f.strategy == StrategyKind::AllUsers {
                None
            } else {
                f.percentage
            },
            user_whitelist: Vec::new(),
            user_blacklist: Vec::new(),
            attributes: BTreeMap::new(),
            variants: Vec::new(),
            rules: Vec::new(),
            segments: Vec::new(),
            dependencies: Vec::new(),
            environments: BTreeMap::new(),
            reason: reason(f.reason),
        };
        let flag = state.flags.create(&user.user.actor(), new).await?;
        Ok(format!("{} created.", flag.flag_id))
    })
    .await
}

pub async fn detail(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Response {
    let Ok(flag) = state.flags.get(&key) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Flag not found",
            &format!("There is no flag `{key}`."),
        );
    };
    let history = match state.flags.history(&key, 200).await {
        Ok(h) => h,
        Err(_) => return Redirect::to("/flags").into_response(),
    };
    let definition = serde_json::to_string_pretty(&flag).unwrap_or_default();
    let body = html! {
        p { a href="/flags" { "← All flags" } }
        section.tiles {
            div class={ "tile " (if flag.enabled { "ok" } else { "bad" }) } { div.label { "Status" } div.value { (if flag.enabled { "On" } else { "Off" }) } }
            div.tile { div.label { "Strategy" } div.value { (flag.strategy.as_str()) } }
            div.tile { div.label { "Percentage" } div.value { (percent_value(flag.percentage)) } }
            div.tile { div.label { "Version" } div.value { (flag.version) } }
        }
        h2 { "History" }
        table #history {
            thead { tr { th { "When" } th { "Who" } th { "What" } th { "Reason" } } }
            tbody {
                @for e in &history {
                    tr {
                        td.mono { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.actor) }
                        td { code { (e.action) } }
                        td { (e.reason.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
        h2 { "Definition" }
        pre.definition { (definition) }
    };
    page(&user, "/flags", q.window(), &format!("Flag {key}"), body)
}
