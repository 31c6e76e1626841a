//! `liftoff backup` while the server runs, `liftoff restore` into a fresh data directory: the
//! restored server has identical flags, rules and events, and readiness sees the backup.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, spawn_at};

const BIN: &str = env!("CARGO_BIN_EXE_liftoff");

fn liftoff(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIFTOFF_")) {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn export_lines(app: &TestApp) -> Vec<String> {
    let text = app
        .get("/api/analytics/export", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_identical_data() {
    if crate::harness::events_in_clickhouse("a_backup_taken_while_serving_restores_identical_data")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_at(dir.path(), |o| o).await;
    let (_, ingest) = app.key("ingest").await;
    for body in [
        json!({"flag_id": "new-checkout", "strategy": "percentage", "percentage": 25}),
        json!({"flag_id": "dark-mode", "strategy": "user_list", "user_whitelist": ["ada"]}),
    ] {
        let res = app
            .post_json("/api/feature-flags", Some(ADMIN_TOKEN), &body)
            .await;
        assert_eq!(res.status(), 201);
    }
    let res = app
        .post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "Checkout errors", "metric": "error_rate", "op": "gt",
                "threshold": 0.02, "severity": "critical"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    let events: Vec<Value> = (0..120)
        .map(|i| {
            json!({"event": if i % 3 == 0 { "signup" } else { "view" },
            "user_id": format!("u{}", i % 17), "timestamp": now - i * 1_000})
        })
        .collect();
    let res = app
        .post_json("/api/ingest/events", Some(&ingest), &Value::Array(events))
        .await;
    assert_eq!(res.status(), 200);

    let file = dir
        .path()
        .parent()
        .unwrap()
        .join(format!("liftoff-backup-{}.bak", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let out = liftoff(&[
        "backup",
        "--data",
        dir.path().to_str().unwrap(),
        "--output",
        file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("events.db"), "{stdout}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second backup to the same name is refused, not overwritten.
    assert!(
        !liftoff(&[
            "backup",
            "--data",
            dir.path().to_str().unwrap(),
            "--output",
            file.to_str().unwrap()
        ])
        .status
        .success()
    );

    let readiness = json_of(&app, "/api/launch/readiness").await;
    let backup = readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "backup")
        .unwrap();
    assert_eq!(backup["status"], "pass", "{backup}");

    let flags = json_of(&app, "/api/feature-flags").await;
    let rules = json_of(&app, "/api/alerts/rules").await;
    let exported = export_lines(&app).await;
    assert_eq!(exported.len(), 120);

    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("data");
    // Restoring over existing data is refused.
    assert!(
        !liftoff(&[
            "restore",
            file.to_str().unwrap(),
            "--data",
            dir.path().to_str().unwrap()
        ])
        .status
        .success()
    );
    let out = liftoff(&[
        "restore",
        file.to_str().unwrap(),
        "--data",
        target.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = spawn_at(&target, |o| o).await;
    assert_eq!(json_of(&copy, "/api/feature-flags").await, flags);
    assert_eq!(json_of(&copy, "/api/alerts/rules").await, rules);
    assert_eq!(export_lines(&copy).await, exported);

    // A damaged archive is refused before anything is written.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    let damaged = restored.path().join("damaged.bak");
    std::fs::write(&damaged, bytes).unwrap();
    let out = liftoff(&[
        "restore",
        damaged.to_str().unwrap(),
        "--data",
        restored.path().join("other").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("damaged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!restored.path().join("other").exists());
    let _ = std::fs::remove_file(&file);
}
