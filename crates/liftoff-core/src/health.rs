//! How the stores are doing, for the health endpoints and the dashboard's overview.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{StoreError, StoreHealth};

/// One look at a store.
#[derive(Debug)]
pub struct StoreCheck {
    /// `"state"`, or `"events"` when events are kept in a store of their own (ClickHouse).
    pub name: &'static str,
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// A round trip's latency, or why there was none.
    pub ping: Result<Duration, StoreError>,
    /// The highest migration applied.
    pub schema_version: Result<i64, StoreError>,
}

#[derive(Clone)]
pub struct HealthService {
    store: Arc<dyn StoreHealth>,
    /// Stores beside the state store (events in ClickHouse), by name.
    others: Vec<(&'static str, Arc<dyn StoreHealth>)>,
}

impl HealthService {
    pub fn new(store: Arc<dyn StoreHealth>) -> Self {
        Self {
            store,
            others: Vec::new(),
        }
    }

    /// Watches another store too: it is checked beside the state store, and readiness needs
    /// it.
    pub fn with_store(mut self, name: &'static str, store: Arc<dyn StoreHealth>) -> Self {
        self.others.push((name, store));
        self
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether every store answers, and how fast the state store does: the readiness probe.
    pub async fn ping(&self) -> Result<std::time::Duration, crate::store::StoreError> {
        let latency = self.store.ping().await?;
        for (_, other) in &self.others {
            other.ping().await?;
        }
        Ok(latency)
    }

    /// Pings the state store and reads its schema version, at once.
    pub async fn check_store(&self) -> StoreCheck {
        check("state", &*self.store).await
    }

    /// [`Self::check_store`] for every store, the state store first.
    pub async fn check_stores(&self) -> Vec<StoreCheck> {
        let mut out = vec![self.check_store().await];
        for (name, other) in &self.others {
            out.push(check(name, &**other).await);
        }
        out
    }
}

async fn check(name: &'static str, store: &dyn StoreHealth) -> StoreCheck {
    let (ping, schema_version) = tokio::join!(store.ping(), store.schema_version());
    StoreCheck {
        name,
        backend: store.backend(),
        ping,
        schema_version,
    }
}
