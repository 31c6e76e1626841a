//! Request monitoring: per-minute latency sketches per endpoint, ingested with group commit
//! and merged for any window.
//!
//! - [`requests`]: request records, their validation and folding into minute cells.
//! - [`dashboard`]: the monitoring dashboard's figures in one answer.
//! - [`service`]: ingest and the seed's queries.
//! - [`resources`]: instances' resource readings summed per hour, and their trends.
//! - [`variants`]: request cells per flag variant, for guardrails of experiments and rollouts.
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
pub mod resources;
pub mod service;
pub mod sketch;
mod store;
pub mod system;
pub mod variants;

pub use filter::Filter;

/// The first minute of the `res`-minute bucket holding `minute` (`res` > 0): where compaction
/// files a cell when it rolls minutes up into hours (60) or hours into days (1440).
pub fn bucket_start(minute: i64, res: i64) -> i64 {
    minute - minute.rem_euclid(res)
}
pub use service::{EndpointStats, IngestError, MonitoringService, SortBy, Summary, TimeRange};
pub use store::{MetricsStore, RequestCell, SeenEndpoint};
pub use system::{SystemGauge, SystemSnapshot};

#[cfg(test)]
mod rollup_tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::bucket_start;
    use super::requests::{CellKey, roll_up};
    use super::sketch::DDSketch;

    proptest! {
        /// A bucket starts on a multiple of its size, at or before the minute, within one size.
        #[test]
        fn buckets_align(minute in -10_000_000i64..10_000_000, res in prop::sample::select(vec![1i64, 60, 1440])) {
            let b = bucket_start(minute, res);
            prop_assert_eq!(b.rem_euclid(res), 0);
            prop_assert!(b <= minute && minute - b < res);
        }

        /// Rolling up keeps every sample, files each under its bucket and one cell a bucket.
        #[test]
        fn roll_up_keeps_totals(
            cells in prop::collection::vec((-5_000i64..5_000, 0u16..3, 1usize..4), 0..60),
            res in prop::sample::select(vec![60i64, 1440]),
        ) {
            let input: Vec<(CellKey, DDSketch)> = cells
                .iter()
                .map(|&(minute, status, n)| {
                    let mut s = DDSketch::default();
                    for i in 0..n {
                        s.add(i as f64 + 1.0);
                    }
                    (CellKey { minute, service: "app".into(), method: "GET".into(), route: "/".into(), status }, s)
                })
                .collect();
            let total: u64 = input.iter().map(|(_, s)| s.count()).sum();
            let out = roll_up(input, res).unwrap();
            prop_assert_eq!(out.values().map(DDSketch::count).sum::<u64>(), total);
            prop_assert!(out.keys().all(|k| k.minute.rem_euclid(res) == 0));
        }
    }
}
