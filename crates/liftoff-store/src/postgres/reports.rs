//! Report schedules and the report archive on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::reports::Format;
use liftoff_core::reports::schedule::Schedule;
use liftoff_core::reports::service::{ArchivedReport, NewArchive, ReportStore};
use liftoff_core::store::StoreError;
use tokio_postgres::Row;

use super::{PgState, pg_err};
use crate::codec::{doc_from_value, doc_value, ms};
use crate::sqlite::reports::{archived, body_column};

const ARCHIVED_COLUMNS: &str = "id, kind, title, summary, from_ms, to_ms, generated_ms, \
                                schedule_id, period_ms, length(pdf)::BIGINT";

fn archived_from(r: &Row) -> Result<ArchivedReport, StoreError> {
    archived((
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
    ))
}

#[async_trait]
impl ReportStore for PgState {
    async fn create_schedule(&self, s: &Schedule) -> Result<Schedule, StoreError> {
        let mut s = s.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        s.id = tx
            .query_one(
                "INSERT INTO report_schedules (document) VALUES ('{}') RETURNING id",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        tx.execute(
            "UPDATE report_schedules SET document = $2 WHERE id = $1",
            &[&s.id, &doc_value(&s)?],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(s)
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT document FROM report_schedules ORDER BY id", &[])
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "report schedule"))
            .collect()
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM report_schedules WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?
            > 0)
    }

    async fn set_last_period(&self, id: i64, period: DateTime<Utc>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let Some(row) = tx
            .query_opt(
                "SELECT document FROM report_schedules WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(pg_err)?
        else {
            return Ok(());
        };
        let mut s: Schedule = doc_from_value(row.get(0), "report schedule")?;
        if s.last_period.is_some_and(|p| p >= period) {
            return Ok(());
        }
        s.last_period = Some(period);
        tx.execute(
            "UPDATE report_schedules SET document = $2 WHERE id = $1",
            &[&id, &doc_value(&s)?],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn archive(&self, report: &NewArchive, keep: usize) -> Result<i64, StoreError> {
        let m = &report.meta;
        let period = m.period.map(ms);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // A concurrent delivery of the same period loses the insert and reads the winner's id.
        let inserted = tx
            .query_opt(
                "INSERT INTO report_archive (kind, title, summary, from_ms, to_ms, generated_ms,
                     schedule_id, period_ms, json, markdown, html, pdf)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (schedule_id, period_ms) WHERE schedule_id IS NOT NULL DO NOTHING
                 RETURNING id",
                &[
                    &m.kind.as_str(),
                    &m.title,
                    &m.summary,
                    &ms(m.from),
                    &ms(m.to),
                    &ms(m.generated_at),
                    &m.schedule_id,
                    &period,
                    &report.json,
                    &report.markdown,
                    &report.html,
                    &report.pdf,
                ],
            )
            .await
            .map_err(pg_err)?;
        let id: i64 = match inserted {
            Some(r) => r.get(0),
            None => tx
                .query_one(
                    "SELECT id FROM report_archive WHERE schedule_id = $1 AND period_ms = $2",
                    &[&m.schedule_id, &period],
                )
                .await
                .map_err(pg_err)?
                .get(0),
        };
        tx.execute(
            "DELETE FROM report_archive WHERE id <= (
                 SELECT id FROM report_archive ORDER BY id DESC LIMIT 1 OFFSET $1)",
            &[&i64::try_from(keep).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn archive_list(&self, limit: usize) -> Result<Vec<ArchivedReport>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {ARCHIVED_COLUMNS} FROM report_archive ORDER BY id DESC LIMIT $1"),
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(archived_from).collect()
    }

    async fn archived(&self, id: i64) -> Result<Option<ArchivedReport>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {ARCHIVED_COLUMNS} FROM report_archive WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(archived_from).transpose()
    }

    async fn archived_body(&self, id: i64, format: Format) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let column = body_column(format);
        let row = client
            .query_opt(
                &format!("SELECT {column} FROM report_archive WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }
}
