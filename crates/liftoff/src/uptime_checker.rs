//! The uptime checker: every second it starts the checks that are due, concurrently (at most
//! [`CONCURRENCY`] at once, one per monitor at a time), and records each result through the
//! `UptimeService`. The probe is a plain reqwest request with the monitor's timeout; for a
//! keyword, at most 1 MiB of the body is read.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use liftoff_core::uptime::{CheckRecord, HttpMethod, MAX_BODY_BYTES, Monitor, UptimeService};
use tokio::sync::Semaphore;

/// Checks running at once.
pub const CONCURRENCY: usize = 16;

#[derive(Clone)]
pub struct Checker {
    service: UptimeService,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
}

impl Checker {
    pub fn new(service: UptimeService) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Liftoff-Uptime/", env!("CARGO_PKG_VERSION")))
            // A fresh connection per check: a check measures whether a client can connect now.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap_or_default();
        Self {
            service,
            client,
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
            in_flight: Arc::default(),
        }
    }

    /// Starts every due check that is not already running; returns at once.
    pub async fn tick(&self) -> Result<String, String> {
        let due = self
            .service
            .due(Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        let mut started = 0;
        for monitor in due {
            let fresh = self
                .in_flight
                .lock()
                .map(|mut set| set.insert(monitor.id))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            started += 1;
            let this = self.clone();
            tokio::spawn(async move {
                let _permit = this.permits.clone().acquire_owned().await;
                let check = probe(&this.client, &monitor).await;
                if let Err(e) = this.service.record(&monitor, &check).await {
                    tracing::warn!(monitor = %monitor.name, error = %e, "Could not record an uptime check.");
                }
                if let Ok(mut set) = this.in_flight.lock() {
                    set.remove(&monitor.id);
                }
            });
        }
        Ok(format!("{started} checks started"))
    }
}

/// One check of `m`.
pub async fn probe(client: &reqwest::Client, m: &Monitor) -> CheckRecord {
    let at = Utc::now();
    let clock = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(u64::from(m.timeout_seconds)),
        request(client, m),
    )
    .await
    .unwrap_or_else(|_| Err(format!("no complete answer within {} s", m.timeout_seconds)));
    let response_ms = u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (up, status_code, error) = match outcome {
        Ok((code, body)) => {
            if !m.status_ok(code) {
                (false, Some(code), Some(format!("unexpected status {code}")))
            } else if let Some(k) = &m.keyword
                && !body.contains(k.as_str())
            {
                (false, Some(code), Some(format!("keyword `{k}` not found")))
            } else {
                (true, Some(code), None)
            }
        }
        Err(e) => (false, None, Some(e)),
    };
    CheckRecord {
        monitor_id: m.id,
        at,
        up,
        status_code,
        response_ms,
        error,
    }
}

async fn request(client: &reqwest::Client, m: &Monitor) -> Result<(u16, String), String> {
    let method = match m.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let mut res = client
        .request(method, &m.url)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let code = res.status().as_u16();
    let mut body = Vec::new();
    if m.keyword.is_some() {
        while body.len() < MAX_BODY_BYTES {
            match res.chunk().await.map_err(|e| describe(&e))? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_BODY_BYTES);
    }
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// The error with its causes, which reqwest keeps in the source chain.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.chars().take(500).collect()
}
