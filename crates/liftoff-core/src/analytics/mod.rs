//! Product analytics: event capture (native and PostHog-compatible) and persons.
//!
//! - [`event`]: `EventRecord` as clients send it, validated into [`Event`] (names, sizes,
//!   depth, timestamps, uuids) with the [`PersonUpdate`] it implies.
//! - [`posthog`]: PostHog capture payloads normalised to records (api key, `distinct_id`,
//!   `$session_id`, `$set`/`$set_once`, `sent_at`/`offset` clock correction).
//! - [`persons`]: the pure `$set`/`$set_once`/`$identify` merge stores apply in the append's
//!   transaction.
//! - [`funnel`]: the rules a funnel request keeps ([`funnel::FunnelError`]).
//! - [`insights`]: funnels, retention, active users, paths, milestones and sessions, answered
//!   by the columnar engine (`liftoff-analytics`) over a cached per-day form of the events.
//! - [`sealed`]: finished days stored as encoded engine segments instead of rows, with the
//!   plans stores follow to seal, erase from and purge them.
//! - [`dedupe`]: which appended events are duplicates (by uuid, hot or sealed).
//! - [`ingest`]: `EventsService`: group-committed ingest, a user's activity, export pages,
//!   erasure and retention.

pub mod dedupe;
pub mod event;
pub mod funnel;
pub mod ingest;
pub mod insights;
pub mod persons;
pub mod posthog;
pub mod sealed;
mod store;
pub mod table_file;

pub use event::{Clock, Event, EventRecord};
pub use ingest::{Accepted, EventError, EventsService, UserActivity};
pub use persons::{Person, PersonUpdate};
pub use store::{AppendOutcome, ErasedUser, Erasure, EventStore, StoredEvent};
