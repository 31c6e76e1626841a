//! SQLite and PostgreSQL implementations of the storage ports `liftoff_core` keeps beside its domains
//! (composed as `liftoff_core::ports::StateStore`).
//!
//! This is the only crate that writes SQL. Each backend applies its own versioned migrations
//! (`migrations/<backend>/NNNN_name.sql`) when opened; every statement is parameterised.

pub mod clickhouse;
mod codec;
mod migrations;
pub mod postgres;
pub mod snapshot;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use liftoff_core::analytics::EventStore;
use liftoff_core::monitoring::MetricsStore;
use liftoff_core::monitoring::operations::OperationStore;
use liftoff_core::ports::StateStore;
use liftoff_core::store::StoreError;

/// The state schema version a freshly opened SQLite store reports: the last shipped migration.
pub fn sqlite_state_schema_version() -> i64 {
    migrations::SQLITE.last().map_or(0, |m| m.version)
}

/// Opens the state store named by `state_url`: `None` means SQLite at `<data>/state.db`,
/// `postgres://…` (or `postgresql://…`) PostgreSQL, `sqlite://PATH` an explicit SQLite file.
pub async fn open_state(
    state_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn StateStore>, StoreError> {
    match state_url {
        None => Ok(Arc::new(
            sqlite::SqliteState::open(&data_dir.join("state.db")).await?,
        )),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PgState::connect(url).await?))
        }
        Some(url) if url.starts_with("sqlite://") => Ok(Arc::new(
            sqlite::SqliteState::open(Path::new(&url["sqlite://".len()..])).await?,
        )),
        Some(other) => Err(StoreError::Unavailable(format!(
            "unsupported state URL `{}`: use postgres://… or sqlite://PATH, or leave it unset for SQLite in the data dir",
            redact(other)
        ))),
    }
}

/// Every store Liftoff keeps beside events.
#[derive(Clone)]
pub struct Stores {
    pub state: Arc<dyn StateStore>,
    /// Request metrics: `<data>/metrics.db` on SQLite (its own file, so ingest never queues
    /// behind state writes), the same database on PostgreSQL.
    pub metrics: Arc<dyn MetricsStore>,
    /// Operations (named units of work): beside the request metrics, in the same file or
    /// database.
    pub operations: Arc<dyn OperationStore>,
    /// Raw product events and persons: `<data>/events.db` on SQLite (its own file and writer,
    /// so event ingest never queues behind state or metrics), the same database on
    /// PostgreSQL, or ClickHouse when `--events-url` names it.
    pub events: Arc<dyn EventStore>,
    /// The analytics ClickHouse answers, when events are kept there (else the in-process
    /// engine answers over `events`).
    pub clickhouse: Option<ClickHouseStore>,
}

/// Events in ClickHouse: the store, the questions pushed down and what the server is.
#[derive(Clone)]
pub struct ClickHouseStore {
    pub store: Arc<clickhouse::ClickHouseEvents>,
    pub queries: Arc<clickhouse::ClickHouseQueries>,
    /// `SELECT version()`.
    pub version: String,
    pub features: clickhouse::Features,
}

/// Opens the state store (see [`open_state`]), the metrics store beside it and the events
/// store: beside them too, or, when `events` names ClickHouse, events, request metrics and
/// operations there (so PostgreSQL or SQLite holds only state).
pub async fn open_stores(
    state_url: Option<&str>,
    events: Option<&clickhouse::EventsUrl>,
    data_dir: &Path,
) -> Result<Stores, StoreError> {
    let Some(url) = events else {
        return open_beside(state_url, data_dir).await;
    };
    // No `metrics.db` or `events.db` is created: nothing would be kept there.
    let state = open_state(state_url, data_dir).await?;
    let (store, version) = clickhouse::open(url.clone()).await?;
    let store = Arc::new(store);
    let features = clickhouse::Features::of(&version);
    let metrics = Arc::new(clickhouse::ClickHouseMetrics::new(store.client().clone()));
    Ok(Stores {
        state,
        metrics: metrics.clone(),
        operations: metrics,
        events: store.clone(),
        clickhouse: Some(ClickHouseStore {
            queries: Arc::new(clickhouse::ClickHouseQueries::new(store.clone(), features)),
            store,
            version,
            features,
        }),
    })
}

async fn open_beside(state_url: Option<&str>, data_dir: &Path) -> Result<Stores, StoreError> {
    match state_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let pg = Arc::new(postgres::PgState::connect(url).await?);
            Ok(Stores {
                state: pg.clone(),
                metrics: pg.clone(),
                operations: pg.clone(),
                events: pg,
                clickhouse: None,
            })
        }
        _ => {
            let state = open_state(state_url, data_dir).await?;
            let dir = match state_url {
                Some(url) => Path::new(&url["sqlite://".len()..])
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| data_dir.to_path_buf()),
                None => data_dir.to_path_buf(),
            };
            let metrics = Arc::new(sqlite::SqliteMetrics::open(&dir.join("metrics.db")).await?);
            let events = Arc::new(sqlite::SqliteEvents::open(&dir.join("events.db")).await?);
            Ok(Stores {
                state,
                metrics: metrics.clone(),
                operations: metrics,
                events,
                clickhouse: None,
            })
        }
    }
}

/// A URL with any password replaced, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
