//! The registry where background jobs report what they are doing, for `/health/detailed`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobStatus {
    pub name: String,
    /// How often the job runs, in seconds.
    pub interval_seconds: u64,
    pub runs: u64,
    pub failures: u64,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<f64>,
    pub last_error: Option<String>,
    /// Runs on one replica only, the holder of the singleton lease.
    pub singleton: bool,
    /// Ticks passed up because another replica holds the lease.
    pub standby_ticks: u64,
}

/// A bounded queue's current depth and capacity.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueDepth {
    pub name: String,
    pub depth: u64,
    pub capacity: u64,
}

type DepthFn = Arc<dyn Fn() -> (u64, u64) + Send + Sync>;

#[derive(Clone, Default)]
pub struct JobRegistry {
    jobs: Arc<Mutex<BTreeMap<String, JobStatus>>>,
    queues: Arc<Mutex<BTreeMap<String, DepthFn>>>,
}

impl JobRegistry {
    pub fn register(&self, name: &str, interval_seconds: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(
                name.to_owned(),
                JobStatus {
                    name: name.to_owned(),
                    interval_seconds,
                    runs: 0,
                    failures: 0,
                    last_run_at: None,
                    last_duration_ms: None,
                    last_error: None,
                    singleton: false,
                    standby_ticks: 0,
                },
            );
        }
    }

    /// Marks `name` as a job only the lease holder runs.
    pub fn mark_singleton(&self, name: &str) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.get_mut(name)
        {
            job.singleton = true;
        }
    }

    /// Counts a tick `name` passed up because another replica holds the lease.
    pub fn record_standby(&self, name: &str) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.get_mut(name)
        {
            job.standby_ticks += 1;
        }
    }

    pub fn record(
        &self,
        name: &str,
        started: DateTime<Utc>,
        duration_ms: f64,
        error: Option<String>,
    ) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.get_mut(name)
        {
            job.runs += 1;
            if error.is_some() {
                job.failures += 1;
            }
            job.last_run_at = Some(started);
            job.last_duration_ms = Some(duration_ms);
            job.last_error = error;
        }
    }

    /// Registers a queue whose `(depth, capacity)` is read on demand.
    pub fn register_queue(
        &self,
        name: &str,
        depth: impl Fn() -> (u64, u64) + Send + Sync + 'static,
    ) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.insert(name.to_owned(), Arc::new(depth));
        }
    }

    pub fn jobs(&self) -> Vec<JobStatus> {
        self.jobs
            .lock()
            .map(|j| j.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn queues(&self) -> Vec<QueueDepth> {
        let Ok(queues) = self.queues.lock() else {
            return Vec::new();
        };
        queues
            .iter()
            .map(|(name, f)| {
                let (depth, capacity) = f();
                QueueDepth {
                    name: name.clone(),
                    depth,
                    capacity,
                }
            })
            .collect()
    }
}
