//! Experiments on PostgreSQL: one `jsonb` document each, and one exposure row per
//! (experiment, user).

use async_trait::async_trait;
use liftoff_core::audit::Change;
use liftoff_core::experiments::{Experiment, ExperimentStore, ExposedUser, Exposure};
use liftoff_core::store::StoreError;

use super::{PgState, pg_err, write_audit};
use crate::codec::{doc_from_value, doc_value, from_ms, ms};

#[async_trait]
impl ExperimentStore for PgState {
    async fn create_experiment(
        &self,
        exp: &Experiment,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let json = doc_value(exp)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "INSERT INTO experiments (key, flag_id, created_at, version, document)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING",
                &[
                    &exp.key,
                    &exp.flag_id,
                    &ms(exp.created_at),
                    &exp.version,
                    &json,
                ],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT document FROM experiments WHERE key = $1", &[&key])
            .await
            .map_err(pg_err)?;
        row.map(|r| doc_from_value(r.get(0), "experiment"))
            .transpose()
    }

    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT document FROM experiments ORDER BY created_at DESC, key",
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "experiment"))
            .collect()
    }

    async fn update_experiment(
        &self,
        exp: &Experiment,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let json = doc_value(exp)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE experiments SET version = $2, document = $3 WHERE key = $1 AND version = $4",
                &[&exp.key, &exp.version, &json, &expected_version],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn record_exposures(&self, exposures: &[Exposure]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Row by row, not one multi-row upsert: a batch may hold one user twice (two
        // variants), which a single INSERT … ON CONFLICT cannot update twice.
        let stmt = tx
            .prepare(
                "INSERT INTO experiment_exposures AS x (experiment, user_id, variant, first_at, multiple)
                 VALUES ($1, $2, $3, $4, FALSE)
                 ON CONFLICT (experiment, user_id) DO UPDATE SET
                    multiple = x.multiple OR excluded.variant <> x.variant,
                    variant = CASE WHEN excluded.first_at < x.first_at THEN excluded.variant ELSE x.variant END,
                    first_at = LEAST(x.first_at, excluded.first_at)",
            )
            .await
            .map_err(pg_err)?;
        for e in exposures {
            tx.execute(&stmt, &[&e.experiment, &e.user_id, &e.variant, &ms(e.at)])
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn exposed_users(&self, experiment: &str) -> Result<Vec<ExposedUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT user_id, variant, first_at, multiple FROM experiment_exposures
                 WHERE experiment = $1 ORDER BY user_id",
                &[&experiment],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| ExposedUser {
                user_id: r.get(0),
                variant: r.get(1),
                first_at: from_ms(r.get(2)),
                multiple: r.get(3),
            })
            .collect())
    }
}
