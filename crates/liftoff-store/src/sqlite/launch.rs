//! Launch controls on SQLite (`state.db`). Every admission runs in the one writer's immediate
//! transaction, so asks are serialized and exactly `user_limit` users hold a seat.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liftoff_core::audit::Change;
use liftoff_core::launch::feedback::{Feedback, FeedbackStatus, NewFeedback};
use liftoff_core::launch::store::{
    Admission, AdmissionCounts, AdmissionDay, FeedbackQuery, LaunchSettings, LaunchStore,
    LaunchUser, settled,
};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};

use super::db::sql_err;
use super::{SqliteState, opt_time, time, write_audit};
use crate::codec::{admission_day, doc_from_text, doc_text, ms};

const FEEDBACK_COLUMNS: &str = "id, user_id, rating, category, message, page, request, created_at, \
     status, resolution, resolved_at";

fn settings_in(conn: &rusqlite::Connection) -> Result<LaunchSettings, StoreError> {
    let (revision, doc): (i64, String) = conn
        .query_row(
            "SELECT revision, document FROM launch_settings WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_err)?;
    let mut settings = if revision == 0 {
        LaunchSettings::default()
    } else {
        doc_from_text::<LaunchSettings>(&doc, "launch settings")?
    };
    settings.revision = revision;
    Ok(settings)
}

fn counts_in(conn: &rusqlite::Connection) -> Result<AdmissionCounts, StoreError> {
    conn.query_row(
        "SELECT admitted, waiting FROM launch_counts WHERE id = 1",
        [],
        |r| {
            Ok(AdmissionCounts {
                admitted: r.get::<_, i64>(0)? as u64,
                waiting: r.get::<_, i64>(1)? as u64,
            })
        },
    )
    .map_err(sql_err)
}

/// Gives the first `n` waiting users (in order of first ask) a seat; returns them.
fn admit_waiting(tx: &Transaction<'_>, n: u64, at: i64) -> Result<Vec<String>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = tx
        .prepare(
            "UPDATE launch_users SET admitted_at = ?1 WHERE seq IN (
                 SELECT seq FROM launch_users WHERE admitted_at IS NULL ORDER BY seq LIMIT ?2)
             RETURNING user_id, seq",
        )
        .map_err(sql_err)?;
    let mut rows: Vec<(i64, String)> = stmt
        .query_map(params![at, i64::try_from(n).unwrap_or(i64::MAX)], |r| {
            Ok((r.get(1)?, r.get(0)?))
        })
        .map_err(sql_err)?
        .collect::<Result<_, _>>()
        .map_err(sql_err)?;
    rows.sort();
    Ok(rows.into_iter().map(|(_, u)| u).collect())
}

/// Fills the seats `limit` leaves free.
fn fill(tx: &Transaction<'_>, limit: Option<u32>, at: i64) -> Result<Vec<String>, StoreError> {
    let counts = counts_in(tx)?;
    let free = match limit {
        Some(l) => u64::from(l).saturating_sub(counts.admitted),
        None => counts.waiting,
    };
    admit_waiting(tx, free.min(counts.waiting), at)
}

/// The 1-based waitlist place of the user with `seq`.
fn position_in(conn: &rusqlite::Connection, seq: i64) -> Result<u64, StoreError> {
    let ahead: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM launch_users WHERE admitted_at IS NULL AND seq <= ?1",
            [seq],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    Ok(ahead as u64)
}

fn feedback_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Feedback> {
    let status: String = r.get(8)?;
    Ok(Feedback {
        id: r.get(0)?,
        user_id: r.get(1)?,
        rating: r.get(2)?,
        category: r.get(3)?,
        message: r.get(4)?,
        page: r.get(5)?,
        request: r.get(6)?,
        created_at: time(r.get(7)?)?,
        status: FeedbackStatus::parse(&status).unwrap_or(FeedbackStatus::Open),
        resolution: r.get(9)?,
        resolved_at: opt_time(r.get(10)?)?,
    })
}

#[async_trait]
impl LaunchStore for SqliteState {
    async fn launch_settings(&self) -> Result<LaunchSettings, StoreError> {
        self.db.read(settings_in).await
    }

    async fn save_launch_settings(
        &self,
        settings: &LaunchSettings,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<(LaunchSettings, Vec<String>)>, StoreError> {
        let (mut settings, change) = (settings.clone(), change.clone());
        self.db
            .write(move |tx| {
                let expected = settings.revision;
                settings.revision = expected + 1;
                settings.updated_at = Some(at);
                let updated = tx
                    .execute(
                        "UPDATE launch_settings SET revision = ?1, document = ?2
                         WHERE id = 1 AND revision = ?3",
                        params![settings.revision, doc_text(&settings)?, expected],
                    )
                    .map_err(sql_err)?;
                if updated == 0 {
                    return Ok(None);
                }
                let admitted = fill(tx, settings.user_limit, ms(at))?;
                write_audit(tx, &change)?;
                Ok(Some((settings, admitted)))
            })
            .await
    }

    async fn ask_admission(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .write(move |tx| {
                let limit = settings_in(tx)?.user_limit;
                tx.execute(
                    "INSERT INTO launch_users (user_id, first_asked_at) VALUES (?1, ?2)
                     ON CONFLICT (user_id) DO NOTHING",
                    params![user_id, ms(at)],
                )
                .map_err(sql_err)?;
                let newly_admitted = fill(tx, limit, ms(at))?;
                let (seq, admitted_at): (i64, Option<i64>) = tx
                    .query_row(
                        "SELECT seq, admitted_at FROM launch_users WHERE user_id = ?1",
                        [&user_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(sql_err)?;
                let waitlist_position = if admitted_at.is_some() {
                    None
                } else {
                    Some(position_in(tx, seq)?)
                };
                Ok(Admission {
                    allowed: admitted_at.is_some(),
                    admitted_count: counts_in(tx)?.admitted,
                    user_limit: limit,
                    waitlist_position,
                    newly_admitted,
                    user_id,
                })
            })
            .await
    }

    async fn admit_next(
        &self,
        count: u32,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Vec<String>, StoreError> {
        let change = change.clone();
        self.db
            .write(move |tx| {
                let admitted = admit_waiting(tx, u64::from(count), ms(at))?;
                write_audit(tx, &change)?;
                Ok(admitted)
            })
            .await
    }

    async fn revoke_admission(&self, user_id: &str, change: &Change) -> Result<bool, StoreError> {
        let (user_id, change) = (user_id.to_owned(), change.clone());
        self.db
            .write(move |tx| {
                let gone = tx
                    .execute("DELETE FROM launch_users WHERE user_id = ?1", [&user_id])
                    .map_err(sql_err)?
                    > 0;
                if gone {
                    write_audit(tx, &change)?;
                }
                Ok(gone)
            })
            .await
    }

    async fn admission_counts(&self) -> Result<AdmissionCounts, StoreError> {
        self.db.read(counts_in).await
    }

    async fn peek_admission(
        &self,
        user_id: &str,
        limit: Option<u32>,
    ) -> Result<Option<Admission>, StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .read(move |c| {
                // One snapshot for the user and the counts.
                let tx = c.unchecked_transaction().map_err(sql_err)?;
                let row: Option<(i64, Option<i64>)> = tx
                    .query_row(
                        "SELECT seq, admitted_at FROM launch_users WHERE user_id = ?1",
                        [&user_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql_err)?;
                let Some((seq, admitted_at)) = row else {
                    return Ok(None);
                };
                let counts = counts_in(&tx)?;
                let Some(allowed) = settled(limit, admitted_at.is_some(), counts) else {
                    return Ok(None);
                };
                let waitlist_position = if allowed {
                    None
                } else {
                    Some(position_in(&tx, seq)?)
                };
                Ok(Some(Admission {
                    user_id,
                    allowed,
                    admitted_count: counts.admitted,
                    user_limit: limit,
                    waitlist_position,
                    newly_admitted: Vec::new(),
                }))
            })
            .await
    }

    async fn admissions_by_day(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<AdmissionDay>, StoreError> {
        let from = ms(since).div_euclid(86_400_000) * 86_400_000;
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT day, SUM(asked), SUM(admitted) FROM (
                 SELECT first_asked_at / 86400000 AS day, 1 AS asked, 0 AS admitted
                   FROM launch_users WHERE first_asked_at >= ?1
                 UNION ALL
                 SELECT admitted_at / 86400000, 0, 1
                   FROM launch_users WHERE admitted_at >= ?1
               ) AS t GROUP BY day ORDER BY day",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([from], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .map_err(sql_err)?;
                rows.map(|r| {
                    let (day, asked, admitted) = r.map_err(sql_err)?;
                    admission_day(day, asked, admitted)
                })
                .collect()
            })
            .await
    }

    async fn launch_user(&self, user_id: &str) -> Result<Option<LaunchUser>, StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .read(move |conn| {
                conn.query_row(
                    "SELECT user_id, first_asked_at, admitted_at FROM launch_users WHERE user_id = ?1",
                    [&user_id],
                    |r| {
                        Ok(LaunchUser {
                            user_id: r.get(0)?,
                            first_asked_at: time(r.get(1)?)?,
                            admitted_at: opt_time(r.get(2)?)?,
                        })
                    },
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn launch_users(
        &self,
        waiting_only: bool,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<LaunchUser>, StoreError> {
        self.db
            .read(move |conn| {
                let sql = if waiting_only {
                    "SELECT user_id, first_asked_at, admitted_at FROM launch_users
                     WHERE admitted_at IS NULL ORDER BY seq LIMIT ?1 OFFSET ?2"
                } else {
                    "SELECT user_id, first_asked_at, admitted_at FROM launch_users
                     ORDER BY seq LIMIT ?1 OFFSET ?2"
                };
                let mut stmt = conn.prepare(sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(
                        params![limit, i64::try_from(offset).unwrap_or(i64::MAX)],
                        |r| {
                            Ok(LaunchUser {
                                user_id: r.get(0)?,
                                first_asked_at: time(r.get(1)?)?,
                                admitted_at: opt_time(r.get(2)?)?,
                            })
                        },
                    )
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                Ok(rows)
            })
            .await
    }

    async fn insert_feedback(
        &self,
        feedback: &NewFeedback,
        at: DateTime<Utc>,
    ) -> Result<Feedback, StoreError> {
        let f = feedback.clone();
        self.db
            .write(move |tx| {
                tx.query_row(
                    &format!(
                        "INSERT INTO launch_feedback (user_id, rating, category, message, page, request, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {FEEDBACK_COLUMNS}"
                    ),
                    params![f.user_id, f.rating, f.category, f.message, f.page, f.request, ms(at)],
                    feedback_row,
                )
                .map_err(sql_err)
            })
            .await
    }

    async fn list_feedback(&self, query: &FeedbackQuery) -> Result<Vec<Feedback>, StoreError> {
        let q = query.clone();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {FEEDBACK_COLUMNS} FROM launch_feedback
                         WHERE (?1 IS NULL OR category = ?1) AND (?2 IS NULL OR status = ?2)
                           AND (?3 IS NULL OR id < ?3)
                         ORDER BY id DESC LIMIT ?4"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(
                        params![
                            q.category,
                            q.status.map(FeedbackStatus::as_str),
                            q.before_id,
                            q.limit
                        ],
                        feedback_row,
                    )
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                Ok(rows)
            })
            .await
    }

    async fn feedback_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Feedback>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {FEEDBACK_COLUMNS} FROM launch_feedback
                         WHERE created_at >= ?1 ORDER BY id"
                    ))
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([since.map_or(i64::MIN, ms)], feedback_row)
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                Ok(rows)
            })
            .await
    }

    async fn resolve_feedback(
        &self,
        id: i64,
        resolution: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<Feedback>, StoreError> {
        let (resolution, change) = (resolution.to_owned(), change.clone());
        self.db
            .write(move |tx| {
                let item = tx
                    .query_row(
                        &format!(
                            "UPDATE launch_feedback SET status = 'resolved', resolution = ?1, resolved_at = ?2
                             WHERE id = ?3 RETURNING {FEEDBACK_COLUMNS}"
                        ),
                        params![resolution, ms(at), id],
                        feedback_row,
                    )
                    .optional()
                    .map_err(sql_err)?;
                if item.is_some() {
                    write_audit(tx, &change)?;
                }
                Ok(item)
            })
            .await
    }
}
