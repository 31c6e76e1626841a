//! `liftoff demo` and `serve --demo`: realistic data so a new user sees a living dashboard.
//! Each capability adds its own part here: a team of users, the keys their apps use, flags
//! at every stage of a rollout (one rolled back by its guardrail), and experiments, one
//! shipped and one still running.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use liftoff_core::analytics::{Clock, EventError, EventRecord, EventsService};
use liftoff_core::audit::{AuditService, AuditStore};
use liftoff_core::auth::{Actor, KeyName, Scope};
use liftoff_core::batch::SubmitError;
use liftoff_core::clock::ManualClock;
use liftoff_core::experiments::model::{
    AnalysisSettings, DEFAULT_WINDOW_HOURS, Metric, MetricKind, Metrics, NewExperiment,
    StopExperiment,
};
use liftoff_core::experiments::results::DecisionStatus;
use liftoff_core::experiments::stats::Method;
use liftoff_core::flags::guard::{Guarding, GuardrailMetric, OFF, ON};
use liftoff_core::flags::{Environment, FlagService, FlagStore, NewFlag, PlanState};
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

/// Fills an empty store once; a store that already has the demo team is left alone, and one
/// that holds anything else (flags, monitors, keys, users, request metrics, events) is
/// refused: demo data mixed into real data would be taken for real.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let existing = state.users.list().await?;
    if existing.iter().any(|u| u.username == TEAM[0].0) {
        tracing::info!("Demo data is already present.");
        return Ok(());
    }
    let found = data_present(state).await?;
    if !found.is_empty() {
        anyhow::bail!(
            "this data directory already holds data of its own ({}), and demo data would mix              with it, so nothing was added. Run the demo in a directory of its own, e.g.              `liftoff serve --demo --data ./liftoff-demo`",
            found.join(", ")
        );
    }
    let by = Actor::System;
    // One instant for every part that places the incident: the request metrics and the alert
    // must agree on its 5-minute step however long seeding takes.
    let now = chrono::Utc::now();
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
    seed_requests(state, now).await?;
    seed_operations(state).await?;
    seed_events(state).await?;
    seed_shipped_experiment(state)
        .await
        .context("seeding the finished experiment")?;
    seed_running_experiment(state)
        .await
        .context("seeding the running experiment")?;
    seed_guarded_rollout(state)
        .await
        .context("seeding the guarded rollout")?;
    crate::demo_incidents::seed(state, now)
        .await
        .context("seeding uptime monitors and an incident")?;
    crate::demo_launch::seed(state)
        .await
        .context("seeding the launch")?;
    println!(
        "Demo data added: users {} (password: the name, a dash, the name again).",
        TEAM.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// What a store holds beyond the first start's own `admin` user and admin key, described for
/// people ("2 flags", "1 uptime monitor").
async fn data_present(state: &AppState) -> anyhow::Result<Vec<String>> {
    let count = |n: usize, what: &str| {
        (n > 0).then(|| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    };
    // `admin` is the first start's own user; anyone else was added by people.
    let users = state
        .users
        .list()
        .await?
        .iter()
        .filter(|u| u.username != "admin")
        .count();
    let all_keys = state.store.count_active_keys(None).await?;
    let admin_keys = state.store.count_active_keys(Some(Scope::Admin)).await?;
    let monitors = state.uptime.list().await?.len();
    // Liftoff's own API traffic is there after any start; only apps' metrics are data.
    let services = state
        .monitoring
        .services()
        .await?
        .iter()
        .filter(|s| s.as_str() != liftoff_core::monitoring::service::OWN_SERVICE)
        .count();
    Ok([
        count(state.flags.list().len(), "flag"),
        count(monitors, "uptime monitor"),
        count(users, "other user"),
        count(
            all_keys.saturating_sub(admin_keys.min(1)) as usize,
            "API key",
        ),
        count(services, "service with request metrics"),
        count(state.events.count().await? as usize, "product event"),
        count(
            {
                let c = state.launch.counts().await?;
                (c.admitted + c.waiting) as usize
            },
            "launch user",
        ),
    ]
    .into_iter()
    .flatten()
    .collect())
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
        json!({"flag_id": crate::demo_incidents::FLAG, "name": "Payment client 4.2", "strategy": "percentage", "percentage": 50,
               "enabled": false, "description": "Turned off during the checkout incident: 4.2 sent an empty idempotency key"}),
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
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> f64 {
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

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.next() < p
    }

    /// An integer in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + (self.next() * (hi - lo) as f64) as u64
    }

    /// One of `items`, by weight.
    fn pick<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|i| i.1).sum();
        let mut roll = self.next() * total;
        for (item, weight) in items {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }
}

/// The share of the peak traffic at an hour of the (UTC) day: quiet at night, busy afternoons.
fn diurnal(hour_of_day: f64) -> f64 {
    0.35 + 0.65
        * (std::f64::consts::PI * (hour_of_day - 3.0) / 24.0)
            .sin()
            .powi(2)
}

/// Thirty days of traffic for a shop: hourly before the last day, every five minutes in it,
/// with a deploy three days ago that made `/checkout` three times slower (and its errors go
/// from 1 % to 2 %), and the incident's spike of failing checkouts.
async fn seed_requests(
    state: &AppState,
    now_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
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
    let now = now_at.timestamp().div_euclid(60);
    let regression_at = now - 3 * 1440;
    // The incident (see `demo_incidents`): card payments failing on /checkout until the flag
    // was turned off.
    let incident = crate::demo_incidents::incident_start(now_at).timestamp() / 60;
    let incident = incident..incident + crate::demo_incidents::FAILING_MINUTES;
    let mut rng = Lcg(42);
    let mut cells = Vec::new();
    // What rounding to whole errors left over, carried to the next step, so that over any
    // window every rate comes out as set, give or take one request.
    let mut owed = [0.0f64; ROUTES.len()];
    let mut minute = now - 30 * 1440;
    minute -= minute.rem_euclid(60);
    while minute < now {
        let step = if minute < now - 1440 { 60 } else { 5 };
        let diurnal = diurnal((minute.rem_euclid(1440) / 60) as f64);
        for (r, (method, route, per_hour, median, error_share)) in ROUTES.iter().enumerate() {
            let checkout = *route == "/checkout";
            let slow = checkout && minute >= regression_at;
            let failing = checkout && incident.contains(&minute);
            let median = if slow { median * 3.0 } else { *median };
            let n = (per_hour * diurnal * step as f64 / 60.0).round() as u64;
            let share = if failing {
                crate::demo_incidents::ERROR_RATE
            } else if slow {
                error_share * 2.0
            } else {
                *error_share
            };
            owed[r] += n as f64 * share;
            let errors = (owed[r].round().max(0.0) as u64).min(n);
            owed[r] -= errors as f64;
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
                // Checkout fails where the payment provider refuses: 502, as the incident says.
                cells.push((key(if checkout { 502 } else { 503 }), bad));
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
        let diurnal = diurnal(f64::from(chrono::Timelike::hour(&at)));
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

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// Shoppers in the demo month (~200k events: a few seconds in a debug build).
const SHOPPERS: u64 = 7_000;
/// Events per ingest call (the service takes at most 10,000).
const EVENT_BATCH: usize = 5_000;

const PLANS: &[(&str, f64)] = &[("free", 0.75), ("pro", 0.2), ("team", 0.05)];
const COUNTRIES: &[(&str, f64)] = &[
    ("US", 0.34),
    ("DE", 0.12),
    ("GB", 0.1),
    ("FR", 0.08),
    ("IN", 0.08),
    ("BR", 0.07),
    ("CA", 0.06),
    ("NL", 0.05),
    ("ES", 0.05),
    ("JP", 0.05),
];
const BROWSERS: &[(&str, f64)] = &[
    ("Chrome", 0.62),
    ("Safari", 0.2),
    ("Firefox", 0.08),
    ("Edge", 0.07),
    ("Samsung Internet", 0.03),
];
const PAGES: &[(&str, f64)] = &[
    ("/", 0.3),
    ("/pricing", 0.12),
    ("/blog", 0.1),
    ("/account", 0.1),
    ("/settings", 0.06),
    ("/docs", 0.08),
    ("/cart", 0.1),
    ("/about", 0.04),
    ("/help", 0.1),
];
const REFERRERS: &[(&str, f64)] = &[
    ("google", 0.45),
    ("direct", 0.25),
    ("newsletter", 0.1),
    ("twitter", 0.08),
    ("producthunt", 0.07),
    ("partner", 0.05),
];
const QUERIES: &[(&str, f64)] = &[
    ("linen shirt", 0.2),
    ("running shoes", 0.18),
    ("rain jacket", 0.14),
    ("black jeans", 0.12),
    ("summer dress", 0.12),
    ("wool scarf", 0.08),
    ("sneakers", 0.1),
    ("gift card", 0.06),
];
const CATEGORIES: &[(&str, f64)] = &[
    ("shirts", 0.25),
    ("shoes", 0.25),
    ("jackets", 0.2),
    ("dresses", 0.15),
    ("accessories", 0.15),
];
/// In-app features reported as `feature_used {feature}`.
const FEATURES: &[(&str, f64)] = &[
    ("outfit-generator", 0.3),
    ("wishlist", 0.25),
    ("size-guide", 0.2),
    ("saved-searches", 0.15),
    ("share-look", 0.1),
];

/// One demo shopper: who they are, how engaged, and how far down the funnel they go.
struct Shopper {
    id: String,
    n: u64,
    /// Mobile app users send no `session_id` (sessions are then 30 minutes of inactivity).
    web: bool,
    plan: &'static str,
    country: &'static str,
    browser: &'static str,
    referrer: &'static str,
    /// Day-1 return probability; decays with the days since signup.
    stickiness: f64,
    /// The deepest funnel step this shopper ever reaches: 0 signup, 1 search, 2 view_item,
    /// 3 add_to_cart, 4 purchase.
    depth: u8,
    /// Sessions so far (names explicit sessions).
    sessions: u32,
}

/// A step of the shopping funnel within a session.
#[derive(Clone, Copy)]
enum Step {
    Search,
    ViewItem,
    AddToCart,
    Checkout,
}

impl Shopper {
    fn new(rng: &mut Lcg, n: u64) -> Self {
        let web = rng.chance(0.65);
        // Log-normal engagement; two in five never come back.
        let (u1, u2) = (rng.next().max(1e-12), rng.next());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let stickiness = if rng.chance(0.4) {
            0.0
        } else {
            (0.45 * (0.7 * z).exp()).min(0.95)
        };
        let mut depth = 0;
        for p in [0.75, 0.7, 0.6, 0.6] {
            if !rng.chance(p) {
                break;
            }
            depth += 1;
        }
        Self {
            id: format!("user-{n}"),
            n,
            web,
            plan: rng.pick(PLANS),
            country: rng.pick(COUNTRIES),
            browser: if web {
                rng.pick(BROWSERS)
            } else {
                "Liftoff Shop iOS"
            },
            referrer: rng.pick(REFERRERS),
            stickiness,
            depth,
            sessions: 0,
        }
    }

    /// Whether the shopper is in a flag's rollout (a stable share of the shoppers).
    fn in_rollout(&self, flag: &str, percent: u64) -> bool {
        let salt: u64 = flag.bytes().map(u64::from).sum();
        (self.n.wrapping_mul(2_654_435_761).wrapping_add(salt * 97)) % 100 < percent
    }

    /// One session starting at `at`: landing page, the next funnel steps, browsing, features,
    /// now and then an error. Events after `now` are dropped.
    fn session(&mut self, rng: &mut Lcg, mut at: i64, now: i64, out: &mut Vec<EventRecord>) {
        self.sessions += 1;
        let session = self
            .web
            .then(|| format!("web-{}-{}", self.n, self.sessions));
        let first = self.sessions == 1;
        let regression_at = now - 3 * DAY_MS;
        let mut emit = |at: i64, event: &str, properties: serde_json::Value| {
            if at < now {
                out.push(EventRecord {
                    event: event.into(),
                    user_id: self.id.clone(),
                    session_id: session.clone(),
                    timestamp: Some(at.into()),
                    properties: Some(properties),
                    uuid: None,
                });
            }
        };
        let step = |rng: &mut Lcg| 5_000 + (rng.next() * 90_000.0) as i64;
        let landing = if first { "/" } else { rng.pick(PAGES) };
        emit(
            at,
            "page_view",
            json!({"path": landing, "referrer": self.referrer, "platform": if self.web { "web" } else { "ios" }}),
        );
        if first {
            at += step(rng);
            emit(
                at,
                "signup",
                json!({"method": if rng.chance(0.6) { "email" } else { "google" },
                       "$set": {"plan": self.plan, "country": self.country, "browser": self.browser,
                                "platform": if self.web { "web" } else { "ios" }},
                       "$set_once": {"initial_referrer": self.referrer}}),
            );
        } else if self.plan == "free" && rng.chance(0.02) {
            // A few free shoppers upgrade later in the month.
            self.plan = "pro";
            at += step(rng);
            emit(
                at,
                "plan_upgraded",
                json!({"from": "free", "to": "pro", "$set": {"plan": "pro"}}),
            );
        }
        // Dark mode is on for everyone: a share of sessions report it.
        if rng.chance(0.15) {
            at += step(rng);
            emit(at, "dark-mode", json!({"enabled": true}));
        }
        // The shopping journey: each step only as deep as this shopper ever goes, and less
        // likely the further it is.
        let mut journey = Vec::new();
        if self.depth >= 1 && rng.chance(0.7) {
            journey.push(Step::Search);
            if rng.chance(0.3) {
                journey.push(Step::Search);
            }
            if self.depth >= 2 && rng.chance(0.8) {
                for _ in 0..rng.range(1, 4) {
                    journey.push(Step::ViewItem);
                }
                if self.depth >= 3 && rng.chance(0.5) {
                    journey.push(Step::AddToCart);
                    if self.depth >= 4 && rng.chance(0.6) {
                        journey.push(Step::Checkout);
                    }
                }
            }
        }
        // Browsing around it: pages, features, flags, now and then an error.
        let browsing = 2 + rng.range(0, 9) as usize;
        let mut journey = journey.into_iter();
        let mut left = browsing + journey.len();
        let mut browsed = 0;
        while left > 0 {
            at += step(rng);
            let steps_left = journey.len();
            let next = if steps_left > 0
                && (browsed >= browsing || rng.next() < steps_left as f64 / left as f64)
            {
                journey.next()
            } else {
                browsed += 1;
                None
            };
            left -= 1;
            match next {
                Some(Step::Search) => {
                    let query = rng.pick(QUERIES);
                    emit(
                        at,
                        "search",
                        json!({"query": query, "results": rng.range(0, 60)}),
                    );
                    if self.in_rollout("search-v2", 10) {
                        emit(at + 300, "search-v2", json!({"query": query}));
                    }
                }
                Some(Step::ViewItem) => {
                    let item = rng.range(1, 400);
                    emit(
                        at,
                        "view_item",
                        json!({"item_id": format!("item-{item}"), "category": rng.pick(CATEGORIES),
                               "price": 15 + item % 120}),
                    );
                }
                Some(Step::AddToCart) => emit(
                    at,
                    "add_to_cart",
                    json!({"item_id": format!("item-{}", rng.range(1, 400)), "quantity": rng.range(1, 3)}),
                ),
                Some(Step::Checkout) => {
                    let new_checkout = self.in_rollout("new-checkout", 25);
                    if new_checkout {
                        emit(at, "new-checkout", json!({"step": "start"}));
                    }
                    at += step(rng);
                    // The deploy three days ago broke some checkouts.
                    let fail = if at >= regression_at { 0.15 } else { 0.04 };
                    if rng.chance(fail) {
                        emit(
                            at,
                            "error",
                            json!({"error_type": if rng.chance(0.6) { "PaymentDeclined" } else { "CheckoutTimeout" },
                                   "path": "/checkout"}),
                        );
                    } else {
                        emit(
                            at,
                            "purchase",
                            json!({"amount": 20 + rng.range(0, 180), "currency": "EUR",
                                   "items": rng.range(1, 4),
                                   "checkout": if new_checkout { "one-page" } else { "classic" }}),
                        );
                    }
                }
                None => {
                    let roll = rng.next();
                    if roll < 0.62 {
                        let path = rng.pick(PAGES);
                        emit(at, "page_view", json!({"path": path}));
                        if path == "/pricing" && rng.chance(0.5) {
                            let variant = if self.in_rollout("pricing-page-test", 50) {
                                "annual-first"
                            } else {
                                "control"
                            };
                            emit(at + 200, "pricing-page-test", json!({"variant": variant}));
                        }
                    } else if roll < 0.97 {
                        emit(at, "feature_used", json!({"feature": rng.pick(FEATURES)}));
                        if matches!(self.plan, "pro" | "team") && rng.chance(0.2) {
                            emit(at + 500, "pro-reports", json!({"report": "weekly-sales"}));
                        }
                    } else {
                        let (kind, message) = if self.web {
                            (
                                "TypeError",
                                "Cannot read properties of undefined (reading 'price')",
                            )
                        } else {
                            ("NetworkError", "The request timed out.")
                        };
                        emit(
                            at,
                            "$exception",
                            json!({"error_type": kind, "$exception_type": kind,
                                   "$exception_message": message, "path": "/items/{id}"}),
                        );
                    }
                }
            }
        }
    }
}

/// A time on the (UTC) day starting at `day_ms`, following the diurnal curve.
fn time_of_day(rng: &mut Lcg, day_ms: i64) -> i64 {
    loop {
        let offset = rng.next() * DAY_MS as f64;
        if rng.next() < diurnal(offset / 3_600_000.0) {
            return day_ms + offset as i64;
        }
    }
}

/// Thirty days of product events for the same shop, through `EventsService` like any ingest
/// (validated, persons merged): signups growing over the month; sessions of page views,
/// searches, items viewed, carts and purchases dropping off along the funnel; in-app features
/// (`feature_used`) and events named after the demo flags; `$exception` and checkout `error`
/// events (more since the deploy three days ago); `$set` person properties (plan, country,
/// browser, platform); web sessions with explicit `session_id`s and app sessions without;
/// returning shoppers whose visits decay with the days since they signed up.
async fn seed_events(state: &AppState) -> anyhow::Result<()> {
    let now = liftoff_core::analytics::event::now_ms();
    let start = now - 30 * DAY_MS;
    let mut rng = Lcg(2024);
    let mut pending: Vec<EventRecord> = Vec::with_capacity(EVENT_BATCH * 2);
    // Batches are validated and written on other tasks while the next ones are generated.
    let mut writing = std::collections::VecDeque::new();
    let mut stored = 0u64;
    for n in 0..SHOPPERS {
        let mut shopper = Shopper::new(&mut rng, n);
        // Growth: signups per day rise over the month (a density rising linearly), at busy
        // hours more than at night, and at least half an hour before now.
        let signup = loop {
            let t = start + ((now - 30 * MINUTE_MS - start) as f64 * rng.next().sqrt()) as i64;
            if rng.next() < diurnal(t.rem_euclid(DAY_MS) as f64 / 3_600_000.0) {
                break t;
            }
        };
        shopper.session(&mut rng, signup, now, &mut pending);
        let day0 = signup - signup.rem_euclid(DAY_MS);
        let mut day = day0;
        loop {
            day += DAY_MS;
            if day >= now {
                break;
            }
            let since = ((day - day0) / DAY_MS) as f64;
            if !rng.chance(shopper.stickiness * since.powf(-0.5)) {
                continue;
            }
            let mut at = time_of_day(&mut rng, day);
            shopper.session(&mut rng, at, now, &mut pending);
            // Some come back later the same day (after the 30 minutes that end a session).
            if rng.chance(0.25) {
                at += 75 * MINUTE_MS + (rng.next() * 5.0 * 3_600_000.0) as i64;
                if at < day + DAY_MS {
                    shopper.session(&mut rng, at, now, &mut pending);
                }
            }
        }
        while pending.len() >= EVENT_BATCH {
            let rest = pending.split_off(EVENT_BATCH);
            let batch = std::mem::replace(&mut pending, rest);
            writing.push_back(tokio::spawn(ingest_demo_events(
                state.events.clone(),
                batch,
                now,
            )));
            if writing.len() > 2
                && let Some(oldest) = writing.pop_front()
            {
                stored += oldest.await??;
            }
        }
    }
    if !pending.is_empty() {
        writing.push_back(tokio::spawn(ingest_demo_events(
            state.events.clone(),
            pending,
            now,
        )));
    }
    for task in writing {
        stored += task.await??;
    }
    tracing::info!(
        events = stored,
        shoppers = SHOPPERS,
        "Demo product events added."
    );
    Ok(())
}

async fn ingest_demo_events(
    events: EventsService,
    records: Vec<EventRecord>,
    now: i64,
) -> anyhow::Result<u64> {
    // Several writers share the ingest queue, which refuses what would wait too long; like any
    // well-behaved client, the demo backs off and retries what was refused (nothing of a refused
    // batch was committed, so a retry cannot duplicate).
    let mut backoff = std::time::Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let valid = events
            .validate(
                records
                    .iter()
                    .cloned()
                    .map(|r| (r, Clock::Client))
                    .collect(),
                now,
            )
            .context("validating demo events")?;
        match events.ingest(valid).await {
            Err(EventError::Submit(SubmitError::Overloaded)) if attempt < 40 => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            }
            done => return Ok(done.context("writing demo events")?.accepted),
        }
    }
}

/// The finished experiment: the redesigned checkout against the old one, shipped.
pub const SHIPPED_EXPERIMENT: &str = "checkout-redesign";
/// The variant it shipped to everyone.
pub const SHIPPED_VARIANT: &str = "redesign";
/// The experiment still collecting exposures.
pub const RUNNING_EXPERIMENT: &str = "onboarding-tips";
/// The flag whose guarded rollout a guardrail rolled back.
pub const ROLLED_BACK_FLAG: &str = "search-v3";

const HOUR_MS: i64 = 60 * MINUTE_MS;

/// A flag serving two variants half and half, as an experiment needs.
async fn split_flag(
    state: &AppState,
    flag: &str,
    name: &str,
    description: &str,
    variants: [&str; 2],
) -> anyhow::Result<()> {
    let mut new: NewFlag = serde_json::from_value(json!({
        "flag_id": flag, "name": name, "description": description, "strategy": "all_users",
        "variants": [{"name": variants[0], "weight": 50}, {"name": variants[1], "weight": 50}]}))
    .context("demo flag")?;
    new.reason = Some(REASON.into());
    state
        .flags
        .create(&Actor::System, new)
        .await
        .with_context(|| format!("creating the demo flag {flag}"))?;
    Ok(())
}

/// What `flags` serves `user` in production: whether the flag is on, and its variant if any.
/// Exposures and labelled requests follow the flags' own assignment, as an SDK's would.
fn served(flags: &FlagService, flag: &str, user: &str) -> (bool, Option<String>) {
    let ctx = liftoff_core::flags::context(Some(user.to_owned()), BTreeMap::new());
    let e = flags.evaluate(flag, Environment::Production, &ctx);
    (e.enabled, e.variant.enabled.then_some(e.variant.name))
}

fn event(user: &str, name: &str, at: i64, properties: serde_json::Value) -> EventRecord {
    EventRecord {
        event: name.into(),
        user_id: user.into(),
        session_id: None,
        timestamp: Some(at.into()),
        properties: Some(properties),
        uuid: None,
    }
}

/// A metric on a product event, over the default window after the first exposure.
fn event_metric(kind: MetricKind, event: &str) -> Metric {
    Metric {
        kind,
        event: Some(event.into()),
        property: None,
        denominator_event: None,
        window_hours: DEFAULT_WINDOW_HOURS,
        higher_is_better: None,
    }
}

/// A time in `from..to`, busier in the afternoon than at night.
fn busy_time(rng: &mut Lcg, from: i64, to: i64) -> i64 {
    loop {
        let t = from + ((to - from) as f64 * rng.next()) as i64;
        if rng.next() < diurnal(t.rem_euclid(DAY_MS) as f64 / 3_600_000.0) {
            return t;
        }
    }
}

async fn ingest_all(state: &AppState, records: Vec<EventRecord>, now: i64) -> anyhow::Result<u64> {
    let mut stored = 0;
    for chunk in records.chunks(EVENT_BATCH) {
        stored += ingest_demo_events(state.events.clone(), chunk.to_vec(), now).await?;
    }
    Ok(stored)
}

/// Whether `flag`'s rollout plan was rolled back by a guardrail.
async fn rolled_back(flags: &FlagService, flag: &str) -> anyhow::Result<bool> {
    Ok(flags
        .rollout_plans()
        .await?
        .iter()
        .any(|p| p.flag_id.as_str() == flag && p.state == PlanState::RolledBack))
}

/// Two weeks of the checkout redesign against the old checkout, for 2,000 of the shoppers:
/// each was shown the flag on starting a checkout (PostHog's `$feature_flag_called`, some of
/// them twice), and 14 % of the redesign's shoppers completed the checkout within three days
/// against 10 % of control's. Stopped since, the redesign shipped to everyone with the result
/// as the reason.
async fn seed_shipped_experiment(state: &AppState) -> anyhow::Result<()> {
    const CONVERTS: [(&str, f64); 2] = [("control", 0.10), (SHIPPED_VARIANT, 0.14)];
    let by = Actor::System;
    split_flag(
        state,
        SHIPPED_EXPERIMENT,
        "Checkout redesign",
        "One-column checkout with the order summary always in view",
        [CONVERTS[0].0, CONVERTS[1].0],
    )
    .await?;
    let now = liftoff_core::analytics::event::now_ms();
    state
        .experiments
        .create(
            &by,
            NewExperiment {
                key: SHIPPED_EXPERIMENT.into(),
                flag_id: SHIPPED_EXPERIMENT.into(),
                name: Some("Checkout redesign".into()),
                hypothesis: Some(
                    "With the order summary always in view, more shoppers who start a checkout complete it."
                        .into(),
                ),
                control: Some(CONVERTS[0].0.into()),
                environment: None,
                weights: None,
                metrics: Metrics {
                    primary: event_metric(MetricKind::Conversion, "checkout_completed"),
                    secondary: Vec::new(),
                    guardrails: Vec::new(),
                },
                analysis: AnalysisSettings {
                    method: Method::Frequentist,
                    ..AnalysisSettings::default()
                },
                starts_at: chrono::DateTime::from_timestamp_millis(now - 15 * DAY_MS),
                ends_at: None,
            },
        )
        .await
        .context("creating the checkout experiment")?;
    let mut rng = Lcg(11);
    // What rounding to whole conversions left over per variant, carried to the next shopper:
    // the rates come out as set, so the winner does not hang on the draw (nor on the time of
    // day the demo runs, which moves the draws).
    let mut owed = [0.0f64; 2];
    let mut records = Vec::new();
    // Two shoppers in seven: 2,000 of them.
    for n in (0..SHOPPERS).filter(|n| n % 7 < 2) {
        let user = format!("user-{n}");
        let Some(variant) = served(&state.flags, SHIPPED_EXPERIMENT, &user).1 else {
            continue;
        };
        let v = usize::from(variant == CONVERTS[1].0);
        let at = busy_time(&mut rng, now - 14 * DAY_MS, now - 10 * MINUTE_MS);
        let called =
            json!({"$feature_flag": SHIPPED_EXPERIMENT, "$feature_flag_response": variant});
        records.push(event(&user, "$feature_flag_called", at, called.clone()));
        if rng.chance(0.3) {
            let again = at + rng.range(1, 96) as i64 * HOUR_MS;
            if again < now {
                records.push(event(&user, "$feature_flag_called", again, called));
            }
        }
        owed[v] += CONVERTS[v].1;
        if owed[v] >= 1.0 {
            owed[v] -= 1.0;
            // Most finish within minutes (before now: exposures end ten minutes ago); some
            // come back within three days, unless that would be in the future, so every
            // conversion counted by the rates above happened.
            let soon = rng.range(30, 540) as i64 * 1000;
            let later = rng.range(1, 70) as i64 * HOUR_MS;
            let after = if rng.chance(0.2) && at + later < now {
                later
            } else {
                soon
            };
            records.push(event(
                &user,
                "checkout_completed",
                at + after,
                json!({"amount": 20 + rng.range(0, 180), "currency": "EUR", "items": rng.range(1, 4)}),
            ));
        }
    }
    let stored = ingest_all(state, records, now).await?;
    let results = state
        .experiments
        .results(SHIPPED_EXPERIMENT)
        .await
        .context("reading the checkout experiment's results")?;
    let decision = &results.decision;
    if decision.status != DecisionStatus::Ship
        || decision.variant.as_deref() != Some(SHIPPED_VARIANT)
    {
        anyhow::bail!(
            "the demo's checkout experiment should find `{SHIPPED_VARIANT}` better, but says: {}",
            decision.why
        );
    }
    state
        .experiments
        .stop(
            &by,
            SHIPPED_EXPERIMENT,
            StopExperiment {
                ship_variant: Some(SHIPPED_VARIANT.into()),
                reason: format!("Two weeks, a clear winner: {}", decision.why),
            },
        )
        .await
        .context("stopping the checkout experiment")?;
    tracing::info!(
        events = stored,
        "Demo experiment {SHIPPED_EXPERIMENT} added and stopped, `{SHIPPED_VARIANT}` shipped."
    );
    Ok(())
}

/// Five days of onboarding tips for 600 shoppers, still running (Bayesian): the tips nudge a
/// few more shoppers to start a wishlist and to open the size guide a little more often, too
/// little yet for a verdict. The shoppers' requests name the variant they were served, so the
/// error-rate guardrail compares the variants too.
async fn seed_running_experiment(state: &AppState) -> anyhow::Result<()> {
    use liftoff_core::monitoring::requests::RequestRecord;
    // (variant, share starting a wishlist, chance of each of four size-guide opens)
    const EFFECTS: [(&str, f64, f64); 2] = [("control", 0.18, 0.20), ("tips", 0.20, 0.22)];
    // The routes a shopper's requests go to: (route, median ms), by weight.
    const ROUTES: &[((&str, f64), f64)] = &[
        (("/", 35.0), 0.3),
        (("/items/{id}", 60.0), 0.5),
        (("/search", 180.0), 0.2),
    ];
    /// The shop's usual share of failed requests, the same for both variants.
    const ERRORS: f64 = 0.003;
    let by = Actor::System;
    split_flag(
        state,
        RUNNING_EXPERIMENT,
        "Onboarding tips",
        "Tips on wishlists and the size guide during a shopper's first visits",
        [EFFECTS[0].0, EFFECTS[1].0],
    )
    .await?;
    let now = liftoff_core::analytics::event::now_ms();
    let starts = now - 5 * DAY_MS;
    state
        .experiments
        .create(
            &by,
            NewExperiment {
                key: RUNNING_EXPERIMENT.into(),
                flag_id: RUNNING_EXPERIMENT.into(),
                name: Some("Onboarding tips".into()),
                hypothesis: Some(
                    "Shoppers shown where wishlists and the size guide are use them more, and start a wishlist more often."
                        .into(),
                ),
                control: Some(EFFECTS[0].0.into()),
                environment: None,
                weights: None,
                metrics: Metrics {
                    primary: event_metric(MetricKind::Conversion, "wishlist_created"),
                    secondary: vec![event_metric(MetricKind::Count, "size_guide_opened")],
                    guardrails: vec![Metric {
                        kind: MetricKind::ErrorRate,
                        event: None,
                        property: None,
                        denominator_event: None,
                        window_hours: DEFAULT_WINDOW_HOURS,
                        higher_is_better: None,
                    }],
                },
                analysis: AnalysisSettings::default(),
                starts_at: chrono::DateTime::from_timestamp_millis(starts),
                ends_at: None,
            },
        )
        .await
        .context("creating the onboarding experiment")?;
    let mut rng = Lcg(13);
    // Errors carried per variant like the request metrics' (see `seed_requests`): equal rates
    // stay equal, so the guardrail shows no regression that is not there.
    let mut owed = [0.0f64; 2];
    let mut records = Vec::new();
    let mut requests = Vec::new();
    // One shopper in seven among the first 4,200: 600 of them.
    for n in (0..4_200).filter(|n| n % 7 == 4) {
        let user = format!("user-{n}");
        let Some(variant) = served(&state.flags, RUNNING_EXPERIMENT, &user).1 else {
            continue;
        };
        let v = usize::from(variant == EFFECTS[1].0);
        let (_, starts_wishlist, opens_guide) = EFFECTS[v];
        let at = busy_time(&mut rng, starts + 5 * MINUTE_MS, now - 10 * MINUTE_MS);
        records.push(event(
            &user,
            "$feature_flag_called",
            at,
            json!({"$feature_flag": RUNNING_EXPERIMENT, "$feature_flag_response": variant}),
        ));
        let later = |rng: &mut Lcg, hours: u64| at + rng.range(60, hours * 3600) as i64 * 1000;
        if rng.chance(starts_wishlist) {
            let t = later(&mut rng, 48);
            if t < now {
                records.push(event(
                    &user,
                    "wishlist_created",
                    t,
                    json!({"items": rng.range(1, 5)}),
                ));
            }
        }
        for _ in 0..4 {
            if rng.chance(opens_guide) {
                let t = later(&mut rng, 70);
                if t < now {
                    records.push(event(
                        &user,
                        "size_guide_opened",
                        t,
                        json!({"category": rng.pick(CATEGORIES)}),
                    ));
                }
            }
        }
        // The visit's requests, each naming the variant the shopper was served.
        for _ in 0..rng.range(3, 10) {
            let t = later(&mut rng, 2);
            if t >= now {
                continue;
            }
            owed[v] += ERRORS;
            let failed = owed[v] >= 1.0;
            if failed {
                owed[v] -= 1.0;
            }
            let (route, median) = rng.pick(ROUTES);
            requests.push(RequestRecord {
                service: Some("shop".into()),
                method: "GET".into(),
                route: route.into(),
                status: if failed { 503 } else { 200 },
                duration_ms: rng.latency(median),
                ts: Some(json!(t)),
                user_id: Some(user.clone()),
                flags: Some(BTreeMap::from([(
                    RUNNING_EXPERIMENT.to_owned(),
                    variant.clone(),
                )])),
            });
        }
    }
    let stored = ingest_all(state, records, now).await?;
    let sent = requests.len();
    for chunk in requests.chunks(EVENT_BATCH) {
        state
            .monitoring
            .ingest(chunk.to_vec())
            .await
            .context("writing the onboarding experiment's requests")?;
    }
    state
        .monitoring
        .compact(chrono::Utc::now(), Default::default())
        .await
        .context("compacting demo request metrics")?;
    let results = state
        .experiments
        .results(RUNNING_EXPERIMENT)
        .await
        .context("reading the onboarding experiment's results")?;
    tracing::info!(
        events = stored,
        requests = sent,
        decision = ?results.decision.status,
        "Demo experiment {RUNNING_EXPERIMENT} added, running."
    );
    Ok(())
}

/// `search-v3` at 10 % under a guarded rollout to 100 % three hours ago: the new search failed
/// about 8 % of its requests against 1 % for the old one, and the error-rate guardrail rolled
/// the flag back to 0 % within minutes. Told through a flag service on a clock set to that
/// moment, like the launch (see `demo_launch`): the plan, its checks and the requests carry the
/// times they would have had, and a regression long over does not page anyone when the
/// server starts (a fresh one would, and its critical alert would pause `search-v2`'s plan).
async fn seed_guarded_rollout(state: &AppState) -> anyhow::Result<()> {
    use liftoff_core::monitoring::requests::RequestRecord;
    /// Requests to `/search` a minute while the flag was at 10 %.
    const PER_MINUTE: u64 = 300;
    /// Failed shares without and with the new search.
    const ERRORS: [f64; 2] = [0.01, 0.08];
    /// A guardrail this clear is caught within minutes; half an hour without a rollback means
    /// the demo no longer tells its story.
    const MAX_MINUTES: i64 = 30;
    let by = Actor::System;
    let t = (chrono::Utc::now() - chrono::Duration::hours(3)).timestamp();
    let started =
        chrono::DateTime::from_timestamp(t - t.rem_euclid(60), 0).context("the rollout's start")?;
    let clock = ManualClock::new(started);
    let flags = FlagService::start(
        state.store.clone() as Arc<dyn FlagStore>,
        AuditService::new(state.store.clone() as Arc<dyn AuditStore>),
        Arc::new(state.alerts.clone()),
        // Staleness is never asked of this service.
        30,
    )
    .await
    .context("loading flags")?
    .with_clock(Arc::new(clock.clone()))
    .with_traffic(Arc::new(state.monitoring.clone()));
    let mut new: NewFlag = serde_json::from_value(json!({
        "flag_id": ROLLED_BACK_FLAG, "name": "Search v3", "description": "Semantic search ranking",
        "strategy": "percentage", "percentage": 10}))
    .context("demo flag")?;
    new.reason = Some(REASON.into());
    flags
        .create(&by, new)
        .await
        .with_context(|| format!("creating the demo flag {ROLLED_BACK_FLAG}"))?;
    let mut guard = Guarding::new(vec![GuardrailMetric::ErrorRate]);
    guard.check_interval_seconds = 1;
    flags
        .plan_guarded_rollout(
            &by,
            ROLLED_BACK_FLAG,
            100.0,
            10.0,
            Some(60),
            Some(guard),
            Some(REASON.into()),
        )
        .await
        .context("planning the guarded rollout")?;
    // Requests are kept per value of the flag only once a pass has seen the guarded plan.
    flags.advance_rollouts().await?;
    let mut rng = Lcg(17);
    // Errors carried per side, as in `seed_requests`: the rates come out as set.
    let mut owed = [0.0f64; 2];
    let mut sent = 0;
    let mut minutes = 0;
    while !rolled_back(&flags, ROLLED_BACK_FLAG).await? {
        if minutes == MAX_MINUTES {
            anyhow::bail!(
                "the guardrail did not roll `{ROLLED_BACK_FLAG}` back within {MAX_MINUTES} minutes"
            );
        }
        let from = (started + chrono::Duration::minutes(minutes)).timestamp_millis();
        let mut records = Vec::with_capacity(PER_MINUTE as usize);
        for _ in 0..PER_MINUTE {
            let user = format!("user-{}", rng.range(0, SHOPPERS));
            let on = served(&flags, ROLLED_BACK_FLAG, &user).0;
            let side = usize::from(on);
            owed[side] += ERRORS[side];
            let failed = owed[side] >= 1.0;
            if failed {
                owed[side] -= 1.0;
            }
            records.push(RequestRecord {
                service: Some("shop".into()),
                method: "GET".into(),
                route: "/search".into(),
                status: if failed { 503 } else { 200 },
                duration_ms: rng.latency(180.0),
                ts: Some(json!(from + rng.range(0, 60_000) as i64)),
                user_id: Some(user),
                flags: Some(BTreeMap::from([(
                    ROLLED_BACK_FLAG.to_owned(),
                    (if on { ON } else { OFF }).to_owned(),
                )])),
            });
        }
        sent += records.len();
        state
            .monitoring
            .ingest(records)
            .await
            .context("writing the rollout's requests")?;
        minutes += 1;
        // The next check, past the plan's one-second interval.
        clock.set(started + chrono::Duration::minutes(minutes));
        flags.advance_rollouts().await?;
    }
    // The server's own flag service serves what this one changed.
    state.flags.reload().await?;
    state
        .monitoring
        .compact(chrono::Utc::now(), Default::default())
        .await
        .context("compacting demo request metrics")?;
    tracing::info!(
        requests = sent,
        minutes,
        "Demo guarded rollout of {ROLLED_BACK_FLAG} added, rolled back by its guardrail."
    );
    Ok(())
}
