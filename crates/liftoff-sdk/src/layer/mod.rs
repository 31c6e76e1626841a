//! Request reporting: a tower [`Layer`](tower_layer::Layer) that reports every request an
//! application serves to Liftoff (`POST {base}/api/ingest/requests`).
//!
//! ```no_run
//! use std::time::Duration;
//! use liftoff_sdk::layer::RequestReporter;
//!
//! # async fn demo() -> Result<(), liftoff_sdk::SdkError> {
//! let reporter = RequestReporter::builder("https://flags.example.com", "ingest-token")
//!     .service("checkout")
//!     .batch_size(500)
//!     .flush_interval(Duration::from_secs(5))
//!     .queue_capacity(10_000)
//!     .build()?;
//! // let app = axum::Router::new().route("/users/{id}", get(user)).layer(reporter.layer());
//! // … serve …
//! reporter.shutdown().await; // sends what is still queued
//! # Ok(())
//! # }
//! ```
//!
//! Recording never blocks or slows a request: each finished request is `try_send`-ed into a
//! bounded queue (dropped and counted in [`RequestReporter::dropped`] when full), and a
//! background task sends batches. A batch that fails (Liftoff unreachable, 5xx, 429) is retried
//! with backoff a few times, then dropped and counted; while it is retried the queue keeps
//! absorbing (and, when full, dropping) new records, so memory stays bounded by the queue
//! capacity plus one batch.
//!
//! **Route templates.** The reported route is always a template (`/users/{id}`), never the raw
//! path, whose ids would explode cardinality: with the `axum` feature, axum's
//! [`MatchedPath`](https://docs.rs/axum/latest/axum/extract/struct.MatchedPath.html) (present
//! when the layer is added with `Router::layer`/`route_layer`, not when it wraps the router from
//! outside); otherwise, or when it is absent, [`RequestReporterBuilder::route_fn`]; when neither
//! gives one, `unmatched`.
//!
//! **User ids.** Optional: a [`ReportedUser`] in the request extensions (inserted by a
//! middleware outside the layer) or in the response extensions (inserted by the handler or an
//! inner middleware), else the header named by [`RequestReporterBuilder::user_header`].

mod instance;
mod operations;
pub(crate) mod sender;
mod service;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::HeaderName;
use reqwest::Url;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::SdkError;

pub use instance::{InstanceReporter, InstanceReporterBuilder};
pub use operations::{OperationReporter, OperationReporterBuilder, OperationTimer};
pub use service::{ReportLayer, ReportService, ResponseFuture};

/// The route reported when no template is known.
pub const UNMATCHED: &str = "unmatched";

/// The user a request was made for, to report with it: insert it into the request's (or the
/// response's) extensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportedUser(pub String);

/// Gives the route template of a request, if it knows one.
pub type RouteFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// One served request, as queued.
#[derive(Debug)]
pub(crate) struct Record {
    pub method: http::Method,
    pub route: Route,
    pub status: u16,
    pub duration: Duration,
    pub ts: SystemTime,
    pub user_id: Option<String>,
    /// `(flag, value)` served while answering (see `crate::served`).
    pub flags: Vec<(String, String)>,
}

/// A route template, kept without copying where possible.
#[derive(Debug)]
pub(crate) enum Route {
    Unmatched,
    Owned(String),
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
}

impl Route {
    pub fn as_str(&self) -> &str {
        match self {
            Route::Unmatched => UNMATCHED,
            Route::Owned(route) => route,
            #[cfg(feature = "axum")]
            Route::Matched(path) => path.as_str(),
        }
    }
}

/// What the layers and the background task share.
pub(crate) struct Shared {
    pub queue: mpsc::Sender<Record>,
    pub counters: Arc<Counters>,
    pub route_fn: Option<Arc<RouteFn>>,
    pub user_header: Option<HeaderName>,
    pub batch_size: usize,
}

impl Shared {
    /// Queues a record without waiting; counts it as dropped when the queue is full or closed.
    pub fn record(&self, record: Record) {
        enqueue(&self.queue, &self.counters, self.batch_size, record);
    }
}

/// Queues a record for a sender without waiting; counts it as dropped when the queue is full
/// or closed, and wakes the sender when a batch is ready.
pub(crate) fn enqueue<R>(
    queue: &mpsc::Sender<R>,
    counters: &Counters,
    batch_size: usize,
    record: R,
) {
    // Counted before it is queued, so the task's decrement never comes first.
    let queued = counters.queued.fetch_add(1, Ordering::Relaxed) + 1;
    if queue.try_send(record).is_err() {
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    } else if queued == batch_size {
        counters.batch_ready.notify_one();
    }
}

/// What every reporter configures about its sender.
#[derive(Clone)]
pub(crate) struct SenderSettings {
    pub base_url: String,
    pub token: String,
    pub service: Option<String>,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub queue_capacity: usize,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub request_timeout: Duration,
}

impl SenderSettings {
    /// The defaults every reporter starts from: no service name, batches of 500 flushed every
    /// 5 s, a queue of 10,000, 3 retries from 500 ms, a 10 s request timeout.
    pub fn defaults(base_url: String, token: String) -> SenderSettings {
        SenderSettings {
            base_url,
            token,
            service: None,
            batch_size: 500,
            flush_interval: Duration::from_secs(5),
            queue_capacity: 10_000,
            max_retries: 3,
            retry_base: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A running sender: its queue, counters and control.
pub(crate) struct Started<R> {
    pub queue: mpsc::Sender<R>,
    pub counters: Arc<Counters>,
    pub control: Arc<Control>,
    pub batch_size: usize,
}

/// Starts a background sender posting batches of `R` to `{base}/{path}` (inside a Tokio
/// runtime). Errors for a bad URL or token.
pub(crate) fn start_sender<R: sender::Batchable>(
    s: SenderSettings,
    path: &str,
) -> Result<Started<R>, SdkError> {
    let url = endpoint(&s.base_url, path)?;
    let auth = crate::builder::bearer(&s.token)?;
    let http = reqwest::Client::builder()
        .user_agent(crate::builder::USER_AGENT)
        .connect_timeout(s.request_timeout)
        .timeout(s.request_timeout)
        .build()
        .map_err(|e| SdkError::HttpClient(Box::new(e)))?;
    // A batch never waits for more records than the queue holds.
    let batch_size = s.batch_size.min(s.queue_capacity);
    let (queue, receiver) = mpsc::channel(s.queue_capacity);
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(
        sender::Sender::<R> {
            http,
            url,
            auth,
            service: s.service,
            batch_size,
            flush_interval: s.flush_interval,
            max_retries: s.max_retries,
            retry_base: s.retry_base,
            counters: counters.clone(),
            records: std::marker::PhantomData,
        }
        .run(receiver, stopped),
    );
    Ok(Started {
        queue,
        counters,
        control: Arc::new(Control {
            stop,
            task: Mutex::new(Some(task)),
        }),
        batch_size,
    })
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    /// Records in the queue, or about to be (at least as many as there are).
    pub queued: AtomicUsize,
    /// Notified when `queued` reaches a batch.
    pub batch_ready: Notify,
}

/// Configures a [`RequestReporter`]; made by [`RequestReporter::builder`].
///
/// Defaults: no service name, batches of 500, flushed every 5 s, a queue of 10 000 records,
/// 3 retries per batch, 10 s request timeout.
#[derive(Clone)]
pub struct RequestReporterBuilder {
    settings: SenderSettings,
    route_fn: Option<Arc<RouteFn>>,
    user_header: Option<HeaderName>,
}

impl fmt::Debug for RequestReporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        let s = &self.settings;
        f.debug_struct("RequestReporterBuilder")
            .field("base_url", &s.base_url)
            .field("service", &s.service)
            .field("batch_size", &s.batch_size)
            .field("flush_interval", &s.flush_interval)
            .field("queue_capacity", &s.queue_capacity)
            .field("max_retries", &s.max_retries)
            .field("request_timeout", &s.request_timeout)
            .field("route_fn", &self.route_fn.is_some())
            .field("user_header", &self.user_header)
            .finish_non_exhaustive()
    }
}

impl RequestReporterBuilder {
    /// The service name sent with every record.
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.settings.service = Some(service.into());
        self
    }

    /// Records per request to Liftoff (default 500; at least 1, at most the queue capacity).
    /// A full batch is sent at once.
    #[must_use]
    pub fn batch_size(mut self, size: usize) -> Self {
        self.settings.batch_size = size.max(1);
        self
    }

    /// Longest time a record waits before its batch is sent (default 5 s; at least 1 ms).
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Records that may wait to be sent (default 10 000; at least 1); more are dropped.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity.max(1);
        self
    }

    /// Retries of a batch that failed for a reason worth retrying (default 3), with backoff
    /// from `base` (default 500 ms, doubling, with jitter; `Retry-After` is honoured up to 30 s).
    #[must_use]
    pub fn retries(mut self, max_retries: u32, base: Duration) -> Self {
        self.settings.max_retries = max_retries;
        self.settings.retry_base = base;
        self
    }

    /// Time limit for one request to Liftoff (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Gives the route template of requests for which the `axum` feature found none (or
    /// always, without it). Must return a template (`/users/{id}`), never the raw path.
    #[must_use]
    pub fn route_fn(
        mut self,
        f: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.route_fn = Some(Arc::new(f));
        self
    }

    /// Reports the value of this request header as the user id when no [`ReportedUser`]
    /// extension gives one. An invalid header name is ignored.
    #[must_use]
    pub fn user_header(mut self, name: &str) -> Self {
        self.user_header = HeaderName::try_from(name).ok();
        self
    }

    /// Starts the reporter's background task (must run inside a Tokio runtime). Errors for a
    /// bad URL or token.
    pub fn build(self) -> Result<RequestReporter, SdkError> {
        let started = start_sender::<Record>(self.settings, INGEST_PATH)?;
        Ok(RequestReporter {
            shared: Arc::new(Shared {
                queue: started.queue,
                counters: started.counters,
                route_fn: self.route_fn,
                user_header: self.user_header,
                batch_size: started.batch_size,
            }),
            control: started.control,
        })
    }
}

pub(crate) struct Control {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    /// Asks the sender to send what is queued and stop, without waiting for it.
    pub(crate) fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Asks the sender to send what is queued and stop, and waits for it.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Reports served requests to Liftoff in the background; make layers with
/// [`RequestReporter::layer`]. Cheap to clone. The background task runs until
/// [`shutdown`](Self::shutdown), or until the reporter and every layer and service made from it
/// are dropped (it then sends what is queued, as far as the runtime lets it).
#[derive(Clone)]
pub struct RequestReporter {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl fmt::Debug for RequestReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestReporter")
            .field("dropped", &self.dropped())
            .field("sent", &self.sent())
            .finish_non_exhaustive()
    }
}

impl RequestReporter {
    /// Starts configuring a reporter for the Liftoff server at `base_url` (a path prefix is
    /// kept) with an ingest token.
    pub fn builder(
        base_url: impl Into<String>,
        token: impl Into<String>,
    ) -> RequestReporterBuilder {
        RequestReporterBuilder {
            settings: SenderSettings::defaults(base_url.into(), token.into()),
            route_fn: None,
            user_header: None,
        }
    }

    /// A layer reporting every request of the service it wraps.
    pub fn layer(&self) -> ReportLayer {
        ReportLayer::new(self.shared.clone())
    }

    /// Records not reported: dropped because the queue was full (or the reporter shut down),
    /// or in a batch Liftoff could not be reached for or refused.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records Liftoff accepted.
    pub fn sent(&self) -> u64 {
        self.shared.counters.sent.load(Ordering::Relaxed)
    }

    /// Sends what is queued (one attempt per batch, no retries) and stops the background task.
    /// Requests recorded afterwards are dropped and counted.
    pub async fn shutdown(&self) {
        self.control.shutdown().await;
    }
}

const INGEST_PATH: &str = "api/ingest/requests";

/// `{base}/{path}`.
fn endpoint(base_url: &str, path: &str) -> Result<Url, SdkError> {
    crate::builder::base_url(base_url)?
        .join(path)
        .map_err(|e| SdkError::InvalidUrl {
            url: base_url.to_owned(),
            reason: e.to_string(),
        })
}

/// `{base}/api/ingest/requests`.
#[cfg(test)]
fn ingest_url(base_url: &str) -> Result<Url, SdkError> {
    endpoint(base_url, INGEST_PATH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn ingest_urls() {
        assert_eq!(
            ingest_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/api/ingest/requests"
        );
        assert_eq!(
            ingest_url("http://example.com/liftoff?x=1")
                .unwrap()
                .as_str(),
            "http://example.com/liftoff/api/ingest/requests"
        );
        assert!(ingest_url("ftp://example.com").is_err());
    }
}
