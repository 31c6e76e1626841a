//! A/B experiments on flags with variants: exposures, metrics, honest statistics, decisions.
//!
//! - [`model`]: an experiment, its metrics and analysis settings, validated.
//! - [`stats`]: the statistics engine (GrowthBook's gbstats, in Rust): frequentist and
//!   sequential tests, Bayesian chance to win and risk, CUPED, SRM, Holm–Bonferroni.
//! - [`results`]: per-variant statistics, comparisons, corrections and the decision (pure).
//! - [`service`]: `ExperimentService`: define, stop and ship, observe exposures, results.

pub mod model;
pub mod results;
pub mod service;
pub mod stats;
mod store;

pub use model::{Experiment, ExperimentPatch, Metric, MetricKind, NewExperiment, StopExperiment};
pub use service::{ExperimentError, ExperimentService, ExperimentView};
pub use store::{ExperimentStore, ExposedUser, Exposure};
