//! How the state store is doing, for the health endpoints and the dashboard's overview.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{StoreError, StoreHealth};

/// One look at the state store.
#[derive(Debug)]
pub struct StoreCheck {
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
}

impl HealthService {
    pub fn new(store: Arc<dyn StoreHealth>) -> Self {
        Self { store }
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the store answers, and how fast: the readiness probe.
    pub async fn ping(&self) -> Result<std::time::Duration, crate::store::StoreError> {
        self.store.ping().await
    }

    /// Pings the store and reads its schema version, at once.
    pub async fn check_store(&self) -> StoreCheck {
        let (ping, schema_version) = tokio::join!(self.store.ping(), self.store.schema_version());
        StoreCheck {
            backend: self.store.backend(),
            ping,
            schema_version,
        }
    }
}
