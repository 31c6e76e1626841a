//! Time as a port: services read the current time only through a [`Clock`].
//!
//! The server runs on [`SystemClock`]; tests hand services a [`ManualClock`] and step it, so
//! anything that depends on time passing (sessions expiring, rollout steps falling due) is
//! tested without waiting and without hidden settings. Pure functions take `now` as an
//! argument instead of a clock.
//!
//! Not to be confused with [`analytics::Clock`](crate::analytics::Clock), which says where an
//! ingested event's timestamp came from. This module imports from no domain.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where services read the current time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The clock services use unless told otherwise.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is set or stepped; clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(at)),
        }
    }

    /// Moves the time to `at` (backwards too).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Moves the time forward by `by`; returns the new time.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.lock();
        *now += by;
        *now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding the lock cannot leave a time half-written.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let clock = ManualClock::new(t0);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now(), t0);
        assert_eq!(
            clock.advance(Duration::minutes(5)),
            t0 + Duration::minutes(5)
        );
        assert_eq!(shared.now(), t0 + Duration::minutes(5));
        clock.set(t0);
        assert_eq!(shared.now(), t0);
    }

    #[test]
    fn the_system_clock_follows_the_machine() {
        let before = Utc::now();
        let read = SystemClock.now();
        assert!(read >= before && read <= Utc::now());
    }
}
