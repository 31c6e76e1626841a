//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of ingested requests and of
//! Liftoff's own internals. Public like `/healthz`, so a scraper needs no token.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use liftoff_core::monitoring::prometheus::escape;

use crate::state::AppState;

pub(crate) async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(16 * 1024);
    state.monitoring.render_prometheus(&mut out);

    out.push_str("# HELP liftoff_build_info Liftoff's version.\n# TYPE liftoff_build_info gauge\n");
    let _ = writeln!(
        out,
        "liftoff_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str("# HELP liftoff_uptime_seconds Seconds since this process started.\n# TYPE liftoff_uptime_seconds gauge\n");
    let _ = writeln!(
        out,
        "liftoff_uptime_seconds {}",
        state.started.elapsed().as_secs_f64()
    );

    let flags = state.flags.list();
    out.push_str(
        "# HELP liftoff_flags Feature flags by master switch state.\n# TYPE liftoff_flags gauge\n",
    );
    let on = flags.iter().filter(|f| f.enabled).count();
    let _ = writeln!(out, "liftoff_flags{{state=\"enabled\"}} {on}");
    let _ = writeln!(
        out,
        "liftoff_flags{{state=\"disabled\"}} {}",
        flags.len() - on
    );

    let jobs = state.jobs.jobs();
    out.push_str("# HELP liftoff_job_runs_total Runs of each background job.\n# TYPE liftoff_job_runs_total counter\n");
    for j in &jobs {
        let _ = writeln!(
            out,
            "liftoff_job_runs_total{{job=\"{}\"}} {}",
            escape(&j.name),
            j.runs
        );
    }
    out.push_str("# HELP liftoff_job_failures_total Failed runs of each background job.\n# TYPE liftoff_job_failures_total counter\n");
    for j in &jobs {
        let _ = writeln!(
            out,
            "liftoff_job_failures_total{{job=\"{}\"}} {}",
            escape(&j.name),
            j.failures
        );
    }
    let queues = state.jobs.queues();
    out.push_str("# HELP liftoff_queue_depth Requests waiting in each bounded ingest queue.\n# TYPE liftoff_queue_depth gauge\n");
    for q in &queues {
        let _ = writeln!(
            out,
            "liftoff_queue_depth{{queue=\"{}\"}} {}",
            escape(&q.name),
            q.depth
        );
    }
    out.push_str("# HELP liftoff_queue_capacity Capacity of each bounded ingest queue.\n# TYPE liftoff_queue_capacity gauge\n");
    for q in &queues {
        let _ = writeln!(
            out,
            "liftoff_queue_capacity{{queue=\"{}\"}} {}",
            escape(&q.name),
            q.capacity
        );
    }
    let sys = state.monitoring.system.get();
    out.push_str("# HELP liftoff_process_resident_memory_bytes Resident memory of the Liftoff process.\n# TYPE liftoff_process_resident_memory_bytes gauge\n");
    let _ = writeln!(
        out,
        "liftoff_process_resident_memory_bytes {}",
        (sys.process_rss_mb * 1024.0 * 1024.0).round()
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
}
