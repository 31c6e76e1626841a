//! The composition of the state ports: what one state-store backend implements.
//!
//! Domains never import this module (the layering test checks it): each depends on its own
//! port and [`StoreError`](crate::store::StoreError) only. Only the wiring (`liftoff-http`, the
//! binary, the contract suites, the backends) names [`StateStore`].

use crate::alerts::AlertStore;
use crate::audit::AuditStore;
use crate::auth::KeyStore;
use crate::changes::ChangeFeed;
use crate::deployments::DeploymentStore;
use crate::experiments::ExperimentStore;
use crate::flags::FlagStore;
use crate::incidents::IncidentStore;
use crate::launch::LaunchStore;
use crate::lease::LeaseStore;
use crate::reports::ReportStore;
use crate::store::StoreHealth;
use crate::uptime::UptimeStore;
use crate::users::AccountStore;

/// Everything Liftoff keeps as shared state (not events): one object per backend.
pub trait StateStore:
    KeyStore
    + AuditStore
    + AccountStore
    + FlagStore
    + StoreHealth
    + UptimeStore
    + IncidentStore
    + AlertStore
    + LaunchStore
    + ExperimentStore
    + DeploymentStore
    + ReportStore
    + LeaseStore
    + ChangeFeed
{
}
impl<
    T: KeyStore
        + AuditStore
        + AccountStore
        + FlagStore
        + StoreHealth
        + UptimeStore
        + IncidentStore
        + AlertStore
        + LaunchStore
        + ExperimentStore
        + DeploymentStore
        + ReportStore
        + LeaseStore
        + ChangeFeed,
> StateStore for T
{
}
