//! The embedded default: SQLite files under the data directory, in WAL mode.

mod alerts;
mod db;
mod deployments;
mod events;
mod experiments;
mod flags;
mod incidents;
mod launch;
mod metrics;
mod operations;
pub(crate) mod reports;
mod uptime;

pub use events::SqliteEvents;
pub use metrics::SqliteMetrics;

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use liftoff_core::audit::AuditStore;
use liftoff_core::audit::{AuditEntry, AuditQuery, Change};
use liftoff_core::auth::KeyStore;
use liftoff_core::auth::{ApiKey, KeyRecord, Scope};
use liftoff_core::secret::TokenDigest;
use liftoff_core::store::{StoreError, StoreHealth};
use liftoff_core::users::{Role, SessionRecord, User, UserRecord};
use liftoff_core::users::{SessionStore, UserStore};
use rusqlite::{OptionalExtension, Row, params};

use crate::codec::ms;
use crate::migrations;
use db::{Db, sql_err};

/// The state store on SQLite (`<data>/state.db`).
#[derive(Clone)]
pub struct SqliteState {
    db: Db,
}

impl SqliteState {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: Db::open(path, migrations::SQLITE).await?,
        })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }
}

fn time(ms: i64) -> Result<DateTime<Utc>, rusqlite::Error> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            "timestamp out of range".into(),
        )
    })
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, rusqlite::Error> {
    ms.map(time).transpose()
}

fn conversion(what: &str, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("invalid {what} `{value}`").into(),
    )
}

fn json_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

fn json_value(s: Option<String>) -> Result<Option<serde_json::Value>, rusqlite::Error> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| conversion("json", e.to_string())))
        .transpose()
}

pub(crate) fn write_audit(tx: &rusqlite::Transaction<'_>, c: &Change) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target_type, target_id, before, after, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            ms(c.at),
            c.actor,
            c.action,
            c.target_type,
            c.target_id,
            json_text(&c.before),
            json_text(&c.after),
            c.reason
        ],
    )
    .map_err(sql_err)?;
    Ok(())
}

const KEY_COLUMNS: &str =
    "id, name, scope, prefix, created_at, created_by, last_used_at, revoked_at";

fn key_from_row(r: &Row<'_>) -> Result<ApiKey, rusqlite::Error> {
    let scope: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        scope: Scope::parse(&scope).ok_or_else(|| conversion("scope", scope))?,
        prefix: r.get(3)?,
        created_at: time(r.get(4)?)?,
        created_by: r.get(5)?,
        last_used_at: opt_time(r.get(6)?)?,
        revoked_at: opt_time(r.get(7)?)?,
    })
}

const USER_COLUMNS: &str = "id, username, role, created_at, password_hash";

fn user_from_row(r: &Row<'_>) -> Result<UserRecord, rusqlite::Error> {
    let role: String = r.get(2)?;
    Ok(UserRecord {
        user: User {
            id: r.get(0)?,
            username: r.get(1)?,
            role: Role::parse(&role).ok_or_else(|| conversion("role", role))?,
            created_at: time(r.get(3)?)?,
        },
        password_hash: r.get(4)?,
    })
}

#[async_trait]
impl KeyStore for SqliteState {
    async fn insert_key(&self, key: &KeyRecord, change: &Change) -> Result<(), StoreError> {
        let (key, change) = (key.clone(), change.clone());
        self.db
            .write(move |tx| {
                let k = &key.key;
                tx.execute(
                    "INSERT INTO api_keys (id, name, scope, prefix, digest, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        k.id,
                        k.name,
                        k.scope.as_str(),
                        k.prefix,
                        key.digest.as_str(),
                        ms(k.created_at),
                        k.created_by
                    ],
                )
                .map_err(sql_err)?;
                write_audit(tx, &change)
            })
            .await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], key_from_row).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn find_active_key(&self, digest: &TokenDigest) -> Result<Option<ApiKey>, StoreError> {
        let digest = digest.as_str().to_owned();
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = ?1 AND revoked_at IS NULL"
                ))
                .map_err(sql_err)?
                .query_row([digest], key_from_row)
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn revoke_key(&self, id: &str, change: &Change) -> Result<bool, StoreError> {
        let (id, change) = (id.to_owned(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                        params![id, ms(change.at)],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
                    params![id, ms(at)],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn count_active_keys(&self, scope: Option<Scope>) -> Result<u64, StoreError> {
        let scope = scope.map(Scope::as_str);
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL AND (?1 IS NULL OR scope = ?1)",
                    [scope],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(sql_err)
            })
            .await
    }
}

#[async_trait]
impl AuditStore for SqliteState {
    async fn record_audit(&self, change: &Change) -> Result<(), StoreError> {
        let change = change.clone();
        self.db.write(move |tx| write_audit(tx, &change)).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let q = q.clone();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT id, at, actor, action, target_type, target_id, before, after, reason FROM audit_log
                         WHERE (?1 IS NULL OR target_type = ?1) AND (?2 IS NULL OR target_id = ?2)
                           AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR id < ?4)
                         ORDER BY id DESC LIMIT ?5",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![q.target_type, q.target_id, q.actor, q.before_id, q.limit], |r| {
                        Ok(AuditEntry {
                            id: r.get(0)?,
                            at: time(r.get(1)?)?,
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            target_type: r.get(4)?,
                            target_id: r.get(5)?,
                            before: json_value(r.get(6)?)?,
                            after: json_value(r.get(7)?)?,
                            reason: r.get(8)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }
}

#[async_trait]
impl UserStore for SqliteState {
    async fn insert_user(&self, user: &UserRecord, change: &Change) -> Result<(), StoreError> {
        let (user, change) = (user.clone(), change.clone());
        self.db
            .write(move |tx| {
                let u = &user.user;
                tx.execute(
                    "INSERT INTO users (id, username, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![u.id, u.username, u.role.as_str(), user.password_hash, ms(u.created_at)],
                )
                .map_err(sql_err)?;
                write_audit(tx, &change)
            })
            .await
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let username = username.to_owned();
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
                ))
                .map_err(sql_err)?
                .query_row([username], user_from_row)
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
                    .map_err(sql_err)?
                    .query_row([id], user_from_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users ORDER BY username"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| user_from_row(r).map(|u| u.user))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(sql_err)
            })
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteState {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let s = s.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO sessions (digest, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![s.digest.as_str(), s.user_id, s.csrf_token, ms(s.created_at), ms(s.expires_at)],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn find_session(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let digest = digest.as_str().to_owned();
        self.db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT digest, user_id, csrf_token, created_at, expires_at FROM sessions
                     WHERE digest = ?1 AND expires_at > ?2",
                )
                .map_err(sql_err)?
                .query_row(params![digest, ms(now)], |r| {
                    Ok(SessionRecord {
                        digest: TokenDigest::from_stored(r.get(0)?),
                        user_id: r.get(1)?,
                        csrf_token: r.get(2)?,
                        created_at: time(r.get(3)?)?,
                        expires_at: time(r.get(4)?)?,
                    })
                })
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn delete_session(&self, digest: &TokenDigest) -> Result<(), StoreError> {
        let digest = digest.as_str().to_owned();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM sessions WHERE digest = ?1", [digest])
                    .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ms(now)])
                    .map(|n| n as u64)
                    .map_err(sql_err)
            })
            .await
    }
}

/// One process owns a SQLite file: no other replica can change it, so there is nothing to hear.
#[async_trait]
impl liftoff_core::changes::ChangeFeed for SqliteState {
    async fn follow_changes(&self, _tx: tokio::sync::mpsc::Sender<liftoff_core::changes::Topic>) {}
}

#[async_trait]
impl StoreHealth for SqliteState {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        self.db
            .read(|c| {
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map_err(sql_err)
            })
            .await?;
        Ok(start.elapsed())
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql_err)
            })
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.db.checkpoint().await
    }
}
