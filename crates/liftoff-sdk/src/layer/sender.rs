//! The background task: batches queued records and posts them to Liftoff. Generic over the
//! record type ([`Batchable`]): served requests and timed operations share it.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Counters, Record};
use crate::backoff::Backoff;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A record type the sender can batch: how a batch is encoded for its ingest endpoint.
pub(crate) trait Batchable: Send + Sized + 'static {
    /// What the records are called in log messages.
    const WHAT: &'static str;
    /// The JSON body for `batch`, each record sent with `service` when set.
    fn encode(batch: &[Self], service: Option<&str>) -> Vec<u8>;
}

pub(crate) struct Sender<R> {
    pub http: reqwest::Client,
    pub url: Url,
    pub auth: HeaderValue,
    pub service: Option<String>,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub counters: Arc<Counters>,
    pub records: PhantomData<fn(R)>,
}

/// A record as the ingest endpoint takes it.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    method: &'a str,
    route: &'a str,
    status: u16,
    duration_ms: f64,
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    flags: std::collections::BTreeMap<&'a str, &'a str>,
}

enum Outcome {
    Sent,
    /// Worth retrying, after at least this long when the server said so.
    Retry(Option<Duration>),
    /// Refused for good (invalid records, bad token): retrying cannot help.
    Refused,
}

/// Resolves when shutdown is asked for; never when the reporter handles are gone (the layers
/// may still be serving).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Batchable for Record {
    const WHAT: &'static str = "request records";

    fn encode(batch: &[Record], service: Option<&str>) -> Vec<u8> {
        let wire: Vec<Wire<'_>> = batch
            .iter()
            .map(|r| Wire {
                service,
                method: r.method.as_str(),
                route: r.route.as_str(),
                status: r.status,
                duration_ms: r.duration.as_secs_f64() * 1000.0,
                ts: DateTime::<Utc>::from(r.ts).to_rfc3339_opts(SecondsFormat::Millis, true),
                user_id: r.user_id.as_deref(),
                flags: r
                    .flags
                    .iter()
                    .map(|(f, v)| (f.as_str(), v.as_str()))
                    .collect(),
            })
            .collect();
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

impl<R: Batchable> Sender<R> {
    pub async fn run(self, mut queue: mpsc::Receiver<R>, mut stop: watch::Receiver<bool>) {
        // The queue is only ever drained with `try_recv`, so recording a request never wakes
        // this task (a cross-thread wake-up would cost more than everything else the layer
        // does); the layer notifies `batch_ready` when a full batch is waiting, and the
        // interval sends the rest.
        let mut batch: Vec<R> = Vec::with_capacity(self.batch_size.min(4096));
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.flush_interval, self.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let flush_all = tokio::select! {
                biased;
                () = stop_requested(&mut stop) => break,
                () = self.counters.batch_ready.notified() => false,
                _ = tick.tick() => true,
            };
            let open = loop {
                let open = self.drain(&mut queue, &mut batch);
                if batch.len() < self.batch_size {
                    break open;
                }
                self.send(&mut batch, Some(&mut stop)).await;
            };
            if flush_all {
                self.send(&mut batch, Some(&mut stop)).await;
            }
            if !open {
                // Every layer and the reporter are gone.
                break;
            }
        }
        // Shutting down: send what is queued, one attempt per batch.
        queue.close();
        // (`try_recv` says `Empty`, not `Disconnected`, while layers hold senders: nothing
        // more can arrive after `close`, so a batch that is not full means the queue is empty.)
        loop {
            self.drain(&mut queue, &mut batch);
            let more = batch.len() >= self.batch_size;
            self.send(&mut batch, None).await;
            if !more {
                break;
            }
        }
    }

    /// Moves queued records into `batch` until it is full or the queue empty; false once the
    /// queue is closed and empty.
    fn drain(&self, queue: &mut mpsc::Receiver<R>, batch: &mut Vec<R>) -> bool {
        let mut taken = 0;
        let mut open = true;
        while batch.len() < self.batch_size {
            match queue.try_recv() {
                Ok(record) => {
                    batch.push(record);
                    taken += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        self.counters.queued.fetch_sub(taken, Ordering::Relaxed);
        open
    }

    /// Sends and empties `batch`, retrying with backoff unless `stop` is `None` or shutdown is
    /// asked for meanwhile; counts the records as sent or dropped.
    async fn send(&self, batch: &mut Vec<R>, mut stop: Option<&mut watch::Receiver<bool>>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let body = R::encode(batch, self.service.as_deref());
        batch.clear();
        let mut backoff = Backoff::new(self.retry_base, Duration::from_secs(30));
        let mut attempt = 0;
        loop {
            match self.post(&body).await {
                Outcome::Sent => {
                    self.counters.sent.fetch_add(count, Ordering::Relaxed);
                    return;
                }
                Outcome::Refused => break,
                Outcome::Retry(after) => {
                    let Some(stop) = stop.as_deref_mut() else {
                        break;
                    };
                    if attempt >= self.max_retries || *stop.borrow() {
                        break;
                    }
                    attempt += 1;
                    let delay = backoff
                        .next_delay()
                        .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        // Shutdown: one last attempt, at once.
                        () = stop_requested(stop) => attempt = self.max_retries,
                    }
                }
            }
        }
        self.counters.dropped.fetch_add(count, Ordering::Relaxed);
        tracing::warn!(
            records = count,
            "dropped a batch of {} Liftoff did not accept",
            R::WHAT
        );
    }

    async fn post(&self, body: &[u8]) -> Outcome {
        let response = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%error, "cannot reach Liftoff to report {}", R::WHAT);
                return Outcome::Retry(None);
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            let after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            tracing::debug!(%status, "Liftoff could not take {} now", R::WHAT);
            return Outcome::Retry(after);
        }
        let detail = response.text().await.unwrap_or_default();
        tracing::warn!(%status, detail = %detail.chars().take(500).collect::<String>(),
            "Liftoff refused {}", R::WHAT);
        Outcome::Refused
    }
}
