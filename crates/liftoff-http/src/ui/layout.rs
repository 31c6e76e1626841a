//! The frame every dashboard page shares: top bar (window selector, auto-refresh, user),
//! navigation, and the main region that refreshes itself.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::ui::assets;
use crate::ui::session::UiUser;

/// The dashboard's time window: what range charts and tables cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Window {
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "24h")]
    H24,
    #[serde(rename = "7d")]
    D7,
}

impl Window {
    pub const ALL: [Window; 5] = [Window::M15, Window::H1, Window::H4, Window::H24, Window::D7];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::M15 => "15m",
            Window::H1 => "1h",
            Window::H4 => "4h",
            Window::H24 => "24h",
            Window::D7 => "7d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::M15 => "Last 15 minutes",
            Window::H1 => "Last hour",
            Window::H4 => "Last 4 hours",
            Window::H24 => "Last 24 hours",
            Window::D7 => "Last 7 days",
        }
    }

    pub fn duration(self) -> chrono::Duration {
        match self {
            Window::M15 => chrono::Duration::minutes(15),
            Window::H1 => chrono::Duration::hours(1),
            Window::H4 => chrono::Duration::hours(4),
            Window::H24 => chrono::Duration::hours(24),
            Window::D7 => chrono::Duration::days(7),
        }
    }
}

/// The `?window=` query every page takes; an unknown value falls back to 24h.
#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

impl WindowQuery {
    pub fn window(&self) -> Window {
        self.window
            .as_deref()
            .and_then(|w| Window::ALL.into_iter().find(|x| x.as_str() == w))
            .unwrap_or(Window::H24)
    }
}

/// The pages of the navigation, in order: path, label.
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/performance", "Performance"),
    ("/analytics", "Analytics"),
    ("/flags", "Flags"),
    ("/experiments", "Experiments"),
    ("/alerts", "Alerts & incidents"),
    ("/uptime", "Uptime"),
    ("/incidents", "Incidents"),
    ("/launch", "Launch"),
    ("/reports", "Reports"),
    ("/settings", "Settings"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=r#"{"allowEval":false,"includeIndicatorStyles":false}"#;
            title { (title) " · Liftoff" }
            link rel="icon" href="/favicon.ico" sizes="32x32";
            link rel="stylesheet" href=(assets::url("app.css"));
            link rel="stylesheet" href=(assets::url("uPlot.min.css"));
            script src=(assets::url("htmx.min.js")) defer {}
            script src=(assets::url("uPlot.iife.min.js")) defer {}
            script src=(assets::url("app.js")) defer {}
        }
    }
}

/// A signed-in page: `path` marks the active navigation entry.
pub fn page(user: &UiUser, path: &str, window: Window, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.topbar {
                    a.brand href="/" { "Liftoff" }
                    form.window-form method="get" action=(path) {
                        label for="window" { "Window" }
                        select #window name="window" {
                            @for w in Window::ALL {
                                option value=(w.as_str()) selected[w == window] { (w.label()) }
                            }
                        }
                        noscript { button type="submit" { "Apply" } }
                    }
                    label.autorefresh title="Reload this page's data every 30 seconds" {
                        input #autorefresh type="checkbox" checked;
                        " Auto-refresh"
                    }
                    span.user { (user.user.username) " " span.role { (user.user.role.as_str()) } }
                    form.logout method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                div.frame {
                    nav.sidebar aria-label="Sections" {
                        @for (href, label) in NAV {
                            a href={ (href) "?window=" (window.as_str()) } class=[(*href == path).then_some("active")] { (label) }
                        }
                    }
                    main #main data-refresh-seconds="30" {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A page outside the frame (login, errors).
pub fn bare(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main.card {
                    div.brand { "Liftoff" }
                    (body)
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    bare(
        status,
        title,
        html! { h1 { (title) } p { (message) } p { a href="/" { "Back to the dashboard" } } },
    )
}

/// A JSON payload for `app.js` to draw with uPlot: `[[x…], [y…], …]` plus series names.
pub fn chart(id: &str, title: &str, series_names: &[&str], data: &serde_json::Value) -> Markup {
    chart_spec(
        id,
        title,
        serde_json::json!({ "title": title, "series": series_names, "data": data }),
    )
}

/// A chart whose x-axis spans `from..to` (Unix seconds) whatever the data covers: a chart of
/// "the last 7 days" shows 7 days even when the checks began yesterday.
pub fn chart_over(
    id: &str,
    title: &str,
    series_names: &[&str],
    data: &serde_json::Value,
    span: (i64, i64),
) -> Markup {
    chart_marked(id, title, series_names, data, span, &[])
}

/// A moment marked on a chart's time axis (a deployment): Unix seconds and a short label.
pub struct Marker {
    pub at: i64,
    pub label: String,
}

/// A chart over `from..to` (as [`chart_over`]) with vertical marks at moments; the page lists
/// them too, so they read without the canvas.
pub fn chart_marked(
    id: &str,
    title: &str,
    series_names: &[&str],
    data: &serde_json::Value,
    (from, to): (i64, i64),
    markers: &[Marker],
) -> Markup {
    let marks: Vec<serde_json::Value> = markers
        .iter()
        .map(|m| serde_json::json!({ "x": m.at, "label": m.label }))
        .collect();
    chart_spec(
        id,
        title,
        serde_json::json!({ "title": title, "series": series_names, "data": data,
                            "x_range": [from, to], "markers": marks }),
    )
}

/// A chart whose series come in threes: an estimate and the low and high ends of its interval
/// (drawn dashed in the estimate's colour).
pub fn chart_with_intervals(
    id: &str,
    title: &str,
    series_names: &[&str],
    data: &serde_json::Value,
) -> Markup {
    let bounds: Vec<usize> = (0..series_names.len()).filter(|i| i % 3 != 0).collect();
    chart_spec(
        id,
        title,
        serde_json::json!({ "title": title, "series": series_names, "data": data, "bounds": bounds }),
    )
}

fn chart_spec(id: &str, title: &str, spec: serde_json::Value) -> Markup {
    html! {
        figure.chart {
            div id=(id) .chart-target data-chart=(spec.to_string()) {}
            figcaption { (title) }
        }
    }
}
