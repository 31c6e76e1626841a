//! Behaviour beyond the Unleash specification: reasons, Liftoff's lists, dependencies,
//! strategies the spec does not cover, deltas and the result shape.

#![allow(clippy::unwrap_used, reason = "test code")]

use chrono::{TimeZone, Utc};
use liftoff_eval::{ClientFeatures, Context, DeltaEvent, Reason, Snapshot};
use serde_json::json;

fn snapshot(defs: serde_json::Value) -> Snapshot {
    let defs: ClientFeatures = serde_json::from_value(defs).unwrap();
    Snapshot::compile(&defs)
}

fn user(id: &str) -> Context {
    Context::with_user(id)
}

fn rollout(pct: &str) -> serde_json::Value {
    json!({"name": "flexibleRollout", "parameters": {"rollout": pct, "stickiness": "default", "groupId": "g"}})
}

#[test]
fn reasons() {
    let s = snapshot(json!({"features": [
        {"name": "off", "enabled": false, "strategies": [{"name": "default"}]},
        {"name": "bare", "enabled": true},
        {"name": "default", "enabled": true, "strategies": [{"name": "default"}]},
        {"name": "full", "enabled": true, "strategies": [rollout("100")]},
        {"name": "half", "enabled": true, "strategies": [rollout("50")]},
        {"name": "env", "enabled": true, "strategies": [{"name": "default",
            "constraints": [{"contextName": "environment", "operator": "IN", "values": ["prod"]}]}]},
        {"name": "users", "enabled": true, "strategies": [{"name": "userWithId", "parameters": {"userIds": "a, b"}}]},
        {"name": "split", "enabled": true, "strategies": [{"name": "default"}],
         "variants": [{"name": "x", "weight": 500}, {"name": "y", "weight": 500,
                       "overrides": [{"contextName": "userId", "values": ["vip"]}]}]},
        {"name": "single", "enabled": true, "strategies": [{"name": "default"}],
         "variants": [{"name": "only", "weight": 1000}]},
        {"name": "dep", "enabled": true, "dependencies": [{"feature": "off"}], "strategies": []},
    ]}));

    let e = s.evaluate("nope", &user("a"));
    assert_eq!(
        (e.found, e.enabled, e.reason),
        (false, false, Reason::Error)
    );
    assert_eq!(e.variant.name, "disabled");
    assert!(!e.variant.feature_enabled);

    assert_eq!(s.evaluate("off", &user("a")).reason, Reason::Disabled);
    assert_eq!(s.evaluate("bare", &user("a")).reason, Reason::Static);
    assert_eq!(s.evaluate("default", &user("a")).reason, Reason::Static);
    assert_eq!(s.evaluate("full", &user("a")).reason, Reason::Static);
    assert_eq!(s.evaluate("dep", &user("a")).reason, Reason::Disabled);
    assert!(!s.evaluate("dep", &user("a")).enabled);

    let (mut on, mut off) = (0, 0);
    for i in 0..200 {
        let e = s.evaluate("half", &user(&format!("user-{i}")));
        if e.enabled {
            on += 1;
            assert_eq!(e.reason, Reason::TargetingMatch);
        } else {
            off += 1;
            assert_eq!(e.reason, Reason::Default);
        }
    }
    assert!(on > 50 && off > 50, "{on} on, {off} off");

    let prod = Context {
        environment: Some("prod".into()),
        ..user("a")
    };
    assert_eq!(s.evaluate("env", &prod).reason, Reason::TargetingMatch);
    assert_eq!(s.evaluate("env", &user("a")).reason, Reason::Default);
    assert_eq!(
        s.evaluate("users", &user("b")).reason,
        Reason::TargetingMatch
    );
    assert_eq!(s.evaluate("users", &user("c")).reason, Reason::Default);

    let e = s.evaluate("split", &user("a"));
    assert_eq!(e.reason, Reason::Split);
    assert!(e.variant.enabled && e.variant.feature_enabled);
    let e = s.evaluate("split", &user("vip"));
    assert_eq!(
        (e.reason, e.variant.name.as_str()),
        (Reason::TargetingMatch, "y")
    );
    let e = s.evaluate("single", &user("a"));
    assert_eq!(
        (e.reason, e.variant.name.as_str()),
        (Reason::Static, "only")
    );
}

#[test]
fn evaluation_serialises_with_openfeature_reasons() {
    let s = snapshot(json!({"features": [{"name": "f", "enabled": true,
        "variants": [{"name": "v", "weight": 1, "payload": {"type": "json", "value": "{\"a\":1}"}}]}]}));
    let value = serde_json::to_value(s.evaluate("f", &user("u"))).unwrap();
    assert_eq!(
        value,
        json!({"enabled": true, "reason": "STATIC", "found": true,
               "variant": {"name": "v", "enabled": true, "feature_enabled": true,
                           "payload": {"type": "json", "value": "{\"a\":1}"}}})
    );
    let borrowed = s.evaluate_ref("f", &user("u"));
    assert_eq!(borrowed.variant_name, "v");
    assert_eq!(borrowed.to_evaluation(), s.evaluate("f", &user("u")));
}

#[test]
fn dependencies() {
    let s = snapshot(json!({"features": [
        {"name": "parent", "enabled": true, "strategies": [{"name": "userWithId", "parameters": {"userIds": "in"}}],
         "variants": [{"name": "blue", "weight": 1}]},
        {"name": "child", "enabled": true, "dependencies": [{"feature": "parent"}]},
        {"name": "wants-off", "enabled": true, "dependencies": [{"feature": "parent", "enabled": false}]},
        {"name": "wants-blue", "enabled": true, "dependencies": [{"feature": "parent", "variants": ["blue"]}]},
        {"name": "wants-red", "enabled": true, "dependencies": [{"feature": "parent", "variants": ["red"]}]},
        {"name": "orphan", "enabled": true, "dependencies": [{"feature": "ghost"}]},
        {"name": "grandchild", "enabled": true, "dependencies": [{"feature": "child"}]},
    ]}));
    assert!(s.evaluate("child", &user("in")).enabled);
    assert!(!s.evaluate("child", &user("out")).enabled);
    assert!(s.evaluate("wants-off", &user("out")).enabled);
    assert!(!s.evaluate("wants-off", &user("in")).enabled);
    assert!(s.evaluate("wants-blue", &user("in")).enabled);
    assert!(s.is_enabled("wants-blue", &user("in")));
    assert!(!s.evaluate("wants-red", &user("in")).enabled);
    assert!(!s.evaluate("orphan", &user("in")).enabled);
    // Only one level of dependencies.
    assert!(!s.evaluate("grandchild", &user("in")).enabled);
}

#[test]
fn strategies_outside_the_spec() {
    let s = snapshot(json!({"features": [
        {"name": "host", "enabled": true, "strategies": [{"name": "applicationHostname",
            "parameters": {"hostNames": "web-1, Web-2"}}]},
        {"name": "ips", "enabled": true, "strategies": [{"name": "remoteAddress",
            "parameters": {"IPs": "10.0.0.0/8, 192.168.1.7, 2001:db8::/32"}}]},
        {"name": "custom", "enabled": true, "strategies": [{"name": "myCustomStrategy"}]},
        {"name": "paused", "enabled": true, "strategies": [{"name": "default", "disabled": true}]},
        {"name": "paused-then-users", "enabled": true, "strategies": [
            {"name": "default", "disabled": true},
            {"name": "userWithId", "parameters": {"userIds": "u"}}]},
        {"name": "numeric-params", "enabled": true, "strategies": [{"name": "flexibleRollout",
            "parameters": {"rollout": 100, "groupId": "g", "stickiness": "default"}}]},
        {"name": "random", "enabled": true, "strategies": [{"name": "flexibleRollout",
            "parameters": {"rollout": "50", "groupId": "g", "stickiness": "random"}}]},
    ]}));
    let host = |h: &str| Context::default().property("hostname", h);
    assert!(s.evaluate("host", &host("web-1")).enabled);
    assert!(s.evaluate("host", &host("WEB-2")).enabled);
    assert!(!s.evaluate("host", &host("web-3")).enabled);
    assert!(!s.evaluate("host", &Context::default()).enabled);

    let ip = |a: &str| Context {
        remote_address: Some(a.into()),
        ..Context::default()
    };
    assert!(s.evaluate("ips", &ip("10.20.30.40")).enabled);
    assert!(s.evaluate("ips", &ip("192.168.1.7")).enabled);
    assert!(s.evaluate("ips", &ip("2001:db8:1::1")).enabled);
    assert!(!s.evaluate("ips", &ip("192.168.1.8")).enabled);
    assert!(!s.evaluate("ips", &ip("not an ip")).enabled);

    assert!(!s.evaluate("custom", &user("u")).enabled);
    let paused = s.evaluate("paused", &user("u"));
    assert_eq!((paused.enabled, paused.reason), (false, Reason::Default));
    assert!(s.evaluate("paused-then-users", &user("u")).enabled);
    assert!(s.evaluate("numeric-params", &Context::default()).enabled);

    // Random stickiness: about half, whoever asks.
    let on = (0..2000)
        .filter(|_| s.is_enabled("random", &user("same")))
        .count();
    assert!((800..1200).contains(&on), "{on} of 2000");
}

#[test]
fn dates_use_the_evaluation_clock_when_the_context_has_none() {
    let s = snapshot(
        json!({"features": [{"name": "launch", "enabled": true, "strategies": [{"name": "default",
        "constraints": [{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2999-01-01T00:00:00Z"}]}]}]}),
    );
    let before = Utc.with_ymd_and_hms(2998, 12, 31, 23, 59, 59).unwrap();
    let after = Utc.with_ymd_and_hms(2999, 1, 1, 0, 0, 1).unwrap();
    assert!(!s.evaluate_at("launch", &Context::default(), before).enabled);
    assert!(s.evaluate_at("launch", &Context::default(), after).enabled);
    // The context's time wins over the clock.
    let ctx = Context {
        current_time: Some("3000-05-05T00:00:00Z".into()),
        ..Context::default()
    };
    assert!(s.evaluate_at("launch", &ctx, before).enabled);
    // And the real clock is well before 2999.
    assert!(!s.evaluate("launch", &Context::default()).enabled);
}

#[test]
fn strategy_variants_take_precedence_and_group_by_strategy() {
    let s = snapshot(json!({"features": [{"name": "f", "enabled": true,
        "strategies": [
            {"name": "userWithId", "parameters": {"userIds": "s"}, "variants": [{"name": "strategy", "weight": 1}]},
            {"name": "default"}],
        "variants": [{"name": "feature", "weight": 1}]}]}));
    assert_eq!(s.evaluate("f", &user("s")).variant.name, "strategy");
    assert_eq!(s.evaluate("f", &user("t")).variant.name, "feature");
}

#[test]
fn snapshot_accessors_and_deltas() {
    let mut defs: ClientFeatures = serde_json::from_value(json!({"features": [
        {"name": "a", "enabled": true}, {"name": "b", "enabled": true}, {"name": "a", "enabled": false}]}))
    .unwrap();
    let s = Snapshot::compile(&defs);
    assert_eq!(s.len(), 2);
    assert!(!s.is_empty());
    assert_eq!(s.names().collect::<Vec<_>>(), vec!["a", "b"]);
    assert!(s.contains("b") && !s.contains("c"));
    // The last duplicate wins.
    assert!(!s.evaluate("a", &Context::default()).enabled);

    let events: Vec<DeltaEvent> = serde_json::from_value(json!([
        {"type": "feature-removed", "featureName": "b"},
        {"type": "feature-updated", "feature": {"name": "c", "enabled": true,
            "strategies": [{"name": "default", "segments": [7]}]}},
        {"type": "segment-updated", "segment": {"id": 7, "constraints": [
            {"contextName": "appName", "operator": "IN", "values": ["web"]}]}},
    ]))
    .unwrap();
    defs.apply_delta(&events);
    let s = Snapshot::compile(&defs);
    assert!(!s.contains("b"));
    let web = Context {
        app_name: Some("web".into()),
        ..Context::default()
    };
    assert!(s.evaluate("c", &web).enabled);
    assert!(!s.evaluate("c", &Context::default()).enabled);

    defs.apply_delta(&[DeltaEvent::SegmentRemoved {
        event_id: None,
        segment_id: 7,
    }]);
    // A strategy referring to a segment that is gone never matches.
    assert!(!Snapshot::compile(&defs).evaluate("c", &web).enabled);
    assert!(Snapshot::default().is_empty());
}
