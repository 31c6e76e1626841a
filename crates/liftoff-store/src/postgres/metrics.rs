//! Request metrics on PostgreSQL.

use async_trait::async_trait;
use liftoff_core::monitoring::requests::CellKey;
use liftoff_core::monitoring::sketch::DDSketch;
use liftoff_core::store::{MetricsStore, RequestCell, StoreError};

use super::{PgState, pg_err};

fn sketch_from(bytes: &[u8]) -> Result<DDSketch, StoreError> {
    DDSketch::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("stored sketch: {e}")))
}

#[async_trait]
impl MetricsStore for PgState {
    async fn merge_request_minutes(&self, cells: &[RequestCell]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (k, sketch) in cells {
            let status = i16::try_from(k.status)
                .map_err(|_| StoreError::Corrupt("status out of range".into()))?;
            // The row lock serialises replicas merging into the same minute.
            let stored = tx
                .query_opt(
                    "SELECT sketch FROM request_minutes
                     WHERE service = $1 AND method = $2 AND route = $3 AND status = $4 AND minute = $5 FOR UPDATE",
                    &[&k.service, &k.method, &k.route, &status, &k.minute],
                )
                .await
                .map_err(pg_err)?;
            let mut merged = sketch.clone();
            if let Some(row) = stored {
                let bytes: Vec<u8> = row.get(0);
                merged
                    .merge(&sketch_from(&bytes)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            tx.execute(
                "INSERT INTO request_minutes (service, method, route, status, minute, count, sketch)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (service, method, route, status, minute)
                 DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
                &[&k.service, &k.method, &k.route, &status, &k.minute, &(merged.count() as i64), &merged.to_bytes()],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn request_minutes(&self, from: i64, to: i64) -> Result<Vec<RequestCell>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT service, method, route, status, minute, sketch FROM request_minutes WHERE minute >= $1 AND minute < $2",
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                let status: i16 = r.get(3);
                let bytes: Vec<u8> = r.get(5);
                Ok((
                    CellKey {
                        service: r.get(0),
                        method: r.get(1),
                        route: r.get(2),
                        status: status as u16,
                        minute: r.get(4),
                    },
                    sketch_from(&bytes)?,
                ))
            })
            .collect()
    }

    async fn request_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT DISTINCT service, route FROM request_minutes", &[])
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn close_metrics(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn metrics_backend(&self) -> &'static str {
        "postgres"
    }
}
