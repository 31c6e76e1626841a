//! Flag lifecycle: create, change, delete, evaluate, roll out; every change audited and
//! visible to the next evaluation on this replica at once (and on others within a second).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::Duration;
use liftoff_eval::{Context, Evaluation};
use serde_json::json;
use tokio::sync::watch;

use super::FlagStore;
use super::catalog::{Catalog, EvaluationCounters};
use super::guard::{GuardCheck, Guarding, OFF, ON, OnRegression, RequestsByValue, Verdict, judge};
use super::input::{FlagPatch, NewFlag, validate};
use super::model::{Environment, Flag, FlagKey, StrategyKind};
use super::rollout::{PlanState, RolloutPlan};
use super::segments::{Segment, SegmentInput, validate_segment};
use crate::audit::{AuditEntry, AuditQuery, AuditService, Change};
use crate::auth::Actor;
use crate::clock::Clock;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("flag `{0}` not found")]
    NotFound(String),
    #[error("flag `{0}` already exists")]
    Exists(String),
    #[error("invalid flag: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("flag `{0}` is being changed by someone else; retry")]
    Busy(String),
    #[error(
        "flag `{0}` is disabled, so a rollout would reach nobody; enable it first (PATCH the flag with \"enabled\": true and a reason), then plan the rollout"
    )]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tells rollouts whether a critical alert is firing. The alerts capability implements it;
/// until then [`NoAlerts`] says none is.
#[async_trait]
pub trait CriticalAlerts: Send + Sync {
    /// Names of the critical alerts firing now.
    async fn firing_critical(&self) -> Vec<String>;
    /// Makes sure a guardrail regression pages: creates the `rollout_regressions` rule when
    /// none exists (a guarded plan is being saved).
    async fn arm_rollout_alert(&self) -> Result<(), String> {
        Ok(())
    }
}

pub struct NoAlerts;

#[async_trait]
impl CriticalAlerts for NoAlerts {
    async fn firing_critical(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The answer to planning a gradual rollout (the seed's shape).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RolloutAnswer {
    pub flag_id: String,
    pub current_percentage: f64,
    pub target_percentage: f64,
    pub steps: Vec<f64>,
    pub total_steps: usize,
    pub interval_minutes: Option<u32>,
    /// `scheduled` when Liftoff applies the steps, `manual` when people do.
    pub mode: &'static str,
    pub recommendation: String,
    pub plan: Option<RolloutPlan>,
}

/// What an Unleash import did.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
}

/// Why a flag is marked stale, if it is.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Staleness {
    pub stale: bool,
    pub reason: Option<String>,
}

#[derive(Clone)]
pub struct FlagService {
    store: Arc<dyn FlagStore>,
    audit: AuditService,
    current: Arc<RwLock<Arc<Catalog>>>,
    changes: Arc<watch::Sender<i64>>,
    counters: Arc<EvaluationCounters>,
    alerts: Arc<dyn CriticalAlerts>,
    stale_after: Duration,
    /// SDK feeds serialized so far (one per environment per catalog built).
    serialized: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
    /// Request metrics per flag value, for guarded rollouts.
    traffic: Option<Arc<dyn RequestsByValue>>,
    /// When each guarded plan was last checked (per replica: a check only reads).
    checked:
        Arc<std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>>>,
}

const RETRIES: usize = 5;

impl FlagService {
    /// Loads every flag and compiles the first catalog.
    pub async fn start(
        store: Arc<dyn FlagStore>,
        audit: AuditService,
        alerts: Arc<dyn CriticalAlerts>,
        stale_after_days: u32,
    ) -> Result<Self, StoreError> {
        let counters = Arc::new(EvaluationCounters::default());
        let serialized = Arc::new(AtomicU64::new(0));
        let revision = store.flags_revision().await?;
        let catalog = Catalog::build_counted(
            revision,
            store.list_flags().await?,
            store.list_segments().await?,
            &counters,
            &serialized,
        );
        let (tx, _) = watch::channel(revision);
        Ok(Self {
            store,
            audit,
            current: Arc::new(RwLock::new(Arc::new(catalog))),
            changes: Arc::new(tx),
            counters,
            alerts,
            stale_after: Duration::days(i64::from(stale_after_days)),
            serialized,
            clock: crate::clock::system(),
            traffic: None,
            checked: Arc::default(),
        })
    }

    /// Reads request metrics per flag value from `traffic` (guarded rollouts).
    pub fn with_traffic(mut self, traffic: Arc<dyn RequestsByValue>) -> Self {
        self.traffic = Some(traffic);
        self
    }

    /// Reads the time (change stamps, rollout steps, staleness) from `clock` instead of the
    /// system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The catalog evaluation reads now.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fires with the new revision after every change this replica sees.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }

    pub fn evaluate(&self, key: &str, env: Environment, ctx: &Context) -> Evaluation {
        self.catalog().evaluate(key, env, ctx)
    }

    /// SDK feeds serialized since start: one per environment per catalog built, however
    /// many SDKs poll or stream.
    pub fn feeds_serialized(&self) -> u64 {
        self.serialized.load(Ordering::Relaxed)
    }

    /// Rebuilds the catalog from the store and tells subscribers.
    ///
    /// The revision is read before the flags, so a catalog's contents are never older than
    /// its revision; and a catalog replaces the live one only when its revision is newer.
    /// Two reloads racing on one replica (two writes at once) therefore cannot leave the
    /// older catalog live: whichever swaps last, the newest revision wins.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let revision = self.store.flags_revision().await?;
        let catalog = Arc::new(Catalog::build_counted(
            revision,
            self.store.list_flags().await?,
            self.store.list_segments().await?,
            &self.counters,
            &self.serialized,
        ));
        if swap_if_newer(&self.current, catalog) {
            self.changes.send_replace(revision);
        }
        Ok(())
    }

    /// Reloads when another replica changed flags; `true` if it did.
    pub async fn reload_if_changed(&self) -> Result<bool, StoreError> {
        let stored = self.store.flags_revision().await?;
        if stored == self.catalog().revision {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    pub fn list(&self) -> Vec<Flag> {
        self.catalog().flags.values().cloned().collect()
    }

    pub fn get(&self, key: &str) -> Result<Flag, FlagError> {
        self.catalog()
            .flags
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| FlagError::NotFound(key.to_owned()))
    }

    fn check_dependencies(&self, flag: &Flag) -> Result<(), FlagError> {
        let catalog = self.catalog();
        let mut problems = Vec::new();
        for (i, d) in flag.dependencies.iter().enumerate() {
            match catalog.flags.get(d.feature.as_str()) {
                None => problems.push(format!("dependencies[{i}]: flag `{}` does not exist", d.feature)),
                Some(parent) if !parent.dependencies.is_empty() => problems.push(format!(
                    "dependencies[{i}]: `{}` has dependencies of its own; only one level is allowed",
                    d.feature
                )),
                Some(_) => {}
            }
        }
        let known = |id: &i64| catalog.segments.iter().any(|s| s.id == *id);
        for id in flag.segments.iter().filter(|id| !known(id)) {
            problems.push(format!("segments: segment {id} does not exist"));
        }
        for (i, rule) in flag.rules.iter().enumerate() {
            for id in rule.segments.iter().filter(|id| !known(id)) {
                problems.push(format!("rules[{i}].segments: segment {id} does not exist"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FlagError::Invalid(problems))
        }
    }

    pub async fn create(&self, by: &Actor, new: NewFlag) -> Result<Flag, FlagError> {
        let now = self.clock.now();
        let percentage = new
            .percentage
            .unwrap_or(if new.strategy == StrategyKind::AllUsers {
                100.0
            } else {
                0.0
            });
        let flag = Flag {
            name: new.name.unwrap_or_else(|| new.flag_id.to_string()),
            flag_id: new.flag_id,
            description: new.description,
            enabled: new.enabled.unwrap_or(true),
            strategy: new.strategy,
            percentage,
            user_whitelist: new.user_whitelist,
            user_blacklist: new.user_blacklist,
            attributes: new.attributes,
            variants: new.variants,
            rules: new.rules,
            segments: new.segments,
            dependencies: new.dependencies,
            environments: new.environments,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        validate(&flag).map_err(FlagError::Invalid)?;
        self.check_dependencies(&flag)?;
        let change = Change::new(by, "flag.create", "flag", flag.flag_id.as_str())
            .after(to_value(&flag))
            .reason(new.reason);
        match self.store.insert_flag(&flag, &change).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(FlagError::Exists(flag.flag_id.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        self.reload().await?;
        Ok(flag)
    }

    /// Applies `patch` to the current flag; retried when another writer got there first.
    pub async fn update(&self, by: &Actor, key: &str, patch: FlagPatch) -> Result<Flag, FlagError> {
        let reason = patch.reason.clone();
        self.modify(by, key, "flag.update", reason, move |flag| {
            patch.clone().apply(flag);
            Ok(())
        })
        .await
    }

    /// The kill switch and its opposite.
    pub async fn set_enabled(
        &self,
        by: &Actor,
        key: &str,
        enabled: bool,
        reason: Option<String>,
    ) -> Result<Flag, FlagError> {
        let action = if enabled {
            "flag.enable"
        } else {
            "flag.disable"
        };
        self.modify(by, key, action, reason, move |flag| {
            flag.enabled = enabled;
            Ok(())
        })
        .await
    }

    pub async fn set_percentage(
        &self,
        by: &Actor,
        key: &str,
        percentage: f64,
        reason: Option<String>,
    ) -> Result<Flag, FlagError> {
        self.modify(by, key, "flag.rollout", reason, move |flag| {
            flag.percentage = percentage;
            if flag.strategy == StrategyKind::AllUsers {
                flag.strategy = StrategyKind::Percentage;
            }
            Ok(())
        })
        .await
    }

    async fn modify(
        &self,
        by: &Actor,
        key: &str,
        action: &str,
        reason: Option<String>,
        edit: impl Fn(&mut Flag) -> Result<(), FlagError>,
    ) -> Result<Flag, FlagError> {
        for _ in 0..RETRIES {
            // A key that is not a valid flag key names no stored flag.
            let Ok(flag_key) = FlagKey::try_from(key.to_owned()) else {
                return Err(FlagError::NotFound(key.to_owned()));
            };
            let Some(before) = self.store.get_flag(&flag_key).await? else {
                return Err(FlagError::NotFound(key.to_owned()));
            };
            let mut flag = before.clone();
            edit(&mut flag)?;
            flag.version = before.version + 1;
            flag.updated_at = self.clock.now();
            validate(&flag).map_err(FlagError::Invalid)?;
            self.check_dependencies(&flag)?;
            let change = Change::new(by, action, "flag", key)
                .before(to_value(&before))
                .after(to_value(&flag))
                .reason(reason.clone());
            if self
                .store
                .update_flag(&flag, before.version, &change)
                .await?
            {
                self.reload().await?;
                return Ok(flag);
            }
        }
        Err(FlagError::Busy(key.to_owned()))
    }

    pub async fn delete(
        &self,
        by: &Actor,
        key: &str,
        reason: Option<String>,
    ) -> Result<(), FlagError> {
        let before = self.get(key)?;
        if let Some((dependent, _)) = self
            .catalog()
            .flags
            .iter()
            .find(|(_, f)| f.dependencies.iter().any(|d| d.feature == key))
        {
            return Err(FlagError::Invalid(vec![format!(
                "flag `{dependent}` depends on `{key}`; remove that dependency first"
            )]));
        }
        let change = Change::new(by, "flag.delete", "flag", key)
            .before(to_value(&before))
            .reason(reason);
        if !self.store.delete_flag(&before.flag_id, &change).await? {
            return Err(FlagError::NotFound(key.to_owned()));
        }
        self.reload().await?;
        Ok(())
    }

    /// Creates or replaces a flag for every feature of an Unleash export. Nothing is written
    /// unless every feature converts.
    pub async fn import_unleash(
        &self,
        by: &Actor,
        features: &liftoff_eval::ClientFeatures,
        reason: Option<String>,
    ) -> Result<ImportReport, FlagError> {
        let (flags, problems) = super::import::flags_from_unleash(features, self.clock.now());
        if !problems.is_empty() {
            return Err(FlagError::Invalid(problems));
        }
        let mut report = ImportReport::default();
        let existing: std::collections::HashMap<String, Flag> = self
            .store
            .list_flags()
            .await?
            .into_iter()
            .map(|f| (f.flag_id.to_string(), f))
            .collect();
        for mut flag in flags {
            let key = flag.flag_id.to_string();
            match existing.get(&key) {
                None => {
                    let change = Change::new(by, "flag.import", "flag", &key)
                        .after(to_value(&flag))
                        .reason(reason.clone());
                    self.store.insert_flag(&flag, &change).await?;
                    report.created.push(key);
                }
                Some(before) => {
                    flag.created_at = before.created_at;
                    flag.version = before.version + 1;
                    let change = Change::new(by, "flag.import", "flag", &key)
                        .before(to_value(before))
                        .after(to_value(&flag))
                        .reason(reason.clone());
                    if !self
                        .store
                        .update_flag(&flag, before.version, &change)
                        .await?
                    {
                        return Err(FlagError::Busy(key));
                    }
                    report.updated.push(key);
                }
            }
        }
        self.reload().await?;
        Ok(report)
    }

    pub fn segments(&self) -> Vec<Segment> {
        self.catalog().segments.clone()
    }

    pub fn segment(&self, id: i64) -> Result<Segment, FlagError> {
        self.catalog()
            .segments
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| FlagError::NotFound(format!("segment {id}")))
    }

    pub async fn create_segment(
        &self,
        by: &Actor,
        input: SegmentInput,
    ) -> Result<Segment, FlagError> {
        validate_segment(&input).map_err(FlagError::Invalid)?;
        let mut segment = Segment {
            id: 0,
            name: input.name.trim().to_owned(),
            description: input.description,
            constraints: input.constraints,
            updated_at: self.clock.now(),
        };
        let change = Change::new(by, "segment.create", "segment", "new")
            .after(to_value(&segment))
            .reason(input.reason);
        segment.id = match self.store.insert_segment(&segment, &change).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                return Err(FlagError::Exists(format!("segment {}", segment.name)));
            }
            Err(e) => return Err(e.into()),
        };
        self.reload().await?;
        Ok(segment)
    }

    pub async fn update_segment(
        &self,
        by: &Actor,
        id: i64,
        input: SegmentInput,
    ) -> Result<Segment, FlagError> {
        validate_segment(&input).map_err(FlagError::Invalid)?;
        let before = self.segment(id)?;
        let segment = Segment {
            id,
            name: input.name.trim().to_owned(),
            description: input.description,
            constraints: input.constraints,
            updated_at: self.clock.now(),
        };
        let change = Change::new(by, "segment.update", "segment", &id.to_string())
            .before(to_value(&before))
            .after(to_value(&segment))
            .reason(input.reason);
        match self.store.update_segment(&segment, &change).await {
            Ok(true) => {}
            Ok(false) => return Err(FlagError::NotFound(format!("segment {id}"))),
            Err(StoreError::Conflict(_)) => {
                return Err(FlagError::Exists(format!("segment {}", segment.name)));
            }
            Err(e) => return Err(e.into()),
        }
        self.reload().await?;
        Ok(segment)
    }

    /// Deletes a segment no flag uses.
    pub async fn delete_segment(
        &self,
        by: &Actor,
        id: i64,
        reason: Option<String>,
    ) -> Result<(), FlagError> {
        let before = self.segment(id)?;
        let users: Vec<String> = self
            .catalog()
            .flags
            .values()
            .filter(|f| {
                f.segments.contains(&id) || f.rules.iter().any(|r| r.segments.contains(&id))
            })
            .map(|f| f.flag_id.to_string())
            .collect();
        if !users.is_empty() {
            return Err(FlagError::Invalid(vec![format!(
                "segment {id} is used by {}; remove it from them first",
                users.join(", ")
            )]));
        }
        let change = Change::new(by, "segment.delete", "segment", &id.to_string())
            .before(to_value(&before))
            .reason(reason);
        if !self.store.delete_segment(id, &change).await? {
            return Err(FlagError::NotFound(format!("segment {id}")));
        }
        self.reload().await?;
        Ok(())
    }

    /// The flag's audit entries, newest first.
    pub async fn history(&self, key: &str, limit: u32) -> Result<Vec<AuditEntry>, FlagError> {
        let query = AuditQuery {
            target_type: Some("flag".into()),
            target_id: Some(key.to_owned()),
            limit,
            ..Default::default()
        };
        let entries = self.audit.list(&query).await?;
        if entries.is_empty() && self.get(key).is_err() {
            return Err(FlagError::NotFound(key.to_owned()));
        }
        Ok(entries)
    }

    /// Plans a gradual rollout to `target` in steps of `increment`. With an interval, Liftoff
    /// applies the steps on schedule; without, the plan is a recommendation.
    pub async fn plan_rollout(
        &self,
        by: &Actor,
        key: &str,
        target: f64,
        increment: f64,
        interval_minutes: Option<u32>,
        reason: Option<String>,
    ) -> Result<RolloutAnswer, FlagError> {
        self.plan_guarded_rollout(by, key, target, increment, interval_minutes, None, reason)
            .await
    }

    /// [`Self::plan_rollout`] with guardrails: each check compares the requests served the
    /// new value with the rest, a regression rolls back (or pauses), and a step waits for its
    /// minimum sample. Guardrails need a schedule (`interval_minutes`).
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_guarded_rollout(
        &self,
        by: &Actor,
        key: &str,
        target: f64,
        increment: f64,
        interval_minutes: Option<u32>,
        guard: Option<Guarding>,
        reason: Option<String>,
    ) -> Result<RolloutAnswer, FlagError> {
        let mut problems = Vec::new();
        if let Some(g) = &guard {
            if let Err(e) = g.validate() {
                problems.push(e);
            }
            if interval_minutes.is_none() {
                problems.push(
                    "guardrails need interval_minutes: Liftoff applies (and holds) the steps of a guarded plan"
                        .to_owned(),
                );
            }
        }
        if !(target.is_finite() && (0.0..=100.0).contains(&target)) {
            problems.push(format!(
                "target_percentage: {target} is not between 0 and 100"
            ));
        }
        if !(increment.is_finite() && increment > 0.0 && increment <= 100.0) {
            problems.push(format!(
                "increment: {increment} must be above 0 and at most 100"
            ));
        }
        if interval_minutes.is_some_and(|m| m == 0 || m > 60 * 24 * 30) {
            problems.push("interval_minutes: must be 1 to 43200".to_owned());
        }
        if !problems.is_empty() {
            return Err(FlagError::Invalid(problems));
        }
        let flag = self.get(key)?;
        // Raising the percentage of a switched-off flag changes nothing people see, and
        // enabling it as a side effect would be a bigger change than the one asked for.
        if !flag.enabled {
            return Err(FlagError::Disabled(key.to_owned()));
        }
        let current = if flag.strategy == StrategyKind::AllUsers && flag.enabled {
            100.0
        } else {
            flag.percentage
        };
        let mut plan = RolloutPlan::new(
            flag.flag_id.clone(),
            current,
            target,
            increment,
            interval_minutes,
            self.clock.now(),
        );
        plan.guard = guard;
        let total = plan.steps.len();
        let recommendation = match (total, interval_minutes) {
            (0, _) => format!("`{key}` is already at {target}%."),
            (n, Some(m)) if plan.guard.is_some() => format!(
                "Liftoff raises `{key}` from {current}% to {target}% in {n} steps, at most one every {m} minutes and only once a step saw enough requests; a guardrail regression {} and a firing critical alert pauses the plan.",
                match plan.guard.as_ref().map(|g| g.on_regression) {
                    Some(OnRegression::Pause) => "pauses the plan",
                    _ => "rolls the flag back to 0%",
                }
            ),
            (n, Some(m)) => format!(
                "Liftoff raises `{key}` from {current}% to {target}% in {n} steps, one every {m} minutes; a firing critical alert pauses the plan."
            ),
            (n, None) => format!(
                "Raise `{key}` from {current}% to {target}% in {n} steps of {increment}%, watching error rate and latency after each."
            ),
        };
        let saved = if interval_minutes.is_some() && total > 0 {
            if flag.strategy == StrategyKind::AllUsers {
                // The plan needs a percentage strategy to move.
                self.modify(by, key, "flag.update", reason.clone(), |f| {
                    f.strategy = StrategyKind::Gradual;
                    f.percentage = current;
                    Ok(())
                })
                .await?;
            }
            if plan.guard.is_some()
                && let Err(e) = self.alerts.arm_rollout_alert().await
            {
                tracing::warn!(error = %e, "Could not create the guarded-rollout alert rule; a regression still rolls back.");
            }
            let change = Change::new(by, "flag.rollout_plan", "flag", key)
                .after(to_value(&plan))
                .reason(reason);
            self.store.save_rollout_plan(&plan, &change).await?;
            Some(plan.clone())
        } else {
            None
        };
        Ok(RolloutAnswer {
            flag_id: key.to_owned(),
            current_percentage: current,
            target_percentage: target,
            steps: plan.steps.clone(),
            total_steps: total,
            interval_minutes,
            mode: if saved.is_some() {
                "scheduled"
            } else {
                "manual"
            },
            recommendation,
            plan: saved,
        })
    }

    pub async fn rollout_plans(&self) -> Result<Vec<RolloutPlan>, StoreError> {
        self.store.list_rollout_plans().await
    }

    /// Pauses or resumes a flag's scheduled plan.
    pub async fn set_plan_state(
        &self,
        by: &Actor,
        key: &str,
        pause: bool,
        reason: Option<String>,
    ) -> Result<RolloutPlan, FlagError> {
        let mut plan = self
            .store
            .list_rollout_plans()
            .await?
            .into_iter()
            .find(|p| p.flag_id.as_str() == key)
            .ok_or_else(|| FlagError::NotFound(format!("{key} (rollout plan)")))?;
        if plan.state == PlanState::Completed {
            return Err(FlagError::Invalid(vec![format!(
                "the rollout plan of `{key}` is already completed"
            )]));
        }
        let now = self.clock.now();
        plan.state = if pause {
            PlanState::Paused
        } else {
            PlanState::Active
        };
        plan.paused_reason = if pause {
            Some(reason.clone().unwrap_or_else(|| format!("paused by {by}")))
        } else {
            None
        };
        if !pause {
            plan.next_at = plan
                .interval_minutes
                .map(|m| now + Duration::minutes(i64::from(m)));
        }
        plan.updated_at = now;
        let action = if pause {
            "flag.rollout_pause"
        } else {
            "flag.rollout_resume"
        };
        let change = Change::new(by, action, "flag", key)
            .after(to_value(&plan))
            .reason(reason);
        self.store.save_rollout_plan(&plan, &change).await?;
        Ok(plan)
    }

    /// Applies every due rollout step; pauses every active plan while a critical alert fires.
    /// Returns what it did, for the job log.
    pub async fn advance_rollouts(&self) -> Result<String, FlagError> {
        let now = self.clock.now();
        let plans: Vec<RolloutPlan> = self
            .store
            .list_rollout_plans()
            .await?
            .into_iter()
            .filter(|p| p.state == PlanState::Active)
            .collect();
        if plans.is_empty() {
            return Ok("no active plans".into());
        }
        if let Some(traffic) = &self.traffic {
            traffic.watch(
                plans
                    .iter()
                    .filter(|p| p.guard.is_some())
                    .map(|p| p.flag_id.to_string())
                    .collect(),
            );
        }
        let firing = self.alerts.firing_critical().await;
        let mut done = Vec::new();
        for mut plan in plans {
            let key = plan.flag_id.to_string();
            if let Some(outcome) = self.check_guardrails(&mut plan, now).await? {
                done.push(format!("{key}: {outcome}"));
                if plan.state != PlanState::Active {
                    continue;
                }
            }
            if !firing.is_empty() {
                plan.state = PlanState::Paused;
                plan.paused_reason = Some(format!("critical alert firing: {}", firing.join(", ")));
                plan.updated_at = now;
                let change = Change::new(&Actor::System, "flag.rollout_pause", "flag", &key)
                    .after(to_value(&plan))
                    .reason(plan.paused_reason.clone());
                self.store.save_rollout_plan(&plan, &change).await?;
                done.push(format!("{key}: paused"));
                continue;
            }
            let Some(next) = plan.due(now) else { continue };
            if !plan.guard_allows_step() {
                continue;
            }
            done.push(match self.apply_step(plan, next, now).await? {
                true => format!("{key}: {next}%"),
                false => format!("{key}: step applied elsewhere"),
            });
        }
        Ok(if done.is_empty() {
            "nothing due".into()
        } else {
            done.join(", ")
        })
    }

    /// Sets the flag to the plan's next percentage and records the step, in one transaction
    /// that only commits if neither the plan nor the flag changed since they were read; a flag
    /// edited meanwhile is read again. `false` when another replica applied the step first.
    async fn apply_step(
        &self,
        mut plan: RolloutPlan,
        next: f64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, FlagError> {
        let key = plan.flag_id.clone();
        let (step, total) = (plan.applied + 1, plan.steps.len());
        let plan_change = Change::new(&Actor::System, "flag.rollout_step", "flag", key.as_str())
            .after(json!({"percentage": next, "step": step, "of": total}));
        plan.advance(now);
        for _ in 0..RETRIES {
            let Some(before) = self.store.get_flag(&key).await? else {
                // The flag is gone: the plan moves on so it is not retried forever.
                self.store.save_rollout_plan(&plan, &plan_change).await?;
                return Ok(true);
            };
            let mut flag = before.clone();
            flag.percentage = next;
            if flag.strategy == StrategyKind::AllUsers {
                flag.strategy = StrategyKind::Percentage;
            }
            flag.version = before.version + 1;
            flag.updated_at = self.clock.now();
            validate(&flag).map_err(FlagError::Invalid)?;
            self.check_dependencies(&flag)?;
            let flag_change = Change::new(&Actor::System, "flag.rollout", "flag", key.as_str())
                .before(to_value(&before))
                .after(to_value(&flag))
                .reason(Some(format!("rollout plan step {step} of {total}")));
            if self
                .store
                .apply_rollout_step(&flag, before.version, &flag_change, &plan, &plan_change)
                .await?
            {
                self.reload().await?;
                return Ok(true);
            }
            let stored = self.store.list_rollout_plans().await?;
            if !stored
                .iter()
                .any(|p| p.flag_id == key && p.applied + 1 == plan.applied)
            {
                return Ok(false);
            }
        }
        Err(FlagError::Busy(key.to_string()))
    }

    /// Checks a guarded plan's guardrails when its interval has passed: a regression rolls
    /// the flag back to 0 % (or pauses the plan) at once, with the evidence in the audit
    /// trail; a changed verdict is saved. What happened, when anything did.
    async fn check_guardrails(
        &self,
        plan: &mut RolloutPlan,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, FlagError> {
        let (Some(guard), Some(traffic)) = (plan.guard.clone(), self.traffic.clone()) else {
            return Ok(None);
        };
        let key = plan.flag_id.to_string();
        {
            let Ok(mut checked) = self.checked.lock() else {
                return Ok(None);
            };
            let due = checked.get(&key).is_none_or(|at| {
                *at + Duration::seconds(i64::from(guard.check_interval_seconds)) <= now
            });
            if !due {
                return Ok(None);
            }
            checked.insert(key.clone(), now);
        }
        let total = traffic.traffic(&key, plan.created_at, now).await?;
        let step_from = plan.step_started_at.unwrap_or(plan.created_at);
        let step_on = traffic
            .traffic(&key, step_from, now)
            .await?
            .get(ON)
            .map_or(0, |t| t.requests);
        let empty = Default::default();
        let check = judge(
            &guard,
            total.get(OFF).unwrap_or(&empty),
            total.get(ON).unwrap_or(&empty),
            step_on,
            now,
        );
        let changed = plan.last_check.as_ref().map(|c| c.verdict) != Some(check.verdict);
        if check.verdict == Verdict::Regressed {
            return self.on_regression(plan, &guard, check, now).await.map(Some);
        }
        if !changed {
            return Ok(None);
        }
        let verdict = check.verdict;
        plan.last_check = Some(check);
        let change = Change::new(&Actor::System, "flag.rollout_check", "flag", &key)
            .after(to_value(&plan.last_check));
        self.store.save_rollout_plan(plan, &change).await?;
        Ok(Some(format!("guardrails {verdict:?}").to_lowercase()))
    }

    async fn on_regression(
        &self,
        plan: &mut RolloutPlan,
        guard: &Guarding,
        check: GuardCheck,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, FlagError> {
        let key = plan.flag_id.to_string();
        let evidence = check.evidence();
        let (action, outcome) = match guard.on_regression {
            OnRegression::Rollback => {
                match self
                    .set_percentage(
                        &Actor::System,
                        &key,
                        0.0,
                        Some(format!("guarded rollout: guardrail regressed: {evidence}")),
                    )
                    .await
                {
                    Ok(_) | Err(FlagError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                plan.state = PlanState::RolledBack;
                plan.next_at = None;
                ("flag.rollout_rollback", "rolled back to 0%")
            }
            OnRegression::Pause => {
                plan.state = PlanState::Paused;
                ("flag.rollout_pause", "paused")
            }
        };
        plan.paused_reason = Some(format!("guardrail regressed: {evidence}"));
        plan.updated_at = now;
        plan.last_check = Some(check);
        let change = Change::new(&Actor::System, action, "flag", &key)
            .after(to_value(&plan))
            .reason(plan.paused_reason.clone());
        self.store.save_rollout_plan(plan, &change).await?;
        tracing::warn!(flag = %key, evidence = %evidence, "A guarded rollout {outcome}.");
        Ok(outcome.to_owned())
    }

    /// Guarded plans whose guardrails regressed at or after `since`, with the evidence (the
    /// `rollout_regressions` alert metric).
    pub async fn regressions_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .store
            .list_rollout_plans()
            .await?
            .into_iter()
            .filter_map(|p| {
                let c = p.last_check.as_ref()?;
                (c.verdict == Verdict::Regressed && c.at >= since)
                    .then(|| (p.flag_id.to_string(), c.evidence()))
            })
            .collect())
    }

    /// Writes the evaluation counts gathered since the last call.
    pub async fn flush_evaluation_counts(&self) -> Result<usize, StoreError> {
        let counts = self.counters.drain();
        if !counts.is_empty() {
            self.store
                .record_flag_evaluations(self.clock.now().date_naive(), &counts)
                .await?;
        }
        Ok(counts.len())
    }

    /// Stale flags: fully rolled out and unchanged, or neither evaluated nor changed, for the
    /// configured number of days.
    pub async fn staleness(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Staleness>, StoreError> {
        let last: std::collections::HashMap<String, chrono::NaiveDate> = self
            .store
            .flag_last_evaluated()
            .await?
            .into_iter()
            .collect();
        let now = self.clock.now();
        let days = self.stale_after.num_days();
        Ok(self
            .catalog()
            .flags
            .values()
            .map(|f| {
                let unchanged = now - f.updated_at >= self.stale_after;
                let evaluated_recently = last.get(f.flag_id.as_str()).is_some_and(|d| (now.date_naive() - *d).num_days() < days);
                let full = f.enabled_in(Environment::Production)
                    && (f.strategy == StrategyKind::AllUsers || f.percentage_in(Environment::Production) >= 100.0)
                    && f.user_blacklist.is_empty()
                    && f.rules.is_empty();
                let reason = if full && unchanged {
                    Some(format!("fully rolled out and unchanged for {days}+ days: remove the flag from the code"))
                } else if unchanged && !evaluated_recently {
                    Some(format!("not evaluated and not changed for {days}+ days"))
                } else {
                    None
                };
                (f.flag_id.to_string(), Staleness { stale: reason.is_some(), reason })
            })
            .collect())
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Compare-and-swap on the revision: `false` (and nothing changes) when the live catalog is
/// as new as `catalog` or newer.
fn swap_if_newer(live: &RwLock<Arc<Catalog>>, catalog: Arc<Catalog>) -> bool {
    let mut current = match live.write() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    if catalog.revision <= current.revision {
        return false;
    }
    *current = catalog;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_catalog_never_replaces_a_newer_one() {
        let counters = EvaluationCounters::default();
        let at = |revision| Arc::new(Catalog::build(revision, Vec::new(), Vec::new(), &counters));
        let live = RwLock::new(at(1));
        // Two reloads finish out of order: revision 3 first, then the slower revision 2.
        assert!(swap_if_newer(&live, at(3)));
        assert!(!swap_if_newer(&live, at(2)));
        assert!(!swap_if_newer(&live, at(3)));
        assert_eq!(live.read().unwrap().revision, 3);
        assert!(swap_if_newer(&live, at(4)));
        assert_eq!(live.read().unwrap().revision, 4);
    }
}
