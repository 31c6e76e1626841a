//! Uptime monitors, checks, rollups and downtime periods on PostgreSQL. Times are Unix
//! milliseconds (`BIGINT`), as on SQLite: every query is range arithmetic on them.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use liftoff_core::audit::Change;
use liftoff_core::store::StoreError;
use liftoff_core::uptime::UptimeStore;
use liftoff_core::uptime::{
    CheckRecord, Downtime, DowntimeEdge, HttpMethod, Monitor, MonitorState, MonitorStatus,
    Resolution, Rollup,
};
use tokio_postgres::Row;

use super::{PgState, corrupt, pg_err, write_audit};
use crate::codec::{expected_json, ms};

const COLUMNS: &str =
    "id, name, url, method, interval_seconds, timeout_seconds, expected_status, keyword,
    retries, enabled, created_at, updated_at, status, consecutive_failures, failing_since,
    last_checked_at, last_error";

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("timestamp", &ms.to_string()))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

fn small(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, &v.to_string()))
}

fn monitor_from_row(r: &Row) -> Result<Monitor, StoreError> {
    let method: String = r.get(3);
    let status: String = r.get(12);
    let expected: Option<String> = r.get(6);
    Ok(Monitor {
        id: r.get(0),
        name: r.get(1),
        url: r.get(2),
        method: HttpMethod::parse(&method).ok_or_else(|| corrupt("method", &method))?,
        interval_seconds: small(r.get(4), "interval")?,
        timeout_seconds: small(r.get(5), "timeout")?,
        expected_status: expected
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("expected_status", &s)))
            .transpose()?,
        keyword: r.get(7),
        retries: small(r.get(8), "retries")?,
        enabled: r.get(9),
        created_at: time(r.get(10))?,
        updated_at: time(r.get(11))?,
        state: MonitorState {
            status: MonitorStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            consecutive_failures: small(r.get(13), "failures")?,
            failing_since: opt_time(r.get(14))?,
            last_checked_at: opt_time(r.get(15))?,
            last_error: r.get(16),
        },
    })
}

fn check_from_row(r: &Row) -> Result<CheckRecord, StoreError> {
    let code: Option<i64> = r.get(3);
    Ok(CheckRecord {
        monitor_id: r.get(0),
        at: time(r.get(1))?,
        up: r.get(2),
        status_code: code.map(|c| c as u16),
        response_ms: small(r.get(4), "response_ms")?,
        error: r.get(5),
    })
}

#[async_trait]
impl UptimeStore for PgState {
    async fn list_monitors(&self) -> Result<Vec<Monitor>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM uptime_monitors ORDER BY id"),
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(monitor_from_row).collect()
    }

    async fn get_monitor(&self, id: i64) -> Result<Option<Monitor>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM uptime_monitors WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    async fn insert_monitor(&self, m: &Monitor, change: &Change) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO uptime_monitors (name, url, method, interval_seconds, timeout_seconds,
                    expected_status, keyword, retries, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
                    &m.name,
                    &m.url,
                    &m.method.as_str(),
                    &i64::from(m.interval_seconds),
                    &i64::from(m.timeout_seconds),
                    &expected_json(m),
                    &m.keyword,
                    &i64::from(m.retries),
                    &m.enabled,
                    &ms(m.created_at),
                    &ms(m.updated_at),
                ],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let mut change = change.clone();
        change.target_id = id.to_string();
        write_audit(&tx, &change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn update_monitor(&self, m: &Monitor, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE uptime_monitors SET name = $2, url = $3, method = $4, interval_seconds = $5,
                    timeout_seconds = $6, expected_status = $7, keyword = $8, retries = $9,
                    enabled = $10, updated_at = $11
                 WHERE id = $1",
                &[
                    &m.id,
                    &m.name,
                    &m.url,
                    &m.method.as_str(),
                    &i64::from(m.interval_seconds),
                    &i64::from(m.timeout_seconds),
                    &expected_json(m),
                    &m.keyword,
                    &i64::from(m.retries),
                    &m.enabled,
                    &ms(m.updated_at),
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

    async fn delete_monitor(&self, id: i64, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute("DELETE FROM uptime_monitors WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        if n == 1 {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn record_check(
        &self,
        c: &CheckRecord,
        state: &MonitorState,
        downtime: DowntimeEdge,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE uptime_monitors SET status = $2, consecutive_failures = $3,
                    failing_since = $4, last_checked_at = $5, last_error = $6
                 WHERE id = $1",
                &[
                    &c.monitor_id,
                    &state.status.as_str(),
                    &i64::from(state.consecutive_failures),
                    &state.failing_since.map(ms),
                    &state.last_checked_at.map(ms),
                    &state.last_error,
                ],
            )
            .await
            .map_err(pg_err)?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO uptime_checks (monitor_id, at, up, status_code, response_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &c.monitor_id,
                &ms(c.at),
                &c.up,
                &c.status_code.map(i64::from),
                &i64::from(c.response_ms),
                &c.error,
            ],
        )
        .await
        .map_err(pg_err)?;
        for res in [Resolution::Hour, Resolution::Day] {
            tx.execute(
                "INSERT INTO uptime_rollups AS r (monitor_id, resolution, bucket, up, total, sum_ms, max_ms)
                 VALUES ($1, $2, $3, $4, 1, $5, $5)
                 ON CONFLICT (monitor_id, resolution, bucket) DO UPDATE SET
                    up = r.up + excluded.up, total = r.total + 1,
                    sum_ms = r.sum_ms + excluded.sum_ms, max_ms = GREATEST(r.max_ms, excluded.max_ms)",
                &[
                    &c.monitor_id,
                    &res.minutes(),
                    &res.bucket_ms(c.at),
                    &i64::from(c.up),
                    &i64::from(c.response_ms),
                ],
            )
            .await
            .map_err(pg_err)?;
        }
        match downtime {
            DowntimeEdge::None => {}
            DowntimeEdge::Open(at) => {
                tx.execute(
                    "INSERT INTO uptime_downtimes (monitor_id, started_at) VALUES ($1, $2)",
                    &[&c.monitor_id, &ms(at)],
                )
                .await
                .map_err(pg_err)?;
            }
            DowntimeEdge::Close(at) => {
                tx.execute(
                    "UPDATE uptime_downtimes SET ended_at = $2 WHERE monitor_id = $1 AND ended_at IS NULL",
                    &[&c.monitor_id, &ms(at)],
                )
                .await
                .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn uptime_checks(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT monitor_id, at, up, status_code, response_ms, error FROM uptime_checks
                 WHERE monitor_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3",
                &[&monitor_id, &ms(from), &(limit as i64)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(check_from_row).collect()
    }

    async fn uptime_rollups(
        &self,
        monitor_id: i64,
        resolution: Resolution,
        from: DateTime<Utc>,
    ) -> Result<Vec<Rollup>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT bucket, up, total, sum_ms, max_ms FROM uptime_rollups
                 WHERE monitor_id = $1 AND resolution = $2 AND bucket >= $3 ORDER BY bucket",
                &[
                    &monitor_id,
                    &resolution.minutes(),
                    &resolution.bucket_ms(from),
                ],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(Rollup {
                    start: time(r.get(0))?,
                    up: r.get::<_, i64>(1) as u64,
                    total: r.get::<_, i64>(2) as u64,
                    sum_ms: r.get::<_, i64>(3) as u64,
                    max_ms: small(r.get(4), "max_ms")?,
                })
            })
            .collect()
    }

    async fn downtimes(
        &self,
        monitor_id: i64,
        from: DateTime<Utc>,
    ) -> Result<Vec<Downtime>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT started_at, ended_at FROM uptime_downtimes
                 WHERE monitor_id = $1 AND (ended_at IS NULL OR ended_at >= $2)
                 ORDER BY started_at DESC, id DESC",
                &[&monitor_id, &ms(from)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(Downtime {
                    started_at: time(r.get(0))?,
                    ended_at: opt_time(r.get(1))?,
                })
            })
            .collect()
    }

    async fn purge_uptime(
        &self,
        checks_before: DateTime<Utc>,
        hours_before: DateTime<Utc>,
        days_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut n = tx
            .execute(
                "DELETE FROM uptime_checks WHERE at < $1",
                &[&ms(checks_before)],
            )
            .await
            .map_err(pg_err)?;
        n += tx
            .execute(
                "DELETE FROM uptime_rollups WHERE resolution = 60 AND bucket < $1",
                &[&ms(hours_before)],
            )
            .await
            .map_err(pg_err)?;
        n += tx
            .execute(
                "DELETE FROM uptime_rollups WHERE resolution = 1440 AND bucket < $1",
                &[&ms(days_before)],
            )
            .await
            .map_err(pg_err)?;
        n += tx
            .execute(
                "DELETE FROM uptime_downtimes WHERE ended_at IS NOT NULL AND ended_at < $1",
                &[&ms(days_before)],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n)
    }
}
