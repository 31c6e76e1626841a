//! Deployments on PostgreSQL: one `jsonb` document each, ordered by time.

use async_trait::async_trait;
use liftoff_core::audit::Change;
use liftoff_core::deployments::{Deployment, DeploymentStore};
use liftoff_core::store::StoreError;

use super::{PgState, pg_err, write_audit};
use crate::codec::{doc_from_value, doc_value, ms};

#[async_trait]
impl DeploymentStore for PgState {
    async fn create_deployment(
        &self,
        d: &Deployment,
        change: &Change,
    ) -> Result<Deployment, StoreError> {
        let mut d = d.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        d.id = tx
            .query_one(
                "INSERT INTO deployments (deployed_at, document) VALUES ($1, '{}') RETURNING id",
                &[&ms(d.deployed_at)],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        tx.execute(
            "UPDATE deployments SET document = $2 WHERE id = $1",
            &[&d.id, &doc_value(&d)?],
        )
        .await
        .map_err(pg_err)?;
        let mut change = change.clone();
        change.target_id = d.id.to_string();
        write_audit(&tx, &change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(d)
    }

    async fn get_deployment(&self, id: i64) -> Result<Option<Deployment>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT document FROM deployments WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        row.map(|r| doc_from_value(r.get(0), "deployment"))
            .transpose()
    }

    async fn list_deployments(&self, limit: u32) -> Result<Vec<Deployment>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT document FROM deployments ORDER BY deployed_at DESC, id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "deployment"))
            .collect()
    }
}
