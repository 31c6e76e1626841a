//! The real binary, as an operator runs it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_liftoff");

pub(crate) struct Proc {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Proc {
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIFTOFF_")) {
            cmd.env_remove(k);
        }
        cmd.env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.log.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!(
            "no line with {needle:?}; output so far:\n{}",
            self.log.join("\n")
        );
    }

    /// Kills the process with SIGKILL: no shutdown, no lease released, as when a machine dies.
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `http://ADDR` of the "listening on" line.
pub(crate) fn address(line: &str) -> String {
    let start = line.find("listening on http://").unwrap() + "listening on ".len();
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap()
        .to_owned()
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = reqwest::get(url).await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

#[test]
fn first_start_generates_credentials_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = Instant::now();
    let mut p = Proc::start(
        &[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let line = p.wait_for("listening on http://");
    let base = address(&line);
    let (status, _) = get(&format!("{base}/readyz"));
    assert_eq!(status, 200);
    eprintln!(
        "ready after {:?} (debug build, first start)",
        started.elapsed()
    );

    for file in ["admin-token", "admin-password"] {
        let path = data.join(file);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file} is private");
    }
    let token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        p.log.iter().any(|l| l.contains(&token)),
        "the token is printed once"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200, "the generated token is an admin key");

    let status = p.terminate();
    assert!(status.success(), "exit status {status}");

    // A second start generates nothing new.
    let mut p = Proc::start(
        &[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    p.wait_for("listening on http://");
    assert!(
        !p.log.iter().any(|l| l.contains("shown once")),
        "{:?}",
        p.log
    );
    assert!(p.terminate().success());
}

#[test]
fn json_logs_and_environment_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(
        &["serve", "--log-format", "json"],
        &[
            ("LIFTOFF_DATA", dir.path().to_str().unwrap()),
            ("LIFTOFF_LISTEN", "127.0.0.1:0"),
            ("LIFTOFF_ADMIN_TOKEN", "env-admin-token-0123456789"),
        ],
    );
    let line = p.wait_for("listening on http://");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
    assert_eq!(v["level"], "INFO");
    assert!(
        !dir.path().join("admin-token").exists(),
        "LIFTOFF_ADMIN_TOKEN replaces the generated one"
    );
    assert!(p.terminate().success());
}

#[test]
fn unknown_settings_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data", dir.path().to_str().unwrap()])
        .env("LIFTOFF_LISTNE", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LIFTOFF_LISTNE") && err.contains("LIFTOFF_LISTEN"),
        "{err}"
    );

    let config = dir.path().join("liftoff.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_port"), "{err}");
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("liftoff.toml");
    let data = dir.path().join("from-file");
    std::fs::write(&config, format!("listen = \"127.0.0.1:1\"\ndata = {:?}\nadmin_token = \"file-admin-token-0123456789\"\n", data)).unwrap();
    let mut p = Proc::start(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let base = address(&p.wait_for("listening on http://"));
    assert!(!base.ends_with(":1"), "the flag overrides the file");
    assert!(
        data.join("state.db").exists(),
        "the data dir comes from the file"
    );
    assert!(p.terminate().success());
}

#[test]
fn help_documents_every_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "demo", "migrate", "keys", "users"] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data",
        "--state-url",
        "--events-url",
        "LIFTOFF_ADMIN_TOKEN",
        "--log-format",
        "--event-retention-days",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

#[test]
fn demo_fills_a_data_dir() {
    if crate::harness::events_in_clickhouse("demo_fills_a_data_dir") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--data", dir.path().to_str().unwrap()])
        .env("LIFTOFF_ADMIN_TOKEN", "demo-admin-token-0123456789")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["users", "list", "--data", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("maya.editor") && list.contains("sam.viewer") && list.contains("admin"),
        "{list}"
    );
    // A month of product events from a few thousand shoppers, with persons and sessions.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use crate::harness::{ADMIN_TOKEN, spawn_at};
        let app = spawn_at(dir.path(), |o| o).await;
        let res = app
            .get("/api/analytics/export?format=ndjson", Some(ADMIN_TOKEN))
            .await;
        assert_eq!(res.status(), 200);
        let body = res.bytes().await.unwrap();
        let events = body.iter().filter(|b| **b == b'\n').count();
        assert!(
            (150_000..=250_000).contains(&events),
            "{events} demo events"
        );
        let mut explicit = false;
        let mut implicit = false;
        for n in 0..20 {
            let res = app
                .get(&format!("/api/analytics/user/user-{n}"), Some(ADMIN_TOKEN))
                .await;
            assert_eq!(res.status(), 200);
            let user: serde_json::Value = res.json().await.unwrap();
            let props = &user["person"]["properties"];
            for key in ["plan", "country", "browser"] {
                assert!(props[key].is_string(), "user-{n} lacks {key}: {user}");
            }
            assert_eq!(user["event_counts"]["signup"], 1, "{user}");
            for s in user["sessions"].as_array().unwrap() {
                if s["explicit"] == true {
                    explicit = true;
                } else {
                    implicit = true;
                }
            }
        }
        assert!(explicit && implicit, "sessions with and without session_id");
        app.shutdown().await;
    });
}

#[test]
fn serve_demo_refuses_a_data_dir_with_data_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["users", "create", "--username", "alice", "--data", data])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["serve", "--demo", "--data", data, "--listen", "127.0.0.1:0"])
        .env("LIFTOFF_ADMIN_TOKEN", "demo-admin-token-0123456789")
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve --demo started on real data");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--demo with {data}"))
            && stderr.contains("already holds data of its own (1 other user)")
            && stderr.contains("--data ./liftoff-demo"),
        "{stderr}"
    );
}

#[test]
fn flags_cli_steers_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let token = "cli-admin-token-0123456789";
    let mut p = Proc::start(
        &[
            "serve",
            "--data",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("LIFTOFF_ADMIN_TOKEN", token)],
    );
    let base = address(&p.wait_for("listening on http://"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let status = rt.block_on(async {
        http.post(format!("{base}/api/feature-flags"))
            .bearer_auth(token)
            .json(&serde_json::json!({"flag_id": "new-checkout"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 201);
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--url", &base, "--token", token])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        cli(&["flags", "disable", "new-checkout", "--reason", "errors"])
            .contains("off for everyone")
    );
    assert!(
        cli(&[
            "flags",
            "set-percentage",
            "new-checkout",
            "12.5",
            "--reason",
            "slow ramp"
        ])
        .contains("12.5%")
    );
    let list = cli(&["flags", "list"]);
    assert!(
        list.contains("new-checkout") && list.contains("off") && list.contains("percentage"),
        "{list}"
    );
    let flag: serde_json::Value =
        serde_json::from_str(&cli(&["flags", "get", "new-checkout"])).unwrap();
    assert_eq!(
        (flag["enabled"].clone(), flag["percentage"].clone()),
        (serde_json::json!(false), serde_json::json!(12.5))
    );
    let out = Command::new(BIN)
        .args([
            "flags", "enable", "missing", "--reason", "x", "--url", &base, "--token", token,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert!(p.terminate().success());
}

/// A 2xx on ingest means committed: kill -9 during sustained ingest, restart, and every
/// acknowledged batch is there (and nothing beyond what was sent).
#[test]
fn acknowledged_request_metrics_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let token = "kill-admin-token-0123456789";
    let data = dir.path().to_str().unwrap().to_owned();
    let mut p = Proc::start(
        &["serve", "--data", &data, "--listen", "127.0.0.1:0"],
        &[("LIFTOFF_ADMIN_TOKEN", token)],
    );
    let base = address(&p.wait_for("listening on http://"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let batch: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"service": "durable", "method": "GET", "route": "/r", "status": 200, "duration_ms": i}))
        .collect();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (http, base, batch, acked, sent) = (
                http.clone(),
                base.clone(),
                batch.clone(),
                acked.clone(),
                sent.clone(),
            );
            rt.spawn(async move {
                loop {
                    sent.fetch_add(100, std::sync::atomic::Ordering::SeqCst);
                    match http
                        .post(format!("{base}/api/ingest/requests"))
                        .bearer_auth(token)
                        .json(&batch)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            acked.fetch_add(100, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = p.child.wait();
    rt.block_on(async {
        for w in workers {
            let _ = w.await;
        }
    });
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked >= 1000,
        "sustained ingest before the kill: {acked} acknowledged"
    );

    let mut p = Proc::start(
        &["serve", "--data", &data, "--listen", "127.0.0.1:0"],
        &[("LIFTOFF_ADMIN_TOKEN", token)],
    );
    let base = address(&p.wait_for("listening on http://"));
    let perf: serde_json::Value = rt.block_on(async {
        http.get(format!(
            "{base}/api/monitoring/performance?service=durable&window=1h"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    let stored = perf["GET:/r"]["request_count"].as_u64().unwrap_or(0);
    eprintln!("acknowledged {acked}, stored {stored}, sent {sent}");
    assert!(
        stored >= acked,
        "an acknowledged batch was lost: acknowledged {acked}, stored {stored}"
    );
    assert!(stored <= sent, "more stored than sent: {stored} > {sent}");
    assert_eq!(stored % 100, 0, "batches are all or nothing");
    assert!(p.terminate().success());
}

/// Events: kill -9 during sustained ingest from several tasks, restart on the same data dir,
/// and every event whose request got a 2xx is there exactly once (by uuid), and nothing that
/// was never sent.
#[test]
fn acknowledged_events_survive_kill_9_exactly_once() {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let token = "kill-admin-token-0123456789";
    let data = dir.path().to_str().unwrap().to_owned();
    let mut p = Proc::start(
        &["serve", "--data", &data, "--listen", "127.0.0.1:0"],
        &[("LIFTOFF_ADMIN_TOKEN", token)],
    );
    let base = address(&p.wait_for("listening on http://"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent: Arc<Mutex<HashSet<String>>> = Arc::default();
    const PER_BATCH: u64 = 50;
    let workers: Vec<_> = (0..4u64)
        .map(|task| {
            let (http, base, acked, sent) = (http.clone(), base.clone(), acked.clone(), sent.clone());
            rt.spawn(async move {
                for n in 0u64.. {
                    let batch: Vec<serde_json::Value> = (0..PER_BATCH)
                        .map(|i| {
                            let id = format!("{task:08x}-0000-4000-8000-{:012x}", n * PER_BATCH + i);
                            serde_json::json!({"event": "tick", "user_id": format!("u{task}"), "uuid": id, "properties": {"n": n}})
                        })
                        .collect();
                    let ids: Vec<String> = batch.iter().map(|e| e["uuid"].as_str().unwrap().to_owned()).collect();
                    sent.lock().unwrap().extend(ids.iter().cloned());
                    match http
                        .post(format!("{base}/api/ingest/events"))
                        .bearer_auth(token)
                        .json(&batch)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().extend(ids),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = p.child.wait();
    rt.block_on(async {
        for w in workers {
            let _ = w.await;
        }
    });
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(
        acked.len() >= 1000,
        "sustained ingest before the kill: {} acknowledged",
        acked.len()
    );

    let mut p = Proc::start(
        &["serve", "--data", &data, "--listen", "127.0.0.1:0"],
        &[("LIFTOFF_ADMIN_TOKEN", token)],
    );
    let base = address(&p.wait_for("listening on http://"));
    let export = rt.block_on(async {
        http.get(format!("{base}/api/analytics/export?format=ndjson"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let mut stored: HashMap<String, u32> = HashMap::new();
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *stored
            .entry(v["uuid"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    eprintln!(
        "acknowledged {}, stored {}, sent {}",
        acked.len(),
        stored.len(),
        sent.len()
    );
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let twice: Vec<(&String, &u32)> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert!(
        stored.keys().all(|id| sent.contains(id)),
        "an event that was never sent is stored"
    );
    assert_eq!(
        stored.len() as u64 % PER_BATCH,
        0,
        "batches are all or nothing"
    );
    assert!(p.terminate().success());
}
