//! The port experiments and their exposures are kept through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::Experiment;
use crate::audit::Change;
use crate::store::StoreError;

/// One user seeing one variant of an experiment's flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposure {
    pub experiment: String,
    pub user_id: String,
    pub variant: String,
    pub at: DateTime<Utc>,
}

/// A user's exposure as stored: the first one fixes the variant; a later exposure to another
/// variant marks the user as exposed to several.
#[derive(Clone, Debug, PartialEq)]
pub struct ExposedUser {
    pub user_id: String,
    pub variant: String,
    pub first_at: DateTime<Utc>,
    pub multiple: bool,
}

/// Experiments (one JSON document each, with a version) and their exposures, one row per
/// (experiment, user).
#[async_trait]
pub trait ExperimentStore: Send + Sync {
    /// `false` when the key is taken (nothing is written then).
    async fn create_experiment(
        &self,
        exp: &Experiment,
        change: &Change,
    ) -> Result<bool, StoreError>;
    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError>;
    /// Every experiment, newest first.
    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError>;
    /// Replaces the experiment if its stored version is still `expected_version`.
    async fn update_experiment(
        &self,
        exp: &Experiment,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
    /// Records exposures in one transaction: a user's first row is kept (variant, time); an
    /// exposure to another variant sets `multiple`; an earlier one moves `first_at` back.
    async fn record_exposures(&self, exposures: &[Exposure]) -> Result<(), StoreError>;
    /// The exposed users of an experiment, in user order.
    async fn exposed_users(&self, experiment: &str) -> Result<Vec<ExposedUser>, StoreError>;
}
