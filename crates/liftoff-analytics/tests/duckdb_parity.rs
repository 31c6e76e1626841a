//! The engine's answers equal DuckDB's on data from the shared generator.
//!
//! Needs a data directory made by `bench/analytics/prepare.sh small DIR` (events.ndjson.gz
//! plus DuckDB's expected.json), named by `LIFTOFF_TEST_ANALYTICS_DATA`. Without it the test
//! skips, unless `LIFTOFF_TEST_REQUIRE_ANALYTICS_DATA=1`, which makes the absence a failure.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use flate2::read::MultiGzDecoder;
use liftoff_analytics::{Bucket, DAY_MS, EventFilter, EventTable, Segment, TimeRange, ndjson};
use serde_json::{Value, json};
use std::io::BufReader;

#[test]
fn answers_equal_duckdb() {
    let Some(dir) = std::env::var_os("LIFTOFF_TEST_ANALYTICS_DATA") else {
        let how = "set LIFTOFF_TEST_ANALYTICS_DATA to a directory made by \
                   `bench/analytics/prepare.sh small target/analytics-small` (needs python3; \
                   creates target/bench-venv with numpy, pyarrow and duckdb)";
        if std::env::var("LIFTOFF_TEST_REQUIRE_ANALYTICS_DATA").as_deref() == Ok("1") {
            panic!("LIFTOFF_TEST_REQUIRE_ANALYTICS_DATA=1 but no data: {how}");
        }
        eprintln!("skipped: {how}");
        return;
    };
    // A relative path is taken from the workspace root (cargo runs tests in the crate dir).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();

    // One segment per UTC day from the NDJSON loader, each through encode/decode, as the
    // server stores them.
    let file = std::fs::File::open(dir.join("events.ndjson.gz")).unwrap();
    let loaded = ndjson::load_days(MultiGzDecoder::new(BufReader::new(file))).unwrap();
    let segments: Vec<Segment> = loaded
        .segments
        .iter()
        .map(|s| Segment::decode(&s.encode()).unwrap())
        .collect();
    let days: Vec<i64> = segments
        .iter()
        .map(|s| s.time_bounds().unwrap().0.div_euclid(DAY_MS))
        .collect();
    assert!(
        days.is_sorted_by(|a, b| a < b),
        "one segment per day: {days:?}"
    );
    let table = EventTable::from_segments(&segments).unwrap();
    assert_eq!(json!(table.len()), expected["events"]);
    let all = TimeRange::all();

    let steps: Vec<EventFilter> = ["signup", "search", "view_item", "purchase"]
        .iter()
        .map(|e| EventFilter::event(e))
        .collect();
    let funnel = table.funnel(&steps, 7 * DAY_MS, all, None).unwrap();
    assert_eq!(json!(funnel.users), expected["funnel"], "funnel");

    let dau: Vec<Value> = table
        .active_users(all, Bucket::Day)
        .iter()
        .filter(|b| b.users > 0)
        .map(|b| json!([b.start_ms / DAY_MS, b.users]))
        .collect();
    assert_eq!(json!(dau), expected["dau"], "DAU");

    let triangle: Vec<Value> = table
        .retention(all)
        .triangle()
        .iter()
        .map(|&(c, k, u)| json!([c, k, u]))
        .collect();
    assert_eq!(json!(triangle), expected["retention_triangle"], "retention");

    let top: Vec<Value> = table
        .top_events(all, usize::MAX)
        .iter()
        .map(|e| json!([e.event, e.count]))
        .collect();
    assert_eq!(json!(top), expected["top_events"], "top events");

    let s = table.sessions(all, 30 * 60 * 1000);
    assert_eq!(
        json!([s.sessions, s.total_duration_ms, s.bounces]),
        expected["sessions"],
        "sessions"
    );
}
