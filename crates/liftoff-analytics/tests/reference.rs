//! Every fast kernel equals a naive reference implementation on random small data, plus the
//! invariants the answers must keep. The references work on plain rows with maps and
//! sorting, the way one would write the SQL, and share nothing with the engine.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use liftoff_analytics::time::day_of;
use liftoff_analytics::{
    Bucket, DAY_MS, EventFilter, EventRow, EventTable, PropertyEq, Segment, TimeRange,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const BASE: i64 = 1_704_067_200_000; // 2024-01-01, a Monday
const EVENTS: [&str; 5] = ["a", "b", "c", "d", "e"];
const PROPS: [&str; 4] = [
    "{}",
    r#"{"browser": "Chrome"}"#,
    r#"{"browser": "Safari", "plan": "pro"}"#,
    r#"{"plan": 3}"#,
];
const GAP: i64 = 30 * 60 * 1000;

/// Rows over ~40 days (enough to cross week and month boundaries) in a coarse time grid, so
/// equal timestamps and gaps around the session limit are common; plus the segment each row
/// goes to (segments overlap in time, exercising the merge).
fn rows_strategy(unique_ts: bool) -> impl Strategy<Value = (Vec<EventRow>, Vec<usize>)> {
    let row = (
        0..6usize,
        0..400i64,
        0..4i64,
        0..5usize,
        0..5usize,
        0..4usize,
        any::<bool>(),
        0..3usize,
    );
    proptest::collection::vec(row, 0..120).prop_map(move |raw| {
        let mut seen = BTreeSet::new();
        let mut rows = Vec::new();
        let mut segs = Vec::new();
        for (u, slot, jitter, e, s, p, has_uuid, seg) in raw {
            // slots of 2.4 h with 0/20/40/60-minute jitter: up to ~40 days
            let ts = BASE + slot * 8_640_000 + jitter * 20 * 60 * 1000;
            if unique_ts && !seen.insert((u, ts)) {
                continue;
            }
            rows.push(EventRow {
                ts_ms: ts,
                user: format!("u{u}"),
                session: (s < 3).then(|| format!("s{}", s + u % 2)),
                event: EVENTS[e].to_owned(),
                properties: PROPS[p].to_owned(),
                uuid: has_uuid.then_some((u as u128) << 64 | ts as u128),
            });
            segs.push(seg);
        }
        (rows, segs)
    })
}

fn range_strategy() -> impl Strategy<Value = TimeRange> {
    prop_oneof![
        Just(TimeRange::all()),
        (0..45i64, 0..45i64).prop_map(|(a, b)| TimeRange::new(
            BASE + a * DAY_MS / 2,
            BASE + (a + b) * DAY_MS / 2 + 1
        )),
    ]
}

/// The rows split into segments, each through encode/decode, then merged.
fn table(rows: &[EventRow], segs: &[usize]) -> EventTable {
    let mut parts: Vec<Vec<EventRow>> = vec![Vec::new(); 3];
    for (r, &s) in rows.iter().zip(segs) {
        parts[s].push(r.clone());
    }
    let segments: Vec<Segment> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| Segment::decode(&Segment::build(p).unwrap().encode()).unwrap())
        .collect();
    EventTable::from_segments(&segments).unwrap()
}

/// Rows of each user inside `range`, sorted by time (stable).
fn by_user(rows: &[EventRow], range: TimeRange) -> BTreeMap<&str, Vec<&EventRow>> {
    let mut m: BTreeMap<&str, Vec<&EventRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| range.contains(r.ts_ms)) {
        m.entry(&r.user).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.ts_ms);
    }
    m
}

fn first_seen(rows: &[EventRow]) -> HashMap<&str, i64> {
    let mut m: HashMap<&str, i64> = HashMap::new();
    for r in rows {
        let e = m.entry(&r.user).or_insert(r.ts_ms);
        *e = (*e).min(r.ts_ms);
    }
    m
}

fn matches(r: &EventRow, f: &EventFilter) -> bool {
    r.event == f.event
        && f.properties.iter().all(|p| {
            let obj: serde_json::Value = serde_json::from_str(&r.properties).unwrap();
            match obj.get(&p.key) {
                Some(serde_json::Value::String(s)) => *s == p.value,
                Some(v) => serde_json::to_string(v).unwrap() == p.value,
                None => false,
            }
        })
}

/// The DuckDB query's way: for each step-1 event, follow the earliest next step at or after
/// the previous one (ASOF), and keep the best level.
fn ref_funnel_level(
    events: &[&EventRow],
    steps: &[EventFilter],
    window: i64,
    may_start: impl Fn(&EventRow) -> bool,
) -> usize {
    let mut best = 0;
    for s in events
        .iter()
        .filter(|r| matches(r, &steps[0]) && may_start(r))
    {
        let t1 = s.ts_ms;
        let mut level = 1;
        let mut prev = t1;
        for step in &steps[1..] {
            let next = events
                .iter()
                .filter(|r| r.ts_ms >= prev && matches(r, step))
                .map(|r| r.ts_ms)
                .min();
            match next {
                Some(t) if t <= t1 + window => {
                    level += 1;
                    prev = t;
                }
                _ => break,
            }
        }
        best = best.max(level);
    }
    best
}

fn ref_funnel(rows: &[EventRow], steps: &[EventFilter], window: i64, range: TimeRange) -> Vec<u64> {
    let mut out = vec![0u64; steps.len()];
    for events in by_user(rows, range).values() {
        for slot in out
            .iter_mut()
            .take(ref_funnel_level(events, steps, window, |_| true))
        {
            *slot += 1;
        }
    }
    out
}

fn prop_value(r: &EventRow, key: &str) -> Option<String> {
    let obj: serde_json::Value = serde_json::from_str(&r.properties).unwrap();
    obj.get(key).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    })
}

fn steps_strategy() -> impl Strategy<Value = Vec<EventFilter>> {
    let step = (0..5usize, 0..4usize).prop_map(|(e, f)| EventFilter {
        event: EVENTS[e].to_owned(),
        properties: match f {
            0 => vec![PropertyEq {
                key: "browser".into(),
                value: "Chrome".into(),
            }],
            1 => vec![PropertyEq {
                key: "plan".into(),
                value: "3".into(),
            }],
            _ => Vec::new(),
        },
    });
    proptest::collection::vec(step, 1..5)
}

fn bucket_strategy() -> impl Strategy<Value = Bucket> {
    prop_oneof![Just(Bucket::Day), Just(Bucket::Week), Just(Bucket::Month)]
}

/// The range the engine reports buckets for: cut to the data.
fn clipped(rows: &[EventRow], range: TimeRange) -> Option<TimeRange> {
    let lo = rows.iter().map(|r| r.ts_ms).min()?;
    let hi = rows.iter().map(|r| r.ts_ms).max()?;
    let r = TimeRange::new(range.from_ms.max(lo), range.to_ms.min(hi + 1));
    (r.from_ms < r.to_ms).then_some(r)
}

fn is_new_session(a: &EventRow, b: &EventRow) -> bool {
    b.ts_ms - a.ts_ms > GAP || matches!((&a.session, &b.session), (Some(x), Some(y)) if x != y)
}

fn ref_sessions(rows: &[EventRow], range: TimeRange) -> Vec<Vec<&EventRow>> {
    let mut sessions = Vec::new();
    for events in by_user(rows, range).into_values() {
        let mut cur: Vec<&EventRow> = Vec::new();
        for r in events {
            if cur.last().is_some_and(|p| is_new_session(p, r)) {
                sessions.push(std::mem::take(&mut cur));
            }
            cur.push(r);
        }
        sessions.push(cur);
    }
    sessions
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn segments_round_trip((rows, _) in rows_strategy(false)) {
        let seg = Segment::build(&rows).unwrap();
        let decoded = Segment::decode(&seg.encode()).unwrap();
        prop_assert_eq!(&decoded, &seg);
        let mut back: Vec<EventRow> = decoded.rows().collect();
        let mut want = rows.clone();
        let key = |r: &EventRow| (r.user.clone(), r.ts_ms, r.event.clone(), r.session.clone(), r.properties.clone(), r.uuid);
        back.sort_by_key(key);
        want.sort_by_key(key);
        prop_assert_eq!(back, want);
    }

    #[test]
    fn funnel_equals_reference((rows, segs) in rows_strategy(false), steps in steps_strategy(), window_h in 0..200i64, range in range_strategy()) {
        let t = table(&rows, &segs);
        let window = window_h * 3_600_000;
        let fast = t.funnel(&steps, window, range, None).unwrap();
        prop_assert_eq!(&fast.users, &ref_funnel(&rows, &steps, window, range));
        // invariants: never increasing along the steps; a wider window never loses users
        prop_assert!(fast.users.windows(2).all(|w| w[0] >= w[1]));
        let wider = t.funnel(&steps, window * 2 + 1, range, None).unwrap();
        prop_assert!(wider.users.iter().zip(&fast.users).all(|(w, f)| w >= f));
    }

    #[test]
    fn funnel_breakdown_equals_reference((rows, segs) in rows_strategy(false), steps in steps_strategy(), window_h in 0..200i64) {
        let t = table(&rows, &segs);
        let window = window_h * 3_600_000;
        let fast = t.funnel(&steps, window, TimeRange::all(), Some("browser")).unwrap();
        let mut want: BTreeMap<Option<String>, Vec<u64>> = BTreeMap::new();
        for events in by_user(&rows, TimeRange::all()).values() {
            let values: BTreeSet<Option<String>> =
                events.iter().filter(|r| matches(r, &steps[0])).map(|r| prop_value(r, "browser")).collect();
            for v in values {
                let level = ref_funnel_level(events, &steps, window, |r| prop_value(r, "browser") == v);
                let slot = want.entry(v).or_insert_with(|| vec![0; steps.len()]);
                for x in slot.iter_mut().take(level) {
                    *x += 1;
                }
            }
        }
        let got: BTreeMap<Option<String>, Vec<u64>> = fast.breakdown.iter().map(|b| (b.value.clone(), b.users.clone())).collect();
        prop_assert_eq!(got, want);
        prop_assert!(fast.breakdown.windows(2).all(|w| w[0].users[0] >= w[1].users[0]));
    }

    #[test]
    fn active_users_and_new_vs_returning_equal_reference((rows, segs) in rows_strategy(false), range in range_strategy(), bucket in bucket_strategy()) {
        let t = table(&rows, &segs);
        let got = t.new_vs_returning(range, bucket);
        let active = t.active_users(range, bucket);
        let Some(r) = clipped(&rows, range) else {
            prop_assert!(got.is_empty() && active.is_empty());
            return Ok(());
        };
        let first = first_seen(&rows);
        let (b0, b1) = (bucket.index(r.from_ms), bucket.index(r.to_ms - 1));
        let mut want = Vec::new();
        for b in b0..=b1 {
            let users: BTreeSet<&str> = rows.iter().filter(|x| r.contains(x.ts_ms) && bucket.index(x.ts_ms) == b).map(|x| x.user.as_str()).collect();
            let new = users.iter().filter(|u| bucket.index(first[*u]) == b).count() as u64;
            want.push((bucket.start_ms(b), new, users.len() as u64 - new));
        }
        let got_t: Vec<(i64, u64, u64)> = got.iter().map(|x| (x.start_ms, x.new, x.returning)).collect();
        prop_assert_eq!(got_t, want.clone());
        let active_t: Vec<(i64, u64)> = active.iter().map(|x| (x.start_ms, x.users)).collect();
        prop_assert_eq!(active_t, want.iter().map(|w| (w.0, w.1 + w.2)).collect::<Vec<_>>());
        let distinct = rows.iter().filter(|x| r.contains(x.ts_ms)).map(|x| &x.user).collect::<BTreeSet<_>>().len() as u64;
        prop_assert_eq!(t.distinct_users(range), distinct);
        let s = t.stickiness(range);
        prop_assert!((0.0..=1.0).contains(&s));
    }

    #[test]
    fn retention_equals_reference((rows, segs) in rows_strategy(false), range in range_strategy()) {
        let t = table(&rows, &segs);
        let got = t.retention(range);
        let range = TimeRange::new(day_of(range.from_ms).saturating_mul(DAY_MS), (day_of(range.to_ms.saturating_sub(1)) + 1).saturating_mul(DAY_MS));
        let Some(r) = clipped(&rows, range) else {
            prop_assert!(got.cohorts.is_empty());
            return Ok(());
        };
        let first = first_seen(&rows);
        let d_first = day_of(r.from_ms);
        // Q_RETENTION: distinct (user, day) joined with each user's first day
        let active: BTreeSet<(&str, i64)> = rows.iter().filter(|x| r.contains(x.ts_ms)).map(|x| (x.user.as_str(), day_of(x.ts_ms))).collect();
        let mut cells: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        for (u, d) in active {
            let d0 = day_of(first[u]);
            if d0 >= d_first {
                *cells.entry(((d0 - d_first) as usize, (d - d0) as usize)).or_default() += 1;
            }
        }
        let want: Vec<(usize, usize, u64)> = cells.into_iter().map(|((c, k), n)| (c, k, n)).collect();
        prop_assert_eq!(got.triangle(), want);
        prop_assert_eq!(got.days as i64, day_of(r.to_ms - 1) - d_first + 1);
        // day 0 is the cohort: everyone first seen that day (and active in range then)
        for (c, cohort) in got.cohorts.iter().enumerate() {
            prop_assert_eq!(cohort.size, cohort.active[0]);
            prop_assert_eq!(cohort.active.len(), got.days - c);
            prop_assert!(cohort.active.iter().all(|&a| a <= cohort.size));
        }
    }

    #[test]
    fn sessions_equal_reference((rows, segs) in rows_strategy(true), range in range_strategy()) {
        let t = table(&rows, &segs);
        let got = t.sessions(range, GAP);
        let sessions = ref_sessions(&rows, range);
        let sessions: Vec<_> = sessions.into_iter().filter(|s| !s.is_empty()).collect();
        prop_assert_eq!(got.sessions, sessions.len() as u64);
        prop_assert_eq!(got.bounces, sessions.iter().filter(|s| s.len() == 1).count() as u64);
        let dur: i64 = sessions.iter().map(|s| s[s.len() - 1].ts_ms - s[0].ts_ms).sum();
        prop_assert_eq!(got.total_duration_ms, dur as u64);
        // Engagement: each user's session time spread over the range's weeks (one at least).
        let mut per_user: BTreeMap<&str, i64> = BTreeMap::new();
        for s in &sessions {
            *per_user.entry(s[0].user.as_str()).or_default() += s[s.len() - 1].ts_ms - s[0].ts_ms;
        }
        let weeks = ((range.to_ms as f64 - range.from_ms as f64) / (7.0 * 86_400_000.0)).max(1.0);
        let over = |ms: i64| per_user.values().filter(|&&t| t as f64 / weeks > ms as f64).count() as u64;
        prop_assert_eq!(got.users, per_user.len() as u64);
        prop_assert_eq!(got.engaged_users, over(liftoff_analytics::ENGAGED_MS_PER_WEEK));
        prop_assert_eq!(got.power_users, over(liftoff_analytics::POWER_MS_PER_WEEK));
    }

    #[test]
    fn paths_equal_reference((rows, segs) in rows_strategy(true), range in range_strategy()) {
        let t = table(&rows, &segs);
        let got = t.paths(range, GAP, usize::MAX);
        let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut triples: BTreeMap<[String; 3], u64> = BTreeMap::new();
        for s in ref_sessions(&rows, range) {
            for w in s.windows(2) {
                *pairs.entry((w[0].event.clone(), w[1].event.clone())).or_default() += 1;
            }
            for w in s.windows(3) {
                *triples.entry([w[0].event.clone(), w[1].event.clone(), w[2].event.clone()]).or_default() += 1;
            }
        }
        let mut want_pairs: Vec<(String, String, u64)> = pairs.into_iter().map(|((a, b), n)| (a, b, n)).collect();
        want_pairs.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1))));
        let got_pairs: Vec<(String, String, u64)> = got.transitions.into_iter().map(|t| (t.from, t.to, t.count)).collect();
        prop_assert_eq!(got_pairs, want_pairs);
        let mut want_flows: Vec<([String; 3], u64)> = triples.into_iter().collect();
        want_flows.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        let got_flows: Vec<([String; 3], u64)> = got.flows.into_iter().map(|f| (f.steps, f.count)).collect();
        prop_assert_eq!(got_flows, want_flows);
    }

    #[test]
    fn top_events_equal_reference((rows, segs) in rows_strategy(false), range in range_strategy(), limit in 0..7usize) {
        let t = table(&rows, &segs);
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| range.contains(r.ts_ms)) {
            *counts.entry(&r.event).or_default() += 1;
        }
        let mut want: Vec<(String, u64)> = counts.into_iter().map(|(e, n)| (e.to_owned(), n)).collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        want.truncate(limit);
        let got: Vec<(String, u64)> = t.top_events(range, limit).into_iter().map(|e| (e.event, e.count)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn milestones_equal_reference((rows, segs) in rows_strategy(false), range in range_strategy()) {
        let t = table(&rows, &segs);
        let first = first_seen(&rows);
        let mut first_of: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for r in &rows {
            let e = first_of.entry((&r.user, &r.event)).or_insert(r.ts_ms);
            *e = (*e).min(r.ts_ms);
        }
        let mut per_event: BTreeMap<&str, (u64, u128)> = BTreeMap::new();
        for ((u, e), ts) in first_of {
            if range.contains(ts) {
                let x = per_event.entry(e).or_default();
                x.0 += 1;
                x.1 += (ts - first[u]) as u128;
            }
        }
        let mut want: Vec<(String, u64, f64)> = per_event.into_iter().map(|(e, (n, d))| (e.to_owned(), n, d as f64 / n as f64)).collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let got: Vec<(String, u64, f64)> = t.milestones(range).into_iter().map(|m| (m.event, m.users, m.avg_ms_after_first_seen)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn timeline_equals_reference((rows, segs) in rows_strategy(true), range in range_strategy(), u in 0..7usize) {
        let t = table(&rows, &segs);
        let user = format!("u{u}");
        let mut want: Vec<&EventRow> = rows.iter().filter(|r| r.user == user && range.contains(r.ts_ms)).collect();
        want.sort_by_key(|r| r.ts_ms);
        let got = t.user_timeline(&user, range);
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            prop_assert_eq!((g.ts_ms, g.event, g.session, g.properties), (w.ts_ms, w.event.as_str(), w.session.as_deref(), w.properties.as_str()));
        }
    }
}

/// Above the size where building and kernels use several threads, overlapping segments
/// (every user in all three) give the same answers as one segment of the same rows.
#[test]
fn large_overlapping_segments_equal_one_segment() {
    let mut x: u64 = 42;
    let mut next = move |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    let rows: Vec<EventRow> = (0..240_000)
        .map(|_| EventRow {
            ts_ms: BASE + next(20 * DAY_MS as u64) as i64,
            user: format!("u{}", next(3_000)),
            session: None,
            event: EVENTS[next(5) as usize].to_owned(),
            properties: PROPS[next(4) as usize].to_owned(),
            uuid: (next(10) == 0).then(|| u128::from(next(u64::MAX))),
        })
        .collect();
    let segs: Vec<usize> = (0..rows.len()).map(|i| i % 3).collect();
    let split = table(&rows, &segs);
    let whole = EventTable::from_rows(&rows).unwrap();
    let all = TimeRange::all();
    let steps: Vec<EventFilter> = EVENTS[..4].iter().map(|e| EventFilter::event(e)).collect();
    let app = appended(&rows, &segs);
    assert_eq!(app.len(), whole.len());
    assert_eq!(
        app.funnel(&steps, DAY_MS, all, Some("browser")).unwrap(),
        whole.funnel(&steps, DAY_MS, all, Some("browser")).unwrap()
    );
    assert_eq!(app.sessions(all, GAP), whole.sessions(all, GAP));
    assert_eq!(app.retention(all), whole.retention(all));
    assert_eq!(
        split.funnel(&steps, DAY_MS, all, Some("browser")).unwrap(),
        whole.funnel(&steps, DAY_MS, all, Some("browser")).unwrap()
    );
    assert_eq!(split.sessions(all, GAP), whole.sessions(all, GAP));
    assert_eq!(split.retention(all), whole.retention(all));
    assert_eq!(
        split.new_vs_returning(all, Bucket::Week),
        whole.new_vs_returning(all, Bucket::Week)
    );
    for u in (0..3_000).step_by(97) {
        let user = format!("u{u}");
        let a: Vec<(i64, &str)> = split
            .user_timeline(&user, all)
            .iter()
            .map(|e| (e.ts_ms, e.properties))
            .collect();
        let mut b: Vec<(i64, &str)> = whole
            .user_timeline(&user, all)
            .iter()
            .map(|e| (e.ts_ms, e.properties))
            .collect();
        // equal timestamps may be ordered differently; compare as multisets
        let mut a = a;
        a.sort();
        b.sort();
        assert_eq!(a, b, "user {user}");
    }
}

#[test]
fn session_lookup_and_erasure() {
    let row = |ts, user: &str, session: &str| EventRow {
        ts_ms: ts,
        user: user.into(),
        session: Some(session.into()),
        event: "a".into(),
        properties: "{}".into(),
        uuid: Some(ts as u128),
    };
    let rows = [
        row(3, "x", "s1"),
        row(1, "y", "s1"),
        row(2, "x", "s2"),
        row(4, "x", "s1"),
    ];
    let seg = Segment::build(&rows).unwrap();
    let t = EventTable::from_segments(std::slice::from_ref(&seg)).unwrap();
    let s1: Vec<i64> = t.session_events("s1").iter().map(|e| e.ts_ms).collect();
    assert_eq!(s1.len(), 3);
    assert!(s1.contains(&1) && s1.contains(&4));
    assert!(t.session_events("nope").is_empty());
    let erased = seg.retain(|r| r.user != "x");
    assert_eq!(erased.len(), 1);
    let t = EventTable::from_segments(&[erased]).unwrap();
    assert!(t.user_timeline("x", TimeRange::all()).is_empty());
    assert_eq!(t.user_timeline("y", TimeRange::all()).len(), 1);
}

#[test]
fn funnel_rejects_bad_requests() {
    let t = EventTable::from_rows(&[]).unwrap();
    assert!(t.funnel(&[], 1, TimeRange::all(), None).is_err());
    assert!(
        t.funnel(
            &vec![EventFilter::event("a"); 33],
            1,
            TimeRange::all(),
            None
        )
        .is_err()
    );
    assert!(
        t.funnel(&[EventFilter::event("a")], -1, TimeRange::all(), None)
            .is_err()
    );
    assert_eq!(
        t.funnel(&[EventFilter::event("a")], 1, TimeRange::all(), None)
            .unwrap()
            .users,
        vec![0]
    );
    assert!(t.retention(TimeRange::all()).cohorts.is_empty());
    assert!(t.active_users(TimeRange::all(), Bucket::Day).is_empty());
}

#[test]
fn funnel_ties_count_like_clickhouse() {
    // step 2 at the same millisecond as step 1 (a different row, stored before it) counts
    let row = |ts, e: &str| EventRow {
        ts_ms: ts,
        user: "u".into(),
        session: None,
        event: e.into(),
        properties: "{}".into(),
        uuid: None,
    };
    let t = EventTable::from_rows(&[row(10, "b"), row(10, "a"), row(20, "c")]).unwrap();
    let steps: Vec<EventFilter> = ["a", "b", "c"]
        .iter()
        .map(|e| EventFilter::event(e))
        .collect();
    assert_eq!(
        t.funnel(&steps, 10, TimeRange::all(), None).unwrap().users,
        vec![1, 1, 1]
    );
    assert_eq!(
        t.funnel(&steps, 9, TimeRange::all(), None).unwrap().users,
        vec![1, 1, 0]
    );
}

#[test]
fn engaged_and_power_users_by_weekly_session_time() {
    const MIN: i64 = 60_000;
    let row = |ts: i64, user: &str| EventRow {
        ts_ms: ts,
        user: user.into(),
        session: None,
        event: "view".into(),
        properties: "{}".into(),
        uuid: Some(ts as u128 * 1_000 + user.len() as u128),
    };
    let mut rows = Vec::new();
    // a: three sessions of 20 minutes on three days (60 min in the week): engaged.
    for day in 0..3 {
        let start = day * 86_400_000;
        rows.extend((0..=4).map(|i| row(start + i * 5 * MIN, "a")));
    }
    // b: one session of 10 minutes: neither.
    rows.extend((0..=2).map(|i| row(i * 5 * MIN, "bb")));
    // c: three hours of events every 10 minutes: engaged and a power user.
    rows.extend((0..=18).map(|i| row(i * 10 * MIN, "ccc")));
    rows.sort_by_key(|r| r.ts_ms);
    let seg = Segment::build(&rows).unwrap();
    let t = EventTable::from_segments(std::slice::from_ref(&seg)).unwrap();
    let week = TimeRange::new(0, 7 * 86_400_000);
    let s = t.sessions(week, GAP);
    assert_eq!((s.users, s.engaged_users, s.power_users), (3, 2, 1));
    // Over two weeks the same time is half as much a week: only c stays engaged.
    let fortnight = TimeRange::new(0, 14 * 86_400_000);
    let s = t.sessions(fortnight, GAP);
    assert_eq!((s.users, s.engaged_users, s.power_users), (3, 1, 0));
}

/// The segments of `table`, appended one at a time to the table of the first.
fn appended(rows: &[EventRow], segs: &[usize]) -> EventTable {
    let mut t = EventTable::from_segments(&[]).unwrap();
    for s in 0..3 {
        let part: Vec<EventRow> = rows
            .iter()
            .zip(segs)
            .filter(|&(_, &k)| k == s)
            .map(|(r, _)| r.clone())
            .collect();
        t = t.append(&Segment::build(&part).unwrap()).unwrap();
    }
    t
}

proptest! {
    /// Appending segments one by one answers every question as merging them at once does,
    /// with the same event-name ids; each user's rows are the same rows.
    #[test]
    fn appending_equals_merging((rows, segs) in rows_strategy(true), range in range_strategy()) {
        let (merged, app) = (table(&rows, &segs), appended(&rows, &segs));
        prop_assert_eq!(app.len(), merged.len());
        prop_assert_eq!(app.user_count(), merged.user_count());
        prop_assert_eq!(app.time_bounds(), merged.time_bounds());
        prop_assert_eq!(app.event_names().collect::<Vec<_>>(), merged.event_names().collect::<Vec<_>>());
        let steps: Vec<EventFilter> = EVENTS[..3].iter().map(|e| EventFilter::event(e)).collect();
        prop_assert_eq!(app.funnel(&steps, DAY_MS, range, None).unwrap(), merged.funnel(&steps, DAY_MS, range, None).unwrap());
        prop_assert_eq!(app.sessions(range, GAP), merged.sessions(range, GAP));
        prop_assert_eq!(app.retention(range), merged.retention(range));
        prop_assert_eq!(app.active_users(range, Bucket::Day), merged.active_users(range, Bucket::Day));
        prop_assert_eq!(app.new_vs_returning(range, Bucket::Week), merged.new_vs_returning(range, Bucket::Week));
        prop_assert_eq!(app.milestones(range), merged.milestones(range));
        prop_assert_eq!(app.top_events(range, 10), merged.top_events(range, 10));
        for u in 0..6 {
            let user = format!("u{u}");
            prop_assert_eq!(app.user_timeline(&user, range), merged.user_timeline(&user, range));
        }
    }

    /// A table written to a file and read back answers every question as the original does;
    /// any byte of the file changed or cut off is an error or a table the kernels can still
    /// walk, never a panic.
    #[test]
    fn a_table_file_reads_back_the_same((rows, segs) in rows_strategy(true), range in range_strategy(), flip in any::<(usize, u8)>()) {
        let original = appended(&rows, &segs);
        let mut bytes = Vec::new();
        original.write_to(&mut bytes).unwrap();
        let back = EventTable::read_from(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
        prop_assert_eq!(back.len(), original.len());
        prop_assert_eq!(back.user_count(), original.user_count());
        prop_assert_eq!(back.time_bounds(), original.time_bounds());
        prop_assert_eq!(back.event_names().collect::<Vec<_>>(), original.event_names().collect::<Vec<_>>());
        let steps: Vec<EventFilter> = EVENTS[..3].iter().map(|e| EventFilter::event(e)).collect();
        prop_assert_eq!(back.funnel(&steps, DAY_MS, range, None).unwrap(), original.funnel(&steps, DAY_MS, range, None).unwrap());
        prop_assert_eq!(back.sessions(range, GAP), original.sessions(range, GAP));
        prop_assert_eq!(back.retention(range), original.retention(range));
        prop_assert_eq!(back.milestones(range), original.milestones(range));
        for u in 0..6 {
            let user = format!("u{u}");
            prop_assert_eq!(back.user_timeline(&user, range), original.user_timeline(&user, range));
        }
        // Damage: a byte changed, or the file cut short.
        let (at, xor) = (flip.0 % bytes.len(), flip.1.max(1));
        let mut damaged = bytes.clone();
        damaged[at] ^= xor;
        if let Ok(t) = EventTable::read_from(&mut damaged.as_slice(), damaged.len() as u64) {
            // Over the data's 45 days, as the API asks: a damaged timestamp may lie anywhere,
            // and retention over all of time would be days² cells.
            let window = TimeRange::new(BASE, BASE + 45 * DAY_MS);
            let _ = t.funnel(&steps, DAY_MS, window, None);
            let _ = (t.sessions(window, GAP), t.retention(window), t.milestones(window), t.top_events(window, 10));
            for u in 0..6 {
                let _ = t.user_timeline(&format!("u{u}"), window);
            }
        }
        let cut = &bytes[..at];
        prop_assert!(EventTable::read_from(&mut &cut[..], cut.len() as u64).is_err());
    }

    /// With equal timestamps too, every user keeps the same rows (ties may order differently:
    /// appending keeps arrival order).
    #[test]
    fn appending_keeps_every_row((rows, segs) in rows_strategy(false)) {
        let (merged, app) = (table(&rows, &segs), appended(&rows, &segs));
        for u in 0..6 {
            let user = format!("u{u}");
            let mut a = app.user_timeline(&user, TimeRange::all());
            let mut b = merged.user_timeline(&user, TimeRange::all());
            a.sort_by(|x, y| (x.ts_ms, x.event, x.session, x.properties).cmp(&(y.ts_ms, y.event, y.session, y.properties)));
            b.sort_by(|x, y| (x.ts_ms, x.event, x.session, x.properties).cmp(&(y.ts_ms, y.event, y.session, y.properties)));
            prop_assert_eq!(a, b);
        }
    }
}
