//! The `liftoff` binary's library half: command line, configuration, wiring and jobs. Kept as
//! a library so integration tests start the real application in-process.

pub mod backup;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_incidents;
pub mod demo_launch;
pub mod jobs;
pub mod notify;
pub mod outbound;
pub mod remote;
pub mod report;
pub mod secrets;
pub mod startup;
pub mod system;
pub mod telemetry;
pub mod transfer;
pub mod uptime_checker;
