//! Instance resource reporting: every `interval`, one reading of this app instance's CPU,
//! memory and disk (cgroup-aware, the same sampler Liftoff uses for itself) sent to
//! `POST {base}/api/ingest/system`. A reading that cannot be sent is not retried: the next one
//! replaces it, so nothing queues up while Liftoff is unreachable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), liftoff_sdk::SdkError> {
//! let reporter = liftoff_sdk::InstanceReporter::builder("https://liftoff.example.com", "ingest-token")
//!     .service("checkout")
//!     .instance("checkout-7f9c")
//!     .start()?;
//! // … serve …
//! reporter.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use reqwest::Url;
use tokio::sync::watch;

use super::{Control, endpoint};
use crate::error::SdkError;

const SYSTEM_PATH: &str = "api/ingest/system";

/// Configures an [`InstanceReporter`]; made by [`InstanceReporter::builder`].
#[derive(Debug)]
pub struct InstanceReporterBuilder {
    base_url: String,
    token: String,
    service: String,
    instance: Option<String>,
    interval: Duration,
    disk_dir: PathBuf,
}

impl InstanceReporterBuilder {
    /// The service the instance belongs to (default `default`).
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The instance's name, unique within the service (default: the host name).
    #[must_use]
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Time between readings (default 15 s; at least 1 s).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The directory whose file system is reported as the disk (default: the current one).
    #[must_use]
    pub fn disk_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.disk_dir = dir.into();
        self
    }

    /// Starts the background task (must run inside a Tokio runtime). Errors for a bad URL or
    /// token.
    pub fn start(self) -> Result<InstanceReporter, SdkError> {
        let url = endpoint(&self.base_url, SYSTEM_PATH)?;
        let auth = crate::builder::bearer(&self.token)?;
        let http = reqwest::Client::builder()
            .user_agent(crate::builder::USER_AGENT)
            .timeout(self.interval.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SdkError::HttpClient(Box::new(e)))?;
        let instance = self.instance.unwrap_or_else(host_name);
        let counters = Arc::new(InstanceCounters::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            Target {
                http,
                url,
                auth,
                service: self.service,
                instance,
            },
            Arc::new(liftoff_system::Sampler::new(self.disk_dir)),
            self.interval,
            counters.clone(),
            stopped,
        ));
        Ok(InstanceReporter {
            counters,
            control: Arc::new(Control {
                stop,
                task: std::sync::Mutex::new(Some(task)),
            }),
        })
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

#[derive(Debug, Default)]
struct InstanceCounters {
    sent: AtomicU64,
    failed: AtomicU64,
}

struct Target {
    http: reqwest::Client,
    url: Url,
    auth: HeaderValue,
    service: String,
    instance: String,
}

#[derive(serde::Serialize)]
struct Reading<'a> {
    service: &'a str,
    instance: &'a str,
    #[serde(flatten)]
    sample: liftoff_system::Sample,
}

async fn run(
    target: Target,
    sampler: Arc<liftoff_system::Sampler>,
    interval: Duration,
    counters: Arc<InstanceCounters>,
    mut stopped: watch::Receiver<bool>,
) {
    // The first reading only primes the CPU counter (CPU percent is a rate).
    let prime = sampler.clone();
    let _ = tokio::task::spawn_blocking(move || prime.sample()).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => return,
        }
        let s = sampler.clone();
        let Ok(sample) = tokio::task::spawn_blocking(move || s.sample()).await else {
            continue;
        };
        let reading = Reading {
            service: &target.service,
            instance: &target.instance,
            sample,
        };
        let sent = target
            .http
            .post(target.url.clone())
            .header(http::header::AUTHORIZATION, target.auth.clone())
            .json(&reading)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let counter = if sent {
            &counters.sent
        } else {
            &counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reports this app instance's resources to Liftoff in the background. Cheap to clone.
#[derive(Clone, Debug)]
pub struct InstanceReporter {
    counters: Arc<InstanceCounters>,
    control: Arc<Control>,
}

impl InstanceReporter {
    /// Starts configuring a reporter for the Liftoff server at `base_url` with an ingest token.
    pub fn builder(
        base_url: impl Into<String>,
        token: impl Into<String>,
    ) -> InstanceReporterBuilder {
        InstanceReporterBuilder {
            base_url: base_url.into(),
            token: token.into(),
            service: "default".into(),
            instance: None,
            interval: Duration::from_secs(15),
            disk_dir: PathBuf::from("."),
        }
    }

    /// Readings Liftoff accepted.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Readings that could not be delivered (Liftoff unreachable or refusing).
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Stops the background task.
    pub async fn shutdown(&self) {
        self.control.shutdown().await;
    }
}
