//! `EventsService`: event ingest (validated all or nothing, group-committed, answered after the
//! commit) and the reads that need raw events now: a user's activity, export pages, erasure
//! and retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::event::{Clock, Event, EventRecord, days_before, format_uuid};
use super::persons::{Person, PersonUpdate};
use super::posthog::Invalid;
use super::{Erasure, EventStore, StoredEvent};
use crate::audit::AuditStore;
use crate::audit::Change;
use crate::auth::Actor;
use crate::batch::{BatchWriter, FlushFn, SubmitError};
use crate::jobs::JobRegistry;
use crate::store::StoreError;

/// Waiting ingest requests before new ones are refused with 429.
const QUEUE: usize = 1024;
/// Most events in one request.
pub const MAX_BATCH: usize = 10_000;
/// A gap longer than this (ms) starts a new session for events without `session_id`.
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// Most events a user profile reads.
pub const PROFILE_EVENTS: usize = 10_000;
/// Events listed under `recent_events`.
pub const RECENT_EVENTS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the batch is empty; send at least one event")]
    Empty,
    #[error("the batch has {0} events; send at most {MAX_BATCH} per request")]
    TooMany(usize),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// What an ingest request stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Accepted {
    /// Events committed by this request (duplicates excluded).
    pub accepted: u64,
    /// Events whose uuid was already stored: not stored again.
    pub duplicates: u64,
}

/// One request's events on their way through the group commit.
struct Submission {
    events: Vec<Event>,
    persons: Vec<PersonUpdate>,
    duplicates: Arc<AtomicU64>,
}

#[derive(Default)]
struct Counters {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// How many ingest batches this process has committed: a query cache compares it with the
/// count its data was read at to tell whether an acknowledged event may be missing.
#[derive(Clone, Debug, Default)]
pub struct Commits(Arc<AtomicU64>);

impl Commits {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

#[derive(Clone)]
pub struct EventsService {
    store: Arc<dyn EventStore>,
    commits: Commits,
    /// Where erasures are audited: the state store (events live elsewhere).
    audit: Arc<dyn AuditStore>,
    writer: BatchWriter<Submission>,
    counters: Arc<Counters>,
}

/// A person in API answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PersonView {
    pub user_id: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub properties: Value,
}

/// An event in API answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventView {
    pub uuid: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub event: String,
    pub session_id: Option<String>,
    #[schema(value_type = Object)]
    pub properties: Value,
}

/// A session: an explicit `session_id`, or a run of events without one and with no gap over
/// 30 minutes (named `auto-<first event, Unix ms>`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    /// Whether the client named the session.
    pub explicit: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub duration_seconds: f64,
    pub events: u64,
}

/// `GET /api/analytics/user/{user_id}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserActivity {
    pub user_id: String,
    pub days: u32,
    pub person: Option<PersonView>,
    /// Events in the window (at most 10,000 are read; see `truncated`).
    pub total_events: u64,
    /// Events per name.
    pub event_types: BTreeMap<String, u64>,
    /// The same as `event_types`.
    pub event_counts: BTreeMap<String, u64>,
    /// Sessions in the window (`sessions` lists them).
    pub session_count: u64,
    /// Distinct UTC days with an event.
    pub days_active: u64,
    /// `total_events / session_count`, to 2 decimals; 0 without sessions.
    pub avg_events_per_session: f64,
    /// Newest first.
    pub sessions: Vec<SessionView>,
    /// The latest 100, newest first.
    pub recent_events: Vec<EventView>,
    pub truncated: bool,
}

pub fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl From<Person> for PersonView {
    fn from(p: Person) -> Self {
        Self {
            user_id: p.user_id,
            first_seen: time(p.first_seen_ms),
            last_seen: time(p.last_seen_ms),
            properties: Value::Object(p.properties),
        }
    }
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            uuid: e.uuid.map(format_uuid),
            timestamp: time(e.ts_ms),
            event: e.event.clone(),
            session_id: e.session.clone(),
            properties: serde_json::from_str(&e.properties).unwrap_or_default(),
        }
    }
}

/// Sessions of one user's events (oldest first in, newest first out).
pub fn sessions(events: &[Event]) -> Vec<SessionView> {
    let mut explicit: BTreeMap<&str, (i64, i64, u64)> = BTreeMap::new();
    let mut implicit: Vec<(i64, i64, u64)> = Vec::new();
    for e in events {
        match &e.session {
            Some(id) => {
                let s = explicit.entry(id).or_insert((e.ts_ms, e.ts_ms, 0));
                s.0 = s.0.min(e.ts_ms);
                s.1 = s.1.max(e.ts_ms);
                s.2 += 1;
            }
            None => match implicit.last_mut() {
                Some(s) if e.ts_ms - s.1 <= SESSION_GAP_MS => {
                    s.1 = s.1.max(e.ts_ms);
                    s.2 += 1;
                }
                _ => implicit.push((e.ts_ms, e.ts_ms, 1)),
            },
        }
    }
    let view = |id: String, explicit: bool, (start, end, n): (i64, i64, u64)| SessionView {
        session_id: id,
        explicit,
        start: time(start),
        end: time(end),
        duration_seconds: (end - start) as f64 / 1000.0,
        events: n,
    };
    let mut out: Vec<SessionView> = explicit
        .into_iter()
        .map(|(id, s)| view(id.to_owned(), true, s))
        .chain(
            implicit
                .into_iter()
                .map(|s| view(format!("auto-{}", s.0), false, s)),
        )
        .collect();
    out.sort_by(|a, b| b.start.cmp(&a.start).then(a.session_id.cmp(&b.session_id)));
    out
}

impl EventsService {
    /// Starts the ingest writer; the returned task ends once every clone of the service is
    /// dropped and what was accepted is committed.
    pub fn start(
        store: Arc<dyn EventStore>,
        audit: Arc<dyn AuditStore>,
        registry: &JobRegistry,
    ) -> (Self, JoinHandle<()>) {
        let sink = store.clone();
        let commits = Commits::default();
        let committed = commits.clone();
        let flush: FlushFn<Submission> = Arc::new(move |subs: Vec<Submission>| {
            let store = sink.clone();
            let committed = committed.clone();
            Box::pin(async move {
                let mut events = Vec::new();
                let mut persons = Vec::new();
                // End (exclusive) of each submission's events in `events`.
                let mut ends = Vec::with_capacity(subs.len());
                let mut counters = Vec::with_capacity(subs.len());
                for s in subs {
                    events.extend(s.events);
                    persons.extend(s.persons);
                    ends.push(events.len());
                    counters.push(s.duplicates);
                }
                let outcome = store.append_events(&events, &persons).await?;
                committed.bump();
                for i in outcome.duplicate_at {
                    let owner = ends.partition_point(|end| *end <= i);
                    if let Some(c) = counters.get(owner) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        });
        let (writer, handle) = BatchWriter::start("event-ingest", QUEUE, registry, flush);
        (
            Self {
                store,
                commits,
                audit,
                writer,
                counters: Arc::default(),
            },
            handle,
        )
    }

    /// Counts this process's committed ingest batches.
    pub fn commits(&self) -> Commits {
        self.commits.clone()
    }

    /// Validates every record (all or nothing); counts the batch as rejected when one fails.
    pub fn validate(
        &self,
        records: Vec<(EventRecord, Clock)>,
        now_ms: i64,
    ) -> Result<Vec<(Event, PersonUpdate)>, EventError> {
        let n = records.len();
        let checked = (|| {
            if n == 0 {
                return Err(EventError::Empty);
            }
            if n > MAX_BATCH {
                return Err(EventError::TooMany(n));
            }
            records
                .into_iter()
                .enumerate()
                .map(|(index, (r, clock))| {
                    r.validate(now_ms, clock)
                        .map_err(|message| EventError::Invalid(Invalid { index, message }))
                })
                .collect()
        })();
        if checked.is_err() {
            self.reject(n.max(1));
        }
        checked
    }

    /// Refuses (overloaded) when the ingest queue is already behind, before any work is done.
    pub fn admit(&self) -> Result<(), crate::batch::SubmitError> {
        self.writer.admit()
    }

    /// Counts refused events (bad payloads the HTTP layer refuses before validation too).
    pub fn reject(&self, n: usize) {
        self.counters
            .rejected
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Commits validated events and their person updates; returns once they are durable.
    pub async fn ingest(&self, valid: Vec<(Event, PersonUpdate)>) -> Result<Accepted, EventError> {
        if valid.is_empty() {
            return Err(EventError::Empty);
        }
        let n = valid.len() as u64;
        let (events, persons): (Vec<_>, Vec<_>) = valid.into_iter().unzip();
        let duplicates = Arc::new(AtomicU64::new(0));
        self.writer
            .submit(vec![Submission {
                events,
                persons,
                duplicates: duplicates.clone(),
            }])
            .await?;
        let duplicates = duplicates.load(Ordering::Relaxed);
        self.counters
            .ingested
            .fetch_add(n - duplicates, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        Ok(Accepted {
            accepted: n - duplicates,
            duplicates,
        })
    }

    /// A user's person, sessions and events over the last `days`.
    pub async fn user_activity(
        &self,
        user_id: &str,
        days: u32,
        now_ms: i64,
    ) -> Result<UserActivity, StoreError> {
        let from = days_before(now_ms, days);
        let (person, stored) = tokio::try_join!(
            self.store.person(user_id),
            self.store.user_events(user_id, from, PROFILE_EVENTS)
        )?;
        // Finished days are sealed: their events of this person come from the segments.
        let user = user_id.to_owned();
        let mut events =
            super::sealed::sealed_events(&*self.store, from, i64::MAX, move |e| e.user == user)
                .await?;
        events.extend(stored.into_iter().map(|s| s.event));
        events.sort_by_key(|e| e.ts_ms);
        if events.len() > PROFILE_EVENTS {
            events.drain(..events.len() - PROFILE_EVENTS);
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for e in &events {
            *counts.entry(e.event.clone()).or_default() += 1;
        }
        let days_active = events
            .iter()
            .map(|e| e.ts_ms.div_euclid(liftoff_analytics::DAY_MS))
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        let sessions = sessions(&events);
        let session_count = sessions.len() as u64;
        Ok(UserActivity {
            user_id: user_id.to_owned(),
            days,
            person: person.map(PersonView::from),
            total_events: events.len() as u64,
            event_types: counts.clone(),
            event_counts: counts,
            session_count,
            days_active,
            avg_events_per_session: if session_count == 0 {
                0.0
            } else {
                (events.len() as f64 / session_count as f64 * 100.0).round() / 100.0
            },
            sessions,
            recent_events: events
                .iter()
                .rev()
                .take(RECENT_EVENTS)
                .map(EventView::from)
                .collect(),
            truncated: events.len() >= PROFILE_EVENTS,
        })
    }

    /// One page of events for export, in append order.
    pub async fn page(
        &self,
        from_ms: i64,
        to_ms: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store
            .events_between(from_ms, to_ms, limit, after_seq)
            .await
    }

    /// The sealed parts that may hold events of `from_ms..to_ms`, oldest day first.
    pub async fn sealed_parts(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        super::sealed::parts_between(&*self.store, from_ms, to_ms).await
    }

    /// One sealed part's events within `from_ms..to_ms`, oldest first.
    pub async fn sealed_part(
        &self,
        part: (i64, i64),
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Event>, StoreError> {
        super::sealed::part_events(&*self.store, part, from_ms, to_ms, |_| true).await
    }

    pub async fn person(&self, user_id: &str) -> Result<Option<Person>, StoreError> {
        self.store.person(user_id).await
    }

    /// Erases a person and all their events, and audits it like every other change. The
    /// events live in another store than the audit trail, so the entry is written after the
    /// erasure: should that fail, the caller sees the error and erasing again (which finds
    /// nothing left to delete) writes it.
    pub async fn erase(&self, by: &Actor, user_id: &str) -> Result<Erasure, StoreError> {
        let erased = self.store.erase_person(user_id).await?;
        tracing::info!(events = erased.events, "Person erased.");
        let change = Change::new(by, "person.erase", "person", user_id).after(serde_json::json!({
            "events_deleted": erased.events,
            "person_deleted": erased.person,
        }));
        self.audit.record_audit(&change).await?;
        Ok(erased)
    }

    /// Deletes raw events older than `retention_days`.
    pub async fn purge(&self, now_ms: i64, retention_days: u32) -> Result<u64, StoreError> {
        self.store
            .purge_events_before(days_before(now_ms, retention_days))
            .await
    }

    /// Seals every UTC day that ended more than an hour ago and still has rows (late events
    /// included: they become another part); returns the events sealed.
    pub async fn seal_finished_days(&self, now_ms: i64) -> Result<u64, StoreError> {
        super::sealed::seal_finished_days(&*self.store, now_ms).await
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        self.store.event_count().await
    }

    /// Appends `liftoff_events_{ingested,duplicate,rejected}_total`.
    pub fn render_prometheus(&self, out: &mut String) {
        for (name, help, value) in [
            (
                "liftoff_events_ingested_total",
                "Product events stored by this replica.",
                &self.counters.ingested,
            ),
            (
                "liftoff_events_duplicate_total",
                "Product events not stored again because their uuid was already stored.",
                &self.counters.duplicates,
            ),
            (
                "liftoff_events_rejected_total",
                "Product events refused as invalid (their whole batch is refused).",
                &self.counters.rejected,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
    }

    /// Flushes the store's buffers (after the server stopped accepting).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.store.close_events().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, session: Option<&str>) -> Event {
        Event {
            uuid: None,
            ts_ms: ts,
            user: "u".into(),
            session: session.map(str::to_owned),
            event: "e".into(),
            properties: "{}".into(),
        }
    }

    #[test]
    fn sessions_split_on_thirty_minutes_unless_named() {
        let min = 60_000;
        let events = [
            ev(0, None),
            ev(10 * min, None),
            ev(40 * min + 1, None),
            ev(41 * min, Some("s1")),
            ev(500 * min, Some("s1")),
            ev(600 * min, None),
        ];
        let s = sessions(&events);
        let got: Vec<(String, u64, f64)> = s
            .iter()
            .map(|s| (s.session_id.clone(), s.events, s.duration_seconds))
            .collect();
        assert_eq!(
            got,
            vec![
                (format!("auto-{}", 600 * min), 1, 0.0),
                ("s1".to_owned(), 2, 459.0 * 60.0),
                (format!("auto-{}", 40 * min + 1), 1, 0.0),
                ("auto-0".to_owned(), 2, 600.0),
            ]
        );
    }
}
