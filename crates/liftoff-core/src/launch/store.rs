//! The launch's storage port: its settings document, admissions and the waitlist, feedback.
//!
//! Admission is decided inside the store's transaction, not in memory, so that exactly
//! `user_limit` users hold a seat whatever the concurrency and however many replicas share the
//! store: each ask records the user (its place is the order of its first ask), fills free seats
//! from the waitlist in that order, then reads whether the user holds one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::feedback::{Feedback, FeedbackStatus, NewFeedback};
use super::phases::{Phase, default_plan};
use super::presets::{DEFAULT_PRODUCTION_USER_LIMIT, Environment};
use crate::audit::Change;
use crate::store::StoreError;

/// End-user maintenance mode: apps answer 503 to everyone but `allow_users`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Maintenance {
    pub enabled: bool,
    pub message: String,
    pub retry_after_seconds: Option<u32>,
    #[serde(default)]
    pub allow_users: Vec<String>,
}

/// The launch's settings: one document per store, changed with a revision check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LaunchSettings {
    /// The preset last applied; `null` before `initialize`.
    pub environment: Option<Environment>,
    /// Seats for admitted users; `null` is no cap.
    pub user_limit: Option<u32>,
    /// Flags the preset turned on for everyone.
    #[serde(default)]
    pub features: Vec<String>,
    /// Flags on for admitted beta users only.
    #[serde(default)]
    pub beta_features: Vec<String>,
    #[serde(default)]
    pub maintenance: Maintenance,
    pub phases: Vec<Phase>,
    /// Index into `phases` of the current phase.
    pub phase: usize,
    /// Every advance, oldest first (the launch report's phase history).
    #[serde(default)]
    pub phase_history: Vec<PhaseChange>,
    /// The alert channel told of each admission (`launch.admitted`); `null` for none.
    #[serde(default)]
    pub admission_channel: Option<i64>,
    /// When `liftoff backup` last wrote a complete backup.
    #[serde(default)]
    pub last_backup_at: Option<DateTime<Utc>>,
    /// Bumped by every saved change.
    #[serde(default)]
    pub revision: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for LaunchSettings {
    /// Before any preset: the default soft-launch cap (100) and the default plan.
    fn default() -> Self {
        Self {
            environment: None,
            user_limit: Some(DEFAULT_PRODUCTION_USER_LIMIT),
            features: Vec::new(),
            beta_features: Vec::new(),
            maintenance: Maintenance::default(),
            phases: default_plan(),
            phase: 0,
            phase_history: Vec::new(),
            admission_channel: None,
            last_backup_at: None,
            revision: 0,
            updated_at: None,
        }
    }
}

/// The answer to one user's ask for a seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub user_id: String,
    pub allowed: bool,
    pub admitted_count: u64,
    pub user_limit: Option<u32>,
    /// 1-based place in the waitlist; `None` when admitted.
    pub waitlist_position: Option<u64>,
    /// Users this ask gave a seat to (the asker and any waitlist users ahead of it), for
    /// notifications.
    pub newly_admitted: Vec<String>,
}

/// How many hold a seat and how many wait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AdmissionCounts {
    pub admitted: u64,
    pub waiting: u64,
}

/// One move from a phase to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhaseChange {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub by: String,
    /// Advanced with `force` although exit criteria failed.
    pub forced: bool,
    pub reason: Option<String>,
}

/// First asks and seats given on one UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AdmissionDay {
    /// The day's first instant.
    pub day: DateTime<Utc>,
    /// Users who asked for the first time that day.
    pub asked: u64,
    /// Seats given that day.
    pub admitted: u64,
}

/// What an ask answers when it would change nothing, so it needs no write: a seated user stays
/// seated (`Some(true)`); a waiting one keeps waiting while every seat is taken
/// (`Some(false)`). `None`: the ask must be written (a seat is free for the waitlist).
pub fn settled(limit: Option<u32>, seated: bool, counts: AdmissionCounts) -> Option<bool> {
    if seated {
        return Some(true);
    }
    limit
        .is_some_and(|l| counts.admitted >= u64::from(l))
        .then_some(false)
}

/// One user known to admission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct LaunchUser {
    pub user_id: String,
    pub first_asked_at: DateTime<Utc>,
    pub admitted_at: Option<DateTime<Utc>>,
}

/// Which feedback to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct FeedbackQuery {
    pub category: Option<String>,
    pub status: Option<FeedbackStatus>,
    /// Items with an id below this (the previous page's last id).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait LaunchStore: Send + Sync {
    /// The settings, or the defaults when none were saved yet.
    async fn launch_settings(&self) -> Result<LaunchSettings, StoreError>;

    /// Saves `settings` if the stored revision is still `settings.revision` (then bumps it),
    /// writes `change` to the audit trail and fills seats the new limit frees, in one
    /// transaction. `None` when another change came first.
    async fn save_launch_settings(
        &self,
        settings: &LaunchSettings,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<(LaunchSettings, Vec<String>)>, StoreError>;

    /// `user_id` asks for a seat (see the module's description).
    async fn ask_admission(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Admission, StoreError>;

    /// Admits the next `count` waiting users in order, whatever the limit (an operator's
    /// decision, audited); returns them.
    async fn admit_next(
        &self,
        count: u32,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Vec<String>, StoreError>;

    /// Forgets `user_id`'s seat or place; a later ask starts at the end of the waitlist.
    async fn revoke_admission(&self, user_id: &str, change: &Change) -> Result<bool, StoreError>;

    async fn admission_counts(&self) -> Result<AdmissionCounts, StoreError>;

    /// A known user's answer from a read when [`settled`] says the ask would change nothing
    /// under `limit`; `None` when the user is new or a seat is free (then `ask_admission`
    /// decides with the stored limit). A stale `limit` is safe: raising the limit seats the
    /// waitlist in the store at once, and a limit that looks higher than it is only sends the
    /// ask down the write path.
    async fn peek_admission(
        &self,
        user_id: &str,
        limit: Option<u32>,
    ) -> Result<Option<Admission>, StoreError>;

    /// First asks and seats per UTC day from `since`'s day on, oldest first; days without
    /// either are left out. Revoked users are forgotten, so they count nowhere.
    async fn admissions_by_day(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<AdmissionDay>, StoreError>;

    /// `user_id`'s seat or place, without asking for one.
    async fn launch_user(&self, user_id: &str) -> Result<Option<LaunchUser>, StoreError>;

    /// Users in order of first ask, from the `offset`th, at most `limit`.
    async fn launch_users(
        &self,
        waiting_only: bool,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<LaunchUser>, StoreError>;

    async fn insert_feedback(
        &self,
        feedback: &NewFeedback,
        at: DateTime<Utc>,
    ) -> Result<Feedback, StoreError>;

    async fn list_feedback(&self, query: &FeedbackQuery) -> Result<Vec<Feedback>, StoreError>;

    /// Every item created at or after `since` (all when `None`), oldest first: what summaries
    /// and the backlog are computed from.
    async fn feedback_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Feedback>, StoreError>;

    /// Marks an item resolved; `None` when there is no such item.
    async fn resolve_feedback(
        &self,
        id: i64,
        resolution: &str,
        at: DateTime<Utc>,
        change: &Change,
    ) -> Result<Option<Feedback>, StoreError>;
}
