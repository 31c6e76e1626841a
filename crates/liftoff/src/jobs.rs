//! Background jobs: each runs on an interval until shutdown and reports to the job registry.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use liftoff_core::jobs::JobRegistry;
use liftoff_core::lease::Leadership;
use liftoff_core::monitoring::service::Retention;
use liftoff_http::state::AppState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which replicas run a job.
#[derive(Clone)]
pub enum Runs {
    /// Every replica: work on this process's own buffers and readings.
    Everywhere,
    /// Only the replica holding the singleton lease: work on shared state that must happen
    /// once (a check, a rollout step, a notification, a compaction).
    OnLeaseHolder(Arc<Leadership>),
}

/// Runs `work` every `every` until `stop` fires on every replica, recording each run in
/// `registry`.
pub fn spawn<F, Fut>(
    registry: &JobRegistry,
    name: &'static str,
    every: Duration,
    stop: CancellationToken,
    work: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<String, String>> + Send,
{
    spawn_on(registry, Runs::Everywhere, name, every, stop, work)
}

/// Runs `work` every `every` until `stop` fires on the replicas `runs` names, recording each
/// run (and each tick passed up) in `registry`.
pub fn spawn_on<F, Fut>(
    registry: &JobRegistry,
    runs: Runs,
    name: &'static str,
    every: Duration,
    stop: CancellationToken,
    work: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<String, String>> + Send,
{
    registry.register(name, every.as_secs());
    if matches!(runs, Runs::OnLeaseHolder(_)) {
        registry.mark_singleton(name);
    }
    let registry = registry.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; skip it so start-up stays fast.
        ticker.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Runs::OnLeaseHolder(leader) = &runs
                && !leader.held()
            {
                registry.record_standby(name);
                continue;
            }
            let started = Utc::now();
            let clock = Instant::now();
            let outcome = work().await;
            let ms = clock.elapsed().as_secs_f64() * 1000.0;
            match &outcome {
                Ok(summary) => tracing::debug!(job = name, ms, summary = %summary, "Job ran."),
                Err(e) => tracing::warn!(job = name, ms, error = %e, "Job failed."),
            }
            registry.record(name, started, ms, outcome.err());
        }
    })
}

/// Every job Liftoff runs, started together and stopped by `stop`.
pub fn start_all(
    sampler: Arc<crate::system::Sampler>,
    state: &AppState,
    retention: Retention,
    event_retention_days: u32,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let registry = &state.jobs;
    let users = state.users.clone();
    let flags = state.flags.clone();
    let monitoring = state.monitoring.clone();
    let operations = state.operations.clone();
    let reload = flags.clone();
    let rollouts = flags.clone();
    let compactor = monitoring.clone();
    let sampled = monitoring.clone();
    let resources = monitoring.clone();
    let one = Runs::OnLeaseHolder(state.leadership.clone());
    vec![
        spawn_on(
            registry,
            one.clone(),
            "request-rollups",
            Duration::from_secs(300),
            stop.clone(),
            move || {
                let monitoring = compactor.clone();
                async move {
                    monitoring
                        .compact(chrono::Utc::now(), retention)
                        .await
                        .map_err(|e| e.to_string())
                }
            },
        ),
        // Operations compact like requests (minutes → hours → days) and drop old error and
        // user rows.
        spawn_on(
            registry,
            one.clone(),
            "operation-rollups",
            Duration::from_secs(300),
            stop.clone(),
            move || {
                let operations = operations.clone();
                async move {
                    operations
                        .compact(chrono::Utc::now(), retention)
                        .await
                        .map_err(|e| e.to_string())
                }
            },
        ),
        spawn(
            registry,
            "own-request-metrics",
            Duration::from_secs(10),
            stop.clone(),
            move || {
                let monitoring = monitoring.clone();
                async move {
                    monitoring
                        .flush_own()
                        .await
                        .map(|n| format!("{n} own requests recorded"))
                        .map_err(|e| e.to_string())
                }
            },
        ),
        spawn(
            registry,
            "system-sampler",
            Duration::from_secs(5),
            stop.clone(),
            move || {
                let sampler = sampler.clone();
                let monitoring = sampled.clone();
                async move {
                    let s = tokio::task::spawn_blocking(move || sampler.sample())
                        .await
                        .map_err(|e| e.to_string())?;
                    monitoring.note_own_resources(&s);
                    Ok(format!(
                        "cpu {:.0}%, memory {:.0}%",
                        s.cpu.percent, s.memory.percent
                    ))
                }
            },
        ),
        spawn(
            registry,
            "resource-history",
            Duration::from_secs(60),
            stop.clone(),
            move || {
                let monitoring = resources.clone();
                async move {
                    monitoring
                        .flush_resources()
                        .await
                        .map(|n| format!("{n} resource hours written"))
                        .map_err(|e| e.to_string())
                }
            },
        ),
        spawn_on(
            registry,
            one.clone(),
            "session-cleanup",
            Duration::from_secs(600),
            stop.clone(),
            move || {
                let users = users.clone();
                async move {
                    users
                        .purge_expired_sessions()
                        .await
                        .map(|n| format!("{n} expired sessions removed"))
                        .map_err(|e| e.to_string())
                }
            },
        ),
        // Picks up flag changes made through other replicas sharing the store.
        spawn(
            registry,
            "flag-sync",
            Duration::from_secs(1),
            stop.clone(),
            move || {
                let flags = reload.clone();
                async move {
                    flags
                        .reload_if_changed()
                        .await
                        .map(|changed| if changed { "reloaded" } else { "unchanged" }.to_owned())
                        .map_err(|e| e.to_string())
                }
            },
        ),
        spawn_on(
            registry,
            one.clone(),
            // Often enough for a guarded plan's checks (60 s by default); a pass with no
            // active plan is one read.
            "flag-rollouts",
            Duration::from_secs(5),
            stop.clone(),
            move || {
                let flags = rollouts.clone();
                async move { flags.advance_rollouts().await.map_err(|e| e.to_string()) }
            },
        ),
        spawn(
            registry,
            "flag-evaluation-counts",
            Duration::from_secs(60),
            stop.clone(),
            move || {
                let flags = flags.clone();
                async move {
                    flags
                        .flush_evaluation_counts()
                        .await
                        .map(|n| format!("{n} flags counted"))
                        .map_err(|e| e.to_string())
                }
            },
        ),
        experiment_exposures(registry, state.experiments.clone(), stop.clone()),
        event_retention(
            registry,
            one.clone(),
            state.events.clone(),
            event_retention_days,
            stop,
        ),
        event_sealing(registry, one.clone(), state.events.clone(), stop),
        analytics_table(registry, state.insights.clone(), stop),
        uptime_checks(registry, one.clone(), state.uptime.clone(), stop),
        uptime_retention(registry, one.clone(), state.uptime.clone(), stop),
        alert_evaluation(registry, one.clone(), state.alerts.clone(), stop),
        alert_delivery(registry, one.clone(), state.alerts.clone(), stop),
        report_schedules(registry, one.clone(), state.clone(), stop),
    ]
}

/// Generates, archives and queues the report schedules that are due. Each period is keyed,
/// so replicas running this side by side, or a restart in the middle, send it once.
fn report_schedules(
    registry: &JobRegistry,
    runs: Runs,
    state: AppState,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    spawn_on(
        registry,
        runs,
        "report-schedules",
        Duration::from_secs(5),
        stop.clone(),
        move || {
            let state = state.clone();
            async move {
                let external_url = state.alerts.settings().external_url.clone();
                state
                    .reports
                    .run_due(
                        &state.sources(),
                        &state.alerts,
                        &state.settings.report_targets,
                        state.settings.instance_monthly_cost,
                        &external_url,
                    )
                    .await
                    .map(|n| format!("{n} scheduled reports delivered"))
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// Starts due uptime checks every second (each monitor keeps its own interval).
fn uptime_checks(
    registry: &JobRegistry,
    runs: Runs,
    uptime: liftoff_core::uptime::UptimeService,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let checker = crate::uptime_checker::Checker::new(uptime);
    spawn_on(
        registry,
        runs,
        "uptime-checks",
        Duration::from_secs(1),
        stop.clone(),
        move || {
            let checker = checker.clone();
            async move { checker.tick().await }
        },
    )
}

/// Drops raw uptime checks after a day, hourly rollups after 30 days, daily after a year.
fn uptime_retention(
    registry: &JobRegistry,
    runs: Runs,
    uptime: liftoff_core::uptime::UptimeService,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    spawn_on(
        registry,
        runs,
        "uptime-retention",
        Duration::from_secs(3600),
        stop.clone(),
        move || {
            let uptime = uptime.clone();
            async move {
                uptime
                    .purge(Utc::now())
                    .await
                    .map(|n| format!("{n} uptime rows removed"))
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// Raw-event retention (`--event-retention-days`): deletes events older than the window. Runs
/// hourly rather than daily so a server restarted more often than once a day still purges; a
/// run with nothing to delete is one index probe.
fn event_retention(
    registry: &JobRegistry,
    runs: Runs,
    events: liftoff_core::analytics::EventsService,
    days: u32,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    spawn_on(
        registry,
        runs,
        "event-retention",
        Duration::from_secs(3600),
        stop.clone(),
        move || {
            let events = events.clone();
            async move {
                events
                    .purge(Utc::now().timestamp_millis(), days)
                    .await
                    .map(|n| format!("{n} events older than {days} days removed"))
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// Evaluates every alert rule (`--alert-interval-ms`, 15 s by default). With several replicas on
/// PostgreSQL only the lease holder evaluates.
fn alert_evaluation(
    registry: &JobRegistry,
    runs: Runs,
    alerts: liftoff_core::alerts::AlertsService,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let every = alerts.settings().interval;
    spawn_on(
        registry,
        runs,
        "alert-evaluation",
        every,
        stop.clone(),
        move || {
            let alerts = alerts.clone();
            async move { alerts.evaluate(Utc::now()).await.map_err(|e| e.to_string()) }
        },
    )
}

/// Sends what is due in the notification outbox, retrying with backoff.
fn alert_delivery(
    registry: &JobRegistry,
    runs: Runs,
    alerts: liftoff_core::alerts::AlertsService,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let every = alerts.settings().interval.min(Duration::from_secs(5));
    spawn_on(
        registry,
        runs,
        "notification-delivery",
        every,
        stop.clone(),
        move || {
            let alerts = alerts.clone();
            async move {
                alerts
                    .deliver_due(Utc::now())
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// Seals finished days of product events into encoded segments (a few bytes per event instead
/// of a row); late events are sealed as further parts on the next run.
/// Keeps the analytics table current: built at start, so the first query finds it loaded
/// while every other route answers at once, then the new events appended every second, so a
/// query under ingest never waits for a refresh. Every replica keeps its own.
fn analytics_table(
    registry: &JobRegistry,
    insights: Arc<dyn liftoff_core::analytics::insights::AnalyticsQueries>,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let warm = insights.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.keep_fresh().await {
            tracing::warn!(error = %e, "Loading the analytics table failed; the next refresh tries again.");
        }
    });
    spawn(
        registry,
        "analytics-table",
        Duration::from_secs(1),
        stop.clone(),
        move || {
            let insights = insights.clone();
            async move { insights.keep_fresh().await.map_err(|e| e.to_string()) }
        },
    )
}

fn event_sealing(
    registry: &JobRegistry,
    runs: Runs,
    events: liftoff_core::analytics::EventsService,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    spawn_on(
        registry,
        runs,
        "event-sealing",
        Duration::from_secs(600),
        stop.clone(),
        move || {
            let events = events.clone();
            async move {
                events
                    .seal_finished_days(Utc::now().timestamp_millis())
                    .await
                    .map(|n| format!("{n} events sealed"))
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// Writes observed exposures every second, and rereads which flags are under a running
/// experiment every 10 s (an experiment started, ended or stopped through another replica).
fn experiment_exposures(
    registry: &JobRegistry,
    experiments: liftoff_core::experiments::ExperimentService,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    spawn(
        registry,
        "experiment-exposures",
        Duration::from_secs(1),
        stop,
        move || {
            let (experiments, ticks) = (experiments.clone(), ticks.clone());
            async move {
                if ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10 == 0 {
                    experiments.reload().await.map_err(|e| e.to_string())?;
                }
                experiments
                    .flush_exposures()
                    .await
                    .map(|n| format!("{n} exposures written"))
                    .map_err(|e| e.to_string())
            }
        },
    )
}
