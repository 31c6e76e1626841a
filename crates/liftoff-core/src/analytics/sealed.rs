//! Sealed events: a finished UTC day's events stored as one encoded `liftoff-analytics`
//! segment (dictionary-encoded, sorted by user and time, checksummed) instead of rows. The
//! stores call these to seal, erase and read; the query cache decodes them straight into the
//! engine's form.

use liftoff_analytics::{DAY_MS, EventRow, Segment};

use super::Event;
use crate::store::{EventStore, StoreError};

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

/// Seals every UTC day that ended more than an hour ago and still has rows (late events
/// included: they become another part); returns the events sealed.
pub async fn seal_finished_days(store: &dyn EventStore, now_ms: i64) -> Result<u64, StoreError> {
    let before = day_of(now_ms - 3_600_000);
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
}
