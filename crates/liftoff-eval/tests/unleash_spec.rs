//! Runs every case of the Unleash client specification (v6.1.0, 22 files, 279 cases) against
//! `liftoff-eval`, through both `evaluate` and the allocation-free `is_enabled`.

#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "support/spec_cases.rs"]
mod spec_cases;

use liftoff_eval::Snapshot;

#[test]
fn unleash_client_specification() {
    spec_cases::check_all("liftoff-eval", |defs| {
        let snapshot = Snapshot::compile(defs);
        move |flag: &str, ctx: &liftoff_eval::Context| {
            let eval = snapshot.evaluate(flag, ctx);
            assert_eq!(
                snapshot.is_enabled(flag, ctx),
                eval.enabled,
                "is_enabled disagrees with evaluate on `{flag}`"
            );
            eval
        }
    });
}
