//! Admission control: at most `max_in_flight` requests are handled at once, and a request that
//! cannot start soon is refused with `Retry-After` instead of queueing behind thousands of
//! others. Waiting is bounded twice: in time (`wait`) and in length (as many waiters as
//! permits), so under overload a client hears "come back later" in well under a second rather
//! than timing out.
//!
//! Waiting is for bursts, not for standing queues (CoDel's insight): the gate keeps a moving
//! average of how long admitted requests waited, and while it is above [`TARGET_WAIT`] a request
//! that finds no free slot is refused at once instead of joining the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Above this average wait, requests that find no free slot are refused without waiting.
pub const TARGET_WAIT: Duration = Duration::from_millis(100);

pub struct Admission {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    /// Moving average of admission waits, in microseconds (an f64's bits).
    average_wait_us: AtomicU64,
}

impl Admission {
    pub fn new(max_in_flight: usize, wait: Duration) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            waiting: AtomicUsize::new(0),
            max_waiting: max_in_flight,
            wait,
            average_wait_us: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn average_wait(&self) -> Duration {
        Duration::from_micros(f64::from_bits(self.average_wait_us.load(Ordering::Relaxed)) as u64)
    }

    fn record_wait(&self, waited: Duration) {
        let sample = waited.as_micros() as f64;
        // Races between updates only blur the average a little; no lock is worth it here.
        let old = f64::from_bits(self.average_wait_us.load(Ordering::Relaxed));
        let next = old * 0.9 + sample * 0.1;
        self.average_wait_us
            .store(next.to_bits(), Ordering::Relaxed);
    }

    /// A permit to handle one request, or `None` when the server is too busy to start it within
    /// the bound.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            self.record_wait(Duration::ZERO);
            return Some(permit);
        }
        if self.average_wait() > TARGET_WAIT {
            return None;
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let started = Instant::now();
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.record_wait(started.elapsed());
        permit.ok().and_then(Result::ok)
    }

    /// Requests being handled now.
    pub fn in_flight(&self, max: usize) -> usize {
        max.saturating_sub(self.permits.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_at_once_when_the_queue_is_as_long_as_the_permits() {
        let gate = Arc::new(Admission::new(1, Duration::from_secs(30)));
        let held = gate.admit().await.expect("first request starts");
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit().await.is_some() })
        };
        tokio::task::yield_now().await;
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert!(gate.admit().await.is_none(), "the queue is full");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(held);
        assert!(waiter.await.unwrap(), "the waiter gets the freed permit");
    }

    #[tokio::test]
    async fn a_standing_queue_is_refused_without_waiting() {
        let gate = Admission::new(1, Duration::from_millis(500));
        let _held = gate.admit().await.unwrap();
        // Three waits that timed out push the average over the target.
        for _ in 0..3 {
            assert!(gate.admit().await.is_none());
        }
        assert!(gate.average_wait() > TARGET_WAIT);
        let started = Instant::now();
        assert!(gate.admit().await.is_none());
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "refused at once"
        );
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_bound() {
        let gate = Admission::new(1, Duration::from_millis(50));
        let _held = gate.admit().await.unwrap();
        assert!(gate.admit().await.is_none());
    }
}
