//! Deployments on SQLite (`state.db`): one JSON document each, ordered by time.

use async_trait::async_trait;
use liftoff_core::audit::Change;
use liftoff_core::deployments::{Deployment, DeploymentStore};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use super::db::sql_err;
use super::{SqliteState, write_audit};
use crate::codec::{doc_from_text, doc_text, ms};

#[async_trait]
impl DeploymentStore for SqliteState {
    async fn create_deployment(
        &self,
        d: &Deployment,
        change: &Change,
    ) -> Result<Deployment, StoreError> {
        let (mut d, mut change) = (d.clone(), change.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO deployments (deployed_at, document) VALUES (?1, '{}')",
                    params![ms(d.deployed_at)],
                )
                .map_err(sql_err)?;
                d.id = tx.last_insert_rowid();
                tx.execute(
                    "UPDATE deployments SET document = ?2 WHERE id = ?1",
                    params![d.id, doc_text(&d)?],
                )
                .map_err(sql_err)?;
                change.target_id = d.id.to_string();
                write_audit(tx, &change)?;
                Ok(d)
            })
            .await
    }

    async fn get_deployment(&self, id: i64) -> Result<Option<Deployment>, StoreError> {
        let doc: Option<String> = self
            .db
            .read(move |c| {
                c.prepare_cached("SELECT document FROM deployments WHERE id = ?1")
                    .map_err(sql_err)?
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)
            })
            .await?;
        doc.as_deref()
            .map(|d| doc_from_text(d, "deployment"))
            .transpose()
    }

    async fn list_deployments(&self, limit: u32) -> Result<Vec<Deployment>, StoreError> {
        let docs: Vec<String> = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT document FROM deployments ORDER BY deployed_at DESC, id DESC LIMIT ?1",
                    )
                    .map_err(sql_err)?;
                let rows = stmt.query_map([limit], |r| r.get(0)).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        docs.iter()
            .map(|d| doc_from_text(d, "deployment"))
            .collect()
    }
}
