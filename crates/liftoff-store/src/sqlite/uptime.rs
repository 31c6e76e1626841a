//! Uptime monitors, checks, rollups and downtime periods on SQLite (`state.db`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::audit::Change;
use liftoff_core::store::StoreError;
use liftoff_core::uptime::UptimeStore;
use liftoff_core::uptime::{
    CheckRecord, Downtime, DowntimeEdge, HttpMethod, Monitor, MonitorState, MonitorStatus,
    Resolution, Rollup,
};
use rusqlite::{OptionalExtension, Row, params};

use super::db::sql_err;
use super::{SqliteState, conversion, opt_time, time, write_audit};
use crate::codec::{expected_json, ms};

const COLUMNS: &str =
    "id, name, url, method, interval_seconds, timeout_seconds, expected_status, keyword,
    retries, enabled, created_at, updated_at, status, consecutive_failures, failing_since,
    last_checked_at, last_error";

fn monitor_from_row(r: &Row<'_>) -> Result<Monitor, rusqlite::Error> {
    let method: String = r.get(3)?;
    let status: String = r.get(12)?;
    let expected: Option<String> = r.get(6)?;
    Ok(Monitor {
        id: r.get(0)?,
        name: r.get(1)?,
        url: r.get(2)?,
        method: HttpMethod::parse(&method).ok_or_else(|| conversion("method", method))?,
        interval_seconds: r.get(4)?,
        timeout_seconds: r.get(5)?,
        expected_status: expected
            .map(|s| serde_json::from_str(&s).map_err(|_| conversion("expected_status", s)))
            .transpose()?,
        keyword: r.get(7)?,
        retries: r.get(8)?,
        enabled: r.get(9)?,
        created_at: time(r.get(10)?)?,
        updated_at: time(r.get(11)?)?,
        state: MonitorState {
            status: MonitorStatus::parse(&status).ok_or_else(|| conversion("status", status))?,
            consecutive_failures: r.get(13)?,
            failing_since: opt_time(r.get(14)?)?,
            last_checked_at: opt_time(r.get(15)?)?,
            last_error: r.get(16)?,
        },
    })
}

fn check_from_row(r: &Row<'_>) -> Result<CheckRecord, rusqlite::Error> {
    Ok(CheckRecord {
        monitor_id: r.get(0)?,
        at: time(r.get(1)?)?,
        up: r.get(2)?,
        status_code: r.get(3)?,
        response_ms: r.get(4)?,
        error: r.get(5)?,
    })
}

#[async_trait]
impl UptimeStore for SqliteState {
    async fn list_monitors(&self) -> Result<Vec<Monitor>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM uptime_monitors ORDER BY id"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], monitor_from_row).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn get_monitor(&self, id: i64) -> Result<Option<Monitor>, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM uptime_monitors WHERE id = ?1"
                ))
                .map_err(sql_err)?
                .query_row([id], monitor_from_row)
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn insert_monitor(&self, m: &Monitor, change: &Change) -> Result<i64, StoreError> {
        let (m, mut change) = (m.clone(), change.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO uptime_monitors (name, url, method, interval_seconds, timeout_seconds,
                        expected_status, keyword, retries, enabled, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        m.name,
                        m.url,
                        m.method.as_str(),
                        m.interval_seconds,
                        m.timeout_seconds,
                        expected_json(&m),
                        m.keyword,
                        m.retries,
                        m.enabled,
                        ms(m.created_at),
                        ms(m.updated_at)
                    ],
                )
                .map_err(sql_err)?;
                let id = tx.last_insert_rowid();
                change.target_id = id.to_string();
                write_audit(tx, &change)?;
                Ok(id)
            })
            .await
    }

    async fn update_monitor(&self, m: &Monitor, change: &Change) -> Result<bool, StoreError> {
        let (m, change) = (m.clone(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE uptime_monitors SET name = ?2, url = ?3, method = ?4, interval_seconds = ?5,
                            timeout_seconds = ?6, expected_status = ?7, keyword = ?8, retries = ?9,
                            enabled = ?10, updated_at = ?11
                         WHERE id = ?1",
                        params![
                            m.id,
                            m.name,
                            m.url,
                            m.method.as_str(),
                            m.interval_seconds,
                            m.timeout_seconds,
                            expected_json(&m),
                            m.keyword,
                            m.retries,
                            m.enabled,
                            ms(m.updated_at)
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

    async fn delete_monitor(&self, id: i64, change: &Change) -> Result<bool, StoreError> {
        let change = change.clone();
        self.db
            .write(move |tx| {
                let n = tx
                    .execute("DELETE FROM uptime_monitors WHERE id = ?1", [id])
                    .map_err(sql_err)?;
                if n == 1 {
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn record_check(
        &self,
        c: &CheckRecord,
        state: &MonitorState,
        downtime: DowntimeEdge,
    ) -> Result<bool, StoreError> {
        let (c, state) = (c.clone(), state.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE uptime_monitors SET status = ?2, consecutive_failures = ?3,
                            failing_since = ?4, last_checked_at = ?5, last_error = ?6
                         WHERE id = ?1",
                        params![
                            c.monitor_id,
                            state.status.as_str(),
                            state.consecutive_failures,
                            state.failing_since.map(ms),
                            state.last_checked_at.map(ms),
                            state.last_error
                        ],
                    )
                    .map_err(sql_err)?;
                if n == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO uptime_checks (monitor_id, at, up, status_code, response_ms, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![c.monitor_id, ms(c.at), c.up, c.status_code, c.response_ms, c.error],
                )
                .map_err(sql_err)?;
                for res in [Resolution::Hour, Resolution::Day] {
                    tx.execute(
                        "INSERT INTO uptime_rollups (monitor_id, resolution, bucket, up, total, sum_ms, max_ms)
                         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)
                         ON CONFLICT (monitor_id, resolution, bucket) DO UPDATE SET
                            up = up + excluded.up, total = total + 1,
                            sum_ms = sum_ms + excluded.sum_ms, max_ms = MAX(max_ms, excluded.max_ms)",
                        params![
                            c.monitor_id,
                            res.minutes(),
                            res.bucket_ms(c.at),
                            i64::from(c.up),
                            c.response_ms
                        ],
                    )
                    .map_err(sql_err)?;
                }
                match downtime {
                    DowntimeEdge::None => {}
                    DowntimeEdge::Open(at) => {
                        tx.execute(
                            "INSERT INTO uptime_downtimes (monitor_id, started_at) VALUES (?1, ?2)",
                            params![c.monitor_id, ms(at)],
                        )
                        .map_err(sql_err)?;
                    }
                    DowntimeEdge::Close(at) => {
                        tx.execute(
                            "UPDATE uptime_downtimes SET ended_at = ?2 WHERE monitor_id = ?1 AND ended_at IS NULL",
                            params![c.monitor_id, ms(at)],
                        )
                        .map_err(sql_err)?;
                    }
                }
                Ok(true)
            })
            .await
    }

    async fn uptime_checks(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT monitor_id, at, up, status_code, response_ms, error FROM uptime_checks
                         WHERE monitor_id = ?1 AND at >= ?2 ORDER BY at DESC LIMIT ?3",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![monitor_id, ms(from), limit as i64], check_from_row)
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn uptime_rollups(
        &self,
        monitor_id: i64,
        resolution: Resolution,
        from: DateTime<Utc>,
    ) -> Result<Vec<Rollup>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT bucket, up, total, sum_ms, max_ms FROM uptime_rollups
                         WHERE monitor_id = ?1 AND resolution = ?2 AND bucket >= ?3 ORDER BY bucket",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(
                        params![monitor_id, resolution.minutes(), resolution.bucket_ms(from)],
                        |r| {
                            Ok(Rollup {
                                start: time(r.get(0)?)?,
                                up: r.get::<_, i64>(1)? as u64,
                                total: r.get::<_, i64>(2)? as u64,
                                sum_ms: r.get::<_, i64>(3)? as u64,
                                max_ms: r.get(4)?,
                            })
                        },
                    )
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn downtimes(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
    ) -> Result<Vec<Downtime>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT started_at, ended_at FROM uptime_downtimes
                         WHERE monitor_id = ?1 AND (ended_at IS NULL OR ended_at >= ?2)
                         ORDER BY started_at DESC, id DESC",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![monitor_id, ms(from)], |r| {
                        Ok(Downtime {
                            started_at: time(r.get(0)?)?,
                            ended_at: opt_time(r.get(1)?)?,
                        })
                    })
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await
    }

    async fn purge_uptime(
        &self,
        checks_before: DateTime<Utc>,
        hours_before: DateTime<Utc>,
        days_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                let mut n = tx
                    .execute(
                        "DELETE FROM uptime_checks WHERE at < ?1",
                        [ms(checks_before)],
                    )
                    .map_err(sql_err)?;
                n += tx
                    .execute(
                        "DELETE FROM uptime_rollups WHERE resolution = 60 AND bucket < ?1",
                        [ms(hours_before)],
                    )
                    .map_err(sql_err)?;
                n += tx
                    .execute(
                        "DELETE FROM uptime_rollups WHERE resolution = 1440 AND bucket < ?1",
                        [ms(days_before)],
                    )
                    .map_err(sql_err)?;
                n += tx
                    .execute(
                        "DELETE FROM uptime_downtimes WHERE ended_at IS NOT NULL AND ended_at < ?1",
                        [ms(days_before)],
                    )
                    .map_err(sql_err)?;
                Ok(n as u64)
            })
            .await
    }
}
