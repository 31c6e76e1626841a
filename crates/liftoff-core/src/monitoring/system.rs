//! The latest reading of the machine's resources, as the sampler in the binary takes it
//! (cgroup-aware: a container's CPU quota and memory limit, not the host's).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Cpu {
    /// Busy share of the CPUs this process may use, 0–100.
    pub percent: f64,
    /// CPUs available: the cgroup quota when one is set, else the online CPUs.
    pub count: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Memory {
    pub total_mb: f64,
    pub used_mb: f64,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Disk {
    pub total_gb: f64,
    pub used_gb: f64,
    pub percent: f64,
}

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
