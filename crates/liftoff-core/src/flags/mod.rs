//! Feature flags: the model people edit, its validation, the compiled catalog evaluation reads,
//! gradual rollout plans (guarded by request metrics per value: [`guard`]), and the service
//! that ties them to the store.

mod catalog;
mod context;
pub mod guard;
mod import;
mod input;
mod model;
mod rollout;
mod segments;
mod service;
mod store;

pub use catalog::{Catalog, EnvCatalog};
pub use context::context;
pub use import::{flag_from_unleash, flags_from_unleash};
pub use input::{FlagPatch, MAX_VARIANTS, NewFlag, validate};
pub use model::{
    Environment, EnvironmentState, Flag, FlagKey, FlagVariant, StrategyKind, payload_value,
};
pub use rollout::{PlanState, RolloutPlan, steps};
pub use segments::{Segment, SegmentInput, validate_segment};
pub use service::{
    CriticalAlerts, FlagError, FlagService, ImportReport, NoAlerts, RolloutAnswer, Staleness,
};
pub use store::FlagStore;
