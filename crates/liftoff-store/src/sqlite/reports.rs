//! Report schedules and the report archive on SQLite (`state.db`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::reports::schedule::Schedule;
use liftoff_core::reports::service::{ArchivedReport, NewArchive, ReportStore};
use liftoff_core::reports::{Format, ReportKind};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteState;
use super::db::sql_err;
use crate::codec::{corrupt, doc_from_text, doc_text, from_ms, ms};

const ARCHIVED_COLUMNS: &str = "id, kind, title, summary, from_ms, to_ms, generated_ms, \
                                schedule_id, period_ms, length(pdf)";

/// The raw columns of an archived report, checked after the read.
type ArchivedRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

fn archived_row(r: &Row<'_>) -> rusqlite::Result<ArchivedRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

pub(crate) fn archived(row: ArchivedRow) -> Result<ArchivedReport, StoreError> {
    let (id, kind, title, summary, from, to, generated, schedule_id, period, pdf) = row;
    Ok(ArchivedReport {
        id,
        kind: ReportKind::parse(&kind).ok_or_else(|| corrupt(format!("report kind `{kind}`")))?,
        title,
        summary,
        from: from_ms(from),
        to: from_ms(to),
        generated_at: from_ms(generated),
        schedule_id,
        period: period.map(from_ms),
        pdf_bytes: u64::try_from(pdf).unwrap_or(0),
    })
}

/// The archive column holding `format`.
pub(crate) fn body_column(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Md => "markdown",
        Format::Html => "html",
        Format::Pdf => "pdf",
    }
}

#[async_trait]
impl ReportStore for SqliteState {
    async fn create_schedule(&self, s: &Schedule) -> Result<Schedule, StoreError> {
        let mut s = s.clone();
        self.db
            .write(move |tx| {
                tx.execute("INSERT INTO report_schedules (document) VALUES ('{}')", [])
                    .map_err(sql_err)?;
                s.id = tx.last_insert_rowid();
                tx.execute(
                    "UPDATE report_schedules SET document = ?2 WHERE id = ?1",
                    params![s.id, doc_text(&s)?],
                )
                .map_err(sql_err)?;
                Ok(s)
            })
            .await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let docs: Vec<String> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached("SELECT document FROM report_schedules ORDER BY id")
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        docs.iter()
            .map(|d| doc_from_text(d, "report schedule"))
            .collect()
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx
                    .execute("DELETE FROM report_schedules WHERE id = ?1", [id])
                    .map_err(sql_err)?
                    > 0)
            })
            .await
    }

    async fn set_last_period(&self, id: i64, period: DateTime<Utc>) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let doc: Option<String> = tx
                    .query_row(
                        "SELECT document FROM report_schedules WHERE id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_err)?;
                let Some(doc) = doc else { return Ok(()) };
                let mut s: Schedule = doc_from_text(&doc, "report schedule")?;
                if s.last_period.is_some_and(|p| p >= period) {
                    return Ok(());
                }
                s.last_period = Some(period);
                tx.execute(
                    "UPDATE report_schedules SET document = ?2 WHERE id = ?1",
                    params![id, doc_text(&s)?],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn archive(&self, report: &NewArchive, keep: usize) -> Result<i64, StoreError> {
        let r = report.clone();
        self.db
            .write(move |tx| {
                let m = &r.meta;
                let period = m.period.map(ms);
                if let (Some(schedule), Some(period)) = (m.schedule_id, period) {
                    let found: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM report_archive WHERE schedule_id = ?1 AND period_ms = ?2",
                            params![schedule, period],
                            |row| row.get(0),
                        )
                        .optional()
                        .map_err(sql_err)?;
                    if let Some(id) = found {
                        return Ok(id);
                    }
                }
                tx.execute(
                    "INSERT INTO report_archive (kind, title, summary, from_ms, to_ms, generated_ms,
                         schedule_id, period_ms, json, markdown, html, pdf)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        m.kind.as_str(),
                        m.title,
                        m.summary,
                        ms(m.from),
                        ms(m.to),
                        ms(m.generated_at),
                        m.schedule_id,
                        period,
                        r.json,
                        r.markdown,
                        r.html,
                        r.pdf
                    ],
                )
                .map_err(sql_err)?;
                let id = tx.last_insert_rowid();
                tx.execute(
                    "DELETE FROM report_archive WHERE id <= (
                         SELECT id FROM report_archive ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                    [i64::try_from(keep).unwrap_or(i64::MAX)],
                )
                .map_err(sql_err)?;
                Ok(id)
            })
            .await
    }

    async fn archive_list(&self, limit: usize) -> Result<Vec<ArchivedReport>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<ArchivedRow> = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {ARCHIVED_COLUMNS} FROM report_archive ORDER BY id DESC LIMIT ?1"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt.query_map([limit], archived_row).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter().map(archived).collect()
    }

    async fn archived(&self, id: i64) -> Result<Option<ArchivedReport>, StoreError> {
        let row: Option<ArchivedRow> = self
            .db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {ARCHIVED_COLUMNS} FROM report_archive WHERE id = ?1"
                ))
                .map_err(sql_err)?
                .query_row([id], archived_row)
                .optional()
                .map_err(sql_err)
            })
            .await?;
        row.map(archived).transpose()
    }

    async fn archived_body(&self, id: i64, format: Format) -> Result<Option<Vec<u8>>, StoreError> {
        let column = body_column(format);
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {column} FROM report_archive WHERE id = ?1"
                ))
                .map_err(sql_err)?
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(sql_err)
            })
            .await
    }
}
