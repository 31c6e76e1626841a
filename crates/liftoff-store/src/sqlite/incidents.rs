//! Incidents on SQLite (`state.db`): one JSON document per incident, numbered per year.

use async_trait::async_trait;
use chrono::Datelike;
use liftoff_core::audit::Change;
use liftoff_core::incidents::IncidentStore;
use liftoff_core::incidents::{Incident, format_id};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use super::db::sql_err;
use super::{SqliteState, write_audit};
use crate::codec::{doc_from_text, doc_text, ms};

#[async_trait]
impl IncidentStore for SqliteState {
    async fn create_incident(
        &self,
        incident: &Incident,
        change: &Change,
    ) -> Result<Incident, StoreError> {
        let (mut incident, mut change) = (incident.clone(), change.clone());
        self.db
            .write(move |tx| {
                let year = incident.created_at.year();
                let seq: i64 = tx
                    .query_row(
                        "INSERT INTO incident_sequences (year, last) VALUES (?1, 1)
                         ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
                        [year],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                incident.id = format_id(year, seq);
                tx.execute(
                    "INSERT INTO incidents (id, year, seq, status, severity, started_at, resolved_at, version, document)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        incident.id,
                        year,
                        seq,
                        incident.status.as_str(),
                        incident.severity.as_str(),
                        ms(incident.started_at),
                        incident.resolved_at.map(ms),
                        incident.version,
                        doc_text(&incident)?
                    ],
                )
                .map_err(sql_err)?;
                change.target_id.clone_from(&incident.id);
                write_audit(tx, &change)?;
                Ok(incident)
            })
            .await
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let id = id.to_owned();
        let doc: Option<String> = self
            .db
            .read(move |c| {
                c.prepare_cached("SELECT document FROM incidents WHERE id = ?1")
                    .map_err(sql_err)?
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)
            })
            .await?;
        doc.as_deref()
            .map(|d| doc_from_text(d, "incident"))
            .transpose()
    }

    async fn list_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let docs: Vec<String> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT document FROM incidents ORDER BY started_at DESC, year DESC, seq DESC",
                    )
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        docs.iter().map(|d| doc_from_text(d, "incident")).collect()
    }

    async fn update_incident(
        &self,
        incident: &Incident,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (json, incident, change) = (doc_text(incident)?, incident.clone(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE incidents SET status = ?2, severity = ?3, started_at = ?4, resolved_at = ?5,
                            version = ?6, document = ?7
                         WHERE id = ?1 AND version = ?8",
                        params![
                            incident.id,
                            incident.status.as_str(),
                            incident.severity.as_str(),
                            ms(incident.started_at),
                            incident.resolved_at.map(ms),
                            incident.version,
                            json,
                            expected_version
                        ],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }
}
