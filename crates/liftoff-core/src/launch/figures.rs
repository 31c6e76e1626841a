//! The live figures a launch is judged by, gathered from the other domains' services side by
//! side: readiness inputs, the key metrics with their levels, and what phase exit criteria
//! read. The decisions stay in `readiness`, `presets` and `phases`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::phases::PhaseFigures;
use super::presets::{Level, Thresholds};
use super::readiness::{Readiness, ReadinessInput, evaluate};
use super::scaling::{ResourceLoad, ScalingInput, ScalingReport, recommend};
use super::service::LaunchError;
use crate::alerts::model::{DeliveryKind, DeliveryStatus, Severity};
use crate::analytics::insights::ActiveUserCounts;
use crate::monitoring::filter::Filter;
use crate::monitoring::service::{Summary, TimeRange};
use crate::sources::Sources;
use crate::uptime::MonitorStatus;

/// Deliveries read to find channels whose last test passed.
const DELIVERIES_READ: usize = 1_000;

/// Users of the launch.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LaunchUsers {
    pub admitted: u64,
    pub user_limit: Option<u32>,
    pub waitlist: u64,
    /// Distinct users with events in the last 5 minutes / 24 hours.
    pub active_5m: u64,
    pub active_24h: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FeedbackFigures {
    pub count: u64,
    pub average_rating: Option<f64>,
}

/// `GET /api/launch/metrics`: the launch's key figures over the last hour, each with its level
/// against the launch thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LaunchMetrics {
    pub phase: String,
    pub users: LaunchUsers,
    /// Fractions 0–1 over the last hour; `null` without requests.
    pub success_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub avg_response_time_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub requests_last_hour: u64,
    pub feedback: FeedbackFigures,
    /// `ok`, `warning` or `critical` per metric that has a value.
    pub status: BTreeMap<String, Level>,
}

fn last_hour(now: DateTime<Utc>) -> TimeRange {
    TimeRange {
        from: now - Duration::hours(1),
        to: now,
    }
}

/// The error rate and latency of `summary`, `None` without requests.
fn traffic(summary: &Summary) -> (Option<f64>, Option<f64>, Option<f64>) {
    if summary.requests.total == 0 {
        return (None, None, None);
    }
    (
        Some(summary.requests.error_rate),
        Some(summary.performance.avg_duration_ms),
        Some(summary.performance.p95_duration_ms),
    )
}

impl Sources<'_> {
    /// Every readiness check from live data.
    pub async fn readiness(&self, now: DateTime<Utc>) -> Result<Readiness, LaunchError> {
        let apps = Filter::default();
        let (summary, monitors, channels, deliveries, rules, settings, store) = tokio::join!(
            self.monitoring.summary(last_hour(now), &apps),
            self.uptime.list(),
            self.alerts.channels(),
            self.alerts.deliveries(DELIVERIES_READ),
            self.alerts.rules(),
            self.launch.settings(),
            self.health.check_store(),
        );
        let summary = summary?;
        let settings = settings?;
        let (error_rate, _, p95) = traffic(&summary);
        let monitors = monitors
            .map_err(|e| LaunchError::Sources(e.to_string()))?
            .into_iter()
            .filter(|m| m.enabled)
            .map(|m| (m.name, m.state.status != MonitorStatus::Down))
            .collect();
        let channels = channels.map_err(|e| LaunchError::Sources(e.to_string()))?;
        // Deliveries come newest first: the first test seen per channel is its latest.
        let mut latest_test: BTreeMap<i64, bool> = BTreeMap::new();
        for d in deliveries.map_err(|e| LaunchError::Sources(e.to_string()))? {
            if d.kind == DeliveryKind::Test && d.status != DeliveryStatus::Pending {
                latest_test
                    .entry(d.channel_id)
                    .or_insert(d.status == DeliveryStatus::Sent);
            }
        }
        let tested_channels = channels
            .iter()
            .filter(|c| c.enabled && latest_test.get(&c.id).copied().unwrap_or(false))
            .count();
        let critical: Vec<bool> = rules
            .map_err(|e| LaunchError::Sources(e.to_string()))?
            .iter()
            .filter(|r| r.severity == Severity::Critical)
            .map(|r| r.enabled)
            .collect();
        let catalog = self.flags.catalog();
        let without_flag = settings
            .beta_features
            .iter()
            .filter(|f| !catalog.flags.iter().any(|(k, _)| k.as_str() == f.as_str()))
            .cloned()
            .collect();
        let disk = &summary.system.disk;
        let input = ReadinessInput {
            requests_last_hour: summary.requests.total,
            error_rate,
            p95_ms: p95,
            monitors,
            tested_channels,
            channels: channels.len(),
            critical_rules: critical.len(),
            critical_rules_enabled: critical.iter().filter(|e| **e).count(),
            beta_features: settings.beta_features.clone(),
            beta_features_without_flag: without_flag,
            disk_free: (summary.system.sampled_at.is_some() && disk.total_gb > 0.0)
                .then(|| (1.0 - disk.percent / 100.0).clamp(0.0, 1.0)),
            stores: vec![("state".into(), store.ping.is_ok())],
            backup_age: self.launch.last_backup_age(now).await?,
        };
        Ok(evaluate(&input, &Thresholds::default()))
    }

    /// The key metrics of the last hour.
    pub async fn metrics(&self, now: DateTime<Utc>) -> Result<LaunchMetrics, LaunchError> {
        let apps = Filter::default();
        let (summary, settings, counts, feedback, active) = tokio::join!(
            self.monitoring.summary(last_hour(now), &apps),
            self.launch.settings(),
            self.launch.counts(),
            self.launch.feedback_summary(),
            ActiveUserCounts::at(self.events, now.timestamp_millis()),
        );
        let (summary, settings, counts, feedback) = (summary?, settings?, counts?, feedback?);
        let active = active.map_err(|e| LaunchError::Sources(e.to_string()))?;
        let (error_rate, avg, p95) = traffic(&summary);
        let t = Thresholds::default();
        let mut status = BTreeMap::new();
        if let Some(r) = error_rate {
            status.insert("error_rate".to_owned(), t.error_rate.level(r));
            status.insert("success_rate".to_owned(), t.success_rate.level(1.0 - r));
        }
        if let Some(ms) = p95 {
            status.insert("response_time".to_owned(), t.response_time_ms.level(ms));
        }
        if summary.system.sampled_at.is_some() {
            status.insert(
                "cpu".to_owned(),
                t.cpu.level(summary.system.cpu.percent / 100.0),
            );
            status.insert(
                "memory".to_owned(),
                t.memory.level(summary.system.memory.percent / 100.0),
            );
        }
        Ok(LaunchMetrics {
            phase: settings
                .phases
                .get(settings.phase)
                .map_or_else(String::new, |p| p.name.clone()),
            users: LaunchUsers {
                admitted: counts.admitted,
                user_limit: settings.user_limit,
                waitlist: counts.waiting,
                active_5m: active.last_5m,
                active_24h: active.last_24h,
            },
            success_rate: error_rate.map(|r| 1.0 - r),
            error_rate,
            avg_response_time_ms: avg,
            p95_ms: p95,
            requests_last_hour: summary.requests.total,
            feedback: FeedbackFigures {
                count: feedback.count,
                average_rating: feedback.average_rating,
            },
            status,
        })
    }

    /// Scaling recommendations from the last 28 days of app traffic and the instances'
    /// latest readings. A day's peak is its busiest hour's average request rate.
    pub async fn scaling(
        &self,
        now: DateTime<Utc>,
        instance_monthly_cost: Option<f64>,
    ) -> Result<ScalingReport, LaunchError> {
        let days = 28;
        let from = (now - Duration::days(days)).date_naive();
        let from = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let range = TimeRange { from, to: now };
        let hours = ((now - from).num_minutes() / 60).max(1) as usize;
        let series = self
            .monitoring
            .series(range, hours, &Filter::default())
            .await?;
        let mut peaks: BTreeMap<i64, f64> = BTreeMap::new();
        for p in &series {
            let day = p.t.div_euclid(86_400);
            let rate = p.requests as f64 / 3_600.0;
            let peak = peaks.entry(day).or_insert(0.0);
            *peak = peak.max(rate);
        }
        let instances = self.monitoring.instances.list(now);
        let mut loads = Vec::new();
        for i in &instances {
            let name = format!("{}/{}", i.service, i.instance);
            loads.push(ResourceLoad {
                resource: "cpu",
                instance: name.clone(),
                utilisation: i.sample.cpu.percent / 100.0,
            });
            loads.push(ResourceLoad {
                resource: "memory",
                instance: name,
                utilisation: i.sample.memory.percent / 100.0,
            });
        }
        Ok(recommend(&ScalingInput {
            daily_peaks: peaks.into_iter().collect(),
            loads,
            instances: u32::try_from(instances.len()).unwrap_or(u32::MAX),
            instance_monthly_cost,
            today: now.timestamp().div_euclid(86_400),
        }))
    }

    /// What the current phase's exit criteria are judged on.
    pub async fn phase_figures(&self, now: DateTime<Utc>) -> Result<PhaseFigures, LaunchError> {
        let (readiness, metrics) = tokio::join!(self.readiness(now), self.metrics(now));
        let (readiness, metrics) = (readiness?, metrics?);
        Ok(PhaseFigures {
            ready: readiness.ready,
            error_rate: metrics.error_rate,
            p95_ms: metrics.p95_ms,
            average_rating: metrics.feedback.average_rating,
            admitted: metrics.users.admitted,
        })
    }
}
