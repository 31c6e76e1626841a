//! Request monitoring: per-minute latency sketches per endpoint, ingested with group commit
//! and merged for any window.
//!
//! - [`requests`]: request records, their validation and folding into minute cells.
//! - [`dashboard`]: the monitoring dashboard's figures in one answer.
//! - [`service`]: ingest and the seed's queries.
//! - [`sketch`]: [`DDSketch`](sketch::DDSketch), a mergeable quantile sketch with a relative-error
//!   guarantee. Request latencies are recorded into one sketch per minute; any window (5 minutes,
//!   an hour, a rollout step) is answered by merging the minutes it covers, and the minutes are
//!   persisted with [`DDSketch::to_bytes`](sketch::DDSketch::to_bytes).

pub mod dashboard;
pub mod filter;
pub mod instances;
pub mod operations;
pub mod otlp;
pub mod prometheus;
pub mod requests;
pub mod service;
pub mod sketch;
pub mod system;

pub use filter::Filter;

/// The first minute of the `res`-minute bucket holding `minute` (`res` > 0): where compaction
/// files a cell when it rolls minutes up into hours (60) or hours into days (1440).
pub fn bucket_start(minute: i64, res: i64) -> i64 {
    minute - minute.rem_euclid(res)
}
pub use service::{EndpointStats, IngestError, MonitoringService, SortBy, Summary, TimeRange};
pub use system::{SystemGauge, SystemSnapshot};
