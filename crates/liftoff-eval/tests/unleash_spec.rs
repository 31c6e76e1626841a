//! Runs every case of the Unleash client specification (v6.1.0, 22 files, 279 cases) against
//! `liftoff-eval`, collecting all mismatches.
//!
//! The specification lives outside the repository, in `shared/conformance/unleash-client-spec/`
//! beside the checkout; set `LIFTOFF_UNLEASH_SPEC_DIR` to point elsewhere.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::PathBuf;

use liftoff_eval::{ClientFeatures, Context, DeltaEvent, Payload, Snapshot};
use serde::Deserialize;

const EXPECTED_CASES: usize = 279;
const EXPECTED_FILES: usize = 22;

#[derive(Deserialize)]
#[serde(untagged)]
enum State {
    Delta { events: Vec<DeltaEvent> },
    Full(ClientFeatures),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecFile {
    name: String,
    state: State,
    #[serde(default)]
    tests: Vec<BoolCase>,
    #[serde(default)]
    variant_tests: Vec<VariantCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BoolCase {
    description: String,
    context: Context,
    toggle_name: String,
    expected_result: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantCase {
    description: String,
    context: Context,
    toggle_name: String,
    expected_result: ExpectedVariant,
}

#[derive(Debug, Deserialize, PartialEq)]
struct ExpectedVariant {
    name: String,
    #[serde(default)]
    payload: Option<Payload>,
    enabled: bool,
    feature_enabled: bool,
}

fn spec_dir() -> PathBuf {
    match std::env::var_os("LIFTOFF_UNLEASH_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance/unleash-client-spec"),
    }
}

#[test]
fn unleash_client_specification() {
    let dir = spec_dir();
    let index_path = dir.join("index.json");
    let index = std::fs::read_to_string(&index_path).unwrap_or_else(|e| {
        panic!(
            "Unleash client specification not found: could not read {} ({e}). \
             It is expected in shared/conformance/unleash-client-spec beside the repository; \
             set LIFTOFF_UNLEASH_SPEC_DIR to the directory holding index.json.",
            index_path.display()
        )
    });
    let files: Vec<String> = serde_json::from_str(&index).unwrap();
    assert_eq!(
        files.len(),
        EXPECTED_FILES,
        "index.json should list {EXPECTED_FILES} files"
    );

    let mut total = 0usize;
    let mut failures: Vec<String> = Vec::new();
    for file in &files {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let spec: SpecFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let defs = match spec.state {
            State::Full(defs) => defs,
            State::Delta { events } => {
                // Delta files: apply the events to an empty definition set.
                let mut defs = ClientFeatures::default();
                defs.apply_delta(&events);
                defs
            }
        };
        let snapshot = Snapshot::compile(&defs);

        for case in &spec.tests {
            total += 1;
            let eval = snapshot.evaluate(&case.toggle_name, &case.context);
            let fast = snapshot.is_enabled(&case.toggle_name, &case.context);
            if eval.enabled != case.expected_result || fast != case.expected_result {
                failures.push(format!(
                    "{file} [{}] {}: toggle `{}` expected enabled={} but evaluate gave {} \
                     (reason {}) and is_enabled gave {fast}",
                    spec.name,
                    case.description,
                    case.toggle_name,
                    case.expected_result,
                    eval.enabled,
                    eval.reason.as_str(),
                ));
            }
        }
        for case in &spec.variant_tests {
            total += 1;
            let eval = snapshot.evaluate(&case.toggle_name, &case.context);
            let actual = ExpectedVariant {
                name: eval.variant.name.clone(),
                payload: eval.variant.payload.clone(),
                enabled: eval.variant.enabled,
                feature_enabled: eval.variant.feature_enabled,
            };
            if actual != case.expected_result
                || eval.enabled != case.expected_result.feature_enabled
            {
                failures.push(format!(
                    "{file} [{}] {}: toggle `{}` expected {:?} but got {actual:?} (reason {})",
                    spec.name,
                    case.description,
                    case.toggle_name,
                    case.expected_result,
                    eval.reason.as_str(),
                ));
            }
        }
    }

    let passed = total - failures.len();
    eprintln!("Unleash client specification: {passed} of {total} cases passed");
    assert!(
        failures.is_empty(),
        "{} of {total} Unleash specification cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert_eq!(
        total, EXPECTED_CASES,
        "the specification should have exactly {EXPECTED_CASES} cases"
    );
}
