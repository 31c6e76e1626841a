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
