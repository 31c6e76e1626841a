//! The client against a fake Liftoff server (hand-written HTTP/1.1 on a local port): loading,
//! live updates, outages, garbage, files, 304s, reconnection, shutdown.
#![allow(clippy::unwrap_used, reason = "tests")]

mod fake_server;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use fake_server::{FakeServer, TOKEN};
use liftoff_sdk::{Context, FlagClient, FlagClientBuilder, Payload, SdkError, SnapshotSource};
use tokio::time::{sleep, timeout};

/// Client-features JSON with one always-on-when-enabled flag per entry.
fn defs(flags: &[(&str, bool)]) -> String {
    let features: Vec<String> = flags
        .iter()
        .map(|(name, enabled)| {
            format!(
                r#"{{"name":"{name}","enabled":{enabled},"strategies":[{{"name":"default"}}]}}"#
            )
        })
        .collect();
    format!(r#"{{"version":2,"features":[{}]}}"#, features.join(","))
}

/// Polls `cond` every 5 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(5)).await;
    }
}

/// A client for `server` that never polls on its own schedule (only right after a stream
/// failure, when no poll happened yet), so changes are known to arrive over the stream.
fn client_for(server: &FakeServer) -> FlagClientBuilder {
    FlagClient::builder(server.url(), TOKEN).refresh_interval(Duration::from_secs(3600))
}

/// An address where nothing listens.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn anyone() -> Context {
    Context::default()
}

#[tokio::test]
async fn initial_load_evaluates_from_the_server() {
    let body = r#"{"version":2,"features":[
        {"name":"checkout","enabled":true,"strategies":[{"name":"default"}]},
        {"name":"off","enabled":false,"strategies":[{"name":"default"}]},
        {"name":"pro-only","enabled":true,"strategies":[{"name":"default",
            "constraints":[{"contextName":"plan","operator":"IN","values":["pro"]}]}]},
        {"name":"button","enabled":true,"strategies":[{"name":"default"}],
            "variants":[{"name":"blue","weight":1000,"payload":{"type":"string","value":"b"}}]}
    ]}"#
    .replace('\n', "");
    let server = FakeServer::start(&body).await;
    let client = client_for(&server)
        .environment("staging")
        .build()
        .await
        .unwrap();

    assert!(client.is_ready());
    assert_eq!(client.source(), SnapshotSource::Server);
    assert_eq!(client.etag().as_deref(), Some("\"v1\""));
    assert!(client.is_enabled("checkout", &anyone()));
    assert!(!client.is_enabled("off", &anyone()));
    assert!(!client.is_enabled("missing", &anyone()));
    assert!(client.is_enabled("pro-only", &Context::default().property("plan", "pro")));
    assert!(!client.is_enabled("pro-only", &Context::default().property("plan", "free")));

    let variant = client.variant("button", &Context::with_user("u1"));
    assert_eq!(variant.name, "blue");
    assert!(variant.enabled && variant.feature_enabled);
    assert_eq!(
        variant.payload,
        Some(Payload {
            kind: "string".into(),
            value: "b".into()
        })
    );
    let eval = client.evaluate("missing", &anyone());
    assert!(!eval.found && !eval.enabled);
    assert_eq!(eval.variant.name, "disabled");
    assert_eq!(client.snapshot().len(), 4);

    // Came over the stream, for the configured environment, with the token.
    assert_eq!(server.stream_connects(), 1);
    assert_eq!(server.flag_requests(), 0);
    assert_eq!(server.unauthorized(), 0);
    assert!(
        server
            .environments_seen()
            .iter()
            .all(|e| e.as_deref() == Some("staging"))
    );
}

#[tokio::test]
async fn pushed_change_applies_within_one_second() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();
    assert!(client.is_enabled("checkout", &anyone()));

    server.push_raw(": keep-alive\n\n");
    let updated = client.wait_for_update();
    let start = Instant::now();
    server.set_flags(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(1), || !client
            .is_enabled("checkout", &anyone()))
        .await,
        "the pushed change was not applied within 1 s"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    timeout(Duration::from_secs(1), updated)
        .await
        .expect("wait_for_update resolves on the change");
    assert_eq!(client.etag(), Some(server.etag()));
    assert_eq!(server.flag_requests(), 0, "the change came over the stream");
    assert_eq!(server.stream_connects(), 1);
}

#[tokio::test]
async fn server_down_keeps_the_last_snapshot_then_recovers() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let addr = server.addr();
    let client = client_for(&server).build().await.unwrap();
    server.stop();
    drop(server);

    // Reconnection attempts and a fallback poll fail meanwhile.
    sleep(Duration::from_millis(1500)).await;
    assert!(client.is_enabled("checkout", &anyone()));
    assert!(client.is_ready());
    assert_eq!(client.source(), SnapshotSource::Server);
    assert_eq!(client.etag().as_deref(), Some("\"v1\""));

    // The server comes back on the same port with other definitions.
    let server = FakeServer::start_on(addr, &defs(&[("checkout", true)])).await;
    server.set_flags_silently(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(10), || !client
            .is_enabled("checkout", &anyone()))
        .await,
        "the client did not come back to the server"
    );
    assert_eq!(client.etag(), Some(server.etag()));
}

const GARBAGE: [&str; 6] = [
    "this is not json",
    "{}",
    "[]",
    "null",
    r#"{"features":[{"enabled":true}]}"#,
    r#"{"type":"about:blank","title":"Internal Server Error","status":500}"#,
];

#[tokio::test]
async fn garbage_on_the_stream_never_replaces_the_snapshot() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();

    let updated = client.wait_for_update();
    for (i, garbage) in GARBAGE.iter().enumerate() {
        server.push_raw(&format!("event: flags\nid: \"g{i}\"\ndata: {garbage}\n\n"));
    }
    // Not the `flags` event: ignored whatever it holds.
    server.push_raw("event: other\ndata: {\"features\":[]}\n\n");
    server.push_raw("data: {\"features\":[]}\n\n");
    assert!(
        timeout(Duration::from_millis(500), updated).await.is_err(),
        "garbage changed the definitions"
    );
    assert!(client.is_enabled("checkout", &anyone()));
    assert_eq!(client.etag().as_deref(), Some("\"v1\""));

    // The stream is still good for real changes.
    server.set_flags(&defs(&[("checkout", true), ("marker", true)]));
    assert!(
        eventually(Duration::from_secs(1), || client
            .is_enabled("marker", &anyone()))
        .await
    );
    assert!(client.is_enabled("checkout", &anyone()));
    assert_eq!(server.stream_connects(), 1);
}

#[tokio::test]
async fn garbage_from_polling_never_replaces_the_snapshot() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = FlagClient::builder(server.url(), TOKEN)
        .stream(false)
        .refresh_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    assert!(client.is_enabled("checkout", &anyone()));

    for garbage in GARBAGE {
        server.set_flags_silently(garbage);
        let seen = server.flag_requests();
        assert!(
            eventually(Duration::from_secs(2), || server.flag_requests()
                >= seen + 2)
            .await
        );
        assert!(
            client.is_enabled("checkout", &anyone()),
            "{garbage:?} was adopted"
        );
        assert_eq!(client.etag().as_deref(), Some("\"v1\""));
    }

    server.set_flags_silently(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(2), || !client
            .is_enabled("checkout", &anyone()))
        .await
    );
    assert_eq!(client.etag(), Some(server.etag()));
}

#[tokio::test]
async fn bootstrap_file_without_any_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.json");
    std::fs::write(&path, defs(&[("checkout", true), ("beta", false)])).unwrap();

    let start = Instant::now();
    let client = FlagClient::builder(dead_url().await, TOKEN)
        .bootstrap_file(&path)
        .build()
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "build waited for the server"
    );
    assert!(client.is_ready());
    assert_eq!(client.source(), SnapshotSource::Bootstrap);
    assert_eq!(client.etag(), None);
    assert!(client.is_enabled("checkout", &anyone()));
    assert!(!client.is_enabled("beta", &anyone()));

    // Failing connection attempts change nothing.
    sleep(Duration::from_millis(800)).await;
    assert!(client.is_enabled("checkout", &anyone()));
    assert_eq!(client.source(), SnapshotSource::Bootstrap);
}

#[tokio::test]
async fn unusable_bootstrap_file_is_a_build_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = dead_url().await;
    let missing = dir.path().join("missing.json");
    let err = FlagClient::builder(&url, TOKEN)
        .bootstrap_file(&missing)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::BootstrapRead { path, .. } if path == &missing),
        "{err}"
    );

    for garbage in ["not json", "{}", "[]"] {
        let path = dir.path().join("bad.json");
        std::fs::write(&path, garbage).unwrap();
        let err = FlagClient::builder(&url, TOKEN)
            .bootstrap_file(&path)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(err, SdkError::BootstrapInvalid { .. }),
            "{garbage:?}: {err}"
        );
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[tokio::test]
async fn backup_file_is_written_and_used_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup").join("flags.json");
    let first = defs(&[("checkout", true), ("beta", false)]);
    let second = defs(&[("checkout", true), ("beta", true)]);

    let server = FakeServer::start(&first).await;
    let client = client_for(&server)
        .backup_file(&backup)
        .build()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(2), || read(&backup).as_deref()
            == Some(first.as_str()))
        .await
    );
    server.set_flags(&second);
    assert!(
        eventually(Duration::from_secs(2), || read(&backup).as_deref()
            == Some(second.as_str()))
        .await
    );
    // Only the backup itself is left: the temporary files were renamed over it.
    assert_eq!(
        std::fs::read_dir(backup.parent().unwrap()).unwrap().count(),
        1
    );
    client.shutdown();
    server.stop();

    // Next start, no server: the backup answers at once.
    let url = dead_url().await;
    let start = Instant::now();
    let client = FlagClient::builder(&url, TOKEN)
        .backup_file(&backup)
        .build()
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(client.is_ready());
    assert_eq!(client.source(), SnapshotSource::Backup);
    assert!(client.is_enabled("beta", &anyone()));
    client.shutdown();

    // The backup (newer) wins over the bootstrap file.
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap, &first).unwrap();
    let client = FlagClient::builder(&url, TOKEN)
        .backup_file(&backup)
        .bootstrap_file(&bootstrap)
        .build()
        .await
        .unwrap();
    assert_eq!(client.source(), SnapshotSource::Backup);
    assert!(client.is_enabled("beta", &anyone()));
    client.shutdown();

    // A broken backup is ignored in favour of the bootstrap file.
    std::fs::write(&backup, "{\"features\": [").unwrap();
    let client = FlagClient::builder(&url, TOKEN)
        .backup_file(&backup)
        .bootstrap_file(&bootstrap)
        .build()
        .await
        .unwrap();
    assert_eq!(client.source(), SnapshotSource::Bootstrap);
    assert!(!client.is_enabled("beta", &anyone()));
}

#[tokio::test]
async fn polling_sends_the_etag_and_keeps_the_snapshot_on_304() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = FlagClient::builder(server.url(), TOKEN)
        .stream(false)
        .refresh_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let updated = client.wait_for_update();
    assert!(eventually(Duration::from_secs(3), || server.not_modified() >= 3).await);

    let seen = server.if_none_match_seen();
    assert_eq!(seen[0], None, "the first request is unconditional");
    assert!(seen[1..].iter().all(|e| e.as_deref() == Some("\"v1\"")));
    assert_eq!(server.stream_connects(), 0);
    assert_eq!(client.etag().as_deref(), Some("\"v1\""));
    assert!(client.is_enabled("checkout", &anyone()));
    assert!(
        timeout(Duration::from_millis(50), updated).await.is_err(),
        "a 304 is not an update"
    );

    server.set_flags_silently(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(2), || !client
            .is_enabled("checkout", &anyone()))
        .await
    );
    assert_eq!(client.etag().as_deref(), Some("\"v2\""));
}

#[tokio::test]
async fn stream_drop_reconnects_and_picks_up_later_changes() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();
    assert_eq!(server.stream_connects(), 1);

    server.close_streams();
    assert!(
        eventually(Duration::from_secs(5), || server.stream_connects() >= 2).await,
        "no reconnection"
    );
    // A change pushed on the new stream.
    server.set_flags(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(1), || !client
            .is_enabled("checkout", &anyone()))
        .await
    );

    // A change made while disconnected arrives with the reconnection.
    server.close_streams();
    server.set_flags_silently(&defs(&[("checkout", true)]));
    assert!(
        eventually(Duration::from_secs(5), || client
            .is_enabled("checkout", &anyone()))
        .await
    );
    assert_eq!(server.stream_connects(), 3);
    assert_eq!(client.etag(), Some(server.etag()));
    // One fallback poll right after the first drop; the changes came over the stream.
    assert!(server.flag_requests() <= 1);
}

#[tokio::test]
async fn reconnecting_to_the_same_definitions_is_not_an_update() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();
    let updated = client.wait_for_update();
    server.close_streams();
    assert!(eventually(Duration::from_secs(5), || server.stream_connects() >= 2).await);
    assert!(timeout(Duration::from_millis(300), updated).await.is_err());
    assert_eq!(client.etag().as_deref(), Some("\"v1\""));
    // The fallback poll was conditional and answered 304.
    assert_eq!(server.if_none_match_seen(), vec![Some("\"v1\"".to_owned())]);
    assert_eq!(server.not_modified(), 1);
}

#[tokio::test]
async fn stream_unavailable_falls_back_to_polling() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    server.set_stream_enabled(false);
    let client = FlagClient::builder(server.url(), TOKEN)
        .refresh_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    assert!(client.is_ready());
    assert!(client.is_enabled("checkout", &anyone()));
    server.set_flags_silently(&defs(&[("checkout", false)]));
    assert!(
        eventually(Duration::from_secs(2), || !client
            .is_enabled("checkout", &anyone()))
        .await
    );

    // Once the stream is back, the client uses it again.
    server.set_stream_enabled(true);
    assert!(eventually(Duration::from_secs(10), || server.stream_connects() >= 1).await);
}

#[tokio::test]
async fn rejected_token_gives_an_unready_client_after_the_initial_timeout() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let start = Instant::now();
    let client = FlagClient::builder(server.url(), "wrong-token")
        .initial_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(!client.is_ready());
    assert_eq!(client.source(), SnapshotSource::Empty);
    assert!(!client.is_enabled("checkout", &anyone()));
    assert!(!client.evaluate("checkout", &anyone()).found);
    assert!(server.unauthorized() >= 1);
}

#[tokio::test]
async fn shutdown_stops_the_background_task() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();
    let clone = client.clone();
    assert_eq!(server.open_streams(), 1);

    client.shutdown();
    assert!(eventually(Duration::from_secs(2), || server.open_streams() == 0).await);
    timeout(Duration::from_millis(100), clone.wait_for_update())
        .await
        .expect("wait_for_update returns at once after shutdown");
    server.set_flags(&defs(&[("checkout", false)]));
    sleep(Duration::from_millis(700)).await;
    assert!(
        clone.is_enabled("checkout", &anyone()),
        "still the last definitions"
    );
    assert_eq!(server.stream_connects(), 1);
    assert_eq!(server.flag_requests(), 0);

    // Dropping the last handle stops it too.
    let client = client_for(&server).build().await.unwrap();
    assert!(!client.is_enabled("checkout", &anyone()));
    assert_eq!(server.open_streams(), 1);
    drop(client);
    assert!(eventually(Duration::from_secs(2), || server.open_streams() == 0).await);
}

#[tokio::test]
async fn bad_configuration_is_a_build_error() {
    for url in ["not a url", "ftp://example.com/", "http://"] {
        let err = FlagClient::builder(url, TOKEN).build().await.unwrap_err();
        assert!(matches!(err, SdkError::InvalidUrl { .. }), "{url:?}: {err}");
    }
    let url = dead_url().await;
    let err = FlagClient::builder(&url, TOKEN)
        .environment("prod")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::InvalidEnvironment(_)), "{err}");
    let err = FlagClient::builder(&url, "").build().await.unwrap_err();
    assert!(matches!(err, SdkError::InvalidToken(_)), "{err}");
}

#[tokio::test]
async fn unquoted_stream_ids_are_used_as_quoted_etags() {
    let server = FakeServer::start(&defs(&[("checkout", true)])).await;
    let client = client_for(&server).build().await.unwrap();
    let body = defs(&[("checkout", false)]);
    server.set_flags_silently(&body);
    server.push_raw(&format!("event: flags\nid: v2\ndata: {body}\n\n"));
    assert!(
        eventually(Duration::from_secs(1), || !client
            .is_enabled("checkout", &anyone()))
        .await
    );
    assert_eq!(client.etag().as_deref(), Some("\"v2\""));

    // The fallback poll after a drop sends it back as the server's ETag: 304.
    server.close_streams();
    assert!(eventually(Duration::from_secs(2), || server.flag_requests() == 1).await);
    assert_eq!(server.if_none_match_seen(), vec![Some("\"v2\"".to_owned())]);
    assert!(eventually(Duration::from_secs(2), || server.not_modified() == 1).await);
}
