//! Flags on PostgreSQL.

use async_trait::async_trait;
use chrono::NaiveDate;
use liftoff_core::audit::Change;
use liftoff_core::flags::FlagStore;
use liftoff_core::flags::{Flag, FlagKey, RolloutPlan, Segment};
use liftoff_core::store::StoreError;

use super::{PgState, pg_err, write_audit};
use crate::codec::{doc_from_value, doc_value};

/// Moves the catalog's revision and tells the other replicas, on commit.
const BUMP: &str =
    "WITH bumped AS (UPDATE revisions SET value = value + 1 WHERE name = 'flags' RETURNING value)
     SELECT pg_notify('liftoff_changes', 'flags:' || value) FROM bumped";

#[async_trait]
impl FlagStore for PgState {
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT definition FROM flags ORDER BY key", &[])
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "JSON"))
            .collect()
    }

    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT definition FROM flags WHERE key = $1",
                &[&key.as_str()],
            )
            .await
            .map_err(pg_err)?;
        row.map(|r| doc_from_value(r.get(0), "JSON")).transpose()
    }

    async fn insert_flag(&self, flag: &Flag, change: &Change) -> Result<(), StoreError> {
        let json = doc_value(flag)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO flags (key, definition, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            &[&flag.flag_id.as_str(), &json, &flag.version, &flag.created_at, &flag.updated_at],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(BUMP, &[]).await.map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn update_flag(
        &self,
        flag: &Flag,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let json = doc_value(flag)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE flags SET definition = $2, version = $3, updated_at = $4 WHERE key = $1 AND version = $5",
                &[&flag.flag_id.as_str(), &json, &flag.version, &flag.updated_at, &expected_version],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            tx.execute(BUMP, &[]).await.map_err(pg_err)?;
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn delete_flag(&self, key: &FlagKey, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute("DELETE FROM flags WHERE key = $1", &[&key.as_str()])
            .await
            .map_err(pg_err)?;
        tx.execute(
            "DELETE FROM rollout_plans WHERE flag_key = $1",
            &[&key.as_str()],
        )
        .await
        .map_err(pg_err)?;
        if n == 1 {
            tx.execute(BUMP, &[]).await.map_err(pg_err)?;
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn flags_revision(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT value FROM revisions WHERE name = 'flags'", &[])
            .await
            .map_err(pg_err)?
            .get(0))
    }

    async fn record_flag_evaluations(
        &self,
        day: NaiveDate,
        counts: &[(String, u64)],
    ) -> Result<(), StoreError> {
        let keys: Vec<&str> = counts.iter().map(|(k, _)| k.as_str()).collect();
        let ns: Vec<i64> = counts.iter().map(|(_, n)| *n as i64).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO flag_evaluations (flag_key, day, count)
                 SELECT k, $1, n FROM unnest($2::text[], $3::bigint[]) AS t(k, n)
                 ON CONFLICT (flag_key, day) DO UPDATE SET count = flag_evaluations.count + excluded.count",
                &[&day, &keys, &ns],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn flag_last_evaluated(&self) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT flag_key, MAX(day) FROM flag_evaluations GROUP BY flag_key",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn save_rollout_plan(
        &self,
        plan: &RolloutPlan,
        change: &Change,
    ) -> Result<(), StoreError> {
        let json = doc_value(plan)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO rollout_plans (flag_key, plan, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (flag_key) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
            &[&plan.flag_id.as_str(), &json, &plan.updated_at],
        )
        .await
        .map_err(pg_err)?;
        write_audit(&tx, change).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn list_rollout_plans(&self) -> Result<Vec<RolloutPlan>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT plan FROM rollout_plans ORDER BY flag_key", &[])
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| doc_from_value(r.get(0), "JSON"))
            .collect()
    }

    async fn apply_rollout_step(
        &self,
        flag: &Flag,
        expected_version: i64,
        flag_change: &Change,
        plan: &RolloutPlan,
        plan_change: &Change,
    ) -> Result<bool, StoreError> {
        let (flag_json, plan_json) = (doc_value(flag)?, doc_value(plan)?);
        let applied_before = plan.applied as i64 - 1;
        let key = plan.flag_id.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Both rows locked before either is written: a replica applying the same step waits
        // here, then finds the step count moved on.
        let current = tx
            .query_opt(
                "SELECT (p.plan->>'applied')::BIGINT, f.version FROM rollout_plans p
                 JOIN flags f ON f.key = p.flag_key WHERE p.flag_key = $1 FOR UPDATE",
                &[&key],
            )
            .await
            .map_err(pg_err)?;
        let Some(row) = current else {
            return Ok(false);
        };
        if row.get::<_, i64>(0) != applied_before || row.get::<_, i64>(1) != expected_version {
            return Ok(false);
        }
        tx.execute(
            "UPDATE flags SET definition = $2, version = $3, updated_at = $4 WHERE key = $1",
            &[&key, &flag_json, &flag.version, &flag.updated_at],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            "UPDATE rollout_plans SET plan = $2, updated_at = $3 WHERE flag_key = $1",
            &[&key, &plan_json, &plan.updated_at],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(BUMP, &[]).await.map_err(pg_err)?;
        write_audit(&tx, flag_change).await?;
        write_audit(&tx, plan_change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn list_segments(&self) -> Result<Vec<Segment>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, definition FROM segments ORDER BY id", &[])
            .await
            .map_err(pg_err)?;
        rows.into_iter()
            .map(|r| {
                doc_from_value::<Segment>(r.get(1), "JSON").map(|s| Segment { id: r.get(0), ..s })
            })
            .collect()
    }

    async fn insert_segment(&self, segment: &Segment, change: &Change) -> Result<i64, StoreError> {
        let json = doc_value(segment)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO segments (name, definition, updated_at) VALUES ($1, $2, $3) RETURNING id",
                &[&segment.name, &json, &segment.updated_at],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let mut change = change.clone();
        change.target_id = id.to_string();
        tx.execute(BUMP, &[]).await.map_err(pg_err)?;
        write_audit(&tx, &change).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(id)
    }

    async fn update_segment(&self, segment: &Segment, change: &Change) -> Result<bool, StoreError> {
        let json = doc_value(segment)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute(
                "UPDATE segments SET name = $2, definition = $3, updated_at = $4 WHERE id = $1",
                &[&segment.id, &segment.name, &json, &segment.updated_at],
            )
            .await
            .map_err(pg_err)?;
        if n == 1 {
            tx.execute(BUMP, &[]).await.map_err(pg_err)?;
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn delete_segment(&self, id: i64, change: &Change) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let n = tx
            .execute("DELETE FROM segments WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        if n == 1 {
            tx.execute(BUMP, &[]).await.map_err(pg_err)?;
            write_audit(&tx, change).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use liftoff_core::changes::{CHANNEL, Topic};

    /// The statement names the channel and topic as literals (a `const` cannot be formatted):
    /// they must be the ones the change feed listens for and parses.
    #[test]
    fn the_bump_announces_on_the_change_feeds_channel() {
        assert!(super::BUMP.contains(&format!(
            "pg_notify('{CHANNEL}', '{}:'",
            Topic::Flags.as_str()
        )));
        assert_eq!(Topic::parse("flags:42"), Some(Topic::Flags));
    }
}
