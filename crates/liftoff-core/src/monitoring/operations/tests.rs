#![allow(clippy::unwrap_used, reason = "tests")]

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn record(v: Value) -> OperationRecord {
    serde_json::from_value(v).unwrap()
}

#[test]
fn validation_refuses_what_cannot_be_an_operation() {
    let now = Utc::now();
    let ok = json!({"operation": "external:stripe.charge", "status": "failure", "duration_ms": 12.5,
        "error": "card declined", "stack_trace": "at x", "context": {"amount": 10}, "user_id": "u1"});
    let op = record(ok.clone()).validate(now).unwrap();
    assert_eq!(op.service, "default");
    assert_eq!(op.at, now);
    assert!(!op.success);
    let f = op.failure.unwrap();
    assert_eq!(f.error_type, UNKNOWN_ERROR);
    assert_eq!(f.context, Some(json!({"amount": 10})));
    for (field, value) in [
        ("duration_ms", json!(-1)),
        ("duration_ms", json!(86_400_000.0)),
        ("operation", json!("x".repeat(10_000))),
        ("operation", json!("")),
        ("operation", json!("has space")),
        ("operation", json!("emoji✓")),
        ("stack_trace", json!("s".repeat(MAX_STACK_TRACE + 1))),
        ("error", json!("e".repeat(MAX_ERROR + 1))),
        ("error_type", json!("t".repeat(201))),
        ("context", json!({"big": "c".repeat(MAX_CONTEXT)})),
        ("user_id", json!("")),
        ("layer", json!("l".repeat(65))),
        ("service", json!("")),
        ("ts", json!("yesterday")),
        ("ts", json!(1)),
    ] {
        let mut bad = ok.clone();
        bad[field] = value;
        assert!(record(bad).validate(now).is_err(), "{field} accepted");
    }
    let mut bad = ok.clone();
    bad["status"] = json!("maybe");
    assert!(serde_json::from_value::<OperationRecord>(bad).is_err());
    let mut max = ok.clone();
    max["operation"] = json!("a".repeat(MAX_NAME));
    max["stack_trace"] = json!("s".repeat(MAX_STACK_TRACE));
    max["status"] = json!("success");
    let op = record(max).validate(now).unwrap();
    assert!(op.success && op.failure.is_none(), "success keeps no error");
}

fn op(name: &str, ok: bool, ms: f64, layer: Option<&str>, hit: Option<bool>) -> Operation {
    Operation {
        service: "app".into(),
        operation: name.into(),
        user_id: Some(format!("u{}", ms as u64 % 3)),
        success: ok,
        duration_ms: ms,
        cache_hit: hit,
        layer: layer.map(Into::into),
        failure: (!ok).then(|| Failure {
            error_type: "Timeout".into(),
            error: Some("slow".into()),
            stack_trace: None,
            context: None,
        }),
        at: Utc.timestamp_opt(1_800_000_000, 0).single().unwrap(),
    }
}

#[test]
fn folding_counts_caches_layers_errors_and_users() {
    let mut ops = Vec::new();
    for i in 0..100 {
        let layer = match i % 10 {
            0..=5 => "cache",
            6..=8 => "primary",
            _ => "fallback",
        };
        ops.push(op(
            "gen",
            i % 4 != 0,
            f64::from(i),
            Some(layer),
            (i % 2 == 0).then_some(i % 4 == 0),
        ));
    }
    let (w, dropped) = fold(ops).unwrap();
    assert_eq!(w.cells.len(), 1);
    let c = &w.cells[0].1;
    assert_eq!((c.count, c.failures), (100, 25));
    assert_eq!((c.cache_known, c.cache_hits), (50, 25));
    assert_eq!(c.layers["cache"], 60);
    assert_eq!(c.layers["primary"], 30);
    assert_eq!(c.layers["fallback"], 10);
    assert_eq!(c.error_types["Timeout"], 25);
    assert_eq!(c.sketch.count(), 100);
    assert_eq!(
        w.errors.len(),
        ERRORS_PER_MINUTE,
        "error rows capped per minute"
    );
    assert_eq!(dropped, 25 - ERRORS_PER_MINUTE as u64);
    assert_eq!(w.users.len(), 3, "one row per user and hour");
    assert!(
        w.users.iter().all(|u| u.ok),
        "each user succeeded at least once"
    );
}

#[test]
fn layers_and_error_types_are_capped_and_merge() {
    let mut a = OpCell::default();
    for i in 0..40 {
        a.add(&op("gen", false, 1.0, Some(&format!("l{i}")), None));
    }
    assert_eq!(a.layers.len(), MAX_LAYERS + 1);
    assert_eq!(a.layers[OTHER], 40 - MAX_LAYERS as u64);
    let mut b = OpCell::default();
    b.add(&op("gen", true, 2.0, Some("new-layer"), Some(true)));
    a.merge(&b).unwrap();
    assert_eq!(a.layers.len(), MAX_LAYERS + 1, "still capped after a merge");
    assert_eq!(a.layers[OTHER], 40 - MAX_LAYERS as u64 + 1);
    assert_eq!(
        (a.count, a.failures, a.cache_hits, a.cache_known),
        (41, 40, 1, 1)
    );
}

#[test]
fn names_are_capped_per_service() {
    let b = NameBudget::default();
    for i in 0..MAX_OPERATIONS + 5 {
        b.admit("a", &format!("op{i}"));
    }
    assert_eq!(b.admit("a", "op0"), "op0");
    assert_eq!(b.admit("a", "fresh"), OTHER);
    assert_eq!(
        b.admit("b", "fresh"),
        "fresh",
        "another service has its own budget"
    );
    assert_eq!(b.overflowed(), 6);
}

#[test]
fn user_hash_is_stable() {
    assert_eq!(user_hash("u1"), user_hash("u1"));
    assert_ne!(user_hash("u1"), user_hash("u2"));
    // The first 8 bytes of SHA-256("u1"), big-endian: the same on every replica and release.
    assert_eq!(
        user_hash("u1"),
        i64::from_be_bytes([0xbb, 0x82, 0x03, 0x0d, 0xbc, 0x2b, 0xca, 0xba])
    );
}
