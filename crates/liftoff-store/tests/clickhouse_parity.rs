//! Every analytics answer from ClickHouse equals the in-process engine's over the same
//! events: the same journeys are stored in SQLite (answered by `InsightsService`) and in
//! ClickHouse (answered by `ClickHouseQueries`, pushed down where it can be).
#![allow(clippy::unwrap_used, reason = "test set-up: a failure is the answer")]

use std::sync::Arc;

use liftoff_analytics::Bucket;
use liftoff_core::analytics::insights::{AnalyticsQueries, FunnelRequest, InsightsService};
use liftoff_core::analytics::{Event, EventStore};
use liftoff_store::clickhouse::{self, ClickHouseQueries, EventsUrl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
/// "Now" for every question: a fixed instant mid-day.
const NOW: i64 = 1_760_000_000_000;

/// Journeys of `users` users over the last 60 days. With `coarse`, times fall on whole
/// seconds so many events share a timestamp (what makes funnels' tie rules matter).
fn journeys(seed: u64, users: usize, coarse: bool) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut uuid = u128::from(seed) << 64;
    for u in 0..users {
        let user = format!("user-{u}");
        let first = NOW - rng.random_range(0..60 * DAY);
        let sessions = rng.random_range(1..6);
        let mut t = first;
        for s in 0..sessions {
            let session = (rng.random_bool(0.6)).then(|| format!("{user}-s{s}"));
            let plan = ["free", "pro", "team"][rng.random_range(0..3)];
            let variant = ["control", "treatment"][u % 2];
            let steps = rng.random_range(1..9);
            for _ in 0..steps {
                let name = [
                    "visit",
                    "visit",
                    "signup",
                    "buy",
                    "search",
                    "$pageview",
                    "checkout_error",
                    "$feature_flag_called",
                ][rng.random_range(0..8)];
                uuid += 1;
                let ts = if coarse { t / 1000 * 1000 } else { t };
                if ts < NOW {
                    let props = match name {
                        "$feature_flag_called" => {
                            json!({"$feature_flag": "checkout", "$feature_flag_response": variant})
                        }
                        "buy" => json!({"amount": rng.random_range(1..200), "plan": plan}),
                        "checkout_error" => json!({"error_type": "Timeout", "message": "slow"}),
                        _ => json!({"plan": plan, "$feature/checkout": variant}),
                    };
                    out.push(Event {
                        uuid: Some(uuid),
                        ts_ms: ts,
                        user: user.clone(),
                        session: session.clone(),
                        event: name.into(),
                        properties: props.to_string(),
                    });
                }
                // Often the next step comes in the same second or even the same millisecond.
                t += match rng.random_range(0..4) {
                    0 => 0,
                    1 => rng.random_range(1..1500),
                    2 => rng.random_range(1..600_000),
                    _ => rng.random_range(1..3 * DAY),
                };
            }
            // Sometimes the next session (with another id) starts within the inactivity gap:
            // only the change of id separates them.
            t += if rng.random_bool(0.3) {
                rng.random_range(1_000..600_000)
            } else {
                rng.random_range(DAY / 2..4 * DAY)
            };
        }
    }
    out
}

struct Both {
    /// The server takes 64-bit times in `windowFunnel` (19.x and later).
    modern: bool,
    engine: InsightsService,
    clickhouse: ClickHouseQueries,
    _dir: tempfile::TempDir,
}

async fn both(events: &[Event]) -> Both {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn EventStore> = Arc::new(
        liftoff_store::sqlite::SqliteEvents::open(&dir.path().join("events.db"))
            .await
            .unwrap(),
    );
    let url = liftoff_testkit::clickhouse::fresh_database_url();
    let (ch, version) = clickhouse::open(EventsUrl::parse(&url, None).unwrap())
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {url} is required: {e}"));
    let ch = Arc::new(ch);
    for chunk in events.chunks(500) {
        sqlite.append_events(chunk, &[]).await.unwrap();
        ch.append_events(chunk, &[]).await.unwrap();
    }
    Both {
        modern: clickhouse::Features::of(&version).funnel_64bit_time,
        engine: InsightsService::new(sqlite),
        // Sessions in shards of 1,000 events (several queries here): the shards must add up.
        clickhouse: ClickHouseQueries::new(ch, clickhouse::Features::of(&version))
            .with_session_shard_rows(1_000),
        _dir: dir,
    }
}

fn funnel(steps: &[&str], days: f64, window_days: f64, breakdown: Option<&str>) -> FunnelRequest {
    FunnelRequest {
        funnel_steps: steps.iter().map(|s| s.to_string()).collect(),
        days: Some(days),
        conversion_window_days: Some(window_days),
        breakdown: breakdown.map(str::to_owned),
    }
}

/// Asks both the funnel, checks ClickHouse answered it itself when `pushed`, and compares.
macro_rules! same_funnel {
    ($b:expr, $what:expr, $req:expr, pushed: $pushed:expr) => {{
        let req = $req;
        assert_eq!($b.clickhouse.pushes_down(&req, NOW), $pushed, "{}", $what);
        let want = serde_json::to_value($b.engine.funnel(&req, NOW).await.unwrap()).unwrap();
        let got = serde_json::to_value($b.clickhouse.funnel(&req, NOW).await.unwrap()).unwrap();
        assert_eq!(got, want, "{}", $what);
        want
    }};
}

/// Asks both the same question and compares the JSON answers.
macro_rules! same {
    ($b:expr, $what:literal, |$q:ident| $ask:expr) => {{
        let $q: &dyn AnalyticsQueries = &$b.engine;
        let want = serde_json::to_value($ask.await.unwrap()).unwrap();
        let $q: &dyn AnalyticsQueries = &$b.clickhouse;
        let got = serde_json::to_value($ask.await.unwrap()).unwrap();
        assert_eq!(got, want, "{}", $what);
        want
    }};
}

#[tokio::test]
async fn every_answer_equals_the_engines() {
    let events = journeys(7, 400, false);
    let b = both(&events).await;

    let mut names = b.clickhouse.event_names().await.unwrap();
    let mut want = b.engine.event_names().await.unwrap();
    names.sort();
    want.sort();
    assert_eq!(names, want);

    // On 18.x `windowFunnel` takes funnels of up to 24 days / steps (FUNNEL_MAX_SPAN_MS_18);
    // later releases take any. Each case says whether 18.x pushes it down.
    let m = b.modern;
    let f = same_funnel!(b, "3 days", funnel(&["visit", "signup", "buy"], 3.0, 1.0, None), pushed: true);
    assert!(f["analysis"][0]["users"].as_u64().unwrap() > 20, "{f}");
    assert!(f["analysis"][1]["users"].as_u64().unwrap() > 0, "{f}");
    let f =
        same_funnel!(b, "30 days", funnel(&["visit", "signup", "buy"], 30.0, 1.0, None), pushed: m);
    assert!(f["analysis"][2]["users"].as_u64().unwrap() > 0, "{f}");
    same_funnel!(b, "a window longer than the range", funnel(&["visit", "signup", "buy"], 7.0, 14.0, None), pushed: true);
    same_funnel!(b, "a window of 86 s", funnel(&["visit", "signup", "buy"], 7.0, 0.001, None), pushed: true);
    same_funnel!(b, "a window of 0", funnel(&["visit", "signup"], 10.0, 0.0, None), pushed: true);
    same_funnel!(b, "a name twice", funnel(&["visit", "visit", "buy"], 5.0, 3.0, None), pushed: m);
    same_funnel!(b, "an unknown name", funnel(&["visit", "it's \\ new"], 5.0, 3.0, None), pushed: true);
    same_funnel!(b, "60 days", funnel(&["visit", "buy"], 60.0, 14.0, None), pushed: m);
    same_funnel!(b, "a breakdown", funnel(&["visit", "buy"], 30.0, 14.0, Some("plan")), pushed: false);

    let a = same!(b, "active users", |q| q.active_users(60, NOW));
    assert!(a["mau"].as_u64().unwrap() > 50, "{a}");
    same!(b, "active user counts", |q| q
        .active_user_counts(&[5, 60, 1440, 43_200], NOW));
    same!(b, "features", |q| q.features(30.0, 10, NOW));
    same!(b, "features of a day", |q| q.features(1.0, 3, NOW));
    let r = same!(b, "retention", |q| q.retention(30.0, NOW));
    assert!(r["d1"].is_number(), "{r}");
    same!(b, "retention of a week", |q| q.retention(7.0, NOW));
    // Longer than the data: both narrow the range to the stored events' first and last.
    same!(b, "retention of 90 days", |q| q.retention(90.0, NOW));
    same!(b, "active users tomorrow", |q| q.active_users(5, NOW + DAY));
    same!(b, "paths", |q| q.paths(30.0, 10, NOW));
    same!(b, "milestones", |q| q.milestones(30.0, NOW));
    same!(b, "milestones of a week", |q| q.milestones(7.0, NOW));
    same!(b, "new vs returning by day", |q| q.new_vs_returning(
        30.0,
        Bucket::Day,
        NOW
    ));
    same!(b, "new vs returning by week", |q| q.new_vs_returning(
        30.0,
        Bucket::Week,
        NOW
    ));
    same!(b, "sessions", |q| q.sessions(30.0, NOW));
    same!(b, "sessions of a day", |q| q.sessions(1.0, NOW));
    let session = events.iter().rev().find_map(|e| e.session.clone()).unwrap();
    let s = same!(b, "one session", |q| q.session(&session));
    assert_eq!(s["session_id"], Value::String(session));
    same!(b, "no such session", |q| q.session("nope"));
    let e = same!(b, "errors", |q| q.errors(24.0 * 30.0, NOW));
    assert!(e["total_errors"].as_u64().unwrap() > 0, "{e}");

    // Exposures come in the table's user order, which follows how its rows were read.
    let mut want = (b
        .engine
        .flag_exposures("checkout", NOW - 30 * DAY, NOW)
        .await)
        .unwrap();
    let mut got = (b
        .clickhouse
        .flag_exposures("checkout", NOW - 30 * DAY, NOW)
        .await)
        .unwrap();
    want.sort_by(|x, y| x.user.cmp(&y.user));
    got.sort_by(|x, y| x.user.cmp(&y.user));
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let windows: Vec<(String, i64, i64)> = want
        .iter()
        .map(|x| (x.user.clone(), x.first_ms, NOW))
        .collect();
    let want = b
        .engine
        .user_totals("buy", Some("amount"), windows.clone())
        .await
        .unwrap();
    let got = b
        .clickhouse
        .user_totals("buy", Some("amount"), windows)
        .await
        .unwrap();
    assert!(want.iter().any(|t| t.count > 0));
    assert_eq!(got, want);
}

/// Funnels where many events share a second or a millisecond: `windowFunnel`'s tie rules
/// are the engine's.
#[tokio::test]
async fn funnels_with_ties_equal_the_engines() {
    for seed in 1..=4 {
        let b = both(&journeys(seed, 250, seed % 2 == 0)).await;
        let mut reached_last = 0;
        for (steps, window) in [
            (vec!["visit", "signup", "buy"], 1.0),
            (vec!["visit", "search", "signup", "buy"], 0.5),
            (vec!["signup", "buy"], 0.0),
            (vec!["$pageview", "visit", "signup", "search", "buy"], 14.0),
        ] {
            let req = funnel(&steps, 4.0, window, None);
            let f = same_funnel!(b, format!("{steps:?} seed {seed}"), req, pushed: true);
            assert!(f["analysis"][0]["users"].as_u64().unwrap() >= 5, "{f}");
            reached_last += f["analysis"][1]["users"].as_u64().unwrap();
        }
        assert!(
            reached_last > 0,
            "seed {seed}: no funnel got past its first step"
        );
    }
}
