//! What every handler can reach: the domain services, never the SQL behind them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use liftoff_core::analytics::EventsService;
use liftoff_core::analytics::insights::AnalyticsQueries;
use liftoff_core::audit::AuditService;
use liftoff_core::auth::KeyService;
use liftoff_core::flags::FlagService;
use liftoff_core::health::HealthService;
use liftoff_core::jobs::JobRegistry;
use liftoff_core::monitoring::MonitoringService;
use liftoff_core::monitoring::operations::service::OperationsService;
use liftoff_core::ports::StateStore;
use liftoff_core::users::UserService;

use crate::mw::ratelimit::RateLimiter;

/// Settings the HTTP layer needs, resolved by the binary from config.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest accepted request body for the JSON API, in bytes.
    pub max_body_bytes: usize,
    /// Mark cookies `Secure` (set when Liftoff is served over HTTPS).
    pub secure_cookies: bool,
    /// Requests per second per API key (0 = unlimited) and the burst allowed.
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: f64,
    /// The same for `ingest` keys, which one client app shares among all its users; bursts of
    /// twice the rate.
    pub ingest_rate_limit_per_second: f64,
    /// Failed authentications allowed per client IP per minute before 429 (0 = unlimited).
    pub failed_auth_per_minute: f64,
    /// One app instance's monthly cost, for scaling recommendations.
    pub instance_monthly_cost: Option<f64>,
    /// What the weekly report judges uptime, average response and errors against.
    pub report_targets: liftoff_core::reports::targets::Targets,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            secure_cookies: false,
            rate_limit_per_second: 200.0,
            rate_limit_burst: 400.0,
            ingest_rate_limit_per_second: 10_000.0,
            failed_auth_per_minute: 120.0,
            instance_monthly_cost: None,
            report_targets: Default::default(),
        }
    }
}

/// The domain services the binary builds and hands to the HTTP layer.
pub struct Services {
    pub store: Arc<dyn StateStore>,
    pub keys: KeyService,
    pub users: UserService,
    pub flags: FlagService,
    pub monitoring: MonitoringService,
    pub operations: OperationsService,
    pub events: EventsService,
    pub insights: Arc<dyn AnalyticsQueries>,
    pub jobs: JobRegistry,
    pub uptime: liftoff_core::uptime::UptimeService,
    pub incidents: liftoff_core::incidents::IncidentsService,
    pub alerts: liftoff_core::alerts::AlertsService,
    /// The clock every service was given (the launch service takes it here).
    pub clock: Arc<dyn liftoff_core::clock::Clock>,
    pub experiments: liftoff_core::experiments::ExperimentService,
    pub deployments: liftoff_core::deployments::DeploymentService,
    pub reports: liftoff_core::reports::ReportsService,
    /// This replica's claim on the lease the singleton jobs run under.
    pub leadership: Arc<liftoff_core::lease::Leadership>,
}

/// What every handler shares, behind one `Arc`. Axum clones the state for each extractor
/// and layer that asks for it, several times a request; cloning every service's `Arc`s each
/// time was 40 % of the CPU of an OFREP bulk answer (atomic counts bouncing between cores).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Clone)]
pub struct Shared {
    pub keys: KeyService,
    pub flags: FlagService,
    pub monitoring: MonitoringService,
    pub operations: OperationsService,
    /// Product events and persons.
    pub events: EventsService,
    /// Funnels, retention, active users… over the events.
    pub insights: Arc<dyn AnalyticsQueries>,
    /// Uptime monitors and their checks.
    pub uptime: liftoff_core::uptime::UptimeService,
    /// Incidents, their timeline, postmortem and action items.
    pub incidents: liftoff_core::incidents::IncidentsService,
    /// Previous counts of cumulative OTLP histograms, to record only their increase.
    pub otlp: Arc<liftoff_core::monitoring::otlp::OtlpState>,
    pub users: UserService,
    /// The store itself, for the process's lifecycle (closing it at shutdown); handlers read
    /// only through services (`audit`, `health` and the others; a test keeps it so).
    pub store: Arc<dyn StateStore>,
    /// The audit trail.
    pub audit: AuditService,
    /// The state store's reachability, latency and schema.
    pub health: HealthService,
    pub jobs: JobRegistry,
    /// Alert rules, alerts, silences, maintenance windows, channels and the outbox.
    pub alerts: liftoff_core::alerts::AlertsService,
    /// The soft-launch cap, maintenance mode, phases and feedback.
    pub launch: liftoff_core::launch::LaunchService,
    /// A/B experiments: definitions, exposures, results.
    pub experiments: liftoff_core::experiments::ExperimentService,
    /// Recorded deployments and their verification.
    pub deployments: liftoff_core::deployments::DeploymentService,
    /// Report schedules and the archive of generated reports.
    pub reports: liftoff_core::reports::ReportsService,
    /// Whether this replica runs the singleton jobs.
    pub leadership: Arc<liftoff_core::lease::Leadership>,
    pub settings: Arc<HttpSettings>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) ingest_limiter: Arc<RateLimiter>,
    /// Failed dashboard sign-ins per client and per (client, user name).
    pub(crate) login_limiter: Arc<crate::ui::login::LoginThrottle>,
    /// Failed authentications per client IP: a client guessing keys is slowed to 429s.
    pub(crate) auth_failures: Arc<RateLimiter>,
    /// What the HTTP edge has done (connections, timeouts, refusals), for `/metrics`.
    pub edge: Arc<crate::server::EdgeStats>,
    pub started: Instant,
    /// False once shutdown begins, so `/readyz` tells load balancers to stop sending traffic.
    pub accepting: Arc<AtomicBool>,
    /// Changes announced by the state store (other replicas' flag and launch changes, and this
    /// one's), handled as they came.
    pub change_notices: Arc<std::sync::atomic::AtomicU64>,
}

impl AppState {
    pub fn new(services: Services, settings: HttpSettings) -> Self {
        let Services {
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
        } = services;
        Self(Arc::new(Shared {
            limiter: Arc::new(RateLimiter::new(
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            )),
            ingest_limiter: Arc::new(RateLimiter::new(
                settings.ingest_rate_limit_per_second,
                settings.ingest_rate_limit_per_second * 2.0,
            )),
            login_limiter: Arc::default(),
            // A quarter of the minute's budget at once, then the rest spread over the minute.
            auth_failures: Arc::new(RateLimiter::new(
                settings.failed_auth_per_minute / 60.0,
                (settings.failed_auth_per_minute / 4.0).max(1.0),
            )),
            edge: Arc::default(),
            keys,
            users,
            flags,
            monitoring,
            operations,
            events,
            insights,
            uptime,
            incidents,
            otlp: Arc::default(),
            audit: AuditService::new(store.clone() as Arc<dyn liftoff_core::audit::AuditStore>),
            health: HealthService::new(store.clone() as Arc<dyn liftoff_core::store::StoreHealth>),
            launch: liftoff_core::launch::LaunchService::new(
                store.clone() as Arc<dyn liftoff_core::launch::LaunchStore>,
                clock,
            )
            .with_notices(Arc::new(alerts.clone()))
            .with_windows(Arc::new(alerts.clone())),
            store,
            jobs,
            alerts,
            experiments,
            deployments,
            reports,
            leadership,
            settings: Arc::new(settings),
            started: Instant::now(),
            accepting: Arc::new(AtomicBool::new(true)),
            change_notices: Arc::default(),
        }))
    }

    /// Adds a store to what `/health/detailed` and `/readyz` check (at start-up, before the
    /// state is shared).
    pub fn with_store_health(
        mut self,
        name: &'static str,
        store: Arc<dyn liftoff_core::store::StoreHealth>,
    ) -> Self {
        let shared = Arc::make_mut(&mut self.0);
        shared.health = shared.health.clone().with_store(name, store);
        self
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }
}

impl AppState {
    /// The services reports and the launch's figures are gathered from (API, dashboard and
    /// the report schedule alike).
    pub fn sources(&self) -> liftoff_core::sources::Sources<'_> {
        liftoff_core::sources::Sources {
            launch: &self.launch,
            monitoring: &self.monitoring,
            alerts: &self.alerts,
            uptime: &self.uptime,
            flags: &self.flags,
            health: &self.health,
            events: &*self.insights,
            incidents: &self.incidents,
            experiments: &self.experiments,
        }
    }

    /// Computes a report with this server's targets and instance cost, taking its turn.
    pub async fn report(
        &self,
        req: &liftoff_core::reports::ReportRequest,
    ) -> Result<liftoff_core::reports::Report, liftoff_core::reports::ReportError> {
        self.reports
            .compute(
                &self.sources(),
                req,
                &self.settings.report_targets,
                self.settings.instance_monthly_cost,
            )
            .await
    }

    /// Names the notification channel told of each admission (`None`: none), after checking
    /// it exists; answers the saved settings and the channel's name (API and dashboard alike).
    pub async fn set_admission_channel(
        &self,
        channel: Option<i64>,
        reason: Option<String>,
        actor: &liftoff_core::auth::Actor,
    ) -> Result<
        (liftoff_core::launch::store::LaunchSettings, Option<String>),
        liftoff_core::launch::LaunchError,
    > {
        use liftoff_core::alerts::AlertError;
        use liftoff_core::launch::LaunchError;
        let name = match channel {
            None => None,
            Some(id) => match self.alerts.channel(id).await {
                Ok(c) => Some(c.name),
                Err(AlertError::NotFound(_)) => {
                    return Err(LaunchError::Invalid(format!(
                        "`admission_channel`: there is no notification channel {id}; create one with POST /api/notifications/channels"
                    )));
                }
                Err(e) => return Err(LaunchError::Sources(e.to_string())),
            },
        };
        let saved = self
            .launch
            .set_admission_channel(channel, reason, actor)
            .await?;
        Ok((saved, name))
    }
}
