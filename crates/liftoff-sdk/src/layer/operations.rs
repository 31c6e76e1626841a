//! Timing named operations (`outfit_generation`, `external:stripe.charge`) and reporting them
//! to Liftoff (`POST {base}/api/ingest/operations`) through the same background sender as the
//! request layer: a bounded queue (drop and count when full), batches, retries with backoff,
//! a flush at shutdown.
//!
//! ```no_run
//! use liftoff_sdk::OperationReporter;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let ops = OperationReporter::builder("https://flags.example.com", "ingest-token")
//!     .service("stylist")
//!     .build()?;
//! {
//!     // Records when dropped: success, unless `fail` was called.
//!     let mut timer = ops.operation("outfit_generation").user("u1").layer("cache").cache_hit(true);
//!     if let Err(e) = "x".parse::<u8>() {
//!         timer.fail(&e);
//!     }
//! }
//! // Failure when the closure returns `Err` (its Display as `error`, its type as `error_type`).
//! let n: Result<u8, _> = ops.time_operation("parse", || "7".parse::<u8>());
//! let charged = ops
//!     .time_operation_async("external:stripe.charge", async { Ok::<_, std::io::Error>(()) })
//!     .await;
//! ops.shutdown().await; // sends what is still queued
//! # Ok(())
//! # }
//! ```
//!
//! Names starting with `external:` are shown by Liftoff as external calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use super::sender::Batchable;
use super::{Control, Counters, SenderSettings, enqueue, start_sender};
use crate::error::SdkError;

/// Longest stack trace sent (Liftoff refuses more than 16 KiB); longer ones are cut.
const MAX_STACK_TRACE: usize = 16 * 1024;
/// Longest error message sent (Liftoff refuses more than 4 KiB); longer ones are cut.
const MAX_ERROR: usize = 4 * 1024;

/// One timed run, as queued.
#[derive(Debug)]
pub(crate) struct OpRecord {
    operation: String,
    user_id: Option<String>,
    success: bool,
    duration: Duration,
    ts: SystemTime,
    error: Option<String>,
    error_type: Option<String>,
    stack_trace: Option<String>,
    context: Option<serde_json::Value>,
    cache_hit: Option<bool>,
    layer: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    operation: &'a str,
    status: &'static str,
    duration_ms: f64,
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack_trace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_hit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<&'a str>,
}

impl Batchable for OpRecord {
    const WHAT: &'static str = "operation records";

    fn encode(batch: &[OpRecord], service: Option<&str>) -> Vec<u8> {
        let wire: Vec<Wire<'_>> = batch
            .iter()
            .map(|r| Wire {
                operation: &r.operation,
                status: if r.success { "success" } else { "failure" },
                // Liftoff takes durations below a day.
                duration_ms: (r.duration.as_secs_f64() * 1000.0).min(86_399_999.0),
                ts: DateTime::<Utc>::from(r.ts).to_rfc3339_opts(SecondsFormat::Millis, true),
                service,
                user_id: r.user_id.as_deref(),
                error: r.error.as_deref(),
                error_type: r.error_type.as_deref(),
                stack_trace: r.stack_trace.as_deref(),
                context: r.context.as_ref(),
                cache_hit: r.cache_hit,
                layer: r.layer.as_deref(),
            })
            .collect();
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The last path segment of a type's name, without generics: `std::io::Error` → `Error`,
/// `core::num::error::ParseIntError` → `ParseIntError`.
fn short_type_name<E: ?Sized>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Configures an [`OperationReporter`]; made by [`OperationReporter::builder`]. The same
/// defaults as the request reporter: batches of 500, flushed every 5 s, a queue of 10 000
/// records, 3 retries per batch, 10 s request timeout.
#[derive(Clone)]
pub struct OperationReporterBuilder {
    settings: SenderSettings,
}

impl fmt::Debug for OperationReporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("OperationReporterBuilder")
            .field("base_url", &self.settings.base_url)
            .field("service", &self.settings.service)
            .field("batch_size", &self.settings.batch_size)
            .field("queue_capacity", &self.settings.queue_capacity)
            .finish_non_exhaustive()
    }
}

impl OperationReporterBuilder {
    /// The service name sent with every record.
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.settings.service = Some(service.into());
        self
    }

    /// Records per request to Liftoff (default 500; at least 1).
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

    /// Retries of a failed batch (default 3) with backoff from `base` (default 500 ms).
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

    /// Starts the background sender (inside a Tokio runtime). Errors for a bad URL or token.
    pub fn build(self) -> Result<OperationReporter, SdkError> {
        let started = start_sender::<OpRecord>(self.settings, "api/ingest/operations")?;
        Ok(OperationReporter {
            inner: Arc::new(Inner {
                queue: started.queue,
                counters: started.counters,
                batch_size: started.batch_size,
            }),
            control: started.control,
        })
    }
}

struct Inner {
    queue: mpsc::Sender<OpRecord>,
    counters: Arc<Counters>,
    batch_size: usize,
}

/// Times named operations and reports them to Liftoff in the background. Cheap to clone.
/// Recording never blocks: a full queue drops the record and counts it in
/// [`dropped`](Self::dropped).
#[derive(Clone)]
pub struct OperationReporter {
    inner: Arc<Inner>,
    control: Arc<Control>,
}

impl fmt::Debug for OperationReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationReporter")
            .field("dropped", &self.dropped())
            .field("sent", &self.sent())
            .finish_non_exhaustive()
    }
}

impl OperationReporter {
    /// Starts configuring a reporter for the Liftoff server at `base_url` with an ingest token.
    pub fn builder(
        base_url: impl Into<String>,
        token: impl Into<String>,
    ) -> OperationReporterBuilder {
        OperationReporterBuilder {
            settings: SenderSettings::defaults(base_url.into(), token.into()),
        }
    }

    /// Starts timing a run of `name` (1–200 characters of `A-Z a-z 0-9 _ - . : /`). The run is
    /// recorded when the timer is dropped (or [`finish`](OperationTimer::finish)ed): as a
    /// failure if [`fail`](OperationTimer::fail) was called, else as a success.
    pub fn operation(&self, name: impl Into<String>) -> OperationTimer {
        OperationTimer {
            inner: self.inner.clone(),
            started: Instant::now(),
            record: Some(OpRecord {
                operation: name.into(),
                user_id: None,
                success: true,
                duration: Duration::ZERO,
                ts: SystemTime::now(),
                error: None,
                error_type: None,
                stack_trace: None,
                context: None,
                cache_hit: None,
                layer: None,
            }),
        }
    }

    /// Runs `f`, timing it as `name`: a failure when it returns `Err` (the error's `Display`
    /// as `error`, its type's name as `error_type`).
    pub fn time_operation<T, E: fmt::Display>(
        &self,
        name: impl Into<String>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let mut timer = self.operation(name);
        let out = f();
        if let Err(e) = &out {
            timer.fail(e);
        }
        out
    }

    /// Awaits `fut`, timing it as `name`, like [`time_operation`](Self::time_operation).
    pub async fn time_operation_async<T, E: fmt::Display>(
        &self,
        name: impl Into<String>,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut timer = self.operation(name);
        let out = fut.await;
        if let Err(e) = &out {
            timer.fail(e);
        }
        out
    }

    /// Records not reported: dropped because the queue was full (or the reporter shut down),
    /// or in a batch Liftoff could not be reached for or refused.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records Liftoff accepted.
    pub fn sent(&self) -> u64 {
        self.inner.counters.sent.load(Ordering::Relaxed)
    }

    /// Sends what is queued (one attempt per batch) and stops the background task. Runs
    /// recorded afterwards are dropped and counted.
    pub async fn shutdown(&self) {
        self.control.shutdown().await;
    }
}

/// A run being timed; recorded on drop. Made by [`OperationReporter::operation`].
#[must_use = "the run is recorded when the timer is dropped; keep it alive while the work runs"]
pub struct OperationTimer {
    inner: Arc<Inner>,
    started: Instant,
    record: Option<OpRecord>,
}

impl fmt::Debug for OperationTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationTimer")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl OperationTimer {
    fn with(mut self, f: impl FnOnce(&mut OpRecord)) -> Self {
        if let Some(r) = self.record.as_mut() {
            f(r);
        }
        self
    }

    /// The user the run was for.
    pub fn user(self, user_id: impl Into<String>) -> Self {
        let id = user_id.into();
        self.with(|r| r.user_id = Some(id))
    }

    /// The layer that served it (`cache`, `primary`, `fallback`, …).
    pub fn layer(self, layer: impl Into<String>) -> Self {
        let layer = layer.into();
        self.with(|r| r.layer = Some(layer))
    }

    /// Whether a cache answered.
    pub fn cache_hit(self, hit: bool) -> Self {
        self.with(|r| r.cache_hit = Some(hit))
    }

    /// Context kept with a failure (any JSON, at most 8 KiB).
    pub fn context(self, context: serde_json::Value) -> Self {
        self.with(|r| r.context = Some(context))
    }

    /// Sets the layer once it is known.
    pub fn set_layer(&mut self, layer: impl Into<String>) -> &mut Self {
        if let Some(r) = self.record.as_mut() {
            r.layer = Some(layer.into());
        }
        self
    }

    /// Sets whether a cache answered once it is known.
    pub fn set_cache_hit(&mut self, hit: bool) -> &mut Self {
        if let Some(r) = self.record.as_mut() {
            r.cache_hit = Some(hit);
        }
        self
    }

    /// Marks the run failed with `error`: its `Display` as the message, its type's name as the
    /// error type.
    pub fn fail<E: fmt::Display + ?Sized>(&mut self, error: &E) -> &mut Self {
        let message = error.to_string();
        self.fail_with(short_type_name::<E>(), message)
    }

    /// Marks the run failed with an explicit error type and message.
    pub fn fail_with(
        &mut self,
        error_type: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Self {
        if let Some(r) = self.record.as_mut() {
            r.success = false;
            r.error_type = Some(cut(error_type.into(), 200));
            r.error = Some(cut(message.into(), MAX_ERROR));
        }
        self
    }

    /// A stack trace for the failure (cut to 16 KiB).
    pub fn stack_trace(&mut self, trace: impl Into<String>) -> &mut Self {
        if let Some(r) = self.record.as_mut() {
            r.stack_trace = Some(cut(trace.into(), MAX_STACK_TRACE));
        }
        self
    }

    /// Records the run now (dropping the timer does the same).
    pub fn finish(self) {}
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.duration = self.started.elapsed();
            enqueue(
                &self.inner.queue,
                &self.inner.counters,
                self.inner.batch_size,
                r,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_short_and_text_is_cut_on_char_boundaries() {
        assert_eq!(
            short_type_name::<std::num::ParseIntError>(),
            "ParseIntError"
        );
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<Vec<String>>(), "Vec");
        assert_eq!(cut("ééé".into(), 3), "é");
        assert_eq!(cut("abc".into(), 10), "abc");
    }

    #[test]
    fn records_encode_as_the_ingest_endpoint_takes_them() {
        let r = OpRecord {
            operation: "gen".into(),
            user_id: Some("u1".into()),
            success: false,
            duration: Duration::from_millis(1500),
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            error: Some("boom".into()),
            error_type: Some("Timeout".into()),
            stack_trace: None,
            context: Some(serde_json::json!({"a": 1})),
            cache_hit: Some(false),
            layer: Some("fallback".into()),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&OpRecord::encode(&[r], Some("svc"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"operation": "gen", "status": "failure", "duration_ms": 1500.0,
                "ts": "2027-01-15T08:00:00.000Z", "service": "svc", "user_id": "u1", "error": "boom",
                "error_type": "Timeout", "context": {"a": 1}, "cache_hit": false, "layer": "fallback"}])
        );
    }
}
