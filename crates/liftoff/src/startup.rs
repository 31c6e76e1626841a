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
use liftoff_core::outbound::OutboundPolicy;
use liftoff_core::ports::StateStore;
use liftoff_core::secret::{SecretBox, SecretKey, random_token};
use liftoff_core::users::{PasswordHashing, Role, UserService};
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
    let stores = liftoff_store::open_stores(
        settings.state_url.as_deref(),
        settings.events.as_ref(),
        &settings.data,
    )
    .await
    .context("cannot open the stores (check --state-url / --events-url / --data)")?;
    if let Some(ch) = &stores.clickhouse {
        tracing::info!(
            version = %ch.version,
            features = ch.features.describe(),
            "events in ClickHouse"
        );
    }
    Ok(stores)
}

/// Everything `serve` needs, built and bootstrapped.
pub struct Built {
    pub state: AppState,
    pub data_dir: std::path::PathBuf,
    pub metrics_retention: liftoff_core::monitoring::service::Retention,
    pub event_retention_days: u32,
    /// Limits of the HTTP edge.
    pub edge: liftoff_http::server::ServeOptions,
}

pub async fn build(settings: &Settings) -> anyhow::Result<Built> {
    let stores = open_stores(settings).await?;
    let store = stores.state.clone();
    // One clock for every service: the composition root is the only place that names it.
    let clock = liftoff_core::clock::system();
    let keys =
        KeyService::new(store.clone(), settings.admin_token.as_deref()).with_clock(clock.clone());
    let users = UserService::new(
        store.clone(),
        chrono::Duration::hours(i64::from(settings.session_ttl_hours)),
    )
    .with_clock(clock.clone())
    .with_password_hashing(PasswordHashing::new(settings.password_hash_concurrency));
    // The dummy hash unknown user names are verified against, computed before the first sign-in.
    users.password_hashing().warm_up().await;
    bootstrap_admin_token(settings, &store, &keys).await?;
    bootstrap_admin_user(settings, &users).await?;
    let jobs = JobRegistry::default();
    // Every accepted batch is answered only after its commit, so once the server has drained
    // its requests the writer holds nothing; its task needs no joining.
    let (monitoring, _writer) = MonitoringService::start(stores.metrics.clone(), &jobs)
        .await
        .context("opening request metrics")?;
    let monitoring = monitoring.with_clock(clock.clone());
    // Like the request writer: drained once the server has answered every accepted batch.
    let (operations, _op_writer) = OperationsService::start(stores.operations.clone(), &jobs)
        .await
        .context("opening operation metrics")?;
    let operations = operations.with_clock(clock.clone());
    // Like the request writer: every accepted batch is answered after its commit.
    let (events, _event_writer) = EventsService::start(
        stores.events.clone(),
        store.clone() as Arc<dyn liftoff_core::audit::AuditStore>,
        &jobs,
    );
    // ClickHouse answers what it can itself; otherwise the in-process engine over the store.
    let insights: Arc<dyn liftoff_core::analytics::insights::AnalyticsQueries> =
        match &stores.clickhouse {
            Some(ch) => ch.queries.clone(),
            None => Arc::new(
                liftoff_core::analytics::insights::InsightsService::new(stores.events.clone())
                    .with_commits(events.commits())
                    .with_table_file(
                        settings
                            .data
                            .join(liftoff_core::analytics::table_file::TABLE_FILE),
                    ),
            ),
        };
    let outbound = Arc::new(settings.outbound_deny.clone());
    let secrets = Arc::new(load_secrets(settings)?);
    let uptime = liftoff_core::uptime::UptimeService::new(
        store.clone(),
        settings.uptime_min_interval_seconds,
    )
    .with_outbound(outbound.clone())
    .with_clock(clock.clone());
    let incidents = liftoff_core::incidents::IncidentsService::new(
        store.clone(),
        stores.metrics.clone(),
        stores.events.clone(),
    )
    .with_clock(clock.clone());
    // Alert transitions join incidents; `uptime_failing` rules read the monitors.
    let alerts = build_alerts(
        settings,
        &store,
        &monitoring,
        &operations,
        &outbound,
        &secrets,
        &clock,
    )
    .await?
    .with_listener(Arc::new(incidents.clone()))
    .with_uptime(Arc::new(uptime.clone()))
    .with_events(insights.clone());
    // Gradual rollouts pause while a critical alert fires.
    let flags = FlagService::start(
        store.clone(),
        liftoff_core::audit::AuditService::new(store.clone()),
        Arc::new(alerts.clone()),
        settings.stale_flag_days,
    )
    .await
    .context("loading flags")?
    .with_clock(clock.clone())
    .with_traffic(Arc::new(monitoring.clone()));
    let deployments =
        liftoff_core::deployments::DeploymentService::new(store.clone(), monitoring.clone())
            .with_clock(clock.clone());
    // A guardrail regression and a bad deployment are alerts like any other.
    let alerts = alerts
        .with_rollouts(Arc::new(flags.clone()))
        .with_deployments(Arc::new(deployments.clone()));
    let experiments = liftoff_core::experiments::ExperimentService::start(
        store.clone(),
        flags.clone(),
        insights.clone(),
        monitoring.clone(),
    )
    .await
    .context("loading experiments")?
    .with_clock(clock.clone());
    let http = HttpSettings {
        max_body_bytes: settings.max_body_bytes,
        secure_cookies: settings.secure_cookies,
        rate_limit_per_second: settings.rate_limit_per_second,
        rate_limit_burst: settings.rate_limit_burst,
        ingest_rate_limit_per_second: settings.ingest_rate_limit_per_second,
        failed_auth_per_minute: f64::from(settings.failed_auth_per_minute),
        instance_monthly_cost: settings.instance_monthly_cost,
        report_targets: settings.report_targets,
    };
    let reports = liftoff_core::reports::ReportsService::new(store.clone(), clock.clone());
    let leadership = Arc::new(liftoff_core::lease::Leadership::new(
        store.clone() as Arc<dyn liftoff_core::lease::LeaseStore>,
        liftoff_core::lease::Leadership::holder_name(),
        settings.lease_ttl,
    ));
    let mut state = AppState::new(
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
            clock,
            experiments,
            deployments,
            reports,
            leadership,
        },
        http,
    );
    if let Some(ch) = &stores.clickhouse {
        state = state.with_store_health(
            "events",
            ch.store.clone() as Arc<dyn liftoff_core::store::StoreHealth>,
        );
    }
    Ok(Built {
        edge: settings.edge.clone(),
        data_dir: settings.data.clone(),
        metrics_retention: settings.metrics_retention,
        event_retention_days: settings.event_retention_days,
        state,
    })
}

/// The alerts service with its notifier and timings; creates the default rules on first start.
async fn build_alerts(
    settings: &Settings,
    store: &Arc<dyn StateStore>,
    monitoring: &MonitoringService,
    operations: &OperationsService,
    outbound: &Arc<OutboundPolicy>,
    secrets: &Arc<SecretBox>,
    clock: &Arc<dyn liftoff_core::clock::Clock>,
) -> anyhow::Result<liftoff_core::alerts::AlertsService> {
    let alert_settings = liftoff_core::alerts::AlertSettings {
        interval: settings.alert_interval,
        group_wait: settings.alert_group_wait,
        retry_base: settings.alert_retry_base,
        external_url: settings.external_url.clone(),
        ..Default::default()
    };
    let alerts = liftoff_core::alerts::AlertsService::new(
        store.clone(),
        monitoring.clone(),
        operations.clone(),
        Arc::new(
            crate::notify::HttpSmtpNotifier::new(outbound.clone())?
                .with_reports(store.clone() as Arc<dyn liftoff_core::reports::ReportStore>),
        ),
        alert_settings,
    )
    .with_outbound(outbound.clone())
    .with_secrets(secrets.clone())
    .with_clock(clock.clone());
    alerts
        .ensure_defaults()
        .await
        .context("creating the default alert rules")?;
    let resealed = alerts
        .seal_stored_secrets()
        .await
        .context("encrypting stored channel secrets")?;
    if resealed.sealed > 0 {
        tracing::info!(
            channels = resealed.sealed,
            key_id = secrets.primary().id(),
            "Channel secrets stored in plaintext or under an older key are now encrypted."
        );
    }
    if resealed.unreadable.is_empty() {
        // Everything is under the current key: a key left by an interrupted rotation is done.
        let leftover = settings.data.join(NEW_SECRET_KEY_FILE);
        if leftover.exists() {
            std::fs::remove_file(&leftover)
                .with_context(|| format!("cannot remove {}", leftover.display()))?;
        }
    } else {
        tracing::warn!(
            channels = ?resealed.unreadable,
            "These notification channels were encrypted with a key this server does not have; their notifications fail until LIFTOFF_SECRET_KEY or <data>/secret-key holds that key."
        );
    }
    Ok(alerts)
}

/// Applies changes other replicas make as they are announced (PostgreSQL's `LISTEN`): flags are
/// reloaded when their revision moved, the launch settings' cache is dropped. Announcements
/// that arrive together are handled once. The `flag-sync` poll stays as the fallback.
fn follow_changes(state: &AppState) -> [tokio::task::JoinHandle<()>; 2] {
    use liftoff_core::changes::Topic;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Topic>(64);
    let store = state.store.clone();
    let feed = tokio::spawn(async move { store.follow_changes(tx).await });
    let (flags, launch, counter) = (
        state.flags.clone(),
        state.launch.clone(),
        state.change_notices.clone(),
    );
    let apply = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut topics = std::collections::HashSet::from([first]);
            let mut heard = 1;
            while let Ok(more) = rx.try_recv() {
                topics.insert(more);
                heard += 1;
            }
            counter.fetch_add(heard, Ordering::Relaxed);
            if topics.contains(&Topic::Launch) {
                launch.forget_cached();
            }
            if topics.contains(&Topic::Flags)
                && let Err(e) = flags.reload_if_changed().await
            {
                tracing::warn!(error = %e, "Could not reload flags after a change elsewhere; the poll retries.");
            }
        }
    });
    [feed, apply]
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
    // The lease is asked for before the jobs start, so a lone replica runs them from its
    // first tick; the keeper renews it from then on.
    state.leadership.renew().await;
    let lease_keeper = CancellationToken::new();
    let keeper = {
        let (leadership, stop) = (state.leadership.clone(), lease_keeper.clone());
        tokio::spawn(async move { leadership.keep(stop.cancelled_owned()).await })
    };
    let changes = follow_changes(&state);
    let job_handles = jobs::start_all(
        sampler,
        &state,
        built.metrics_retention,
        built.event_retention_days,
        &stop_jobs,
    );
    let app = liftoff_http::app(state.clone());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = state.store.backend(), replica = %state.leadership.status().holder, host = %liftoff_system::host_name(), "listening on http://{addr}");
    let accepting = state.accepting.clone();
    let mut edge = built.edge;
    edge.max_connections = fit_to_fd_limit(edge.max_connections);
    liftoff_http::server::serve(listener, app, edge, state.edge.clone(), async move {
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
    for task in changes {
        task.abort();
    }
    lease_keeper.cancel();
    let _ = keeper.await;
    if let Err(e) = state.leadership.release().await {
        tracing::warn!(error = %e, "Could not release the singleton lease; another replica takes over when it expires.");
    }
    // Jobs are stopped; write what they would have written next.
    if let Err(e) = state.flags.flush_evaluation_counts().await {
        tracing::warn!(error = %e, "Could not write the last flag evaluation counts.");
    }
    if let Err(e) = state.experiments.flush_exposures().await {
        tracing::warn!(error = %e, "Could not write the last experiment exposures.");
    }
    if let Err(e) = state.monitoring.flush_own().await {
        tracing::warn!(error = %e, "Could not record Liftoff's last own requests.");
    }
    if let Err(e) = state.monitoring.flush_resources().await {
        tracing::warn!(error = %e, "Could not write the last resource readings.");
    }
    // The analytics table, so the next start reads it instead of rebuilding it.
    if let Err(e) = state.insights.save().await {
        tracing::warn!(error = %e, "Could not keep the analytics table; the next start builds it from the stored events.");
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
    tracing::info!("Using {}.", settings.describe_stores());
    let built = build(&settings).await?;
    if demo {
        crate::demo::seed(&built.state)
            .await
            .with_context(|| format!("--demo with {}", settings.data.display()))?;
    }
    let listener = TcpListener::bind(settings.listen).await.with_context(|| {
        format!("cannot listen on {}: is another process using it? Choose another address with --listen", settings.listen)
    })?;
    serve(listener, built, signal).await
}

/// File descriptors kept for stores, outbound checks and logs beside client connections.
const RESERVED_FDS: u64 = 128;

/// Raises the soft open-files limit to the hard one, and keeps `max_connections` below it so
/// the server closes idle connections before `accept` runs out of descriptors.
fn fit_to_fd_limit(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
            && cur < max
        {
            limit.current = Some(max);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(error = %e, "Could not raise the open-files limit.");
            }
        }
        if let Some(soft) = getrlimit(Resource::Nofile).current {
            let room = soft.saturating_sub(RESERVED_FDS).max(16) as usize;
            if room < max_connections {
                tracing::warn!(
                    open_files_limit = soft,
                    max_connections = room,
                    "The open-files limit allows fewer connections than --max-connections; serving at most {room}. Raise `ulimit -n` for more."
                );
                return room;
            }
        }
    }
    max_connections
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

/// The file in the data directory holding the key that seals stored secrets.
pub const SECRET_KEY_FILE: &str = "secret-key";
/// The next key while `liftoff secrets rotate` runs; left only if it was interrupted.
pub const NEW_SECRET_KEY_FILE: &str = "secret-key.new";

fn read_key_file(path: &Path) -> anyhow::Result<Option<SecretKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::parse(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// The key that seals stored secrets: `LIFTOFF_SECRET_KEY`, else `<data>/secret-key`, created
/// on first use (mode 0600). Keys it replaces still open what they sealed until the next
/// start has sealed everything again: the key file when the setting is used, and the key of an
/// interrupted rotation.
pub fn load_secrets(settings: &Settings) -> anyhow::Result<SecretBox> {
    create_private_dir(&settings.data)?;
    let file = settings.data.join(SECRET_KEY_FILE);
    let from_file = read_key_file(&file)?;
    let mut secrets = match (&settings.secret_key, &from_file) {
        (Some(k), _) => SecretBox::new(k.clone()),
        (None, Some(k)) => SecretBox::new(k.clone()),
        (None, None) => {
            let k = SecretKey::generate();
            write_secret(&file, &k.encode())?;
            tracing::info!(path = %file.display(), key_id = k.id(), "Created the key that encrypts stored secrets; back it up with the database.");
            SecretBox::new(k)
        }
    };
    if let Some(k) = from_file {
        secrets = secrets.also_opening(k);
    }
    if let Some(k) = read_key_file(&settings.data.join(NEW_SECRET_KEY_FILE))? {
        secrets = secrets.also_opening(k);
    }
    Ok(secrets)
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
