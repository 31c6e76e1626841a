//! Raw product events and persons on SQLite, in `events.db` (its own file and writer, so event
//! ingest never queues behind state or metrics writes).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use liftoff_core::analytics::dedupe::{tally, uuids_kept_from};
use liftoff_core::analytics::persons::{apply_updates, split_seen};
use liftoff_core::analytics::sealed::{
    SegmentMeta, UUID_DROPS_PER_SEAL, day_span, drop_uuids, plan_erase, plan_seal,
    whole_days_before,
};
use liftoff_core::analytics::{AppendOutcome, ErasedUser, Erasure, EventStore, StoredEvent};
use liftoff_core::analytics::{Event, Person, PersonUpdate};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, Row, params};

use super::db::{Db, sql_err};
use crate::codec::{properties_from, uuid_bytes, uuid_from};
use crate::migrations;

const DAY_MS: i64 = 86_400_000;

/// Rows deleted per transaction when purging, so retention never holds the writer for long.
const PURGE_CHUNK: i64 = 10_000;

#[derive(Clone)]
pub struct SqliteEvents {
    db: Db,
}

impl SqliteEvents {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: Db::open(path, migrations::SQLITE_EVENTS).await?,
        })
    }
}

type RawEvent = (
    i64,
    Option<Vec<u8>>,
    i64,
    String,
    Option<String>,
    String,
    String,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn stored(
    (seq, uuid, ts, user, session, event, properties): RawEvent,
) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq,
        event: Event {
            uuid: uuid_from(uuid)?,
            ts_ms: ts,
            user,
            session,
            event,
            properties,
        },
    })
}

const COLUMNS: &str = "seq, uuid, ts, user_id, session_id, event, properties";

/// Rewrites every sealed part holding `user`'s events without them (a part left empty is
/// deleted); returns the events removed.
fn erase_from_segments(tx: &rusqlite::Transaction<'_>, user: &str) -> Result<u64, StoreError> {
    let parts: Vec<(i64, i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare_cached("SELECT day, part, bytes FROM event_segments")
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)?
    };
    let mut removed = 0;
    for r in plan_erase(parts, user)? {
        removed += r.removed;
        tx.execute(
            "UPDATE event_segments SET bytes = ?3, rows = rows - ?4, version = version + 1
             WHERE day = ?1 AND part = ?2",
            params![r.day, r.part, r.bytes, r.removed as i64],
        )
        .map_err(sql_err)?;
        tx.execute(
            "DELETE FROM event_segments WHERE day = ?1 AND part = ?2 AND rows = 0",
            [r.day, r.part],
        )
        .map_err(sql_err)?;
    }
    Ok(removed)
}

#[async_trait]
impl EventStore for SqliteEvents {
    async fn append_events(
        &self,
        events: &[Event],
        persons: &[PersonUpdate],
    ) -> Result<AppendOutcome, StoreError> {
        let events = events.to_vec();
        let persons = persons.to_vec();
        self.db
            .write(move |tx| {
                let mut out = AppendOutcome::default();
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO events (uuid, ts, user_id, session_id, event, properties)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (uuid) DO NOTHING",
                        )
                        .map_err(sql_err)?;
                    let mut sealed = tx
                        .prepare_cached("SELECT 1 FROM event_uuids WHERE uuid = ?1")
                        .map_err(sql_err)?;
                    for (i, e) in events.iter().enumerate() {
                        let uuid = uuid_bytes(e.uuid);
                        let already_sealed = match &uuid {
                            Some(u) => sealed.exists([u]).map_err(sql_err)?,
                            None => false,
                        };
                        let inserted = !already_sealed
                            && insert
                                .execute(params![uuid, e.ts_ms, e.user, e.session, e.event, e.properties])
                                .map_err(sql_err)?
                                > 0;
                        tally(&mut out, i, already_sealed, inserted);
                    }
                }
                let (seen, merged) = split_seen(&persons);
                {
                    // Only first and last seen move: no read, and no write when neither does.
                    let mut widen = tx
                        .prepare_cached(
                            "INSERT INTO persons (user_id, first_seen, last_seen, properties)
                             VALUES (?1, ?2, ?3, '{}')
                             ON CONFLICT (user_id) DO UPDATE
                                 SET first_seen = min(first_seen, excluded.first_seen),
                                     last_seen = max(last_seen, excluded.last_seen)
                                 WHERE excluded.first_seen < first_seen
                                     OR excluded.last_seen > last_seen",
                        )
                        .map_err(sql_err)?;
                    for s in &seen {
                        widen
                            .execute(params![s.user_id, s.first_seen_ms, s.last_seen_ms])
                            .map_err(sql_err)?;
                    }
                }
                if merged.is_empty() {
                    return Ok(out);
                }
                let ids: HashSet<&str> = merged.iter().flat_map(|u| u.ids()).collect();
                let mut known = HashMap::with_capacity(ids.len());
                {
                    let mut get = tx
                        .prepare_cached(
                            "SELECT first_seen, last_seen, properties FROM persons WHERE user_id = ?1",
                        )
                        .map_err(sql_err)?;
                    for id in ids {
                        let row: Option<(i64, i64, String)> = get
                            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .optional()
                            .map_err(sql_err)?;
                        if let Some((first, last, props)) = row {
                            known.insert(
                                id.to_owned(),
                                Person {
                                    user_id: id.to_owned(),
                                    first_seen_ms: first,
                                    last_seen_ms: last,
                                    properties: properties_from(&props)?,
                                },
                            );
                        }
                    }
                }
                let mut put = tx
                    .prepare_cached(
                        "INSERT INTO persons (user_id, first_seen, last_seen, properties)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (user_id) DO UPDATE SET first_seen = excluded.first_seen,
                             last_seen = excluded.last_seen, properties = excluded.properties",
                    )
                    .map_err(sql_err)?;
                for p in apply_updates(known, merged) {
                    let props = serde_json::Value::Object(p.properties).to_string();
                    put.execute(params![p.user_id, p.first_seen_ms, p.last_seen_ms, props])
                        .map_err(sql_err)?;
                }
                Ok(out)
            })
            .await
    }

    async fn events_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        after_seq: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self
            .db
            .read(move |c| {
                // NOT INDEXED: walk the rowid in seq order rather than sorting a ts range per page.
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM events NOT INDEXED
                         WHERE seq > ?1 AND ts >= ?2 AND ts < ?3 ORDER BY seq LIMIT ?4"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![after_seq, from_ms, to_ms, limit as i64], raw)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter().map(stored).collect()
    }

    async fn user_events(
        &self,
        user_id: &str,
        from_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let user = user_id.to_owned();
        let rows = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM events WHERE user_id = ?1 AND ts >= ?2
                         ORDER BY ts DESC, seq DESC LIMIT ?3"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![user, from_ms, limit as i64], raw)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter().rev().map(stored).collect()
    }

    async fn person(&self, user_id: &str) -> Result<Option<Person>, StoreError> {
        let user = user_id.to_owned();
        let row: Option<(i64, i64, String)> = self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT first_seen, last_seen, properties FROM persons WHERE user_id = ?1",
                )
                .map_err(sql_err)?
                .query_row([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(sql_err)
            })
            .await?;
        row.map(|(first, last, props)| {
            Ok(Person {
                user_id: user_id.to_owned(),
                first_seen_ms: first,
                last_seen_ms: last,
                properties: properties_from(&props)?,
            })
        })
        .transpose()
    }

    async fn erase_person(&self, user_id: &str) -> Result<Erasure, StoreError> {
        let user = user_id.to_owned();
        self.db
            .write(move |tx| {
                let up_to: i64 = tx
                    .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
                    .map_err(sql_err)?;
                let mut events = tx
                    .execute("DELETE FROM events WHERE user_id = ?1", [&user])
                    .map_err(sql_err)? as u64;
                events += erase_from_segments(tx, &user)?;
                let person = tx
                    .execute("DELETE FROM persons WHERE user_id = ?1", [&user])
                    .map_err(sql_err)?;
                tx.execute(
                    "INSERT INTO erased_users (user_id, erased_at, up_to_seq) VALUES (?1, ?2, ?3)",
                    params![user, chrono::Utc::now().timestamp_millis(), up_to],
                )
                .map_err(sql_err)?;
                Ok(Erasure {
                    events,
                    person: person > 0,
                })
            })
            .await
    }

    async fn erased_users(&self) -> Result<Vec<ErasedUser>, StoreError> {
        let rows: Vec<(String, i64, i64)> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user_id, erased_at, up_to_seq FROM erased_users ORDER BY id",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, at, up_to_seq)| ErasedUser {
                user_id,
                erased_at: liftoff_core::analytics::ingest::time(at),
                up_to_seq,
            })
            .collect())
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM events)
                          + (SELECT COALESCE(SUM(rows), 0) FROM event_segments)",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(sql_err)
            })
            .await
    }

    async fn purge_events_before(&self, ts_ms: i64) -> Result<u64, StoreError> {
        // Sealed days entirely before the cut go whole, with their uuids.
        let mut total = self
            .db
            .write(move |tx| {
                let before = whole_days_before(ts_ms);
                let rows: i64 = tx
                    .query_row(
                        "SELECT COALESCE(SUM(rows), 0) FROM event_segments WHERE day < ?1",
                        [before],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                tx.execute("DELETE FROM event_segments WHERE day < ?1", [before])
                    .map_err(sql_err)?;
                tx.execute("DELETE FROM event_uuids WHERE day < ?1", [before])
                    .map_err(sql_err)?;
                Ok(rows as u64)
            })
            .await?;
        loop {
            let n = self
                .db
                .write(move |tx| {
                    tx.execute(
                        "DELETE FROM events WHERE seq IN
                         (SELECT seq FROM events WHERE ts < ?1 LIMIT ?2)",
                        params![ts_ms, PURGE_CHUNK],
                    )
                    .map_err(sql_err)
                })
                .await? as u64;
            total += n;
            if n < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn unsealed_days(&self, before_day: i64) -> Result<Vec<i64>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT DISTINCT ts / {DAY_MS} FROM events WHERE ts < ?1 ORDER BY 1"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([day_span(before_day).0], |r| r.get(0))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<i64>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn seal_day(&self, day: i64) -> Result<u64, StoreError> {
        let (from, to) = day_span(day);
        // Read and encode on a reader: the writer (every ingest) waits only for the swap.
        let read = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM events WHERE ts >= ?1 AND ts < ?2"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt.query_map([from, to], raw).map_err(sql_err)?;
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)?;
                let events = rows
                    .into_iter()
                    .map(stored)
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(plan) = plan_seal(day, events)? else {
                    return Ok(None);
                };
                let mut stmt = c
                    .prepare_cached(
                        "SELECT day, part, version, bytes FROM event_segments
                         WHERE has_uuids = 1 AND day < ?1 ORDER BY day, part LIMIT ?2",
                    )
                    .map_err(sql_err)?;
                let past = stmt
                    .query_map(params![uuids_kept_from(day), UUID_DROPS_PER_SEAL], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                Ok(Some((plan, drop_uuids(past)?)))
            })
            .await?;
        let Some((plan, drops)) = read else {
            return Ok(0);
        };
        let (n, max_seq) = (plan.rows, plan.max_seq);
        self.db
            .write(move |tx| {
                // New rows get higher sequences (one writer), so the rows read are exactly those
                // up to `max_seq` — unless an erasure or purge removed some meanwhile: then this
                // encoding holds deleted events and is dropped; the next run seals afresh.
                let still: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM events WHERE ts >= ?1 AND ts < ?2 AND seq <= ?3",
                        params![from, to, max_seq],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                if still != n {
                    return Ok(0);
                }
                let part: i64 = tx
                    .query_row(
                        "SELECT COALESCE(MAX(part) + 1, 0) FROM event_segments WHERE day = ?1",
                        [day],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                tx.execute(
                    "INSERT INTO event_segments (day, part, rows, max_seq, version, bytes)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                    params![day, part, n, max_seq, plan.bytes],
                )
                .map_err(sql_err)?;
                let mut keep = tx
                    .prepare_cached("INSERT OR IGNORE INTO event_uuids (uuid, day) VALUES (?1, ?2)")
                    .map_err(sql_err)?;
                for u in plan.uuids {
                    keep.execute(params![u, day]).map_err(sql_err)?;
                }
                // Retries come within minutes; a week of uuids answers them, older ones go,
                // from the parts too (unless an erasure rewrote one since it was read).
                tx.execute(
                    "DELETE FROM event_uuids WHERE day < ?1",
                    [uuids_kept_from(day)],
                )
                .map_err(sql_err)?;
                for d in drops {
                    tx.execute(
                        "UPDATE event_segments SET bytes = ?1, has_uuids = 0
                         WHERE day = ?2 AND part = ?3 AND version = ?4",
                        params![d.bytes, d.day, d.part, d.version],
                    )
                    .map_err(sql_err)?;
                }
                tx.execute(
                    "DELETE FROM events WHERE ts >= ?1 AND ts < ?2 AND seq <= ?3",
                    params![from, to, max_seq],
                )
                .map_err(sql_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn segment_index(&self) -> Result<Vec<SegmentMeta>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT day, part, rows, max_seq, version FROM event_segments ORDER BY day, part",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(SegmentMeta {
                            day: r.get(0)?,
                            part: r.get(1)?,
                            rows: r.get::<_, i64>(2)? as u64,
                            max_seq: r.get(3)?,
                            version: r.get(4)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn load_segment(&self, day: i64, part: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached("SELECT bytes FROM event_segments WHERE day = ?1 AND part = ?2")
                    .map_err(sql_err)?
                    .query_row([day, part], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    fn events_backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close_events(&self) -> Result<(), StoreError> {
        self.db.checkpoint().await
    }
}
