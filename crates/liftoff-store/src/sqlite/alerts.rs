//! `AlertStore` on SQLite (`state.db`). One process owns the file, so the lease is always held.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::alerts::AlertStore;
use liftoff_core::alerts::model::{Alert, Delivery, DeliveryKind, DeliveryStatus, DocKind};
use liftoff_core::audit::Change;
use liftoff_core::lease::LeaseStore;
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, Row, params};

use super::db::sql_err;
use super::{SqliteState, conversion, time, write_audit};
use crate::codec::{doc_text, ms};

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, rusqlite::Error> {
    serde_json::from_str(s).map_err(|e| conversion("json", e.to_string()))
}

fn alert_from_row(r: &Row<'_>) -> Result<Alert, rusqlite::Error> {
    let mut a: Alert = parse(&r.get::<_, String>(1)?)?;
    a.id = r.get(0)?;
    Ok(a)
}

const DELIVERY_COLUMNS: &str = "id, channel_id, alert_id, kind, payload, attempts, next_attempt_at, status, last_error, created_at, sent_at, response_excerpt";

fn delivery_from_row(r: &Row<'_>) -> Result<Delivery, rusqlite::Error> {
    let kind: String = r.get(3)?;
    let status: String = r.get(7)?;
    let sent: Option<i64> = r.get(10)?;
    Ok(Delivery {
        id: r.get(0)?,
        channel_id: r.get(1)?,
        alert_id: r.get(2)?,
        kind: DeliveryKind::parse(&kind).ok_or_else(|| conversion("kind", kind))?,
        payload: parse(&r.get::<_, String>(4)?)?,
        attempts: r.get(5)?,
        next_attempt_at: time(r.get(6)?)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| conversion("status", status))?,
        last_error: r.get(8)?,
        created_at: time(r.get(9)?)?,
        sent_at: sent.map(time).transpose()?,
        response_excerpt: r.get(11)?,
    })
}

fn insert_delivery(tx: &rusqlite::Transaction<'_>, d: &Delivery) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO notification_outbox (channel_id, alert_id, kind, payload, attempts, next_attempt_at, status, last_error, created_at, sent_at, response_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            d.channel_id,
            d.alert_id,
            d.kind.as_str(),
            doc_text(&d.payload)?,
            d.attempts,
            ms(d.next_attempt_at),
            d.status.as_str(),
            d.last_error,
            ms(d.created_at),
            d.sent_at.map(ms),
            d.response_excerpt
        ],
    )
    .map_err(sql_err)?;
    Ok(tx.last_insert_rowid())
}

fn status_str(a: &Alert) -> Result<String, StoreError> {
    Ok(doc_text(&a.status)?.trim_matches('"').to_owned())
}

#[async_trait]
impl AlertStore for SqliteState {
    async fn list_alert_docs(
        &self,
        kind: DocKind,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!("SELECT id, doc FROM {} ORDER BY id", kind.table()))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, parse(&r.get::<_, String>(1)?)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn insert_alert_doc(
        &self,
        kind: DocKind,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<i64, StoreError> {
        let (doc, mut change) = (doc_text(doc)?, change.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    &format!("INSERT INTO {} (doc) VALUES (?1)", kind.table()),
                    [doc],
                )
                .map_err(sql_err)?;
                let id = tx.last_insert_rowid();
                change.target_id = id.to_string();
                if let Some(serde_json::Value::Object(o)) = &mut change.after {
                    o.insert("id".into(), id.into());
                }
                write_audit(tx, &change)?;
                Ok(id)
            })
            .await
    }

    async fn update_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        doc: &serde_json::Value,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (doc, change) = (doc_text(doc)?, change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        &format!("UPDATE {} SET doc = ?2 WHERE id = ?1", kind.table()),
                        params![id, doc],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn replace_alert_docs(
        &self,
        kind: DocKind,
        docs: &[(i64, serde_json::Value)],
        change: &Change,
    ) -> Result<(), StoreError> {
        let docs = docs
            .iter()
            .map(|(id, d)| Ok((*id, doc_text(d)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let change = change.clone();
        self.db
            .write(move |tx| {
                for (id, doc) in &docs {
                    let n = tx
                        .execute(
                            &format!("UPDATE {} SET doc = ?2 WHERE id = ?1", kind.table()),
                            params![id, doc],
                        )
                        .map_err(sql_err)?;
                    if n != 1 {
                        return Err(StoreError::Conflict(format!(
                            "{} {id} is gone",
                            kind.table()
                        )));
                    }
                }
                write_audit(tx, &change)?;
                Ok(())
            })
            .await
    }

    async fn delete_alert_doc(
        &self,
        kind: DocKind,
        id: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let change = change.clone();
        self.db
            .write(move |tx| {
                let before: Option<String> = tx
                    .query_row(
                        &format!("SELECT doc FROM {} WHERE id = ?1", kind.table()),
                        [id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_err)?;
                if before.is_none() {
                    return Ok(false);
                }
                tx.execute(&format!("DELETE FROM {} WHERE id = ?1", kind.table()), [id])
                    .map_err(sql_err)?;
                write_audit(tx, &change)?;
                Ok(true)
            })
            .await
    }

    async fn mark_once(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO alert_markers (name, at) VALUES (?1, ?2)",
                        params![name, ms(Utc::now())],
                    )
                    .map_err(sql_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn save_alert(&self, alert: &Alert, deliveries: &[Delivery]) -> Result<i64, StoreError> {
        let (alert, mut deliveries) = (alert.clone(), deliveries.to_vec());
        let status = status_str(&alert)?;
        self.db
            .write(move |tx| {
                let id = if alert.id == 0 {
                    tx.execute(
                        "INSERT INTO alerts (rule_id, status, started_at, doc) VALUES (?1, ?2, ?3, ?4)",
                        params![alert.rule_id, status, ms(alert.started_at), doc_text(&alert)?],
                    )
                    .map_err(sql_err)?;
                    tx.last_insert_rowid()
                } else {
                    // The acknowledgement stays as stored: only `ack_alert` writes it, and an
                    // evaluation that read the alert before an ack must not write it back unacked.
                    tx.execute(
                        "UPDATE alerts SET status = ?2,
                             doc = json_set(?3, '$.acked_by', json_extract(doc, '$.acked_by'),
                                 '$.acked_at', json_extract(doc, '$.acked_at'))
                         WHERE id = ?1",
                        params![alert.id, status, doc_text(&alert)?],
                    )
                    .map_err(sql_err)?;
                    alert.id
                };
                for d in &mut deliveries {
                    d.alert_id = Some(id);
                    insert_delivery(tx, d)?;
                }
                Ok(id)
            })
            .await
    }

    async fn ack_alert(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (by, change) = (by.to_owned(), change.clone());
        self.db
            .write(move |tx| {
                let doc: Option<String> = tx
                    .query_row("SELECT doc FROM alerts WHERE id = ?1", [id], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)?;
                let Some(doc) = doc else { return Ok(false) };
                let mut a: Alert = parse(&doc).map_err(sql_err)?;
                a.acked_by = Some(by);
                a.acked_at = Some(at);
                tx.execute(
                    "UPDATE alerts SET doc = ?2 WHERE id = ?1",
                    params![id, doc_text(&a)?],
                )
                .map_err(sql_err)?;
                write_audit(tx, &change)?;
                Ok(true)
            })
            .await
    }

    async fn list_alerts(&self, active_only: bool, limit: usize) -> Result<Vec<Alert>, StoreError> {
        self.db
            .read(move |c| {
                let sql = if active_only {
                    "SELECT id, doc FROM alerts WHERE status <> 'resolved' ORDER BY id DESC LIMIT ?1"
                } else {
                    "SELECT id, doc FROM alerts ORDER BY id DESC LIMIT ?1"
                };
                let mut stmt = c.prepare_cached(sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map([limit as i64], alert_from_row)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached("SELECT id, doc FROM alerts WHERE id = ?1")
                    .map_err(sql_err)?
                    .query_row([id], alert_from_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<i64, StoreError> {
        let d = delivery.clone();
        self.db.write(move |tx| insert_delivery(tx, &d)).await
    }

    async fn enqueue_once(
        &self,
        marker: &str,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let (marker, deliveries) = (marker.to_owned(), deliveries.to_vec());
        self.db
            .write(move |tx| {
                let fresh = tx
                    .execute(
                        "INSERT OR IGNORE INTO alert_markers (name, at) VALUES (?1, ?2)",
                        params![marker, ms(Utc::now())],
                    )
                    .map_err(sql_err)?
                    == 1;
                if fresh {
                    for d in &deliveries {
                        insert_delivery(tx, d)?;
                    }
                }
                Ok(fresh)
            })
            .await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM notification_outbox
                         WHERE status = 'pending' AND next_attempt_at <= ?1
                         ORDER BY next_attempt_at, id LIMIT ?2"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![ms(now), limit as i64], delivery_from_row)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let d = delivery.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE notification_outbox SET attempts = ?2, next_attempt_at = ?3, status = ?4,
                         last_error = ?5, sent_at = ?6, response_excerpt = ?7 WHERE id = ?1",
                    params![
                        d.id,
                        d.attempts,
                        ms(d.next_attempt_at),
                        d.status.as_str(),
                        d.last_error,
                        d.sent_at.map(ms),
                        d.response_excerpt
                    ],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn list_deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM notification_outbox ORDER BY id DESC LIMIT ?1"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([limit as i64], delivery_from_row)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }
}

#[async_trait]
impl LeaseStore for SqliteState {
    async fn try_lease(
        &self,
        _name: &str,
        _holder: &str,
        _until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // One process owns a SQLite file: it always holds the lease.
        Ok(true)
    }

    async fn release_lease(&self, _name: &str, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }
}
