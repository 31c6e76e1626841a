//! Flags on SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;
use liftoff_core::audit::Change;
use liftoff_core::flags::FlagStore;
use liftoff_core::flags::{Flag, FlagKey, RolloutPlan, Segment};
use liftoff_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use super::db::sql_err;
use super::{SqliteState, write_audit};
use crate::codec::{doc_from_text, doc_text, ms};

fn bump_revision(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE revisions SET value = value + 1 WHERE name = 'flags'",
        [],
    )
    .map_err(sql_err)?;
    Ok(())
}

impl SqliteState {
    /// Every row of a one-column query of JSON documents, parsed.
    async fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let rows: Vec<String> = self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(sql).map_err(sql_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.iter().map(|s| doc_from_text(s, "JSON")).collect()
    }
}

#[async_trait]
impl FlagStore for SqliteState {
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError> {
        self.json_rows("SELECT definition FROM flags ORDER BY key")
            .await
    }

    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        let key = key.to_string();
        let row: Option<String> = self
            .db
            .read(move |c| {
                c.query_row("SELECT definition FROM flags WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql_err)
            })
            .await?;
        row.map(|s| doc_from_text(&s, "JSON")).transpose()
    }

    async fn insert_flag(&self, flag: &Flag, change: &Change) -> Result<(), StoreError> {
        let (json, change) = (doc_text(flag)?, change.clone());
        let (key, version, created, updated) = (
            flag.flag_id.to_string(),
            flag.version,
            ms(flag.created_at),
            ms(flag.updated_at),
        );
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO flags (key, definition, version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key, json, version, created, updated],
                )
                .map_err(sql_err)?;
                bump_revision(tx)?;
                write_audit(tx, &change)
            })
            .await
    }

    async fn update_flag(
        &self,
        flag: &Flag,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let (json, change) = (doc_text(flag)?, change.clone());
        let (key, version, updated) = (flag.flag_id.to_string(), flag.version, ms(flag.updated_at));
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE flags SET definition = ?2, version = ?3, updated_at = ?4 WHERE key = ?1 AND version = ?5",
                        params![key, json, version, updated, expected_version],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    bump_revision(tx)?;
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn delete_flag(&self, key: &FlagKey, change: &Change) -> Result<bool, StoreError> {
        let (key, change) = (key.to_string(), change.clone());
        self.db
            .write(move |tx| {
                let n = tx
                    .execute("DELETE FROM flags WHERE key = ?1", [&key])
                    .map_err(sql_err)?;
                tx.execute("DELETE FROM rollout_plans WHERE flag_key = ?1", [&key])
                    .map_err(sql_err)?;
                if n == 1 {
                    bump_revision(tx)?;
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn flags_revision(&self) -> Result<i64, StoreError> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT value FROM revisions WHERE name = 'flags'",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql_err)
            })
            .await
    }

    async fn record_flag_evaluations(
        &self,
        day: NaiveDate,
        counts: &[(String, u64)],
    ) -> Result<(), StoreError> {
        let (day, counts) = (day.to_string(), counts.to_vec());
        self.db
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO flag_evaluations (flag_key, day, count) VALUES (?1, ?2, ?3)
                         ON CONFLICT (flag_key, day) DO UPDATE SET count = count + excluded.count",
                    )
                    .map_err(sql_err)?;
                for (key, n) in &counts {
                    stmt.execute(params![key, day, *n as i64])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn flag_last_evaluated(&self) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let rows: Vec<(String, String)> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT flag_key, MAX(day) FROM flag_evaluations GROUP BY flag_key",
                    )
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter()
            .map(|(k, d)| {
                d.parse()
                    .map(|d| (k, d))
                    .map_err(|e| StoreError::Corrupt(format!("day `{d}`: {e}")))
            })
            .collect()
    }

    async fn save_rollout_plan(
        &self,
        plan: &RolloutPlan,
        change: &Change,
    ) -> Result<(), StoreError> {
        let (json, change) = (doc_text(plan)?, change.clone());
        let (key, updated) = (plan.flag_id.to_string(), ms(plan.updated_at));
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO rollout_plans (flag_key, plan, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (flag_key) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
                    params![key, json, updated],
                )
                .map_err(sql_err)?;
                write_audit(tx, &change)
            })
            .await
    }

    async fn list_rollout_plans(&self) -> Result<Vec<RolloutPlan>, StoreError> {
        self.json_rows("SELECT plan FROM rollout_plans ORDER BY flag_key")
            .await
    }

    async fn apply_rollout_step(
        &self,
        flag: &Flag,
        expected_version: i64,
        flag_change: &Change,
        plan: &RolloutPlan,
        plan_change: &Change,
    ) -> Result<bool, StoreError> {
        let (flag_json, plan_json) = (doc_text(flag)?, doc_text(plan)?);
        let (flag_change, plan_change) = (flag_change.clone(), plan_change.clone());
        let (key, version) = (flag.flag_id.to_string(), flag.version);
        let (flag_updated, plan_updated) = (ms(flag.updated_at), ms(plan.updated_at));
        let applied_before = plan.applied as i64 - 1;
        self.db
            .write(move |tx| {
                // The one writer: nothing changes between this read and the writes.
                let current: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT json_extract(p.plan, '$.applied'), f.version FROM rollout_plans p
                         JOIN flags f ON f.key = p.flag_key WHERE p.flag_key = ?1",
                        [&key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql_err)?;
                if current != Some((applied_before, expected_version)) {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE flags SET definition = ?2, version = ?3, updated_at = ?4 WHERE key = ?1",
                    params![key, flag_json, version, flag_updated],
                )
                .map_err(sql_err)?;
                tx.execute(
                    "UPDATE rollout_plans SET plan = ?2, updated_at = ?3 WHERE flag_key = ?1",
                    params![key, plan_json, plan_updated],
                )
                .map_err(sql_err)?;
                bump_revision(tx)?;
                write_audit(tx, &flag_change)?;
                write_audit(tx, &plan_change)?;
                Ok(true)
            })
            .await
    }

    async fn list_segments(&self) -> Result<Vec<Segment>, StoreError> {
        let rows: Vec<(i64, String)> = self
            .db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached("SELECT id, definition FROM segments ORDER BY id")
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
            })
            .await?;
        rows.into_iter()
            .map(|(id, json)| doc_from_text::<Segment>(&json, "JSON").map(|s| Segment { id, ..s }))
            .collect()
    }

    async fn insert_segment(&self, segment: &Segment, change: &Change) -> Result<i64, StoreError> {
        let (json, name, updated, mut change) = (
            doc_text(segment)?,
            segment.name.clone(),
            ms(segment.updated_at),
            change.clone(),
        );
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO segments (name, definition, updated_at) VALUES (?1, ?2, ?3)",
                    params![name, json, updated],
                )
                .map_err(sql_err)?;
                let id = tx.last_insert_rowid();
                change.target_id = id.to_string();
                bump_revision(tx)?;
                write_audit(tx, &change)?;
                Ok(id)
            })
            .await
    }

    async fn update_segment(&self, segment: &Segment, change: &Change) -> Result<bool, StoreError> {
        let (json, change) = (doc_text(segment)?, change.clone());
        let (id, name, updated) = (segment.id, segment.name.clone(), ms(segment.updated_at));
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE segments SET name = ?2, definition = ?3, updated_at = ?4 WHERE id = ?1",
                        params![id, name, json, updated],
                    )
                    .map_err(sql_err)?;
                if n == 1 {
                    bump_revision(tx)?;
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn delete_segment(&self, id: i64, change: &Change) -> Result<bool, StoreError> {
        let change = change.clone();
        self.db
            .write(move |tx| {
                let n = tx
                    .execute("DELETE FROM segments WHERE id = ?1", [id])
                    .map_err(sql_err)?;
                if n == 1 {
                    bump_revision(tx)?;
                    write_audit(tx, &change)?;
                }
                Ok(n == 1)
            })
            .await
    }
}
