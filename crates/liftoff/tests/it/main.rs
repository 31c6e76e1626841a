//! Black-box tests of the whole application over real HTTP on loopback. One test binary (faster
//! to link); each module covers one area.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

mod harness;

mod alerts;
mod auth;
mod backup;
mod bad_input;
mod capture;
mod dashboard;
mod demo;
mod deploy;
mod deployments;
mod edge;
mod experiments;
mod flags;
mod incidents;
mod insights;
mod keys;
mod launch;
mod launch_gate;
mod monitoring;
mod openapi;
mod operations;
mod otlp;
mod outbound;
mod process;
mod replicas;
mod reports;
mod rollouts;
mod seed_shapes;
mod signin;
mod transfer;
mod uptime;
