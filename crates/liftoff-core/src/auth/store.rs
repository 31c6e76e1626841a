//! The port the key service keeps API keys through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::Change;
use crate::auth::{ApiKey, KeyRecord, Scope};
use crate::secret::TokenDigest;
use crate::store::StoreError;

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &KeyRecord, change: &Change) -> Result<(), StoreError>;
    /// Every key, revoked ones included, newest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The active (not revoked) key with this digest.
    async fn find_active_key(&self, digest: &TokenDigest) -> Result<Option<ApiKey>, StoreError>;
    /// Marks a key revoked; `false` if there is no active key with this id.
    async fn revoke_key(&self, id: &str, change: &Change) -> Result<bool, StoreError>;
    /// Records when a key was last used (not audited: it is not a change of state a person made).
    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn count_active_keys(&self, scope: Option<Scope>) -> Result<u64, StoreError>;
}
