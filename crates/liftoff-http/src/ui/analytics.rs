//! The analytics page: who uses the product and how, from the stored product events.
//!
//! What each part covers (the window selector offers 15m … 7d, which suits requests better
//! than product analytics, so it is mapped the way a PostHog user reads it):
//!
//! - **Tiles.** Active users now are the last 30 minutes; DAU is today (UTC), WAU the last 7
//!   and MAU the last 30 days, stickiness the average DAU over 30 days divided by MAU — fixed
//!   definitions, like PostHog's. Sessions, average session length, bounce rate and errors
//!   cover exactly the selected window.
//! - **Charts.** Daily active users and new vs returning users per day, always over the last
//!   30 days (a daily series over 15 minutes would be one point).
//! - **Top events, funnel, paths and journey** cover the selected window but at least one day
//!   (so 15m, 1h, 4h and 24h all mean the last 24 hours, 7d the last 7 days): a funnel over
//!   15 minutes would convert almost nobody. The page says so in small print.
//! - **Retention** always shows the cohorts first seen in the last 30 days, since D30 needs
//!   them.
//!
//! The funnel builder is a plain GET form (it changes nothing, so it needs no CSRF token and
//! works without JavaScript). Without a query it shows the default funnel: the steps of
//! `signup → search → view_item → purchase` that exist in the data when at least two do, else
//! the three most used events. Invalid input (fewer than 2 or more than 10 steps, names over
//! 200 characters, a bad conversion window) is shown as a message above the form, never as an
//! error page.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::NaiveDate;
use liftoff_analytics::Bucket;
use liftoff_core::analytics::event::now_ms;
use liftoff_core::analytics::funnel::FunnelError;
use liftoff_core::analytics::insights::{
    ActiveUsersReport, ErrorsReport, FeaturesReport, FunnelReport, FunnelRequest, InsightsError,
    MilestonesReport, NewVsReturningRow, PathsReport, RetentionReport, SessionsReport,
};
use maud::{Markup, html};
use serde_json::json;

use crate::state::AppState;
use crate::ui::failure::failure_page;
use crate::ui::flash::Flash;
use crate::ui::format::percent;
use crate::ui::layout::{Window, WindowQuery, chart, page};
use crate::ui::session::UiUser;

/// The funnel a new page shows when its events exist.
const DEFAULT_STEPS: [&str; 4] = ["signup", "search", "view_item", "purchase"];
const MIN_STEPS: usize = 2;
const MAX_STEPS: usize = 10;
const MAX_NAME: usize = 200;
const DEFAULT_CONVERSION_DAYS: f64 = 14.0;
/// Day-N columns of the retention table (D30 is in the summary above it).
const RETENTION_COLUMNS: usize = 15;
/// Rows of the top events, paths and breakdown tables.
const ROWS: usize = 10;
const BREAKDOWN_ROWS: usize = 20;
/// Event names offered as suggestions in the funnel form.
const SUGGESTIONS: usize = 200;

/// Days the top events, funnel, paths and journey cover: the window, but at least one day.
fn query_days(window: Window) -> f64 {
    window_days(window).max(1.0)
}

/// The window exactly, in days.
fn window_days(window: Window) -> f64 {
    window.duration().num_seconds() as f64 / 86_400.0
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A horizontal bar `share` (0–1) full, with `label` beside it.
fn bar(share: f64, label: &str, wide: bool) -> Markup {
    let width = (share.clamp(0.0, 1.0) * 100.0 * 10.0).round() / 10.0;
    html! {
        div class={ "bar" (if wide { " wide" } else { "" }) } { div.fill style={ "width:" (width) "%" } {} }
        " " (label)
    }
}

/// The retention cell's shade for a fraction 0–1: `heat-0` for nobody, then one class per
/// started 10 %.
fn heat_class(fraction: f64) -> String {
    let bucket = (fraction * 10.0).ceil().clamp(0.0, 10.0) as u8;
    format!("heat heat-{bucket}")
}

/// Unix seconds of a `YYYY-MM-DD` day, for chart x values.
fn day_seconds(date: &str) -> Option<i64> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// The form as submitted (for showing it again) and what it means.
#[derive(Debug)]
struct FunnelForm {
    /// The non-empty step fields, in order.
    steps: Vec<String>,
    conversion: String,
    breakdown: String,
    /// `None` when the page was opened without a funnel query; the request is checked and
    /// its `days` is left for the page's window.
    parsed: Option<Result<FunnelRequest, String>>,
}

fn parse_funnel(pairs: &[(String, String)]) -> FunnelForm {
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    let asked = pairs
        .iter()
        .any(|(k, _)| matches!(k.as_str(), "step" | "conversion_window_days" | "breakdown"));
    let steps: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "step" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    let conversion = value("conversion_window_days").unwrap_or_default();
    let breakdown = value("breakdown").unwrap_or_default();
    let parsed = asked.then(|| check_funnel(&steps, &conversion, &breakdown));
    FunnelForm {
        steps,
        conversion,
        breakdown,
        parsed,
    }
}

/// The form's message for a step count outside 2–[`MAX_STEPS`] (the form has 10 step fields).
fn steps_message(given: usize) -> String {
    format!(
        "A funnel needs {MIN_STEPS} to {MAX_STEPS} steps; {given} given. Fill in at least two step fields."
    )
}

const CONVERSION_MESSAGE: &str =
    "The conversion window is a number of days, more than 0 and at most 3650.";

/// The form's fields as a [`FunnelRequest`], checked by its own rules; the form adds its own
/// limits on top (at most [`MAX_STEPS`] steps, a conversion window above 0, a breakdown
/// property of at most [`MAX_NAME`] characters) and words every refusal for the page.
fn check_funnel(
    steps: &[String],
    conversion: &str,
    breakdown: &str,
) -> Result<FunnelRequest, String> {
    if steps.len() > MAX_STEPS {
        return Err(steps_message(steps.len()));
    }
    // Empty means the default; anything else must be a number of days above 0.
    let conversion_days = match conversion {
        "" => Some(DEFAULT_CONVERSION_DAYS),
        text => text.parse::<f64>().ok().filter(|d| *d > 0.0),
    };
    let req = FunnelRequest {
        funnel_steps: steps.to_vec(),
        days: None,
        conversion_window_days: Some(conversion_days.unwrap_or(DEFAULT_CONVERSION_DAYS)),
        breakdown: (!breakdown.is_empty()).then(|| breakdown.to_owned()),
    };
    req.validate().map_err(|e| match e {
        FunnelError::Steps { given } => steps_message(given),
        FunnelError::StepName { step } => format!(
            "Step {step} is longer than {MAX_NAME} characters; event names are at most {MAX_NAME}."
        ),
        FunnelError::ConversionWindow | FunnelError::Days => CONVERSION_MESSAGE.to_owned(),
    })?;
    let Some(conversion_days) = conversion_days else {
        return Err(CONVERSION_MESSAGE.to_owned());
    };
    if breakdown.chars().count() > MAX_NAME {
        return Err(format!(
            "The breakdown property is longer than {MAX_NAME} characters."
        ));
    }
    Ok(FunnelRequest {
        conversion_window_days: Some(conversion_days),
        ..req
    })
}

/// The default funnel: the default steps that exist when at least two do, else the most
/// used events.
fn default_steps(names: &[String], features: &FeaturesReport) -> Vec<String> {
    let known: Vec<String> = DEFAULT_STEPS
        .iter()
        .filter(|s| names.iter().any(|n| n == *s))
        .map(|s| (*s).to_owned())
        .collect();
    if known.len() >= MIN_STEPS {
        return known;
    }
    let top: Vec<String> = features
        .features
        .iter()
        .take(3)
        .map(|f| f.feature.clone())
        .collect();
    if top.len() >= MIN_STEPS {
        top
    } else {
        DEFAULT_STEPS.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// Where this Liftoff is reachable, as the browser sees it (for the SDK instructions).
fn origin(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("localhost:8080");
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

fn empty_state(origin: &str) -> Markup {
    let curl = format!(
        "curl -X POST {origin}/api/ingest/events \\\n  -H 'authorization: Bearer <ingest key>' \\\n  -H 'content-type: application/json' \\\n  -d '[{{\"event\": \"signup\", \"user_id\": \"user-1\", \"properties\": {{\"plan\": \"free\"}}}}]'"
    );
    let js = format!(
        "posthog.init('<ingest key>', {{ api_host: '{origin}' }});\nposthog.capture('signup', {{ plan: 'free' }});"
    );
    let py = format!(
        "from posthog import Posthog\nposthog = Posthog('<ingest key>', host='{origin}')\nposthog.capture('signup', distinct_id='user-1')"
    );
    html! {
        section.empty #analytics-empty {
            p.lead { "No product events yet." }
            p { "Send events from your app and this page fills in within seconds: active users, top events, funnels, retention and paths." }
            ol {
                li { "Create a key with the " strong { "ingest" } " scope in " a href="/settings" { "Settings" } "." }
                li {
                    "POST a batch of events to " code { "/api/ingest/events" } ":"
                    pre.code { (curl) }
                }
                li {
                    "Or use the official PostHog SDKs with their host pointed at this Liftoff and the ingest key as the project API key:"
                    pre.code { (js) }
                    pre.code { (py) }
                }
            }
            p.muted { "Each event needs a name and a user id; " code { "session_id" } ", " code { "timestamp" } ", " code { "properties" } " and " code { "uuid" } " (which makes a retry safe) are optional. See " a href="/api/openapi.json" { "the API reference" } "." }
        }
    }
}

fn tiles(
    active: &ActiveUsersReport,
    sessions: &SessionsReport,
    errors: &ErrorsReport,
    window: Window,
) -> Markup {
    let in_window = window.label().to_lowercase();
    html! {
        section.tiles #analytics-tiles {
            div.tile { div.label { "Active now" } div.value #au-now { (active.active_users) } div.muted { "last 30 minutes" } }
            div.tile { div.label { "DAU" } div.value #au-dau { (active.dau) } div.muted { "today (UTC)" } }
            div.tile { div.label { "WAU" } div.value #au-wau { (active.wau) } div.muted { "last 7 days" } }
            div.tile { div.label { "MAU" } div.value #au-mau { (active.mau) } div.muted { "last 30 days" } }
            div.tile { div.label { "Stickiness" } div.value #au-stickiness { (percent(active.stickiness)) } div.muted { "average DAU / MAU" } }
            div.tile { div.label { "Sessions" } div.value #au-sessions { (sessions.sessions) } div.muted { (in_window) } }
            div.tile { div.label { "Avg session" } div.value #au-session-length { (duration(sessions.avg_duration_seconds)) } div.muted { (in_window) } }
            div class={ "tile " (if sessions.bounce_rate > 0.7 { "warn" } else { "" }) } { div.label { "Bounce rate" } div.value #au-bounce { (percent(sessions.bounce_rate)) } div.muted { "sessions with one event" } }
            div class={ "tile " (if errors.total_errors > 0 { "bad" } else { "ok" }) } {
                div.label { "Errors" } div.value #au-errors { (errors.total_errors) }
                div.muted { (errors.affected_users) (if errors.affected_users == 1 { " user · " } else { " users · " }) (in_window) }
            }
        }
    }
}

fn charts(active: &ActiveUsersReport, nvr: &[NewVsReturningRow]) -> Markup {
    let xs: Vec<i64> = active
        .daily
        .iter()
        .map(|d| day_seconds(&d.date).unwrap_or_default())
        .collect();
    let dau = json!([xs, active.daily.iter().map(|d| d.users).collect::<Vec<_>>()]);
    let split = |pick: fn(&NewVsReturningRow) -> u64| {
        active
            .daily
            .iter()
            .map(|d| nvr.iter().find(|r| r.date == d.date).map_or(0, pick))
            .collect::<Vec<_>>()
    };
    let nvr = json!([xs, split(|r| r.new), split(|r| r.returning)]);
    html! {
        (chart("dau-chart", "Daily active users, last 30 days (UTC)", &["users"], &dau))
        (chart("new-returning-chart", "New and returning users per day, last 30 days", &["new", "returning"], &nvr))
    }
}

fn top_events(features: &FeaturesReport, total_users: u64) -> Markup {
    html! {
        @if features.features.is_empty() {
            p.muted { "No events in this range." }
        } @else {
            table #top-events {
                thead { tr { th { "Event" } th { "Count" } th { "Unique users" } th { "Share of users" } } }
                tbody {
                    @for f in &features.features {
                        @let share = f.unique_users as f64 / total_users.max(1) as f64;
                        tr {
                            td { code { (f.feature) } }
                            td { (f.usage_count) }
                            td { (f.unique_users) }
                            td { (bar(share, &percent(share), false)) }
                        }
                    }
                }
            }
        }
    }
}

fn funnel_form(
    shown: &[String],
    conversion: &str,
    breakdown: &str,
    window: Window,
    names: &[String],
) -> Markup {
    let fields = (shown.len() + 1).clamp(4, MAX_STEPS).max(shown.len());
    html! {
        form.inline #funnel-form method="get" action="/analytics#funnel" {
            input type="hidden" name="window" value=(window.as_str());
            @for i in 0..fields {
                label {
                    "Step " (i + 1)
                    input name="step" value=(shown.get(i).map_or("", String::as_str)) maxlength=(MAX_NAME) list="event-names" placeholder=[(i >= shown.len()).then_some("optional")];
                }
            }
            label { "Conversion window (days)" input name="conversion_window_days" type="number" min="0" step="any" value=(conversion) placeholder="14"; }
            label { "Breakdown by property" input name="breakdown" value=(breakdown) maxlength=(MAX_NAME) placeholder="optional, e.g. plan"; }
            button type="submit" { "Show funnel" }
        }
        datalist #event-names { @for n in names.iter().take(SUGGESTIONS) { option value=(n) {} } }
    }
}

fn funnel_report(report: &FunnelReport) -> Markup {
    let first = report.analysis.first().map_or(0, |s| s.users);
    let last = report.analysis.last().map_or(0, |s| s.users);
    // Breakdown values with the most first-step users first.
    let breakdown = report.breakdown.clone().map(|mut rows| {
        rows.sort_by_key(|r| std::cmp::Reverse(r.analysis.first().map_or(0, |s| s.users)));
        rows
    });
    html! {
        p #funnel-overall {
            "Overall conversion " strong { (percent(report.overall_conversion)) }
            " — " (last) " of " (first) " users completed all " (report.analysis.len()) " steps within "
            (report.conversion_window_days) " days of the first."
        }
        @if first == 0 {
            p.muted { "Nobody did the first step in this range. Pick events from the suggestions, or widen the window." }
        }
        table #funnel-steps {
            thead { tr { th { "Step" } th { "Event" } th { "Users" } th { "Of step 1" } th { "Conversion from previous" } th { "Drop-off" } } }
            tbody {
                @for s in &report.analysis {
                    @let share = s.users as f64 / first.max(1) as f64;
                    tr {
                        td { (s.step) }
                        td { code { (s.event_type) } }
                        td.users { (s.users) }
                        td { (bar(share, &percent(share), true)) }
                        td { @if s.step == 1 { "—" } @else { (percent(s.conversion_rate)) } }
                        td class=[(s.dropoff_rate > 0.5).then_some("bad-text")] { @if s.step == 1 { "—" } @else { (percent(s.dropoff_rate)) } }
                    }
                }
            }
        }
        @if let Some(rows) = &breakdown {
            h3 { "Breakdown" }
            @if rows.is_empty() {
                p.muted { "No first-step events in this range." }
            } @else {
                table #funnel-breakdown {
                    thead {
                        tr {
                            th { "Value" }
                            @for s in &report.analysis { th { (s.step) ". " code { (s.event_type) } } }
                            th { "Overall conversion" }
                        }
                    }
                    tbody {
                        @for r in rows.iter().take(BREAKDOWN_ROWS) {
                            tr {
                                td { @match &r.value { Some(v) => { code { (v) } }, None => { span.muted { "(not set)" } } } }
                                @for s in &r.analysis { td { (s.users) } }
                                td { (percent(r.overall_conversion)) }
                            }
                        }
                    }
                }
                @if rows.len() > BREAKDOWN_ROWS { p.muted { "The " (BREAKDOWN_ROWS) " values with the most first-step users of " (rows.len()) "." } }
            }
        }
    }
}

fn retention(r: &RetentionReport) -> Markup {
    let columns = r
        .cohorts
        .iter()
        .map(|c| c.retention.len())
        .max()
        .unwrap_or(0)
        .min(RETENTION_COLUMNS);
    let summary = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), percent);
    html! {
        section.tiles.compact {
            div.tile { div.label { "Day 1" } div.value #retention-d1 { (summary(r.d1)) } }
            div.tile { div.label { "Day 7" } div.value #retention-d7 { (summary(r.d7)) } }
            div.tile { div.label { "Day 30" } div.value #retention-d30 { (summary(r.d30)) } }
        }
        p.muted.note { "Percent of each first-seen cohort active again on day N (UTC days); a dash means no cohort is old enough yet." }
        @if r.cohorts.is_empty() {
            p.muted { "No users first seen in the last 30 days." }
        } @else {
            div.scroll {
                table.heatmap #retention {
                    thead {
                        tr {
                            th { "Cohort" } th { "Users" }
                            @for d in 0..columns { th { "Day " (d) } }
                        }
                    }
                    tbody {
                        @for c in r.cohorts.iter().rev() {
                            tr {
                                th.cohort { (c.cohort_date) }
                                td.size { (c.size) }
                                @for d in 0..columns {
                                    @match c.retention.get(d) {
                                        Some(p) => { td class=(heat_class(*p)) title={ (c.cohort_date) ", day " (d) } { (percent(*p)) } },
                                        None => { td.future {} },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn paths(p: &PathsReport) -> Markup {
    let widest = p
        .transitions
        .iter()
        .map(|t| t.count)
        .max()
        .unwrap_or(0)
        .max(1);
    let widest_flow = p.flows.iter().map(|f| f.count).max().unwrap_or(0).max(1);
    html! {
        @if p.transitions.is_empty() {
            p.muted { "No two events in a row within a session in this range." }
        } @else {
            div.columns {
                div {
                    h3 { "Top transitions" }
                    table #transitions {
                        thead { tr { th { "From" } th { "Then" } th { "Times" } } }
                        tbody {
                            @for t in &p.transitions {
                                tr {
                                    td { code { (t.from) } }
                                    td { code { (t.to) } }
                                    td { (bar(t.count as f64 / widest as f64, &t.count.to_string(), false)) }
                                }
                            }
                        }
                    }
                }
                div {
                    h3 { "Three-step flows" }
                    @if p.flows.is_empty() { p.muted { "No three events in a row yet." } } @else {
                        table #flows {
                            thead { tr { th { "Flow" } th { "Times" } } }
                            tbody {
                                @for f in &p.flows {
                                    tr {
                                        td {
                                            @for (i, s) in f.steps.iter().enumerate() {
                                                @if i > 0 { " → " }
                                                code { (s) }
                                            }
                                        }
                                        td { (bar(f.count as f64 / widest_flow as f64, &f.count.to_string(), false)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn milestones(m: &MilestonesReport) -> Markup {
    html! {
        @if m.milestones.is_empty() {
            p.muted { "No users in this range." }
        } @else {
            table #milestones {
                thead { tr { th { "Event" } th { "Users doing it first time" } th { "Share of " (m.total_users) " users" } th { "Avg time after first seen" } } }
                tbody {
                    @for row in m.milestones.iter().take(ROWS * 2) {
                        tr {
                            td { code { (row.event) } }
                            td { (row.users) }
                            td { (bar(row.share, &percent(row.share), false)) }
                            td { (duration(row.avg_hours_after_first_seen * 3600.0)) }
                        }
                    }
                }
            }
        }
    }
}

fn errors(e: &ErrorsReport, window: Window) -> Markup {
    html! {
        @if e.recent.is_empty() {
            p.muted { "No error events (" code { "$exception" } ", " code { "error" } ", " code { "*_error" } ") in the " (window.label().to_lowercase()) "." }
        } @else {
            table #recent-errors {
                thead { tr { th { "When (UTC)" } th { "Event" } th { "Type" } th { "Message" } th { "User" } } }
                tbody {
                    @for r in &e.recent {
                        tr {
                            td.mono { (r.timestamp.format("%Y-%m-%d %H:%M:%S")) }
                            td { code { (r.event) } }
                            td { (r.error_type.as_deref().unwrap_or("—")) }
                            td { (r.message.as_deref().unwrap_or("—")) }
                            td { code { (r.user_id) } }
                        }
                    }
                }
            }
            @if e.truncated { p.muted { "The window holds more events than one report reads; the figures cover the first 200,000." } }
        }
    }
}

type Reports = (
    ActiveUsersReport,
    FeaturesReport,
    RetentionReport,
    PathsReport,
    MilestonesReport,
    Vec<NewVsReturningRow>,
    SessionsReport,
    ErrorsReport,
);

async fn reports(state: &AppState, window: Window, now: i64) -> Result<Reports, InsightsError> {
    let days = query_days(window);
    let i = &state.insights;
    let (active, features, retention, paths, milestones, nvr, sessions, errors) = tokio::join!(
        i.active_users(30, now),
        i.features(days, ROWS, now),
        i.retention(30.0, now),
        i.paths(days, ROWS, now),
        i.milestones(days, now),
        i.new_vs_returning(30.0, Bucket::Day, now),
        i.sessions(window_days(window), now),
        i.errors(window_days(window) * 24.0, now),
    );
    Ok((
        active?,
        features?,
        retention?,
        paths?,
        milestones?,
        nvr?,
        sessions?,
        errors?,
    ))
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    headers: HeaderMap,
    Query(q): Query<WindowQuery>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let window = q.window();
    let form = parse_funnel(&pairs);
    let names = match state.insights.event_names().await {
        Ok(names) => names,
        Err(e) => return failure_page(&e),
    };
    if names.is_empty() {
        let body = html! {
            @if let Some(Err(m)) = &form.parsed { (Flash::error(m.as_str()).with_id("funnel-error")) }
            (empty_state(&origin(&headers)))
        };
        return page(&user, "/analytics", window, "Analytics", body);
    }
    let now = now_ms();
    let (
        active,
        features,
        retention_report,
        paths_report,
        milestones_report,
        nvr,
        sessions,
        errors_report,
    ) = match reports(&state, window, now).await {
        Ok(r) => r,
        Err(e) => return failure_page(&e),
    };
    // The funnel: as asked, or the default one.
    let (asked, message) = match &form.parsed {
        Some(Ok(req)) => (Some(req.clone()), None),
        Some(Err(m)) => (None, Some(m.clone())),
        None => (
            Some(FunnelRequest {
                funnel_steps: default_steps(&names, &features),
                days: None,
                conversion_window_days: Some(DEFAULT_CONVERSION_DAYS),
                breakdown: None,
            }),
            None,
        ),
    };
    let days = query_days(window);
    let (report, message) = match asked {
        Some(req) => {
            let req = FunnelRequest {
                days: Some(days),
                ..req
            };
            match state.insights.funnel(&req, now).await {
                Ok(r) => (Some(r), message),
                Err(InsightsError::Query(e)) => (None, Some(e.to_string())),
                Err(e) => return failure_page(&e),
            }
        }
        None => (None, message),
    };
    // What the form shows: what was submitted, else the funnel that was run.
    let (shown, conversion, breakdown) = match (&form.parsed, &report) {
        (None, Some(r)) => (r.funnel_steps.clone(), String::new(), String::new()),
        _ => (
            form.steps.iter().take(MAX_STEPS + 2).cloned().collect(),
            form.conversion.clone(),
            form.breakdown.clone(),
        ),
    };
    let range = if days <= 1.0 {
        "the last 24 hours".to_owned()
    } else {
        format!("the last {days:.0} days")
    };
    let body = html! {
        (tiles(&active, &sessions, &errors_report, window))
        p.muted.note #analytics-ranges {
            "Active users: DAU today (UTC), WAU 7 days, MAU 30 days. Sessions and errors: the "
            (window.label().to_lowercase()) ". Top events, funnel, paths and journey: " (range)
            " (the window, at least a day). Retention: cohorts of the last 30 days."
        }
        (charts(&active, &nvr))
        h2 { "Top events · " (range) }
        (top_events(&features, milestones_report.total_users))
        section #funnel {
            h2 { "Funnel · " (range) }
            @if let Some(m) = &message { (Flash::error(m.as_str()).with_id("funnel-error")) }
            (funnel_form(&shown, &conversion, &breakdown, window, &names))
            @if let Some(r) = &report { (funnel_report(r)) }
        }
        h2 { "Retention" }
        (retention(&retention_report))
        h2 { "Paths · " (range) }
        (paths(&paths_report))
        h2 { "User journey · " (range) }
        p.muted.note { "For each event, the users whose first time doing it falls in the range, and how long after they were first seen." }
        (milestones(&milestones_report))
        h2 { "Recent errors · " (window.label().to_lowercase()) }
        (errors(&errors_report, window))
    };
    page(&user, "/analytics", window, "Analytics", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_funnel_form_is_checked() {
        assert!(parse_funnel(&pairs(&[("window", "1h")])).parsed.is_none());
        let ok = parse_funnel(&pairs(&[
            ("step", " signup "),
            ("step", ""),
            ("step", "purchase"),
            ("conversion_window_days", "3"),
            ("breakdown", "plan"),
        ]));
        assert_eq!(
            ok.parsed,
            Some(Ok(FunnelRequest {
                funnel_steps: vec!["signup".into(), "purchase".into()],
                days: None,
                conversion_window_days: Some(3.0),
                breakdown: Some("plan".into()),
            }))
        );
        let defaults = parse_funnel(&pairs(&[("step", "a"), ("step", "b"), ("breakdown", "")]));
        assert_eq!(
            defaults.parsed.unwrap().unwrap().conversion_window_days,
            Some(DEFAULT_CONVERSION_DAYS)
        );
        let one = parse_funnel(&pairs(&[("step", "a"), ("step", " ")]));
        assert!(one.parsed.unwrap().unwrap_err().contains("2 to 10 steps"));
        let eleven: Vec<(&str, &str)> = (0..11).map(|_| ("step", "x")).collect();
        assert!(parse_funnel(&pairs(&eleven)).parsed.unwrap().is_err());
        let long = "x".repeat(201);
        let err = parse_funnel(&pairs(&[("step", "a"), ("step", &long)]))
            .parsed
            .unwrap()
            .unwrap_err();
        assert!(err.contains("Step 2"), "{err}");
        for bad in ["-1", "abc", "NaN", "inf", "0", "4000"] {
            let f = parse_funnel(&pairs(&[
                ("step", "a"),
                ("step", "b"),
                ("conversion_window_days", bad),
            ]));
            assert!(f.parsed.unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn heat_classes_per_started_ten_percent() {
        assert_eq!(heat_class(0.0), "heat heat-0");
        assert_eq!(heat_class(0.005), "heat heat-1");
        assert_eq!(heat_class(0.1), "heat heat-1");
        assert_eq!(heat_class(0.333), "heat heat-4");
        assert_eq!(heat_class(1.0), "heat heat-10");
        assert_eq!(heat_class(2.5), "heat heat-10");
    }

    #[test]
    fn windows_map_to_at_least_a_day() {
        assert_eq!(query_days(Window::M15), 1.0);
        assert_eq!(query_days(Window::H24), 1.0);
        assert_eq!(query_days(Window::D7), 7.0);
        assert!((window_days(Window::H1) - 1.0 / 24.0).abs() < 1e-9);
    }

    #[test]
    fn user_data_is_escaped() {
        let report = FeaturesReport {
            days: 1.0,
            features: vec![liftoff_core::analytics::insights::FeatureUsage {
                feature: "<script>alert(1)</script>".into(),
                usage_count: 3,
                unique_users: 2,
            }],
        };
        let html = top_events(&report, 4).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        let steps = default_steps(&[], &report);
        assert_eq!(
            steps,
            DEFAULT_STEPS.map(str::to_owned).to_vec(),
            "one event is no funnel"
        );
    }

    #[test]
    fn default_steps_prefer_the_known_funnel() {
        let names: Vec<String> = ["search", "signup", "page_view"]
            .map(str::to_owned)
            .to_vec();
        let features = FeaturesReport {
            days: 1.0,
            features: vec![],
        };
        assert_eq!(default_steps(&names, &features), vec!["signup", "search"]);
    }
}
