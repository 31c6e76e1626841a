//! `liftoff import events` and `liftoff export`: the real binary against a running server.

use std::io::Write as _;
use std::process::{Command, Output};

use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, spawn, spawn_with};

const BIN: &str = env!("CARGO_BIN_EXE_liftoff");

/// Runs the CLI on a blocking thread, so the server under test keeps running on the runtime.
async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIFTOFF_")) {
            cmd.env_remove(k);
        }
        cmd.args(&args).output().unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gzip(lines: &[String]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        gz.write_all(l.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap()
}

/// Every stored event, as the export endpoint's NDJSON rows.
async fn exported(app: &TestApp) -> Vec<Value> {
    let res = app
        .get("/api/analytics/export?format=ndjson", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(res.status(), 200);
    res.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn import_reads_both_shapes_skips_bad_lines_and_reimports_as_duplicates() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let t = now_ms() - 3_600_000;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    };
    let mut lines = vec![
        // 1: native, with a uuid and a person update
        json!({"event": "signup", "user_id": "u1", "session_id": "s1", "timestamp": at(t),
               "properties": {"$set": {"plan": "pro"}}, "uuid": "0190c3d2-7a4b-7c00-8000-000000000001"})
        .to_string(),
        // 2: native, no uuid
        json!({"event": "search", "user_id": "u1", "timestamp": t + 1_000, "properties": {"query": "shoes"}})
            .to_string(),
        // 3: an engine row (ts in ms, properties as JSON text)
        json!({"ts": t + 2_000, "user_id": "u2", "session_id": "s2", "event": "view_item",
               "properties": "{\"item\":\"i1\"}"})
        .to_string(),
        // 4: not JSON
        r#"{"event": "broken""#.to_owned(),
        // 5: empty: skipped, not counted
        String::new(),
        // 6: JSON the server refuses (before 2000)
        json!({"event": "old", "user_id": "u3", "timestamp": "1999-01-01T00:00:00Z"}).to_string(),
    ];
    for i in 0..5 {
        lines.push(
            json!({"ts": t + 10_000 + i, "user_id": "u4", "session_id": "s4", "event": "page_view",
                   "properties": format!("{{\"n\":{i}}}")})
            .to_string(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson.gz");
    std::fs::write(&file, gzip(&lines)).unwrap();
    let import = [
        "import",
        "events",
        file.to_str().unwrap(),
        "--batch",
        "3",
        "--url",
        &app.url,
        "--token",
        &ingest,
    ];

    let out = cli(&import).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a rejected line fails the run");
    assert!(stderr.contains("line 4: not JSON"), "{stderr}");
    assert!(
        stderr.contains("line 6: refused:") && stderr.contains("before 2000"),
        "{stderr}"
    );
    assert!(stderr.contains("2 line(s)"), "{stderr}");
    assert!(
        stdout.contains("8 events sent (8 stored, 0 duplicates), 2 lines rejected"),
        "{stdout}\n{stderr}"
    );

    let rows = exported(&app).await;
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["uuid"].is_string()), "uuids derived");
    let view = rows.iter().find(|r| r["event"] == "view_item").unwrap();
    assert_eq!(view["ts"], t + 2_000);
    assert_eq!(view["session_id"], "s2");
    assert_eq!(view["properties"], "{\"item\":\"i1\"}");
    let signup = rows.iter().find(|r| r["event"] == "signup").unwrap();
    assert_eq!(signup["uuid"], "0190c3d2-7a4b-7c00-8000-000000000001");
    let user: Value = app
        .get("/api/analytics/user/u1", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["person"]["properties"]["plan"], "pro");
    assert_eq!(user["total_events"], 2);

    // The same file again: every event is a duplicate, nothing new is stored.
    let out = cli(&import).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stdout.contains("8 events sent (0 stored, 8 duplicates), 2 lines rejected"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(exported(&app).await.len(), 8);
}

#[tokio::test]
async fn export_round_trips_into_a_second_server() {
    let a = spawn().await;
    let b = spawn().await;
    let (_, ingest_a) = a.key("ingest").await;
    let (_, read_a) = a.key("read").await;
    let (_, ingest_b) = b.key("ingest").await;
    let t = now_ms() - 86_400_000;
    // Events without uuids: the export has none, so the import derives them from the lines.
    let events: Vec<Value> = (0..2_500)
        .map(|i| {
            let event = ["page_view", "search", "purchase"][i % 3];
            json!({"event": event, "user_id": format!("u{}", i % 40),
                   "session_id": (i % 2 == 0).then(|| format!("s{}", i % 40)),
                   "timestamp": t + i as i64 * 1_000, "properties": {"i": i, "text": "a,b \"c\""}})
        })
        .collect();
    for chunk in events.chunks(1_000) {
        let res = a
            .post_json("/api/ingest/events", Some(&ingest_a), &json!(chunk))
            .await;
        assert_eq!(res.status(), 200);
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.ndjson.gz");
    let out = cli(&[
        "export",
        "--output",
        file.to_str().unwrap(),
        "--url",
        &a.url,
        "--token",
        &read_a,
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.is_empty(), "data goes to the file: {stdout}");
    assert!(stderr.contains("Exported 2,500 events"), "{stderr}");
    assert!(!dir.path().join("a.ndjson.gz.part").exists());

    let import = [
        "import",
        "events",
        file.to_str().unwrap(),
        "--batch",
        "400",
        "--url",
        &b.url,
        "--token",
        &ingest_b,
    ];
    let out = cli(&import).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2,500 events sent (2,500 stored, 0 duplicates), 0 lines rejected"),
        "{stdout}"
    );
    let key = |r: &Value| {
        (
            r["ts"].as_i64().unwrap(),
            r["user_id"].as_str().unwrap().to_owned(),
            r["session_id"].as_str().map(str::to_owned),
            r["event"].as_str().unwrap().to_owned(),
            r["properties"].as_str().unwrap().to_owned(),
        )
    };
    let mut in_a: Vec<_> = exported(&a).await.iter().map(key).collect();
    let mut in_b: Vec<_> = exported(&b).await.iter().map(key).collect();
    in_a.sort();
    in_b.sort();
    assert_eq!(in_a.len(), 2_500);
    assert_eq!(in_a, in_b);

    // Lines without uuids get the same derived ones again: duplicates, not new events.
    let out = cli(&import).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.contains("2,500 events sent (0 stored, 2,500 duplicates)"),
        "{stdout}"
    );
    assert_eq!(exported(&b).await.len(), 2_500);

    // CSV to standard output, over a window.
    let from = chrono::DateTime::from_timestamp_millis(t + 2_000_000)
        .unwrap()
        .to_rfc3339();
    let out = cli(&[
        "export",
        "--format",
        "csv",
        "--from",
        &from,
        "--url",
        &b.url,
        "--token",
        ADMIN_TOKEN,
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut csv = stdout.lines();
    assert_eq!(
        csv.next(),
        Some("uuid,ts,timestamp,user_id,session_id,event,properties")
    );
    assert_eq!(csv.count(), 500);
    assert!(stderr.contains("Exported 500 events"), "{stderr}");

    // A wrong token: the server's answer, and a failure.
    let out = cli(&["export", "--url", &a.url, "--token", "nope"]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("401"), "{stderr}");
}

#[tokio::test]
async fn import_waits_out_rate_limits() {
    // One request a second, bursts of two: five one-event batches meet 429s on the way.
    let app = spawn_with(|mut o| {
        o.ingest_rate_limit_per_second = Some(1.0);
        o
    })
    .await;
    let (_, ingest) = app.key("ingest").await;
    let t = now_ms() - 60_000;
    let lines: Vec<String> = (0..5)
        .map(|i| json!({"event": "e", "user_id": "u", "timestamp": t + i}).to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let started = std::time::Instant::now();
    let out = cli(&[
        "import",
        "events",
        file.to_str().unwrap(),
        "--batch",
        "1",
        "--concurrency",
        "1",
        "--url",
        &app.url,
        "--token",
        &ingest,
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("5 events sent (5 stored"), "{stdout}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "the 429s were waited out"
    );
    assert_eq!(exported(&app).await.len(), 5);
}

#[test]
fn help_explains_the_formats_and_reimports() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let import = help(&["import", "events", "--help"]);
    for needle in [
        "engine rows",
        "uuid",
        "duplicates",
        "Retry-After",
        "Examples:",
        "--batch",
        "--token",
    ] {
        assert!(
            import.contains(needle),
            "import --help lacks {needle}:\n{import}"
        );
    }
    let export = help(&["export", "--help"]);
    for needle in ["--format", "--from", "--output", "Examples:"] {
        assert!(
            export.contains(needle),
            "export --help lacks {needle}:\n{export}"
        );
    }
}
