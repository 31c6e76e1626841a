//! The services that reports and the launch's figures read side by side. Reports are computed
//! from these services, never from the stores, so each figure is what the API answers for the
//! same window.

use chrono::{DateTime, Utc};

use crate::alerts::AlertsService;
use crate::analytics::insights::AnalyticsQueries;
use crate::experiments::ExperimentService;
use crate::flags::FlagService;
use crate::health::HealthService;
use crate::incidents::IncidentsService;
use crate::launch::LaunchService;
use crate::monitoring::service::MonitoringService;
use crate::uptime::UptimeService;

pub struct Sources<'a> {
    pub launch: &'a LaunchService,
    pub monitoring: &'a MonitoringService,
    pub alerts: &'a AlertsService,
    pub uptime: &'a UptimeService,
    pub flags: &'a FlagService,
    pub health: &'a HealthService,
    pub events: &'a dyn AnalyticsQueries,
    pub incidents: &'a IncidentsService,
    pub experiments: &'a ExperimentService,
}

impl Sources<'_> {
    /// The server's clock (the launch service's, which tests move).
    pub fn now(&self) -> DateTime<Utc> {
        self.launch.now()
    }
}
