//! Alert rules, their evaluation, alert instances, silences, maintenance windows and
//! notification channels with a durable outbox.
//!
//! - [`hooks`]: what alerts share with uptime checks and incidents.
//! - [`model`]: rules, alerts, silences, windows, channels, deliveries.
//! - [`eval`]: the pure evaluation step.
//! - [`notify`]: notification payloads (Alertmanager v4, Slack, email) and the sender port.
//! - [`secrets`]: channel secrets sealed at rest.
//! - [`service`]: `AlertsService`, which measures, evaluates, queues and delivers.
//! - [`window_notices`]: which maintenance-window notices are due (ahead, start, end).

pub mod eval;
pub mod hooks;
pub mod model;
pub mod notify;
pub mod secrets;
pub mod service;
mod store;
pub mod window_notices;

pub use service::{AlertError, AlertSettings, AlertsService};
pub use store::AlertStore;
