//! `liftoff demo` and `serve --demo`: realistic data so a new user sees a living dashboard.
//! Each capability adds its own part here: a team of users, the keys their apps use, and flags
//! at every stage of a rollout.

use anyhow::Context as _;
use liftoff_core::auth::{Actor, KeyName, Scope};
use liftoff_core::flags::NewFlag;
use liftoff_core::users::Role;
use liftoff_http::AppState;
use serde_json::json;

const REASON: &str = "demo data";
/// The demo's users; their passwords are their names repeated, since this is a demo.
const TEAM: &[(&str, Role)] = &[("maya.editor", Role::Editor), ("sam.viewer", Role::Viewer)];
const KEYS: &[(&str, Scope)] = &[
    ("web app (demo)", Scope::Ingest),
    ("ios app (demo)", Scope::Ingest),
    ("grafana (demo)", Scope::Read),
];

/// Fills the store once; a store that already has the demo team is left alone.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let existing = state.users.list().await?;
    if existing.iter().any(|u| u.username == TEAM[0].0) {
        tracing::info!("Demo data is already present.");
        return Ok(());
    }
    let by = Actor::System;
    for (name, role) in TEAM {
        let password = format!("{name}-{name}");
        state
            .users
            .create(&by, name, &password, *role)
            .await
            .with_context(|| format!("creating demo user {name}"))?;
    }
    for (name, scope) in KEYS {
        let key = KeyName::parse(name).context("demo key name")?;
        state
            .keys
            .create(&by, key, *scope, Some(REASON.into()))
            .await
            .with_context(|| format!("creating demo key {name}"))?;
    }
    seed_flags(state).await?;
    seed_requests(state).await?;
    seed_operations(state).await?;
    println!(
        "Demo data added: users {} (password: the name, a dash, the name again).",
        TEAM.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// Flags at several rollout stages, as a team mid-launch has them.
async fn seed_flags(state: &AppState) -> anyhow::Result<()> {
    let by = Actor::System;
    let flags = [
        json!({"flag_id": "new-checkout", "name": "New checkout flow", "description": "One-page checkout",
               "strategy": "percentage", "percentage": 25, "user_whitelist": ["qa-1", "qa-2"]}),
        json!({"flag_id": "search-v2", "name": "Search v2", "strategy": "gradual", "percentage": 10}),
        json!({"flag_id": "dark-mode", "name": "Dark mode", "strategy": "all_users"}),
        json!({"flag_id": "pricing-page-test", "name": "Pricing page experiment", "strategy": "all_users",
               "variants": [{"name": "control", "weight": 50}, {"name": "annual-first", "weight": 50, "payload": {"default_plan": "annual"}}]}),
        json!({"flag_id": "beta-dashboard", "name": "Beta dashboard", "strategy": "user_list", "user_whitelist": ["u1", "u2", "u3"]}),
        json!({"flag_id": "pro-reports", "name": "Reports for paid plans", "strategy": "user_attribute",
               "attributes": {"plan": ["pro", "team"]}, "environments": {"development": {"enabled": true, "percentage": 100}}}),
        json!({"flag_id": "legacy-export", "name": "Legacy CSV export", "enabled": false, "description": "Kill-switched after the export incident"}),
    ];
    for f in flags {
        let mut new: NewFlag = serde_json::from_value(f).context("demo flag")?;
        new.reason = Some(REASON.into());
        state
            .flags
            .create(&by, new)
            .await
            .context("creating a demo flag")?;
    }
    state
        .flags
        .plan_rollout(&by, "search-v2", 100.0, 15.0, Some(60), Some(REASON.into()))
        .await
        .context("scheduling the demo rollout")?;
    Ok(())
}

/// A small deterministic generator, so every demo shows the same month.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-normal around `median` (σ = 0.5).
    fn latency(&mut self, median: f64) -> f64 {
        let (u1, u2) = (self.next().max(1e-12), self.next());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (0.5 * z).exp()
    }
}

/// Thirty days of traffic for a shop: hourly before the last day, every five minutes in it,
/// with a deploy three days ago that made `/checkout` three times slower.
async fn seed_requests(state: &AppState) -> anyhow::Result<()> {
    use liftoff_core::monitoring::requests::CellKey;
    use liftoff_core::monitoring::sketch::DDSketch;
    // (method, route, requests per hour at peak, median ms, error share)
    const ROUTES: &[(&str, &str, f64, f64, f64)] = &[
        ("GET", "/", 900.0, 35.0, 0.001),
        ("GET", "/items/{id}", 1500.0, 60.0, 0.002),
        ("GET", "/search", 700.0, 180.0, 0.004),
        ("POST", "/cart", 300.0, 90.0, 0.003),
        ("POST", "/checkout", 120.0, 280.0, 0.01),
        ("GET", "/account", 200.0, 70.0, 0.002),
    ];
    let now = chrono::Utc::now().timestamp().div_euclid(60);
    let regression_at = now - 3 * 1440;
    let mut rng = Lcg(42);
    let mut cells = Vec::new();
    let mut minute = now - 30 * 1440;
    minute -= minute.rem_euclid(60);
    while minute < now {
        let step = if minute < now - 1440 { 60 } else { 5 };
        let hour_of_day = (minute.rem_euclid(1440) / 60) as f64;
        let diurnal = 0.35
            + 0.65
                * (std::f64::consts::PI * (hour_of_day - 3.0) / 24.0)
                    .sin()
                    .powi(2);
        for (method, route, per_hour, median, error_share) in ROUTES {
            let slow = *route == "/checkout" && minute >= regression_at;
            let median = if slow { median * 3.0 } else { *median };
            let n = (per_hour * diurnal * step as f64 / 60.0).round() as u64;
            let errors = (n as f64 * error_share * if slow { 4.0 } else { 1.0 }).round() as u64;
            let key = |status| CellKey {
                minute,
                service: "shop".into(),
                method: (*method).into(),
                route: (*route).into(),
                status,
            };
            let mut ok = DDSketch::default();
            // Twenty representative samples, each standing for its share of the requests.
            for i in 0..20u64 {
                let share =
                    n.saturating_sub(errors) / 20 + u64::from(i < n.saturating_sub(errors) % 20);
                ok.add_n(rng.latency(median), share);
            }
            if !ok.is_empty() {
                cells.push((key(200), ok));
            }
            if errors > 0 {
                let mut bad = DDSketch::default();
                bad.add_n(rng.latency(median * 4.0), errors);
                cells.push((key(503), bad));
            }
        }
        minute += step;
    }
    for chunk in cells.chunks(5_000) {
        state
            .monitoring
            .ingest_cells(chunk.to_vec())
            .await
            .context("writing demo request metrics")?;
    }
    state
        .monitoring
        .compact(chrono::Utc::now(), Default::default())
        .await
        .context("compacting demo request metrics")?;
    Ok(())
}

/// Thirty days of operations for the same shop: `outfit_generation` served by a cache, the
/// primary model or a fallback (the cache warming up over the month), and Stripe charges
/// (`external:stripe.charge`) with a few declined cards and timeouts, each with a stack trace.
async fn seed_operations(state: &AppState) -> anyhow::Result<()> {
    use liftoff_core::monitoring::operations::{Failure, Operation};
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::days(30);
    let mut rng = Lcg(7);
    let mut ops = Vec::new();
    let mut at = start;
    while at < now {
        let hour_of_day = f64::from(chrono::Timelike::hour(&at));
        let diurnal = 0.35
            + 0.65
                * (std::f64::consts::PI * (hour_of_day - 3.0) / 24.0)
                    .sin()
                    .powi(2);
        let progress = (at - start).num_minutes() as f64 / (30.0 * 1440.0);
        let n = (60.0 * diurnal).round() as u32;
        for _ in 0..n {
            let when = at + chrono::Duration::seconds((rng.next() * 3600.0) as i64);
            if when >= now {
                continue;
            }
            let n_user = (rng.next() * 400.0) as u32;
            let user = format!("user-{n_user}");
            // The cache answers more often as it warms up; misses go to the model, which
            // sometimes falls back to a smaller one.
            let roll = rng.next();
            let (layer, hit, median) = if roll < 0.35 + 0.3 * progress {
                ("cache", true, 15.0)
            } else if roll < 0.92 {
                ("primary", false, 900.0)
            } else {
                ("fallback", false, 400.0)
            };
            let failed = rng.next() < 0.02;
            ops.push(Operation {
                service: "shop".into(),
                operation: "outfit_generation".into(),
                user_id: Some(user.clone()),
                success: !failed,
                duration_ms: rng.latency(median).min(86_000_000.0),
                cache_hit: Some(hit),
                layer: Some(layer.into()),
                failure: failed.then(|| Failure {
                    error_type: "ModelTimeout".into(),
                    error: Some("the model did not answer within 10 s".into()),
                    stack_trace: Some(
                        "ModelTimeout: the model did not answer within 10 s\n  at generate_outfit (stylist/generate.py:88)\n  at handle (api/outfits.py:31)".into(),
                    ),
                    context: Some(serde_json::json!({"style": "casual", "items": 5})),
                }),
                at: when,
            });
            // About one generation in six of the buying third of the users ends in a purchase.
            if n_user.is_multiple_of(3) && rng.next() < 0.5 {
                let declined = rng.next() < 0.04;
                let timeout = !declined && rng.next() < 0.01;
                let (kind, message) = if declined {
                    ("CardError", "Your card was declined.")
                } else {
                    ("StripeTimeout", "Stripe did not answer within 5 s")
                };
                ops.push(Operation {
                    service: "shop".into(),
                    operation: "external:stripe.charge".into(),
                    user_id: Some(user),
                    success: !(declined || timeout),
                    duration_ms: rng.latency(if timeout { 5000.0 } else { 350.0 }),
                    cache_hit: None,
                    layer: None,
                    failure: (declined || timeout).then(|| Failure {
                        error_type: kind.into(),
                        error: Some(message.into()),
                        stack_trace: Some(format!(
                            "stripe.error.{kind}: {message}\n  at charge (payments/stripe.py:57)\n  at checkout (api/checkout.py:112)"
                        )),
                        context: Some(serde_json::json!({"amount_cents": 4900, "currency": "eur"})),
                    }),
                    at: when + chrono::Duration::seconds(30),
                });
            }
        }
        at += chrono::Duration::hours(1);
    }
    ops.retain(|o| o.at < now);
    while !ops.is_empty() {
        let rest = ops.split_off(ops.len().min(5_000));
        state
            .operations
            .record(std::mem::replace(&mut ops, rest))
            .await
            .context("writing demo operations")?;
    }
    state
        .operations
        .compact(now, Default::default())
        .await
        .context("compacting demo operations")?;
    Ok(())
}
