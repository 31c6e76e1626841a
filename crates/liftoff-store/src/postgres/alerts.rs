//! `AlertStore` on PostgreSQL. Several replicas share the database: the lease row decides which
//! one evaluates and delivers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::alerts::AlertStore;
use liftoff_core::alerts::model::{Alert, Delivery, DeliveryKind, DeliveryStatus, DocKind};
use liftoff_core::audit::Change;
use liftoff_core::lease::LeaseStore;
use liftoff_core::store::StoreError;
use tokio_postgres::Row;

use super::{PgState, corrupt, pg_err, write_audit};
use crate::codec::doc_value;

fn alert_from_row(r: &Row) -> Result<Alert, StoreError> {
    let doc: serde_json::Value = r.get(1);
    let mut a: Alert =
        serde_json::from_value(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    a.id = r.get(0);
    Ok(a)
}

const DELIVERY_COLUMNS: &str = "id, channel_id, alert_id, kind, payload, attempts, next_attempt_at, status, last_error, created_at, sent_at, response_excerpt";

fn delivery_from_row(r: &Row) -> Result<Delivery, StoreError> {
    let kind: String = r.get(3);
    let status: String = r.get(7);
    let attempts: i32 = r.get(5);
    Ok(Delivery {
        id: r.get(0),
        channel_id: r.get(1),
        alert_id: r.get(2),
        kind: DeliveryKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        payload: r.get(4),
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: r.get(6),
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        last_error: r.get(8),
        created_at: r.get(9),
        sent_at: r.get(10),
        response_excerpt: r.get(11),
    })
}

async fn insert_delivery(
    tx: &deadpool_postgres::Transaction<'_>,
    d: &Delivery,
) -> Result<i64, StoreError> {
    let attempts = i32::try_from(d.attempts).unwrap_or(i32::MAX);
    Ok(tx
        .query_one(
            "INSERT INTO notification_outbox (channel_id, alert_id, kind, payload, attempts, next_attempt_at, status, last_error, created_at, sent_at, response_excerpt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &d.channel_id,
                &d.alert_id,
                &d.kind.as_str(),
                &d.payload,
                &attempts,
                &d.next_attempt_at,
                &d.status.as_str(),
                &d.last_error,
                &d.created_at,
                &d.sent_at,
                &d.response_excerpt,
            ],
        )
        .await
        .map_err(pg_err)?
        .get(0))
}

fn status_str(a: &Alert) -> Result<String, StoreError> {
    Ok(doc_value(&a.status)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[async_trait]
impl AlertStore for PgState {
    async fn list_alert_docs(
        &self,
        kind: DocKind,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                &format!("SELECT id, doc FROM {} ORDER BY id", kind.table()),
                &[],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn insert_alert_doc(
        &self,
        kind: DocKind,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let id: i64 = tx
            .query_one(
                &format!(
                    "INSERT INTO {} (doc) VALUES ($1) RETURNING id",
                    kind.table()
                ),
                &[doc],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let mut change = change.clone();
        change.target_id = id.to_string();
        if let Some(serde_json::Value::Object(o)) = &mut change.after {
            o.insert("id".into(), id.into());
        }
        write_audit(&tx, &change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn update_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                &format!("UPDATE {} SET doc = $2 WHERE id = $1", kind.table()),
                &[&id, doc],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn replace_alert_docs(
        &self,
        kind: DocKind,
        docs: &[(i64, serde_json::Value)],
        change: &Change,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let sql = format!("UPDATE {} SET doc = $2 WHERE id = $1", kind.table());
        for (id, doc) in docs {
            let n = tx.execute(&sql, &[id, doc]).await.map_err(pg_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "{} {id} is gone",
                    kind.table()
                )));
            }
        }
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(())
    }

    async fn delete_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                &format!("DELETE FROM {} WHERE id = $1", kind.table()),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn mark_once(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO alert_markers (name, at) VALUES ($1, now()) ON CONFLICT (name) DO NOTHING",
                &[&name],
            )
            .await
            .map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn save_alert(&self, alert: &Alert, deliveries: &[Delivery]) -> Result<i64, StoreError> {
        let status = status_str(alert)?;
        let doc = doc_value(alert)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let id: i64 = if alert.id == 0 {
            tx.query_one(
                "INSERT INTO alerts (rule_id, status, started_at, doc) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&alert.rule_id, &status, &alert.started_at, &doc],
            )
            .await
            .map_err(pg_err)?
            .get(0)
        } else {
            // The acknowledgement stays as stored: only `ack_alert` writes it, and an
            // evaluation that read the alert before an ack must not write it back unacked.
            tx.execute(
                "UPDATE alerts SET status = $2,
                     doc = $3 || jsonb_build_object('acked_by', doc->'acked_by', 'acked_at', doc->'acked_at')
                 WHERE id = $1",
                &[&alert.id, &status, &doc],
            )
            .await
            .map_err(pg_err)?;
            alert.id
        };
        for d in deliveries {
            let mut d = d.clone();
            d.alert_id = Some(id);
            insert_delivery(&tx, &d).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn ack_alert(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, doc FROM alerts WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(pg_err)?
        else {
            return Ok(false);
        };
        let mut a = alert_from_row(&row)?;
        a.acked_by = Some(by.to_owned());
        a.acked_at = Some(at);
        tx.execute(
            "UPDATE alerts SET doc = $2 WHERE id = $1",
            &[&id, &doc_value(&a)?],
        )
        .await
        .map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn list_alerts(&self, active_only: bool, limit: usize) -> Result<Vec<Alert>, StoreError> {
        let client = self.client().await?;
        let sql = if active_only {
            "SELECT id, doc FROM alerts WHERE status <> 'resolved' ORDER BY id DESC LIMIT $1"
        } else {
            "SELECT id, doc FROM alerts ORDER BY id DESC LIMIT $1"
        };
        client
            .query(sql, &[&(limit as i64)])
            .await
            .map_err(pg_err)?
            .iter()
            .map(alert_from_row)
            .collect()
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt("SELECT id, doc FROM alerts WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?
            .as_ref()
            .map(alert_from_row)
            .transpose()
    }

    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let id = insert_delivery(&tx, delivery).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn enqueue_once(
        &self,
        marker: &str,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let fresh = tx
            .execute(
                "INSERT INTO alert_markers (name, at) VALUES ($1, now()) ON CONFLICT (name) DO NOTHING",
                &[&marker],
            )
            .await
            .map_err(pg_err)?
            == 1;
        if fresh {
            for d in deliveries {
                insert_delivery(&tx, d).await?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(fresh)
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM notification_outbox
                     WHERE status = 'pending' AND next_attempt_at <= $1
                     ORDER BY next_attempt_at, id LIMIT $2"
                ),
                &[&now, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let client = self.client().await?;
        let attempts = i32::try_from(d.attempts).unwrap_or(i32::MAX);
        client
            .execute(
                "UPDATE notification_outbox SET attempts = $2, next_attempt_at = $3, status = $4,
                     last_error = $5, sent_at = $6, response_excerpt = $7 WHERE id = $1",
                &[
                    &d.id,
                    &attempts,
                    &d.next_attempt_at,
                    &d.status.as_str(),
                    &d.last_error,
                    &d.sent_at,
                    &d.response_excerpt,
                ],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn list_deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM notification_outbox ORDER BY id DESC LIMIT $1"
                ),
                &[&(limit as i64)],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(delivery_from_row)
            .collect()
    }
}

#[async_trait]
impl LeaseStore for PgState {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Taken when free, expired or already ours; the row lock serialises competing replicas.
        let row = tx
            .query_opt(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                 WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < $4
                 RETURNING holder",
                &[&name, &holder, &until, &now],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
