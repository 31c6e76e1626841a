//! The demo's launch: three weeks of a soft launch told through the launch service itself.
//! The plan moved from internal testing to a beta of 50 and then to a soft launch of 200
//! seats; 240 of the demo's shoppers asked for a seat, so 40 wait in order of their first ask,
//! and admitted users left feedback and feature requests along the way.
//!
//! The service runs on a clock set to each moment of that story, so seats, waitlist places and
//! feedback carry the dates they would have had.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use liftoff_core::auth::Actor;
use liftoff_core::clock::ManualClock;
use liftoff_core::launch::feedback::FeedbackInput;
use liftoff_core::launch::phases::{PhaseFigures, default_plan};
use liftoff_core::launch::{LaunchService, LaunchStore};
use liftoff_http::AppState;

use crate::demo::Lcg;

/// Seats in the demo's phases: internal, beta, soft launch (then no limit).
const LIMITS: [Option<u32>; 4] = [Some(10), Some(50), Some(200), None];
/// Shoppers who asked for a seat (`user-0` … `user-239`, the demo's event users).
pub const ASKED: u32 = 240;
/// Days the launch has been running.
const DAYS: i64 = 21;
/// Days ago the plan moved to beta and to the soft launch.
const BETA_DAYS_AGO: i64 = 14;
const SOFT_LAUNCH_DAYS_AGO: i64 = 7;

const CATEGORIES: &[&str] = &["ux", "performance", "bug", "feature", "general"];
const MESSAGES: &[(u8, &str)] = &[
    (5, "Checkout is so much faster than before."),
    (5, "Love the new search, found what I needed at once."),
    (4, "Works well; the filters took me a moment to find."),
    (4, "Smooth so far. Would like a wishlist."),
    (3, "The product page loads slowly on my phone."),
    (2, "Payment failed once, then worked on retry."),
    (5, "Great first impression."),
    (4, "Nice, but dark mode please."),
    (1, "Could not sign in with my work email."),
    (4, "Order tracking is clear."),
];
const REQUESTS: &[&str] = &[
    "Dark mode",
    "Wishlist",
    "Apple Pay",
    "Export orders to CSV",
    "Saved searches",
];

/// Tells the launch's story into the store. Changes are audited as the system's, with the
/// reason saying they are demo data.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let now = Utc::now();
    let start = now - Duration::days(DAYS);
    let clock = ManualClock::new(start);
    let launch = LaunchService::new(
        state.store.clone() as Arc<dyn LaunchStore>,
        Arc::new(clock.clone()),
    );
    let by = Actor::System;
    let mut plan = default_plan();
    for (phase, limit) in plan.iter_mut().zip(LIMITS) {
        phase.user_limit = limit;
    }
    launch
        .set_phases(plan, &by)
        .await
        .context("the phase plan")?;
    launch
        .set_user_limit(LIMITS[0], Some("demo data".into()), &by)
        .await?;

    let mut rng = Lcg(7);
    // Asks grow over the three weeks: the n-th ask lands at start + span·sqrt(n/N).
    let span = (now - start - Duration::hours(1)).num_seconds() as f64;
    let at = |n: u32| {
        start + Duration::seconds((span * (f64::from(n) / f64::from(ASKED)).sqrt()) as i64)
    };
    let mut phase_moves = [
        (
            now - Duration::days(BETA_DAYS_AGO),
            "beta opened to 50 testers",
        ),
        (
            now - Duration::days(SOFT_LAUNCH_DAYS_AGO),
            "soft launch to 200 users",
        ),
    ]
    .into_iter()
    .peekable();
    let mut admitted: Vec<(String, DateTime<Utc>)> = Vec::new();
    for n in 0..ASKED {
        let when = at(n);
        while let Some((move_at, why)) = phase_moves.next_if(|(t, _)| *t <= when) {
            clock.set(move_at);
            launch
                .advance(
                    &PhaseFigures::default(),
                    Some(format!("demo data: {why}")),
                    true,
                    &by,
                )
                .await
                .context("moving the demo launch to its next phase")?;
        }
        clock.set(when);
        let user = format!("user-{n}");
        let seat = launch.ask(&user).await.context("a demo user's ask")?;
        if seat.allowed {
            admitted.push((user, when));
        }
    }
    seed_feedback(&launch, &clock, &admitted, now, &mut rng).await?;
    Ok(())
}

/// About a third of admitted users leave feedback a few days after they got in; one in four
/// of them asks for a feature.
async fn seed_feedback(
    launch: &LaunchService,
    clock: &ManualClock,
    admitted: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
    rng: &mut Lcg,
) -> anyhow::Result<()> {
    let mut items: Vec<(DateTime<Utc>, FeedbackInput)> = Vec::new();
    for (user, since) in admitted {
        if !rng.chance(0.35) {
            continue;
        }
        let after = Duration::minutes((rng.next() * 4.0 * 24.0 * 60.0) as i64);
        let when = (*since + after).min(now - Duration::minutes(5));
        let (rating, message) = MESSAGES[(rng.next() * MESSAGES.len() as f64) as usize];
        let request = rng
            .chance(0.25)
            .then(|| REQUESTS[(rng.next().powi(2) * REQUESTS.len() as f64) as usize].to_owned());
        let category = if request.is_some() {
            "feature"
        } else {
            CATEGORIES[(rng.next() * CATEGORIES.len() as f64) as usize]
        };
        items.push((
            when,
            FeedbackInput {
                user_id: user.clone(),
                rating,
                category: category.into(),
                message: message.into(),
                page: Some("/checkout".into()),
                request,
            },
        ));
    }
    // Stored in time order, so ids follow the dates as they would have.
    items.sort_by_key(|(when, _)| *when);
    for (when, input) in items {
        clock.set(when);
        launch
            .submit_feedback(input)
            .await
            .context("demo feedback")?;
    }
    Ok(())
}
