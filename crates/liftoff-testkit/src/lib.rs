//! Test helpers shared by Liftoff's crates.
//!
//! [`contract`] holds the suite every state-store backend must pass: `liftoff-store` runs each
//! case against SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a panic is how a broken promise is reported"
)]

pub mod contract;
