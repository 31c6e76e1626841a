//! Experiments on SQLite (`state.db`): one JSON document each, and one exposure row per
//! (experiment, user).

use async_trait::async_trait;
use liftoff_core::audit::Change;
use liftoff_core::experiments::{Experiment, ExperimentStore, ExposedUser, Exposure};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use super::db::sql_err;
use super::{SqliteState, write_audit};
use crate::codec::{doc_from_text, doc_text, from_ms, ms};

#[async_trait]
impl ExperimentStore for SqliteState {
    async fn create_experiment(
        &self,
        exp: &Experiment,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (json, exp, change) = (doc_text(exp)?, exp.clone(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "INSERT INTO experiments (key, flag_id, created_at, version, document)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO NOTHING",
                        params![exp.key, exp.flag_id, ms(exp.created_at), exp.version, json],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        let key = key.to_owned();
        let doc: Option<String> = self
            .db
            .read(move |c| {
                c.prepare_cached("SELECT document FROM experiments WHERE key = ?1")
                    .map_err(sql_err)?
                    .query_row([key], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)
            })
            .await?;
        doc.as_deref()
            .map(|d| doc_from_text(d, "experiment"))
            .transpose()
    }

    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let docs: Vec<String> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT document FROM experiments ORDER BY created_at DESC, key",
                    )
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        docs.iter()
            .map(|d| doc_from_text(d, "experiment"))
            .collect()
    }

    async fn update_experiment(
        &self,
        exp: &Experiment,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (json, exp, change) = (doc_text(exp)?, exp.clone(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE experiments SET version = ?2, document = ?3 WHERE key = ?1 AND version = ?4",
                        params![exp.key, exp.version, json, expected_version],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn record_exposures(&self, exposures: &[Exposure]) -> Result<(), StoreError> {
        let exposures = exposures.to_vec();
        self.db
            .write(move |tx| {
                // Every right-hand side reads the row as it was, so the order of SETs is free.
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO experiment_exposures (experiment, user_id, variant, first_at, multiple)
                         VALUES (?1, ?2, ?3, ?4, 0)
                         ON CONFLICT (experiment, user_id) DO UPDATE SET
                            multiple = multiple OR excluded.variant <> variant,
                            variant = CASE WHEN excluded.first_at < first_at THEN excluded.variant ELSE variant END,
                            first_at = MIN(first_at, excluded.first_at)",
                    )
                    .map_err(sql_err)?;
                for e in &exposures {
                    stmt.execute(params![e.experiment, e.user_id, e.variant, ms(e.at)])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn exposed_users(&self, experiment: &str) -> Result<Vec<ExposedUser>, StoreError> {
        let experiment = experiment.to_owned();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user_id, variant, first_at, multiple FROM experiment_exposures
                         WHERE experiment = ?1 ORDER BY user_id",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([experiment], |r| {
                        Ok(ExposedUser {
                            user_id: r.get(0)?,
                            variant: r.get(1)?,
                            first_at: from_ms(r.get(2)?),
                            multiple: r.get(3)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }
}
