//! Feature flags: the model people edit, its validation, the compiled catalog evaluation reads,
//! gradual rollout plans, and the service that ties them to the store.

mod catalog;
mod input;
mod model;
mod rollout;
mod service;

pub use catalog::{Catalog, EnvCatalog};
pub use input::{FlagPatch, MAX_VARIANTS, NewFlag, validate};
pub use model::{
    Environment, EnvironmentState, Flag, FlagKey, FlagVariant, StrategyKind, payload_value,
};
pub use rollout::{PlanState, RolloutPlan, steps};
pub use service::{CriticalAlerts, FlagError, FlagService, NoAlerts, RolloutAnswer, Staleness};
