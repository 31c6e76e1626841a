//! Settings of `liftoff serve` and `liftoff demo`: built-in defaults < TOML file (`--config`)
//! < `LIFTOFF_*` environment < command-line flags. Unknown keys are an error in the file and in
//! the environment alike, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, CommandFactory as _, ValueEnum};
use liftoff_core::monitoring::service::Retention;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Every setting, optional at each layer. The same struct is read from flags/environment (clap)
/// and from the TOML file (serde), so the two cannot drift apart.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, env = "LIFTOFF_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Data directory, created if missing [default: ./liftoff-data].
    #[arg(long, env = "LIFTOFF_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Where shared state lives: unset for SQLite in the data dir, or postgres://USER@HOST/DB.
    #[arg(long, env = "LIFTOFF_STATE_URL", value_name = "URL")]
    pub state_url: Option<String>,

    /// Where events live: unset for SQLite in the data dir (PostgreSQL with --state-url), or
    /// ClickHouse's HTTP interface, http://[USER[:PASSWORD]@]HOST:8123/DATABASE (the database
    /// is created; default `liftoff`).
    #[arg(long, env = "LIFTOFF_EVENTS_URL", value_name = "URL")]
    pub events_url: Option<String>,

    /// ClickHouse's password when --events-url names none. Prefer the variable to the flag:
    /// flags are visible in the process list.
    #[arg(
        long,
        env = "LIFTOFF_EVENTS_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub events_password: Option<String>,

    /// An admin API token that lives only in the environment. Prefer the variable to the flag:
    /// flags are visible in the process list.
    #[arg(
        long,
        env = "LIFTOFF_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Password of the `admin` dashboard user created on first start [default: generated and
    /// written to <data>/admin-password].
    #[arg(
        long,
        env = "LIFTOFF_ADMIN_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// The 32-byte key that encrypts stored secrets (webhook URLs, SMTP passwords), as base64
    /// or 64 hex digits. Prefer the variable to the flag [default: <data>/secret-key, created
    /// on first start with mode 0600].
    #[arg(
        long,
        env = "LIFTOFF_SECRET_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Destinations uptime checks, webhooks and SMTP must never connect to: comma-separated
    /// CIDRs, addresses and host names (`*.name` for every name under it), checked against
    /// every resolved address of every connection and redirect; "" denies nothing [default:
    /// 169.254.0.0/16, fe80::/10, fd00:ec2::254/128, 100.100.100.200/32,
    /// metadata.google.internal, metadata].
    #[arg(long, env = "LIFTOFF_OUTBOUND_DENY", value_name = "LIST")]
    pub outbound_deny: Option<String>,

    /// The address people reach the dashboard at, for links in notifications and reports
    /// (`https://liftoff.example.com`) [default: http:// and the listen address].
    #[arg(long, env = "LIFTOFF_EXTERNAL_URL", value_name = "URL")]
    pub external_url: Option<String>,

    /// Proxies and load balancers in front of Liftoff: comma-separated CIDRs and addresses.
    /// A request from one of them is counted against the client its `X-Forwarded-For` names
    /// (for per-client limits such as failed sign-ins); from anyone else the header is ignored
    /// [default: none].
    #[arg(long, env = "LIFTOFF_TRUSTED_PROXIES", value_name = "LIST")]
    pub trusted_proxies: Option<String>,

    /// Log format.
    #[arg(long, env = "LIFTOFF_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Days raw events are kept [default: 90].
    #[arg(long, env = "LIFTOFF_EVENT_RETENTION_DAYS", value_name = "DAYS")]
    pub event_retention_days: Option<u32>,

    /// Hours request and operation metrics are kept per minute before they are compacted to
    /// hours [default: 24].
    #[arg(long, env = "LIFTOFF_METRICS_MINUTE_HOURS", value_name = "HOURS")]
    pub metrics_minute_hours: Option<u32>,

    /// Days hourly metrics are kept before they are compacted to days [default: 30].
    #[arg(long, env = "LIFTOFF_METRICS_HOURLY_DAYS", value_name = "DAYS")]
    pub metrics_hourly_days: Option<u32>,

    /// Days daily metrics are kept [default: 365].
    #[arg(long, env = "LIFTOFF_METRICS_DAILY_DAYS", value_name = "DAYS")]
    pub metrics_daily_days: Option<u32>,

    /// Largest accepted API request body in bytes [default: 1048576].
    #[arg(long, env = "LIFTOFF_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Requests per second allowed per API key, 0 for no limit [default: 200].
    #[arg(long, env = "LIFTOFF_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub rate_limit_per_second: Option<f64>,

    /// Requests a key may send at once before the per-second limit applies [default: 400].
    #[arg(long, env = "LIFTOFF_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<f64>,

    /// Requests per second per `ingest` key (shared by every user of the app that ships it),
    /// 0 for no limit; bursts of twice that [default: 10000].
    #[arg(long, env = "LIFTOFF_INGEST_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub ingest_rate_limit_per_second: Option<f64>,

    /// Seconds a client has to send a request's head (line and headers), counted from the
    /// connection's start or the head's first byte; then the connection is closed [default: 10].
    #[arg(long, env = "LIFTOFF_HEADER_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub header_timeout_seconds: Option<u64>,

    /// Seconds a keep-alive connection may wait for its next request [default: 60].
    #[arg(long, env = "LIFTOFF_IDLE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub idle_timeout_seconds: Option<u64>,

    /// Longest pause, in seconds, while a request body is being received; a stalled body
    /// answers 408 [default: 15].
    #[arg(long, env = "LIFTOFF_BODY_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub body_timeout_seconds: Option<u64>,

    /// Slowest average rate a request body may arrive at, in bytes per second, after its first
    /// 5 seconds; 0 for none [default: 240].
    #[arg(long, env = "LIFTOFF_MIN_BODY_BYTES_PER_SECOND", value_name = "BYTES")]
    pub min_body_bytes_per_second: Option<u64>,

    /// Most open client connections; at the limit idle ones are closed to make room. Also kept
    /// below the process's file-descriptor limit [default: 10000].
    #[arg(long, env = "LIFTOFF_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most requests handled at once; more wait briefly, then answer 503 with Retry-After
    /// [default: 128].
    #[arg(long, env = "LIFTOFF_MAX_REQUESTS_IN_FLIGHT", value_name = "N")]
    pub max_requests_in_flight: Option<usize>,

    /// Longest wait, in milliseconds, for a request to start when the server is at
    /// --max-requests-in-flight, before it answers 503 [default: 2000].
    #[arg(long, env = "LIFTOFF_QUEUE_TIMEOUT_MS", value_name = "MS")]
    pub queue_timeout_ms: Option<u64>,

    /// Failed authentications (401) allowed per client IP address per minute before it gets
    /// 429; 0 for no limit [default: 120].
    #[arg(long, env = "LIFTOFF_FAILED_AUTH_PER_MINUTE", value_name = "N")]
    pub failed_auth_per_minute: Option<u32>,

    /// Seconds the lease the singleton jobs run under (uptime checks, rollouts, alert
    /// evaluation, notifications, report schedules, compaction, retention) lasts without
    /// renewal: with several replicas on PostgreSQL, another replica takes these jobs over
    /// within this and a third of it after the holder dies [default: 15; 3 to 300].
    #[arg(long, env = "LIFTOFF_LEASE_TTL_SECONDS", value_name = "SECONDS")]
    pub lease_ttl_seconds: Option<u32>,

    /// Monthly cost of one app instance, for the launch's scaling recommendations (any
    /// currency; unset: no cost figures).
    #[arg(long, env = "LIFTOFF_INSTANCE_MONTHLY_COST", value_name = "AMOUNT")]
    pub instance_monthly_cost: Option<f64>,

    /// The weekly report's uptime target, a fraction of passing checks [default: 0.999].
    #[arg(long, env = "LIFTOFF_TARGET_UPTIME", value_name = "FRACTION")]
    pub target_uptime: Option<f64>,

    /// The weekly report's average response time target, in milliseconds [default: 200].
    #[arg(long, env = "LIFTOFF_TARGET_AVG_RESPONSE_MS", value_name = "MS")]
    pub target_avg_response_ms: Option<f64>,

    /// The weekly report's error rate target, a fraction of requests answered 5xx
    /// [default: 0.01].
    #[arg(long, env = "LIFTOFF_TARGET_ERROR_RATE", value_name = "FRACTION")]
    pub target_error_rate: Option<f64>,

    /// How long a dashboard sign-in lasts, in hours [default: 12].
    #[arg(long, env = "LIFTOFF_SESSION_TTL_HOURS", value_name = "HOURS")]
    pub session_ttl_hours: Option<u32>,

    /// Days after which an unchanged flag that is fully rolled out, or not evaluated, is
    /// marked stale [default: 30].
    #[arg(long, env = "LIFTOFF_STALE_FLAG_DAYS", value_name = "DAYS")]
    pub stale_flag_days: Option<u32>,

    /// Password hashes (argon2id, 19 MiB each) computed at once; sign-ins beyond that are
    /// answered 429 after 100 ms instead of queueing [default: 2].
    #[arg(long, env = "LIFTOFF_PASSWORD_HASH_CONCURRENCY", value_name = "N")]
    pub password_hash_concurrency: Option<usize>,

    /// Mark cookies Secure; set when users reach Liftoff over HTTPS [default: false].
    #[arg(long, env = "LIFTOFF_SECURE_COOKIES", value_name = "BOOL")]
    pub secure_cookies: Option<bool>,

    /// The smallest uptime check interval accepted, in seconds (for tests) [default: 10].
    #[arg(
        long,
        env = "LIFTOFF_UPTIME_MIN_INTERVAL_SECONDS",
        value_name = "SECONDS",
        hide = true
    )]
    pub uptime_min_interval_seconds: Option<u32>,

    /// Milliseconds between alert evaluations (notifications are sent at least every 5 s, or
    /// this often if shorter) [default: 15000]. For tests.
    #[arg(
        long,
        env = "LIFTOFF_ALERT_INTERVAL_MS",
        value_name = "MS",
        hide = true
    )]
    pub alert_interval_ms: Option<u64>,

    /// Milliseconds a new alert's first notification waits for others of its group
    /// [default: 30000]. For tests.
    #[arg(
        long,
        env = "LIFTOFF_ALERT_GROUP_WAIT_MS",
        value_name = "MS",
        hide = true
    )]
    pub alert_group_wait_ms: Option<u64>,

    /// Milliseconds before a failed notification's first retry; each next retry waits twice as
    /// long [default: 10000]. For tests.
    #[arg(
        long,
        env = "LIFTOFF_ALERT_RETRY_BASE_MS",
        value_name = "MS",
        hide = true
    )]
    pub alert_retry_base_ms: Option<u64>,
}

macro_rules! layer {
    ($hi:expr, $lo:expr; $($field:ident),+) => {
        Overrides { $($field: $hi.$field.or($lo.$field)),+ }
    };
}

impl Overrides {
    /// `self` wins where it has a value.
    fn over(self, lower: Overrides) -> Overrides {
        layer!(self, lower; listen, data, state_url, events_url, events_password, admin_token, admin_password,
            secret_key, outbound_deny, external_url, trusted_proxies, log_format,
            event_retention_days, metrics_minute_hours, metrics_hourly_days, metrics_daily_days,
            max_body_bytes, rate_limit_per_second, rate_limit_burst,
            ingest_rate_limit_per_second, header_timeout_seconds, idle_timeout_seconds,
            body_timeout_seconds, min_body_bytes_per_second, max_connections, max_requests_in_flight,
            queue_timeout_ms, failed_auth_per_minute, lease_ttl_seconds, instance_monthly_cost,
            target_uptime, target_avg_response_ms, target_error_rate, session_ttl_hours, password_hash_concurrency,
            stale_flag_days, secure_cookies,
            uptime_min_interval_seconds, alert_interval_ms, alert_group_wait_ms, alert_retry_base_ms)
    }
}

/// The resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub state_url: Option<String>,
    /// ClickHouse for events, when set (the URL with the password resolved).
    pub events: Option<liftoff_store::clickhouse::EventsUrl>,
    pub events_url: Option<String>,
    /// Where people reach the dashboard, without a trailing slash.
    pub external_url: String,
    pub admin_token: Option<String>,
    pub admin_password: Option<String>,
    /// The key sealing stored secrets, when given by setting (else `<data>/secret-key`).
    pub secret_key: Option<liftoff_core::secret::SecretKey>,
    /// Where Liftoff's own outbound connections must not go.
    pub outbound_deny: liftoff_core::outbound::OutboundPolicy,
    pub log_format: LogFormat,
    pub event_retention_days: u32,
    pub metrics_retention: Retention,
    pub max_body_bytes: usize,
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: f64,
    pub ingest_rate_limit_per_second: f64,
    /// Limits of the HTTP edge (timeouts, connections, admission).
    pub edge: liftoff_http::server::ServeOptions,
    pub failed_auth_per_minute: u32,
    /// How long the singleton lease lasts without renewal.
    pub lease_ttl: std::time::Duration,
    pub instance_monthly_cost: Option<f64>,
    pub report_targets: liftoff_core::reports::targets::Targets,
    pub session_ttl_hours: u32,
    /// Password hashes that may run at once.
    pub password_hash_concurrency: usize,
    pub stale_flag_days: u32,
    pub secure_cookies: bool,
    /// Hidden: the smallest uptime check interval accepted (10 outside tests).
    pub uptime_min_interval_seconds: u32,
    /// Hidden: alert evaluation interval, group wait and first retry delay.
    pub alert_interval: std::time::Duration,
    pub alert_group_wait: std::time::Duration,
    pub alert_retry_base: std::time::Duration,
}

impl Settings {
    /// Where this process keeps its data, for the line every store-touching command prints
    /// first: people with several data directories must see which one a command changed.
    /// Credentials in database URLs are left out.
    pub fn describe_stores(&self) -> String {
        let dir = std::path::absolute(&self.data).unwrap_or_else(|_| self.data.clone());
        let mut out = format!("data directory {}", dir.display());
        if let Some(url) = &self.state_url {
            out.push_str(&format!("; state in {}", without_credentials(url)));
        }
        if let Some(url) = &self.events_url {
            out.push_str(&format!("; events in {}", without_credentials(url)));
        }
        out
    }

    /// Layers `cli` (flags and environment, as clap read them) over the TOML file over defaults.
    pub fn resolve(cli: Overrides, file: Option<&Path>) -> anyhow::Result<Self> {
        check_environment(std::env::vars().map(|(k, _)| k))?;
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Overrides>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Overrides::default(),
        };
        Self::from_overrides(cli.over(from_file))
    }

    /// Fills what `o` leaves unset with the defaults, and validates the result.
    pub fn from_overrides(o: Overrides) -> anyhow::Result<Self> {
        let edge = edge_options(&o)?;
        let secret_key = match o.secret_key.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(text) => Some(
                liftoff_core::secret::SecretKey::parse(text)
                    .map_err(|e| anyhow::anyhow!("LIFTOFF_SECRET_KEY: {e}"))?,
            ),
            None => None,
        };
        // Unset means the default list; an empty value means deny nothing.
        let outbound_deny = match o.outbound_deny.as_deref() {
            Some(list) => liftoff_core::outbound::OutboundPolicy::parse(list)
                .map_err(|e| anyhow::anyhow!("--outbound-deny: {e}"))?,
            None => liftoff_core::outbound::OutboundPolicy::default(),
        };
        let listen = o
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7070)));
        let external_url = match o.external_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| anyhow::anyhow!("--external-url `{url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                    bail!(
                        "--external-url must be an http:// or https:// address with a host, such as https://liftoff.example.com"
                    );
                }
                url.trim_end_matches('/').to_owned()
            }
            _ => format!("http://{listen}"),
        };
        let settings = Self {
            secret_key,
            outbound_deny,
            external_url,
            listen,
            data: o.data.unwrap_or_else(|| PathBuf::from("./liftoff-data")),
            state_url: o.state_url.filter(|s| !s.is_empty()),
            events: match o.events_url.as_deref().filter(|s| !s.is_empty()) {
                Some(url) => Some(
                    liftoff_store::clickhouse::EventsUrl::parse(
                        url,
                        o.events_password.as_deref().filter(|s| !s.is_empty()),
                    )
                    .map_err(anyhow::Error::msg)?,
                ),
                None => None,
            },
            events_url: o.events_url.filter(|s| !s.is_empty()),
            admin_token: o.admin_token.filter(|s| !s.is_empty()),
            admin_password: o.admin_password.filter(|s| !s.is_empty()),
            log_format: o.log_format.unwrap_or_default(),
            event_retention_days: o.event_retention_days.unwrap_or(90),
            metrics_retention: Retention {
                minutes: i64::from(o.metrics_minute_hours.unwrap_or(24)) * 60,
                hours: i64::from(o.metrics_hourly_days.unwrap_or(30)) * 1440,
                days: i64::from(o.metrics_daily_days.unwrap_or(365)) * 1440,
            },
            max_body_bytes: o.max_body_bytes.unwrap_or(1 << 20),
            rate_limit_per_second: o.rate_limit_per_second.unwrap_or(200.0),
            rate_limit_burst: o.rate_limit_burst.unwrap_or(400.0),
            ingest_rate_limit_per_second: o.ingest_rate_limit_per_second.unwrap_or(10_000.0),
            edge,
            failed_auth_per_minute: o.failed_auth_per_minute.unwrap_or(120),
            instance_monthly_cost: o.instance_monthly_cost,
            report_targets: {
                let d = liftoff_core::reports::targets::Targets::default();
                liftoff_core::reports::targets::Targets {
                    uptime: o.target_uptime.unwrap_or(d.uptime),
                    avg_response_time_ms: o
                        .target_avg_response_ms
                        .unwrap_or(d.avg_response_time_ms),
                    error_rate: o.target_error_rate.unwrap_or(d.error_rate),
                }
            },
            session_ttl_hours: o.session_ttl_hours.unwrap_or(12),
            password_hash_concurrency: o
                .password_hash_concurrency
                .unwrap_or(liftoff_core::users::DEFAULT_CONCURRENCY),
            stale_flag_days: o.stale_flag_days.unwrap_or(30),
            secure_cookies: o.secure_cookies.unwrap_or(false),
            uptime_min_interval_seconds: o
                .uptime_min_interval_seconds
                .unwrap_or(liftoff_core::uptime::MIN_INTERVAL_SECONDS),
            lease_ttl: std::time::Duration::from_secs(u64::from(
                o.lease_ttl_seconds
                    .unwrap_or(liftoff_core::lease::DEFAULT_TTL.as_secs() as u32),
            )),
            alert_interval: std::time::Duration::from_millis(
                o.alert_interval_ms.unwrap_or(15_000).max(50),
            ),
            alert_group_wait: std::time::Duration::from_millis(
                o.alert_group_wait_ms.unwrap_or(30_000),
            ),
            alert_retry_base: std::time::Duration::from_millis(
                o.alert_retry_base_ms.unwrap_or(10_000).max(10),
            ),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            bail!(
                "LIFTOFF_ADMIN_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`"
            );
        }
        if let Some(p) = &self.admin_password
            && p.chars().count() < 8
        {
            bail!("LIFTOFF_ADMIN_PASSWORD must be at least 8 characters");
        }
        if !(3..=300).contains(&self.lease_ttl.as_secs()) {
            bail!(
                "--lease-ttl-seconds must be 3 to 300: shorter renews faster than PostgreSQL can be relied on to answer, longer leaves singleton jobs stopped for minutes after a replica dies"
            );
        }
        if self
            .instance_monthly_cost
            .is_some_and(|c| !(c.is_finite() && c >= 0.0))
        {
            bail!("--instance-monthly-cost must be a non-negative amount");
        }
        if let Err(e) = self.report_targets.validate() {
            bail!("--target-uptime, --target-avg-response-ms, --target-error-rate: {e}");
        }
        if self.event_retention_days == 0 {
            bail!("--event-retention-days must be at least 1");
        }
        let r = self.metrics_retention;
        if !(r.minutes >= 60 && r.hours >= r.minutes.max(1440) && r.days >= r.hours) {
            bail!(
                "metrics retention must grow with coarser resolution: --metrics-minute-hours at least 1, \
                 --metrics-hourly-days at least 1 and covering the minute hours, --metrics-daily-days at \
                 least --metrics-hourly-days"
            );
        }
        if !(1024..=(1 << 30)).contains(&self.max_body_bytes) {
            bail!("--max-body-bytes must be between 1024 and 1073741824");
        }
        if !(self.rate_limit_per_second >= 0.0
            && self.rate_limit_burst >= 1.0
            && self.ingest_rate_limit_per_second >= 0.0)
        {
            bail!("--rate-limit-per-second must be 0 or more and --rate-limit-burst at least 1");
        }
        let e = &self.edge;
        if e.header_timeout.is_zero() || e.idle_timeout.is_zero() || e.body.gap.is_zero() {
            bail!(
                "--header-timeout-seconds, --idle-timeout-seconds and --body-timeout-seconds must be at least 1"
            );
        }
        if e.max_connections == 0 || e.max_in_flight == 0 {
            bail!("--max-connections and --max-requests-in-flight must be at least 1");
        }
        if !(1..=10_000).contains(&self.failed_auth_per_minute) && self.failed_auth_per_minute != 0
        {
            bail!("--failed-auth-per-minute must be between 0 (no limit) and 10000");
        }
        if !(1..=3650).contains(&self.stale_flag_days) {
            bail!("--stale-flag-days must be between 1 and 3650");
        }
        if !(1..=24 * 90).contains(&self.session_ttl_hours) {
            bail!("--session-ttl-hours must be between 1 and 2160");
        }
        if !(1..=64).contains(&self.password_hash_concurrency) {
            bail!("--password-hash-concurrency must be between 1 and 64");
        }
        Ok(())
    }
}

/// The HTTP edge's limits and trusted proxies from the settings, with the defaults of
/// [`ServeOptions`].
fn edge_options(o: &Overrides) -> anyhow::Result<liftoff_http::server::ServeOptions> {
    use std::time::Duration;
    let d = liftoff_http::server::ServeOptions::default();
    let trusted_proxies =
        liftoff_core::network::Networks::parse(o.trusted_proxies.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
    Ok(liftoff_http::server::ServeOptions {
        trusted_proxies,
        header_timeout: o
            .header_timeout_seconds
            .map_or(d.header_timeout, Duration::from_secs),
        idle_timeout: o
            .idle_timeout_seconds
            .map_or(d.idle_timeout, Duration::from_secs),
        body: liftoff_http::server::BodyPace {
            gap: o
                .body_timeout_seconds
                .map_or(d.body.gap, Duration::from_secs),
            min_rate: o.min_body_bytes_per_second.unwrap_or(d.body.min_rate),
            grace: d.body.grace,
        },
        max_connections: o.max_connections.unwrap_or(d.max_connections),
        max_in_flight: o.max_requests_in_flight.unwrap_or(d.max_in_flight),
        queue_timeout: o
            .queue_timeout_ms
            .map_or(d.queue_timeout, Duration::from_millis),
        ..d
    })
}

/// Variables reserved for Liftoff's own test suite, not settings.
const TEST_PREFIX: &str = "LIFTOFF_TEST_";

/// Refuses `LIFTOFF_*` variables that no command reads: they are typos of real settings.
pub fn check_environment(names: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let known = known_env_vars();
    let unknown: Vec<String> = names
        .filter(|n| n.starts_with("LIFTOFF_") && !n.starts_with(TEST_PREFIX) && !known.contains(n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    bail!(
        "unknown environment variable{} {}; known settings are {}",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.join(", "),
        known.join(", ")
    )
}

/// Every `LIFTOFF_*` variable any command reads, from the command-line definitions.
fn known_env_vars() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&crate::cli::Cli::command(), &mut out);
    out.sort();
    out.dedup();
    out
}

/// `scheme://user:password@host/db` → `scheme://host/db`.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let cli = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Default::default()
        };
        let file: Overrides =
            toml::from_str("listen = \"127.0.0.1:8000\"\nevent_retention_days = 30").unwrap();
        let merged = cli.over(file);
        assert_eq!(merged.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(merged.event_retention_days, Some(30));
        assert_eq!(merged.data, None);
    }

    #[test]
    fn an_events_url_names_clickhouse() {
        let o = Overrides {
            events_url: Some("http://bob@127.0.0.1:8123/analytics".into()),
            events_password: Some("s3cret".into()),
            ..Default::default()
        };
        let s = Settings::from_overrides(o).unwrap();
        let e = s.events.unwrap();
        assert_eq!((e.database.as_str(), e.user.as_str()), ("analytics", "bob"));
        assert_eq!(e.password.as_deref(), Some("s3cret"));
        for url in ["clickhouse://x", "http://h/not-a-name"] {
            let o = Overrides {
                events_url: Some(url.into()),
                ..Default::default()
            };
            let err = Settings::from_overrides(o).unwrap_err().to_string();
            assert!(err.contains("--events-url"), "{err}");
        }
    }

    #[test]
    fn external_url_lease_and_trusted_proxies_are_checked() {
        let s = Settings::from_overrides(Overrides::default()).unwrap();
        assert_eq!(s.external_url, "http://127.0.0.1:7070");
        assert_eq!(s.lease_ttl, std::time::Duration::from_secs(15));
        assert!(s.edge.trusted_proxies.is_empty());
        let file: Overrides = toml::from_str(
            "external_url = \"https://liftoff.example.com/\"\nlease_ttl_seconds = 5\ntrusted_proxies = \"10.0.0.0/8\"",
        )
        .unwrap();
        let s = Settings::from_overrides(file).unwrap();
        assert_eq!(s.external_url, "https://liftoff.example.com");
        assert_eq!(s.lease_ttl, std::time::Duration::from_secs(5));
        assert!(s.edge.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        for (bad, flag) in [
            ("external_url = \"ftp://x\"", "--external-url"),
            ("external_url = \"not a url\"", "--external-url"),
            ("lease_ttl_seconds = 1", "--lease-ttl-seconds"),
            ("lease_ttl_seconds = 301", "--lease-ttl-seconds"),
            ("trusted_proxies = \"proxy.internal\"", "--trusted-proxies"),
        ] {
            let o: Overrides = toml::from_str(bad).unwrap();
            let err = Settings::from_overrides(o).unwrap_err().to_string();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }

    #[test]
    fn password_hash_concurrency_is_bounded() {
        let s = Settings::from_overrides(Overrides::default()).unwrap();
        assert_eq!(s.password_hash_concurrency, 2);
        let file: Overrides = toml::from_str("password_hash_concurrency = 4").unwrap();
        let s = Settings::from_overrides(file).unwrap();
        assert_eq!(s.password_hash_concurrency, 4);
        for bad in [0, 65] {
            let o = Overrides {
                password_hash_concurrency: Some(bad),
                ..Default::default()
            };
            let err = Settings::from_overrides(o).unwrap_err();
            assert!(
                err.to_string().contains("--password-hash-concurrency"),
                "{err}"
            );
        }
    }

    #[test]
    fn outbound_deny_and_secret_key_are_parsed_and_checked() {
        let s = Settings::from_overrides(Overrides::default()).unwrap();
        assert_eq!(
            s.outbound_deny,
            liftoff_core::outbound::OutboundPolicy::default()
        );
        assert!(s.secret_key.is_none());
        let file: Overrides = toml::from_str(
            "outbound_deny = \"10.0.0.0/8, db.internal\"\nsecret_key = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"",
        )
        .unwrap();
        let s = Settings::from_overrides(file).unwrap();
        assert_eq!(s.outbound_deny.describe(), "10.0.0.0/8, db.internal");
        assert!(s.secret_key.is_some());
        let none = Settings::from_overrides(Overrides {
            outbound_deny: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert!(none.outbound_deny.is_empty(), "\"\" denies nothing");
        let err = Settings::from_overrides(Overrides {
            outbound_deny: Some("169.254.0.0/99".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("--outbound-deny")
                && err.to_string().contains("169.254.0.0/99"),
            "{err}"
        );
        let err = Settings::from_overrides(Overrides {
            secret_key: Some("short".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("LIFTOFF_SECRET_KEY"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let err = toml::from_str::<Overrides>("listen = \"127.0.0.1:8000\"\nlisten_port = 3")
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `listen_port`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_environment_is_an_error() {
        assert!(
            check_environment(["LIFTOFF_LISTEN".to_owned(), "PATH".to_owned()].into_iter()).is_ok()
        );
        assert!(check_environment(["LIFTOFF_TEST_DATABASE_URL".to_owned()].into_iter()).is_ok());
        let err = check_environment(["LIFTOFF_LISTNE".to_owned()].into_iter()).unwrap_err();
        assert!(err.to_string().contains("LIFTOFF_LISTNE"), "{err}");
    }

    #[test]
    fn store_descriptions_leave_credentials_out() {
        assert_eq!(
            without_credentials("postgres://app:s3cret@db.internal:5432/liftoff?sslmode=require"),
            "postgres://db.internal:5432/liftoff?sslmode=require"
        );
        assert_eq!(
            without_credentials("postgres://db/liftoff"),
            "postgres://db/liftoff"
        );
        assert_eq!(without_credentials("sqlite"), "sqlite");
        let mut s = Settings::from_overrides(Overrides::default()).unwrap();
        // A password no directory name contains by chance.
        s.state_url = Some("postgres://u:Pa55-w0rd-XyZ@h/db".into());
        let text = s.describe_stores();
        assert!(text.starts_with("data directory /"), "{text}");
        assert!(text.ends_with("; state in postgres://h/db"), "{text}");
        assert!(!text.contains("Pa55-w0rd-XyZ"), "{text}");
    }
}
