//! `ExperimentService`: defines, stops and analyses experiments, and records exposures.
//!
//! Exposures come from two places. Server-side evaluations (`/check`, OFREP) are observed on
//! the hot path ([`ExperimentService::observe`]): a lock-free check whether the flag is under
//! an experiment at all, a per-process "seen" set so a user's repeated evaluations cost
//! nothing, and a bounded buffer a job writes every second (and at shutdown). Events carry
//! the rest (PostHog's `$feature_flag_called`, `$feature/<flag>` properties, SDK batches sent
//! as events): they are durable already, so results read them from the analytics engine
//! instead of copying them. Results merge both per user: the earliest exposure fixes the
//! variant; two different variants mark the user as exposed to several.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration};

use super::model::{
    Experiment, ExperimentPatch, ExperimentStatus, Metric, MetricKind, NewExperiment,
    StopExperiment, Stopped,
};
use super::results::{self, ExperimentResults, Inputs, Timeline, TimelinePoint, UserValue};
use super::store::{ExperimentStore, ExposedUser, Exposure};
use crate::analytics::insights::{AnalyticsQueries, InsightsError};
use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::{self, Clock};
use crate::flags::{Environment, FlagError, FlagPatch, FlagService, FlagVariant};
use crate::monitoring::MonitoringService;
use crate::store::StoreError;

/// Points of the cumulative uplift chart ([`ExperimentService::timeline`]).
pub const TIMELINE_POINTS: usize = 24;
/// CUPED's pre-exposure period.
pub const CUPED_PRE_PERIOD_DAYS: i64 = 14;
/// Metric events this close before the first exposure still count as after it. PostHog
/// capture corrects each batch's timestamps by its own `sent_at`, so an exposure and the
/// conversion a user made in the same instant can land a few milliseconds out of order when
/// they travel in different batches; a second is far below any real reaction time.
pub const EXPOSURE_GRACE_MS: i64 = 1000;
/// Exposures waiting to be written; beyond this they are counted as dropped (the job writes
/// every second, so only a stalled store fills it).
const MAX_PENDING: usize = 100_000;
/// Users remembered as already exposed, per process; cleared when full (a repeat after that
/// costs one idempotent row update).
const MAX_SEEN: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("no experiment `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("experiment `{0}` changed meanwhile; retry")]
    Busy(String),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Insights(#[from] InsightsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(msg: impl Into<String>) -> ExperimentError {
    ExperimentError::Invalid(msg.into())
}

/// An experiment with its status now (what the list and detail answer).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExperimentView {
    #[serde(flatten)]
    pub experiment: Experiment,
    pub status: ExperimentStatus,
}

/// The running experiment of each flag, per environment: what the hot path checks (keyed so a
/// lookup borrows the flag key instead of allocating).
type Watched = HashMap<Environment, HashMap<String, String>>;

struct ExposureLog {
    /// False while no experiment runs: then observing costs one atomic load.
    any: AtomicBool,
    watched: RwLock<Arc<Watched>>,
    seen: Mutex<HashSet<u64>>,
    pending: Mutex<Vec<Exposure>>,
    dropped: AtomicU64,
    recorded: AtomicU64,
}

/// 64 bits (two seeded murmur3 halves) so a million remembered users collide with odds of
/// about one in ten million; a collision only skips re-sending an exposure.
fn seen_key(experiment: &str, user: &str, variant: &str) -> u64 {
    let data = [experiment, user, variant].join("\u{1f}");
    let half = |seed| u64::from(liftoff_eval::murmur3::murmur3_x86_32(data.as_bytes(), seed));
    (half(0x5eed) << 32) | half(0xfeed)
}

#[derive(Clone)]
pub struct ExperimentService {
    store: Arc<dyn ExperimentStore>,
    flags: FlagService,
    analytics: Arc<dyn AnalyticsQueries>,
    /// Request metrics per variant (guardrails) and which flags to keep them for.
    monitoring: MonitoringService,
    clock: Arc<dyn Clock>,
    log: Arc<ExposureLog>,
}

impl ExperimentService {
    pub async fn start(
        store: Arc<dyn ExperimentStore>,
        flags: FlagService,
        analytics: Arc<dyn AnalyticsQueries>,
        monitoring: MonitoringService,
    ) -> Result<Self, StoreError> {
        let service = Self {
            store,
            flags,
            analytics,
            monitoring,
            clock: clock::system(),
            log: Arc::new(ExposureLog {
                any: AtomicBool::new(false),
                watched: RwLock::default(),
                seen: Mutex::default(),
                pending: Mutex::default(),
                dropped: AtomicU64::new(0),
                recorded: AtomicU64::new(0),
            }),
        };
        service.reload().await?;
        Ok(service)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Rereads which flags are under a running experiment (after a change here, and
    /// periodically for changes made on other replicas).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut watched = Watched::default();
        for e in self.store.list_experiments().await? {
            if e.status(now) == ExperimentStatus::Running && e.collects_at(now) {
                watched
                    .entry(e.environment)
                    .or_default()
                    .insert(e.flag_id.clone(), e.key.clone());
            }
        }
        self.monitoring.watched.set(
            "experiments",
            watched.values().flat_map(|m| m.keys().cloned()).collect(),
        );
        self.log.any.store(!watched.is_empty(), Ordering::Relaxed);
        if let Ok(mut w) = self.log.watched.write() {
            *w = Arc::new(watched);
        }
        Ok(())
    }

    /// A server-side evaluation of `flag` gave `user` the `variant`: an exposure when the
    /// flag is under a running experiment. Never blocks on the store.
    pub fn observe(&self, flag: &str, env: Environment, user: &str, variant: &str) {
        if !self.log.any.load(Ordering::Relaxed) || user.is_empty() {
            return;
        }
        let experiment = {
            let Ok(w) = self.log.watched.read() else {
                return;
            };
            match w.get(&env).and_then(|flags| flags.get(flag)) {
                Some(e) => e.clone(),
                None => return,
            }
        };
        let key = seen_key(&experiment, user, variant);
        {
            let Ok(mut seen) = self.log.seen.lock() else {
                return;
            };
            if seen.len() >= MAX_SEEN {
                seen.clear();
            }
            if !seen.insert(key) {
                return;
            }
        }
        let Ok(mut pending) = self.log.pending.lock() else {
            return;
        };
        if pending.len() >= MAX_PENDING {
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(Exposure {
            experiment,
            user_id: user.to_owned(),
            variant: variant.to_owned(),
            at: self.clock.now(),
        });
    }

    /// [`Self::observe`] for an evaluation: only a variant actually given (an evaluation's
    /// `given_variant`) to a known user counts (not `disabled`, not an anonymous evaluation).
    pub fn observe_evaluation(
        &self,
        flag: &str,
        env: Environment,
        user: Option<&str>,
        variant: Option<&str>,
    ) {
        if let (Some(user), Some(variant)) = (user, variant) {
            self.observe(flag, env, user, variant);
        }
    }

    /// Writes the exposures observed since the last flush; the number written.
    pub async fn flush_exposures(&self) -> Result<usize, StoreError> {
        let batch = match self.log.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.record_exposures(&batch).await {
            // Put them back (bounded) so the next flush retries, and forget them as seen so
            // a later evaluation can re-observe what is lost.
            if let Ok(mut p) = self.log.pending.lock() {
                let room = MAX_PENDING.saturating_sub(p.len());
                let lost = batch.len().saturating_sub(room);
                self.log.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                p.extend(batch.into_iter().take(room));
            }
            return Err(e);
        }
        self.log
            .recorded
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(batch.len())
    }

    /// Exposures written and dropped since start, for `/metrics`.
    pub fn render_prometheus(&self, out: &mut String) {
        for (name, help, value) in [
            (
                "liftoff_experiment_exposures_recorded_total",
                "Server-side exposures written by this replica.",
                &self.log.recorded,
            ),
            (
                "liftoff_experiment_exposures_dropped_total",
                "Server-side exposures dropped because the buffer was full (the store stalled).",
                &self.log.dropped,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
    }

    fn view(&self, experiment: Experiment) -> ExperimentView {
        let status = experiment.status(self.clock.now());
        ExperimentView { experiment, status }
    }

    pub async fn list(&self) -> Result<Vec<ExperimentView>, ExperimentError> {
        Ok(self
            .store
            .list_experiments()
            .await?
            .into_iter()
            .map(|e| self.view(e))
            .collect())
    }

    async fn load(&self, key: &str) -> Result<Experiment, ExperimentError> {
        self.store
            .get_experiment(key)
            .await?
            .ok_or_else(|| ExperimentError::NotFound(key.to_owned()))
    }

    pub async fn get(&self, key: &str) -> Result<ExperimentView, ExperimentError> {
        Ok(self.view(self.load(key).await?))
    }

    pub async fn create(
        &self,
        by: &Actor,
        new: NewExperiment,
    ) -> Result<ExperimentView, ExperimentError> {
        let now = self.clock.now();
        let flag = self.flags.get(&new.flag_id).map_err(|e| match e {
            FlagError::NotFound(_) => invalid(format!(
                "flag_id: no flag `{}`; create the flag with its variants first",
                new.flag_id
            )),
            other => ExperimentError::Flag(other),
        })?;
        let mut new = new;
        let weights = new.weights.take();
        // Validate everything before touching the flag.
        let mut exp = new
            .into_experiment(&flag, &by.to_string(), now)
            .map_err(invalid)?;
        if let Some(other) = self.store.list_experiments().await?.into_iter().find(|o| {
            o.flag_id == exp.flag_id && o.environment == exp.environment && o.stopped.is_none()
        }) {
            return Err(ExperimentError::Conflict(format!(
                "flag `{}` already has experiment `{}` in {}; stop it first",
                exp.flag_id,
                other.key,
                exp.environment.as_str()
            )));
        }
        let taken =
            || ExperimentError::Conflict(format!("an experiment `{}` exists already", exp.key));
        if self.store.get_experiment(&exp.key).await?.is_some() {
            return Err(taken());
        }
        let weighted = weights
            .map(|w| super::model::weighted_variants(&flag, &w))
            .transpose()
            .map_err(invalid)?;
        if let Some(variants) = weighted {
            let flag = self
                .flags
                .update(
                    by,
                    &exp.flag_id,
                    FlagPatch {
                        variants: Some(variants),
                        reason: Some(format!("traffic split of experiment `{}`", exp.key)),
                        ..FlagPatch::default()
                    },
                )
                .await?;
            exp.variants = super::model::flag_variants(&flag).map_err(invalid)?;
        }
        let mut change = Change::new(by, "experiment.create", "experiment", &exp.key);
        change.after = serde_json::to_value(&exp).ok();
        if !self.store.create_experiment(&exp, &change).await? {
            return Err(taken());
        }
        self.reload().await?;
        Ok(self.view(exp))
    }

    pub async fn update(
        &self,
        by: &Actor,
        key: &str,
        patch: ExperimentPatch,
    ) -> Result<ExperimentView, ExperimentError> {
        let before = self.load(key).await?;
        let after = patch
            .apply(before.clone(), self.clock.now())
            .map_err(invalid)?;
        self.replace(by, "experiment.update", &before, after, None)
            .await
    }

    /// Writes `after` over `before` (if nobody changed it meanwhile) with its audit entry.
    async fn replace(
        &self,
        by: &Actor,
        action: &str,
        before: &Experiment,
        after: Experiment,
        reason: Option<String>,
    ) -> Result<ExperimentView, ExperimentError> {
        let mut change = Change::new(by, action, "experiment", &before.key);
        change.before = serde_json::to_value(before).ok();
        change.after = serde_json::to_value(&after).ok();
        change.reason = reason;
        if !self
            .store
            .update_experiment(&after, before.version, &change)
            .await?
        {
            return Err(ExperimentError::Busy(before.key.clone()));
        }
        self.reload().await?;
        Ok(self.view(after))
    }

    /// Stops collecting; with `ship_variant`, gives that variant to everyone by leaving it
    /// the flag's only variant (an audited flag change).
    pub async fn stop(
        &self,
        by: &Actor,
        key: &str,
        stop: StopExperiment,
    ) -> Result<ExperimentView, ExperimentError> {
        let before = self.load(key).await?;
        if before.stopped.is_some() {
            return Err(ExperimentError::Conflict(format!(
                "experiment `{key}` is stopped already"
            )));
        }
        let reason = stop.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(invalid("reason: say why in 1 to 1000 characters"));
        }
        if let Some(v) = &stop.ship_variant
            && !before.variants.iter().any(|x| &x.name == v)
        {
            return Err(invalid(format!(
                "ship_variant: `{v}` is not a variant of experiment `{key}`"
            )));
        }
        let now = self.clock.now();
        let mut after = before.clone();
        after.stopped = Some(Stopped {
            at: now,
            by: by.to_string(),
            reason: reason.clone(),
            shipped_variant: stop.ship_variant.clone(),
        });
        after.updated_at = now;
        after.version += 1;
        if let Some(ship) = &stop.ship_variant {
            self.ship(by, &before, ship, &reason).await?;
        }
        self.replace(by, "experiment.stop", &before, after, Some(reason))
            .await
    }

    async fn ship(
        &self,
        by: &Actor,
        exp: &Experiment,
        variant: &str,
        reason: &str,
    ) -> Result<(), ExperimentError> {
        let flag = self.flags.get(&exp.flag_id)?;
        let Some(kept) = flag.variants.iter().find(|v| v.name == variant) else {
            return Err(ExperimentError::Conflict(format!(
                "flag `{}` no longer has variant `{variant}`; ship by editing the flag",
                exp.flag_id
            )));
        };
        let variants = vec![FlagVariant {
            weight: 1000,
            overrides: Vec::new(),
            ..kept.clone()
        }];
        self.flags
            .update(
                by,
                &exp.flag_id,
                FlagPatch {
                    variants: Some(variants),
                    reason: Some(format!(
                        "experiment `{}` shipped `{variant}`: {reason}",
                        exp.key
                    )),
                    ..FlagPatch::default()
                },
            )
            .await?;
        Ok(())
    }

    /// Every user exposed, from both sources, in user order.
    async fn exposed_users(&self, exp: &Experiment) -> Result<Vec<ExposedUser>, ExperimentError> {
        let mut by_user: BTreeMap<String, ExposedUser> = self
            .store
            .exposed_users(&exp.key)
            .await?
            .into_iter()
            .map(|u| (u.user_id.clone(), u))
            .collect();
        let from = exp.starts_at.timestamp_millis();
        let to = self.collect_end(exp).timestamp_millis();
        for e in self
            .analytics
            .flag_exposures(&exp.flag_id, from, to)
            .await?
        {
            let first_at = DateTime::from_timestamp_millis(e.first_ms).unwrap_or(exp.starts_at);
            match by_user.get_mut(&e.user) {
                None => {
                    by_user.insert(
                        e.user.clone(),
                        ExposedUser {
                            user_id: e.user,
                            variant: e.variant,
                            first_at,
                            multiple: e.multiple,
                        },
                    );
                }
                Some(u) => {
                    u.multiple |= e.multiple || u.variant != e.variant;
                    if first_at < u.first_at {
                        u.first_at = first_at;
                        u.variant = e.variant;
                    }
                }
            }
        }
        Ok(by_user.into_values().collect())
    }

    /// Each analysed user's value of an event metric (in `users` order); `None` without an
    /// event (validation makes every event metric name one).
    /// With `until`, events from then on are not counted (the results as they stood then).
    async fn values(
        &self,
        metric: &Metric,
        cuped: bool,
        users: &[&ExposedUser],
        until: Option<DateTime<chrono::Utc>>,
    ) -> Result<Option<Vec<UserValue>>, ExperimentError> {
        let Some(event) = metric.event.as_deref() else {
            return Ok(None);
        };
        let window = Duration::hours(i64::from(metric.window_hours)).num_milliseconds();
        let until = until.map_or(i64::MAX, |t| t.timestamp_millis());
        let post: Vec<(String, i64, i64)> = users
            .iter()
            .map(|u| {
                let t = u.first_at.timestamp_millis();
                (
                    u.user_id.clone(),
                    t - EXPOSURE_GRACE_MS,
                    (t + window).min(until),
                )
            })
            .collect();
        let totals = self
            .analytics
            .user_totals(event, metric.property.as_deref(), post.clone())
            .await?;
        let value = |t: &liftoff_analytics::UserTotals| match metric.kind {
            MetricKind::Conversion => f64::from(u8::from(t.count > 0)),
            MetricKind::Count => t.count as f64,
            MetricKind::Ratio if metric.property.is_none() => t.count as f64,
            _ => t.sum,
        };
        let denominators = match &metric.denominator_event {
            Some(d) => Some(self.analytics.user_totals(d, None, post.clone()).await?),
            None => None,
        };
        let pre = if cuped {
            let pre_period = Duration::days(CUPED_PRE_PERIOD_DAYS).num_milliseconds();
            let windows = post
                .iter()
                .map(|(u, from, _)| (u.clone(), from - pre_period, *from))
                .collect();
            Some(
                self.analytics
                    .user_totals(event, metric.property.as_deref(), windows)
                    .await?,
            )
        } else {
            None
        };
        Ok(Some(
            totals
                .iter()
                .enumerate()
                .map(|(i, t)| UserValue {
                    value: value(t),
                    denominator: denominators.as_ref().map_or(0.0, |d| d[i].count as f64),
                    pre: pre.as_ref().map_or(0.0, |p| value(&p[i])),
                })
                .collect(),
        ))
    }

    /// Where the experiment's data ends: the end, the stop, or (still running) a day ahead,
    /// so events a client clock put slightly in the future count too.
    fn collect_end(&self, exp: &Experiment) -> DateTime<chrono::Utc> {
        [exp.ends_at, exp.stopped.as_ref().map(|s| s.at)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| self.clock.now() + Duration::days(1))
    }

    pub async fn results(&self, key: &str) -> Result<ExperimentResults, ExperimentError> {
        let exp = self.load(key).await?;
        // Results answer for every event committed before the request.
        self.analytics.refresh_soon().await;
        let users = self.exposed_users(&exp).await?;
        let (groups, multiple) = results::assign(&exp, &users);
        let analysed: Vec<&ExposedUser> = groups.iter().flatten().map(|&i| &users[i]).collect();
        let mut inputs = Inputs {
            users_per_variant: groups.iter().map(|g| g.len() as u64).collect(),
            multiple_exposures: multiple,
            goals: Vec::new(),
            guardrails: Vec::new(),
        };
        // Request metrics per variant are read once, and only when a metric needs them.
        let mut traffic = None;
        for (goal, metrics) in [
            (true, exp.metrics.goals().collect::<Vec<_>>()),
            (false, exp.metrics.guardrails.iter().collect()),
        ] {
            // CUPED adjusts goal metrics; guardrails are compared as measured.
            let cuped = goal && exp.analysis.cuped;
            for m in metrics {
                let input = if m.kind.from_monitoring() {
                    if traffic.is_none() {
                        traffic = Some(
                            self.monitoring
                                .variant_traffic(
                                    &exp.flag_id,
                                    exp.starts_at,
                                    self.collect_end(&exp),
                                )
                                .await?,
                        );
                    }
                    traffic
                        .as_ref()
                        .filter(|t| !t.is_empty())
                        .map(|t| results::request_statistics(&exp, m.kind, t))
                } else {
                    self.values(m, cuped, &analysed, None)
                        .await?
                        .map(|v| results::statistics(m, cuped, &groups, &v))
                };
                if goal {
                    inputs.goals.push(input);
                } else {
                    inputs.guardrails.push(input);
                }
            }
        }
        Ok(results::results(&exp, &inputs, self.clock.now()))
    }

    /// The primary metric as it stood at up to [`TIMELINE_POINTS`] moments evenly spread from
    /// the start to now (or the end): users exposed before each moment, their events until
    /// it. The cumulative uplift chart; the last point is the results' primary metric (before
    /// the correction across goal metrics). Empty for a metric read from request monitoring,
    /// which keeps no per-user history, and before any time has passed.
    pub async fn timeline(&self, key: &str) -> Result<Timeline, ExperimentError> {
        let exp = self.load(key).await?;
        let mut timeline = Timeline {
            experiment: exp.key.clone(),
            metric: exp.metrics.primary.label(),
            points: Vec::new(),
        };
        let end = self.collect_end(&exp).min(self.clock.now());
        let span = end - exp.starts_at;
        if exp.metrics.primary.kind.from_monitoring() || span <= Duration::zero() {
            return Ok(timeline);
        }
        self.analytics.refresh_soon().await;
        let users = self.exposed_users(&exp).await?;
        // The primary alone: no family to correct across, no guardrails to read.
        let mut primary_only = exp.clone();
        primary_only.metrics.secondary.clear();
        primary_only.metrics.guardrails.clear();
        let cuped = exp.analysis.cuped;
        for k in 1..=TIMELINE_POINTS {
            let at = exp.starts_at + span * k as i32 / TIMELINE_POINTS as i32;
            let exposed: Vec<ExposedUser> =
                users.iter().filter(|u| u.first_at < at).cloned().collect();
            let (groups, multiple) = results::assign(&exp, &exposed);
            let analysed: Vec<&ExposedUser> =
                groups.iter().flatten().map(|&i| &exposed[i]).collect();
            let values = self
                .values(&exp.metrics.primary, cuped, &analysed, Some(at))
                .await?;
            let inputs = Inputs {
                users_per_variant: groups.iter().map(|g| g.len() as u64).collect(),
                multiple_exposures: multiple,
                goals: vec![
                    values.map(|v| results::statistics(&exp.metrics.primary, cuped, &groups, &v)),
                ],
                guardrails: Vec::new(),
            };
            let r = results::results(&primary_only, &inputs, at);
            if let Some(m) = r.metrics.into_iter().next() {
                timeline.points.push(TimelinePoint {
                    at,
                    variants: m.variants,
                });
            }
        }
        Ok(timeline)
    }
}
