//! The state-store contract (`liftoff_testkit::contract`) on every backend.
//!
//! PostgreSQL runs against `LIFTOFF_TEST_DATABASE_URL` (default: the local server on
//! 127.0.0.1:5432, database `test`). These tests fail, not skip, when it is unreachable: the
//! suite's promise is that both backends pass.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use std::sync::Arc;

use liftoff_core::ports::StateStore;

mod sqlite {
    use super::*;

    /// A fresh database file in a directory that lives as long as the test process.
    pub(crate) async fn open() -> Arc<dyn StateStore> {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(
            liftoff_store::sqlite::SqliteState::open(&dir.join("state.db"))
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::state_store_contract!(open);
    liftoff_testkit::alert_store_contract!(open);

    /// A fresh `events.db`.
    pub(crate) async fn open_events() -> Arc<dyn liftoff_core::analytics::EventStore> {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(
            liftoff_store::sqlite::SqliteEvents::open(&dir.join("events.db"))
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::event_store_contract!(open_events);

    #[tokio::test]
    async fn metrics_round_trip() {
        let dir = tempfile::tempdir().unwrap().keep();
        let m = liftoff_store::sqlite::SqliteMetrics::open(&dir.join("metrics.db"))
            .await
            .unwrap();
        liftoff_testkit::contract::metrics_round_trip(Arc::new(m)).await;
    }

    #[tokio::test]
    async fn resource_hours_round_trip() {
        let dir = tempfile::tempdir().unwrap().keep();
        let m = liftoff_store::sqlite::SqliteMetrics::open(&dir.join("metrics.db"))
            .await
            .unwrap();
        liftoff_testkit::contract::resource_hours_round_trip(Arc::new(m)).await;
    }

    #[tokio::test]
    async fn variant_cells_round_trip() {
        let dir = tempfile::tempdir().unwrap().keep();
        let m = liftoff_store::sqlite::SqliteMetrics::open(&dir.join("metrics.db"))
            .await
            .unwrap();
        liftoff_testkit::contract::variant_cells_round_trip(Arc::new(m)).await;
    }

    #[tokio::test]
    async fn operations_round_trip() {
        let dir = tempfile::tempdir().unwrap().keep();
        let m = liftoff_store::sqlite::SqliteMetrics::open(&dir.join("metrics.db"))
            .await
            .unwrap();
        liftoff_testkit::contract::operations_round_trip(Arc::new(m)).await;
    }

    #[tokio::test]
    async fn operation_error_cap_is_per_slot() {
        let dir = tempfile::tempdir().unwrap().keep();
        let m = liftoff_store::sqlite::SqliteMetrics::open(&dir.join("metrics.db"))
            .await
            .unwrap();
        liftoff_testkit::contract::operation_error_cap_is_per_slot(Arc::new(m)).await;
    }

    #[tokio::test]
    async fn data_survives_reopen_and_migrations_are_idempotent() {
        use liftoff_core::audit::{AuditQuery, Change};
        use liftoff_core::auth::Actor;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.db");
        {
            let s = liftoff_store::sqlite::SqliteState::open(&path)
                .await
                .unwrap();
            let record = liftoff_core::users::UserRecord {
                user: liftoff_core::users::User {
                    id: "u1".into(),
                    username: "ada".into(),
                    role: liftoff_core::users::Role::Admin,
                    created_at: chrono::Utc::now(),
                },
                password_hash: "x".into(),
            };
            use liftoff_core::store::StoreHealth;
            use liftoff_core::users::UserStore;
            s.insert_user(
                &record,
                &Change::new(&Actor::System, "user.create", "user", "u1"),
            )
            .await
            .unwrap();
            s.close().await.unwrap();
        }
        let s = liftoff_store::sqlite::SqliteState::open(&path)
            .await
            .unwrap();
        use liftoff_core::audit::AuditStore;
        use liftoff_core::store::StoreHealth;
        use liftoff_core::users::UserStore;
        assert_eq!(s.count_users().await.unwrap(), 1);
        assert_eq!(
            s.list_audit(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            s.schema_version().await.unwrap(),
            liftoff_store::sqlite_state_schema_version()
        );
        assert!(liftoff_store::sqlite_state_schema_version() >= 7);
    }
}

mod postgres {
    use super::*;
    use liftoff_testkit::postgres::{fresh_schema_url, schema_of};

    pub(crate) async fn open() -> Arc<dyn StateStore> {
        Arc::new(
            liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::state_store_contract!(open);
    liftoff_testkit::alert_store_contract!(open);

    pub(crate) async fn open_events() -> Arc<dyn liftoff_core::analytics::EventStore> {
        Arc::new(
            liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
                .await
                .unwrap(),
        )
    }

    liftoff_testkit::event_store_contract!(open_events);

    #[tokio::test]
    async fn metrics_round_trip() {
        let pg = liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
            .await
            .unwrap();
        liftoff_testkit::contract::metrics_round_trip(Arc::new(pg)).await;
    }

    #[tokio::test]
    async fn resource_hours_round_trip() {
        let pg = liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
            .await
            .unwrap();
        liftoff_testkit::contract::resource_hours_round_trip(Arc::new(pg)).await;
    }

    #[tokio::test]
    async fn variant_cells_round_trip() {
        let pg = liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
            .await
            .unwrap();
        liftoff_testkit::contract::variant_cells_round_trip(Arc::new(pg)).await;
    }

    #[tokio::test]
    async fn operations_round_trip() {
        let pg = liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
            .await
            .unwrap();
        liftoff_testkit::contract::operations_round_trip(Arc::new(pg)).await;
    }

    #[tokio::test]
    async fn operation_error_cap_is_per_slot() {
        let pg = liftoff_store::postgres::PgState::connect(&fresh_schema_url().await)
            .await
            .unwrap();
        liftoff_testkit::contract::operation_error_cap_is_per_slot(Arc::new(pg)).await;
    }

    #[tokio::test]
    async fn concurrent_replicas_migrate_once() {
        let url = fresh_schema_url().await;
        let (a, b) = tokio::join!(
            liftoff_store::postgres::PgState::connect(&url),
            liftoff_store::postgres::PgState::connect(&url)
        );
        a.unwrap();
        b.unwrap();
        let (client, conn) = tokio_postgres::connect(
            &liftoff_testkit::postgres::base_url(),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let n: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM {}.schema_migrations", schema_of(&url)),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        // One row per migration file: each applied exactly once.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count() as i64;
        assert_eq!(
            n, files,
            "each of the {files} migrations applied exactly once"
        );
    }
}

/// Events in ClickHouse: the event-store contract (ClickHouse keeps every day columnar, so
/// the sealing cases do not apply) and what only a store without transactions must show.
mod clickhouse {
    use std::sync::Arc;

    use liftoff_core::analytics::{Event, EventStore};
    use liftoff_store::clickhouse::{self, EventsUrl};
    use liftoff_testkit::clickhouse::fresh_database_url;

    pub(crate) async fn open_store() -> Arc<clickhouse::ClickHouseEvents> {
        let url = fresh_database_url();
        let (store, _version) = clickhouse::open(EventsUrl::parse(&url, None).unwrap())
            .await
            .unwrap_or_else(|e| {
                panic!("ClickHouse at {url} is required (set LIFTOFF_TEST_CLICKHOUSE_URL): {e}")
            });
        Arc::new(store)
    }

    pub(crate) async fn open_events() -> Arc<dyn EventStore> {
        open_store().await
    }

    liftoff_testkit::event_store_contract!(@cases open_events;
        events_are_idempotent_on_uuid, appends_are_all_or_nothing, persons_accumulate,
        persons_seen_only_widen, erase_removes_a_person_and_their_events, purge_drops_old_events,
        events_page_in_append_order);

    fn event(uuid: u128, user: &str, name: &str) -> Event {
        Event {
            uuid: Some(uuid),
            ts_ms: 1_750_000_000_000 + uuid as i64,
            user: user.into(),
            session: Some(format!("s-{user}")),
            event: name.into(),
            properties: format!(r#"{{"k":{}}}"#, serde_json::json!(user)),
        }
    }

    /// Two replicas taking the same retried batch at the same moment both pass the lookup;
    /// the table's replacing key collapses their rows and every read counts them once.
    #[tokio::test]
    async fn a_retry_that_raced_its_first_attempt_is_counted_once() {
        let s = open_store().await;
        let batch: Vec<Event> = (1..=50)
            .map(|i| event(i, &format!("u{}", i % 7), "e"))
            .collect();
        let other = open_store_on(&s).await;
        let (a, b) = tokio::join!(
            s.append_events(&batch, &[]),
            other.append_events(&batch, &[])
        );
        let stored = a.unwrap().inserted + b.unwrap().inserted;
        assert!((50..=100).contains(&stored), "{stored}");
        assert_eq!(s.event_count().await.unwrap(), 50);
        let all = s.events_between(i64::MIN, i64::MAX, 1000, 0).await.unwrap();
        assert_eq!(all.len(), 50);
        // Once parts merge, the rows are gone from disk too.
        s.client()
            .execute("OPTIMIZE TABLE events FINAL")
            .await
            .unwrap();
        assert_eq!(
            s.client()
                .number("SELECT count() FROM events")
                .await
                .unwrap(),
            50
        );
    }

    /// Request metrics and operations in the events' database.
    async fn open_metrics() -> Arc<clickhouse::ClickHouseMetrics> {
        let s = open_store().await;
        Arc::new(clickhouse::ClickHouseMetrics::new(s.client().clone()))
    }

    #[tokio::test]
    async fn metrics_round_trip() {
        liftoff_testkit::contract::metrics_round_trip(open_metrics().await).await;
    }

    #[tokio::test]
    async fn resource_hours_round_trip() {
        liftoff_testkit::contract::resource_hours_round_trip(open_metrics().await).await;
    }

    #[tokio::test]
    async fn variant_cells_round_trip() {
        liftoff_testkit::contract::variant_cells_round_trip(open_metrics().await).await;
    }

    #[tokio::test]
    async fn operations_round_trip() {
        liftoff_testkit::contract::operations_round_trip(open_metrics().await).await;
    }

    #[tokio::test]
    async fn operation_error_cap_is_per_slot() {
        liftoff_testkit::contract::operation_error_cap_is_per_slot(open_metrics().await).await;
    }

    /// Services, routes, flags, variants and error text that would end a literal come back
    /// exactly, and filters on them match only themselves.
    #[tokio::test]
    async fn hostile_metric_text_is_stored_as_sent() {
        use chrono::TimeZone;
        use liftoff_core::monitoring::MetricsStore;
        use liftoff_core::monitoring::operations::{
            OpCell, OpKey, OperationError, OperationStore, OperationWrite,
        };
        use liftoff_core::monitoring::requests::CellKey;
        use liftoff_core::monitoring::sketch::DDSketch;
        use liftoff_core::monitoring::variants::VariantKey;
        let m = open_metrics().await;
        let hostile = [
            "o'brien",
            "back\\slash",
            "quote\"d",
            "') OR 1=1 --",
            "ünï😀",
        ];
        let base = 20_000 * 1440;
        let mut sketch = DDSketch::default();
        sketch.add(12.0);
        let cells: Vec<(CellKey, DDSketch)> = hostile
            .iter()
            .map(|h| {
                (
                    CellKey {
                        minute: base,
                        service: (*h).into(),
                        method: "GET".into(),
                        route: format!("/r/{h}"),
                        status: 200,
                    },
                    sketch.clone(),
                )
            })
            .collect();
        m.merge_request_minutes(&cells).await.unwrap();
        let mut got: Vec<(String, String)> = m
            .request_minutes(base, base + 1)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| (k.service, k.route))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = hostile
            .iter()
            .map(|h| ((*h).to_owned(), format!("/r/{h}")))
            .collect();
        want.sort();
        assert_eq!(got, want);

        let variant = |flag: &str| {
            (
                VariantKey {
                    minute: base,
                    flag: flag.into(),
                    variant: flag.into(),
                    failed: false,
                },
                sketch.clone(),
            )
        };
        m.merge_variant_minutes(&hostile.map(variant))
            .await
            .unwrap();
        for h in hostile {
            let cells = m.variant_minutes(h, base, base + 1).await.unwrap();
            assert_eq!(cells.len(), 1, "{h}");
            assert_eq!(cells[0].0.variant, h);
        }

        let at = chrono::Utc
            .timestamp_opt(base * 60 + 1, 0)
            .single()
            .unwrap();
        let write = OperationWrite {
            cells: vec![(
                OpKey {
                    minute: base,
                    service: hostile[3].into(),
                    operation: "gen".into(),
                },
                OpCell {
                    count: 1,
                    failures: 1,
                    error_types: [(hostile[0].to_owned(), 1)].into_iter().collect(),
                    ..Default::default()
                },
            )],
            errors: hostile
                .iter()
                .map(|h| OperationError {
                    service: hostile[3].into(),
                    operation: "gen".into(),
                    error_type: (*h).into(),
                    error: Some(format!("failed: {h}")),
                    stack_trace: Some((*h).into()),
                    context: Some(serde_json::json!({ "k": h })),
                    user_id: Some((*h).into()),
                    at,
                })
                .collect(),
            users: Vec::new(),
        };
        assert_eq!(m.write_operations(&write).await.unwrap(), 0);
        assert_eq!(
            m.write_operations(&write).await.unwrap(),
            0,
            "each error type's slot has room for a second row"
        );
        let errors = m
            .operation_errors(at, at + chrono::Duration::seconds(1), Some("gen"), 100)
            .await
            .unwrap();
        assert_eq!(errors.len(), 2 * hostile.len());
        for e in &errors {
            assert_eq!(
                e.error.as_deref(),
                Some(format!("failed: {}", e.error_type).as_str())
            );
            assert_eq!(e.context, Some(serde_json::json!({ "k": e.error_type })));
        }
        let cells = m.operation_cells(base, base + 1).await.unwrap();
        assert_eq!(cells[0].0.service, hostile[3]);
        assert_eq!(cells[0].1.error_types.get(hostile[0]), Some(&2));
    }

    /// A compaction that died after appending its hour cell (before deleting the minutes it
    /// replaces) counts nothing twice, and the next compaction finishes its work.
    #[tokio::test]
    async fn a_compaction_interrupted_after_its_insert_counts_nothing_twice() {
        use liftoff_core::monitoring::MetricsStore;
        use liftoff_core::monitoring::requests::CellKey;
        use liftoff_core::monitoring::sketch::DDSketch;
        let s = open_store().await;
        let ch = s.client().clone();
        let m = clickhouse::ClickHouseMetrics::new(ch.clone());
        let key = |minute: i64| CellKey {
            minute,
            service: "web".into(),
            method: "GET".into(),
            route: "/a".into(),
            status: 200,
        };
        let sketch = |values: &[f64]| {
            let mut s = DDSketch::default();
            for v in values {
                s.add(*v);
            }
            s
        };
        let base = 20_000 * 1440;
        m.merge_request_minutes(&[(key(base), sketch(&[10.0, 20.0]))])
            .await
            .unwrap();
        m.merge_request_minutes(&[
            (key(base), sketch(&[30.0])),
            (key(base + 1), sketch(&[40.0])),
        ])
        .await
        .unwrap();
        // What the interrupted compaction left: its hour row, naming the minutes' rows.
        #[derive(serde::Deserialize)]
        struct Id {
            id: i64,
        }
        let ids: Vec<i64> = ch
            .rows::<Id>("SELECT id FROM request_cells")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 3, "each write appended its rows");
        ch.insert(
            "request_cells",
            &[serde_json::json!({
                "resolution": 60, "service": "web", "method": "GET", "route": "/a",
                "status": 200, "bucket": base, "id": 1,
                "sketch": hex::encode(sketch(&[10.0, 20.0, 30.0, 40.0]).to_bytes()),
                "replaces": ids,
            })],
        )
        .await
        .unwrap();
        let count =
            |cells: Vec<(CellKey, DDSketch)>| -> u64 { cells.iter().map(|(_, s)| s.count()).sum() };
        let cells = m.request_minutes(base, base + 60).await.unwrap();
        assert_eq!(cells.len(), 1, "only the hour cell is read");
        assert_eq!(count(cells), 4, "and the minutes it replaces are not");
        assert_eq!(
            m.request_minutes(base + 1, base + 2).await.unwrap().len(),
            0
        );
        assert!(m.request_routes().await.unwrap().is_empty());
        assert_eq!(
            m.compact_requests(1, 60, base + 60, 1000).await.unwrap(),
            0,
            "nothing live is left to move"
        );
        assert_eq!(
            ch.number("SELECT count() FROM request_cells")
                .await
                .unwrap(),
            1,
            "the replaced rows were deleted"
        );
        assert_eq!(
            ch.number("SELECT count() FROM request_cells WHERE notEmpty(replaces)")
                .await
                .unwrap(),
            0
        );
        assert_eq!(count(m.request_minutes(base, base + 60).await.unwrap()), 4);
    }

    /// A second store on the same database: what another replica holds.
    async fn open_store_on(s: &clickhouse::ClickHouseEvents) -> clickhouse::ClickHouseEvents {
        let url = format!(
            "{}/{}",
            liftoff_testkit::clickhouse::base_url(),
            s.client().database()
        );
        clickhouse::open(EventsUrl::parse(&url, None).unwrap())
            .await
            .unwrap()
            .0
    }

    /// Ids, names and properties that would end a literal or a JSON string come back exactly.
    #[tokio::test]
    async fn hostile_text_is_stored_as_sent() {
        let s = open_store().await;
        let users = [
            "o'brien",
            "back\\slash",
            "new\nline",
            "tab\there",
            "nul\0x",
            "ünï😀",
            "') OR 1=1 --",
        ];
        let events: Vec<Event> = users
            .iter()
            .enumerate()
            .map(|(i, u)| event(i as u128 + 1, u, u))
            .collect();
        s.append_events(&events, &[]).await.unwrap();
        for e in &events {
            let got = s.user_events(&e.user, 0, 10).await.unwrap();
            assert_eq!(got.len(), 1, "{:?}", e.user);
            assert_eq!(got[0].event, *e);
        }
        let again = s.append_events(&events, &[]).await.unwrap();
        assert_eq!(again.duplicates, users.len() as u64);
        s.erase_person("') OR 1=1 --").await.unwrap();
        assert_eq!(s.event_count().await.unwrap(), users.len() as u64 - 1);
    }
}
