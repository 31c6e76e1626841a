//! Rust client for Liftoff feature flags.
//!
//! A [`FlagClient`] keeps a compiled copy of an environment's flag definitions and evaluates
//! flags locally with `liftoff-eval` (the same code the server uses), so a check is a hash
//! lookup and a few comparisons: no network, no lock held across IO.
//!
//! In the background it follows the server's event stream (`GET /api/sdk/stream`, Server-Sent
//! Events) and applies each change within moments. When the stream fails it polls
//! `GET /api/sdk/flags` with `If-None-Match` every [refresh interval] and reconnects the stream
//! with exponential backoff (500 ms doubling to 30 s, with jitter). Whatever goes wrong — the
//! server is down, refuses the token, or answers something that does not parse — the client
//! keeps answering from its last good definitions. Optionally it keeps them in a backup file
//! (rewritten atomically after each change) to start from when the server is unreachable, and
//! can start from a bootstrap file before, or without, any server.
//!
//! ```no_run
//! use std::time::Duration;
//! use liftoff_sdk::{Context, FlagClient};
//!
//! # async fn demo() -> Result<(), liftoff_sdk::SdkError> {
//! let client = FlagClient::builder("https://flags.example.com", "ingest-token")
//!     .environment("production")
//!     .backup_file("/var/lib/myapp/liftoff-flags.json")
//!     .refresh_interval(Duration::from_secs(30))
//!     .build()
//!     .await?;
//!
//! let ctx = Context::with_user("user-42").property("plan", "pro");
//! if client.is_enabled("new-checkout", &ctx) {
//!     // …
//! }
//! let variant = client.variant("checkout-button", &ctx);
//! println!("button variant: {} {:?}", variant.name, variant.payload);
//!
//! client.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! Offline, from a bootstrap file (client-features JSON, as `GET /api/sdk/flags` returns):
//!
//! ```
//! use liftoff_sdk::{Context, FlagClient, SnapshotSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("flags.json");
//! std::fs::write(&path, r#"{"version": 2, "features": [
//!     {"name": "dark-mode", "enabled": true, "strategies": [{"name": "default"}]}
//! ]}"#)?;
//!
//! // Nothing listens on port 9: the client starts from the file and retries in the background.
//! let client = FlagClient::builder("http://127.0.0.1:9", "token")
//!     .bootstrap_file(&path)
//!     .build()
//!     .await?;
//! assert!(client.is_ready());
//! assert_eq!(client.source(), SnapshotSource::Bootstrap);
//! assert!(client.is_enabled("dark-mode", &Context::default()));
//! assert!(!client.is_enabled("unknown-flag", &Context::default()));
//! # Ok(())
//! # }
//! ```
//!
//! A Tokio runtime must be running when [`FlagClientBuilder::build`] is called. `https` URLs
//! need the `rustls-tls` (default) or `native-tls` feature.
//!
//! To report the requests an application serves, see [`RequestReporter`] (module [`layer`]);
//! to time named operations (with cache hits, layers and failures), see [`OperationReporter`];
//! to enforce maintenance mode and the soft-launch cap, see [`launch::LaunchGate`].
//!
//! [refresh interval]: FlagClientBuilder::refresh_interval

mod backoff;
mod builder;
mod client;
mod error;
mod exposures;
mod files;
pub mod launch;
pub mod layer;
mod served;
mod sse;
mod sync;

pub use builder::{ENVIRONMENTS, FlagClientBuilder};
pub use client::{FlagClient, SnapshotSource};
pub use error::SdkError;
pub use layer::{
    InstanceReporter, InstanceReporterBuilder, OperationReporter, OperationReporterBuilder,
    OperationTimer, ReportLayer, ReportedUser, RequestReporter, RequestReporterBuilder,
};
pub use liftoff_eval::{Context, Evaluation, Payload, Reason, Snapshot, VariantResult};
