//! Liftoff's domain: what the product knows and decides, independent of HTTP and SQL.
//!
//! Layout:
//! - [`analytics`]: product events (native and PostHog capture), persons, erasure.
//! - [`auth`]: scopes, API keys, principals and the key service.
//! - [`users`]: dashboard users, roles, passwords and sessions.
//! - [`deployments`]: release verification: recorded deployments and their before/after test.
//! - [`experiments`]: A/B experiments on flags: exposures, metrics, the statistics engine, decisions.
//! - [`audit`]: the audit trail every change of state writes.
//! - [`health`]: how the state store is doing (reachability, latency, schema).
//! - [`store`]: what every storage port shares and nothing of any domain: `StoreError`, `StoreHealth`.
//!   Each domain keeps its own port (trait) beside it (`flags::FlagStore`, `alerts::AlertStore`, …).
//! - [`ports`]: `StateStore`, the composition of the state ports one backend implements; no domain
//!   imports it.
//! - [`clock`]: time as a port (`Clock`, `SystemClock`, `ManualClock` for tests); services read
//!   the time only through it.
//! - [`batch`]: group commit for ingest (answer after the commit, bounded queue).
//! - [`error`]: every domain failure classified once: kind, stable code, what a client may read.
//! - [`jobs`]: the registry background jobs report their state to.
//! - [`secret`]: random tokens and their digests; the cipher for secrets kept at rest.
//! - [`outbound`]: the `--outbound-deny` policy for Liftoff's own outbound connections.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod changes;
pub mod clock;
pub mod deployments;
pub mod error;
pub mod experiments;
pub mod flags;
pub mod health;
pub mod incidents;
pub mod jobs;
pub mod launch;
pub mod lease;
pub mod monitoring;
pub mod network;
pub mod outbound;
pub mod ports;
pub mod reports;
pub mod secret;
pub mod sources;
pub mod store;
pub mod uptime;
pub mod users;

pub use store::StoreError;
