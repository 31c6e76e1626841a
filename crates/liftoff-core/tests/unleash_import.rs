//! The Unleash client specification through the importer: every spec file's features become
//! Liftoff flags (`flags_from_unleash`), are compiled into a catalog the way the server does,
//! and must give the same answers as Unleash for all 279 cases.

#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "../../liftoff-eval/tests/support/spec_cases.rs"]
mod spec_cases;

use liftoff_core::flags::{Catalog, Environment, flags_from_unleash};

#[test]
fn imported_flags_pass_the_unleash_specification() {
    spec_cases::check_all("import → catalog", |defs| {
        let (flags, problems) = flags_from_unleash(defs, chrono::Utc::now());
        assert!(
            problems.is_empty(),
            "features that did not import: {problems:?}"
        );
        let catalog = Catalog::build(1, flags, Vec::new(), &Default::default());
        move |flag: &str, ctx: &liftoff_eval::Context| {
            catalog.evaluate(flag, Environment::Production, ctx)
        }
    });
}
