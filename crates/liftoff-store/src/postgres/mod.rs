//! Shared state on PostgreSQL, for several replicas behind one database.

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use liftoff_core::audit::AuditStore;
use liftoff_core::audit::{AuditEntry, AuditQuery, Change};
use liftoff_core::auth::KeyStore;
use liftoff_core::auth::{ApiKey, KeyRecord, Scope};
use liftoff_core::secret::TokenDigest;
use liftoff_core::store::{StoreError, StoreHealth};
use liftoff_core::users::{Role, SessionRecord, User, UserRecord};
use liftoff_core::users::{SessionStore, UserStore};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use crate::migrations::{self, Migration};

mod alerts;
mod changes;
mod deployments;
mod events;
mod experiments;
mod flags;
mod incidents;
mod launch;
mod metrics;
mod operations;
mod reports;
mod uptime;

const POOL_SIZE: usize = 16;
/// Any fixed number works; it only has to be the same for every replica.
const MIGRATION_LOCK: i64 = 0x6c69_6674_6f66;

/// The state store on PostgreSQL (`--state-url postgres://…`).
#[derive(Clone)]
pub struct PgState {
    pool: Pool,
    /// For connections outside the pool (the change feed's LISTEN).
    config: tokio_postgres::Config,
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Unavailable(
            e.as_db_error()
                .map_or_else(|| e.to_string(), ToString::to_string),
        ),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

impl PgState {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!(
                "invalid PostgreSQL URL {}: {e}",
                crate::redact(url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("liftoff");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let state = Self { pool, config };
        state.migrate(migrations::POSTGRES).await?;
        Ok(state)
    }

    async fn migrate(&self, migrations: &[Migration]) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Replicas starting together take turns; the lock ends with the transaction.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
        )
        .await
        .map_err(pg_err)?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let newest = migrations.last().map_or(0, |m| m.version);
        if current > newest {
            return Err(StoreError::Unavailable(format!(
                "the database schema is version {current}, newer than this build knows ({newest}); run a newer Liftoff"
            )));
        }
        for m in migrations.iter().filter(|m| m.version > current) {
            tx.batch_execute(m.sql).await.map_err(|e| {
                StoreError::Unavailable(format!("migration {} ({}) failed: {e}", m.version, m.name))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                &[&m.version, &m.name],
            )
            .await
            .map_err(pg_err)?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "Applied PostgreSQL migration."
            );
        }
        tx.commit().await.map_err(pg_err)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("invalid {what} `{value}`"))
}

pub(crate) async fn write_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    c: &Change,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target_type, target_id, before, after, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &c.at,
            &c.actor,
            &c.action,
            &c.target_type,
            &c.target_id,
            &c.before,
            &c.after,
            &c.reason,
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

const KEY_COLUMNS: &str =
    "id, name, scope, prefix, created_at, created_by, last_used_at, revoked_at";

fn key_from_row(r: &Row) -> Result<ApiKey, StoreError> {
    let scope: String = r.get(2);
    Ok(ApiKey {
        id: r.get(0),
        name: r.get(1),
        scope: Scope::parse(&scope).ok_or_else(|| corrupt("scope", &scope))?,
        prefix: r.get(3),
        created_at: r.get(4),
        created_by: r.get(5),
        last_used_at: r.get(6),
        revoked_at: r.get(7),
    })
}

const USER_COLUMNS: &str = "id, username, role, created_at, password_hash";

fn user_from_row(r: &Row) -> Result<UserRecord, StoreError> {
    let role: String = r.get(2);
    Ok(UserRecord {
        user: User {
            id: r.get(0),
            username: r.get(1),
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            created_at: r.get(3),
        },
        password_hash: r.get(4),
    })
}

#[async_trait]
impl KeyStore for PgState {
    async fn insert_key(&self, key: &KeyRecord, change: &Change) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let k = &key.key;
        tx.execute(
            "INSERT INTO api_keys (id, name, scope, prefix, digest, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &k.id,
                &k.name,
                &k.scope.as_str(),
                &k.prefix,
                &key.digest.as_str(),
                &k.created_at,
                &k.created_by,
            ],
        )
        .await
        .map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"),
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn find_active_key(&self, digest: &TokenDigest) -> Result<Option<ApiKey>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = $1 AND revoked_at IS NULL"
                ),
                &[&digest.as_str()],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn revoke_key(&self, id: &str, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &change.at],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
                &[&id, &at],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn count_active_keys(&self, scope: Option<Scope>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let scope = scope.map(Scope::as_str);
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL AND ($1::text IS NULL OR scope = $1)",
                &[&scope],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(n as u64)
    }
}

#[async_trait]
impl AuditStore for PgState {
    async fn record_audit(&self, change: &Change) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let limit = i64::from(q.limit);
        let rows = client
            .query(
                "SELECT id, at, actor, action, target_type, target_id, before, after, reason FROM audit_log
                 WHERE ($1::text IS NULL OR target_type = $1) AND ($2::text IS NULL OR target_id = $2)
                   AND ($3::text IS NULL OR actor = $3) AND ($4::bigint IS NULL OR id < $4)
                 ORDER BY id DESC LIMIT $5",
                &[&q.target_type, &q.target_id, &q.actor, &q.before_id, &limit],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target_type: r.get(4),
                target_id: r.get(5),
                before: r.get(6),
                after: r.get(7),
                reason: r.get(8),
            })
            .collect())
    }
}

#[async_trait]
impl UserStore for PgState {
    async fn insert_user(&self, user: &UserRecord, change: &Change) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let u = &user.user;
        tx.execute(
            "INSERT INTO users (id, username, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&u.id, &u.username, &u.role.as_str(), &user.password_hash, &u.created_at],
        )
        .await
        .map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                &[&username],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| user_from_row(r).map(|u| u.user))
            .collect()
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(n as u64)
    }
}

#[async_trait]
impl SessionStore for PgState {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO sessions (digest, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&s.digest.as_str(), &s.user_id, &s.csrf_token, &s.created_at, &s.expires_at],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn find_session(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT digest, user_id, csrf_token, created_at, expires_at FROM sessions
                 WHERE digest = $1 AND expires_at > $2",
                &[&digest.as_str(), &now],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| SessionRecord {
            digest: TokenDigest::from_stored(r.get(0)),
            user_id: r.get(1),
            csrf_token: r.get(2),
            created_at: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn delete_session(&self, digest: &TokenDigest) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sessions WHERE digest = $1",
                &[&digest.as_str()],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
            .await
            .map_err(pg_err)
    }
}

#[async_trait]
impl StoreHealth for PgState {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let client = self.client().await?;
        client.query_one("SELECT 1", &[]).await.map_err(pg_err)?;
        Ok(start.elapsed())
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0))
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close();
        Ok(())
    }
}
