//! An experiment's results from its exposed users and what they did: per-variant statistics,
//! the comparisons against control, corrections across metrics, the sample-ratio check and
//! the decision. Pure: the service gathers the inputs, this decides.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Experiment, Metric, MetricKind};
use super::stats::{self, Analysis, Comparison, Method, Statistic};
use super::store::ExposedUser;

/// Below this many users in a variant a decision is not offered, whatever the statistics say.
pub const MIN_USERS_PER_VARIANT: u64 = 100;
/// Bayesian: ship a treatment whose chance to beat control passes this (and keep control when
/// every treatment's chance is below 1 − this).
pub const WIN_PROBABILITY: f64 = 0.95;

/// One exposed user's value of one metric, over the window after their first exposure (and
/// over the 14 days before it, for CUPED).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UserValue {
    pub value: f64,
    /// The ratio's denominator.
    pub denominator: f64,
    /// The same metric before exposure.
    pub pre: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Srm {
    pub p_value: f64,
    /// p < 0.001 with at least 8 users in every variant: the split is not what was configured,
    /// so assignment or exposure logging is broken and the results cannot be trusted.
    pub flagged: bool,
    /// Expected shares in percent, in variant order.
    pub expected: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VariantUsers {
    pub variant: String,
    pub users: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Uplift {
    pub relative: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VariantResult {
    pub variant: String,
    pub users: u64,
    /// Conversion rate (a fraction), mean per user, or the ratio.
    pub value: f64,
    /// Absent for the control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplift: Option<Uplift>,
    /// Frequentist, after Holm–Bonferroni across the corrected family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Frequentist, before the correction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value_raw: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_to_beat_control: Option<f64>,
    /// Bayesian expected loss of choosing [control, this variant], relative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<[f64; 2]>,
    /// Significantly better (`better`), worse (`worse`) or neither (`flat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    /// Why the comparison could not be made (too few users, no variance, control at zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MetricResult {
    /// The metric's label, e.g. `conversion:signup`.
    pub metric: String,
    pub kind: MetricKind,
    pub higher_is_better: bool,
    pub variants: Vec<VariantResult>,
    /// Why there are no numbers (a monitoring metric without labelled requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    KeepRunning,
    Ship,
    Rollback,
    Inconclusive,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Decision {
    pub status: DecisionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub why: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExperimentResults {
    pub experiment: String,
    pub computed_at: DateTime<Utc>,
    pub method: Method,
    pub sequential: bool,
    pub srm: Srm,
    /// Users exposed to more than one variant: left out of every metric.
    pub multiple_exposures: u64,
    pub variants: Vec<VariantUsers>,
    pub metrics: Vec<MetricResult>,
    pub guardrails: Vec<MetricResult>,
    pub decision: Decision,
}

/// The primary metric over the experiment's course: the cumulative uplift chart.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub experiment: String,
    /// The primary metric's label.
    pub metric: String,
    /// Oldest first.
    pub points: Vec<TimelinePoint>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TimelinePoint {
    /// Users exposed before this moment, with their events until it.
    pub at: DateTime<Utc>,
    pub variants: Vec<VariantResult>,
}

/// The analysed users: multiple-exposure users left out, variants outside the experiment
/// ignored. Returned per variant index, with the number left out.
pub fn assign(exp: &Experiment, users: &[ExposedUser]) -> (Vec<Vec<usize>>, u64) {
    let index: BTreeMap<&str, usize> = exp
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let mut groups = vec![Vec::new(); exp.variants.len()];
    let mut multiple = 0;
    for (row, u) in users.iter().enumerate() {
        if u.multiple {
            multiple += 1;
        } else if let Some(&i) = index.get(u.variant.as_str()) {
            groups[i].push(row);
        }
    }
    (groups, multiple)
}

fn moments(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    values.fold((0.0, 0.0, 0.0), |(n, s, ss), x| {
        (n + 1.0, s + x, ss + x * x)
    })
}

/// The sufficient statistic of one variant's users for one metric.
pub fn statistic(metric: &Metric, cuped: bool, values: &[UserValue]) -> Statistic {
    let (n, sum, ss) = moments(values.iter().map(|v| v.value));
    let base = |sum: f64, ss: f64| match metric.kind {
        MetricKind::Conversion => Statistic::Proportion { n, sum },
        _ => Statistic::Mean {
            n,
            sum,
            sum_squares: ss,
        },
    };
    match metric.kind {
        MetricKind::Ratio => {
            let (_, d_sum, d_ss) = moments(values.iter().map(|v| v.denominator));
            Statistic::Ratio {
                n,
                numerator: Box::new(Statistic::Mean {
                    n,
                    sum,
                    sum_squares: ss,
                }),
                denominator: Box::new(Statistic::Mean {
                    n,
                    sum: d_sum,
                    sum_squares: d_ss,
                }),
                sum_of_products: values.iter().map(|v| v.value * v.denominator).sum(),
            }
        }
        _ if cuped => {
            let (_, p_sum, p_ss) = moments(values.iter().map(|v| v.pre));
            Statistic::Adjusted {
                n,
                post: Box::new(base(sum, ss)),
                pre: Box::new(base(p_sum, p_ss)),
                sum_of_products: values.iter().map(|v| v.value * v.pre).sum(),
            }
        }
        _ => base(sum, ss),
    }
}

/// Each variant's requests (variant order) as a statistic: the share that failed
/// (`error_rate`), or the 95th percentile latency with its order-statistic interval
/// (`latency_p95`). A variant without labelled requests counts as none.
pub fn request_statistics(
    exp: &Experiment,
    kind: MetricKind,
    traffic: &BTreeMap<String, crate::monitoring::variants::VariantTraffic>,
) -> Vec<Statistic> {
    let none = crate::monitoring::variants::VariantTraffic::default();
    exp.variants
        .iter()
        .map(|v| {
            let t = traffic.get(&v.name).unwrap_or(&none);
            match kind {
                MetricKind::LatencyP95 => stats::quantile_statistic(&t.latency, 0.95),
                _ => Statistic::Proportion {
                    n: t.requests as f64,
                    sum: t.failed as f64,
                },
            }
        })
        .collect()
}

/// Per-variant statistics of one metric from every analysed user's value, `values` holding
/// the users of `groups` one group after the other.
pub fn statistics(
    metric: &Metric,
    cuped: bool,
    groups: &[Vec<usize>],
    values: &[UserValue],
) -> Vec<Statistic> {
    let mut offset = 0;
    groups
        .iter()
        .map(|g| {
            let part = &values[offset..offset + g.len()];
            offset += g.len();
            statistic(metric, cuped, part)
        })
        .collect()
}

/// Per-variant statistics of one metric (variant order), from every analysed user's value.
pub type MetricInput = Option<Vec<Statistic>>;

fn verdict(
    c: &Comparison,
    p_adjusted: Option<f64>,
    alpha: f64,
    higher_is_better: bool,
) -> &'static str {
    let better_sign = if higher_is_better { 1.0 } else { -1.0 };
    let significant = match (p_adjusted, c.chance_to_beat_control) {
        (Some(p), _) => p < alpha,
        (None, Some(ctw)) => !(1.0 - WIN_PROBABILITY..=WIN_PROBABILITY).contains(&ctw),
        _ => false,
    };
    if c.error.is_some() || !significant {
        "flat"
    } else if c.relative * better_sign > 0.0 {
        "better"
    } else {
        "worse"
    }
}

/// One metric's rows (variant order) and the comparisons behind them (`None` for control).
type MetricRows<'a> = (&'a Metric, Vec<VariantResult>, Vec<Option<Comparison>>);

struct Family<'a> {
    metrics: Vec<MetricRows<'a>>,
}

/// Compares every treatment with control on each metric, then corrects the p-values across
/// the whole family (every metric × treatment) with Holm–Bonferroni.
fn analyse_family<'a>(
    exp: &Experiment,
    analysis: &Analysis,
    control: usize,
    metrics: impl Iterator<Item = (&'a Metric, &'a MetricInput)>,
) -> Family<'a> {
    let mut family = Family {
        metrics: Vec::new(),
    };
    for (metric, input) in metrics {
        let Some(stats) = input else {
            family.metrics.push((metric, Vec::new(), Vec::new()));
            continue;
        };
        let mut rows = Vec::new();
        let mut comparisons = Vec::new();
        for (i, v) in exp.variants.iter().enumerate() {
            let s = &stats[i];
            let mut row = VariantResult {
                variant: v.name.clone(),
                users: s.n() as u64,
                value: s.mean(),
                uplift: None,
                p_value: None,
                p_value_raw: None,
                chance_to_beat_control: None,
                risk: None,
                verdict: None,
                error: None,
            };
            if i == control {
                comparisons.push(None);
            } else {
                let c = stats::compare(&stats[control], s, analysis, !metric.higher_is_better());
                row.uplift = Some(Uplift {
                    relative: c.relative,
                    ci_low: c.ci_low,
                    ci_high: c.ci_high,
                });
                row.p_value_raw = c.p_value;
                row.chance_to_beat_control = c.chance_to_beat_control;
                row.risk = c.risk;
                row.error.clone_from(&c.error);
                comparisons.push(Some(c));
            }
            rows.push(row);
        }
        family.metrics.push((metric, rows, comparisons));
    }
    // Holm across the family, frequentist only (Bayesian answers are not p-values).
    let mut raw = Vec::new();
    for (m, (_, _, comps)) in family.metrics.iter().enumerate() {
        for (v, c) in comps.iter().enumerate() {
            if let Some(p) = c.as_ref().and_then(|c| c.p_value) {
                raw.push((m, v, p));
            }
        }
    }
    let adjusted = stats::holm_bonferroni(&raw.iter().map(|r| r.2).collect::<Vec<_>>());
    for ((m, v, _), p) in raw.into_iter().zip(adjusted) {
        family.metrics[m].1[v].p_value = Some(p);
    }
    for (metric, rows, comps) in &mut family.metrics {
        for (row, c) in rows.iter_mut().zip(comps.iter()) {
            if let Some(c) = c {
                row.verdict = Some(verdict(
                    c,
                    row.p_value,
                    analysis.alpha,
                    metric.higher_is_better(),
                ));
            }
        }
    }
    family
}

fn into_results(
    family: Family<'_>,
    unavailable: &dyn Fn(&Metric) -> Option<String>,
) -> Vec<MetricResult> {
    family
        .metrics
        .into_iter()
        .map(|(m, variants, _)| MetricResult {
            metric: m.label(),
            kind: m.kind,
            higher_is_better: m.higher_is_better(),
            unavailable: if variants.is_empty() {
                unavailable(m)
            } else {
                None
            },
            variants,
        })
        .collect()
}

/// The analysis to run now: sequential while running, fixed once the planned end passed when
/// `fixed_at_end` is set.
pub fn effective_analysis(exp: &Experiment, now: DateTime<Utc>) -> Analysis {
    let a = &exp.analysis;
    let ended = exp.ends_at.is_some_and(|end| now >= end);
    Analysis {
        method: a.method,
        sequential: a.sequential && !(a.fixed_at_end && ended),
        alpha: a.alpha,
        sequential_tuning: a.sequential_tuning,
    }
}

/// Everything the results need, gathered by the service.
pub struct Inputs {
    pub users_per_variant: Vec<u64>,
    pub multiple_exposures: u64,
    /// One per goal metric (primary first, then secondary), in order.
    pub goals: Vec<MetricInput>,
    /// One per guardrail, in order.
    pub guardrails: Vec<MetricInput>,
}

pub fn results(exp: &Experiment, inputs: &Inputs, now: DateTime<Utc>) -> ExperimentResults {
    let analysis = effective_analysis(exp, now);
    let control = exp
        .variants
        .iter()
        .position(|v| v.name == exp.control)
        .unwrap_or(0);
    let users: Vec<f64> = inputs.users_per_variant.iter().map(|&u| u as f64).collect();
    let srm_p = stats::srm_p_value(&users, &exp.weights());
    let srm = Srm {
        p_value: srm_p,
        flagged: stats::srm_flagged(srm_p, &users),
        expected: exp.weights(),
    };
    let unavailable = |m: &Metric| {
        Some(format!(
            "no requests labelled with variants of flag `{}` yet: `{}` needs the SDK request layer or OpenTelemetry `feature_flag.*` attributes",
            exp.flag_id,
            m.kind.as_str()
        ))
    };
    let goals = analyse_family(
        exp,
        &analysis,
        control,
        exp.metrics.goals().zip(&inputs.goals),
    );
    let guardrails = analyse_family(
        exp,
        &analysis,
        control,
        exp.metrics.guardrails.iter().zip(&inputs.guardrails),
    );
    let metrics = into_results(goals, &unavailable);
    let guardrails = into_results(guardrails, &unavailable);
    let decision = decide(
        exp,
        &analysis,
        &srm,
        &inputs.users_per_variant,
        &metrics,
        &guardrails,
        control,
        now,
    );
    ExperimentResults {
        experiment: exp.key.clone(),
        computed_at: now,
        method: analysis.method,
        sequential: analysis.sequential,
        srm,
        multiple_exposures: inputs.multiple_exposures,
        variants: exp
            .variants
            .iter()
            .zip(&inputs.users_per_variant)
            .map(|(v, &users)| VariantUsers {
                variant: v.name.clone(),
                users,
            })
            .collect(),
        metrics,
        guardrails,
        decision,
    }
}

fn pct(x: f64) -> String {
    format!("{:+.1} %", x * 100.0)
}

#[allow(clippy::too_many_arguments)]
fn decide(
    exp: &Experiment,
    analysis: &Analysis,
    srm: &Srm,
    users: &[u64],
    metrics: &[MetricResult],
    guardrails: &[MetricResult],
    control: usize,
    now: DateTime<Utc>,
) -> Decision {
    let decision = |status, variant: Option<&str>, why: String| Decision {
        status,
        variant: variant.map(str::to_owned),
        why,
    };
    if srm.flagged {
        return decision(
            DecisionStatus::Inconclusive,
            None,
            format!(
                "sample ratio mismatch (p = {:.2e}): users split {} against the configured {}; fix assignment or exposure logging before trusting any number",
                srm.p_value,
                users
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" / "),
                srm.expected
                    .iter()
                    .map(|w| format!("{w:.0} %"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
        );
    }
    // A guardrail that got significantly worse in a treatment: roll back to control.
    for g in guardrails {
        if let Some(v) = g.variants.iter().find(|v| v.verdict == Some("worse")) {
            let u = v.uplift.as_ref().map_or(0.0, |u| u.relative);
            return decision(
                DecisionStatus::Rollback,
                Some(&exp.control),
                format!(
                    "guardrail {} regressed in `{}` ({} against control{}); roll back to `{}`",
                    g.metric,
                    v.variant,
                    pct(u),
                    v.p_value
                        .map(|p| format!(", p = {p:.4}"))
                        .unwrap_or_default(),
                    exp.control
                ),
            );
        }
    }
    if let Some((i, &n)) = users
        .iter()
        .enumerate()
        .find(|(_, n)| **n < MIN_USERS_PER_VARIANT)
    {
        return decision(
            DecisionStatus::KeepRunning,
            None,
            format!(
                "`{}` has {n} users; wait for at least {MIN_USERS_PER_VARIANT} in every variant",
                exp.variants[i].name
            ),
        );
    }
    let primary = &metrics[0];
    if primary.variants.is_empty() {
        return decision(
            DecisionStatus::KeepRunning,
            None,
            format!("the primary metric {} has no data yet", primary.metric),
        );
    }
    let score = |v: &VariantResult| {
        let u = v.uplift.as_ref().map_or(0.0, |u| u.relative);
        if primary.higher_is_better { u } else { -u }
    };
    let winner = primary
        .variants
        .iter()
        .filter(|v| v.verdict == Some("better"))
        .max_by(|a, b| score(a).total_cmp(&score(b)));
    let how = |v: &VariantResult| match analysis.method {
        Method::Frequentist => format!("p = {:.4}", v.p_value.unwrap_or(1.0)),
        Method::Bayesian => format!(
            "chance to beat control {:.1} %",
            v.chance_to_beat_control.unwrap_or(0.5) * 100.0
        ),
    };
    if let Some(w) = winner {
        return decision(
            DecisionStatus::Ship,
            Some(&w.variant),
            format!(
                "`{}` beats `{}` on {}: {} ({}{})",
                w.variant,
                exp.control,
                primary.metric,
                pct(w.uplift.as_ref().map_or(0.0, |u| u.relative)),
                how(w),
                if analysis.method == Method::Frequentist {
                    ", Holm-adjusted across goal metrics"
                } else {
                    ""
                }
            ),
        );
    }
    let treatments: Vec<&VariantResult> = primary
        .variants
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != control)
        .map(|(_, v)| v)
        .collect();
    if !treatments.is_empty() && treatments.iter().all(|v| v.verdict == Some("worse")) {
        return decision(
            DecisionStatus::Ship,
            Some(&exp.control),
            format!(
                "every treatment is worse than `{}` on {}; keep `{}`",
                exp.control, primary.metric, exp.control
            ),
        );
    }
    if exp.ends_at.is_some_and(|end| now >= end) || exp.stopped.is_some() {
        return decision(
            DecisionStatus::Inconclusive,
            None,
            format!(
                "no variant differs significantly from `{}` on {} and the experiment has ended",
                exp.control, primary.metric
            ),
        );
    }
    decision(
        DecisionStatus::KeepRunning,
        None,
        format!(
            "no variant differs significantly from `{}` on {} yet",
            exp.control, primary.metric
        ),
    )
}

/// `POST /api/experiments/analyze`: the engine on counts a team already has (from a
/// warehouse, another tool, a notebook), the first variant being control.
#[derive(Clone, Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calculation {
    #[serde(default)]
    pub analysis: Analysis,
    #[serde(default)]
    pub lower_is_better: bool,
    /// Configured shares of traffic, one per variant [default equal].
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    /// Control first; 2 to 20 variants of the same statistic kind.
    #[schema(min_items = 2, max_items = 20)]
    pub variants: Vec<Statistic>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CalculationResult {
    pub srm: Srm,
    /// One per treatment (variants after the first), in order.
    pub comparisons: Vec<Comparison>,
    /// Frequentist p-values after Holm–Bonferroni across the treatments (empty for Bayesian).
    pub holm_p_values: Vec<f64>,
}

fn valid_statistic(s: &Statistic, nested: bool) -> Result<(), String> {
    let ok = |x: f64| x.is_finite();
    match s {
        Statistic::Proportion { n, sum } => {
            if !(ok(*n) && *n >= 0.0 && ok(*sum) && *sum >= 0.0 && sum <= n) {
                return Err("a proportion needs 0 <= sum <= n".into());
            }
        }
        Statistic::Mean {
            n,
            sum,
            sum_squares,
        } => {
            if !(ok(*n) && *n >= 0.0 && ok(*sum) && ok(*sum_squares) && *sum_squares >= 0.0) {
                return Err("a mean needs n >= 0 and finite sums (sum_squares >= 0)".into());
            }
        }
        Statistic::Quantile {
            n,
            quantile,
            lower,
            upper,
        } => {
            if !(ok(*n) && *n >= 0.0 && ok(*quantile) && ok(*lower) && ok(*upper) && lower <= upper)
            {
                return Err("a quantile needs n >= 0 and lower <= upper".into());
            }
            if nested {
                return Err(
                    "ratio and adjusted statistics take proportions or means inside".into(),
                );
            }
        }
        Statistic::Ratio {
            n,
            numerator: a,
            denominator: b,
            sum_of_products: p,
        }
        | Statistic::Adjusted {
            n,
            post: a,
            pre: b,
            sum_of_products: p,
        } => {
            if nested {
                return Err(
                    "ratio and adjusted statistics take proportions or means inside".into(),
                );
            }
            if !(ok(*n) && *n >= 0.0 && ok(*p)) {
                return Err("n must be >= 0 and sum_of_products finite".into());
            }
            valid_statistic(a, true)?;
            valid_statistic(b, true)?;
        }
    }
    Ok(())
}

impl Calculation {
    pub fn run(&self) -> Result<CalculationResult, String> {
        let a = &self.analysis;
        super::model::check_alpha_and_tuning(a.alpha, a.sequential_tuning)?;
        if !(2..=20).contains(&self.variants.len()) {
            return Err("variants: send 2 to 20 statistics, control first".into());
        }
        for (i, s) in self.variants.iter().enumerate() {
            valid_statistic(s, false).map_err(|e| format!("variants[{i}]: {e}"))?;
            if std::mem::discriminant(s) != std::mem::discriminant(&self.variants[0]) {
                return Err(format!(
                    "variants[{i}]: every variant must be the same kind of statistic"
                ));
            }
        }
        let weights = match &self.weights {
            Some(w) if w.len() != self.variants.len() => {
                return Err("weights: one per variant".into());
            }
            Some(w)
                if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0 =>
            {
                return Err("weights must be non-negative and not all 0".into());
            }
            Some(w) => w.clone(),
            None => vec![1.0; self.variants.len()],
        };
        let users: Vec<f64> = self.variants.iter().map(Statistic::n).collect();
        let p = stats::srm_p_value(&users, &weights);
        let comparisons: Vec<Comparison> = self.variants[1..]
            .iter()
            .map(|t| stats::compare(&self.variants[0], t, a, self.lower_is_better))
            .collect();
        let raw: Vec<f64> = comparisons.iter().filter_map(|c| c.p_value).collect();
        Ok(CalculationResult {
            srm: Srm {
                p_value: p,
                flagged: stats::srm_flagged(p, &users),
                expected: {
                    let total: f64 = weights.iter().sum();
                    weights.iter().map(|w| w * 100.0 / total).collect()
                },
            },
            holm_p_values: if raw.len() == comparisons.len() {
                stats::holm_bonferroni(&raw)
            } else {
                Vec::new()
            },
            comparisons,
        })
    }
}
