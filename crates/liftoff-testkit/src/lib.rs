//! Test helpers shared by Liftoff's crates.
//!
//! [`contract`] holds the suite every state-store backend must pass: `liftoff-store` runs each
//! case against SQLite and PostgreSQL.

pub mod contract;
