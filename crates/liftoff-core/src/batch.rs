//! Group commit for ingest: many requests' items are written to the store in one transaction,
//! and each request is answered only once its items are committed. A 2xx on ingest therefore
//! means the data is durable, while the store sees a few large writes instead of many small
//! ones. The queue is bounded: when it is full, `submit` refuses at once so the HTTP layer can
//! answer 429 with `Retry-After` instead of buffering without limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    Store(String),
}

struct Pending<T> {
    items: Vec<T>,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to submit items; cheap to clone.
pub struct BatchWriter<T> {
    tx: mpsc::Sender<Pending<T>>,
    queued: Arc<AtomicU64>,
}

impl<T> Clone for BatchWriter<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
        }
    }
}

/// Most items written in one transaction.
const MAX_GROUP_ITEMS: usize = 100_000;

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
        let queued = Arc::new(AtomicU64::new(0));
        let depth = queued.clone();
        let cap = capacity as u64;
        registry.register_queue(name, move || (depth.load(Ordering::Relaxed), cap));
        let counter = queued.clone();
        let registry = registry.clone();
        let job = format!("{name}-writer");
        registry.register(&job, 0);
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut n = group[0].items.len();
                while n < MAX_GROUP_ITEMS {
                    match rx.try_recv() {
                        Ok(p) => {
                            n += p.items.len();
                            group.push(p);
                        }
                        Err(_) => break,
                    }
                }
                counter.fetch_sub(group.len() as u64, Ordering::Relaxed);
                let mut items = Vec::with_capacity(n);
                let mut waiters = Vec::with_capacity(group.len());
                for p in group {
                    items.extend(p.items);
                    waiters.push(p.done);
                }
                let started = chrono::Utc::now();
                let clock = Instant::now();
                let outcome = flush(items).await.map_err(|e| e.to_string());
                registry.record(
                    &job,
                    started,
                    clock.elapsed().as_secs_f64() * 1000.0,
                    outcome.clone().err(),
                );
                if let Err(e) = &outcome {
                    tracing::error!(queue = %job, error = %e, "Ingest batch not committed.");
                }
                for w in waiters {
                    let _ = w.send(outcome.clone());
                }
            }
        });
        (Self { tx, queued }, handle)
    }

    /// Queues `items` and waits until they are committed.
    pub async fn submit(&self, items: Vec<T>) -> Result<(), SubmitError> {
        let (done, wait) = oneshot::channel();
        match self.tx.try_send(Pending { items, done }) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => return Err(SubmitError::Overloaded),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SubmitError::Closed),
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SubmitError::Store(e)),
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
}
