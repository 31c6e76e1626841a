//! Launch controls: the rules a soft launch is steered by. Presets and thresholds, readiness,
//! the phase plan, feedback and scaling recommendations are pure decisions over figures the
//! launch service gathers; each module says what it decides.

pub mod feature;
pub mod feedback;
pub mod figures;
pub mod initialize;
pub mod notices;
pub mod phases;
pub mod presets;
pub mod readiness;
pub mod report;
pub mod scaling;
pub mod seats;
pub mod service;
pub mod store;
pub mod windows;

pub use service::{LaunchError, LaunchService};
pub use store::LaunchStore;
