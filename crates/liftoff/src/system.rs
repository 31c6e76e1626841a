//! Liftoff's own resource readings: `liftoff-system`'s sampler over the data directory,
//! published to the gauge `/api/monitoring/system` and the summary read.

use std::path::PathBuf;

use chrono::Utc;
use liftoff_core::monitoring::{SystemGauge, SystemSnapshot};

pub struct Sampler {
    inner: liftoff_system::Sampler,
    gauge: SystemGauge,
}

impl Sampler {
    pub fn new(data_dir: PathBuf, gauge: SystemGauge) -> Self {
        Self {
            inner: liftoff_system::Sampler::new(data_dir),
            gauge,
        }
    }

    /// Takes one reading and publishes it.
    pub fn sample(&self) -> SystemSnapshot {
        let snapshot = SystemSnapshot::new(self.inner.sample(), Utc::now());
        self.gauge.set(snapshot.clone());
        snapshot
    }
}
