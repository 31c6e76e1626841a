//! Full-size benchmark of the analytics engine on the `bench/kit/gen_events.py` data.
//!
//!   cargo run --release -p liftoff-analytics --example bench_events -- DIR [--runs N]
//!
//! Loads `DIR/events.ndjson.gz`, builds one segment per UTC day, encodes them (bytes per
//! event), decodes them and builds the table (timed), runs every query `--runs` times
//! (min/median), checks the answers against the expected figures of the default data set
//! and against `DIR/results_duckdb.json` when present, and prints peak RSS. Writes
//! `DIR/results_liftoff.json` for `bench/analytics/run.sh`.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark binary: failing loudly is the point"
)]

use flate2::read::MultiGzDecoder;
use liftoff_analytics::{
    Bucket, DAY_MS, EventFilter, EventRow, EventTable, Segment, TimeRange, ndjson,
};
use serde_json::{Value, json};
use std::io::BufReader;

use std::time::Instant;

const FUNNEL: [&str; 4] = ["signup", "search", "view_item", "purchase"];
const EXPECTED_FUNNEL: [u64; 4] = [86_760, 65_581, 47_143, 10_867];
const EXPECTED_SESSIONS: u64 = 1_249_422;
const SESSION_GAP: i64 = 30 * 60 * 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .expect("usage: bench_events DIR [--runs N]")
        .clone();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .map_or(5, |i| args[i + 1].parse().unwrap());
    let mut report = serde_json::Map::new();
    let mut fails: Vec<String> = Vec::new();

    // ---- load NDJSON, one segment per UTC day, encode -----------------------------------
    // Each day is encoded as soon as it is built, as ingest stores it: the segments are never
    // all alive at once. Timed `--runs` times, like DuckDB's load.
    let path = format!("{dir}/events.ndjson.gz");
    let load = || {
        let file = std::fs::File::open(&path).expect("DIR/events.ndjson.gz");
        let mut days: Vec<(i64, Vec<u8>)> = Vec::new();
        let counts = ndjson::for_each_day(
            MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)),
            |day, segment| days.push((day, segment.encode())),
        )
        .unwrap();
        days.sort_by_key(|&(day, _)| day);
        let blobs: Vec<Vec<u8>> = days.into_iter().map(|(_, blob)| blob).collect();
        (counts.events as usize, blobs)
    };
    let (load_times, (events, blobs)) = timed(runs.max(1), load);
    let load_s = load_times.iter().copied().fold(f64::INFINITY, f64::min);
    let bytes: usize = blobs.iter().map(Vec::len).sum();
    println!(
        "loaded {events} events into {} day segments in {load_s:.2} s (min of {})",
        blobs.len(),
        load_times.len()
    );
    println!(
        "encoded: {bytes} bytes = {:.2} bytes/event",
        bytes as f64 / events as f64
    );
    report.insert("events".into(), json!(events));
    report.insert("segments".into(), json!(blobs.len()));
    report.insert("encoded_bytes".into(), json!(bytes));
    report.insert(
        "bytes_per_event".into(),
        json!(bytes as f64 / events as f64),
    );
    add_timing(
        &mut report,
        "load_ndjson_gz",
        &load_times,
        format!("{events} events, {} day segments", blobs.len()),
    );
    let rss_after_load = rss_kb("VmRSS");

    // ---- decode + table build (timed) ------------------------------------------------------
    let mut table: Option<EventTable> = None;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        drop(table.take()); // free the previous table first, like a restart would
        let t = Instant::now();
        let segs: Vec<Segment> = Segment::decode_many(&blobs)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let decode = t.elapsed().as_secs_f64();
        let tb = EventTable::from_segments(&segs).unwrap();
        drop(segs);
        times.push(t.elapsed().as_secs_f64());
        println!(
            "  decode {decode:.3} s + table {:.3} s",
            times.last().unwrap() - decode
        );
        table = Some(tb);
    }
    let table = table.unwrap();
    drop(blobs);
    add_timing(
        &mut report,
        "decode_and_table_build",
        &times,
        format!("{} users", table.user_count()),
    );
    report.insert(
        "table_heap_mb".into(),
        json!(table.heap_bytes() as f64 / 1048576.0),
    );
    let (lo, hi) = table.time_bounds().unwrap();
    let all = TimeRange::new(
        lo.div_euclid(DAY_MS) * DAY_MS,
        (hi.div_euclid(DAY_MS) + 1) * DAY_MS,
    );

    // ---- append (what a refresh under ingest costs) ------------------------------------------
    let fresh: Vec<EventRow> = (0..10_000)
        .map(|i| EventRow {
            ts_ms: hi + 1 + i,
            user: format!("u{}", i % 4_000),
            session: Some(format!("s-new-{}", i % 500)),
            event: "page_view".into(),
            properties: "{}".into(),
            uuid: None,
        })
        .collect();
    let (times, appended) = timed(runs, || {
        table
            .append(&Segment::build(&fresh).unwrap())
            .unwrap()
            .len()
    });
    add_timing(
        &mut report,
        "append_10k_events",
        &times,
        format!("{appended} events after"),
    );

    // ---- queries -------------------------------------------------------------------------------
    let steps: Vec<EventFilter> = FUNNEL.iter().map(|e| EventFilter::event(e)).collect();
    let (times, funnel) = timed(runs, || {
        table.funnel(&steps, 7 * DAY_MS, all, None).unwrap()
    });
    add_timing(
        &mut report,
        "funnel_4step_7d",
        &times,
        format!("{:?}", funnel.users),
    );
    report.insert("funnel".into(), json!(funnel.users));

    let (times, dau) = timed(runs, || table.active_users(all, Bucket::Day));
    let mean = dau.iter().map(|b| b.users as f64).sum::<f64>() / dau.len() as f64;
    add_timing(
        &mut report,
        "dau_30d",
        &times,
        format!("{} days, mean DAU {mean:.0}", dau.len()),
    );

    let (times, ret) = timed(runs, || table.retention(all));
    let (d1, d7, d29) = (ret.day_pct(1), ret.day_pct(7), ret.day_pct(29));
    add_timing(
        &mut report,
        "retention_triangle",
        &times,
        format!("D1 {d1:.3?}%, D7 {d7:.3?}%, D29 {d29:.3?}%"),
    );

    let (times, top) = timed(runs, || table.top_events(all, 10));
    add_timing(
        &mut report,
        "top10_events",
        &times,
        format!("{}:{}, …", top[0].event, top[0].count),
    );

    let (times, ses) = timed(runs, || table.sessions(all, SESSION_GAP));
    add_timing(
        &mut report,
        "sessions_30min",
        &times,
        format!(
            "{} sessions, avg {:.1} s, bounce {:.2}%",
            ses.sessions,
            ses.avg_duration_ms() / 1000.0,
            100.0 * ses.bounce_rate()
        ),
    );

    let (times, fb) = timed(runs, || {
        table
            .funnel(&steps, 7 * DAY_MS, all, Some("browser"))
            .unwrap()
    });
    add_timing(
        &mut report,
        "funnel_breakdown_browser",
        &times,
        format!("{} values", fb.breakdown.len()),
    );
    let (times, wau) = timed(runs, || table.active_users(all, Bucket::Week));
    add_timing(&mut report, "wau", &times, format!("{} weeks", wau.len()));
    let (times, nvr) = timed(runs, || table.new_vs_returning(all, Bucket::Day));
    add_timing(
        &mut report,
        "new_vs_returning_daily",
        &times,
        format!("{} days", nvr.len()),
    );
    let (times, paths) = timed(runs, || table.paths(all, SESSION_GAP, 10));
    add_timing(
        &mut report,
        "paths_top10",
        &times,
        format!(
            "{} → {}: {}",
            paths.transitions[0].from, paths.transitions[0].to, paths.transitions[0].count
        ),
    );
    let (times, ms) = timed(runs, || table.milestones(all));
    add_timing(
        &mut report,
        "milestones",
        &times,
        format!("{} events", ms.len()),
    );
    let (times, tl) = timed(runs, || table.user_timeline("u123", all).len());
    add_timing(&mut report, "user_timeline", &times, format!("{tl} events"));

    // ---- checks ----------------------------------------------------------------------------------
    if events == 10_000_000 {
        check(
            &mut fails,
            "funnel",
            funnel.users == EXPECTED_FUNNEL,
            format!("{:?}", funnel.users),
        );
        check(
            &mut fails,
            "sessions",
            ses.sessions == EXPECTED_SESSIONS,
            ses.sessions.to_string(),
        );
        let r1 = d1.map(|x| (x * 10.0).round() / 10.0);
        let r7 = d7.map(|x| (x * 10.0).round() / 10.0);
        check(
            &mut fails,
            "retention D1/D7",
            r1 == Some(32.9) && r7 == Some(16.7),
            format!("{r1:?} {r7:?}"),
        );
    }
    if let Ok(text) = std::fs::read_to_string(format!("{dir}/results_duckdb.json")) {
        let duck: Value = serde_json::from_str(&text).unwrap();
        check(
            &mut fails,
            "funnel = duckdb",
            json!(funnel.users) == duck["funnel"],
            format!("{}", duck["funnel"]),
        );
        let dau_ours: Vec<Value> = dau
            .iter()
            .map(|b| json!([b.start_ms / DAY_MS, b.users]))
            .filter(|v| v[1] != json!(0))
            .collect();
        check(
            &mut fails,
            "dau = duckdb",
            json!(dau_ours) == duck["dau"],
            String::new(),
        );
        let tri: Vec<Value> = ret
            .triangle()
            .iter()
            .map(|&(c, k, u)| json!([c, k, u]))
            .collect();
        check(
            &mut fails,
            "retention triangle = duckdb",
            json!(tri) == duck["retention_triangle"],
            String::new(),
        );
        let top_ours: Vec<Value> = top.iter().map(|e| json!([e.event, e.count])).collect();
        check(
            &mut fails,
            "top10 = duckdb",
            json!(top_ours) == duck["top10"],
            String::new(),
        );
        let s = &duck["sessions"];
        let avg = (ses.avg_duration_ms() / 100.0).round() / 10.0;
        let bounce = (10_000.0 * ses.bounce_rate()).round() / 100.0;
        check(
            &mut fails,
            "sessions = duckdb",
            json!(ses.sessions) == s[0]
                && s[1].as_f64() == Some(avg)
                && s[2].as_f64() == Some(bounce),
            format!("{s} vs [{}, {avg}, {bounce}]", ses.sessions),
        );
    } else {
        println!("(no {dir}/results_duckdb.json: skipped the DuckDB comparison)");
    }

    let peak = rss_kb("VmHWM") as f64 / 1024.0;
    let rss = rss_kb("VmRSS") as f64 / 1024.0;
    println!(
        "RSS after load {:.0} MiB, now {rss:.0} MiB, peak (VmHWM) {peak:.0} MiB; table heap {:.0} MiB",
        rss_after_load as f64 / 1024.0,
        table.heap_bytes() as f64 / 1048576.0
    );
    report.insert("peak_rss_mb".into(), json!(peak));
    report.insert("rss_end_mb".into(), json!(rss));
    report.insert("checks_failed".into(), json!(fails));
    std::fs::write(
        format!("{dir}/results_liftoff.json"),
        serde_json::to_string_pretty(&Value::Object(report)).unwrap(),
    )
    .unwrap();
    if !fails.is_empty() {
        eprintln!("FAILED checks: {fails:?}");
        std::process::exit(1);
    }
    println!("all answer checks passed");
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        out = Some(std::hint::black_box(f()));
        times.push(t.elapsed().as_secs_f64());
    }
    (times, out.unwrap())
}

fn add_timing(
    report: &mut serde_json::Map<String, Value>,
    name: &str,
    times: &[f64],
    summary: String,
) {
    let mut s = times.to_vec();
    s.sort_by(f64::total_cmp);
    let (min, median) = (s[0], s[s.len() / 2]);
    println!("{name:<26} min {min:>8.4} s  median {median:>8.4} s  {summary}");
    report.insert(
        name.into(),
        json!({"min_s": min, "median_s": median, "runs": times, "result": summary}),
    );
}

fn check(fails: &mut Vec<String>, what: &str, ok: bool, detail: String) {
    println!(
        "check {what}: {} {detail}",
        if ok { "ok" } else { "MISMATCH" }
    );
    if !ok {
        fails.push(what.to_owned());
    }
}

fn rss_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
