//! The ports dashboard users and their sessions are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::Change;
use crate::secret::TokenDigest;
use crate::store::StoreError;
use crate::users::{SessionRecord, User, UserRecord};

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the user name is taken.
    async fn insert_user(&self, user: &UserRecord, change: &Change) -> Result<(), StoreError>;
    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session with this digest, if it has not expired at `now`.
    async fn find_session(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;
    async fn delete_session(&self, digest: &TokenDigest) -> Result<(), StoreError>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Both ports of the dashboard's accounts: what [`UserService`](crate::users::UserService) holds.
pub trait AccountStore: UserStore + SessionStore {}
impl<T: UserStore + SessionStore + ?Sized> AccountStore for T {}
