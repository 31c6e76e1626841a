//! Dashboard users, their roles, passwords (argon2id) and login sessions.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::Change;
use crate::auth::{Actor, Scope};
use crate::clock::Clock;
use crate::secret::{TokenDigest, random_id, random_token};
use crate::store::StoreError;

mod password;
mod store;

pub use store::{AccountStore, SessionStore, UserStore};

pub use password::{
    ADMIN_WAIT, Busy, DEFAULT_CONCURRENCY, HashPermit, HashStats, PasswordHashing, SIGN_IN_WAIT,
};

/// What a dashboard user may do: `viewer` reads, `editor` also changes launch state (flags,
/// rules, incidents), `admin` also manages users and keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Editor,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "editor" => Some(Role::Editor),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn can_edit(self) -> bool {
        matches!(self, Role::Admin | Role::Editor)
    }

    pub fn can_administer(self) -> bool {
        self == Role::Admin
    }

    /// The API scope that matches what this role may read.
    pub fn scope(self) -> Scope {
        match self {
            Role::Admin => Scope::Admin,
            Role::Editor | Role::Viewer => Scope::Read,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.id.clone(),
            username: self.username.clone(),
        }
    }
}

/// A user as stored, with the PHC string of its argon2id password hash.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// A login session. The cookie holds the token; the store holds its digest.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub digest: TokenDigest,
    pub user_id: String,
    /// Sent with every state-changing form and compared in constant time.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name must be 1 to 64 characters: letters, digits, `.`, `_`, `-` or `@`")]
    InvalidUsername,
    #[error("password must be 8 to 1024 characters")]
    WeakPassword,
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("too many password checks are running; try again shortly")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

pub fn validate_username(raw: &str) -> Result<String, UserError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(UserError::InvalidUsername)
    }
}

/// A freshly started session: the token goes into the cookie.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: String,
    pub record: SessionRecord,
    pub user: User,
}

/// A session found from its cookie, with its user.
#[derive(Clone, Debug)]
pub struct ActiveSession {
    pub record: SessionRecord,
    pub user: User,
}

/// How a sign-in attempt ended.
#[derive(Debug)]
pub enum LoginOutcome {
    SignedIn(NewSession),
    /// Wrong name or password (the two are not told apart).
    Refused,
    /// No password check could start in time: nothing was verified, try again shortly.
    Busy,
}

#[derive(Clone)]
pub struct UserService {
    store: Arc<dyn AccountStore>,
    session_ttl: Duration,
    hashing: PasswordHashing,
    clock: Arc<dyn Clock>,
}

impl UserService {
    /// With [`DEFAULT_CONCURRENCY`] password hashes at once; see
    /// [`UserService::with_password_hashing`].
    pub fn new(store: Arc<dyn AccountStore>, session_ttl: Duration) -> Self {
        Self {
            store,
            session_ttl,
            hashing: PasswordHashing::default(),
            clock: crate::clock::system(),
        }
    }

    /// Reads the time (accounts created, sessions opened and expired) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs every hash and verification through `hashing`.
    pub fn with_password_hashing(mut self, hashing: PasswordHashing) -> Self {
        self.hashing = hashing;
        self
    }

    pub fn password_hashing(&self) -> &PasswordHashing {
        &self.hashing
    }

    pub async fn create(
        &self,
        by: &Actor,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, UserError> {
        let username = validate_username(username)?;
        let password_hash = self.hashing.hash(password, ADMIN_WAIT).await?;
        let user = User {
            id: random_id(),
            username,
            role,
            created_at: self.clock.now(),
        };
        let change = Change::new(by, "user.create", "user", &user.id)
            .after(json!({"username": user.username, "role": user.role}));
        let record = UserRecord {
            user: user.clone(),
            password_hash,
        };
        match self.store.insert_user(&record, &change).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict(_)) => Err(UserError::Exists(user.username)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(&self) -> Result<Vec<User>, StoreError> {
        self.store.list_users().await
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        self.store.count_users().await
    }

    /// Checks a password and opens a session. Takes a hashing permit first (waiting at most
    /// [`SIGN_IN_WAIT`]; `Busy` otherwise, with nothing looked up or verified); then exactly one
    /// verification runs whether or not the user exists.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOutcome, StoreError> {
        let Ok(permit) = self.hashing.permit(SIGN_IN_WAIT).await else {
            return Ok(LoginOutcome::Busy);
        };
        let record = if validate_username(username).is_ok() {
            self.store.find_user_by_name(username).await?
        } else {
            None
        };
        let phc = record.as_ref().map(|r| r.password_hash.clone());
        let ok = permit.verify(password, phc).await;
        let Some(record) = record.filter(|_| ok) else {
            return Ok(LoginOutcome::Refused);
        };
        let token = random_token(32);
        let now = self.clock.now();
        let session = SessionRecord {
            digest: TokenDigest::of(&token),
            user_id: record.user.id.clone(),
            csrf_token: random_token(32),
            created_at: now,
            expires_at: now + self.session_ttl,
        };
        self.store.insert_session(&session).await?;
        Ok(LoginOutcome::SignedIn(NewSession {
            token,
            record: session,
            user: record.user,
        }))
    }

    /// The live session for a cookie token, if any.
    pub async fn session(&self, token: &str) -> Result<Option<ActiveSession>, StoreError> {
        let Some(record) = self
            .store
            .find_session(&TokenDigest::of(token), self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.store.get_user(&record.user_id).await? else {
            return Ok(None);
        };
        Ok(Some(ActiveSession {
            record,
            user: user.user,
        }))
    }

    pub async fn logout(&self, token: &str) -> Result<(), StoreError> {
        self.store.delete_session(&TokenDigest::of(token)).await
    }

    pub async fn purge_expired_sessions(&self) -> Result<u64, StoreError> {
        self.store.purge_expired_sessions(self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_validated() {
        assert!(validate_username("ada.lovelace@example").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("<script>").is_err());
    }
}
