//! Test helpers shared by Liftoff's crates.
//!
//! [`contract`] holds the suite every state-store backend must pass: `liftoff-store` runs each
//! case against SQLite and PostgreSQL; [`postgres`] gives each test its own schema.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a panic is how a broken promise is reported"
)]

pub mod alerts_contract;
pub mod clickhouse;
pub mod contract;
pub mod events_contract;
pub mod experiments_contract;
pub mod launch_contract;
pub mod postgres;
pub mod reports_contract;
pub mod uptime_contract;
