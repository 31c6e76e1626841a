//! Sealed events: a finished UTC day's events stored as one encoded `liftoff-analytics`
//! segment (dictionary-encoded, sorted by user and time, checksummed) instead of rows. The
//! stores call these to seal, erase and read; the query cache decodes them straight into the
//! engine's form.

use liftoff_analytics::{DAY_MS, EventRow, Segment};

use super::Event;
use super::dedupe::uuid_key;
use super::{EventStore, StoredEvent};
use crate::store::StoreError;

/// Days a sealed event's uuid is kept after its day, so a client's retry is still recognised
/// as a duplicate; older uuids are dropped when a later day is sealed (clients retry within
/// minutes, and keeping every uuid would cost more disk than the events themselves).
pub const DEDUPE_DAYS: i64 = 7;

/// A sealed part as the store lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Unix day (`ts / 86_400_000`).
    pub day: i64,
    pub part: i64,
    pub rows: u64,
    /// The highest event sequence sealed into it: cached hot rows of the day up to it are now
    /// in the segment.
    pub max_seq: i64,
    /// Grows when an erasure rewrites the part.
    pub version: i64,
}

/// The UTC day of a timestamp.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sealed events: {e}"))
}

pub fn row(e: Event) -> EventRow {
    EventRow {
        ts_ms: e.ts_ms,
        user: e.user,
        session: e.session,
        event: e.event,
        properties: e.properties,
        uuid: e.uuid,
    }
}

pub fn event(r: EventRow) -> Event {
    Event {
        uuid: r.uuid,
        ts_ms: r.ts_ms,
        user: r.user,
        session: r.session,
        event: r.event,
        properties: r.properties,
    }
}

/// Encodes events as one segment.
pub fn encode(events: Vec<Event>) -> Result<Vec<u8>, StoreError> {
    let rows: Vec<EventRow> = events.into_iter().map(row).collect();
    Segment::build(&rows)
        .map(|s| s.encode())
        .map_err(|e| StoreError::Corrupt(format!("cannot seal these events: {e}")))
}

pub fn decode(bytes: &[u8]) -> Result<Segment, StoreError> {
    Segment::decode(bytes).map_err(corrupt)
}

/// The events of a sealed part, in the segment's order (by user, then time).
pub fn events(bytes: &[u8]) -> Result<Vec<Event>, StoreError> {
    Ok(decode(bytes)?.rows().map(event).collect())
}

/// The part re-encoded without `user`'s events, with how many were removed; `None` when the
/// user had none in it.
pub fn without_user(bytes: &[u8], user: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
    let segment = decode(bytes)?;
    let before = segment.len();
    let kept = segment.retain(|r| r.user != user);
    let removed = before - kept.len();
    if removed == 0 {
        return Ok(None);
    }
    Ok(Some((kept.encode(), removed as u64)))
}

/// The first and the end (exclusive) Unix millisecond of a UTC day.
pub fn day_span(day: i64) -> (i64, i64) {
    (
        day.saturating_mul(DAY_MS),
        day.saturating_add(1).saturating_mul(DAY_MS),
    )
}

/// How long after its end a day is sealed: late events of the last hour still land as rows.
pub const SEAL_AFTER_MS: i64 = 3_600_000;

/// Days before the returned one are sealable at `now_ms` (they ended [`SEAL_AFTER_MS`] ago).
pub fn sealable_before(now_ms: i64) -> i64 {
    day_of(now_ms.saturating_sub(SEAL_AFTER_MS))
}

/// Sealed days before the returned one lie entirely before `ts_ms`: retention drops them
/// whole, with their uuids (a later day's events wait for their rows or their day).
pub fn whole_days_before(ts_ms: i64) -> i64 {
    day_of(ts_ms)
}

/// What sealing a day writes: one new part from the day's rows as read, and which rows then go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPlan {
    pub day: i64,
    /// Events in the part.
    pub rows: i64,
    /// The highest sequence sealed: the rows to delete are the day's up to it (one writer), or
    /// exactly [`Self::seqs`].
    pub max_seq: i64,
    pub seqs: Vec<i64>,
    /// The stored uuids of the sealed events, kept so retries stay duplicates.
    pub uuids: Vec<Vec<u8>>,
    /// The encoded part.
    pub bytes: Vec<u8>,
}

/// The plan for sealing `day` from its rows as read; `None` when there are none.
pub fn plan_seal(day: i64, events: Vec<StoredEvent>) -> Result<Option<SealPlan>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let max_seq = seqs.iter().copied().max().unwrap_or(0);
    let uuids = events
        .iter()
        .filter_map(|e| e.event.uuid.map(uuid_key))
        .collect();
    let rows = events.len() as i64;
    let bytes = encode(events.into_iter().map(|e| e.event).collect())?;
    Ok(Some(SealPlan {
        day,
        rows,
        max_seq,
        seqs,
        uuids,
        bytes,
    }))
}

/// Parts whose uuids a seal drops at most (the rest wait for the next seal), so a store that
/// predates dropping them catches up without reading every part at once.
pub const UUID_DROPS_PER_SEAL: i64 = 4;

/// A sealed part past the dedupe week, re-encoded without its uuids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UuidDrop {
    pub day: i64,
    pub part: i64,
    /// The version it was read at: a part an erasure rewrote since is left for the next seal.
    pub version: i64,
    pub bytes: Vec<u8>,
}

/// Parts read as `(day, part, version, bytes)`, re-encoded without uuids. Once a day leaves
/// the dedupe week its uuids recognise no retry, and at 16 bytes each they outweigh the rest
/// of the part; exports of older days then carry no uuid.
pub fn drop_uuids(parts: Vec<(i64, i64, i64, Vec<u8>)>) -> Result<Vec<UuidDrop>, StoreError> {
    parts
        .into_iter()
        .map(|(day, part, version, bytes)| {
            let segment =
                Segment::decode_with(&bytes, liftoff_analytics::Uuids::Skip).map_err(corrupt)?;
            Ok(UuidDrop {
                day,
                part,
                version,
                bytes: segment.encode(),
            })
        })
        .collect()
}

/// A sealed part rewritten by an erasure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRewrite {
    pub day: i64,
    pub part: i64,
    /// The part without the erased user's events.
    pub bytes: Vec<u8>,
    /// Events removed.
    pub removed: u64,
    /// Events left: a part left with none is deleted.
    pub kept: u64,
}

/// The parts (`(day, part, bytes)`) to rewrite to erase `user`: only those holding their
/// events.
pub fn plan_erase(
    parts: impl IntoIterator<Item = (i64, i64, Vec<u8>)>,
    user: &str,
) -> Result<Vec<PartRewrite>, StoreError> {
    let mut out = Vec::new();
    for (day, part, bytes) in parts {
        let segment = decode(&bytes)?;
        let before = segment.len();
        let kept = segment.retain(|r| r.user != user);
        let removed = before - kept.len();
        if removed == 0 {
            continue;
        }
        out.push(PartRewrite {
            day,
            part,
            removed: removed as u64,
            kept: kept.len() as u64,
            bytes: kept.encode(),
        });
    }
    Ok(out)
}

/// Seals every UTC day that ended more than an hour ago and still has rows (late events
/// included: they become another part); returns the events sealed.
pub async fn seal_finished_days(store: &dyn EventStore, now_ms: i64) -> Result<u64, StoreError> {
    let before = sealable_before(now_ms);
    let mut sealed = 0;
    for day in store.unsealed_days(before).await? {
        sealed += store.seal_day(day).await?;
    }
    Ok(sealed)
}

/// The sealed parts that may hold events of `from_ms..to_ms`, oldest day first.
pub async fn parts_between(
    store: &dyn EventStore,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(store
        .segment_index()
        .await?
        .into_iter()
        .filter(|m| {
            m.day.saturating_mul(DAY_MS) < to_ms && (m.day + 1).saturating_mul(DAY_MS) > from_ms
        })
        .map(|m| (m.day, m.part))
        .collect())
}

/// The events of one sealed part within `from_ms..to_ms` that `keep` accepts, oldest first;
/// empty when the part is gone.
pub async fn part_events(
    store: &dyn EventStore,
    (day, part): (i64, i64),
    from_ms: i64,
    to_ms: i64,
    keep: impl Fn(&Event) -> bool + Send + 'static,
) -> Result<Vec<Event>, StoreError> {
    let Some(bytes) = store.load_segment(day, part).await? else {
        return Ok(Vec::new());
    };
    tokio::task::spawn_blocking(move || {
        let mut out: Vec<Event> = events(&bytes)?
            .into_iter()
            .filter(|e| e.ts_ms >= from_ms && e.ts_ms < to_ms && keep(e))
            .collect();
        out.sort_by_key(|e| e.ts_ms);
        Ok(out)
    })
    .await
    .map_err(|e| StoreError::Unavailable(e.to_string()))?
}

/// Every sealed event within `from_ms..to_ms` that `keep` accepts, oldest first. Decodes each
/// part of the range: for reads that filter (a person, error events), not for bulk.
pub async fn sealed_events(
    store: &dyn EventStore,
    from_ms: i64,
    to_ms: i64,
    keep: impl Fn(&Event) -> bool + Clone + Send + 'static,
) -> Result<Vec<Event>, StoreError> {
    let mut out = Vec::new();
    for part in parts_between(store, from_ms, to_ms).await? {
        out.extend(part_events(store, part, from_ms, to_ms, keep.clone()).await?);
    }
    out.sort_by_key(|e| e.ts_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: &str, ts: i64, uuid: Option<u128>) -> Event {
        Event {
            uuid,
            ts_ms: ts,
            user: user.into(),
            session: None,
            event: "page_view".into(),
            properties: r#"{"path":"/"}"#.into(),
        }
    }

    #[test]
    fn seal_round_trips_and_erases() {
        let events = vec![ev("a", 10, Some(7)), ev("b", 5, None), ev("a", 20, None)];
        let bytes = encode(events.clone()).unwrap();
        let mut back = super::events(&bytes).unwrap();
        back.sort_by_key(|e| (e.ts_ms, e.user.clone()));
        let mut want = events;
        want.sort_by_key(|e| (e.ts_ms, e.user.clone()));
        assert_eq!(back, want);
        let (without, removed) = without_user(&bytes, "a").unwrap().unwrap();
        assert_eq!(removed, 2);
        assert_eq!(super::events(&without).unwrap().len(), 1);
        assert!(without_user(&bytes, "nobody").unwrap().is_none());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(day_of(-1), -1);
    }

    fn stored(seq: i64, e: Event) -> StoredEvent {
        StoredEvent { seq, event: e }
    }

    #[test]
    fn nothing_to_seal_is_no_plan() {
        assert!(plan_seal(3, Vec::new()).unwrap().is_none());
    }

    proptest::proptest! {
        /// A day's span holds exactly the timestamps of that day, and the spans tile the line.
        #[test]
        fn day_spans_tile(ts in -1_000_000_000_000i64..1_000_000_000_000) {
            let day = day_of(ts);
            let (from, to) = day_span(day);
            proptest::prop_assert!(from <= ts && ts < to);
            proptest::prop_assert_eq!(to - from, DAY_MS);
            proptest::prop_assert_eq!(day_span(day + 1).0, to);
        }

        /// A day is dropped whole exactly when it ends at or before the cut.
        #[test]
        fn retention_drops_only_whole_days(
            day in -20_000i64..40_000,
            ts in -2_000_000_000_000i64..4_000_000_000_000,
        ) {
            proptest::prop_assert_eq!(day < whole_days_before(ts), day_span(day).1 <= ts);
        }

        /// A day is sealable only once it ended an hour ago.
        #[test]
        fn only_days_ended_an_hour_ago_are_sealable(
            day in -20_000i64..40_000,
            now in -2_000_000_000_000i64..4_000_000_000_000,
        ) {
            proptest::prop_assert_eq!(
                day < sealable_before(now),
                day_span(day).1 + SEAL_AFTER_MS <= now
            );
        }

        /// The plan holds every row read once, their uuids, and decodes back to the events.
        #[test]
        fn a_seal_plan_holds_the_rows_read(
            rows in proptest::collection::vec((0i64..1000, 0u8..4, proptest::option::of(proptest::prelude::any::<u128>())), 1..40),
        ) {
            let events: Vec<StoredEvent> = rows
                .iter()
                .enumerate()
                .map(|(i, (ts, u, uuid))| stored(i as i64 * 3 + 1, ev(&format!("u{u}"), *ts, *uuid)))
                .collect();
            let plan = plan_seal(0, events.clone()).unwrap().unwrap();
            proptest::prop_assert_eq!(plan.rows, events.len() as i64);
            proptest::prop_assert_eq!(plan.seqs.len(), events.len());
            proptest::prop_assert_eq!(plan.max_seq, events.iter().map(|e| e.seq).max().unwrap());
            proptest::prop_assert_eq!(plan.uuids.len(), rows.iter().filter(|r| r.2.is_some()).count());
            let mut back = super::events(&plan.bytes).unwrap();
            let mut want: Vec<Event> = events.into_iter().map(|e| e.event).collect();
            back.sort_by(|a, b| (a.ts_ms, &a.user, a.uuid).cmp(&(b.ts_ms, &b.user, b.uuid)));
            want.sort_by(|a, b| (a.ts_ms, &a.user, a.uuid).cmp(&(b.ts_ms, &b.user, b.uuid)));
            proptest::prop_assert_eq!(back, want);
        }

        /// Erasure rewrites exactly the parts holding the user, removing all of theirs and
        /// nothing else.
        #[test]
        fn an_erase_plan_removes_only_the_user(
            parts in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..12), 1..5),
            gone in 0u8..4,
        ) {
            let user = format!("u{gone}");
            let encoded: Vec<(i64, i64, Vec<u8>)> = parts
                .iter()
                .enumerate()
                .map(|(i, users)| {
                    let events = users.iter().enumerate().map(|(t, u)| ev(&format!("u{u}"), t as i64, None)).collect();
                    (7, i as i64, encode(events).unwrap())
                })
                .collect();
            let plan = plan_erase(encoded, &user).unwrap();
            let holding: Vec<i64> = parts
                .iter()
                .enumerate()
                .filter(|(_, users)| users.contains(&gone))
                .map(|(i, _)| i as i64)
                .collect();
            proptest::prop_assert_eq!(plan.iter().map(|r| r.part).collect::<Vec<_>>(), holding);
            for r in &plan {
                let users = &parts[r.part as usize];
                let had = users.iter().filter(|u| **u == gone).count() as u64;
                proptest::prop_assert_eq!(r.removed, had);
                proptest::prop_assert_eq!(r.kept, users.len() as u64 - had);
                let left = super::events(&r.bytes).unwrap();
                proptest::prop_assert_eq!(left.len() as u64, r.kept);
                proptest::prop_assert!(left.iter().all(|e| e.user != user));
            }
        }
    }
}
