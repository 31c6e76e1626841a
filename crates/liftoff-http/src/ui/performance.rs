//! The performance page: request rate, error rate and latency percentiles over the window,
//! the latency distribution, the slowest, busiest and most error-prone endpoints, status codes,
//! and the resources of Liftoff and of the app instances that report them.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use liftoff_core::monitoring::service::{HistogramBucket, SortBy};
use liftoff_core::monitoring::{EndpointStats, TimeRange};
use maud::{Markup, html};
use serde_json::json;

use crate::state::AppState;
use crate::ui::layout::{WindowQuery, chart, error_page, page};
use crate::ui::session::UiUser;

/// Chart resolution: steps across the window.
const STEPS: usize = 60;

use crate::ui::format::{percent as pct, percent_value};

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} s", x / 1000.0)
    } else {
        format!("{x:.1} ms")
    }
}

fn endpoint_table(id: &str, rows: &[EndpointStats]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "No requests in this window." }
        } @else {
            table id=(id) {
                thead { tr { th { "Endpoint" } th { "Requests" } th { "Error rate" } th { "Avg" } th { "p95" } th { "p99" } } }
                tbody {
                    @for e in rows {
                        tr {
                            td { code { (e.method) " " (e.endpoint) } }
                            td { (e.request_count) }
                            td class=[(e.error_rate > 0.05).then_some("bad-text")] { (pct(e.error_rate)) }
                            td { (ms(e.duration_ms.avg)) }
                            td { (ms(e.duration_ms.p95)) }
                            td { (ms(e.duration_ms.p99)) }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one per latency bucket: people read a distribution's shape faster than
/// its numbers.
fn latency_histogram(buckets: &[HistogramBucket]) -> Markup {
    let total: u64 = buckets.iter().map(|b| b.count).sum();
    let widest = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let lowers = std::iter::once(None).chain(buckets.iter().map(|b| b.le_ms));
    let rows: Vec<(String, u64)> = buckets
        .iter()
        .zip(lowers)
        .map(|(b, lower)| {
            let label = match (lower, b.le_ms) {
                (None, Some(hi)) => format!("≤ {}", ms(hi)),
                (Some(lo), Some(hi)) => format!("{} – {}", ms(lo), ms(hi)),
                (Some(lo), None) => format!("> {}", ms(lo)),
                (None, None) => "all".to_owned(),
            };
            (label, b.count)
        })
        .collect();
    html! {
        @if total == 0 { p.muted { "No requests in this window." } } @else {
            table #latency-histogram {
                thead { tr { th { "Latency" } th { "Requests" } th { "Share" } } }
                tbody {
                    @for (label, n) in &rows {
                        tr {
                            td { (label) }
                            td { (n) }
                            td { div.bar { div.fill style={ "width:" (*n as f64 / widest as f64 * 100.0) "%" } {} } " " (pct(*n as f64 / total as f64)) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<WindowQuery>,
) -> Response {
    let window = q.window();
    let Some(range) = TimeRange::window(window.as_str(), chrono::Utc::now()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown window",
            "Choose a window from the list.",
        );
    };
    let m = &state.monitoring;
    let (summary, series, busiest, slowest, failing, all, histogram) = tokio::join!(
        m.summary(range),
        m.series(range, STEPS),
        m.top(range, SortBy::RequestCount, 8),
        m.top(range, SortBy::AvgDurationMs, 8),
        m.top(range, SortBy::ErrorRate, 8),
        m.performance(range, None, None),
        m.latency_histogram(range),
    );
    let (Ok(summary), Ok(series), Ok(busiest), Ok(slowest), Ok(failing), Ok(all), Ok(histogram)) =
        (summary, series, busiest, slowest, failing, all, histogram)
    else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Metrics unavailable",
            "Liftoff cannot read its metrics store. Try again shortly.",
        );
    };
    let failing: Vec<EndpointStats> = failing.into_iter().filter(|e| e.error_count > 0).collect();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for e in all.values() {
        for (c, n) in &e.status_codes {
            *codes.entry(c.clone()).or_default() += n;
        }
    }
    let total_codes: u64 = codes.values().sum();
    let xs: Vec<i64> = series.iter().map(|p| p.t).collect();
    let rate = json!([xs, series.iter().map(|p| p.requests).collect::<Vec<_>>()]);
    let errors = json!([
        xs,
        series
            .iter()
            .map(|p| if p.requests == 0 {
                None
            } else {
                Some(p.errors as f64 / p.requests as f64 * 100.0)
            })
            .collect::<Vec<_>>()
    ]);
    let latency = json!([
        xs,
        series.iter().map(|p| p.p50).collect::<Vec<_>>(),
        series.iter().map(|p| p.p95).collect::<Vec<_>>(),
        series.iter().map(|p| p.p99).collect::<Vec<_>>()
    ]);
    let r = &summary.requests;
    let sys = &summary.system;
    let body = html! {
        section.tiles {
            div.tile { div.label { "Requests" } div.value #perf-requests { (r.total) } }
            div class={ "tile " (if r.error_rate > 0.05 { "bad" } else { "ok" }) } { div.label { "Error rate" } div.value { (pct(r.error_rate)) } }
            div.tile { div.label { "p95 latency" } div.value { (ms(summary.performance.p95_duration_ms)) } }
            div.tile { div.label { "p99 latency" } div.value { (ms(summary.performance.p99_duration_ms)) } }
            div.tile { div.label { "Endpoints with errors" } div.value { (summary.endpoints.with_errors) " / " (summary.endpoints.total) } }
            div class={ "tile " (if sys.cpu.percent > 80.0 { "warn" } else { "" }) } { div.label { "CPU" } div.value { (percent_value(sys.cpu.percent)) } div.muted { (sys.cpu.count) " CPUs" } }
            div class={ "tile " (if sys.memory.percent > 90.0 { "bad" } else { "" }) } { div.label { "Memory" } div.value { (percent_value(sys.memory.percent)) } div.muted { (format!("{:.0} / {:.0} MB", sys.memory.used_mb, sys.memory.total_mb)) } }
            div.tile { div.label { "Disk" } div.value { (percent_value(sys.disk.percent)) } div.muted { (format!("{:.1} / {:.1} GB", sys.disk.used_gb, sys.disk.total_gb)) } }
        }
        (chart("rate-chart", "Requests per step", &["requests"], &rate))
        (chart("error-chart", "Error rate (5xx), %", &["error rate"], &errors))
        (chart("latency-chart", "Latency, ms", &["p50", "p95", "p99"], &latency))
        h2 { "Latency distribution" }
        (latency_histogram(&histogram))
        @let instances = m.instances.list(chrono::Utc::now());
        @if !instances.is_empty() {
            h2 { "App instances" }
            table #instances {
                thead { tr { th { "Service" } th { "Instance" } th { "CPU" } th { "Memory" } th { "Disk" } th { "Process RSS" } th { "Last seen" } } }
                tbody {
                    @for i in &instances {
                        tr {
                            td { (i.service) }
                            td { code { (i.instance) } }
                            td { (percent_value(i.sample.cpu.percent)) " of " (i.sample.cpu.count) }
                            td { (percent_value(i.sample.memory.percent)) }
                            td { (percent_value(i.sample.disk.percent)) }
                            td { (format!("{:.0} MB", i.sample.process_rss_mb)) }
                            td { (i.last_seen.format("%H:%M:%S UTC")) }
                        }
                    }
                }
            }
        }
        h2 { "Busiest endpoints" }
        (endpoint_table("busiest", &busiest))
        h2 { "Slowest endpoints" }
        (endpoint_table("slowest", &slowest))
        h2 { "Most error-prone endpoints" }
        (endpoint_table("failing", &failing))
        h2 { "Status codes" }
        @if codes.is_empty() { p.muted { "No requests in this window." } } @else {
            table #status-codes {
                thead { tr { th { "Code" } th { "Requests" } th { "Share" } } }
                tbody {
                    @for (c, n) in &codes {
                        @let share = *n as f64 / total_codes.max(1) as f64;
                        tr {
                            td { code { (c) } }
                            td { (n) }
                            td { div.bar { div.fill style={ "width:" (share * 100.0) "%" } {} } " " (pct(share)) }
                        }
                    }
                }
            }
        }
    };
    page(&user, "/performance", window, "Performance", body)
}
