//! API keys, scopes and the principals requests act as.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::Change;
use crate::clock::Clock;
use crate::secret::{TokenDigest, random_id, random_token};
use crate::store::StoreError;

mod store;

pub use store::KeyStore;

/// What a key may do. `admin` may do everything; `read` every GET of the API; `ingest` sends
/// data and evaluates flags, and is safe to ship inside a client app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Admin,
    Read,
    Ingest,
}

impl Scope {
    /// Whether a principal holding `self` may use a route that requires `required`.
    pub fn grants(self, required: Scope) -> bool {
        self == Scope::Admin || self == required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Scope::Admin),
            "read" => Some(Scope::Read),
            "ingest" => Some(Scope::Ingest),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is acting: written into audit entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Key {
        id: String,
        name: String,
    },
    User {
        id: String,
        username: String,
    },
    /// The token given in `LIFTOFF_ADMIN_TOKEN`.
    BootstrapToken,
    /// Liftoff itself (first start, scheduled jobs).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Key { name, .. } => write!(f, "key:{name}"),
            Actor::User { username, .. } => write!(f, "user:{username}"),
            Actor::BootstrapToken => f.write_str("key:LIFTOFF_ADMIN_TOKEN"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl Actor {
    /// A stable identity for per-caller limits: two keys with the same name are two callers.
    pub fn identity(&self) -> String {
        match self {
            Actor::Key { id, .. } => format!("key:{id}"),
            Actor::User { id, .. } => format!("user:{id}"),
            Actor::BootstrapToken => "bootstrap".to_owned(),
            Actor::System => "system".to_owned(),
        }
    }
}

/// An authenticated caller and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub actor: Actor,
    pub scope: Scope,
}

impl Principal {
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            scope: Scope::Admin,
        }
    }
}

/// A key as listed: never the token, only its first characters to recognise it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the token, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key as stored: the listing plus the digest of its token.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub digest: TokenDigest,
}

/// The answer to creating a key: the only time the token is seen.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// The secret. Shown once; Liftoff keeps only its SHA-256 digest.
    pub token: String,
}

/// Tokens start with this so secret scanners and people recognise them.
pub const TOKEN_PREFIX: &str = "lft_";
const PREFIX_SHOWN: usize = TOKEN_PREFIX.len() + 8;

/// A key name: 1–100 printable characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 100
            || trimmed.chars().any(char::is_control)
        {
            return Err(KeyError::InvalidName);
        }
        Ok(Self(trimmed.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key name must be 1 to 100 printable characters")]
    InvalidName,
    #[error("no active key with id `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long an authentication answer is reused before the store is asked again. Bounds how long
/// a key revoked on another replica keeps working here.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(5);
const AUTH_CACHE_MAX: usize = 10_000;
/// `last_used_at` is written at most this often per key, so reads stay reads.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct CachedAuth {
    principal: Option<Principal>,
    key_id: Option<String>,
    at: Instant,
}

/// Creates, lists, revokes and checks API keys.
#[derive(Clone)]
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    bootstrap: Option<TokenDigest>,
    cache: Arc<Mutex<HashMap<TokenDigest, CachedAuth>>>,
    touched: Arc<Mutex<HashMap<String, Instant>>>,
    clock: Arc<dyn Clock>,
}

impl KeyService {
    /// `bootstrap_token` is `LIFTOFF_ADMIN_TOKEN`: an admin key that lives only in the
    /// environment.
    pub fn new(store: Arc<dyn KeyStore>, bootstrap_token: Option<&str>) -> Self {
        Self {
            store,
            bootstrap: bootstrap_token.map(TokenDigest::of),
            cache: Arc::default(),
            touched: Arc::default(),
            clock: crate::clock::system(),
        }
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Active (not revoked) keys, of one scope or all.
    pub async fn count_active(&self, scope: Option<Scope>) -> Result<u64, StoreError> {
        self.store.count_active_keys(scope).await
    }

    pub async fn create(
        &self,
        by: &Actor,
        name: KeyName,
        scope: Scope,
        reason: Option<String>,
    ) -> Result<CreatedKey, KeyError> {
        let token = format!("{TOKEN_PREFIX}{}", random_token(32));
        let key = ApiKey {
            id: random_id(),
            name: name.0,
            scope,
            prefix: token[..PREFIX_SHOWN].to_owned(),
            created_at: self.clock.now(),
            created_by: by.to_string(),
            last_used_at: None,
            revoked_at: None,
        };
        let change = Change::new(by, "key.create", "key", &key.id)
            .after(json!({"name": key.name, "scope": key.scope, "prefix": key.prefix}))
            .reason(reason);
        let record = KeyRecord {
            digest: TokenDigest::of(&token),
            key: key.clone(),
        };
        self.store.insert_key(&record, &change).await?;
        Ok(CreatedKey {
            id: key.id,
            name: key.name,
            scope: key.scope,
            prefix: key.prefix,
            created_at: key.created_at,
            token,
        })
    }

    pub async fn list(&self) -> Result<Vec<ApiKey>, KeyError> {
        Ok(self.store.list_keys().await?)
    }

    pub async fn revoke(
        &self,
        by: &Actor,
        id: &str,
        reason: Option<String>,
    ) -> Result<(), KeyError> {
        let before = self
            .store
            .list_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
        let change = Change::new(by, "key.revoke", "key", id)
            .before(json!({"name": before.name, "scope": before.scope, "prefix": before.prefix}))
            .after(json!({"revoked": true}))
            .reason(reason);
        if !self.store.revoke_key(id, &change).await? {
            return Err(KeyError::NotFound(id.to_owned()));
        }
        self.forget_cached();
        Ok(())
    }

    /// The principal a bearer token stands for, or `None` for an unknown or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let digest = TokenDigest::of(token);
        if self.bootstrap.as_ref() == Some(&digest) {
            return Ok(Some(Principal {
                actor: Actor::BootstrapToken,
                scope: Scope::Admin,
            }));
        }
        if let Some(hit) = self.cached(&digest) {
            self.touch(hit.key_id.as_deref());
            return Ok(hit.principal);
        }
        let found = self.store.find_active_key(&digest).await?;
        let entry = CachedAuth {
            principal: found.as_ref().map(|k| Principal {
                actor: Actor::Key {
                    id: k.id.clone(),
                    name: k.name.clone(),
                },
                scope: k.scope,
            }),
            key_id: found.as_ref().map(|k| k.id.clone()),
            at: Instant::now(),
        };
        self.touch(entry.key_id.as_deref());
        let principal = entry.principal.clone();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= AUTH_CACHE_MAX {
                cache.clear();
            }
            cache.insert(digest, entry);
        }
        Ok(principal)
    }

    fn cached(&self, digest: &TokenDigest) -> Option<CachedAuth> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(digest)
            .filter(|c| c.at.elapsed() < AUTH_CACHE_TTL)
            .cloned()
    }

    fn forget_cached(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    fn touch(&self, key_id: Option<&str>) {
        let Some(id) = key_id else { return };
        {
            let Ok(mut touched) = self.touched.lock() else {
                return;
            };
            if touched.get(id).is_some_and(|t| t.elapsed() < TOUCH_EVERY) {
                return;
            }
            if touched.len() >= AUTH_CACHE_MAX {
                touched.clear();
            }
            touched.insert(id.to_owned(), Instant::now());
        }
        let store = self.store.clone();
        let id = id.to_owned();
        let now = self.clock.now();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&id, now).await {
                tracing::warn!(key = %id, error = %e, "Could not record key use.");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_grants_everything_others_only_themselves() {
        for required in [Scope::Admin, Scope::Read, Scope::Ingest] {
            assert!(Scope::Admin.grants(required));
        }
        assert!(Scope::Read.grants(Scope::Read));
        assert!(!Scope::Read.grants(Scope::Admin));
        assert!(!Scope::Read.grants(Scope::Ingest));
        assert!(Scope::Ingest.grants(Scope::Ingest));
        assert!(!Scope::Ingest.grants(Scope::Read));
    }

    #[test]
    fn key_names_are_validated() {
        assert!(KeyName::parse("  ci deploy ").is_ok());
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse("a\u{0}b").is_err());
        assert!(KeyName::parse(&"x".repeat(101)).is_err());
    }
}
