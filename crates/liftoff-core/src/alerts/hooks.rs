//! The interfaces alerts share with uptime checks and incidents.

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Pending,
    Firing,
    Resolved,
}

/// A rule's alert changed state; listeners (incidents) react.
#[derive(Clone, Debug)]
pub struct AlertTransition {
    pub alert_id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub at: chrono::DateTime<chrono::Utc>,
    pub summary: String,
    pub value: f64,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[async_trait::async_trait]
pub trait AlertListener: Send + Sync {
    async fn on_transition(&self, t: &AlertTransition);
}

/// Uptime monitors as alert rules see them.
#[derive(Clone, Debug)]
pub struct MonitorHealth {
    pub id: i64,
    pub name: String,
    pub failing: bool,
    pub consecutive_failures: u32,
}

#[async_trait::async_trait]
pub trait UptimeSource: Send + Sync {
    async fn monitors(&self) -> Vec<MonitorHealth>;
}

/// Guarded rollouts as alert rules see them.
#[async_trait::async_trait]
pub trait RolloutSource: Send + Sync {
    /// Flags whose guarded rollout regressed at or after `since`, with the evidence.
    async fn regressions_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, String)>, crate::store::StoreError>;
}

#[async_trait::async_trait]
impl RolloutSource for crate::flags::FlagService {
    async fn regressions_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, String)>, crate::store::StoreError> {
        crate::flags::FlagService::regressions_since(self, since).await
    }
}

/// Release verification as alert rules see it.
#[async_trait::async_trait]
pub trait DeploymentSource: Send + Sync {
    /// How many deployments since `since` regressed.
    async fn regressed_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, crate::store::StoreError>;
}

#[async_trait::async_trait]
impl DeploymentSource for crate::deployments::DeploymentService {
    async fn regressed_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, crate::store::StoreError> {
        Ok(
            crate::deployments::DeploymentService::regressed_since(self, since)
                .await?
                .len(),
        )
    }
}
