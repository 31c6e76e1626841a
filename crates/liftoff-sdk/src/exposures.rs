//! Exposure events for local evaluations: what a [`crate::FlagClient`] sends, when asked to,
//! so that experiments on flags evaluated inside the application count their users.
//!
//! Each evaluation of an existing flag for a context with a user becomes, once per (flag,
//! user, value), a PostHog-convention `$feature_flag_called` event (`$feature_flag`,
//! `$feature_flag_response`) posted in batches to `/api/ingest/events`, the same event the
//! `posthog` SDKs send and the experiments read. Every event carries a uuid so a retried batch
//! is stored once.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use liftoff_eval::{Context, Evaluation};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::SdkError;
use crate::layer::sender::Batchable;
use crate::layer::{Control, Counters, SenderSettings, enqueue, start_sender};

/// The event the experiments read an exposure from (PostHog's name).
const EVENT: &str = "$feature_flag_called";
/// Distinct (flag, user, value) triples remembered; past it the memory starts over, so a user
/// may be reported again (the server keeps the first exposure, so a repeat costs one event).
pub(crate) const DEDUPE_CAPACITY: usize = 50_000;

/// One exposure, as queued.
#[derive(Debug)]
pub(crate) struct Exposure {
    flag: String,
    user_id: String,
    value: String,
    ts: SystemTime,
    uuid: String,
}

#[derive(Serialize)]
struct Wire<'a> {
    event: &'static str,
    user_id: &'a str,
    timestamp: String,
    uuid: &'a str,
    properties: Properties<'a>,
}

#[derive(Serialize)]
struct Properties<'a> {
    #[serde(rename = "$feature_flag")]
    flag: &'a str,
    #[serde(rename = "$feature_flag_response")]
    value: &'a str,
    #[serde(rename = "$lib")]
    lib: &'static str,
    #[serde(rename = "$service", skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
}

impl Batchable for Exposure {
    const WHAT: &'static str = "exposure events";

    fn encode(batch: &[Exposure], service: Option<&str>) -> Vec<u8> {
        let wire: Vec<Wire<'_>> = batch
            .iter()
            .map(|e| Wire {
                event: EVENT,
                user_id: &e.user_id,
                timestamp: DateTime::<Utc>::from(e.ts).to_rfc3339_opts(SecondsFormat::Millis, true),
                uuid: &e.uuid,
                properties: Properties {
                    flag: &e.flag,
                    value: &e.value,
                    lib: "liftoff-sdk",
                    service,
                },
            })
            .collect();
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    let mut b = rand::random::<u128>().to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The (flag, user, value) triples already reported, as hashes, bounded.
struct Seen {
    hasher: RandomState,
    set: HashSet<u64>,
}

impl Seen {
    /// True the first time a triple is offered (and again after the memory starts over).
    fn first(&mut self, flag: &str, user: &str, value: &str) -> bool {
        let key = self.hasher.hash_one((flag, user, value));
        if self.set.contains(&key) {
            return false;
        }
        if self.set.len() >= DEDUPE_CAPACITY {
            self.set.clear();
        }
        self.set.insert(key)
    }
}

/// The client's exposure reporting: deduplication, the queue and its background sender.
pub(crate) struct Exposures {
    seen: Mutex<Seen>,
    queue: mpsc::Sender<Exposure>,
    counters: Arc<Counters>,
    batch_size: usize,
    pub control: Arc<Control>,
}

impl Exposures {
    /// Starts the sender (inside a Tokio runtime).
    pub fn start(settings: SenderSettings) -> Result<Exposures, SdkError> {
        let started = start_sender::<Exposure>(settings, "api/ingest/events")?;
        Ok(Exposures {
            seen: Mutex::new(Seen {
                hasher: RandomState::new(),
                set: HashSet::new(),
            }),
            queue: started.queue,
            counters: started.counters,
            batch_size: started.batch_size,
            control: started.control,
        })
    }

    /// Queues the exposure `e` of `flag` for `ctx` unless it says nothing (unknown flag, no
    /// user) or was reported already.
    pub fn observe(&self, flag: &str, ctx: &Context, e: &Evaluation) {
        let Some(user) = ctx.user_id.as_deref().filter(|u| !u.is_empty()) else {
            return;
        };
        if !e.found {
            return;
        }
        let value = e.served_value();
        let first = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first(flag, user, value);
        if !first {
            return;
        }
        enqueue(
            &self.queue,
            &self.counters,
            self.batch_size,
            Exposure {
                flag: flag.to_owned(),
                user_id: user.to_owned(),
                value: value.to_owned(),
                ts: SystemTime::now(),
                uuid: uuid_v4(),
            },
        );
    }

    pub fn sent(&self) -> u64 {
        self.counters
            .sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.counters
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The sender settings of exposure reporting: small batches flushed every 2 s, so an
/// experiment's counts follow the application closely.
pub(crate) fn settings(base_url: &str, token: &str, request_timeout: Duration) -> SenderSettings {
    SenderSettings {
        flush_interval: Duration::from_secs(2),
        request_timeout,
        ..SenderSettings::defaults(base_url.to_owned(), token.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triple_is_first_once_until_the_memory_starts_over() {
        let mut seen = Seen {
            hasher: RandomState::new(),
            set: HashSet::new(),
        };
        assert!(seen.first("f", "u1", "a"));
        assert!(!seen.first("f", "u1", "a"));
        assert!(seen.first("f", "u1", "b"), "a new value is a new exposure");
        assert!(seen.first("g", "u1", "a"));
        for i in 0..DEDUPE_CAPACITY {
            seen.first("f", &format!("x{i}"), "a");
        }
        assert!(seen.set.len() <= DEDUPE_CAPACITY);
    }

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn the_batch_is_posthogs_called_event() {
        let e = Exposure {
            flag: "checkout".into(),
            user_id: "u1".into(),
            value: "blue".into(),
            ts: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            uuid: "0190a6f0-0000-4000-8000-000000000001".into(),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&Exposure::encode(&[e], Some("web"))).unwrap();
        assert_eq!(
            body,
            serde_json::json!([{
                "event": "$feature_flag_called",
                "user_id": "u1",
                "timestamp": "2023-11-14T22:13:20.123Z",
                "uuid": "0190a6f0-0000-4000-8000-000000000001",
                "properties": {"$feature_flag": "checkout", "$feature_flag_response": "blue",
                               "$lib": "liftoff-sdk", "$service": "web"}
            }])
        );
    }
}
