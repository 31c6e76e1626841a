//! Loads the Unleash client specification and checks an evaluator against every case. Shared
//! by `liftoff-eval`'s own test and by `liftoff-core`'s import test (which includes this file by
//! path), so both read the cases the same way.
//!
//! The specification is vendored in `conformance/unleash-client-spec/` (Apache-2.0, its licence
//! beside it); set `LIFTOFF_TEST_UNLEASH_SPEC_DIR` to run another version of it.

use std::path::PathBuf;

use liftoff_eval::{ClientFeatures, Context, DeltaEvent, Evaluation, Payload};
use serde::Deserialize;

pub const EXPECTED_CASES: usize = 279;
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

#[derive(Debug, Deserialize)]
struct ExpectedVariant {
    name: String,
    #[serde(default)]
    payload: Option<Payload>,
    enabled: bool,
    feature_enabled: bool,
}

/// Payloads are equal when their types match and their values mean the same (JSON payloads
/// are compared parsed, so re-serialising one does not count as a difference).
fn same_payload(a: &Option<Payload>, b: &Option<Payload>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) if a.kind == b.kind && a.kind == "json" => {
            serde_json::from_str::<serde_json::Value>(&a.value).ok()
                == serde_json::from_str::<serde_json::Value>(&b.value).ok()
        }
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn spec_dir() -> PathBuf {
    match std::env::var_os("LIFTOFF_TEST_UNLEASH_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/unleash-client-spec")
        }
    }
}

/// Runs every case: `prepare` turns each file's definitions into an evaluator. Panics listing
/// every mismatch; prints `{label}: N of 279 cases passed`.
pub fn check_all<E>(label: &str, prepare: impl Fn(&ClientFeatures) -> E)
where
    E: Fn(&str, &Context) -> Evaluation,
{
    let dir = spec_dir();
    let index_path = dir.join("index.json");
    let index = std::fs::read_to_string(&index_path).unwrap_or_else(|e| {
        panic!(
            "Unleash client specification not found: could not read {} ({e}). \
             It is vendored in conformance/unleash-client-spec at the repository's root \
             (restore it with git checkout), or set LIFTOFF_TEST_UNLEASH_SPEC_DIR to a \
             directory holding index.json.",
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
            // Delta files: apply the events to an empty definition set.
            State::Delta { events } => ClientFeatures::from_delta(&events),
        };
        let evaluate = prepare(&defs);
        for case in &spec.tests {
            total += 1;
            let eval = evaluate(&case.toggle_name, &case.context);
            if eval.enabled != case.expected_result {
                failures.push(format!(
                    "{file} [{}] {}: toggle `{}` expected enabled={} but got {} (reason {})",
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
            let eval = evaluate(&case.toggle_name, &case.context);
            let want = &case.expected_result;
            let v = &eval.variant;
            let ok = v.name == want.name
                && v.enabled == want.enabled
                && v.feature_enabled == want.feature_enabled
                && eval.enabled == want.feature_enabled
                && same_payload(&v.payload, &want.payload);
            if !ok {
                failures.push(format!(
                    "{file} [{}] {}: toggle `{}` expected {want:?} but got {v:?} (reason {})",
                    spec.name,
                    case.description,
                    case.toggle_name,
                    eval.reason.as_str(),
                ));
            }
        }
    }

    let passed = total - failures.len();
    eprintln!("{label}: {passed} of {total} Unleash client specification cases passed");
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
