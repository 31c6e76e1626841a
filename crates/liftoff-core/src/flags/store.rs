//! The port flags, rollout plans, segments and evaluation counts are kept through.

use async_trait::async_trait;

use crate::audit::Change;
use crate::flags::{Flag, FlagKey, RolloutPlan, Segment};
use crate::store::StoreError;

#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Every flag, by key.
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError>;
    /// The flag with this key, if there is one.
    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError>;
    /// Fails with [`StoreError::Conflict`] when a flag with this key exists.
    async fn insert_flag(&self, flag: &Flag, change: &Change) -> Result<(), StoreError>;
    /// Replaces the flag if its stored version is still `expected_version`; `false` when it
    /// changed in the meantime or is gone (nothing is written then).
    async fn update_flag(
        &self,
        flag: &Flag,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Deletes the flag and its rollout plan; `false` when there was none.
    async fn delete_flag(&self, key: &FlagKey, change: &Change) -> Result<bool, StoreError>;
    /// Grows with every flag change, on every replica's writes: polling it tells a replica when
    /// to reload.
    async fn flags_revision(&self) -> Result<i64, StoreError>;
    /// Adds evaluation counts for one UTC day.
    async fn record_flag_evaluations(
        &self,
        day: chrono::NaiveDate,
        counts: &[(String, u64)],
    ) -> Result<(), StoreError>;
    /// The last day each flag was evaluated on.
    async fn flag_last_evaluated(&self) -> Result<Vec<(String, chrono::NaiveDate)>, StoreError>;
    /// Creates or replaces the flag's rollout plan.
    async fn save_rollout_plan(
        &self,
        plan: &RolloutPlan,
        change: &Change,
    ) -> Result<(), StoreError>;
    async fn list_rollout_plans(&self) -> Result<Vec<RolloutPlan>, StoreError>;
    /// One step of a rollout plan, in one transaction: the flag is replaced if its stored
    /// version is still `expected_version` and the plan if its stored step count is still
    /// `plan.applied - 1`, each with its audit entry. `false`, with nothing written, when
    /// either changed (another replica applied the step, or someone edited the flag): a step
    /// is never applied twice, nor half.
    async fn apply_rollout_step(
        &self,
        flag: &Flag,
        expected_version: i64,
        flag_change: &Change,
        plan: &RolloutPlan,
        plan_change: &Change,
    ) -> Result<bool, StoreError>;
    /// Every segment, by id.
    async fn list_segments(&self) -> Result<Vec<Segment>, StoreError>;
    /// Stores a new segment and returns the id the store gave it (the `id` passed is ignored;
    /// the audit entry's target is set to the new id). Conflict when the name is taken.
    async fn insert_segment(&self, segment: &Segment, change: &Change) -> Result<i64, StoreError>;
    /// `false` when there is no segment with this id.
    async fn update_segment(&self, segment: &Segment, change: &Change) -> Result<bool, StoreError>;
    async fn delete_segment(&self, id: i64, change: &Change) -> Result<bool, StoreError>;
}
