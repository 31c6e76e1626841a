//! `GET /api/monitoring/dashboard`: what a monitoring dashboard shows, in one answer, so a
//! client draws its page from one request instead of six. Each part is the answer of the
//! endpoint it stands for, over the same window.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::filter::Filter;
use super::operations::service::{OperationStats, OperationsService, OperationsSummary};
use super::service::{EndpointStats, MonitoringService, SortBy, Summary, TimeRange};
use crate::alerts::{AlertError, AlertsService, model::Alert};
use crate::analytics::insights::{ActiveUserCounts, AnalyticsQueries, InsightsError};
use crate::store::StoreError;

/// Rows of the endpoint and operation tables.
pub const DASHBOARD_ROWS: usize = 10;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonitoringDashboard {
    /// The window every figure covers.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// As `/api/monitoring/performance/summary`.
    pub summary: Summary,
    /// The busiest endpoints, as `/api/monitoring/performance/top` (at most 10).
    pub top_endpoints: Vec<EndpointStats>,
    /// Totals over every operation, as `/api/monitoring/stats/summary`.
    pub operations_summary: OperationsSummary,
    /// The busiest operations with their cache hit and fallback rates (fractions 0–1), as
    /// `/api/monitoring/stats/operations` (at most 10, most runs first).
    pub operations: Vec<OperationStats>,
    /// Alerts firing or pending, firing first, as `/api/monitoring/alerts`.
    pub active_alerts: Vec<Alert>,
    /// Distinct users with a product event in the last 5 minutes, hour and day (fixed
    /// windows, whatever the dashboard's window).
    pub active_users: ActiveUserCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Alerts(#[from] AlertError),
    #[error(transparent)]
    Insights(#[from] InsightsError),
}

/// The services the dashboard reads.
pub struct DashboardSources<'a> {
    pub monitoring: &'a MonitoringService,
    pub operations: &'a OperationsService,
    pub alerts: &'a AlertsService,
    pub events: &'a dyn AnalyticsQueries,
}

impl DashboardSources<'_> {
    /// Every part over `range`, read side by side; request figures cover the services of
    /// `filter` (by default every app service, Liftoff's own traffic left out).
    pub async fn gather(
        &self,
        range: TimeRange,
        filter: &Filter<'_>,
    ) -> Result<MonitoringDashboard, DashboardError> {
        let now_ms = range.to.timestamp_millis();
        let (summary, top_endpoints, operations_summary, operations, active_alerts, active_users) =
            tokio::try_join!(
                async { Ok::<_, DashboardError>(self.monitoring.summary(range, filter).await?) },
                async {
                    Ok(self
                        .monitoring
                        .top(range, filter, SortBy::RequestCount, DASHBOARD_ROWS)
                        .await?)
                },
                async { Ok(self.operations.summary(range, None).await?) },
                async { Ok(self.operations.operations(range, None, None, None).await?) },
                async { Ok(self.alerts.active().await?) },
                async { Ok(ActiveUserCounts::at(self.events, now_ms).await?) },
            )?;
        let mut operations: Vec<OperationStats> = operations.into_values().collect();
        operations.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.operation.cmp(&b.operation))
        });
        operations.truncate(DASHBOARD_ROWS);
        Ok(MonitoringDashboard {
            from: range.from,
            to: range.to,
            summary,
            top_endpoints,
            operations_summary,
            operations,
            active_alerts,
            active_users,
        })
    }
}
