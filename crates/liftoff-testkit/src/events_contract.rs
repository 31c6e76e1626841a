//! The event-store contract: idempotency on uuid, all-or-nothing appends, persons, erasure,
//! retention and paging. `liftoff-store` runs every case on SQLite and PostgreSQL through
//! [`event_store_contract!`](crate::event_store_contract).

use std::sync::Arc;

use liftoff_core::analytics::{AppendOutcome, EventStore};
use liftoff_core::analytics::{Event, PersonUpdate};
use serde_json::{Value, json};

const T0: i64 = 1_750_000_000_000;

fn ev(uuid: Option<u128>, ts: i64, user: &str, name: &str) -> Event {
    Event {
        uuid,
        ts_ms: ts,
        user: user.into(),
        session: None,
        event: name.into(),
        properties: format!(r#"{{"n":{}}}"#, ts - T0),
    }
}

fn touch(user: &str, ts: i64, set: Value, once: Value) -> PersonUpdate {
    PersonUpdate {
        user_id: user.into(),
        ts_ms: ts,
        set: set.as_object().cloned().unwrap_or_default(),
        set_once: once.as_object().cloned().unwrap_or_default(),
        merge_from: None,
    }
}

async fn all(s: &Arc<dyn EventStore>) -> Vec<Event> {
    s.events_between(i64::MIN, i64::MAX, 100_000, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

/// The same uuid twice (across calls and within one call) is stored once and counted.
pub async fn events_are_idempotent_on_uuid(s: Arc<dyn EventStore>) {
    let first = s
        .append_events(
            &[
                ev(Some(1), T0, "u", "a"),
                ev(Some(2), T0 + 1, "u", "b"),
                ev(None, T0 + 2, "u", "c"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        first,
        AppendOutcome {
            inserted: 3,
            duplicates: 0,
            duplicate_at: vec![]
        }
    );
    // A retry of the first two plus one new event whose uuid repeats inside the call; events
    // without a uuid are never duplicates.
    let retry = s
        .append_events(
            &[
                ev(Some(1), T0, "u", "a"),
                ev(Some(3), T0 + 3, "u", "d"),
                ev(Some(2), T0 + 1, "u", "b"),
                ev(Some(3), T0 + 3, "u", "d"),
                ev(None, T0 + 2, "u", "c"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        retry,
        AppendOutcome {
            inserted: 2,
            duplicates: 3,
            duplicate_at: vec![0, 2, 3]
        }
    );
    assert_eq!(s.event_count().await.unwrap(), 5);
    let stored = all(&s).await;
    assert_eq!(
        stored.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d", "c"]
    );
    assert_eq!(
        stored[0],
        ev(Some(1), T0, "u", "a"),
        "stored exactly as sent"
    );
    let big = u128::MAX - 7;
    s.append_events(&[ev(Some(big), T0, "v", "x")], &[])
        .await
        .unwrap();
    assert_eq!(all(&s).await[5].uuid, Some(big), "all 128 bits survive");
}

/// A failing append stores none of its events and none of its person updates.
pub async fn appends_are_all_or_nothing(s: Arc<dyn EventStore>) {
    s.append_events(
        &[ev(Some(1), T0, "u", "a")],
        &[touch("u", T0, json!({"plan": "free"}), json!({}))],
    )
    .await
    .unwrap();
    // The third event has no name: the store refuses it, and with it the whole call.
    let err = s
        .append_events(
            &[
                ev(Some(2), T0 + 1, "u", "b"),
                ev(Some(3), T0 + 2, "w", "c"),
                ev(Some(4), T0 + 3, "u", ""),
            ],
            &[
                touch("u", T0 + 1, json!({"plan": "pro"}), json!({})),
                touch("w", T0 + 2, json!({"x": 1}), json!({})),
            ],
        )
        .await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(s.event_count().await.unwrap(), 1);
    assert!(s.person("w").await.unwrap().is_none());
    let u = s.person("u").await.unwrap().unwrap();
    assert_eq!(Value::Object(u.properties), json!({"plan": "free"}));
    assert_eq!(u.last_seen_ms, T0);
    // Uuids of the failed call are free: a retry stores them.
    let ok = s
        .append_events(
            &[ev(Some(2), T0 + 1, "u", "b"), ev(Some(3), T0 + 2, "w", "c")],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ok.inserted, 2);
}

/// `$set` overwrites, `$set_once` fills, first/last seen widen, `$identify` merges.
pub async fn persons_accumulate(s: Arc<dyn EventStore>) {
    s.append_events(
        &[],
        &[
            touch(
                "u",
                T0 + 100,
                json!({"plan": "free", "n": 1}),
                json!({"source": "ad"}),
            ),
            touch("anon", T0 - 500, json!({"utm": "x"}), json!({})),
        ],
    )
    .await
    .unwrap();
    s.append_events(
        &[],
        &[
            touch(
                "u",
                T0,
                json!({"plan": "pro"}),
                json!({"source": "seo", "city": "Oslo"}),
            ),
            touch("u", T0 + 50, json!({}), json!({})),
        ],
    )
    .await
    .unwrap();
    let u = s.person("u").await.unwrap().unwrap();
    assert_eq!(u.first_seen_ms, T0);
    assert_eq!(u.last_seen_ms, T0 + 100);
    assert_eq!(
        Value::Object(u.properties),
        json!({"plan": "pro", "n": 1, "source": "ad", "city": "Oslo"})
    );
    let mut identify = touch("u", T0 + 200, json!({}), json!({}));
    identify.merge_from = Some("anon".into());
    s.append_events(&[], &[identify]).await.unwrap();
    let u = s.person("u").await.unwrap().unwrap();
    assert_eq!(u.first_seen_ms, T0 - 500);
    assert_eq!(u.last_seen_ms, T0 + 200);
    assert_eq!(u.properties.get("utm"), Some(&json!("x")));
    assert!(
        s.person("anon").await.unwrap().is_some(),
        "the anonymous person stays"
    );
    assert!(s.person("nobody").await.unwrap().is_none());
}

/// Updates that only move first and last seen (most events: no `$set`) create the person with
/// no properties, widen a stored person without touching its properties, and inside one append
/// still give way to the order of that person's `$set` and `$identify` updates.
pub async fn persons_seen_only_widen(s: Arc<dyn EventStore>) {
    let seen = |user: &str, ts: i64| touch(user, ts, json!({}), json!({}));
    s.append_events(
        &[],
        &[
            seen("new", T0 + 10),
            seen("new", T0 - 5),
            touch("kept", T0, json!({"plan": "pro"}), json!({})),
        ],
    )
    .await
    .unwrap();
    let new = s.person("new").await.unwrap().unwrap();
    assert_eq!((new.first_seen_ms, new.last_seen_ms), (T0 - 5, T0 + 10));
    assert!(new.properties.is_empty());

    s.append_events(
        &[],
        &[
            seen("kept", T0 + 100),
            seen("kept", T0 - 100),
            seen("new", T0),
        ],
    )
    .await
    .unwrap();
    let kept = s.person("kept").await.unwrap().unwrap();
    assert_eq!(
        (kept.first_seen_ms, kept.last_seen_ms),
        (T0 - 100, T0 + 100)
    );
    assert_eq!(Value::Object(kept.properties), json!({"plan": "pro"}));
    let new = s.person("new").await.unwrap().unwrap();
    assert_eq!((new.first_seen_ms, new.last_seen_ms), (T0 - 5, T0 + 10));

    // The anonymous person seen earlier in the same append is merged as it stands by then.
    let mut identify = seen("known", T0);
    identify.merge_from = Some("visitor".into());
    s.append_events(
        &[],
        &[
            seen("visitor", T0 - 1_000),
            touch("visitor", T0 - 900, json!({"utm": "x"}), json!({})),
            identify,
            seen("known", T0 + 1_000),
        ],
    )
    .await
    .unwrap();
    let known = s.person("known").await.unwrap().unwrap();
    assert_eq!(
        (known.first_seen_ms, known.last_seen_ms),
        (T0 - 1_000, T0 + 1_000)
    );
    assert_eq!(Value::Object(known.properties), json!({"utm": "x"}));
}

/// Erasing removes the person and every event of theirs, leaves others, and is recorded.
pub async fn erase_removes_a_person_and_their_events(s: Arc<dyn EventStore>) {
    s.append_events(
        &[
            ev(Some(1), T0, "gone", "a"),
            ev(Some(2), T0, "stays", "a"),
            ev(Some(3), T0 + 1, "gone", "b"),
        ],
        &[
            touch("gone", T0, json!({"email": "x@y"}), json!({})),
            touch("stays", T0, json!({}), json!({})),
        ],
    )
    .await
    .unwrap();
    let erased = s.erase_person("gone").await.unwrap();
    assert_eq!(erased.events, 2);
    assert!(erased.person);
    assert!(s.person("gone").await.unwrap().is_none());
    assert!(s.person("stays").await.unwrap().is_some());
    assert_eq!(s.event_count().await.unwrap(), 1);
    assert!(s.user_events("gone", 0, 100).await.unwrap().is_empty());
    let marks = s.erased_users().await.unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].user_id, "gone");
    assert!(
        marks[0].up_to_seq >= 3,
        "covers every seq at erasure: {}",
        marks[0].up_to_seq
    );
    // Erasing again finds nothing but is still recorded; a retried uuid may come back.
    assert_eq!(s.erase_person("gone").await.unwrap().events, 0);
    assert_eq!(s.erased_users().await.unwrap().len(), 2);
    let again = s
        .append_events(&[ev(Some(1), T0, "gone", "a")], &[])
        .await
        .unwrap();
    assert_eq!(again.inserted, 1);
}

/// Retention deletes exactly the events older than the cut.
pub async fn purge_drops_old_events(s: Arc<dyn EventStore>) {
    let events: Vec<Event> = (0..25)
        .map(|i| ev(Some(i), T0 + i as i64, "u", "e"))
        .collect();
    s.append_events(&events, &[]).await.unwrap();
    assert_eq!(s.purge_events_before(T0 + 10).await.unwrap(), 10);
    assert_eq!(s.purge_events_before(T0 + 10).await.unwrap(), 0);
    assert_eq!(s.event_count().await.unwrap(), 15);
    assert_eq!(all(&s).await[0].ts_ms, T0 + 10);
}

/// Pages follow seq (append order) within a time range; user reads are newest-limited.
pub async fn events_page_in_append_order(s: Arc<dyn EventStore>) {
    // Appended out of time order: pages follow the append, not the timestamp.
    let events: Vec<Event> = (0..23)
        .map(|i| {
            ev(
                Some(i),
                T0 + ((i as i64 * 7) % 23) * 1000,
                if i % 2 == 0 { "even" } else { "odd" },
                "e",
            )
        })
        .collect();
    s.append_events(&events, &[]).await.unwrap();
    let (from, to) = (T0 + 5_000, T0 + 15_000);
    let want: Vec<u128> = events
        .iter()
        .filter(|e| e.ts_ms >= from && e.ts_ms < to)
        .filter_map(|e| e.uuid)
        .collect();
    assert_eq!(want.len(), 10);
    let mut got = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = s.events_between(from, to, 3, after).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        assert!(page.windows(2).all(|w| w[0].seq < w[1].seq));
        after = page.last().unwrap().seq;
        got.extend(page.into_iter().filter_map(|e| e.event.uuid));
        pages += 1;
    }
    assert_eq!(got, want);
    assert_eq!(pages, 4);
    let odd = s.user_events("odd", T0 + 10_000, 3).await.unwrap();
    let ts: Vec<i64> = odd.iter().map(|e| e.event.ts_ms - T0).collect();
    assert_eq!(
        ts,
        [18_000, 21_000, 22_000],
        "the latest three, oldest first"
    );
    assert_eq!(s.user_events("odd", T0, 1_000).await.unwrap().len(), 11);
}

/// Sealing moves a finished day's rows into one encoded part: hot reads no longer see them,
/// the part decodes to the same events, its uuids stay duplicates, counts include it, an
/// erasure rewrites it and retention drops it whole.
pub async fn sealing_moves_a_day_into_a_segment(s: Arc<dyn EventStore>) {
    use liftoff_core::analytics::sealed;
    const DAY: i64 = 86_400_000;
    let day = T0.div_euclid(DAY);
    let (d0, d1) = (day * DAY, (day + 1) * DAY);
    let sealed_day = vec![
        ev(Some(11), d0 + 1, "ann", "signup"),
        ev(Some(12), d0 + 2, "bob", "signup"),
        ev(None, d0 + 3, "ann", "purchase"),
    ];
    s.append_events(&sealed_day, &[]).await.unwrap();
    s.append_events(&[ev(Some(13), d1 + 5, "ann", "search")], &[])
        .await
        .unwrap();
    assert_eq!(s.unsealed_days(day + 1).await.unwrap(), vec![day]);
    assert_eq!(s.seal_day(day).await.unwrap(), 3);
    assert_eq!(s.seal_day(day).await.unwrap(), 0, "nothing left to seal");
    assert!(s.unsealed_days(day + 1).await.unwrap().is_empty());
    let hot = all(&s).await;
    assert_eq!(hot.len(), 1, "only the next day's row is left: {hot:?}");
    assert_eq!(s.event_count().await.unwrap(), 4);
    let index = s.segment_index().await.unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!((index[0].day, index[0].part, index[0].rows), (day, 0, 3));
    let bytes = s.load_segment(day, 0).await.unwrap().unwrap();
    let mut back = sealed::events(&bytes).unwrap();
    back.sort_by_key(|e| e.ts_ms);
    assert_eq!(back, sealed_day);

    // A retry of a sealed event is still a duplicate; a late event is sealed as part 1.
    let retry = s
        .append_events(
            &[
                ev(Some(11), d0 + 1, "ann", "signup"),
                ev(None, d0 + 9, "cy", "late"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!((retry.inserted, retry.duplicates), (1, 1));
    assert_eq!(s.seal_day(day).await.unwrap(), 1);
    assert_eq!(s.segment_index().await.unwrap().len(), 2);

    // Erasure rewrites the part that held the person's events.
    let erased = s.erase_person("ann").await.unwrap();
    assert_eq!(erased.events, 3, "two sealed, one hot");
    let index = s.segment_index().await.unwrap();
    assert_eq!((index[0].rows, index[0].version), (1, 1));
    let left = sealed::events(&s.load_segment(day, 0).await.unwrap().unwrap()).unwrap();
    assert!(left.iter().all(|e| e.user == "bob"));
    assert_eq!(s.event_count().await.unwrap(), 2);

    // Retention drops whole sealed days before the cut, uuids included.
    assert_eq!(s.purge_events_before(d1).await.unwrap(), 2);
    assert!(s.segment_index().await.unwrap().is_empty());
    assert_eq!(s.event_count().await.unwrap(), 0);
    let again = s
        .append_events(&[ev(Some(12), d0 + 2, "bob", "signup")], &[])
        .await
        .unwrap();
    assert_eq!(
        again.inserted, 1,
        "the purged day's uuids are forgotten too"
    );
}

/// The edges of the sealing rules: erasure deletes a part it leaves empty, retention keeps a
/// sealed day the cut falls inside, and a sealed uuid stays a duplicate (and in its part) for
/// `DEDUPE_DAYS` days after its day, no longer.
pub async fn sealing_edges(s: Arc<dyn EventStore>) {
    use liftoff_core::analytics::sealed::{self, DEDUPE_DAYS};
    const DAY: i64 = 86_400_000;
    let day = T0.div_euclid(DAY);
    let (d0, d1) = (day * DAY, (day + 1) * DAY);
    s.append_events(
        &[
            ev(Some(21), d0 + 1, "solo", "signup"),
            ev(Some(22), d0 + 2, "bob", "signup"),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.seal_day(day).await.unwrap(), 2);
    s.append_events(&[ev(None, d0 + 3, "solo", "late")], &[])
        .await
        .unwrap();
    assert_eq!(s.seal_day(day).await.unwrap(), 1);
    assert_eq!(s.segment_index().await.unwrap().len(), 2);

    let erased = s.erase_person("solo").await.unwrap();
    assert_eq!(erased.events, 2, "one from each part");
    let index = s.segment_index().await.unwrap();
    assert_eq!(index.len(), 1, "the part left empty is gone: {index:?}");
    assert_eq!((index[0].part, index[0].rows), (0, 1));
    assert!(s.load_segment(day, 1).await.unwrap().is_none());

    // A cut inside the day keeps the sealed day (and its uuids) whole.
    assert_eq!(s.purge_events_before(d1 - 1).await.unwrap(), 0);
    assert_eq!(s.event_count().await.unwrap(), 1);
    let retry = ev(Some(22), d0 + 2, "bob", "signup");
    let again = s
        .append_events(std::slice::from_ref(&retry), &[])
        .await
        .unwrap();
    assert_eq!(again.duplicate_at, vec![0]);

    // Sealing the day DEDUPE_DAYS later keeps the uuid; the day after forgets it.
    for (later, forgotten) in [(DEDUPE_DAYS, false), (DEDUPE_DAYS + 1, true)] {
        let ts = (day + later) * DAY + 7;
        s.append_events(&[ev(None, ts, "cy", "visit")], &[])
            .await
            .unwrap();
        assert_eq!(s.seal_day(day + later).await.unwrap(), 1);
        let out = s
            .append_events(std::slice::from_ref(&retry), &[])
            .await
            .unwrap();
        assert_eq!(out.inserted == 1, forgotten, "{later} days on: {out:?}");
        // The part keeps its uuids (for exports) exactly as long as the dedupe does.
        let part = sealed::events(&s.load_segment(day, 0).await.unwrap().unwrap()).unwrap();
        let uuids: Vec<Option<u128>> = part.iter().map(|e| e.uuid).collect();
        let want = if forgotten { None } else { Some(22) };
        assert_eq!(uuids, vec![want], "{later} days on");
    }
    let left = sealed::events(&s.load_segment(day, 0).await.unwrap().unwrap()).unwrap();
    assert!(left.iter().all(|e| e.user == "bob"));
}

/// Declares one `#[tokio::test]` per event-store case, each on a fresh store from `$open` (an
/// async fn returning `Arc<dyn EventStore>`).
#[macro_export]
macro_rules! event_store_contract {
    ($open:path) => {
        $crate::event_store_contract!(@cases $open;
            events_are_idempotent_on_uuid, appends_are_all_or_nothing, persons_accumulate,
            persons_seen_only_widen, erase_removes_a_person_and_their_events, purge_drops_old_events,
            events_page_in_append_order, sealing_moves_a_day_into_a_segment, sealing_edges);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::events_contract::$case($open().await).await;
            }
        )+
    };
}
