//! The server-rendered dashboard: HTML from maud templates, a little htmx and uPlot, all
//! embedded in the binary. It calls the same services as the JSON API, never the API itself.

// A page handler's refusal is the page to show; boxing it would only add noise at every `?`.
#![allow(
    clippy::result_large_err,
    reason = "a refused form is answered with a full Response"
)]

mod alerts;
mod analytics;
pub mod assets;
mod badge;
mod experiments;
mod failure;
mod favicon;
mod flags;
mod flash;
pub mod form;
mod format;
mod incidents;
mod launch;
pub mod layout;
pub(crate) mod login;
mod pages;
mod performance;
mod reports;
pub mod session;
mod uptime;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/performance", get(performance::show))
        .route("/analytics", get(analytics::show))
        .route("/alerts", get(alerts::show))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route("/alerts/silences", post(alerts::silence))
        .route("/flags", get(flags::list).post(flags::create))
        .route("/flags/{key}", get(flags::detail))
        .route("/flags/{key}/toggle", post(flags::toggle))
        .route("/flags/{key}/percentage", post(flags::percentage))
        .route(
            "/experiments",
            get(experiments::list).post(experiments::create),
        )
        .route("/experiments/{key}", get(experiments::detail))
        .route("/experiments/{key}/stop", post(experiments::stop))
        .route("/settings", get(pages::settings))
        .route("/settings/users", post(pages::create_user))
        .route("/settings/keys", post(pages::create_key))
        .route("/settings/keys/{id}/revoke", post(pages::revoke_key))
        .route("/uptime", get(uptime::list).post(uptime::create))
        .route("/uptime/{id}", get(uptime::detail))
        .route("/uptime/{id}/action", post(uptime::action))
        .route("/incidents", get(incidents::list).post(incidents::create))
        .route("/incidents/{id}", get(incidents::detail))
        .route("/incidents/{id}/status", post(incidents::set_status))
        .route("/incidents/{id}/timeline", post(incidents::add_timeline))
        .route(
            "/incidents/{id}/postmortem",
            post(incidents::save_postmortem),
        )
        .route("/incidents/{id}/action-items", post(incidents::add_item))
        .route(
            "/incidents/{id}/action-items/{item}/toggle",
            post(incidents::toggle_item),
        )
        .route("/launch", get(launch::show))
        .route("/launch/report.md", get(launch::report))
        .route("/launch/limit", post(launch::set_limit))
        .route("/launch/admit", post(launch::admit))
        .route("/launch/notices", post(launch::set_notices))
        .route("/launch/users/{id}/revoke", post(launch::revoke))
        .route("/launch/maintenance", post(launch::maintenance))
        .route("/launch/maintenance/windows", post(launch::schedule))
        .route("/launch/advance", post(launch::advance))
        .route("/launch/feedback", post(launch::submit_feedback))
        .route(
            "/launch/feedback/{id}/resolve",
            post(launch::resolve_feedback),
        )
        .route("/reports", get(reports::show))
        .route("/reports/preview", get(reports::preview))
        .route("/reports/download", get(reports::download))
        .route("/reports/archive", post(reports::keep))
        .route("/reports/archive/{file}", get(reports::archived))
        .route("/reports/schedules", post(reports::create_schedule))
        .route(
            "/reports/schedules/{id}/delete",
            post(reports::delete_schedule),
        )
        .route("/assets/{name}", get(assets::serve))
        .route("/widget/feedback.js", get(assets::feedback_widget))
        .route("/favicon.ico", get(favicon::serve))
}

#[cfg(test)]
mod tests {
    /// The dashboard and the API read through the domain services: never the store behind
    /// them (which would skip their rules, caches and audit).
    #[test]
    fn no_handler_reads_the_store_directly() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        for dir in ["ui", "api"] {
            for entry in std::fs::read_dir(src.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).unwrap();
                let squeezed: String = source.chars().filter(|c| !c.is_whitespace()).collect();
                let needle = ["state", ".store"].concat();
                if squeezed.contains(&needle) {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "read through a service instead: {offenders:?}"
        );
    }
}
