//! The deployment files in `deploy/` name only settings Liftoff knows, with values it accepts:
//! a server started with each file's environment comes up, and the commands they run parse.
//! (An unknown `LIFTOFF_*` name would stop the server at start; this finds it first.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser as _;

use crate::process::Proc;

fn deploy(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const FILES: [&str; 5] = [
    "Dockerfile",
    "compose.yaml",
    "liftoff.service",
    "liftoff.env",
    "nginx.conf",
];

/// Every `LIFTOFF_*` name in `text` (not the bare prefix, as in "every LIFTOFF_* variable").
fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("LIFTOFF_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        if !word.ends_with('_') {
            out.push(word);
        }
    }
    out
}

#[test]
fn every_setting_named_in_deploy_is_known() {
    for file in FILES {
        let found = names(&deploy(file));
        liftoff::config::check_environment(found.into_iter())
            .unwrap_or_else(|e| panic!("deploy/{file}: {e}"));
    }
}

#[test]
fn the_commands_they_run_parse() {
    let unit = deploy("liftoff.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[0], "/usr/local/bin/liftoff");
    liftoff::cli::Cli::try_parse_from(args).unwrap();
    let docker = deploy("Dockerfile");
    assert!(docker.contains("ENTRYPOINT [\"liftoff\"]") && docker.contains("CMD [\"serve\"]"));
    liftoff::cli::Cli::try_parse_from(["liftoff", "serve"]).unwrap();
}

/// `KEY=VALUE` lines of an env file, comments skipped.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `LIFTOFF_*: value` entries of compose.yaml's shared environment, with `${VAR:-default}`
/// taken as its default and `${VAR:?message}` as a value an operator would give.
fn compose_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("LIFTOFF_"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('"');
            let v = if let Some(inner) = v.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
                match inner.split_once(":-") {
                    Some((_, default)) => default.to_owned(),
                    None if k.ends_with("SECRET_KEY") => "00".repeat(32),
                    None => "an-operator-chosen-value-0123456789".to_owned(),
                }
            } else {
                v.to_owned()
            };
            (k.to_owned(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_starts_with_each_files_settings() {
    let compose = compose_env(&deploy("compose.yaml"));
    assert!(compose.contains_key("LIFTOFF_STATE_URL"), "{compose:?}");
    assert!(compose.contains_key("LIFTOFF_EVENTS_URL"), "{compose:?}");
    for (file, mut env) in [
        ("compose.yaml", compose),
        ("liftoff.env", env_file(&deploy("liftoff.env"))),
    ] {
        // Where this machine differs from the file's: its database, a free port, a scratch
        // data directory.
        let data = tempfile::tempdir().unwrap();
        env.insert("LIFTOFF_LISTEN".into(), "127.0.0.1:0".into());
        env.insert(
            "LIFTOFF_STATE_URL".into(),
            liftoff_testkit::postgres::fresh_schema_url().await,
        );
        env.insert("LIFTOFF_DATA".into(), data.path().display().to_string());
        if env.contains_key("LIFTOFF_EVENTS_URL") {
            // The test server, as the file's user and password would name theirs.
            env.insert(
                "LIFTOFF_EVENTS_URL".into(),
                liftoff_testkit::clickhouse::fresh_database_url(),
            );
            env.remove("LIFTOFF_EVENTS_PASSWORD");
        }
        let pairs: Vec<(String, String)> = env.into_iter().collect();
        let line = tokio::task::spawn_blocking(move || {
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut p = Proc::start(&["serve"], &refs);
            let line = p.wait_for("listening on http://");
            assert!(p.terminate().success());
            line
        })
        .await
        .unwrap();
        assert!(line.contains("listening on"), "deploy/{file}: {line}");
    }
}
