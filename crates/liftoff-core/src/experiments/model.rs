//! An experiment as people define it: a flag with variants, a control, metrics and how to
//! analyse them. Validated here, once, into typed values; the service and the stores only
//! ever see valid experiments.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stats::Method;
use crate::flags::{Environment, Flag, FlagVariant};

/// What a metric measures per exposed user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Share of users with at least one `event` within the window after their first exposure.
    Conversion,
    /// Mean per user of the sum of `property` over the user's `event`s in the window.
    Mean,
    /// Mean per user of the number of `event`s in the window.
    Count,
    /// Sum of `event` (or its `property`) over the sum of `denominator_event` across users.
    Ratio,
    /// Share of failed requests of the variant (5xx), from monitoring; lower is better.
    ErrorRate,
    /// 95th percentile latency of the variant's requests, from monitoring; lower is better.
    LatencyP95,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversion => "conversion",
            Self::Mean => "mean",
            Self::Count => "count",
            Self::Ratio => "ratio",
            Self::ErrorRate => "error_rate",
            Self::LatencyP95 => "latency_p95",
        }
    }

    /// Read from request metrics rather than product events.
    pub fn from_monitoring(self) -> bool {
        matches!(self, Self::ErrorRate | Self::LatencyP95)
    }
}

pub const DEFAULT_WINDOW_HOURS: u32 = 72;
const MAX_WINDOW_HOURS: u32 = 24 * 90;
const MAX_METRICS: usize = 20;

fn default_window() -> u32 {
    DEFAULT_WINDOW_HOURS
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExperimentMetric)]
pub struct Metric {
    pub kind: MetricKind,
    /// The product event counted (required for event metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub event: Option<String>,
    /// A numeric property of `event` summed per user (`mean`, optional for `ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub property: Option<String>,
    /// The denominator's event (`ratio` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub denominator_event: Option<String>,
    /// Events count when they follow the user's first exposure by at most this much (from one
    /// second before it: timestamps corrected per capture batch can swap by milliseconds).
    #[serde(default = "default_window")]
    #[schema(minimum = 1, maximum = 2160, default = 72)]
    pub window_hours: u32,
    /// [default true; false for `error_rate` and `latency_p95`]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
}

impl Metric {
    pub fn higher_is_better(&self) -> bool {
        self.higher_is_better
            .unwrap_or(!self.kind.from_monitoring())
    }

    /// A short stable name: `conversion:signup`, `mean:checkout.amount`, `error_rate`.
    pub fn label(&self) -> String {
        let mut s = self.kind.as_str().to_owned();
        if let Some(e) = &self.event {
            s.push(':');
            s.push_str(e);
        }
        if let Some(p) = &self.property {
            s.push('.');
            s.push_str(p);
        }
        if let Some(d) = &self.denominator_event {
            s.push('/');
            s.push_str(d);
        }
        s
    }

    fn validate(&self, role: &str) -> Result<(), String> {
        let name_ok = |s: &Option<String>| {
            s.as_ref()
                .is_none_or(|s| (1..=200).contains(&s.chars().count()) && !s.trim().is_empty())
        };
        if !name_ok(&self.event) || !name_ok(&self.property) || !name_ok(&self.denominator_event) {
            return Err(format!(
                "{role}: `event`, `property` and `denominator_event` are 1 to 200 characters"
            ));
        }
        if !(1..=MAX_WINDOW_HOURS).contains(&self.window_hours) {
            return Err(format!(
                "{role}: window_hours must be 1 to {MAX_WINDOW_HOURS}"
            ));
        }
        let kind = self.kind.as_str();
        match self.kind {
            MetricKind::ErrorRate | MetricKind::LatencyP95
                if self.event.is_some()
                    || self.property.is_some()
                    || self.denominator_event.is_some() =>
            {
                return Err(format!(
                    "{role}: `{kind}` is read from request metrics; it takes no event, property or denominator"
                ));
            }
            MetricKind::ErrorRate | MetricKind::LatencyP95 => {}
            _ if self.event.is_none() => {
                return Err(format!("{role}: a `{kind}` metric needs `event`"));
            }
            MetricKind::Mean if self.property.is_none() => {
                return Err(format!(
                    "{role}: a `mean` metric needs `property` (the number averaged per user)"
                ));
            }
            MetricKind::Ratio if self.denominator_event.is_none() => {
                return Err(format!(
                    "{role}: a `ratio` metric needs `denominator_event`"
                ));
            }
            MetricKind::Conversion | MetricKind::Count
                if self.property.is_some() || self.denominator_event.is_some() =>
            {
                return Err(format!(
                    "{role}: a `{kind}` metric takes no `property` or `denominator_event`"
                ));
            }
            MetricKind::Mean if self.denominator_event.is_some() => {
                return Err(format!(
                    "{role}: a `mean` metric takes no `denominator_event`"
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// The goal metric the decision is made on.
    pub primary: Metric,
    #[serde(default)]
    pub secondary: Vec<Metric>,
    /// Metrics that must not get worse; a significant regression recommends a rollback.
    #[serde(default)]
    pub guardrails: Vec<Metric>,
}

impl Metrics {
    /// Goal metrics: the primary first, then the secondary ones.
    pub fn goals(&self) -> impl Iterator<Item = &Metric> {
        std::iter::once(&self.primary).chain(&self.secondary)
    }

    fn validate(&self) -> Result<(), String> {
        if self.secondary.len() + self.guardrails.len() + 1 > MAX_METRICS {
            return Err(format!("at most {MAX_METRICS} metrics per experiment"));
        }
        self.primary.validate("metrics.primary")?;
        for (i, m) in self.secondary.iter().enumerate() {
            m.validate(&format!("metrics.secondary[{i}]"))?;
        }
        for (i, m) in self.guardrails.iter().enumerate() {
            m.validate(&format!("metrics.guardrails[{i}]"))?;
        }
        Ok(())
    }
}

fn default_alpha() -> f64 {
    0.05
}
fn default_tuning() -> f64 {
    5000.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSettings {
    #[serde(default)]
    pub method: Method,
    /// Frequentist only: confidence sequences that stay valid however often results are read.
    #[serde(default)]
    pub sequential: bool,
    /// With `sequential`: once `ends_at` has passed, analyse as a fixed-horizon test
    /// (Eppo's hybrid: peek safely while running, full power at the planned end).
    #[serde(default)]
    pub fixed_at_end: bool,
    /// Significance level, strictly between 0 and 1. [default 0.05]
    #[serde(default = "default_alpha")]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1, default = 0.05)]
    pub alpha: f64,
    /// The expected sample size the sequential boundary is tuned for. [default 5000]
    #[serde(default = "default_tuning")]
    #[schema(minimum = 1, default = 5000)]
    pub sequential_tuning: f64,
    /// Variance reduction with each user's same metric over the 14 days before exposure.
    #[serde(default)]
    pub cuped: bool,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            method: Method::default(),
            sequential: false,
            fixed_at_end: false,
            alpha: default_alpha(),
            sequential_tuning: default_tuning(),
            cuped: false,
        }
    }
}

/// The significance level and the sequential tuning, as every analysis takes them.
pub fn check_alpha_and_tuning(alpha: f64, sequential_tuning: f64) -> Result<(), String> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err("analysis.alpha must be strictly between 0 and 1 (e.g. 0.05)".into());
    }
    if !(sequential_tuning.is_finite() && sequential_tuning >= 1.0) {
        return Err("analysis.sequential_tuning must be a number of users, at least 1".into());
    }
    Ok(())
}

impl AnalysisSettings {
    fn validate(&self) -> Result<(), String> {
        check_alpha_and_tuning(self.alpha, self.sequential_tuning)?;
        if self.sequential && self.method != Method::Frequentist {
            return Err(
                "analysis.sequential applies to the frequentist method; set method to `frequentist`"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Defined, before `starts_at`.
    Scheduled,
    /// Collecting exposures.
    Running,
    /// Stopped by a person (or past `ends_at` and stopped); results stay readable.
    Stopped,
}

/// A variant as the experiment analyses it, with its share of traffic when it started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExperimentVariant {
    pub name: String,
    /// Share of traffic in percent (the flag's weights); the SRM check compares against it.
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stopped {
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
    /// The variant given to everyone when it stopped, if one was shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_variant: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Experiment {
    pub key: String,
    pub flag_id: String,
    pub name: String,
    pub hypothesis: String,
    /// The environment whose evaluations count as exposures.
    pub environment: Environment,
    pub control: String,
    pub variants: Vec<ExperimentVariant>,
    pub metrics: Metrics,
    pub analysis: AnalysisSettings,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Experiment {
    pub fn status(&self, now: DateTime<Utc>) -> ExperimentStatus {
        if self.stopped.is_some() {
            ExperimentStatus::Stopped
        } else if now < self.starts_at {
            ExperimentStatus::Scheduled
        } else {
            ExperimentStatus::Running
        }
    }

    /// Whether an exposure at `at` counts: after the start, before the end and the stop.
    pub fn collects_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.starts_at
            && self.ends_at.is_none_or(|end| at < end)
            && self.stopped.as_ref().is_none_or(|s| at < s.at)
    }

    pub fn weights(&self) -> Vec<f64> {
        self.variants.iter().map(|v| v.weight).collect()
    }
}

/// `POST /api/experiments`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    /// 1–100 characters: letters, digits, `-`, `_`, `.`.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]{1,100}$")]
    pub key: String,
    /// A flag with at least two variants.
    pub flag_id: String,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub hypothesis: Option<String>,
    /// [default the first variant]
    pub control: Option<String>,
    /// [default production]
    pub environment: Option<Environment>,
    /// Traffic split in percent per variant, summing to 100: set on the flag (an audited
    /// change) before the experiment starts. [default the flag's weights]
    pub weights: Option<BTreeMap<String, f64>>,
    pub metrics: Metrics,
    #[serde(default)]
    pub analysis: AnalysisSettings,
    /// [default now]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// `PATCH /api/experiments/{key}`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentPatch {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub hypothesis: Option<String>,
    pub metrics: Option<Metrics>,
    pub analysis: Option<AnalysisSettings>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// `POST /api/experiments/{key}/stop`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopExperiment {
    /// Give this variant to everyone (the flag's variants then hold only it).
    pub ship_variant: Option<String>,
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

pub fn valid_key(key: &str) -> Result<(), String> {
    // `analyze` is the calculator's route.
    let ok = (1..=100).contains(&key.len())
        && key != "analyze"
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("key: use 1 to 100 letters, digits, `-`, `_` or `.` (`analyze` is reserved)".into())
    }
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<String, String> {
    let value = value.unwrap_or_default();
    if value.chars().count() > max {
        return Err(format!("{field} is at most {max} characters"));
    }
    Ok(value.trim().to_owned())
}

/// The variants of `flag` with their shares of traffic, in percent.
pub fn flag_variants(flag: &Flag) -> Result<Vec<ExperimentVariant>, String> {
    if flag.variants.len() < 2 {
        return Err(format!(
            "flag `{}` has {} variant(s); an experiment needs a flag with at least two variants",
            flag.flag_id,
            flag.variants.len()
        ));
    }
    let total: f64 = flag.variants.iter().map(|v| f64::from(v.weight)).sum();
    if total <= 0.0 {
        return Err(format!(
            "flag `{}`: the variants' weights must not all be 0",
            flag.flag_id
        ));
    }
    Ok(flag
        .variants
        .iter()
        .map(|v| ExperimentVariant {
            name: v.name.clone(),
            weight: f64::from(v.weight) * 100.0 / total,
        })
        .collect())
}

/// The flag's variants re-weighted to `weights` (percent per variant, every variant named,
/// summing to 100), as the flag stores them (thousandths).
pub fn weighted_variants(
    flag: &Flag,
    weights: &BTreeMap<String, f64>,
) -> Result<Vec<FlagVariant>, String> {
    flag_variants(flag)?;
    for name in weights.keys() {
        if !flag.variants.iter().any(|v| &v.name == name) {
            return Err(format!(
                "weights: `{name}` is not a variant of flag `{}`",
                flag.flag_id
            ));
        }
    }
    let mut total = 0.0;
    let mut out = Vec::with_capacity(flag.variants.len());
    for v in &flag.variants {
        let Some(&w) = weights.get(&v.name) else {
            return Err(format!(
                "weights: give every variant a share; `{}` has none",
                v.name
            ));
        };
        if !(w.is_finite() && (0.0..=100.0).contains(&w)) {
            return Err(format!("weights: `{}` must be 0 to 100 percent", v.name));
        }
        total += w;
        out.push(FlagVariant {
            weight: (w * 10.0).round() as u32,
            ..v.clone()
        });
    }
    if (total - 100.0).abs() > 0.01 {
        return Err(format!(
            "weights must sum to 100 (percent); they sum to {total}"
        ));
    }
    Ok(out)
}

impl NewExperiment {
    /// The experiment this request defines on `flag`, or what is wrong with it.
    pub fn into_experiment(
        self,
        flag: &Flag,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Experiment, String> {
        valid_key(&self.key)?;
        let variants = flag_variants(flag)?;
        let control = match self.control {
            Some(c) if variants.iter().any(|v| v.name == c) => c,
            Some(c) => {
                return Err(format!(
                    "control `{c}` is not a variant of flag `{}` (variants: {})",
                    flag.flag_id,
                    variants
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            None => variants[0].name.clone(),
        };
        self.metrics.validate()?;
        self.analysis.validate()?;
        let starts_at = self.starts_at.unwrap_or(now);
        if let Some(end) = self.ends_at
            && end <= starts_at
        {
            return Err("ends_at must be after starts_at".into());
        }
        let name = text("name", self.name, 200)?;
        Ok(Experiment {
            name: if name.is_empty() {
                self.key.clone()
            } else {
                name
            },
            hypothesis: text("hypothesis", self.hypothesis, 5000)?,
            key: self.key,
            flag_id: flag.flag_id.to_string(),
            environment: self.environment.unwrap_or(Environment::Production),
            control,
            variants,
            metrics: self.metrics,
            analysis: self.analysis,
            starts_at,
            ends_at: self.ends_at,
            stopped: None,
            created_by: by.to_owned(),
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

impl ExperimentPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.hypothesis.is_none()
            && self.metrics.is_none()
            && self.analysis.is_none()
            && self.ends_at.is_none()
    }

    /// `exp` with the patch applied, validated.
    pub fn apply(self, mut exp: Experiment, now: DateTime<Utc>) -> Result<Experiment, String> {
        if self.is_empty() {
            return Err("the patch changes nothing: send at least one field".into());
        }
        if let Some(name) = self.name {
            let name = text("name", Some(name), 200)?;
            exp.name = if name.is_empty() {
                exp.key.clone()
            } else {
                name
            };
        }
        if let Some(h) = self.hypothesis {
            exp.hypothesis = text("hypothesis", Some(h), 5000)?;
        }
        if let Some(m) = self.metrics {
            m.validate()?;
            exp.metrics = m;
        }
        if let Some(a) = self.analysis {
            a.validate()?;
            exp.analysis = a;
        }
        if let Some(end) = self.ends_at {
            if end <= exp.starts_at {
                return Err("ends_at must be after starts_at".into());
            }
            exp.ends_at = Some(end);
        }
        exp.updated_at = now;
        exp.version += 1;
        Ok(exp)
    }
}
