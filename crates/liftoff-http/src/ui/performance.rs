//! The performance page: request rate, error rate and latency percentiles over the window,
//! the latency distribution, the slowest, busiest and most error-prone endpoints, status codes,
//! and the resources of Liftoff and of the app instances that report them.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use liftoff_core::deployments::Deployment;
use liftoff_core::monitoring::resources::{Concern, describe};
use liftoff_core::monitoring::service::OWN_SERVICE;
use liftoff_core::monitoring::service::{HistogramBucket, SortBy};
use liftoff_core::monitoring::{EndpointStats, Filter, TimeRange};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;
use crate::ui::badge::badge;
use crate::ui::layout::{Marker, Window, WindowQuery, chart_marked, error_page, page};
use crate::ui::session::UiUser;

/// Chart resolution: steps across the window.
const STEPS: usize = 60;
/// The newest deployments read for the chart markers (the store's page limit).
const DEPLOYMENTS_READ: u32 = 1000;
/// Deployments of the window shown with their verification (the newest).
const VERIFIED_SHOWN: usize = 10;

use crate::ui::format::{percent as pct, percent_value};

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} s", x / 1000.0)
    } else {
        format!("{x:.1} ms")
    }
}

/// A table of endpoints, or `empty` (what is true when there are none) in its place.
fn endpoint_table(id: &str, rows: &[EndpointStats], empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted.empty id={ (id) "-empty" } { (empty) }
        } @else {
            table id=(id) {
                thead { tr { th { "Service" } th { "Endpoint" } th { "Requests" } th { "Error rate" } th { "Avg" } th { "p95" } th { "p99" } } }
                tbody {
                    @for e in rows {
                        tr {
                            td { (e.service) }
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
fn latency_histogram(buckets: &[HistogramBucket], empty: &str) -> Markup {
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
        @if total == 0 { p.muted { (empty) } } @else {
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

/// `?service=`: one service, or (empty or absent) every app service.
#[derive(Debug, Default, Deserialize)]
pub struct ServiceQuery {
    service: Option<String>,
}

/// The service selector: every app service together by default, each service alone, and
/// Liftoff's own API traffic, which is never counted with the apps.
fn service_selector(window: Window, services: &[String], selected: Option<&str>) -> Markup {
    html! {
        form.inline #service-form method="get" action="/performance" {
            input type="hidden" name="window" value=(window.as_str());
            label for="service" { "Service" }
            select #service name="service" data-autosubmit {
                option value="" selected[selected.is_none()] { "All app services" }
                @for s in services.iter().filter(|s| s.as_str() != OWN_SERVICE) {
                    option value=(s) selected[selected == Some(s.as_str())] { (s) }
                }
                option value=(OWN_SERVICE) selected[selected == Some(OWN_SERVICE)] { "Liftoff's own API traffic" }
            }
            noscript { button type="submit" { "Show" } }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: UiUser,
    Query(q): Query<WindowQuery>,
    Query(sq): Query<ServiceQuery>,
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
    let filter = Filter::service(sq.service.as_deref());
    let f = &filter;
    let (summary, series, busiest, slowest, failing, all, histogram, services, deployments) = tokio::join!(
        m.summary(range, f),
        m.series(range, STEPS, f),
        m.top(range, f, SortBy::RequestCount, 8),
        m.top(range, f, SortBy::AvgDurationMs, 8),
        m.top(range, f, SortBy::ErrorRate, 8),
        m.performance(range, f),
        m.latency_histogram(range, f),
        m.services(),
        state.deployments.list(DEPLOYMENTS_READ),
    );
    let (
        Ok(summary),
        Ok(series),
        Ok(busiest),
        Ok(slowest),
        Ok(failing),
        Ok(all),
        Ok(histogram),
        Ok(services),
    ) = (
        summary, series, busiest, slowest, failing, all, histogram, services,
    )
    else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Metrics unavailable",
            "Liftoff cannot read its metrics store. Try again shortly.",
        );
    };
    // Markers are a convenience: a deployment store that cannot answer leaves the charts bare.
    let deployments: Vec<Deployment> = deployments
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.deployed_at >= range.from && d.deployed_at <= range.to)
        .filter(|d| filter.service.is_none_or(|s| d.service == s))
        .collect();
    let markers: Vec<Marker> = deployments
        .iter()
        .map(|d| Marker {
            at: d.deployed_at.timestamp(),
            label: format!("{} {}", d.service, d.version),
        })
        .collect();
    let span = (range.from.timestamp(), range.to.timestamp());
    // The trend is a convenience too: without the history the table shows the latest reading.
    let now = chrono::Utc::now();
    let history = m
        .resource_history(now - chrono::Duration::days(7), now)
        .await
        .unwrap_or_default();
    let verifications = futures_util::future::join_all(
        deployments
            .iter()
            .take(VERIFIED_SHOWN)
            .map(|d| state.deployments.verification(d.id)),
    )
    .await;
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
    let no_requests = match filter.service {
        Some(s) => format!("No requests from {s} in this window."),
        None => "No requests from the app services in this window.".to_owned(),
    };
    let no_errors = if summary.requests.total == 0 {
        no_requests.clone()
    } else {
        "No errors in this window.".to_owned()
    };
    let body = html! {
        (service_selector(window, &services, filter.service))
        @if !summary.services.is_empty() {
            p.muted #perf-services { "Counting " (summary.services.join(", ")) "." }
        }
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
        (chart_marked("rate-chart", "Requests per step", &["requests"], &rate, span, &markers))
        (chart_marked("error-chart", "Error rate (5xx), %", &["error rate"], &errors, span, &markers))
        (chart_marked("latency-chart", "Latency, ms", &["p50", "p95", "p99"], &latency, span, &markers))
        @if !deployments.is_empty() {
            h2 { "Deployments in this window" }
            table #deployments {
                thead { tr { th { "When" } th { "Service" } th { "Version" } th { "Environment" } th { "Commit" } th { "Verification" } } }
                tbody { @for (d, v) in deployments.iter().zip(&verifications) { tr data-deployment=(d.id) {
                    td.mono { (d.deployed_at.format("%Y-%m-%d %H:%M UTC")) }
                    td { (d.service) }
                    td { code { (d.version) } }
                    td { (d.environment.as_deref().unwrap_or("—")) }
                    td { @if let Some(c) = &d.commit { code { (c.chars().take(12).collect::<String>()) } } @else { "—" } }
                    td.verification { @match v {
                        Ok(v) => { (badge(v.status)) " " span.muted { (v.why) } },
                        Err(e) => { span.muted { (e) } },
                    } }
                } } }
            }
        }
        h2 { "Latency distribution" }
        (latency_histogram(&histogram, &no_requests))
        @let instances = m.instances.list(chrono::Utc::now());
        @if !instances.is_empty() {
            h2 { "App instances" }
            table #instances {
                thead { tr { th { "Service" } th { "Instance" } th { "CPU" } th { "Memory" } th { "Disk" } th { "Process RSS" } th title="Least-squares slope of the daily averages over 7 days" { "Trend (7 days)" } th { "Last seen" } } }
                tbody {
                    @for i in &instances {
                        tr {
                            td { (i.service) }
                            td { code { (i.instance) } }
                            td { (percent_value(i.sample.cpu.percent)) " of " (i.sample.cpu.count) }
                            td { (percent_value(i.sample.memory.percent)) }
                            td { (percent_value(i.sample.disk.percent)) }
                            td { (format!("{:.0} MB", i.sample.process_rss_mb)) }
                            @let h = history.iter().find(|h| h.service == i.service && h.instance == i.instance);
                            @let (words, concern) = describe(h.map(|h| &h.cpu), h.map(|h| &h.memory), h.map(|h| &h.disk));
                            td.trend { @match concern {
                                Concern::Urgent => span.badge.badge-crit { (words) },
                                Concern::Watch => span.badge.badge-warn { (words) },
                                Concern::None => span.muted { (words) },
                            } }
                            td { (i.last_seen.format("%H:%M:%S UTC")) }
                        }
                    }
                }
            }
        }
        h2 { "Busiest endpoints" }
        (endpoint_table("busiest", &busiest, &no_requests))
        h2 { "Slowest endpoints" }
        (endpoint_table("slowest", &slowest, &no_requests))
        h2 { "Most error-prone endpoints" }
        (endpoint_table("failing", &failing, &no_errors))
        h2 { "Status codes" }
        @if codes.is_empty() { p.muted { (no_requests) } } @else {
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
