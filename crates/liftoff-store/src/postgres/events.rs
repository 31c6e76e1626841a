//! Raw product events and persons on PostgreSQL.

use std::collections::{HashMap, HashSet};

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
use tokio_postgres::Row;

use super::{PgState, pg_err};
use crate::codec::{properties_from, uuid_bytes, uuid_from};

/// Rows deleted per statement when purging.
const PURGE_CHUNK: i64 = 10_000;

fn stored(r: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: r.get(0),
        event: Event {
            uuid: uuid_from(r.get(1))?,
            ts_ms: r.get(2),
            user: r.get(3),
            session: r.get(4),
            event: r.get(5),
            properties: r.get(6),
        },
    })
}

fn person_from(r: &Row) -> Result<Person, StoreError> {
    let props: String = r.get(3);
    Ok(Person {
        user_id: r.get(0),
        first_seen_ms: r.get(1),
        last_seen_ms: r.get(2),
        properties: properties_from(&props)?,
    })
}

fn part_i32(part: i64) -> Result<i32, StoreError> {
    i32::try_from(part).map_err(|_| StoreError::Corrupt("part out of range".into()))
}

const COLUMNS: &str = "seq, uuid, ts, user_id, session_id, event, properties";

#[async_trait]
impl EventStore for PgState {
    async fn append_events(
        &self,
        events: &[Event],
        persons: &[PersonUpdate],
    ) -> Result<AppendOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let insert = tx
            .prepare(
                "INSERT INTO events (uuid, ts, user_id, session_id, event, properties)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (uuid) DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        let sealed_uuid = tx
            .prepare("SELECT 1 FROM event_uuids WHERE uuid = $1")
            .await
            .map_err(pg_err)?;
        let mut out = AppendOutcome::default();
        for (i, e) in events.iter().enumerate() {
            let already_sealed = match uuid_bytes(e.uuid) {
                Some(u) => tx
                    .query_opt(&sealed_uuid, &[&u])
                    .await
                    .map_err(pg_err)?
                    .is_some(),
                None => false,
            };
            if already_sealed {
                tally(&mut out, i, true, false);
                continue;
            }
            let n = tx
                .execute(
                    &insert,
                    &[
                        &uuid_bytes(e.uuid),
                        &e.ts_ms,
                        &e.user,
                        &e.session,
                        &e.event,
                        &e.properties,
                    ],
                )
                .await
                .map_err(pg_err)?;
            tally(&mut out, i, false, n > 0);
        }
        let (seen, merged) = split_seen(persons);
        if !seen.is_empty() {
            // Only first and last seen move: one statement for all of them, in user order (the
            // lock order on every replica), no read, and no write when neither moves.
            let ids: Vec<&str> = seen.iter().map(|s| s.user_id.as_str()).collect();
            let firsts: Vec<i64> = seen.iter().map(|s| s.first_seen_ms).collect();
            let lasts: Vec<i64> = seen.iter().map(|s| s.last_seen_ms).collect();
            tx.execute(
                "INSERT INTO persons (user_id, first_seen, last_seen, properties)
                 SELECT u, f, l, '{}' FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS s(u, f, l)
                 ON CONFLICT (user_id) DO UPDATE
                     SET first_seen = LEAST(persons.first_seen, excluded.first_seen),
                         last_seen = GREATEST(persons.last_seen, excluded.last_seen)
                     WHERE excluded.first_seen < persons.first_seen
                         OR excluded.last_seen > persons.last_seen",
                &[&ids, &firsts, &lasts],
            )
            .await
            .map_err(pg_err)?;
        }
        if !merged.is_empty() {
            let ids: Vec<String> = merged
                .iter()
                .flat_map(|u| u.ids())
                .collect::<HashSet<_>>()
                .into_iter()
                .map(str::to_owned)
                .collect();
            // FOR UPDATE: replicas updating the same person take turns.
            let rows = tx
                .query(
                    "SELECT user_id, first_seen, last_seen, properties FROM persons
                     WHERE user_id = ANY($1) FOR UPDATE",
                    &[&ids],
                )
                .await
                .map_err(pg_err)?;
            let mut known = HashMap::with_capacity(rows.len());
            for r in &rows {
                let p = person_from(r)?;
                known.insert(p.user_id.clone(), p);
            }
            let put = tx
                .prepare(
                    "INSERT INTO persons (user_id, first_seen, last_seen, properties)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id) DO UPDATE SET first_seen = LEAST(persons.first_seen, excluded.first_seen),
                         last_seen = GREATEST(persons.last_seen, excluded.last_seen), properties = excluded.properties",
                )
                .await
                .map_err(pg_err)?;
            for p in apply_updates(known, merged) {
                let props = serde_json::Value::Object(p.properties).to_string();
                tx.execute(
                    &put,
                    &[&p.user_id, &p.first_seen_ms, &p.last_seen_ms, &props],
                )
                .await
                .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn events_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        after_seq: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM events WHERE seq > $1 AND ts >= $2 AND ts < $3
                     ORDER BY seq LIMIT $4"
                ),
                &[&after_seq, &from_ms, &to_ms, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(stored).collect()
    }

    async fn user_events(
        &self,
        user_id: &str,
        from_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM events WHERE user_id = $1 AND ts >= $2
                     ORDER BY ts DESC, seq DESC LIMIT $3"
                ),
                &[&user_id, &from_ms, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().rev().map(stored).collect()
    }

    async fn person(&self, user_id: &str) -> Result<Option<Person>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT user_id, first_seen, last_seen, properties FROM persons WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(person_from)
            .transpose()
    }

    async fn erase_person(&self, user_id: &str) -> Result<Erasure, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let up_to: i64 = tx
            .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        let mut events = tx
            .execute("DELETE FROM events WHERE user_id = $1", &[&user_id])
            .await
            .map_err(pg_err)?;
        // FOR UPDATE: a seal or another erasure rewriting the same part waits.
        let parts = tx
            .query(
                "SELECT day, part, bytes FROM event_segments FOR UPDATE",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let parts = parts
            .iter()
            .map(|r| (r.get(0), i64::from(r.get::<_, i32>(1)), r.get(2)));
        for r in plan_erase(parts, user_id)? {
            events += r.removed;
            let (day, part) = (r.day, part_i32(r.part)?);
            tx.execute(
                "UPDATE event_segments SET bytes = $3, rows = rows - $4, version = version + 1
                 WHERE day = $1 AND part = $2",
                &[&day, &part, &r.bytes, &(r.removed as i64)],
            )
            .await
            .map_err(pg_err)?;
            tx.execute(
                "DELETE FROM event_segments WHERE day = $1 AND part = $2 AND rows = 0",
                &[&day, &part],
            )
            .await
            .map_err(pg_err)?;
        }
        let person = tx
            .execute("DELETE FROM persons WHERE user_id = $1", &[&user_id])
            .await
            .map_err(pg_err)?;
        tx.execute(
            "INSERT INTO erased_users (user_id, erased_at, up_to_seq) VALUES ($1, now(), $2)",
            &[&user_id, &up_to],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Erasure {
            events,
            person: person > 0,
        })
    }

    async fn erased_users(&self) -> Result<Vec<ErasedUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT user_id, erased_at, up_to_seq FROM erased_users ORDER BY id",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| ErasedUser {
                user_id: r.get(0),
                erased_at: r.get(1),
                up_to_seq: r.get(2),
            })
            .collect())
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM events)
                      + (SELECT COALESCE(SUM(rows), 0) FROM event_segments)::BIGINT",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(n as u64)
    }

    async fn purge_events_before(&self, ts_ms: i64) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        // Sealed days entirely before the cut go whole, with their uuids.
        let tx = client.transaction().await.map_err(pg_err)?;
        let before = whole_days_before(ts_ms);
        let gone = tx
            .query(
                "DELETE FROM event_segments WHERE day < $1 RETURNING rows",
                &[&before],
            )
            .await
            .map_err(pg_err)?;
        tx.execute("DELETE FROM event_uuids WHERE day < $1", &[&before])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        let mut total: u64 = gone.iter().map(|r| r.get::<_, i64>(0) as u64).sum();
        loop {
            let n = client
                .execute(
                    "DELETE FROM events WHERE seq IN
                     (SELECT seq FROM events WHERE ts < $1 LIMIT $2)",
                    &[&ts_ms, &PURGE_CHUNK],
                )
                .await
                .map_err(pg_err)?;
            total += n;
            if n < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn unsealed_days(&self, before_day: i64) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT div(ts, 86400000)::BIGINT FROM events WHERE ts < $1 ORDER BY 1",
                &[&day_span(before_day).0],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn seal_day(&self, day: i64) -> Result<u64, StoreError> {
        let (from, to) = day_span(day);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // One sealer per day at a time, across replicas.
        tx.execute(
            "SELECT pg_advisory_xact_lock(7414000, $1::INT)",
            &[&(day as i32)],
        )
        .await
        .map_err(pg_err)?;
        let rows = tx
            .query(
                "SELECT seq, uuid, ts, user_id, session_id, event, properties FROM events
                 WHERE ts >= $1 AND ts < $2 FOR UPDATE",
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        let events = rows.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
        let Some(plan) = plan_seal(day, events)? else {
            return Ok(0);
        };
        let n = plan.rows;
        tx.execute(
            "INSERT INTO event_segments (day, part, rows, max_seq, version, bytes)
             SELECT $1, COALESCE(MAX(part) + 1, 0), $2, $3, 0, $4 FROM event_segments WHERE day = $1",
            &[&day, &n, &plan.max_seq, &plan.bytes],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            "INSERT INTO event_uuids (uuid, day) SELECT u, $2 FROM unnest($1::BYTEA[]) AS u
             ON CONFLICT DO NOTHING",
            &[&plan.uuids, &day],
        )
        .await
        .map_err(pg_err)?;
        // Retries come within minutes; a week of uuids answers them, older ones go, from the
        // parts too (the rows are locked: an erasure waits for this transaction).
        tx.execute(
            "DELETE FROM event_uuids WHERE day < $1",
            &[&uuids_kept_from(day)],
        )
        .await
        .map_err(pg_err)?;
        let past = tx
            .query(
                "SELECT day, part, version, bytes FROM event_segments
                 WHERE has_uuids AND day < $1 ORDER BY day, part LIMIT $2 FOR UPDATE",
                &[&uuids_kept_from(day), &UUID_DROPS_PER_SEAL],
            )
            .await
            .map_err(pg_err)?;
        let past = past
            .iter()
            .map(|r| (r.get(0), i64::from(r.get::<_, i32>(1)), r.get(2), r.get(3)))
            .collect();
        let drops = tokio::task::spawn_blocking(move || drop_uuids(past))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        for d in drops {
            tx.execute(
                "UPDATE event_segments SET bytes = $1, has_uuids = FALSE WHERE day = $2 AND part = $3",
                &[&d.bytes, &d.day, &(d.part as i32)],
            )
            .await
            .map_err(pg_err)?;
        }
        // Exactly the rows read: a row committed since is left for the next seal.
        tx.execute("DELETE FROM events WHERE seq = ANY($1)", &[&plan.seqs])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n as u64)
    }

    async fn segment_index(&self) -> Result<Vec<SegmentMeta>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT day, part, rows, max_seq, version FROM event_segments ORDER BY day, part",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| SegmentMeta {
                day: r.get(0),
                part: i64::from(r.get::<_, i32>(1)),
                rows: r.get::<_, i64>(2) as u64,
                max_seq: r.get(3),
                version: r.get(4),
            })
            .collect())
    }

    async fn load_segment(&self, day: i64, part: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let part = part_i32(part)?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT bytes FROM event_segments WHERE day = $1 AND part = $2",
                &[&day, &part],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    fn events_backend(&self) -> &'static str {
        "postgres"
    }

    async fn close_events(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
