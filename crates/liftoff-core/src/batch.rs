//! Group commit for ingest: many requests' items are written to the store in one transaction,
//! and each request is answered only once its items are committed. A 2xx on ingest therefore
//! means the data is durable, while the store sees a few large writes instead of many small
//! ones. The queue is bounded: when it is full, `submit` refuses at once so the HTTP layer can
//! answer 429 with `Retry-After` instead of buffering without limit.
//!
//! Full is measured in time, not only in requests: the writer keeps a running estimate of how
//! many items it commits per second, and a request whose items would wait longer than
//! [`MAX_QUEUE_WAIT`] behind those already queued is refused at once. A request that still
//! ends up waiting longer than [`STALE_AFTER`] (a stalled disk) is answered "overloaded"
//! without being written, so no client waits for an answer that comes too late to matter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::jobs::JobRegistry;
use crate::store::StoreError;

/// Writes one group of items in one transaction.
pub type FlushFn<T> = Arc<
    dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> + Send + Sync,
>;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: retry later.
    #[error("the ingest queue is full")]
    Overloaded,
    /// The writer has stopped (shutdown).
    #[error("ingest is shutting down")]
    Closed,
    /// The store refused the write; nothing of this group was committed.
    #[error("the store could not commit the batch: {0}")]
    Store(StoreError),
}

struct Pending<T> {
    items: Vec<T>,
    enqueued: Instant,
    done: oneshot::Sender<Result<(), Refusal>>,
}

/// Why the writer did not commit a request's items.
#[derive(Clone)]
enum Refusal {
    Stale,
    Store(StoreError),
}

/// Longest expected wait behind the queued items before a request is refused.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_millis(500);
/// A request that waited this long in the queue is refused instead of written.
pub const STALE_AFTER: Duration = Duration::from_secs(2);

/// Queue depth and the writer's measured pace, shared by the handles and the writer.
#[derive(Default)]
struct Pace {
    /// Requests waiting.
    queued: AtomicU64,
    /// Items waiting or being written: a request queued now waits for both.
    queued_items: AtomicU64,
    /// Items committed per second of writing (an f64's bits; 0 until the first commit).
    items_per_second: AtomicU64,
}

impl Pace {
    fn rate(&self) -> f64 {
        f64::from_bits(self.items_per_second.load(Ordering::Relaxed))
    }

    /// Folds one commit into the running rate (a moving average over about ten commits).
    fn record(&self, items: usize, took: Duration) {
        let secs = took.as_secs_f64().max(1e-4);
        let now = items as f64 / secs;
        let old = self.rate();
        let next = if old == 0.0 {
            now
        } else {
            old * 0.9 + now * 0.1
        };
        self.items_per_second
            .store(next.to_bits(), Ordering::Relaxed);
    }

    /// How many items one transaction may take: about half of [`MAX_QUEUE_WAIT`] of writing,
    /// so requests queued behind a group never grow stale while it commits (a group sized
    /// by count alone took seconds under load, and everything queued behind it was refused
    /// after its body had been read and parsed).
    fn group_limit(&self) -> usize {
        let rate = self.rate();
        if rate == 0.0 {
            return MIN_GROUP_ITEMS;
        }
        ((rate * MAX_QUEUE_WAIT.as_secs_f64() / 2.0) as usize)
            .clamp(MIN_GROUP_ITEMS, MAX_GROUP_ITEMS)
    }

    /// Whether `items` more would wait longer than [`MAX_QUEUE_WAIT`].
    fn would_wait_too_long(&self, items: usize) -> bool {
        let rate = self.rate();
        if rate == 0.0 {
            return false;
        }
        let ahead = self.queued_items.load(Ordering::Relaxed) as f64;
        // One request alone is always taken, however large.
        ahead > 0.0 && (ahead + items as f64) / rate > MAX_QUEUE_WAIT.as_secs_f64()
    }
}

/// A handle to submit items; cheap to clone.
pub struct BatchWriter<T> {
    tx: mpsc::Sender<Pending<T>>,
    pace: Arc<Pace>,
}

impl<T> Clone for BatchWriter<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            pace: self.pace.clone(),
        }
    }
}

/// Most items written in one transaction.
const MAX_GROUP_ITEMS: usize = 100_000;
/// A group may always take this many, whatever the measured pace.
const MIN_GROUP_ITEMS: usize = 5_000;

impl<T: Send + 'static> BatchWriter<T> {
    /// Starts the writer task. `capacity` bounds the number of waiting requests; the task ends
    /// after every handle is dropped and the queue is drained, so dropping the handles (or the
    /// service holding them) at shutdown flushes everything accepted.
    pub fn start(
        name: &str,
        capacity: usize,
        registry: &JobRegistry,
        flush: FlushFn<T>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Pending<T>>(capacity);
        let pace = Arc::new(Pace::default());
        let depth = pace.clone();
        let cap = capacity as u64;
        registry.register_queue(name, move || (depth.queued.load(Ordering::Relaxed), cap));
        let counter = pace.clone();
        let registry = registry.clone();
        let job = format!("{name}-writer");
        registry.register(&job, 0);
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut n = group[0].items.len();
                let limit = counter.group_limit();
                while n < limit {
                    match rx.try_recv() {
                        Ok(p) => {
                            n += p.items.len();
                            group.push(p);
                        }
                        Err(_) => break,
                    }
                }
                counter
                    .queued
                    .fetch_sub(group.len() as u64, Ordering::Relaxed);
                let taken = n as u64;
                let mut items = Vec::with_capacity(n);
                let mut waiters = Vec::with_capacity(group.len());
                for p in group {
                    if p.enqueued.elapsed() > STALE_AFTER {
                        let _ = p.done.send(Err(Refusal::Stale));
                        continue;
                    }
                    items.extend(p.items);
                    waiters.push(p.done);
                }
                if waiters.is_empty() {
                    counter.queued_items.fetch_sub(taken, Ordering::Relaxed);
                    continue;
                }
                let n = items.len();
                let started = chrono::Utc::now();
                let clock = Instant::now();
                let outcome = flush(items).await;
                counter.record(n, clock.elapsed());
                counter.queued_items.fetch_sub(taken, Ordering::Relaxed);
                registry.record(
                    &job,
                    started,
                    clock.elapsed().as_secs_f64() * 1000.0,
                    outcome.as_ref().err().map(ToString::to_string),
                );
                if let Err(e) = &outcome {
                    tracing::error!(queue = %job, error = %e, "Ingest batch not committed.");
                }
                for w in waiters {
                    let _ = w.send(outcome.clone().map_err(Refusal::Store));
                }
            }
        });
        (Self { tx, pace }, handle)
    }

    /// Whether a new request would be refused for the queue's length right now: lets the HTTP
    /// layer answer 429 before it reads and parses a body that would be refused anyway.
    pub fn admit(&self) -> Result<(), SubmitError> {
        if self.pace.would_wait_too_long(0) {
            Err(SubmitError::Overloaded)
        } else {
            Ok(())
        }
    }

    /// Queues `items` and waits until they are committed.
    pub async fn submit(&self, items: Vec<T>) -> Result<(), SubmitError> {
        if self.pace.would_wait_too_long(items.len()) {
            return Err(SubmitError::Overloaded);
        }
        let (done, wait) = oneshot::channel();
        let n = items.len() as u64;
        // Counted before sending, so the writer never subtracts what was not yet added.
        self.pace.queued.fetch_add(1, Ordering::Relaxed);
        self.pace.queued_items.fetch_add(n, Ordering::Relaxed);
        let pending = Pending {
            items,
            enqueued: Instant::now(),
            done,
        };
        if let Err(e) = self.tx.try_send(pending) {
            self.pace.queued.fetch_sub(1, Ordering::Relaxed);
            self.pace.queued_items.fetch_sub(n, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
            });
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refusal::Stale)) => Err(SubmitError::Overloaded),
            Ok(Err(Refusal::Store(e))) => Err(SubmitError::Store(e)),
            Err(_) => Err(SubmitError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn groups_are_committed_before_answers() {
        let written: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let sink = written.clone();
        let flush: FlushFn<u32> = Arc::new(move |items| {
            let sink = sink.clone();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                sink.lock().unwrap().push(items);
                Ok(())
            })
        });
        let (writer, handle) = BatchWriter::start("test", 100, &JobRegistry::default(), flush);
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let w = writer.clone();
            let sink = written.clone();
            tasks.push(tokio::spawn(async move {
                w.submit(vec![i, i + 1000]).await.unwrap();
                // Answered only after the item is in the store.
                assert!(sink.lock().unwrap().iter().flatten().any(|x| *x == i));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let groups = written.lock().unwrap().clone();
        assert_eq!(
            groups.iter().map(Vec::len).sum::<usize>(),
            100,
            "every item exactly once"
        );
        assert!(
            groups.len() < 50,
            "requests were grouped: {} groups",
            groups.len()
        );
        drop(writer);
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_store_errors_reach_the_caller() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let g = gate.clone();
        let flush: FlushFn<u32> = Arc::new(move |_items| {
            let g = g.clone();
            Box::pin(async move {
                let _permit = g.acquire().await;
                Err(StoreError::Unavailable("disk full".into()))
            })
        });
        let (writer, _handle) = BatchWriter::start("test", 1, &JobRegistry::default(), flush);
        let w1 = writer.clone();
        let first = tokio::spawn(async move { w1.submit(vec![1]).await });
        tokio::time::sleep(Duration::from_millis(20)).await; // the writer holds the first group
        let w2 = writer.clone();
        let second = tokio::spawn(async move { w2.submit(vec![2]).await });
        tokio::time::sleep(Duration::from_millis(20)).await; // the second fills the queue
        assert!(matches!(
            writer.submit(vec![3]).await,
            Err(SubmitError::Overloaded)
        ));
        gate.add_permits(10);
        assert!(matches!(first.await.unwrap(), Err(SubmitError::Store(_))));
        assert!(matches!(second.await.unwrap(), Err(SubmitError::Store(_))));
    }

    #[test]
    fn the_pace_refuses_what_would_wait_longer_than_the_bound() {
        let pace = Pace::default();
        assert!(
            !pace.would_wait_too_long(1_000_000),
            "no estimate yet: accept"
        );
        pace.record(10_000, Duration::from_secs(1));
        assert!(
            !pace.would_wait_too_long(50_000),
            "alone in the queue: accept"
        );
        pace.queued_items.store(4_000, Ordering::Relaxed);
        assert!(!pace.would_wait_too_long(500), "0.45 s behind the queue");
        assert!(pace.would_wait_too_long(1_500), "0.55 s behind the queue");
    }

    #[test]
    fn a_group_takes_about_a_quarter_second_of_writing() {
        let pace = Pace::default();
        assert_eq!(pace.group_limit(), MIN_GROUP_ITEMS, "no estimate yet");
        pace.record(100_000, Duration::from_secs(1));
        assert_eq!(pace.group_limit(), 25_000);
        let fast = Pace::default();
        fast.record(10_000_000, Duration::from_secs(1));
        assert_eq!(fast.group_limit(), MAX_GROUP_ITEMS);
    }

    #[tokio::test]
    async fn items_being_written_count_as_ahead() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let g = gate.clone();
        let flush: FlushFn<u32> = Arc::new(move |_items| {
            let g = g.clone();
            Box::pin(async move {
                let _permit = g.acquire().await;
                Ok(())
            })
        });
        let (writer, _handle) = BatchWriter::start("test", 10, &JobRegistry::default(), flush);
        writer.pace.record(1_000, Duration::from_secs(1));
        let w1 = writer.clone();
        let first = tokio::spawn(async move { w1.submit(vec![0; 900]).await });
        tokio::time::sleep(Duration::from_millis(20)).await; // the writer holds it
        assert!(
            matches!(writer.admit(), Err(SubmitError::Overloaded)),
            "900 items being written at 1,000/s are 0.9 s ahead"
        );
        gate.add_permits(10);
        assert!(first.await.unwrap().is_ok());
        assert!(writer.admit().is_ok(), "nothing ahead once committed");
    }

    #[tokio::test]
    async fn a_request_that_waited_too_long_is_refused_not_written() {
        let written: Arc<Mutex<Vec<u32>>> = Arc::default();
        let sink = written.clone();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let g = gate.clone();
        let flush: FlushFn<u32> = Arc::new(move |items| {
            let (sink, g) = (sink.clone(), g.clone());
            Box::pin(async move {
                let _permit = g.acquire().await;
                sink.lock().unwrap().extend(items);
                Ok(())
            })
        });
        let (writer, _handle) = BatchWriter::start("test", 10, &JobRegistry::default(), flush);
        let w1 = writer.clone();
        let first = tokio::spawn(async move { w1.submit(vec![1]).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let w2 = writer.clone();
        let second = tokio::spawn(async move { w2.submit(vec![2]).await });
        tokio::time::sleep(STALE_AFTER + Duration::from_millis(100)).await;
        gate.add_permits(10);
        assert!(first.await.unwrap().is_ok());
        assert!(matches!(
            second.await.unwrap(),
            Err(SubmitError::Overloaded)
        ));
        assert_eq!(*written.lock().unwrap(), vec![1]);
    }
}
