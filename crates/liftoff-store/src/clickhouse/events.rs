//! Raw product events and persons in ClickHouse.
//!
//! `events` is a ReplacingMergeTree partitioned by month and ordered by `(user_id, uuid)`:
//! per-user scans read adjacent granules, and two rows of one retried event collapse when
//! ClickHouse merges their parts. Until then every read says `FINAL`, so an answer never
//! counts a retried event twice. Appends also look the batch's uuids up first (by user, on
//! the primary key) and store only the new ones, so a retry that comes after its first
//! attempt was acknowledged, or after the replica that took it was killed, is counted as a
//! duplicate and never written again. ClickHouse has no transactions: a batch is one insert
//! per table, events first, and a batch answered with an error may have left its events
//! stored; the client's retry then finds them and re-applies the person updates, which are
//! idempotent.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use liftoff_core::analytics::dedupe::tally;
use liftoff_core::analytics::persons::apply_updates;
use liftoff_core::analytics::sealed::SegmentMeta;
use liftoff_core::analytics::{AppendOutcome, ErasedUser, Erasure, EventStore, StoredEvent};
use liftoff_core::analytics::{Event, Person, PersonUpdate};
use liftoff_core::store::StoreError;
use serde::{Deserialize, Serialize};

use super::client::{ClickHouse, lit, lit_set};
use super::schema;
use super::seq::SeqClock;
use crate::codec::properties_from;

/// Every column of `events` a read returns, the uuid as text.
pub(super) const COLUMNS: &str =
    "seq, toString(uuid) AS uuid, has_uuid, ts, user_id, session_id, event, properties";

/// Events and persons in one ClickHouse database.
pub struct ClickHouseEvents {
    ch: ClickHouse,
    seq: SeqClock,
}

fn uuid_text(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn uuid_parse(text: &str) -> Result<u128, StoreError> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    u128::from_str_radix(&hex, 16).map_err(|_| StoreError::Corrupt(format!("stored uuid `{text}`")))
}

#[derive(Serialize)]
struct EventIn<'a> {
    seq: i64,
    uuid: String,
    has_uuid: u8,
    ts: i64,
    user_id: &'a str,
    session_id: Option<&'a str>,
    event: &'a str,
    properties: &'a str,
}

#[derive(Deserialize)]
pub(super) struct EventOut {
    seq: i64,
    uuid: String,
    has_uuid: u8,
    ts: i64,
    user_id: String,
    session_id: Option<String>,
    event: String,
    properties: String,
}

impl EventOut {
    pub(super) fn stored(self) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            seq: self.seq,
            event: Event {
                uuid: if self.has_uuid == 1 {
                    Some(uuid_parse(&self.uuid)?)
                } else {
                    None
                },
                ts_ms: self.ts,
                user: self.user_id,
                session: self.session_id,
                event: self.event,
                properties: self.properties,
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
struct PersonRow {
    user_id: String,
    first_seen: i64,
    last_seen: i64,
    properties: String,
    deleted: u8,
    version: i64,
}

#[derive(Deserialize)]
struct ErasureRow {
    user_id: String,
    erased_at: i64,
    up_to_seq: i64,
}

#[derive(Deserialize)]
struct UuidRow {
    uuid: String,
}

impl ClickHouseEvents {
    /// Events over a database [`schema::migrate`](super::schema::migrate) has prepared.
    pub fn new(ch: ClickHouse) -> Self {
        Self {
            ch,
            seq: SeqClock::new(),
        }
    }

    pub fn client(&self) -> &ClickHouse {
        &self.ch
    }

    /// The highest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        schema::applied_version(&self.ch).await
    }

    /// The events a `SELECT {COLUMNS} …` names, in its order.
    async fn read_events(&self, sql: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventOut> = self.ch.rows(sql).await?;
        rows.into_iter().map(EventOut::stored).collect()
    }

    /// Which of `uuids` (events of `users`) are stored already.
    async fn stored_uuids(
        &self,
        users: &HashSet<&str>,
        uuids: &HashSet<String>,
    ) -> Result<HashSet<u128>, StoreError> {
        if uuids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<UuidRow> = self
            .ch
            .rows(&format!(
                "SELECT DISTINCT toString(uuid) AS uuid FROM events
                 WHERE user_id IN {} AND has_uuid = 1 AND toString(uuid) IN {}",
                lit_set(users.iter().copied()),
                lit_set(uuids.iter().map(String::as_str)),
            ))
            .await?;
        rows.iter().map(|r| uuid_parse(&r.uuid)).collect()
    }

    async fn persons_of(&self, ids: &[&str]) -> Result<HashMap<String, Person>, StoreError> {
        let rows: Vec<PersonRow> = self
            .ch
            .rows(&format!(
                "SELECT user_id, first_seen, last_seen, properties, deleted, version
                 FROM persons FINAL WHERE user_id IN {}",
                lit_set(ids.iter().copied())
            ))
            .await?;
        rows.into_iter()
            .filter(|r| r.deleted == 0)
            .map(|r| {
                Ok((
                    r.user_id.clone(),
                    Person {
                        user_id: r.user_id,
                        first_seen_ms: r.first_seen,
                        last_seen_ms: r.last_seen,
                        properties: properties_from(&r.properties)?,
                    },
                ))
            })
            .collect()
    }

    async fn count_where(&self, filter: &str) -> Result<u64, StoreError> {
        Ok(self
            .ch
            .number(&format!("SELECT count() FROM events FINAL WHERE {filter}"))
            .await? as u64)
    }

    /// Deletes the events matching `filter` and waits until they are gone.
    async fn delete_where(&self, filter: &str) -> Result<(), StoreError> {
        self.ch
            .execute(&format!("ALTER TABLE events DELETE WHERE {filter}"))
            .await?;
        self.ch.await_mutations("events").await
    }
}

#[async_trait]
impl liftoff_core::store::StoreHealth for ClickHouseEvents {
    fn backend(&self) -> &'static str {
        "clickhouse"
    }

    async fn ping(&self) -> Result<std::time::Duration, StoreError> {
        let started = std::time::Instant::now();
        self.ch.execute("SELECT 1").await?;
        Ok(started.elapsed())
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        ClickHouseEvents::schema_version(self).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl EventStore for ClickHouseEvents {
    async fn append_events(
        &self,
        events: &[Event],
        persons: &[PersonUpdate],
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(e) = events
            .iter()
            .find(|e| e.event.is_empty() || e.user.is_empty())
        {
            return Err(StoreError::Conflict(format!(
                "an event needs a name and a user (uuid {:?})",
                e.uuid
            )));
        }
        let users: HashSet<&str> = events.iter().map(|e| e.user.as_str()).collect();
        let uuids: HashSet<String> = events
            .iter()
            .filter_map(|e| e.uuid)
            .map(uuid_text)
            .collect();
        let mut known = self.stored_uuids(&users, &uuids).await?;
        let mut out = AppendOutcome::default();
        let mut fresh: Vec<&Event> = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            // A uuid stored before, or earlier in this call, is a duplicate.
            let new = match e.uuid {
                Some(u) => known.insert(u),
                None => true,
            };
            tally(&mut out, i, false, new);
            if new {
                fresh.push(e);
            }
        }
        let seqs = self.seq.take(fresh.len());
        let rows: Vec<EventIn<'_>> = fresh
            .iter()
            .zip(seqs)
            .map(|(e, seq)| EventIn {
                seq,
                // Events without a client uuid get one of their own, so they never collapse
                // into each other.
                uuid: uuid_text(e.uuid.unwrap_or_else(rand::random)),
                has_uuid: u8::from(e.uuid.is_some()),
                ts: e.ts_ms,
                user_id: &e.user,
                session_id: e.session.as_deref(),
                event: &e.event,
                properties: &e.properties,
            })
            .collect();
        self.ch.insert("events", &rows).await?;
        if !persons.is_empty() {
            let ids: Vec<&str> = persons
                .iter()
                .flat_map(PersonUpdate::ids)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let known = self.persons_of(&ids).await?;
            let rows: Vec<PersonRow> = apply_updates(known, persons)
                .into_iter()
                .map(|p| PersonRow {
                    user_id: p.user_id,
                    first_seen: p.first_seen_ms,
                    last_seen: p.last_seen_ms,
                    properties: serde_json::Value::Object(p.properties).to_string(),
                    deleted: 0,
                    version: self.seq.next(),
                })
                .collect();
            self.ch.insert("persons", &rows).await?;
        }
        Ok(out)
    }

    async fn events_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        after_seq: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_events(&format!(
            "SELECT {COLUMNS} FROM events FINAL
             WHERE seq > {after_seq} AND ts >= {from_ms} AND ts < {to_ms}
             ORDER BY seq LIMIT {limit}"
        ))
        .await
    }

    async fn user_events(
        &self,
        user_id: &str,
        from_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut newest_first = self
            .read_events(&format!(
                "SELECT {COLUMNS} FROM events FINAL
                 WHERE user_id = {} AND ts >= {from_ms}
                 ORDER BY ts DESC, seq DESC LIMIT {limit}",
                lit(user_id)
            ))
            .await?;
        newest_first.reverse();
        Ok(newest_first)
    }

    async fn person(&self, user_id: &str) -> Result<Option<Person>, StoreError> {
        Ok(self.persons_of(&[user_id]).await?.remove(user_id))
    }

    async fn erase_person(&self, user_id: &str) -> Result<Erasure, StoreError> {
        let user = lit(user_id);
        let up_to = self.seq.next();
        let events = self.count_where(&format!("user_id = {user}")).await?;
        let person = self.person(user_id).await?.is_some();
        if events > 0 {
            self.delete_where(&format!("user_id = {user}")).await?;
        }
        if person {
            // A tombstone outranks every earlier version at once; the merge drops the rest.
            self.ch
                .insert(
                    "persons",
                    &[PersonRow {
                        user_id: user_id.to_owned(),
                        first_seen: 0,
                        last_seen: 0,
                        properties: "{}".into(),
                        deleted: 1,
                        version: self.seq.next(),
                    }],
                )
                .await?;
        }
        self.ch
            .execute(&format!(
                "INSERT INTO erasures (user_id, erased_at, up_to_seq) VALUES ({user}, {}, {up_to})",
                Utc::now().timestamp_millis()
            ))
            .await?;
        Ok(Erasure { events, person })
    }

    async fn erased_users(&self) -> Result<Vec<ErasedUser>, StoreError> {
        let rows: Vec<ErasureRow> = self
            .ch
            .rows(
                "SELECT user_id, erased_at, up_to_seq FROM erasures ORDER BY erased_at, up_to_seq",
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ErasedUser {
                    erased_at: Utc
                        .timestamp_millis_opt(r.erased_at)
                        .single()
                        .ok_or_else(|| StoreError::Corrupt("erasure time".into()))?,
                    user_id: r.user_id,
                    up_to_seq: r.up_to_seq,
                })
            })
            .collect()
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self.ch.number("SELECT count() FROM events FINAL").await? as u64)
    }

    /// ClickHouse keeps every day in its own columnar parts: there is nothing to seal.
    async fn unsealed_days(&self, _before_day: i64) -> Result<Vec<i64>, StoreError> {
        Ok(Vec::new())
    }

    async fn seal_day(&self, _day: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn segment_index(&self) -> Result<Vec<SegmentMeta>, StoreError> {
        Ok(Vec::new())
    }

    async fn load_segment(&self, _day: i64, _part: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    async fn purge_events_before(&self, ts_ms: i64) -> Result<u64, StoreError> {
        let filter = format!("ts < {ts_ms}");
        let n = self.count_where(&filter).await?;
        if n > 0 {
            self.delete_where(&filter).await?;
        }
        Ok(n)
    }

    fn events_backend(&self) -> &'static str {
        "clickhouse"
    }

    async fn close_events(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_as_text() {
        for u in [
            0u128,
            1,
            u128::MAX,
            u128::MAX - 7,
            0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        ] {
            assert_eq!(uuid_parse(&uuid_text(u)).unwrap(), u);
        }
        assert_eq!(uuid_text(1), "00000000-0000-0000-0000-000000000001");
    }
}
