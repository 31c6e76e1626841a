//! Dashboard sign-in under attack, over real HTTP: throttling per client (clients are told
//! apart by binding to different loopback addresses), the bound on password hashes, one
//! verification per attempt whoever the user, and `next` redirects that never leave the site.

use std::net::IpAddr;
use std::sync::Arc;

use liftoff_core::users::HashStats;
use reqwest::{Client, Response};

use crate::harness::{ADMIN_PASSWORD, TestApp, spawn, spawn_with};

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_at(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the login form with a matching double-submit CSRF pair.
async fn sign_in(
    app: &TestApp,
    client: &Client,
    username: &str,
    password: &str,
    next: &str,
) -> Response {
    client
        .post(app.at("/login"))
        .header("cookie", "liftoff_login_csrf=csrf-token-for-tests")
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", "csrf-token-for-tests"),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

fn stats(app: &TestApp) -> HashStats {
    app.state.users.password_hashing().stats()
}

fn session_cookie(res: &Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("liftoff_session=") && !c.starts_with("liftoff_session=;"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn location(res: &Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_admin_out_from_another_client() {
    let app = Arc::new(spawn().await);
    let attacker = client_at("127.0.0.2");
    for _ in 0..5 {
        let res = sign_in(&app, &attacker, "admin", "wrong-password", "/").await;
        assert_eq!(res.status(), 401);
    }
    let before = stats(&app).verifications;
    let res = sign_in(&app, &attacker, "admin", "wrong-password", "/").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert!(res.text().await.unwrap().contains("Too many attempts"));
    let res = sign_in(&app, &attacker, "admin", ADMIN_PASSWORD, "/").await;
    assert_eq!(res.status(), 429, "the blocked client gets nowhere");
    assert_eq!(
        stats(&app).verifications,
        before,
        "a blocked client costs no hash"
    );

    // The attacker keeps hammering while the owner signs in from elsewhere.
    let hammer = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let res = sign_in(&app, &attacker, "admin", "wrong-password", "/").await;
                assert_eq!(res.status(), 429);
            }
        })
    };
    let owner = client_at("127.0.0.1");
    for _ in 0..3 {
        let res = sign_in(&app, &owner, "admin", ADMIN_PASSWORD, "/flags").await;
        assert_eq!(res.status(), 303, "the right password signs in");
        assert_eq!(location(&res), "/flags");
        let cookie = session_cookie(&res).expect("a session cookie");
        let page = owner
            .get(app.at("/flags"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
    }
    // Its own mistakes count for the owner, but not the attacker's.
    let res = sign_in(&app, &owner, "admin", "typo-password", "/").await;
    assert_eq!(res.status(), 401);
    hammer.await.unwrap();

    // Spraying user names: one client gets 20 failures whatever the names.
    let sprayer = client_at("127.0.0.3");
    for i in 0..20 {
        let res = sign_in(&app, &sprayer, &format!("user{i}"), "wrong-password", "/").await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = sign_in(&app, &sprayer, "admin", ADMIN_PASSWORD, "/").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let res = sign_in(&app, &owner, "admin", ADMIN_PASSWORD, "/").await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn concurrent_sign_ins_never_run_more_hashes_than_permits() {
    let app = Arc::new(
        spawn_with(|o| liftoff::config::Overrides {
            password_hash_concurrency: Some(2),
            ..o
        })
        .await,
    );
    assert_eq!(app.state.users.password_hashing().concurrency(), 2);
    let before = stats(&app);
    let clients = 64;
    let start = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for i in 0..clients {
        // 64 different clients, so no per-client budget interferes.
        let client = client_at(&format!("127.0.1.{}", i + 1));
        let (app, start) = (app.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let res = sign_in(&app, &client, &format!("nobody-{i}"), "wrong-password", "/").await;
            let status = res.status().as_u16();
            let retry = res.headers().contains_key("retry-after");
            let body = res.text().await.unwrap();
            (status, retry, body)
        }));
    }
    let (mut refused, mut busy) = (0u64, 0u64);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            401 => refused += 1,
            429 => {
                assert!(retry, "429 carries Retry-After");
                assert!(body.contains("busy"), "{body}");
                busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let after = stats(&app);
    assert!(
        after.peak <= 2,
        "at most the permits ran at once: {after:?}"
    );
    assert_eq!(after.running, 0);
    assert_eq!(
        after.verifications - before.verifications,
        refused,
        "every 401 is one verification, every 429 none"
    );
    assert_eq!(after.busy - before.busy, busy);
    assert!(busy > 0, "64 at once cannot all be checked in 100 ms");
    // Nobody queued: the owner signs in right after.
    let res = sign_in(&app, &client_at("127.0.0.1"), "admin", ADMIN_PASSWORD, "/").await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn known_and_unknown_names_cost_one_verification_each() {
    let app = spawn().await;
    let client = client_at("127.0.0.1");
    for (username, password, status) in [
        ("admin", "wrong-password", 401),
        ("no-such-user", "wrong-password", 401),
        ("not a valid name <script>", "wrong-password", 401),
        ("admin", "", 401),
        ("admin", ADMIN_PASSWORD, 303),
    ] {
        let before = stats(&app).verifications;
        let res = sign_in(&app, &client, username, password, "/").await;
        assert_eq!(res.status(), status, "{username}");
        assert_eq!(
            stats(&app).verifications,
            before + 1,
            "{username:?} costs exactly one verification"
        );
    }
}

/// `next` values as the handler sees them (after one decoding of the query or form).
const BYPASSES: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\r\nX: 1",
    "/%09/evil.example",
    "/%0d%0aX:%201",
    "/%2F/evil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "/ /evil.example",
    "/%20/evil.example",
    "/\u{3000}/evil.example",
    "/%E3%80%80/evil.example",
    "//%09/evil.example",
    "/.//evil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
];

/// Percent-encodes every byte but unreserved ones, so the server decodes back to `s`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn next_never_leaves_the_site_over_http() {
    let app = spawn().await;
    let client = client_at("127.0.0.1");
    let res = sign_in(&app, &client, "admin", ADMIN_PASSWORD, "/").await;
    let cookie = session_cookie(&res).unwrap();
    let cases = BYPASSES.iter().map(|b| (*b, "/")).chain([
        ("/flags?env=prod", "/flags?env=prod"),
        ("/analytics#funnel", "/analytics#funnel"),
        ("/flags/caf\u{e9}", "/flags/caf%C3%A9"),
    ]);
    for (next, expected) in cases {
        // Already signed in: the login page sends the browser on.
        let res = client
            .get(app.at(&format!("/login?next={}", encode(next))))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "GET next={next:?}");
        assert_eq!(location(&res), expected, "GET next={next:?}");
        // Not signed in: the form carries only the safe value.
        let res = client
            .get(app.at(&format!("/login?next={}", encode(next))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(!html.contains("evil.example"), "GET form next={next:?}");
        // Signing in: the redirect and the cookie arrive together.
        let res = sign_in(&app, &client, "admin", ADMIN_PASSWORD, next).await;
        assert_eq!(res.status(), 303, "POST next={next:?}");
        assert_eq!(location(&res), expected, "POST next={next:?}");
        assert!(session_cookie(&res).is_some(), "POST next={next:?}");
    }
    // A raw query the client did not encode (tab and CR LF escapes as attackers send them).
    for raw in ["/%09/evil.example", "/%0d%0aX:%201", "/\\evil.example"] {
        let res = client
            .get(app.at(&format!("/login?next={raw}")))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{raw}");
        assert_eq!(location(&res), "/", "{raw}");
    }
}

/// Sessions live on the service's clock: stepped past the TTL, the session is gone and purged,
/// without waiting and without a hidden setting.
#[tokio::test]
async fn a_session_ends_when_the_clock_passes_its_ttl() {
    use liftoff_core::clock::ManualClock;
    use liftoff_core::users::{LoginOutcome, Role, UserService};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        liftoff_store::sqlite::SqliteState::open(&dir.path().join("state.db"))
            .await
            .unwrap(),
    );
    let t0 = chrono::Utc::now();
    let clock = ManualClock::new(t0);
    let users =
        UserService::new(store, chrono::Duration::hours(1)).with_clock(Arc::new(clock.clone()));
    users
        .create(
            &liftoff_core::auth::Actor::System,
            "ana",
            "a long enough password",
            Role::Viewer,
        )
        .await
        .unwrap();
    let LoginOutcome::SignedIn(s) = users.login("ana", "a long enough password").await.unwrap()
    else {
        panic!("sign-in refused");
    };
    assert_eq!(s.record.expires_at, t0 + chrono::Duration::hours(1));
    clock.advance(chrono::Duration::minutes(59));
    assert!(users.session(&s.token).await.unwrap().is_some());
    clock.advance(chrono::Duration::minutes(2));
    assert!(users.session(&s.token).await.unwrap().is_none());
    assert_eq!(users.purge_expired_sessions().await.unwrap(), 1);
}
