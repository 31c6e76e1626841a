//! `liftoff demo` and `serve --demo`: realistic data so a new user sees a living dashboard.
//! Each capability adds its own part here; today: a team of users and the keys their apps use.

use anyhow::Context as _;
use liftoff_core::auth::{Actor, KeyName, Scope};
use liftoff_core::users::Role;
use liftoff_http::AppState;

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
    println!(
        "Demo data added: users {} (password: the name, a dash, the name again).",
        TEAM.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
