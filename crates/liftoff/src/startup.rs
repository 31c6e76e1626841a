//! Wiring: open the stores, bootstrap first-start credentials, build the services, serve until
//! a signal, then shut down in order (stop accepting, finish requests, stop jobs, flush stores).

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use liftoff_core::analytics::EventsService;
use liftoff_core::auth::{Actor, KeyName, KeyService, Scope};
use liftoff_core::flags::FlagService;
use liftoff_core::jobs::JobRegistry;
use liftoff_core::monitoring::MonitoringService;
use liftoff_core::monitoring::operations::service::OperationsService;
use liftoff_core::secret::random_token;
use liftoff_core::store::StateStore;
use liftoff_core::users::{Role, UserService};
use liftoff_http::{AppState, HttpSettings, Services};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::jobs;

/// Opens the state store named by the settings, creating the data directory if needed.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn StateStore>> {
    create_private_dir(&settings.data)?;
    liftoff_store::open_state(settings.state_url.as_deref(), &settings.data)
        .await
        .context("cannot open the state store (check --state-url / --data)")
}

/// Opens every store `serve` needs.
pub async fn open_stores(settings: &Settings) -> anyhow::Result<liftoff_store::Stores> {
    create_private_dir(&settings.data)?;
    liftoff_store::open_stores(settings.state_url.as_deref(), &settings.data)
        .await
        .context("cannot open the stores (check --state-url / --data)")
}

/// Everything `serve` needs, built and bootstrapped.
pub struct Built {
    pub state: AppState,
    pub data_dir: std::path::PathBuf,
    pub metrics_retention: liftoff_core::monitoring::service::Retention,
    pub event_retention_days: u32,
}

pub async fn build(settings: &Settings) -> anyhow::Result<Built> {
    let stores = open_stores(settings).await?;
    let store = stores.state.clone();
    let keys = KeyService::new(store.clone(), settings.admin_token.as_deref());
    let users = UserService::new(
        store.clone(),
        chrono::Duration::hours(i64::from(settings.session_ttl_hours)),
    );
    bootstrap_admin_token(settings, &store, &keys).await?;
    bootstrap_admin_user(settings, &users).await?;
    let jobs = JobRegistry::default();
    // Every accepted batch is answered only after its commit, so once the server has drained
    // its requests the writer holds nothing; its task needs no joining.
    let (monitoring, _writer) = MonitoringService::start(stores.metrics.clone(), &jobs)
        .await
        .context("opening request metrics")?;
    // Like the request writer: drained once the server has answered every accepted batch.
    let (operations, _op_writer) = OperationsService::start(stores.operations.clone(), &jobs)
        .await
        .context("opening operation metrics")?;
    // Like the request writer: every accepted batch is answered after its commit.
    let (events, _event_writer) = EventsService::start(stores.events.clone(), &jobs);
    let insights = std::sync::Arc::new(liftoff_core::analytics::insights::InsightsService::new(
        stores.events.clone(),
    ));
    let uptime = liftoff_core::uptime::UptimeService::new(
        store.clone(),
        settings.uptime_min_interval_seconds,
    );
    let incidents = liftoff_core::incidents::IncidentsService::new(
        store.clone(),
        stores.metrics.clone(),
        stores.events.clone(),
    );
    // Alert transitions join incidents; `uptime_failing` rules read the monitors.
    let alerts = build_alerts(settings, &store, &monitoring, &operations)
        .await?
        .with_listener(Arc::new(incidents.clone()))
        .with_uptime(Arc::new(uptime.clone()))
        .with_events(insights.clone());
    // Gradual rollouts pause while a critical alert fires.
    let flags = FlagService::start(
        store.clone(),
        Arc::new(alerts.clone()),
        settings.stale_flag_days,
    )
    .await
    .context("loading flags")?;
    let http = HttpSettings {
        max_body_bytes: settings.max_body_bytes,
        secure_cookies: settings.secure_cookies,
        rate_limit_per_second: settings.rate_limit_per_second,
        rate_limit_burst: settings.rate_limit_burst,
        ingest_rate_limit_per_second: settings.ingest_rate_limit_per_second,
    };
    Ok(Built {
        data_dir: settings.data.clone(),
        metrics_retention: settings.metrics_retention,
        event_retention_days: settings.event_retention_days,
        state: AppState::new(
            Services {
                store,
                keys,
                users,
                flags,
                monitoring,
                operations,
                events,
                insights,
                jobs,
                uptime,
                incidents,
                alerts,
            },
            http,
        ),
    })
}

/// The alerts service with its notifier and timings; creates the default rules on first start.
async fn build_alerts(
    settings: &Settings,
    store: &Arc<dyn StateStore>,
    monitoring: &MonitoringService,
    operations: &OperationsService,
) -> anyhow::Result<liftoff_core::alerts::AlertsService> {
    let alert_settings = liftoff_core::alerts::AlertSettings {
        interval: settings.alert_interval,
        group_wait: settings.alert_group_wait,
        retry_base: settings.alert_retry_base,
        external_url: format!("http://{}", settings.listen),
        ..Default::default()
    };
    let alerts = liftoff_core::alerts::AlertsService::new(
        store.clone(),
        monitoring.clone(),
        operations.clone(),
        Arc::new(crate::notify::HttpSmtpNotifier::new()?),
        alert_settings,
    );
    alerts
        .ensure_defaults()
        .await
        .context("creating the default alert rules")?;
    Ok(alerts)
}

/// Serves on `listener` until `shutdown` completes, then drains and flushes.
pub async fn serve(
    listener: TcpListener,
    built: Built,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = built.state;
    let stop_jobs = CancellationToken::new();
    let sampler = Arc::new(crate::system::Sampler::new(
        built.data_dir.clone(),
        state.monitoring.system.clone(),
    ));
    sampler.sample();
    let job_handles = jobs::start_all(
        sampler,
        &state,
        built.metrics_retention,
        built.event_retention_days,
        &stop_jobs,
    );
    let app = liftoff_http::app(state.clone());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = state.store.backend(), "listening on http://{addr}");
    let accepting = state.accepting.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        accepting.store(false, Ordering::Relaxed);
        tracing::info!("Shutting down: finishing requests in flight.");
    })
    .await
    .context("the HTTP server failed")?;
    stop_jobs.cancel();
    for handle in job_handles {
        let _ = handle.await;
    }
    if let Err(e) = state.alerts.release_lease().await {
        tracing::warn!(error = %e, "Could not release the alerts lease; another replica takes over when it expires.");
    }
    // Jobs are stopped; write what they would have written next.
    if let Err(e) = state.flags.flush_evaluation_counts().await {
        tracing::warn!(error = %e, "Could not write the last flag evaluation counts.");
    }
    if let Err(e) = state.monitoring.flush_own().await {
        tracing::warn!(error = %e, "Could not record Liftoff's last own requests.");
    }
    state
        .monitoring
        .close()
        .await
        .context("flushing the metrics store")?;
    state
        .events
        .close()
        .await
        .context("flushing the events store")?;
    state
        .store
        .close()
        .await
        .context("flushing the state store")?;
    tracing::info!("Stopped cleanly.");
    Ok(())
}

/// A future that completes on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled, so a signal during start-up is not lost.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

pub async fn run(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let signal = shutdown_signal()?;
    let built = build(&settings).await?;
    if demo {
        crate::demo::seed(&built.state).await?;
    }
    let listener = TcpListener::bind(settings.listen).await.with_context(|| {
        format!("cannot listen on {}: is another process using it? Choose another address with --listen", settings.listen)
    })?;
    serve(listener, built, signal).await
}

/// Creates `dir` (and parents) readable only by this user when it is new.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Writes a secret readable only by this user (mode 0600).
pub fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // The mode above applies only to a new file; an existing one is narrowed too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

/// Without `LIFTOFF_ADMIN_TOKEN` and without any active admin key, creates one, prints it once
/// and writes it to `<data>/admin-token`. This is also the way back in after every admin key
/// was revoked: restart without the variable.
async fn bootstrap_admin_token(
    settings: &Settings,
    store: &Arc<dyn StateStore>,
    keys: &KeyService,
) -> anyhow::Result<()> {
    if settings.admin_token.is_some() || store.count_active_keys(Some(Scope::Admin)).await? > 0 {
        return Ok(());
    }
    let name = KeyName::parse("admin (first start)").context("key name")?;
    let created = keys
        .create(
            &Actor::System,
            name,
            Scope::Admin,
            Some("first start: no admin key existed".into()),
        )
        .await
        .context("creating the first admin key")?;
    let path = settings.data.join("admin-token");
    write_secret(&path, &created.token)?;
    println!(
        "Liftoff admin API token (shown once; also saved to {}):\n  {}",
        path.display(),
        created.token
    );
    Ok(())
}

/// With no dashboard users at all, creates `admin` with `LIFTOFF_ADMIN_PASSWORD` or a generated
/// password written to `<data>/admin-password`.
async fn bootstrap_admin_user(settings: &Settings, users: &UserService) -> anyhow::Result<()> {
    if users.count().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) => (p.clone(), false),
        None => (random_token(18), true),
    };
    users
        .create(&Actor::System, "admin", &password, Role::Admin)
        .await
        .context("creating the first dashboard user")?;
    if generated {
        let path = settings.data.join("admin-password");
        write_secret(&path, &password)?;
        println!(
            "Dashboard user `admin` created; password (shown once; also saved to {}):\n  {password}",
            path.display()
        );
    } else {
        tracing::info!(
            "Dashboard user `admin` created with the password from LIFTOFF_ADMIN_PASSWORD."
        );
    }
    Ok(())
}
