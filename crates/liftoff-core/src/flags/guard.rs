//! Guarded rollouts: at every check, each guardrail compares the requests served the new value
//! (`on`) with the rest (`off`) using a one-sided sequential test on the absolute difference
//! (GrowthBook safe rollouts' method: valid however often it is read). A significant
//! regression rolls the flag back (or pauses the plan) within one check; a step advances only
//! once it saw enough requests and nothing regressed.
//!
//! The significance level is split across guardrails (Bonferroni): with two guardrails each is
//! tested at α/2, so adding guardrails does not add false rollbacks (GrowthBook leaves them
//! uncorrected).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::collections::{BTreeMap, HashSet};

use crate::experiments::stats::{self, Statistic};
use crate::monitoring::variants::VariantTraffic;
use crate::store::StoreError;

/// Request metrics per flag value, as guarded rollouts read them. Monitoring implements it.
#[async_trait::async_trait]
pub trait RequestsByValue: Send + Sync {
    /// Requests per value (`on`/`off`, or variant) of `flag` between `from` and `to`.
    async fn traffic(
        &self,
        flag: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BTreeMap<String, VariantTraffic>, StoreError>;
    /// Keeps requests per value for exactly these flags (the guarded plans').
    fn watch(&self, flags: HashSet<String>);
}

/// The values requests carry for a flag without variants (see
/// [`Evaluation::served_value`](liftoff_eval::Evaluation::served_value)).
pub use liftoff_eval::{OFF, ON};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailMetric {
    /// Share of 5xx answers.
    ErrorRate,
    /// 95th percentile latency.
    LatencyP95,
}

impl GuardrailMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::LatencyP95 => "latency_p95",
        }
    }

    fn statistic(self, t: &VariantTraffic) -> Statistic {
        match self {
            Self::ErrorRate => Statistic::Proportion {
                n: t.requests as f64,
                sum: t.failed as f64,
            },
            Self::LatencyP95 => stats::quantile_statistic(&t.latency, 0.95),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRegression {
    Pause,
    /// Back to 0 %.
    #[default]
    Rollback,
}

pub const DEFAULT_MIN_SAMPLES: u64 = 200;
pub const DEFAULT_CHECK_SECONDS: u32 = 60;
pub const DEFAULT_ALPHA: f64 = 0.05;
/// The total number of requests the sequential boundary is tightest at (gbstats' default);
/// the guarded-rollout simulation found it the most powerful of 200 to 50,000 at
/// 50–500 requests a second without raising false rollbacks.
pub const DEFAULT_TUNING: f64 = 5000.0;

fn default_min_samples() -> u64 {
    DEFAULT_MIN_SAMPLES
}
fn default_check_seconds() -> u32 {
    DEFAULT_CHECK_SECONDS
}
fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}
fn default_tuning() -> f64 {
    DEFAULT_TUNING
}

/// How a rollout plan guards itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Guarding {
    pub guardrails: Vec<GuardrailMetric>,
    #[serde(default)]
    pub on_regression: OnRegression,
    /// Requests served the new value during a step before the next step may come.
    #[serde(default = "default_min_samples")]
    pub min_samples_per_step: u64,
    #[serde(default = "default_check_seconds")]
    pub check_interval_seconds: u32,
    /// Split across the guardrails.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_tuning")]
    pub sequential_tuning: f64,
}

impl Guarding {
    pub fn new(guardrails: Vec<GuardrailMetric>) -> Self {
        Self {
            guardrails,
            on_regression: OnRegression::default(),
            min_samples_per_step: DEFAULT_MIN_SAMPLES,
            check_interval_seconds: DEFAULT_CHECK_SECONDS,
            alpha: DEFAULT_ALPHA,
            sequential_tuning: DEFAULT_TUNING,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.guardrails.is_empty() {
            return Err("guardrails: name at least one (error_rate, latency_p95)".into());
        }
        if !(1..=86_400).contains(&self.check_interval_seconds) {
            return Err("check_interval_seconds must be 1 to 86400".into());
        }
        if self.min_samples_per_step > 10_000_000 {
            return Err("min_samples_per_step must be at most 10000000".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err("alpha must be strictly between 0 and 0.5".into());
        }
        if !(self.sequential_tuning.is_finite() && self.sequential_tuning >= 1.0) {
            return Err("sequential_tuning must be at least 1".into());
        }
        Ok(())
    }
}

/// One guardrail at one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardrailReading {
    pub metric: GuardrailMetric,
    /// Requests served the new value, and the rest.
    pub treatment_requests: u64,
    pub control_requests: u64,
    /// Error rate (a fraction) or p95 latency (ms) of each side.
    pub treatment_value: f64,
    pub control_value: f64,
    /// Treatment − control.
    pub difference: f64,
    /// The confidence sequence's lower bound of the difference: above 0 is a regression.
    /// Absent until both sides have requests with some variance.
    pub bound: Option<f64>,
    pub regressed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Enough requests and nothing regressed: the next step may come.
    Healthy,
    /// Nothing regressed yet, but too few requests this step to move on.
    TooFewSamples,
    /// No request was labelled with this flag's value: hold (the app does not report it).
    NoTraffic,
    Regressed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardCheck {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub readings: Vec<GuardrailReading>,
    /// Requests served the new value during the current step.
    pub step_samples: u64,
}

impl GuardCheck {
    /// A sentence with the evidence, for the audit entry and the alert.
    pub fn evidence(&self) -> String {
        self.readings
            .iter()
            .filter(|r| r.regressed || self.verdict != Verdict::Regressed)
            .map(|r| {
                let (t, c) = match r.metric {
                    GuardrailMetric::ErrorRate => (
                        format!("{:.2} %", r.treatment_value * 100.0),
                        format!("{:.2} %", r.control_value * 100.0),
                    ),
                    GuardrailMetric::LatencyP95 => (
                        format!("{:.0} ms", r.treatment_value),
                        format!("{:.0} ms", r.control_value),
                    ),
                };
                format!(
                    "{} {t} on {} requests vs {c} on {}{}",
                    r.metric.as_str(),
                    r.treatment_requests,
                    r.control_requests,
                    r.bound
                        .map(|b| format!(" (difference at least {b:.4})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Judges one check: `total` is the traffic since the plan started (the test), `step_on` the
/// requests served the new value during the current step (the sample gate).
pub fn judge(
    guard: &Guarding,
    off: &VariantTraffic,
    on: &VariantTraffic,
    step_on: u64,
    at: DateTime<Utc>,
) -> GuardCheck {
    let alpha = guard.alpha / guard.guardrails.len().max(1) as f64;
    let readings: Vec<GuardrailReading> = guard
        .guardrails
        .iter()
        .map(|&metric| {
            let (c, t) = (metric.statistic(off), metric.statistic(on));
            let check = stats::guardrail_regression(&c, &t, alpha, guard.sequential_tuning, false);
            GuardrailReading {
                metric,
                treatment_requests: on.requests,
                control_requests: off.requests,
                treatment_value: t.mean(),
                control_value: c.mean(),
                difference: t.mean() - c.mean(),
                bound: check.bound.is_finite().then_some(check.bound),
                regressed: check.regressed,
            }
        })
        .collect();
    let verdict = if readings.iter().any(|r| r.regressed) {
        Verdict::Regressed
    } else if on.requests == 0 {
        Verdict::NoTraffic
    } else if step_on < guard.min_samples_per_step {
        Verdict::TooFewSamples
    } else {
        Verdict::Healthy
    };
    GuardCheck {
        at,
        verdict,
        readings,
        step_samples: step_on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// One simulated step: `rps` requests a second, `share` of them served the new value,
    /// errors at `base` for the rest and `treated` for the new value, checked every minute for
    /// `minutes` with the real decision code. The minute of the first rollback, if any.
    pub(crate) fn simulate(
        rng: &mut StdRng,
        rps: u32,
        share: f64,
        (base, treated): (f64, f64),
        minutes: u32,
    ) -> Option<u32> {
        let guard = Guarding::new(vec![GuardrailMetric::ErrorRate]);
        let (mut on, mut off) = (VariantTraffic::default(), VariantTraffic::default());
        for minute in 1..=minutes {
            let n = u64::from(rps) * 60;
            let treated_n = split(rng, n, share);
            on.requests += treated_n;
            on.failed += binomial(rng, treated_n, treated);
            off.requests += n - treated_n;
            off.failed += binomial(rng, n - treated_n, base);
            let check = judge(&guard, &off, &on, on.requests, DateTime::<Utc>::UNIX_EPOCH);
            if check.verdict == Verdict::Regressed {
                return Some(minute);
            }
        }
        None
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut StdRng) -> f64 {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// How many of `n` requests went to a share `p` (n·p in the thousands: the normal limit of
    /// the binomial is exact to far below a request).
    fn split(rng: &mut StdRng, n: u64, p: f64) -> u64 {
        let (n, mean) = (n as f64, n as f64 * p);
        (mean + normal(rng) * (mean * (1.0 - p)).sqrt())
            .round()
            .clamp(0.0, n) as u64
    }

    /// An exact binomial draw by inversion (n·p is at most a few hundred here).
    fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
        let u: f64 = rng.random();
        let mut prob = (1.0 - p).powf(n as f64);
        let (mut cdf, mut x) = (prob, 0u64);
        while u > cdf && x < n {
            prob *= (n - x) as f64 / (x + 1) as f64 * p / (1.0 - p);
            x += 1;
            cdf += prob;
        }
        x
    }

    /// (runs rolled back, median minute of rollback).
    fn rollbacks(
        seed: u64,
        runs: usize,
        rps: u32,
        rates: (f64, f64),
        minutes: u32,
    ) -> (usize, u32) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut at: Vec<u32> = (0..runs)
            .filter_map(|_| simulate(&mut rng, rps, 0.10, rates, minutes))
            .collect();
        at.sort_unstable();
        (at.len(), at.get(at.len() / 2).copied().unwrap_or(0))
    }

    /// How long a doubled error rate takes to catch at 50 requests a second in all
    /// (BENCHMARKS.md): the minute by which 50 % and 99 % of 1,000 runs rolled back.
    #[test]
    #[ignore = "a measurement for BENCHMARKS.md, not a check"]
    fn detection_time_at_fifty_requests_a_second() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut at: Vec<u32> = (0..1000)
            .map(|_| simulate(&mut rng, 50, 0.10, (0.01, 0.02), 60).unwrap_or(u32::MAX))
            .collect();
        at.sort_unstable();
        eprintln!(
            "50 req/s: median minute {}, 99th percentile minute {}",
            at[499], at[989]
        );
    }

    /// A 10 % step whose variant fails twice as often as the 1 % baseline, 1,000 seeded runs
    /// each. With 50 requests a second served the variant (500 in all) it is rolled back
    /// within 5 minutes in at least 99 % of runs; 1,000 healthy 30-minute steps give under
    /// 1 % false rollbacks. At 50 requests a second in all (5 on the variant) five minutes
    /// hold about 30 failures against 15 expected: no test with under 1 % false alarms
    /// reaches 99 % there (even a single look with the baseline known has about 84 %), so
    /// that rate is printed, not asserted (BENCHMARKS.md reports both).
    #[test]
    fn a_doubled_error_rate_is_rolled_back_and_healthy_steps_are_not() {
        let (caught, median) = rollbacks(1, 1000, 500, (0.01, 0.02), 5);
        let (false_alarms, _) = rollbacks(2, 1000, 500, (0.01, 0.01), 30);
        let (slow_caught, slow_median) = rollbacks(3, 1000, 50, (0.01, 0.02), 5);
        let (slow_false, _) = rollbacks(4, 1000, 50, (0.01, 0.01), 30);
        eprintln!(
            "500 req/s: {caught}/1000 rolled back within 5 min (median minute {median}), {false_alarms}/1000 false over 30 min; \
             50 req/s: {slow_caught}/1000 within 5 min (median minute {slow_median}), {slow_false}/1000 false over 30 min"
        );
        assert!(caught >= 990, "rolled back only {caught} of 1000");
        assert!(false_alarms < 10, "{false_alarms} false rollbacks of 1000");
        assert!(
            slow_false < 10,
            "{slow_false} false rollbacks of 1000 at 50 req/s"
        );
    }
}
