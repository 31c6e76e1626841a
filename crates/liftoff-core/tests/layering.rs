//! The module layering of `liftoff-core`, checked on its source.
//!
//! - `store.rs` (`StoreError`, `StoreHealth`) is shared by every port, so it imports from no
//!   domain: a domain type there would make every domain depend on every other.
//! - `ports.rs` composes the state ports into `StateStore` for the wiring (HTTP state, the
//!   binary, the backends, the contract suites). No domain module may name it: a service takes
//!   its own port (`KeyStore`, `FlagStore`, …), so the composition depends on the domains and
//!   never the reverse.
//! - Services read the time through their `Clock` (`clock.rs`), so tests step it. Outside test
//!   modules only the places that must record the machine's time read it directly.

#![allow(clippy::unwrap_used, reason = "test: a panic is the failure report")]

use std::fs;
use std::path::{Path, PathBuf};

/// Modules `store.rs` may name under `crate::`: itself and the domain-free error table.
const STORE_MAY_USE: &[&str] = &["store", "error"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code lines (1-based numbers), comments left out so doc links do not count.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let code = line.find("//").map_or(line, |at| &line[..at]);
            (i + 1, code.to_owned())
        })
        .filter(|(_, code)| !code.trim().is_empty())
        .collect()
}

/// Every `crate::<module>` named on a line.
fn crate_modules(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `liftoff_core::crate::` does not exist; skip `$crate::` in macros.
            !code[..*at].ends_with('$')
        })
        .map(|(at, m)| {
            code[at + m.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn store_module_imports_no_domain() {
    let path = src().join("store.rs");
    let mut found = Vec::new();
    for (n, code) in code_lines(&path) {
        let bad = crate_modules(&code)
            .into_iter()
            .any(|m| !STORE_MAY_USE.contains(&m.as_str()))
            || code.contains("super::");
        if bad {
            found.push(format!("  src/store.rs:{n}: {}", code.trim()));
        }
    }
    assert!(
        found.is_empty(),
        "src/store.rs must import from no domain (only {STORE_MAY_USE:?}), but:\n{}\n\
         Move the domain type or port next to its domain (e.g. `flags/store.rs` for \
         `FlagStore`) and keep only `StoreError`/`StoreHealth` in `store.rs`; call sites import \
         the port from its domain (`liftoff_core::flags::FlagStore`), not through a re-export \
         in `store.rs`.",
        found.join("\n")
    );
}

#[test]
fn no_domain_imports_the_state_store_composition() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let allowed = [root.join("ports.rs"), root.join("lib.rs")];
    let mut found = Vec::new();
    for path in files.iter().filter(|p| !allowed.contains(p)) {
        for (n, code) in code_lines(path) {
            if code.contains("crate::ports")
                || code.contains("super::ports")
                || code.contains("StateStore")
            {
                let shown = path.strip_prefix(&root).unwrap().display();
                found.push(format!("  src/{shown}:{n}: {}", code.trim()));
            }
        }
    }
    assert!(
        files.iter().any(|p| p.ends_with("ports.rs")),
        "src/ports.rs (the StateStore composition) is gone: update this test with its new place"
    );
    assert!(
        found.is_empty(),
        "domain modules must not depend on the `StateStore` composition (`crate::ports`), but:\n{}\n\
         Take the domain's own port instead (e.g. `Arc<dyn KeyStore>`, `Arc<dyn FlagStore>`), or \
         a small composition of the ports the service really uses declared beside it (like \
         `users::AccountStore`), and let the wiring (liftoff-http, the binary) pass its \
         `Arc<dyn StateStore>`, which upcasts.",
        found.join("\n")
    );
}

/// Where core may read the system clock outside tests, and why.
const SYSTEM_TIME_ALLOWED: &[(&str, &str)] = &[
    ("clock.rs", "the system clock itself"),
    (
        "audit.rs",
        "an audit entry records when the change really happened, whatever clock a service runs on",
    ),
    ("batch.rs", "the job log records when a flush really ran"),
    (
        "lease.rs",
        "a lease's expiry is compared by other replicas against their own clocks: it must be real time, whatever clock a service runs on",
    ),
    (
        "analytics/event.rs",
        "`now_ms`, the reading the HTTP edge passes into the pure analytics functions",
    ),
];

/// The lines before the file's test module.
fn non_test_code(path: &Path) -> Vec<(usize, String)> {
    code_lines(path)
        .into_iter()
        .take_while(|(_, code)| !code.contains("#[cfg(test)]"))
        .collect()
}

#[test]
fn services_read_the_time_through_their_clock() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if SYSTEM_TIME_ALLOWED.iter().any(|(f, _)| *f == rel) || rel.ends_with("tests.rs") {
            continue;
        }
        for (n, code) in non_test_code(path) {
            if code.contains("Utc::now()") {
                found.push(format!("  src/{rel}:{n}: {}", code.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "read the time from the service's clock (`self.clock.now()`, see clock.rs) or take `now` \
         as an argument, not `Utc::now()`:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(
        crate_modules("use crate::flags::{Flag}; x: crate::store::StoreError"),
        ["flags", "store"]
    );
    assert!(crate_modules("$crate::state_store_contract!").is_empty());
    let store = fs::read_to_string(src().join("store.rs")).unwrap();
    assert!(
        store.contains("pub enum StoreError"),
        "StoreError moved: update this test"
    );
}
