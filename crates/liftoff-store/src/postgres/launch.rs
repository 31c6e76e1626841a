//! Launch controls on PostgreSQL. Every admission first locks the settings row (`FOR UPDATE`),
//! so asks from every replica are serialized and exactly `user_limit` users hold a seat.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use liftoff_core::audit::Change;
use liftoff_core::changes::Topic;
use liftoff_core::launch::feedback::{Feedback, FeedbackStatus, NewFeedback};
use liftoff_core::launch::store::{
    Admission, AdmissionCounts, AdmissionDay, FeedbackQuery, LaunchSettings, LaunchStore,
    LaunchUser, settled,
};
use liftoff_core::store::StoreError;
use tokio_postgres::Row;

use super::{PgState, corrupt, pg_err, write_audit};
use crate::codec::{doc_from_value, doc_value, ms};

const FEEDBACK_COLUMNS: &str = "id, user_id, rating, category, message, page, request, created_at, \
     status, resolution, resolved_at";

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("timestamp", &ms.to_string()))
}

async fn settings_in(
    client: &impl GenericClient,
    lock: bool,
) -> Result<LaunchSettings, StoreError> {
    let sql = if lock {
        "SELECT revision, document FROM launch_settings WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT revision, document FROM launch_settings WHERE id = 1"
    };
    let row = client.query_one(sql, &[]).await.map_err(pg_err)?;
    let revision: i64 = row.get(0);
    let mut settings = if revision == 0 {
        LaunchSettings::default()
    } else {
        doc_from_value::<LaunchSettings>(row.get(1), "launch settings")?
    };
    settings.revision = revision;
    Ok(settings)
}

async fn counts_in(client: &impl GenericClient) -> Result<AdmissionCounts, StoreError> {
    let row = client
        .query_one(
            "SELECT admitted, waiting FROM launch_counts WHERE id = 1",
            &[],
        )
        .await
        .map_err(pg_err)?;
    Ok(AdmissionCounts {
        admitted: row.get::<_, i64>(0) as u64,
        waiting: row.get::<_, i64>(1) as u64,
    })
}

/// The 1-based waitlist place of the user with `seq`.
async fn position_in(client: &impl GenericClient, seq: i64) -> Result<u64, StoreError> {
    let ahead: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM launch_users WHERE admitted_at IS NULL AND seq <= $1",
            &[&seq],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(ahead as u64)
}

/// Gives the first `n` waiting users (in order of first ask) a seat; returns them in order.
async fn admit_waiting(tx: &Transaction<'_>, n: u64, at: i64) -> Result<Vec<String>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            "UPDATE launch_users SET admitted_at = $1 WHERE seq IN (
                 SELECT seq FROM launch_users WHERE admitted_at IS NULL ORDER BY seq LIMIT $2)
             RETURNING seq, user_id",
            &[&at, &i64::try_from(n).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(pg_err)?;
    let mut admitted: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    admitted.sort();
    Ok(admitted.into_iter().map(|(_, u)| u).collect())
}

async fn fill(
    tx: &Transaction<'_>,
    limit: Option<u32>,
    at: i64,
) -> Result<Vec<String>, StoreError> {
    let counts = counts_in(tx).await?;
    let free = match limit {
        Some(l) => u64::from(l).saturating_sub(counts.admitted),
        None => counts.waiting,
    };
    admit_waiting(tx, free.min(counts.waiting), at).await
}

fn feedback_row(r: &Row) -> Result<Feedback, StoreError> {
    let status: String = r.get(8);
    let rating: i16 = r.get(2);
    Ok(Feedback {
        id: r.get(0),
        user_id: r.get(1),
        rating: u8::try_from(rating).map_err(|_| corrupt("rating", &rating.to_string()))?,
        category: r.get(3),
        message: r.get(4),
        page: r.get(5),
        request: r.get(6),
        created_at: time(r.get(7))?,
        status: FeedbackStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        resolution: r.get(9),
        resolved_at: r.get::<_, Option<i64>>(10).map(time).transpose()?,
    })
}

/// Tells the other replicas (at commit) to forget what they remember of launch state: the
/// settings, seats and waitlist places they answer from memory.
async fn notify_launch(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(&super::changes::notify(Topic::Launch), &[])
        .await
        .map_err(pg_err)?;
    Ok(())
}

#[async_trait]
impl LaunchStore for PgState {
    async fn launch_settings(&self) -> Result<LaunchSettings, StoreError> {
        let client = self.client().await?;
        settings_in(&client, false).await
    }

    async fn save_launch_settings(
        &self,
        settings: &LaunchSettings,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<(LaunchSettings, Vec<String>)>, StoreError> {
        let mut settings = settings.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let expected = settings.revision;
        settings.revision = expected + 1;
        settings.updated_at = Some(at);
        let updated = tx
            .execute(
                "UPDATE launch_settings SET revision = $1, document = $2 WHERE id = 1 AND revision = $3",
                &[&settings.revision, &doc_value(&settings)?, &expected],
            )
            .await
            .map_err(pg_err)?;
        if updated == 0 {
            return Ok(None);
        }
        let admitted = fill(&tx, settings.user_limit, ms(at)).await?;
        write_audit(&tx, change).await?;
        notify_launch(&tx).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some((settings, admitted)))
    }

    async fn ask_admission(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let limit = settings_in(&tx, true).await?.user_limit;
        let new_user = tx
            .execute(
                "INSERT INTO launch_users (user_id, first_asked_at) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO NOTHING",
                &[&user_id, &ms(at)],
            )
            .await
            .map_err(pg_err)?
            == 1;
        let newly_admitted = fill(&tx, limit, ms(at)).await?;
        // Someone who was waiting got a seat, so the places behind moved: other replicas
        // answer places from memory (a new user seated at once moves no one's place).
        if newly_admitted.iter().any(|u| u != user_id || !new_user) {
            notify_launch(&tx).await?;
        }
        let row = tx
            .query_one(
                "SELECT seq, admitted_at FROM launch_users WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_err)?;
        let (seq, admitted_at): (i64, Option<i64>) = (row.get(0), row.get(1));
        let waitlist_position = if admitted_at.is_some() {
            None
        } else {
            Some(position_in(&tx, seq).await?)
        };
        let admitted_count = counts_in(&tx).await?.admitted;
        tx.commit().await.map_err(pg_err)?;
        Ok(Admission {
            user_id: user_id.to_owned(),
            allowed: admitted_at.is_some(),
            admitted_count,
            user_limit: limit,
            waitlist_position,
            newly_admitted,
        })
    }

    async fn admit_next(
        &self,
        count: u32,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        settings_in(&tx, true).await?;
        let admitted = admit_waiting(&tx, u64::from(count), ms(at)).await?;
        write_audit(&tx, change).await?;
        if !admitted.is_empty() {
            // The places behind moved; other replicas answer places from memory.
            notify_launch(&tx).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(admitted)
    }

    async fn revoke_admission(&self, user_id: &str, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        settings_in(&tx, true).await?;
        let gone = tx
            .execute("DELETE FROM launch_users WHERE user_id = $1", &[&user_id])
            .await
            .map_err(pg_err)?
            > 0;
        if gone {
            write_audit(&tx, change).await?;
            // Other replicas may answer this seat from memory.
            notify_launch(&tx).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(gone)
    }

    async fn admission_counts(&self) -> Result<AdmissionCounts, StoreError> {
        let client = self.client().await?;
        counts_in(&client).await
    }

    async fn peek_admission(
        &self,
        user_id: &str,
        limit: Option<u32>,
    ) -> Result<Option<Admission>, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for the user and the counts; no row is locked.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        let Some(row) = tx
            .query_opt(
                "SELECT seq, admitted_at FROM launch_users WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_err)?
        else {
            return Ok(None);
        };
        let (seq, admitted_at): (i64, Option<i64>) = (row.get(0), row.get(1));
        let counts = counts_in(&tx).await?;
        let Some(allowed) = settled(limit, admitted_at.is_some(), counts) else {
            return Ok(None);
        };
        let waitlist_position = if allowed {
            None
        } else {
            Some(position_in(&tx, seq).await?)
        };
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(Admission {
            user_id: user_id.to_owned(),
            allowed,
            admitted_count: counts.admitted,
            user_limit: limit,
            waitlist_position,
            newly_admitted: Vec::new(),
        }))
    }

    async fn admissions_by_day(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<AdmissionDay>, StoreError> {
        let from = ms(since).div_euclid(86_400_000) * 86_400_000;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT day, SUM(asked)::BIGINT, SUM(admitted)::BIGINT FROM (
                 SELECT first_asked_at / 86400000 AS day, 1 AS asked, 0 AS admitted
                   FROM launch_users WHERE first_asked_at >= $1
                 UNION ALL
                 SELECT admitted_at / 86400000, 0, 1
                   FROM launch_users WHERE admitted_at >= $1
               ) AS t GROUP BY day ORDER BY day",
                &[&from],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| crate::codec::admission_day(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn launch_user(&self, user_id: &str) -> Result<Option<LaunchUser>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT user_id, first_asked_at, admitted_at FROM launch_users WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(pg_err)?;
        row.map(|r| {
            Ok(LaunchUser {
                user_id: r.get(0),
                first_asked_at: time(r.get(1))?,
                admitted_at: r.get::<_, Option<i64>>(2).map(time).transpose()?,
            })
        })
        .transpose()
    }

    async fn launch_users(
        &self,
        waiting_only: bool,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<LaunchUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT user_id, first_asked_at, admitted_at FROM launch_users
                 WHERE NOT $1 OR admitted_at IS NULL ORDER BY seq LIMIT $2 OFFSET $3",
                &[
                    &waiting_only,
                    &i64::from(limit),
                    &i64::try_from(offset).unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(LaunchUser {
                    user_id: r.get(0),
                    first_asked_at: time(r.get(1))?,
                    admitted_at: r.get::<_, Option<i64>>(2).map(time).transpose()?,
                })
            })
            .collect()
    }

    async fn insert_feedback(
        &self,
        f: &NewFeedback,
        at: DateTime<Utc>,
    ) -> Result<Feedback, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO launch_feedback (user_id, rating, category, message, page, request, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {FEEDBACK_COLUMNS}"
                ),
                &[
                    &f.user_id,
                    &i16::from(f.rating),
                    &f.category,
                    &f.message,
                    &f.page,
                    &f.request,
                    &ms(at),
                ],
            )
            .await
            .map_err(pg_err)?;
        feedback_row(&row)
    }

    async fn list_feedback(&self, q: &FeedbackQuery) -> Result<Vec<Feedback>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM launch_feedback
                     WHERE ($1::text IS NULL OR category = $1) AND ($2::text IS NULL OR status = $2)
                       AND ($3::bigint IS NULL OR id < $3)
                     ORDER BY id DESC LIMIT $4"
                ),
                &[
                    &q.category,
                    &q.status.map(FeedbackStatus::as_str),
                    &q.before_id,
                    &i64::from(q.limit),
                ],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(feedback_row).collect()
    }

    async fn feedback_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Feedback>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM launch_feedback WHERE created_at >= $1 ORDER BY id"
                ),
                &[&since.map_or(i64::MIN, ms)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(feedback_row).collect()
    }

    async fn resolve_feedback(
        &self,
        id: i64,
        resolution: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<Feedback>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE launch_feedback SET status = 'resolved', resolution = $1, resolved_at = $2
                     WHERE id = $3 RETURNING {FEEDBACK_COLUMNS}"
                ),
                &[&resolution, &ms(at), &id],
            )
            .await
            .map_err(pg_err)?;
        let item = row.as_ref().map(feedback_row).transpose()?;
        if item.is_some() {
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(item)
    }
}
