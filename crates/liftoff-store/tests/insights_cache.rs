//! The analytics table kept in memory (`InsightsService`) follows the store through every
//! change: rows appended, days sealed (by this process after it read the rows, or by another
//! before it did), a person erased, a sealed day purged. After each step the table a refresh
//! leaves equals the one a fresh service builds from scratch, event for event. On SQLite and
//! PostgreSQL (`LIFTOFF_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used, reason = "test set-up: a failure is the answer")]

use std::sync::Arc;

use liftoff_analytics::{DAY_MS, EventFilter, EventTable, TimeRange};
use liftoff_core::analytics::insights::InsightsService;
use liftoff_core::analytics::{Event, EventStore};

/// Mid-morning, a fixed day: "today" for the store's sealing.
const TODAY: i64 = 20_400 * DAY_MS;

fn ev(user: &str, ts_ms: i64, event: &str, uuid: u128) -> Event {
    Event {
        uuid: Some(uuid),
        ts_ms,
        user: user.into(),
        session: Some(format!("{user}-{}", ts_ms / DAY_MS)),
        event: event.into(),
        properties: r#"{"plan":"pro"}"#.into(),
    }
}

/// A day of journeys: `users` users, each signing up, searching and (every third) buying.
fn day(day: i64, users: usize, uuid_base: u128) -> Vec<Event> {
    let mut out = Vec::new();
    for u in 0..users {
        let t = day * DAY_MS + 3_600_000 + u as i64 * 1_000;
        let user = format!("u{u}");
        let base = uuid_base + 10 * u as u128;
        out.push(ev(&user, t, "signup", base));
        out.push(ev(&user, t + 60_000, "search", base + 1));
        if u % 3 == 0 {
            out.push(ev(&user, t + 120_000, "purchase", base + 2));
        }
    }
    out
}

/// What a table answers, in a form two tables can be compared by.
fn answers(t: &EventTable) -> (usize, Vec<u64>, u64, Vec<(i64, String)>) {
    let all = TimeRange::all();
    let steps: Vec<EventFilter> = ["signup", "search", "purchase"]
        .iter()
        .map(|e| EventFilter::event(e))
        .collect();
    let funnel = t.funnel(&steps, DAY_MS, all, None).unwrap().users;
    let sessions = t.sessions(all, 30 * 60_000).sessions;
    let mut timeline: Vec<(i64, String)> = ["u0", "u1", "u4"]
        .iter()
        .flat_map(|u| t.user_timeline(u, all))
        .map(|e| (e.ts_ms, e.event.to_owned()))
        .collect();
    timeline.sort();
    (t.len(), funnel, sessions, timeline)
}

/// The cached table after a refresh equals a table built from nothing.
async fn check(store: &Arc<dyn EventStore>, cached: &InsightsService, step: &str) -> usize {
    cached.refresh_soon().await;
    let kept = cached.table().await.unwrap();
    let fresh = InsightsService::new(store.clone()).table().await.unwrap();
    assert_eq!(answers(&kept), answers(&fresh), "after {step}");
    kept.len()
}

async fn follows_every_change(store: Arc<dyn EventStore>) {
    let cached = InsightsService::new(store.clone());
    assert_eq!(check(&store, &cached, "nothing stored").await, 0);

    // Rows of three days, read as rows.
    let (d1, d2, d3) = (TODAY / DAY_MS - 3, TODAY / DAY_MS - 2, TODAY / DAY_MS - 1);
    let (first, second) = (day(d1, 30, 1_000), day(d2, 20, 2_000));
    store.append_events(&first, &[]).await.unwrap();
    store.append_events(&second, &[]).await.unwrap();
    let n = check(&store, &cached, "rows of two days").await;
    assert_eq!(n, first.len() + second.len());

    // Sealed after the table read its rows: nothing changes.
    assert_eq!(store.seal_day(d1).await.unwrap(), first.len() as u64);
    assert_eq!(check(&store, &cached, "a day it had read, sealed").await, n);

    // Rows stored and sealed before the table read them (another replica sealing): the
    // new part holds rows the table never saw.
    let third = day(d3, 10, 3_000);
    store.append_events(&third, &[]).await.unwrap();
    assert_eq!(store.seal_day(d3).await.unwrap(), third.len() as u64);
    let n = check(&store, &cached, "a day sealed before it was read").await;
    assert_eq!(n, first.len() + second.len() + third.len());

    // Late events of a sealed day, then today's: appended.
    store
        .append_events(&[ev("u0", d1 * DAY_MS + 7_200_000, "purchase", 9_000)], &[])
        .await
        .unwrap();
    let today = day(d3 + 1, 5, 4_000);
    store.append_events(&today, &[]).await.unwrap();
    let n = check(&store, &cached, "late and new rows").await - n;
    assert_eq!(n, 1 + today.len());
    let n = first.len() + second.len() + third.len() + 1 + today.len();
    // Retries of stored events change nothing.
    store.append_events(&day(d2, 20, 2_000), &[]).await.unwrap();
    assert_eq!(check(&store, &cached, "retries").await, n);

    // An erasure takes the person's events from sealed parts and rows alike.
    let erased = store.erase_person("u0").await.unwrap();
    assert!(erased.events > 0);
    let after = check(&store, &cached, "an erasure").await;
    assert_eq!(after, n - erased.events as usize);

    // Retention drops the oldest sealed day.
    let purged = store.purge_events_before(d2 * DAY_MS).await.unwrap();
    assert!(purged > 0);
    assert_eq!(
        check(&store, &cached, "a purge").await,
        after - purged as usize
    );
}

#[tokio::test]
async fn the_cached_table_follows_every_change_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        liftoff_store::sqlite::SqliteEvents::open(&dir.path().join("events.db"))
            .await
            .unwrap(),
    );
    follows_every_change(store).await;
}

#[tokio::test]
async fn the_cached_table_follows_every_change_on_postgres() {
    let url = liftoff_testkit::postgres::fresh_schema_url().await;
    let store: Arc<dyn EventStore> = Arc::new(
        liftoff_store::postgres::PgState::connect(&url)
            .await
            .unwrap(),
    );
    follows_every_change(store).await;
}

/// A table saved at shutdown and read at the next start follows what happened while Liftoff
/// was stopped, like one that stayed in memory; a store rolled back meanwhile (rows gone, no
/// part missing) is noticed and the table rebuilt.
async fn carries_over_a_restart(store: Arc<dyn EventStore>, rolled_back: Arc<dyn EventStore>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(liftoff_core::analytics::table_file::TABLE_FILE);
    let (d1, d2) = (TODAY / DAY_MS - 2, TODAY / DAY_MS - 1);
    let (first, second) = (day(d1, 30, 1_000), day(d2, 20, 2_000));
    store.append_events(&first, &[]).await.unwrap();
    store.append_events(&second, &[]).await.unwrap();
    rolled_back.append_events(&first, &[]).await.unwrap();

    let before = InsightsService::new(store.clone()).with_table_file(&file);
    before.save().await.unwrap();
    assert!(!file.exists(), "no table yet, nothing saved");
    assert_eq!(
        before.table().await.unwrap().len(),
        first.len() + second.len()
    );
    before.save().await.unwrap();
    assert!(file.exists());

    // While stopped: a day it held is sealed, and new rows arrive.
    store.seal_day(d1).await.unwrap();
    let today = day(d2 + 1, 5, 4_000);
    store.append_events(&today, &[]).await.unwrap();
    let after = InsightsService::new(store.clone()).with_table_file(&file);
    let n = check(&store, &after, "a restart").await;
    assert_eq!(n, first.len() + second.len() + today.len());
    assert!(!file.exists(), "read once, then removed");

    // The same file beside a store that lost the second day's rows.
    before.save().await.unwrap();
    let rolled = InsightsService::new(rolled_back.clone()).with_table_file(&file);
    assert_eq!(
        check(&rolled_back, &rolled, "a rolled-back store").await,
        first.len()
    );

    // A damaged file is refused, and the table built from the store.
    before.save().await.unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes.truncate(at);
    std::fs::write(&file, bytes).unwrap();
    let damaged = InsightsService::new(store.clone()).with_table_file(&file);
    assert_eq!(check(&store, &damaged, "a damaged file").await, n);
    assert!(!file.exists());
}

#[tokio::test]
async fn a_saved_table_carries_over_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let path = dir.path().join(name);
        async move {
            Arc::new(
                liftoff_store::sqlite::SqliteEvents::open(&path)
                    .await
                    .unwrap(),
            ) as Arc<dyn EventStore>
        }
    };
    carries_over_a_restart(open("events.db").await, open("older.db").await).await;
}

#[tokio::test]
async fn a_saved_table_carries_over_a_restart_on_postgres() {
    let connect = || async {
        let url = liftoff_testkit::postgres::fresh_schema_url().await;
        Arc::new(
            liftoff_store::postgres::PgState::connect(&url)
                .await
                .unwrap(),
        ) as Arc<dyn EventStore>
    };
    carries_over_a_restart(connect().await, connect().await).await;
}
