//! The port incidents are kept through.

use async_trait::async_trait;

use crate::audit::Change;
use crate::incidents::Incident;
use crate::store::StoreError;

/// Incidents, each stored whole with a version. See [`incidents`](crate::incidents).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Allocates the next number of the year of `created_at` and stores the incident under
    /// `INC-YYYY-NNN` in the same transaction (the `id` passed is ignored; the audit entry's
    /// target is set to the new id). Returns the incident as stored.
    async fn create_incident(
        &self,
        incident: &Incident,
        change: &Change,
    ) -> Result<Incident, StoreError>;
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError>;
    /// Every incident, newest first.
    async fn list_incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// Replaces the incident if its stored version is still `expected_version`; `false` when it
    /// changed meanwhile or is gone (nothing is written then).
    async fn update_incident(
        &self,
        incident: &Incident,
        expected_version: i64,
        change: &Change,
    ) -> Result<bool, StoreError>;
}
