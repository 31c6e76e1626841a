//! The launch service: admission, the user limit, maintenance mode, the phase plan and
//! feedback. Every change is audited; settings changes use the store's revision check and
//! retry, so two concurrent changes never lose one another.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::feedback::{
    BacklogItem, Feedback, FeedbackInput, FeedbackStatus, FeedbackSummary, backlog, summarize,
};
use super::notices::{AdmissionNotices, Via, admitted_payload};
use super::phases::{CriterionResult, Phase, PhaseFigures, judge_exit, validate_plan};
use super::presets::{Environment, Preset};
use super::seats::{Seat, Seats};
use super::store::{
    Admission, AdmissionCounts, AdmissionDay, FeedbackQuery, LaunchSettings, LaunchStore,
    LaunchUser, Maintenance, PhaseChange,
};
use super::windows::{GatingWindow, MaintenanceWindows};
use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::Clock;
use crate::store::StoreError;

/// Attempts at a settings change before answering "busy".
const SAVE_ATTEMPTS: usize = 5;
/// The longest maintenance message.
const MAX_MESSAGE_CHARS: usize = 1_000;
/// The most users `allow_users` may name.
const MAX_ALLOW_USERS: usize = 1_000;
/// The longest user id.
const MAX_USER_ID_CHARS: usize = 200;
/// The largest user limit.
pub const MAX_USER_LIMIT: u32 = 10_000_000;
/// The most users one `admit` call may admit.
pub const MAX_ADMIT: u32 = 100_000;
/// The longest reason or resolution.
const MAX_REASON_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Invalid(String),
    #[error("no feedback {0}")]
    FeedbackNotFound(i64),
    #[error("the launch settings changed too often meanwhile; retry")]
    Busy,
    #[error("the phase `{phase}` cannot be left yet: {}", failing(.results))]
    CriteriaNotMet {
        phase: String,
        results: Vec<CriterionResult>,
    },
    #[error("`{0}` is the plan's last phase")]
    LastPhase(String),
    /// A figure from another domain could not be read.
    #[error("a launch figure could not be read: {0}")]
    Sources(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn failing(results: &[CriterionResult]) -> String {
    let names: Vec<&str> = results.iter().filter(|r| !r.pass).map(|r| r.name).collect();
    format!(
        "{} not met; fix them or advance with `force` and a reason",
        names.join(", ")
    )
}

fn invalid(msg: impl Into<String>) -> LaunchError {
    LaunchError::Invalid(msg.into())
}

/// A user id in the API document, where [`user_id`] is the rule: not blank, no control
/// characters, at most 200 characters once trimmed (the length is in each field's bounds).
#[derive(ToSchema)]
#[schema(value_type = String,
    pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$")]
pub struct LaunchUserId(pub String);

/// A user id as apps send it: 1–200 characters, no control characters.
pub fn user_id(raw: &str) -> Result<&str, LaunchError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("`user_id` is required"));
    }
    if trimmed.chars().count() > MAX_USER_ID_CHARS {
        return Err(invalid(format!(
            "`user_id` is longer than {MAX_USER_ID_CHARS} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid("`user_id` contains control characters"));
    }
    Ok(trimmed)
}

fn reason_text(
    field: &str,
    raw: Option<String>,
    required: bool,
) -> Result<Option<String>, LaunchError> {
    let text = raw.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    match text {
        None if required => Err(invalid(format!("`{field}` is required"))),
        Some(t) if t.chars().count() > MAX_REASON_CHARS => Err(invalid(format!(
            "`{field}` is longer than {MAX_REASON_CHARS} characters"
        ))),
        other => Ok(other),
    }
}

/// What `PUT /api/launch/maintenance` takes.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LaunchMaintenanceInput)]
pub struct MaintenanceInput {
    pub enabled: bool,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub message: String,
    #[schema(minimum = 1, maximum = 86400)]
    pub retry_after_seconds: Option<u32>,
    /// Users who keep access (testers, support).
    #[serde(default)]
    #[schema(max_items = 1000, value_type = Vec<LaunchUserId>)]
    pub allow_users: Vec<String>,
    pub reason: Option<String>,
}

/// What `POST /api/launch/initialize` takes.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitializeInput {
    pub environment: Environment,
    /// Production's cap (default 100); ignored elsewhere.
    #[schema(minimum = 1, maximum = 10000000)]
    pub user_limit: Option<u32>,
    #[serde(default)]
    #[schema(max_items = 200, value_type = Vec<crate::flags::FlagKey>)]
    pub features: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 200, value_type = Vec<crate::flags::FlagKey>)]
    pub beta_features: Vec<String>,
}

/// The launch as apps see it (`GET /api/launch/status`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LaunchStatus {
    pub maintenance: bool,
    pub message: Option<String>,
    pub retry_after_seconds: Option<u32>,
    /// When the maintenance window in force ends; `null` for a manual switch.
    pub window_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub phase: String,
    /// Bumped by every change: what the ETag is made from.
    pub revision: i64,
}

/// Phase changes kept in the settings (the oldest are dropped beyond it).
const MAX_PHASE_HISTORY: usize = 100;

/// The OFREP flag that is true while maintenance mode holds the user out.
pub const MAINTENANCE_FLAG: &str = "liftoff.maintenance";
/// The OFREP flag that is true when the context's `targetingKey` holds a seat; evaluating it
/// asks for one, exactly like `GET /api/launch/user-limit`.
pub const ADMITTED_FLAG: &str = "liftoff.admitted";

/// A reserved flag's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedFlag {
    pub key: &'static str,
    pub value: bool,
    /// An OpenFeature reason: `TARGETING_MATCH` when the user decided it, else `STATIC`.
    pub reason: &'static str,
    /// Bumped when the answer may change: the launch revision (and the admission).
    pub version: String,
}

/// How long launch state read on the apps' hot paths (status polls, the reserved OFREP flags,
/// seat asks) is reused. Changes made through this process are seen at once; another
/// replica's within this, like flag changes.
const HOT_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// What the hot paths reuse: the settings, and the gating window answered at a time.
#[derive(Default)]
struct Hot {
    settings: Option<(std::time::Instant, Arc<LaunchSettings>)>,
    /// When read, the windows' revision then, the service-clock time asked about, the answer.
    window: Option<(
        std::time::Instant,
        u64,
        chrono::DateTime<chrono::Utc>,
        Option<GatingWindow>,
    )>,
}

#[derive(Clone)]
pub struct LaunchService {
    store: Arc<dyn LaunchStore>,
    clock: Arc<dyn Clock>,
    notices: Option<Arc<dyn AdmissionNotices>>,
    windows: Option<Arc<dyn MaintenanceWindows>>,
    hot: Arc<std::sync::Mutex<Hot>>,
    seats: Arc<Seats>,
}

impl LaunchService {
    pub fn new(store: Arc<dyn LaunchStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            notices: None,
            windows: None,
            hot: Arc::default(),
            seats: Arc::default(),
        }
    }

    fn hot(&self) -> std::sync::MutexGuard<'_, Hot> {
        // A panic while holding the lock leaves at worst a stale entry that expires.
        self.hot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets what the hot paths cached: another replica changed the launch settings,
    /// revoked a seat or seated a waiting user.
    pub fn forget_cached(&self) {
        let mut hot = self.hot();
        hot.settings = None;
        hot.window = None;
        drop(hot);
        self.seats.forget_all();
    }

    /// The settings for the hot paths: reused up to [`HOT_TTL`], replaced by every save here.
    async fn hot_settings(&self) -> Result<Arc<LaunchSettings>, LaunchError> {
        if let Some((at, s)) = &self.hot().settings
            && at.elapsed() < HOT_TTL
        {
            return Ok(s.clone());
        }
        let s = Arc::new(self.store.launch_settings().await?);
        self.hot().settings = Some((std::time::Instant::now(), s.clone()));
        Ok(s)
    }

    /// Lets scheduled gating windows put apps into maintenance mode.
    pub fn with_windows(mut self, windows: Arc<dyn MaintenanceWindows>) -> Self {
        self.windows = Some(windows);
        self
    }

    /// The gating window in force when the manual switch is off (the switch wins, and then
    /// the windows are not read at all).
    async fn window_unless_manual(&self, s: &LaunchSettings) -> Option<GatingWindow> {
        if s.maintenance.enabled {
            return None;
        }
        self.window().await
    }

    /// The gating window running now, if any. A window that cannot be read is logged and
    /// treated as absent: the manual switch still works.
    async fn window(&self) -> Option<GatingWindow> {
        let windows = self.windows.as_ref()?;
        let now = self.clock.now();
        let revision = windows.revision();
        if let Some((at, rev, asked, w)) = &self.hot().window
            && at.elapsed() < HOT_TTL
            && *rev == revision
            && (now - *asked).num_milliseconds().abs() < HOT_TTL.as_millis() as i64
            && w.as_ref().is_none_or(|w| now < w.ends_at)
        {
            return w.clone();
        }
        match windows.gating_window(now).await {
            Ok(w) => {
                self.hot().window = Some((std::time::Instant::now(), revision, now, w.clone()));
                w
            }
            Err(e) => {
                tracing::warn!(error = %e, "Maintenance windows could not be read.");
                None
            }
        }
    }

    /// Announces admissions through `notices` when the settings name an `admission_channel`.
    pub fn with_notices(mut self, notices: Arc<dyn AdmissionNotices>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Queues one `launch.admitted` notice per user. The seats are already committed, so a
    /// notice that cannot be queued is logged, never turned into a failed admission.
    async fn announce(&self, users: &[(String, Via)]) {
        if users.is_empty() {
            return;
        }
        self.seats.forget_places();
        let Some(notices) = &self.notices else { return };
        let channel = match self.store.launch_settings().await {
            Ok(s) => match s.admission_channel {
                Some(c) => (c, s.user_limit),
                None => return,
            },
            Err(e) => {
                tracing::warn!(error = %e, "Admission notices not queued: the launch settings could not be read.");
                return;
            }
        };
        let admitted = match self.store.admission_counts().await {
            Ok(c) => c.admitted,
            Err(_) => 0,
        };
        let now = self.clock.now();
        for (user, via) in users {
            let payload = admitted_payload(user, *via, admitted, channel.1, now);
            if let Err(e) = notices.queue(channel.0, payload).await {
                tracing::warn!(user, channel = channel.0, error = %e, "Admission notice not queued.");
            }
        }
    }

    /// The time on the service's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub async fn settings(&self) -> Result<LaunchSettings, LaunchError> {
        Ok(self.store.launch_settings().await?)
    }

    pub async fn status(&self) -> Result<LaunchStatus, LaunchError> {
        let s = self.hot_settings().await?;
        let m = &s.maintenance;
        let window = self.window_unless_manual(&s).await;
        let (maintenance, message, retry_after_seconds) = match &window {
            Some(w) => {
                let left = (w.ends_at - self.clock.now())
                    .num_seconds()
                    .clamp(1, 86_400);
                (true, w.message.clone(), Some(left as u32))
            }
            None => (
                m.enabled,
                (m.enabled && !m.message.is_empty()).then(|| m.message.clone()),
                if m.enabled {
                    m.retry_after_seconds
                } else {
                    None
                },
            ),
        };
        Ok(LaunchStatus {
            maintenance,
            message,
            retry_after_seconds,
            window_ends_at: window.map(|w| w.ends_at),
            phase: s
                .phases
                .get(s.phase)
                .map_or_else(String::new, |p| p.name.clone()),
            revision: s.revision,
        })
    }

    /// Applies `change` to the current settings and saves them, retrying on a concurrent
    /// change; returns the saved settings and the users the new limit admitted.
    async fn update<F>(
        &self,
        actor: &Actor,
        action: &str,
        reason: Option<String>,
        change: F,
    ) -> Result<(LaunchSettings, Vec<String>), LaunchError>
    where
        F: Fn(&mut LaunchSettings) -> Result<(), LaunchError>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let before = self.store.launch_settings().await?;
            let mut after = before.clone();
            change(&mut after)?;
            let audit = Change::new(actor, action, "launch", "launch")
                .before(json!(before))
                .after(json!(after))
                .reason(reason.clone());
            if let Some(saved) = self
                .store
                .save_launch_settings(&after, self.clock.now(), &audit)
                .await?
            {
                self.hot().settings = Some((std::time::Instant::now(), Arc::new(saved.0.clone())));
                let seated: Vec<_> = saved.1.iter().map(|u| (u.clone(), Via::Waitlist)).collect();
                self.announce(&seated).await;
                return Ok(saved);
            }
        }
        Err(LaunchError::Busy)
    }

    /// Applies a preset's settings (user limit, features); flags and alert rules are the
    /// caller's, which owns those services.
    pub async fn initialize(
        &self,
        input: &InitializeInput,
        actor: &Actor,
    ) -> Result<(LaunchSettings, Vec<String>), LaunchError> {
        if input
            .user_limit
            .is_some_and(|l| l == 0 || l > MAX_USER_LIMIT)
        {
            return Err(invalid(format!(
                "`user_limit` must be 1 to {MAX_USER_LIMIT}"
            )));
        }
        let preset = Preset::for_environment(input.environment, input.user_limit);
        self.update(actor, "launch.initialize", None, |s| {
            s.environment = Some(preset.environment);
            s.user_limit = preset.user_limit;
            s.features.clone_from(&input.features);
            s.beta_features.clone_from(&input.beta_features);
            Ok(())
        })
        .await
    }

    /// Sets the cap (`None`: none); raising it admits from the waitlist in order.
    pub async fn set_user_limit(
        &self,
        limit: Option<u32>,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<(LaunchSettings, Vec<String>), LaunchError> {
        if limit.is_some_and(|l| l > MAX_USER_LIMIT) {
            return Err(invalid(format!(
                "`user_limit` must be 0 to {MAX_USER_LIMIT}"
            )));
        }
        let reason = reason_text("reason", reason, false)?;
        self.update(actor, "launch.user_limit", reason, |s| {
            s.user_limit = limit;
            Ok(())
        })
        .await
    }

    /// Names the alert channel told of each admission (`None`: none). The caller checks the
    /// channel exists; a channel deleted later leaves notices failed in the outbox.
    pub async fn set_admission_channel(
        &self,
        channel: Option<i64>,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<LaunchSettings, LaunchError> {
        let reason = reason_text("reason", reason, false)?;
        let (saved, _) = self
            .update(actor, "launch.admission_channel", reason, |s| {
                s.admission_channel = channel;
                Ok(())
            })
            .await?;
        Ok(saved)
    }

    pub async fn set_maintenance(
        &self,
        input: MaintenanceInput,
        actor: &Actor,
    ) -> Result<LaunchSettings, LaunchError> {
        let message = input.message.trim().to_owned();
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(invalid(format!(
                "`message` is longer than {MAX_MESSAGE_CHARS} characters"
            )));
        }
        if input
            .retry_after_seconds
            .is_some_and(|s| s == 0 || s > 86_400)
        {
            return Err(invalid("`retry_after_seconds` must be 1 to 86400"));
        }
        if input.allow_users.len() > MAX_ALLOW_USERS {
            return Err(invalid(format!(
                "`allow_users` names at most {MAX_ALLOW_USERS} users"
            )));
        }
        let allow_users = input
            .allow_users
            .iter()
            .map(|u| user_id(u).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let reason = reason_text("reason", input.reason, false)?;
        let maintenance = Maintenance {
            enabled: input.enabled,
            message,
            retry_after_seconds: input.retry_after_seconds,
            allow_users,
        };
        let (saved, _) = self
            .update(actor, "launch.maintenance", reason, |s| {
                s.maintenance = maintenance.clone();
                Ok(())
            })
            .await?;
        Ok(saved)
    }

    /// Evaluates a reserved flag (`liftoff.maintenance`, `liftoff.admitted`) for `user`;
    /// `None` when `key` is not reserved.
    pub async fn reserved_flag(
        &self,
        key: &str,
        user: Option<&str>,
    ) -> Option<Result<ReservedFlag, LaunchError>> {
        match key {
            MAINTENANCE_FLAG => Some(match self.hot_settings().await {
                Err(e) => Err(e),
                Ok(s) => {
                    let window = self.window_unless_manual(&s).await;
                    let on = s.maintenance.enabled || window.is_some();
                    let allowed = on
                        && user.is_some_and(|u| s.maintenance.allow_users.iter().any(|a| a == u));
                    Ok(ReservedFlag {
                        key: MAINTENANCE_FLAG,
                        value: on && !allowed,
                        reason: if allowed { "TARGETING_MATCH" } else { "STATIC" },
                        version: match window {
                            Some(w) => format!("{}-w{}", s.revision, w.id),
                            None => s.revision.to_string(),
                        },
                    })
                }
            }),
            ADMITTED_FLAG => Some(match user {
                None => Err(invalid(
                    "`liftoff.admitted` needs the user: set the context's `targetingKey`",
                )),
                Some(u) => self
                    .admitted(u)
                    .await
                    .map(|(allowed, position)| ReservedFlag {
                        key: ADMITTED_FLAG,
                        value: allowed,
                        reason: "TARGETING_MATCH",
                        version: format!("{allowed}:{}", position.unwrap_or(0)),
                    }),
            }),
            _ => None,
        }
    }

    /// How old the newest backup is (`liftoff backup` records it), `None` without one.
    pub async fn last_backup_age(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::Duration>, LaunchError> {
        Ok(self.settings().await?.last_backup_at.map(|at| now - at))
    }

    /// Whether `raw_user_id` holds a seat (and else its place), asking for one as
    /// [`Self::ask`] does. A seat seen here is answered from memory until it is revoked (see
    /// [`Seats`]), so a returning user's `liftoff.admitted` reads no store.
    async fn admitted(&self, raw_user_id: &str) -> Result<(bool, Option<u64>), LaunchError> {
        let id = user_id(raw_user_id)?;
        let now = std::time::Instant::now();
        match self.seats.answer(id, now) {
            Some(Seat::Seated) => return Ok((true, None)),
            Some(Seat::Waiting(place)) => return Ok((false, Some(place))),
            None => {}
        }
        let read = self.seats.generation();
        let a = self.ask(id).await?;
        let seat = if a.allowed {
            Some(Seat::Seated)
        } else {
            a.waitlist_position.map(Seat::Waiting)
        };
        if let Some(seat) = seat {
            self.seats.remember(id, seat, read, now);
        }
        Ok((a.allowed, a.waitlist_position))
    }

    /// `user_id` asks for a seat.
    pub async fn ask(&self, raw_user_id: &str) -> Result<Admission, LaunchError> {
        let id = user_id(raw_user_id)?;
        // Most asks are a returning user's: answered from a read, without the write lock.
        let limit = self.hot_settings().await?.user_limit;
        if let Some(settled) = self.store.peek_admission(id, limit).await? {
            return Ok(settled);
        }
        let admission = self.store.ask_admission(id, self.clock.now()).await?;
        if !admission.newly_admitted.is_empty() {
            // The asker got a free seat; anyone else here was waiting for a seat a lower
            // limit had held back.
            let seated: Vec<_> = admission
                .newly_admitted
                .iter()
                .map(|u| (u.clone(), if u == id { Via::Ask } else { Via::Waitlist }))
                .collect();
            self.announce(&seated).await;
        }
        Ok(admission)
    }

    pub async fn admit(&self, count: u32, actor: &Actor) -> Result<Vec<String>, LaunchError> {
        if count == 0 || count > MAX_ADMIT {
            return Err(invalid(format!("`count` must be 1 to {MAX_ADMIT}")));
        }
        let audit =
            Change::new(actor, "launch.admit", "launch", "waitlist").after(json!({"count": count}));
        let admitted = self
            .store
            .admit_next(count, self.clock.now(), &audit)
            .await?;
        let seated: Vec<_> = admitted.iter().map(|u| (u.clone(), Via::Admit)).collect();
        self.announce(&seated).await;
        Ok(admitted)
    }

    /// Forgets a user's seat or place; `false` when the user was unknown.
    pub async fn revoke(&self, raw_user_id: &str, actor: &Actor) -> Result<bool, LaunchError> {
        let id = user_id(raw_user_id)?;
        let audit = Change::new(actor, "launch.revoke", "launch_user", id);
        let gone = self.store.revoke_admission(id, &audit).await?;
        self.seats.forget(id);
        Ok(gone)
    }

    /// A user's seat or place, without asking for one.
    pub async fn launch_user(&self, raw_user_id: &str) -> Result<Option<LaunchUser>, LaunchError> {
        Ok(self.store.launch_user(user_id(raw_user_id)?).await?)
    }

    pub async fn counts(&self) -> Result<AdmissionCounts, LaunchError> {
        Ok(self.store.admission_counts().await?)
    }

    pub async fn users(
        &self,
        waiting_only: bool,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<LaunchUser>, LaunchError> {
        Ok(self.store.launch_users(waiting_only, offset, limit).await?)
    }

    /// Replaces the plan. The current phase is kept by name when the new plan has it, else
    /// the launch starts at the new plan's first phase.
    pub async fn set_phases(
        &self,
        phases: Vec<Phase>,
        actor: &Actor,
    ) -> Result<LaunchSettings, LaunchError> {
        validate_plan(&phases).map_err(|e| invalid(e.0))?;
        let (saved, _) = self
            .update(actor, "launch.phases", None, |s| {
                let current = s.phases.get(s.phase).map(|p| p.name.clone());
                s.phase = current
                    .and_then(|name| phases.iter().position(|p| p.name == name))
                    .unwrap_or(0);
                s.phases = phases.clone();
                Ok(())
            })
            .await?;
        Ok(saved)
    }

    /// Moves to the next phase when the current one's exit criteria pass against `figures`
    /// (or with `force` and a reason); the next phase's user limit applies at once.
    pub async fn advance(
        &self,
        figures: &PhaseFigures,
        reason: Option<String>,
        force: bool,
        actor: &Actor,
    ) -> Result<(LaunchSettings, Vec<CriterionResult>, Vec<String>), LaunchError> {
        let reason = reason_text("reason", reason, force)?;
        let current = self.settings().await?;
        let phase = current
            .phases
            .get(current.phase)
            .cloned()
            .ok_or_else(|| invalid("the launch has no phase plan"))?;
        if current.phase + 1 >= current.phases.len() {
            return Err(LaunchError::LastPhase(phase.name));
        }
        let results = judge_exit(&phase.exit, figures);
        if !force && results.iter().any(|r| !r.pass) {
            return Err(LaunchError::CriteriaNotMet {
                phase: phase.name,
                results,
            });
        }
        let from = current.phase;
        let action = if force {
            "launch.phase.force_advance"
        } else {
            "launch.phase.advance"
        };
        let at = self.clock.now();
        let (saved, admitted) = self
            .update(actor, action, reason.clone(), |s| {
                // Another change may have moved the phase meanwhile: advance from where the
                // criteria were judged only.
                if s.phase != from {
                    return Err(LaunchError::Busy);
                }
                s.phase = from + 1;
                s.phase_history.push(PhaseChange {
                    from: phase.name.clone(),
                    to: s
                        .phases
                        .get(s.phase)
                        .map_or_else(String::new, |p| p.name.clone()),
                    at,
                    by: actor.to_string(),
                    forced: force,
                    reason: reason.clone(),
                });
                // A plan put and advanced over and over keeps only its recent history.
                let over = s.phase_history.len().saturating_sub(MAX_PHASE_HISTORY);
                s.phase_history.drain(..over);
                if let Some(next) = s.phases.get(s.phase) {
                    s.user_limit = next.user_limit;
                }
                Ok(())
            })
            .await?;
        Ok((saved, results, admitted))
    }

    pub async fn submit_feedback(&self, input: FeedbackInput) -> Result<Feedback, LaunchError> {
        let valid = input
            .validate()
            .map_err(|e| LaunchError::Invalid(e.to_string()))?;
        Ok(self.store.insert_feedback(&valid, self.clock.now()).await?)
    }

    pub async fn list_feedback(&self, query: &FeedbackQuery) -> Result<Vec<Feedback>, LaunchError> {
        Ok(self.store.list_feedback(query).await?)
    }

    pub async fn resolve_feedback(
        &self,
        id: i64,
        resolution: Option<String>,
        actor: &Actor,
    ) -> Result<Feedback, LaunchError> {
        let resolution = reason_text("resolution", resolution, false)?.unwrap_or_default();
        let audit = Change::new(actor, "feedback.resolve", "feedback", &id.to_string())
            .after(json!({"status": FeedbackStatus::Resolved, "resolution": resolution}));
        self.store
            .resolve_feedback(id, &resolution, self.clock.now(), &audit)
            .await?
            .ok_or(LaunchError::FeedbackNotFound(id))
    }

    /// First asks and seats per UTC day from `since`'s day on.
    pub async fn admissions_by_day(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<AdmissionDay>, LaunchError> {
        Ok(self.store.admissions_by_day(since).await?)
    }

    pub async fn feedback_summary(&self) -> Result<FeedbackSummary, LaunchError> {
        Ok(summarize(&self.store.feedback_since(None).await?))
    }

    pub async fn feedback_backlog(&self) -> Result<Vec<BacklogItem>, LaunchError> {
        Ok(backlog(&self.store.feedback_since(None).await?))
    }

    /// The summary and the backlog from one read of the feedback (the launch report wants
    /// both).
    pub async fn feedback_summary_and_backlog(
        &self,
    ) -> Result<(FeedbackSummary, Vec<BacklogItem>), LaunchError> {
        let all = self.store.feedback_since(None).await?;
        Ok((summarize(&all), backlog(&all)))
    }
}
