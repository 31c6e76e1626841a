//! A fresh, empty PostgreSQL schema per test, so tests run in parallel on one database.
//!
//! The server is `LIFTOFF_TEST_DATABASE_URL` (default: the local server on 127.0.0.1:5432,
//! database `test`). Tests that need it fail, not skip, when it is unreachable.

pub fn base_url() -> String {
    std::env::var("LIFTOFF_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a schema named `liftoff_test_…` and returns a URL whose connections use it.
pub async fn fresh_schema_url() -> String {
    let base = base_url();
    let schema = format!("liftoff_test_{:016x}", rand::random::<u64>());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {base} is required for these tests (set LIFTOFF_TEST_DATABASE_URL): {e}")
    });
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// The schema name inside a URL made by [`fresh_schema_url`].
pub fn schema_of(url: &str) -> &str {
    url.rsplit("search_path%3D").next().unwrap_or_default()
}
