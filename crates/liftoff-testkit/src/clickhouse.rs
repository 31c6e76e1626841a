//! A fresh, empty ClickHouse database per test, so tests run in parallel on one server.
//!
//! The server is `LIFTOFF_TEST_CLICKHOUSE_URL` (default: `http://127.0.0.1:18123`, where
//! `scripts/test` starts one from a private configuration). Tests that need it fail, not
//! skip, when it is unreachable: the store's first statement reports the address.

pub fn base_url() -> String {
    std::env::var("LIFTOFF_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// `--events-url` of a database named `liftoff_test_…` (created when a store opens it).
pub fn fresh_database_url() -> String {
    format!("{}/liftoff_test_{:016x}", base_url(), rand::random::<u64>())
}
