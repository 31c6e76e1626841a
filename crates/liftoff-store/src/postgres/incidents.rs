//! Incidents on PostgreSQL: one `jsonb` document per incident, numbered per year from a
//! counter row (the upsert locks it, so concurrent creations get consecutive numbers).

use async_trait::async_trait;
use chrono::Datelike;
use liftoff_core::audit::Change;
use liftoff_core::incidents::IncidentStore;
use liftoff_core::incidents::{Incident, format_id};
use liftoff_core::store::StoreError;

use super::{PgState, pg_err, write_audit};
use crate::codec::{doc_from_value, doc_value};

#[async_trait]
impl IncidentStore for PgState {
    async fn create_incident(
        &self,
        incident: &Incident,
        change: &Change,
    ) -> Result<Incident, StoreError> {
        let mut incident = incident.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let year = i64::from(incident.created_at.year());
        let seq: i64 = tx
            .query_one(
                "INSERT INTO incident_sequences AS s (year, last) VALUES ($1, 1)
                 ON CONFLICT (year) DO UPDATE SET last = s.last + 1 RETURNING last",
                &[&year],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        incident.id = format_id(incident.created_at.year(), seq);
        tx.execute(
            "INSERT INTO incidents (id, year, seq, status, severity, started_at, resolved_at, version, document)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &incident.id,
                &year,
                &seq,
                &incident.status.as_str(),
                &incident.severity.as_str(),
                &incident.started_at.timestamp_millis(),
                &incident.resolved_at.map(|t| t.timestamp_millis()),
                &incident.version,
                &doc_value(&incident)?,
            ],
        )
        .await
        .map_err(pg_err)?;
        let mut change = change.clone();
        change.target_id.clone_from(&incident.id);
        write_audit(&tx, &change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(incident)
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT document FROM incidents WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        row.map(|r| doc_from_value(r.get(0), "incident"))
            .transpose()
    }

    async fn list_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT document FROM incidents ORDER BY started_at DESC, year DESC, seq DESC",
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "incident"))
            .collect()
    }

    async fn update_incident(
        &self,
        incident: &Incident,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let json = doc_value(incident)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE incidents SET status = $2, severity = $3, started_at = $4, resolved_at = $5,
                    version = $6, document = $7
                 WHERE id = $1 AND version = $8",
                &[
                    &incident.id,
                    &incident.status.as_str(),
                    &incident.severity.as_str(),
                    &incident.started_at.timestamp_millis(),
                    &incident.resolved_at.map(|t| t.timestamp_millis()),
                    &incident.version,
                    &json,
                    &expected_version,
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
}
