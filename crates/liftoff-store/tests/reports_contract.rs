//! The reports contract (`liftoff_testkit::reports_contract`) on both backends. PostgreSQL runs
//! against `LIFTOFF_TEST_DATABASE_URL` like `contract.rs`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use std::sync::Arc;

use liftoff_core::reports::ReportStore;

mod sqlite {
    use super::*;

    pub(crate) async fn open() -> Arc<dyn ReportStore> {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(
            liftoff_store::sqlite::SqliteState::open(&dir.join("state.db"))
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::reports_contract!(open);
}

mod postgres {
    use super::*;
    use liftoff_testkit::postgres::fresh_schema_url;

    pub(crate) async fn open() -> Arc<dyn ReportStore> {
        Arc::new(
            liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::reports_contract!(open);
}
