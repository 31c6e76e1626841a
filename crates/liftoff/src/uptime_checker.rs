//! The uptime checker: every second it starts the checks that are due, concurrently (at most
//! [`CONCURRENCY`] at once, one per monitor at a time), and records each result through the
//! `UptimeService`. The probe is a plain reqwest request with the monitor's timeout; for a
//! keyword, at most 1 MiB of the body is read. Every connection and redirect obeys
//! `--outbound-deny` ([`crate::outbound`]). A failed check's error is a reason Liftoff writes
//! (status, what failed); nothing the checked server sent is stored.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use liftoff_core::outbound::OutboundPolicy;
use liftoff_core::uptime::{CheckRecord, HttpMethod, MAX_BODY_BYTES, Monitor, UptimeService};
use tokio::sync::Semaphore;

use crate::outbound::{client_builder, describe, redirect_policy};

/// Redirects a check follows.
pub const MAX_REDIRECTS: usize = 5;

/// Checks running at once.
pub const CONCURRENCY: usize = 16;

#[derive(Clone)]
pub struct Checker {
    service: UptimeService,
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    permits: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
}

impl Checker {
    /// A checker obeying the service's outbound policy.
    pub fn new(service: UptimeService) -> Self {
        let policy = service.outbound();
        Self {
            service,
            client: client(&policy),
            policy,
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
                let check = probe(&this.client, &this.policy, &monitor).await;
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

/// The checker's HTTP client: the policy's resolver and redirect checks.
pub fn client(policy: &Arc<OutboundPolicy>) -> reqwest::Client {
    client_builder(policy)
        .user_agent(concat!("Liftoff-Uptime/", env!("CARGO_PKG_VERSION")))
        // A fresh connection per check: a check measures whether a client can connect now.
        .pool_max_idle_per_host(0)
        .redirect(redirect_policy(policy.clone(), MAX_REDIRECTS))
        .build()
        // Fails only when TLS cannot start, like `reqwest::Client::new()`; never fall back to a
        // client without the policy.
        .expect("the uptime checker's HTTP client")
}

/// One check of `m` with a [`client`] built for `policy`.
pub async fn probe(client: &reqwest::Client, policy: &OutboundPolicy, m: &Monitor) -> CheckRecord {
    let at = Utc::now();
    let clock = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(u64::from(m.timeout_seconds)),
        request(client, policy, m),
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

async fn request(
    client: &reqwest::Client,
    policy: &OutboundPolicy,
    m: &Monitor,
) -> Result<(u16, String), String> {
    let method = match m.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let url = reqwest::Url::parse(&m.url).map_err(|e| format!("invalid url: {e}"))?;
    // An address literal never reaches the resolver: check it here (redirects are checked by
    // the redirect policy).
    policy.check_parsed_url(&url).map_err(|d| d.to_string())?;
    let mut res = client
        .request(method, url)
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
