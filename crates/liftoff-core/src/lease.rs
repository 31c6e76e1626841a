//! Which replica runs the singleton jobs (uptime checks, rollout steps, alert evaluation, the
//! notification outbox, report schedules, compaction, retention, sealing): the one holding the
//! `singletons` lease in the state store.
//!
//! A keeper task renews the lease every third of its TTL. A replica runs singleton work only
//! while its own clock says the lease is still its: the local deadline is counted from before
//! the renewal was asked and ends a fifth of the TTL early, so another replica, which may only
//! take the lease once the store's expiry has passed, never starts while this one still
//! believes it holds it (up to that much clock difference between the machines). When the
//! holder dies, another replica takes the lease at its next renewal after the expiry: within
//! TTL + TTL/3 (20 s with the default 15 s). On SQLite one process owns the data: the store
//! always grants the lease.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The lease the singleton jobs run under.
pub const SINGLETONS: &str = "singletons";
/// How long a lease lasts without renewal unless set (`--lease-ttl-seconds`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// Named leases with a holder and an expiry, shared by every replica of one state store.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `until` if it is free, expired at
    /// `now` or already `holder`'s; `true` when `holder` holds it afterwards. A single-process
    /// backend always answers `true`.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up if `holder` has it (at shutdown, so another replica need not wait
    /// for the expiry).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// This replica's claim on the `singletons` lease.
pub struct Leadership {
    store: std::sync::Arc<dyn LeaseStore>,
    holder: String,
    ttl: Duration,
    /// Until when (this process's monotonic clock) singleton work may run here.
    held_until: Mutex<Option<Instant>>,
    /// Times this replica took the lease over (not renewals).
    acquired: AtomicU64,
}

/// What `/health/detailed` says about the lease.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LeaseStatus {
    /// This replica's name in the lease table.
    pub holder: String,
    /// Whether this replica runs the singleton jobs now.
    pub held: bool,
    pub ttl_seconds: f64,
    /// Times this replica took the lease (1 for a replica that has held it since it started).
    pub acquired: u64,
}

impl Leadership {
    pub fn new(store: std::sync::Arc<dyn LeaseStore>, holder: String, ttl: Duration) -> Self {
        Self {
            store,
            holder,
            ttl,
            held_until: Mutex::new(None),
            acquired: AtomicU64::new(0),
        }
    }

    /// A name unique to this process: its id and a random part (a restarted process is a new
    /// holder). No host name: `/health/detailed` is public.
    pub fn holder_name() -> String {
        format!(
            "liftoff-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    }

    /// How often the keeper renews.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Takes or renews the lease; `true` while held. A store that cannot answer leaves the
    /// local deadline as it was: the lease may still be ours until then, and not after.
    pub async fn renew(&self) -> bool {
        let asked = Instant::now();
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let outcome = self
            .store
            .try_lease(SINGLETONS, &self.holder, until, now)
            .await;
        let Ok(mut held) = self.held_until.lock() else {
            return false;
        };
        let was = held.is_some_and(|t| Instant::now() < t);
        match outcome {
            Ok(true) => {
                *held = Some(asked + self.ttl.mul_f64(0.8));
                if !was {
                    self.acquired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(holder = %self.holder, "This replica now runs the singleton jobs.");
                }
            }
            Ok(false) => {
                if was {
                    tracing::warn!(holder = %self.holder, "Another replica took the singleton lease.");
                }
                *held = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not renew the singleton lease; singleton jobs stop here when it runs out.");
            }
        }
        held.is_some_and(|t| Instant::now() < t)
    }

    /// Whether singleton work may run on this replica now.
    pub fn held(&self) -> bool {
        self.held_until
            .lock()
            .map(|h| h.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    /// Gives the lease up (at shutdown, after the jobs stopped).
    pub async fn release(&self) -> Result<(), StoreError> {
        if let Ok(mut held) = self.held_until.lock() {
            *held = None;
        }
        self.store.release_lease(SINGLETONS, &self.holder).await
    }

    pub fn status(&self) -> LeaseStatus {
        LeaseStatus {
            holder: self.holder.clone(),
            held: self.held(),
            ttl_seconds: self.ttl.as_secs_f64(),
            acquired: self.acquired.load(Ordering::Relaxed),
        }
    }

    /// Renews every [`Self::renew_every`] until `stop` completes. The caller asks for the
    /// lease once before (so jobs know from their first tick); the first renewal here comes a
    /// third of the TTL later.
    pub async fn keep(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.renew_every()) => {}
            }
            self.renew().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// A lease table like PostgreSQL's, in memory.
    #[derive(Default)]
    struct Table(Mutex<HashMap<String, (String, DateTime<Utc>)>>);

    #[async_trait]
    impl LeaseStore for Table {
        async fn try_lease(
            &self,
            name: &str,
            holder: &str,
            until: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut t = self.0.lock().unwrap();
            match t.get(name) {
                Some((h, exp)) if h != holder && *exp >= now => Ok(false),
                _ => {
                    t.insert(name.into(), (holder.into(), until));
                    Ok(true)
                }
            }
        }
        async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
            let mut t = self.0.lock().unwrap();
            if t.get(name).is_some_and(|(h, _)| h == holder) {
                t.remove(name);
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_release_hands_over() {
        let table = Arc::new(Table::default());
        let ttl = Duration::from_millis(300);
        let a = Leadership::new(table.clone(), "a".into(), ttl);
        let b = Leadership::new(table.clone(), "b".into(), ttl);
        assert!(a.renew().await);
        assert!(!b.renew().await);
        assert!(a.held() && !b.held());
        // a stops renewing (dies): its own deadline ends before the store's expiry, and b
        // takes over only after that expiry.
        tokio::time::sleep(ttl.mul_f64(0.85)).await;
        assert!(!a.held(), "a stops believing first");
        assert!(!b.renew().await, "the store's expiry has not passed yet");
        tokio::time::sleep(ttl.mul_f64(0.3)).await;
        assert!(b.renew().await);
        assert!(!a.renew().await);
        b.release().await.unwrap();
        assert!(!b.held());
        assert!(a.renew().await);
        assert_eq!(a.status().acquired, 2);
        assert_eq!(b.status().acquired, 1);
    }
}
