//! Evaluation speed. Targets (Unleash's Yggdrasil engine on this class of machine): a boolean
//! flag with a 50% flexibleRollout under 81 ns, a flag with 2 constraints + 2 variants under
//! 285 ns.
//!
//! `cargo bench -p liftoff-eval --bench evaluate -- --quick`

#![allow(clippy::unwrap_used, reason = "bench code")]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use liftoff_eval::{
    ClientFeatures, ConstraintDef, Context, FeatureDef, Snapshot, StrategyDef, VariantDef,
    murmur3::murmur3_x86_32,
};

const USERS: usize = 4096;

fn rollout(pct: &str, group: &str) -> StrategyDef {
    StrategyDef {
        name: "flexibleRollout".into(),
        parameters: BTreeMap::from([
            ("rollout".to_string(), pct.to_string()),
            ("stickiness".to_string(), "default".to_string()),
            ("groupId".to_string(), group.to_string()),
        ]),
        ..StrategyDef::default()
    }
}

fn variant(name: &str) -> VariantDef {
    VariantDef {
        name: name.into(),
        weight: 500,
        weight_type: Some("variable".into()),
        stickiness: Some("default".into()),
        payload: Some(liftoff_eval::Payload {
            kind: "string".into(),
            value: format!("{name}-payload"),
        }),
        ..VariantDef::default()
    }
}

fn definitions() -> ClientFeatures {
    let mut features: Vec<FeatureDef> = (0..200)
        .map(|i| FeatureDef {
            name: format!("filler.flag.{i}"),
            enabled: i % 3 != 0,
            strategies: vec![rollout("25", &format!("filler.flag.{i}"))],
            ..FeatureDef::default()
        })
        .collect();
    features.push(FeatureDef {
        name: "checkout.bool-50pct".into(),
        enabled: true,
        strategies: vec![rollout("50", "checkout.bool-50pct")],
        ..FeatureDef::default()
    });
    features.push(FeatureDef {
        name: "checkout.variant-2c-2v".into(),
        enabled: true,
        strategies: vec![StrategyDef {
            constraints: vec![
                ConstraintDef {
                    context_name: "environment".into(),
                    operator: "IN".into(),
                    values: vec!["production".into()],
                    ..ConstraintDef::default()
                },
                ConstraintDef {
                    context_name: "plan".into(),
                    operator: "STR_STARTS_WITH".into(),
                    values: vec!["pro".into()],
                    ..ConstraintDef::default()
                },
            ],
            variants: vec![variant("blue"), variant("green")],
            ..rollout("100", "checkout.variant-2c-2v")
        }],
        ..FeatureDef::default()
    });
    ClientFeatures {
        features,
        ..ClientFeatures::default()
    }
}

fn contexts() -> Vec<Context> {
    (0..USERS)
        .map(|i| {
            Context {
                user_id: Some(format!(
                    "user-{:08x}",
                    (i as u32).wrapping_mul(2_654_435_761)
                )),
                session_id: Some(format!("session-{i}")),
                environment: Some("production".into()),
                app_name: Some("web".into()),
                ..Context::default()
            }
            .property("plan", if i % 2 == 0 { "pro" } else { "professional" })
        })
        .collect()
}

/// What evaluation costs without compiling: interpret the JSON-shaped definition directly,
/// parsing the rollout and building the `"{groupId}:{userId}"` key every time.
fn naive_is_enabled(def: &FeatureDef, ctx: &Context) -> bool {
    if !def.enabled {
        return false;
    }
    def.strategies.iter().any(|s| match s.name.as_str() {
        "flexibleRollout" => {
            let rollout: f64 = s
                .parameters
                .get("rollout")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0.0);
            let group = s.parameters.get("groupId").cloned().unwrap_or_default();
            let Some(id) = ctx.user_id.clone().or_else(|| ctx.session_id.clone()) else {
                return false;
            };
            let key = format!("{group}:{id}");
            let bucket = murmur3_x86_32(key.as_bytes(), 0) % 100 + 1;
            rollout > 0.0 && f64::from(bucket) <= rollout
        }
        "default" => true,
        _ => false,
    })
}

fn bench(c: &mut Criterion) {
    let defs = definitions();
    let snapshot = Snapshot::compile(&defs);
    let ctxs = contexts();
    let naive_def = defs
        .features
        .iter()
        .find(|f| f.name == "checkout.bool-50pct")
        .unwrap()
        .clone();

    // Sanity: both flags behave as the benchmark claims.
    let on = ctxs
        .iter()
        .filter(|c| snapshot.is_enabled("checkout.bool-50pct", c))
        .count();
    assert!(on > USERS * 2 / 5 && on < USERS * 3 / 5, "{on} of {USERS}");
    let e = snapshot.evaluate("checkout.variant-2c-2v", &ctxs[0]);
    assert!(e.enabled && e.variant.enabled, "{e:?}");
    assert!(
        ctxs.iter()
            .all(|c| naive_is_enabled(&naive_def, c)
                == snapshot.is_enabled("checkout.bool-50pct", c))
    );

    let mut group = c.benchmark_group("evaluate");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    let mut i = 0usize;
    group.bench_function("bool_50pct_rollout", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(snapshot.evaluate(black_box("checkout.bool-50pct"), &ctxs[i]))
        })
    });
    group.bench_function("variant_2_constraints_2_variants", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(snapshot.evaluate(black_box("checkout.variant-2c-2v"), &ctxs[i]))
        })
    });
    // The borrowing and boolean-only entry points, for comparison.
    group.bench_function("bool_50pct_rollout/evaluate_ref", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(snapshot.evaluate_ref(black_box("checkout.bool-50pct"), &ctxs[i]))
        })
    });
    group.bench_function("bool_50pct_rollout/is_enabled", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(snapshot.is_enabled(black_box("checkout.bool-50pct"), &ctxs[i]))
        })
    });
    group.bench_function("variant_2_constraints_2_variants/evaluate_ref", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(snapshot.evaluate_ref(black_box("checkout.variant-2c-2v"), &ctxs[i]))
        })
    });
    group.bench_function("bool_50pct_rollout/naive_reference", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(naive_is_enabled(black_box(&naive_def), &ctxs[i]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
