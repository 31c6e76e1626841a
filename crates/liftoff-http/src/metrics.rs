//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of ingested requests and of
//! Liftoff's own internals. Public like `/healthz`, so a scraper needs no token.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use liftoff_core::analytics::event::now_ms;
use liftoff_core::analytics::insights::ActiveUserCounts;
use liftoff_core::monitoring::prometheus::escape;

use crate::state::AppState;

/// Writes one metric family: its HELP and TYPE lines, then one sample per `(labels, value)`;
/// `labels` is `name="value",…` with values already escaped, or empty.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

fn label(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", escape(value))
}

pub(crate) async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(16 * 1024);
    state.monitoring.render_prometheus(&mut out);
    state.operations.render_prometheus(&mut out);
    state.events.render_prometheus(&mut out);
    state.experiments.render_prometheus(&mut out);

    let version = label("version", env!("CARGO_PKG_VERSION"));
    family(
        &mut out,
        "liftoff_build_info",
        "gauge",
        "Liftoff's version.",
        [(version, 1.0)],
    );
    let uptime = state.started.elapsed().as_secs_f64();
    family(
        &mut out,
        "liftoff_uptime_seconds",
        "gauge",
        "Seconds since this process started.",
        [(String::new(), uptime)],
    );

    let flags = state.flags.list();
    let on = flags.iter().filter(|f| f.enabled).count();
    family(
        &mut out,
        "liftoff_flags",
        "gauge",
        "Feature flags by master switch state.",
        [
            (label("state", "enabled"), on as f64),
            (label("state", "disabled"), (flags.len() - on) as f64),
        ],
    );

    let jobs = state.jobs.jobs();
    let per_job = |f: fn(&liftoff_core::jobs::JobStatus) -> u64| {
        jobs.iter()
            .map(move |j| (label("job", &j.name), f(j) as f64))
    };
    family(
        &mut out,
        "liftoff_job_runs_total",
        "counter",
        "Runs of each background job.",
        per_job(|j| j.runs),
    );
    family(
        &mut out,
        "liftoff_job_failures_total",
        "counter",
        "Failed runs of each background job.",
        per_job(|j| j.failures),
    );

    let queues = state.jobs.queues();
    let per_queue = |f: fn(&liftoff_core::jobs::QueueDepth) -> u64| {
        queues
            .iter()
            .map(move |q| (label("queue", &q.name), f(q) as f64))
    };
    family(
        &mut out,
        "liftoff_queue_depth",
        "gauge",
        "Requests waiting in each bounded ingest queue.",
        per_queue(|q| q.depth),
    );
    family(
        &mut out,
        "liftoff_queue_capacity",
        "gauge",
        "Capacity of each bounded ingest queue.",
        per_queue(|q| q.capacity),
    );

    // A scrape during a store outage still answers; the family is there, without samples.
    let active = match ActiveUserCounts::at(&*state.insights, now_ms()).await {
        Ok(c) => c.by_window().to_vec(),
        Err(e) => {
            tracing::warn!(error = %e, "Active users left out of /metrics: events unavailable.");
            Vec::new()
        }
    };
    family(
        &mut out,
        "liftoff_active_users",
        "gauge",
        "Distinct users with a product event in the last window (5m, 1h, 24h).",
        active
            .into_iter()
            .map(|(window, n)| (label("window", window), n as f64)),
    );

    let rss = (state.monitoring.system.get().process_rss_mb * 1024.0 * 1024.0).round();
    family(
        &mut out,
        "liftoff_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the Liftoff process.",
        [(String::new(), rss)],
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
}
