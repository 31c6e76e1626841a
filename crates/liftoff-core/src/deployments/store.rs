//! The port deployments are kept through.

use async_trait::async_trait;

use super::Deployment;
use crate::audit::Change;
use crate::store::StoreError;

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Stores a deployment with its audit entry; returns it with the id the store gave it
    /// (the audit entry's target is set to that id).
    async fn create_deployment(
        &self,
        d: &Deployment,
        change: &Change,
    ) -> Result<Deployment, StoreError>;
    async fn get_deployment(&self, id: i64) -> Result<Option<Deployment>, StoreError>;
    /// The newest `limit`, newest first.
    async fn list_deployments(&self, limit: u32) -> Result<Vec<Deployment>, StoreError>;
}
