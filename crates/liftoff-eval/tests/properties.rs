//! Property tests: rollouts are monotonic, evaluation is deterministic, variant splits are
//! fair, and the black/white lists beat any rollout.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::{BTreeMap, HashMap};

use liftoff_eval::{
    ClientFeatures, ConstraintDef, Context, FeatureDef, Reason, Snapshot, StrategyDef, VariantDef,
};
use proptest::prelude::*;

fn rollout_strategy(rollout: &str, group: &str, stickiness: &str) -> StrategyDef {
    StrategyDef {
        name: "flexibleRollout".into(),
        parameters: BTreeMap::from([
            ("rollout".to_string(), rollout.to_string()),
            ("groupId".to_string(), group.to_string()),
            ("stickiness".to_string(), stickiness.to_string()),
        ]),
        ..StrategyDef::default()
    }
}

fn snapshot_of(features: Vec<FeatureDef>) -> Snapshot {
    Snapshot::compile(&ClientFeatures {
        features,
        ..ClientFeatures::default()
    })
}

fn flag(name: &str, strategies: Vec<StrategyDef>, variants: Vec<VariantDef>) -> FeatureDef {
    FeatureDef {
        name: name.into(),
        enabled: true,
        strategies,
        variants,
        ..FeatureDef::default()
    }
}

fn variant(name: &str, weight: u32) -> VariantDef {
    VariantDef {
        name: name.into(),
        weight,
        ..VariantDef::default()
    }
}

/// A percentage with up to two decimals, in 0–100.
fn percentage() -> impl Strategy<Value = f64> {
    (0u32..=10_000).prop_map(|n| f64::from(n) / 100.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn raising_the_rollout_never_drops_a_user(
        user in "[a-zA-Z0-9@._-]{1,24}",
        group in "[a-zA-Z0-9._-]{0,16}",
        a in percentage(),
        b in percentage(),
        stickiness in prop::sample::select(vec!["default", "userId"]),
    ) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let at = |p: f64| {
            snapshot_of(vec![flag("f", vec![rollout_strategy(&p.to_string(), &group, stickiness)], vec![])])
                .evaluate("f", &Context::with_user(user.clone()))
                .enabled
        };
        let (in_low, in_high) = (at(low), at(high));
        prop_assert!(!in_low || in_high, "user {user} in at {low}% but out at {high}%");
        // 0% is nobody, 100% is everybody.
        prop_assert!(!at(0.0));
        prop_assert!(at(100.0));
    }

    #[test]
    fn same_input_same_answer(
        user in proptest::option::of("[a-z0-9]{1,12}"),
        session in proptest::option::of("[a-z0-9]{1,12}"),
        env in prop::sample::select(vec!["production", "staging", "dev"]),
        plan in prop::sample::select(vec!["free", "pro", "enterprise"]),
        rollout in percentage(),
    ) {
        // Randomness is only used when neither a user nor a session id is present.
        prop_assume!(user.is_some() || session.is_some());
        let defs = ClientFeatures {
            features: vec![
                flag("rollout", vec![rollout_strategy(&rollout.to_string(), "g", "default")], vec![]),
                flag(
                    "targeted",
                    vec![StrategyDef {
                        constraints: vec![
                            ConstraintDef {
                                context_name: "environment".into(),
                                operator: "IN".into(),
                                values: vec!["production".into(), "staging".into()],
                                ..ConstraintDef::default()
                            },
                            ConstraintDef {
                                context_name: "plan".into(),
                                operator: "STR_STARTS_WITH".into(),
                                values: vec!["pro".into(), "ent".into()],
                                ..ConstraintDef::default()
                            },
                        ],
                        ..rollout_strategy("60", "targeted", "default")
                    }],
                    vec![variant("a", 1), variant("b", 2), variant("c", 3)],
                ),
            ],
            ..ClientFeatures::default()
        };
        let first = Snapshot::compile(&defs);
        let second = Snapshot::compile(&defs);
        let ctx = Context {
            user_id: user,
            session_id: session,
            environment: Some(env.to_string()),
            ..Context::default()
        }
        .property("plan", plan);
        for name in ["rollout", "targeted", "missing"] {
            let a = first.evaluate(name, &ctx);
            prop_assert_eq!(&a, &second.evaluate(name, &ctx));
            prop_assert_eq!(&a, &first.evaluate(name, &ctx));
            prop_assert_eq!(a.enabled, first.is_enabled(name, &ctx));
        }
    }

    #[test]
    fn whitelist_beats_rollout_zero_and_blacklist_beats_rollout_hundred(
        user in "[a-zA-Z0-9_-]{1,20}",
        others in proptest::collection::vec("[a-z]{1,8}", 0..5),
    ) {
        let mut white = flag("white", vec![rollout_strategy("0", "w", "default")], vec![]);
        white.whitelist = others.iter().cloned().chain([user.clone()]).collect();
        let mut black = flag("black", vec![rollout_strategy("100", "b", "default")], vec![]);
        black.blacklist = others.iter().cloned().chain([user.clone()]).collect();
        // On both lists: the blacklist wins.
        let mut both = flag("both", vec![rollout_strategy("100", "x", "default")], vec![]);
        both.whitelist = vec![user.clone()];
        both.blacklist = vec![user.clone()];
        let snapshot = snapshot_of(vec![white, black, both]);
        let ctx = Context::with_user(user.clone());

        let w = snapshot.evaluate("white", &ctx);
        prop_assert!(w.enabled);
        prop_assert_eq!(w.reason, Reason::TargetingMatch);
        let b = snapshot.evaluate("black", &ctx);
        prop_assert!(!b.enabled);
        prop_assert_eq!(b.reason, Reason::TargetingMatch);
        prop_assert!(!snapshot.evaluate("both", &ctx).enabled);

        // Somebody on neither list gets the rollout.
        let stranger = Context::with_user(format!("{user}-not-listed"));
        prop_assume!(!others.contains(&stranger.user_id.clone().unwrap()));
        prop_assert!(!snapshot.evaluate("white", &stranger).enabled);
        prop_assert!(snapshot.evaluate("black", &stranger).enabled);
    }
}

/// Counts variants over `users` distinct user ids.
fn distribution(
    snapshot: &Snapshot,
    flag: &str,
    users: usize,
    prefix: &str,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..users {
        let eval = snapshot.evaluate(flag, &Context::with_user(format!("{prefix}{i}")));
        *counts.entry(eval.variant.name).or_insert(0) += 1;
    }
    counts
}

fn assert_shares(counts: &HashMap<String, usize>, expected: &[(&str, f64)], users: usize) {
    let total: usize = counts.values().sum();
    assert_eq!(total, users);
    for (name, share) in expected {
        let got = *counts.get(*name).unwrap_or(&0) as f64 / users as f64;
        assert!(
            (got - share).abs() <= 0.02,
            "variant {name}: {:.2}% of users, expected {:.2}% ± 2% ({counts:?})",
            got * 100.0,
            share * 100.0
        );
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "unexpected variants: {counts:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn variant_shares_are_within_two_percent(
        group in "[a-zA-Z0-9.-]{1,24}",
        prefix in "[a-z]{0,6}",
    ) {
        const USERS: usize = 20_000;
        let snapshot = snapshot_of(vec![
            flag(&group, vec![], vec![variant("a", 50), variant("b", 50)]),
            flag("three", vec![rollout_strategy("100", &group, "default")], vec![
                variant("x", 200), variant("y", 300), variant("z", 500),
            ]),
            flag("fixed", vec![], vec![
                VariantDef { weight_type: Some("fix".into()), ..variant("f", 100) },
                variant("v1", 0),
                variant("v2", 0),
            ]),
        ]);
        assert_shares(&distribution(&snapshot, &group, USERS, &prefix), &[("a", 0.5), ("b", 0.5)], USERS);
        assert_shares(
            &distribution(&snapshot, "three", USERS, &prefix),
            &[("x", 0.2), ("y", 0.3), ("z", 0.5)],
            USERS,
        );
        assert_shares(
            &distribution(&snapshot, "fixed", USERS, &prefix),
            &[("f", 0.1), ("v1", 0.45), ("v2", 0.45)],
            USERS,
        );
    }
}

#[test]
fn rollout_share_matches_percentage() {
    const USERS: usize = 20_000;
    for pct in [1.0f64, 10.0, 33.3, 50.0, 87.5] {
        let snapshot = snapshot_of(vec![flag(
            "f",
            vec![rollout_strategy(&pct.to_string(), "grp", "default")],
            vec![],
        )]);
        let on = (0..USERS)
            .filter(|i| snapshot.is_enabled("f", &Context::with_user(format!("u{i}"))))
            .count();
        let share = on as f64 / USERS as f64 * 100.0;
        assert!(
            (share - pct.floor()).abs() <= 2.0,
            "{pct}% rollout reached {share:.2}% of users"
        );
    }
}
