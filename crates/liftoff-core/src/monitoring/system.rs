//! The latest reading of the machine's resources, as `liftoff-system`'s sampler takes it
//! (cgroup-aware: a container's CPU quota and memory limit, not the host's).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use liftoff_system::{Cpu, Disk, Memory, Sample};

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct SystemSnapshot {
    pub cpu: Cpu,
    pub memory: Memory,
    /// The file system holding the data directory.
    pub disk: Disk,
    /// Resident memory of Liftoff itself.
    pub process_rss_mb: f64,
    pub sampled_at: Option<DateTime<Utc>>,
}

/// Where the sampler leaves its latest reading.
#[derive(Clone, Default)]
pub struct SystemGauge(Arc<RwLock<SystemSnapshot>>);

impl SystemSnapshot {
    pub fn new(sample: Sample, at: DateTime<Utc>) -> Self {
        Self {
            cpu: sample.cpu,
            memory: sample.memory,
            disk: sample.disk,
            process_rss_mb: sample.process_rss_mb,
            sampled_at: Some(at),
        }
    }
}

impl SystemSnapshot {
    /// The reading without its time, as instances report theirs.
    pub fn sample(&self) -> Sample {
        Sample {
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            disk: self.disk.clone(),
            process_rss_mb: self.process_rss_mb,
        }
    }
}

impl SystemGauge {
    pub fn set(&self, s: SystemSnapshot) {
        if let Ok(mut g) = self.0.write() {
            *g = s;
        }
    }

    pub fn get(&self) -> SystemSnapshot {
        self.0.read().map(|g| g.clone()).unwrap_or_default()
    }
}
