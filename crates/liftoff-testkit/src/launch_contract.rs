//! What every backend must do for launch controls: admission exactly at the limit under
//! concurrency, a stable waitlist in order of first ask, the settings revision check, and
//! feedback storage.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use liftoff_core::audit::Change;
use liftoff_core::auth::Actor;
use liftoff_core::launch::feedback::{FeedbackStatus, NewFeedback};
use liftoff_core::launch::store::{FeedbackQuery, LaunchStore};

fn change(action: &str) -> Change {
    Change::new(&Actor::System, action, "launch", "")
}

async fn set_limit(s: &Arc<dyn LaunchStore>, limit: Option<u32>) -> Vec<String> {
    let mut settings = s.launch_settings().await.unwrap();
    settings.user_limit = limit;
    let (saved, admitted) = s
        .save_launch_settings(&settings, Utc::now(), &change("launch.update"))
        .await
        .unwrap()
        .expect("no concurrent change");
    assert_eq!(saved.user_limit, limit);
    admitted
}

/// 150 distinct users ask from 16 concurrent clients against a limit of 100: exactly 100 hold a
/// seat, asking again answers the same, the waitlist is 1–50 in order of first ask, and raising
/// the limit to 120 admits its first 20.
pub async fn admission_is_exact_under_concurrency(s: Arc<dyn LaunchStore>) {
    let defaults = s.launch_settings().await.unwrap();
    assert_eq!(
        defaults.user_limit,
        Some(100),
        "the default soft-launch cap"
    );
    assert_eq!(defaults.revision, 0);
    set_limit(&s, Some(100)).await;

    let at = Utc::now();
    let mut clients = Vec::new();
    for client in 0..16 {
        let s = s.clone();
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for user in (client..150).step_by(16) {
                answers.push(s.ask_admission(&format!("user-{user}"), at).await.unwrap());
            }
            answers
        }));
    }
    let mut first = Vec::new();
    for c in clients {
        first.extend(c.await.unwrap());
    }
    assert_eq!(first.len(), 150);
    assert_eq!(first.iter().filter(|a| a.allowed).count(), 100);
    let counts = s.admission_counts().await.unwrap();
    assert_eq!((counts.admitted, counts.waiting), (100, 50));

    // The waitlist in order of first ask, positions 1–50.
    let waiting = s.launch_users(true, 0, 1000).await.unwrap();
    assert_eq!(waiting.len(), 50);
    for (i, user) in waiting.iter().enumerate() {
        let again = s.ask_admission(&user.user_id, at).await.unwrap();
        assert!(!again.allowed);
        assert_eq!(
            again.waitlist_position,
            Some(i as u64 + 1),
            "{}",
            user.user_id
        );
        assert_eq!(again.admitted_count, 100);
        assert_eq!(again.user_limit, Some(100));
    }
    // Asking again answers the same.
    for a in &first {
        let again = s.ask_admission(&a.user_id, at).await.unwrap();
        assert_eq!(again.allowed, a.allowed, "{}", a.user_id);
        assert!(again.newly_admitted.is_empty());
    }

    let admitted = set_limit(&s, Some(120)).await;
    let expected: Vec<String> = waiting[..20].iter().map(|u| u.user_id.clone()).collect();
    assert_eq!(admitted, expected, "the waitlist's first 20, in order");
    let counts = s.admission_counts().await.unwrap();
    assert_eq!((counts.admitted, counts.waiting), (120, 30));
    let next = s.ask_admission(&waiting[20].user_id, at).await.unwrap();
    assert_eq!(next.waitlist_position, Some(1));
}

/// Revoking frees a seat for the waitlist's head, not for whoever asks next; `admit_next`
/// admits past the limit in order; no limit admits everyone.
pub async fn seats_go_to_the_waitlist_in_order(s: Arc<dyn LaunchStore>) {
    set_limit(&s, Some(2)).await;
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    for (i, user) in ["a", "b", "c", "d"].iter().enumerate() {
        let answer = s
            .ask_admission(user, at + Duration::seconds(i as i64))
            .await
            .unwrap();
        assert_eq!(answer.allowed, i < 2, "{user}");
        assert_eq!(answer.newly_admitted.len(), usize::from(i < 2));
    }
    assert!(
        s.revoke_admission("a", &change("launch.revoke"))
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_admission("zz", &change("launch.revoke"))
            .await
            .unwrap()
    );
    // A newcomer asks first, but the freed seat is c's: it has waited longest.
    let newcomer = s.ask_admission("e", at).await.unwrap();
    assert!(!newcomer.allowed);
    assert_eq!(newcomer.newly_admitted, ["c"]);
    assert_eq!(newcomer.waitlist_position, Some(2));
    assert!(s.ask_admission("c", at).await.unwrap().allowed);
    // `a` starts again at the end.
    assert_eq!(
        s.ask_admission("a", at).await.unwrap().waitlist_position,
        Some(3)
    );
    let admitted = s.admit_next(2, at, &change("launch.admit")).await.unwrap();
    assert_eq!(admitted, ["d", "e"]);
    assert_eq!(s.admission_counts().await.unwrap().admitted, 4);
    let admitted = set_limit(&s, None).await;
    assert_eq!(admitted, ["a"]);
    let users = s.launch_users(false, 0, 10).await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(names, ["b", "c", "d", "e", "a"]);
    assert!(users.iter().all(|u| u.admitted_at.is_some()));
    assert_eq!(s.launch_users(false, 3, 10).await.unwrap().len(), 2);
    let a = s.launch_user("a").await.unwrap().unwrap();
    assert!(a.admitted_at.is_some());
    assert!(s.launch_user("nobody").await.unwrap().is_none());
}

/// A returning user's answer is read without a write, and it is the answer an ask gives;
/// a new user, or a waiting one when a seat is free, is left to the ask.
pub async fn a_settled_answer_is_read_and_agrees_with_the_ask(s: Arc<dyn LaunchStore>) {
    set_limit(&s, Some(1)).await;
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    assert!(
        s.peek_admission("a", Some(1)).await.unwrap().is_none(),
        "a new user"
    );
    for user in ["a", "b", "c"] {
        s.ask_admission(user, at).await.unwrap();
    }
    for user in ["a", "b", "c"] {
        let peeked = s
            .peek_admission(user, Some(1))
            .await
            .unwrap()
            .expect("settled");
        let mut asked = s.ask_admission(user, at).await.unwrap();
        asked.newly_admitted.clear();
        assert_eq!(peeked, asked, "{user}");
    }
    let c = s.peek_admission("c", Some(1)).await.unwrap().unwrap();
    assert_eq!((c.allowed, c.waitlist_position), (false, Some(2)));
    assert!(
        s.peek_admission("c", Some(5)).await.unwrap().is_none(),
        "under a limit that looks higher, the ask decides"
    );
    // A seat opens (revoked): the next ask must be written to fill it.
    assert!(
        s.revoke_admission("a", &change("launch.revoke"))
            .await
            .unwrap()
    );
    assert!(s.peek_admission("b", Some(1)).await.unwrap().is_none());
    assert!(s.ask_admission("b", at).await.unwrap().allowed);
    assert!(
        s.peek_admission("b", Some(1))
            .await
            .unwrap()
            .unwrap()
            .allowed
    );
}

/// First asks and seats counted per UTC day, from the day of `since` on.
pub async fn admissions_are_counted_per_day(s: Arc<dyn LaunchStore>) {
    set_limit(&s, Some(2)).await;
    let day1 = Utc.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).unwrap();
    let day2 = day1 + Duration::hours(2);
    let day3 = day1 + Duration::hours(26);
    for (user, at) in [("a", day1), ("b", day1), ("c", day2), ("d", day2)] {
        s.ask_admission(user, at).await.unwrap();
    }
    // c gets a seat on day 3, when the limit rises (`set_limit` stamps seats with now, so
    // admit explicitly at day 3).
    s.admit_next(1, day3, &change("launch.admit"))
        .await
        .unwrap();
    let days = s.admissions_by_day(day1).await.unwrap();
    let rows: Vec<(String, u64, u64)> = days
        .iter()
        .map(|d| {
            (
                d.day.format("%Y-%m-%d %H:%M").to_string(),
                d.asked,
                d.admitted,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-12-01 00:00".to_owned(), 2, 2),
            ("2026-12-02 00:00".to_owned(), 2, 0),
            ("2026-12-03 00:00".to_owned(), 0, 1),
        ]
    );
    // From a later day on, an earlier day's asks are left out.
    let later = s.admissions_by_day(day3).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].asked, later[0].admitted), (0, 1));
}

/// A save with a stale revision changes nothing.
pub async fn settings_change_only_from_the_current_revision(s: Arc<dyn LaunchStore>) {
    let base = s.launch_settings().await.unwrap();
    let mut first = base.clone();
    first.maintenance.enabled = true;
    first.maintenance.message = "Upgrading".into();
    let (saved, _) = s
        .save_launch_settings(&first, Utc::now(), &change("launch.maintenance"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.revision, base.revision + 1);
    let mut stale = base;
    stale.user_limit = Some(5);
    assert!(
        s.save_launch_settings(&stale, Utc::now(), &change("launch.update"))
            .await
            .unwrap()
            .is_none()
    );
    let now = s.launch_settings().await.unwrap();
    assert_eq!(now.revision, saved.revision);
    assert!(now.maintenance.enabled);
    assert_eq!(now.user_limit, Some(100));
}

pub async fn feedback_round_trips(s: Arc<dyn LaunchStore>) {
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let mut ids = Vec::new();
    for i in 0..25u8 {
        let item = s
            .insert_feedback(
                &NewFeedback {
                    user_id: format!("u{}", i % 7),
                    rating: 1 + i % 5,
                    category: if i % 2 == 0 { "bug" } else { "ux" }.into(),
                    message: format!("message {i} — ünïcode"),
                    page: (i % 3 == 0).then(|| "/checkout".to_owned()),
                    request: (i % 4 == 0).then(|| "Dark mode".to_owned()),
                },
                start + Duration::hours(i64::from(i)),
            )
            .await
            .unwrap();
        assert_eq!(item.status, FeedbackStatus::Open);
        assert_eq!(item.rating, 1 + i % 5);
        ids.push(item.id);
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25);
    let page = s
        .list_feedback(&FeedbackQuery {
            category: Some("bug".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|f| f.category == "bug"));
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let rest = s
        .list_feedback(&FeedbackQuery {
            category: Some("bug".into()),
            before_id: page.last().map(|f| f.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len() + rest.len(), 13);

    let resolved = s
        .resolve_feedback(ids[3], "Fixed in 1.2", start, &change("feedback.resolve"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.status, FeedbackStatus::Resolved);
    assert_eq!(resolved.resolution.as_deref(), Some("Fixed in 1.2"));
    assert!(
        s.resolve_feedback(999_999, "x", start, &change("feedback.resolve"))
            .await
            .unwrap()
            .is_none()
    );
    let open = s
        .list_feedback(&FeedbackQuery {
            status: Some(FeedbackStatus::Open),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 24);
    let all = s.feedback_since(None).await.unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all[3].message, "message 3 — ünïcode");
    assert_eq!(all[0].page.as_deref(), Some("/checkout"));
    let recent = s
        .feedback_since(Some(start + Duration::hours(20)))
        .await
        .unwrap();
    assert_eq!(recent.len(), 5);
}

/// Runs the launch contract against the store `$open` returns (an
/// `async fn() -> Arc<dyn LaunchStore>`).
#[macro_export]
macro_rules! launch_contract {
    ($open:path) => {
        $crate::launch_contract!(@cases $open;
            admission_is_exact_under_concurrency, seats_go_to_the_waitlist_in_order,
            settings_change_only_from_the_current_revision, feedback_round_trips,
            admissions_are_counted_per_day, a_settled_answer_is_read_and_agrees_with_the_ask);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::launch_contract::$case($open().await).await;
            }
        )+
    };
}
