//! Product events in ClickHouse (`--events-url http://HOST:8123/DATABASE`): the event store
//! ([`ClickHouseEvents`]) and the analytics questions pushed down to it
//! ([`ClickHouseQueries`]), and request and operation rollups ([`ClickHouseMetrics`]). State
//! stays in SQLite or PostgreSQL.
//!
//! The SQL here is what ClickHouse 18.16 (Debian's package, which CI runs) and current
//! releases both accept; ARCHITECTURE.md lists the functions relied on.

mod cells;
mod client;
mod events;
mod metrics;
mod operations;
mod queries;
mod schema;
mod seq;

pub use client::{ClickHouse, EventsUrl, lit, valid_identifier};
pub use events::ClickHouseEvents;
pub use metrics::ClickHouseMetrics;
pub use queries::{ClickHouseQueries, FUNNEL_MAX_SPAN_MS_18, Features};

use liftoff_core::store::StoreError;

/// Connects, reads the server's version and applies the schema.
pub async fn open(url: EventsUrl) -> Result<(ClickHouseEvents, String), StoreError> {
    let ch = ClickHouse::new(url)?;
    let version = ch.version().await?;
    schema::migrate(&ch).await?;
    Ok((ClickHouseEvents::new(ch), version))
}
