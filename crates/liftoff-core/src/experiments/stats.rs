//! The statistics engine behind experiment results: per-variant sufficient statistics in,
//! relative uplift, intervals, p-values or chance to win out, plus sample-ratio-mismatch checks,
//! Holm–Bonferroni correction and the one-sided sequential test guarded rollouts stop on.
//!
//! Numbers match GrowthBook's `gbstats` 0.8.0 (to 1e-4 and better) so results read the same as
//! in the tool most teams compare us with, and so its published test values check ours. Where
//! gbstats raises (mixed statistic kinds, nested composites) we answer with an error message
//! instead: a results page must never crash on odd data.
//!
//! Pure: no I/O, no clock. The service aggregates exposures and metric values into
//! [`Statistic`]s; this decides what they say.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};
use utoipa::ToSchema;

/// The control's mean is zero: a relative uplift has no baseline (gbstats' message).
pub const BASELINE_VARIATION_ZERO_MESSAGE: &str = "ZERO_NEGATIVE_BASELINE_VARIATION";
/// A variant has no spread (gbstats' message); also given for non-finite statistics.
pub const ZERO_NEGATIVE_VARIANCE_MESSAGE: &str = "ZERO_NEGATIVE_VARIANCE";
/// A variant has no units (gbstats' message, Bayesian only, as there).
pub const NO_UNITS_IN_VARIATION_MESSAGE: &str = "NO_UNITS_IN_VARIATION";
/// Control and treatment (or their CUPED parts) are different kinds of statistic.
pub const MISMATCHED_STATISTICS_MESSAGE: &str = "MISMATCHED_STATISTICS";
/// `alpha` outside (0, 1) or a non-positive sequential tuning.
pub const INVALID_ANALYSIS_MESSAGE: &str = "INVALID_ANALYSIS";

/// Per-variant sufficient statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Statistic {
    /// Conversions: `sum` of `n` units converted; variance `p(1 − p)`.
    Proportion { n: f64, sum: f64 },
    /// A per-unit value: its sum and sum of squares; sample variance with `n − 1`.
    Mean { n: f64, sum: f64, sum_squares: f64 },
    /// `Σ numerator / Σ denominator` over `n` units, variance by the delta method.
    /// `sum_of_products` is `Σ numeratorᵢ · denominatorᵢ`.
    Ratio {
        n: f64,
        #[schema(no_recursion)]
        numerator: Box<Statistic>,
        #[schema(no_recursion)]
        denominator: Box<Statistic>,
        sum_of_products: f64,
    },
    /// CUPED: the metric (`post`) adjusted by the same metric before exposure (`pre`).
    /// `sum_of_products` is `Σ postᵢ · preᵢ`. The adjustment factor is fitted on both arms
    /// of each comparison, so a lone statistic reports unadjusted figures.
    Adjusted {
        n: f64,
        #[schema(no_recursion)]
        post: Box<Statistic>,
        #[schema(no_recursion)]
        pre: Box<Statistic>,
        sum_of_products: f64,
    },
    /// A quantile of `n` observations (gbstats' `QuantileStatistic` with `n* = n`): the
    /// estimate and the 95 % order-statistic interval around it, from which the variance is
    /// `(n − 1)·((upper − lower) / (2·1.96))²`.
    Quantile {
        n: f64,
        quantile: f64,
        lower: f64,
        upper: f64,
    },
}

impl Statistic {
    /// Units (users) the statistic covers.
    pub fn n(&self) -> f64 {
        match self {
            Self::Proportion { n, .. }
            | Self::Mean { n, .. }
            | Self::Ratio { n, .. }
            | Self::Adjusted { n, .. }
            | Self::Quantile { n, .. } => *n,
        }
    }

    /// The mean before any CUPED adjustment.
    pub fn mean(&self) -> f64 {
        match self {
            Self::Proportion { n, sum } | Self::Mean { n, sum, .. } => {
                if *n == 0.0 {
                    0.0
                } else {
                    sum / n
                }
            }
            Self::Ratio {
                numerator,
                denominator,
                ..
            } => {
                let d = denominator.sum();
                if d == 0.0 { 0.0 } else { numerator.sum() / d }
            }
            Self::Adjusted { post, .. } => post.mean(),
            Self::Quantile { quantile, .. } => *quantile,
        }
    }

    /// Per-unit variance, without CUPED adjustment (gbstats' with `theta = 0`).
    pub fn variance(&self) -> f64 {
        match self {
            Self::Proportion { .. } => {
                let p = self.mean();
                p * (1.0 - p)
            }
            Self::Mean {
                n,
                sum,
                sum_squares,
            } => {
                if *n <= 1.0 {
                    0.0
                } else {
                    (sum_squares - sum * sum / n) / (n - 1.0)
                }
            }
            Self::Ratio {
                n,
                numerator,
                denominator,
                sum_of_products,
            } => {
                let d_mean = denominator.mean();
                if d_mean == 0.0 || *n <= 1.0 {
                    return 0.0;
                }
                let m_mean = numerator.mean();
                let covariance = covariance(*n, *sum_of_products, numerator, denominator);
                numerator.variance() / d_mean.powi(2) - 2.0 * covariance * m_mean / d_mean.powi(3)
                    + m_mean.powi(2) * denominator.variance() / d_mean.powi(4)
            }
            Self::Adjusted { n, post, .. } => {
                if *n <= 1.0 {
                    0.0
                } else {
                    post.variance()
                }
            }
            Self::Quantile {
                n, lower, upper, ..
            } => {
                let v = if *n <= 1.0 {
                    0.0
                } else {
                    (n - 1.0) * ((upper - lower) / (2.0 * QUANTILE_Z)).powi(2)
                };
                // gbstats' floor: from 100 observations an interval of zero width (values
                // that repeat exactly) still has a little variance.
                if *n >= 100.0 { v.max(1e-5) } else { v }
            }
        }
    }

    /// gbstats has no sum for composites and raises; nesting them is meaningless but must not
    /// panic, so the total implied by the mean stands in.
    fn sum(&self) -> f64 {
        match self {
            Self::Proportion { sum, .. } | Self::Mean { sum, .. } => *sum,
            Self::Ratio { .. } | Self::Adjusted { .. } | Self::Quantile { .. } => {
                self.n() * self.mean()
            }
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// The normal quantile of a 95 % interval, as gbstats' quantile statistics use it.
const QUANTILE_Z: f64 = 1.959_963_984_540_054;

/// The `q` quantile of a latency sketch with its 95 % order-statistic interval: the ranks
/// `n·q ± z·√(n·q·(1 − q))` read back from the sketch (its relative error is far below the
/// interval's width at any sample size a guardrail acts on).
pub fn quantile_statistic(sketch: &crate::monitoring::sketch::DDSketch, q: f64) -> Statistic {
    let n = sketch.count() as f64;
    if n == 0.0 {
        return Statistic::Quantile {
            n: 0.0,
            quantile: 0.0,
            lower: 0.0,
            upper: 0.0,
        };
    }
    let half = QUANTILE_Z * (n * q * (1.0 - q)).sqrt() / n;
    let at = |p: f64| sketch.quantile(p.clamp(0.0, 1.0)).unwrap_or(0.0);
    Statistic::Quantile {
        n,
        quantile: at(q),
        lower: at(q - half),
        upper: at(q + half),
    }
}

fn covariance(n: f64, sum_of_products: f64, a: &Statistic, b: &Statistic) -> f64 {
    if n <= 1.0 {
        0.0
    } else {
        (sum_of_products - a.sum() * b.sum() / n) / (n - 1.0)
    }
}

/// Bayesian (posterior with a flat prior) or frequentist (t-test or confidence sequence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Bayesian,
    Frequentist,
}

/// How to compare variants.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Analysis {
    pub method: Method,
    /// Frequentist only: a confidence sequence that stays valid however often it is read.
    pub sequential: bool,
    /// 1 − the interval's coverage; also the significance level.
    pub alpha: f64,
    /// The total sample size the sequential boundary is tightest at.
    pub sequential_tuning: f64,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            method: Method::Bayesian,
            sequential: false,
            alpha: 0.05,
            sequential_tuning: 5000.0,
        }
    }
}

/// Treatment against control, as a relative difference of means (`0.1` is 10 % higher).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ExperimentComparison)]
pub struct Comparison {
    /// Point estimate (frequentist) or posterior mean (Bayesian).
    pub relative: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Standard deviation of the relative uplift.
    pub stddev: f64,
    /// Frequentist: two-sided p-value (fixed horizon or sequential).
    pub p_value: Option<f64>,
    /// Bayesian: probability that treatment is better (lower, for lower-is-better metrics).
    pub chance_to_beat_control: Option<f64>,
    /// Bayesian: expected loss `[choosing control, choosing treatment]`, relative.
    pub risk: Option<[f64; 2]>,
    /// Why the test could not run; the figures are then uninformative defaults.
    pub error: Option<String>,
}

/// One arm as a test sees it, after any CUPED adjustment.
#[derive(Clone, Copy, Debug)]
struct Arm {
    n: f64,
    mean: f64,
    unadjusted_mean: f64,
    variance: f64,
}

impl Arm {
    fn plain(s: &Statistic) -> Self {
        Self {
            n: s.n(),
            mean: s.mean(),
            unadjusted_mean: s.mean(),
            variance: s.variance(),
        }
    }

    fn adjusted(
        n: f64,
        post: &Statistic,
        pre: &Statistic,
        sum_of_products: f64,
        theta: f64,
    ) -> Self {
        let variance = if n <= 1.0 {
            0.0
        } else {
            post.variance() + theta * theta * pre.variance()
                - 2.0 * theta * covariance(n, sum_of_products, post, pre)
        };
        Self {
            n,
            mean: post.mean() - theta * pre.mean(),
            unadjusted_mean: post.mean(),
            variance,
        }
    }
}

/// What a test does when CUPED finds no pre-period variance: gbstats' frequentist tests swap
/// in the post statistics, while its Bayesian test keeps the adjusted ones with `theta = 0`
/// (same mean and variance, but the adjusted statistic's `n`).
#[derive(Clone, Copy, PartialEq)]
enum ThetaZero {
    Post,
    Unadjusted,
}

fn prepare(
    control: &Statistic,
    treatment: &Statistic,
    theta_zero: ThetaZero,
) -> Result<(Arm, Arm), &'static str> {
    if !control.same_kind(treatment) {
        return Err(MISMATCHED_STATISTICS_MESSAGE);
    }
    let (
        Statistic::Adjusted {
            n: n_a,
            post: post_a,
            pre: pre_a,
            sum_of_products: sp_a,
        },
        Statistic::Adjusted {
            n: n_b,
            post: post_b,
            pre: pre_b,
            sum_of_products: sp_b,
        },
    ) = (control, treatment)
    else {
        return Ok((Arm::plain(control), Arm::plain(treatment)));
    };
    let n = n_a + n_b;
    let joint_post = joint(post_a, post_b, n)?;
    let joint_pre = joint(pre_a, pre_b, n)?;
    let theta = if joint_pre.variance() == 0.0 || joint_post.variance() == 0.0 {
        0.0
    } else {
        covariance(n, sp_a + sp_b, &joint_post, &joint_pre) / joint_pre.variance()
    };
    Ok(if theta != 0.0 {
        (
            Arm::adjusted(*n_a, post_a, pre_a, *sp_a, theta),
            Arm::adjusted(*n_b, post_b, pre_b, *sp_b, theta),
        )
    } else if theta_zero == ThetaZero::Post {
        (Arm::plain(post_a), Arm::plain(post_b))
    } else {
        (Arm::plain(control), Arm::plain(treatment))
    })
}

/// Both arms pooled, as gbstats' `create_joint_statistic`, for fitting the CUPED factor.
fn joint(a: &Statistic, b: &Statistic, n: f64) -> Result<Statistic, &'static str> {
    match (a, b) {
        (Statistic::Proportion { sum: sa, .. }, Statistic::Proportion { sum: sb, .. }) => {
            Ok(Statistic::Proportion { n, sum: sa + sb })
        }
        (
            Statistic::Mean {
                sum: sa,
                sum_squares: qa,
                ..
            },
            Statistic::Mean {
                sum: sb,
                sum_squares: qb,
                ..
            },
        ) => Ok(Statistic::Mean {
            n,
            sum: sa + sb,
            sum_squares: qa + qb,
        }),
        _ => Err(MISMATCHED_STATISTICS_MESSAGE),
    }
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Delta-method variance of `(b − a) / a` (gbstats' `frequentist_variance`, relative).
fn relative_variance(a: &Arm, b: &Arm) -> f64 {
    let ma = a.unadjusted_mean;
    b.variance / (ma * ma * b.n) + a.variance * b.unadjusted_mean.powi(2) / (ma.powi(4) * a.n)
}

/// Compares `treatment` with `control` on the relative difference of their means.
/// `lower_is_better` (gbstats' `inverse`) flips the Bayesian chance to win and risk only.
pub fn compare(
    control: &Statistic,
    treatment: &Statistic,
    analysis: &Analysis,
    lower_is_better: bool,
) -> Comparison {
    let valid = analysis.alpha > 0.0
        && analysis.alpha < 1.0
        && (!analysis.sequential
            || analysis.method == Method::Bayesian
            || positive(analysis.sequential_tuning));
    match analysis.method {
        Method::Frequentist => {
            if !valid {
                return frequentist_default(INVALID_ANALYSIS_MESSAGE);
            }
            match prepare(control, treatment, ThetaZero::Post) {
                Ok((a, b)) => frequentist(&a, &b, analysis),
                Err(message) => frequentist_default(message),
            }
        }
        Method::Bayesian => {
            if !valid {
                return bayesian_default(INVALID_ANALYSIS_MESSAGE);
            }
            match prepare(control, treatment, ThetaZero::Unadjusted) {
                Ok((a, b)) => bayesian(&a, &b, analysis.alpha, lower_is_better),
                Err(message) => bayesian_default(message),
            }
        }
    }
}

fn frequentist_default(message: &str) -> Comparison {
    Comparison {
        relative: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
        stddev: 0.0,
        p_value: Some(1.0),
        chance_to_beat_control: None,
        risk: None,
        error: Some(message.to_owned()),
    }
}

fn bayesian_default(message: &str) -> Comparison {
    Comparison {
        relative: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
        stddev: 0.0,
        p_value: None,
        chance_to_beat_control: Some(0.5),
        risk: Some([0.0, 0.0]),
        error: Some(message.to_owned()),
    }
}

/// gbstats `TwoSidedTTest` / `SequentialTwoSidedTTest`, relative difference.
fn frequentist(a: &Arm, b: &Arm, analysis: &Analysis) -> Comparison {
    if a.mean == 0.0 || a.unadjusted_mean == 0.0 {
        return frequentist_default(BASELINE_VARIATION_ZERO_MESSAGE);
    }
    if !positive(a.variance) || !positive(b.variance) {
        return frequentist_default(ZERO_NEGATIVE_VARIANCE_MESSAGE);
    }
    let estimate = (b.mean - a.mean) / a.unadjusted_mean;
    let variance = relative_variance(a, b);
    if !positive(variance) || !estimate.is_finite() {
        return frequentist_default(ZERO_NEGATIVE_VARIANCE_MESSAGE);
    }
    let stddev = variance.sqrt();
    let alpha = analysis.alpha;
    let (half_width, p_value) = if analysis.sequential {
        // Waudby-Smith et al. 2023 (arXiv 2103.06476v7): rho from eq. 161, the asymptotic
        // confidence sequence of eq. 9, and its e-value (eq. 155) for an always-valid p.
        let n = a.n + b.n;
        let rho2 = sequential_rho(alpha, analysis.sequential_tuning).powi(2);
        let tr2p1 = n * rho2 + 1.0;
        let s2 = variance * n;
        let half_width =
            s2.sqrt() * (2.0 * tr2p1 * (tr2p1.sqrt() / alpha).ln() / (n * n * rho2)).sqrt();
        let st2 = estimate * estimate * n / variance;
        let e_value = (rho2 * st2 / (2.0 * tr2p1)).exp() / tr2p1.sqrt();
        (half_width, (1.0 / e_value).min(1.0))
    } else {
        let dof = welch_dof(a, b);
        let (Some(quantile), Some(tail)) = (
            t_quantile(dof, 1.0 - alpha / 2.0),
            t_sf(dof, (estimate / stddev).abs()),
        ) else {
            return frequentist_default(ZERO_NEGATIVE_VARIANCE_MESSAGE);
        };
        (quantile * stddev, 2.0 * tail)
    };
    Comparison {
        relative: estimate,
        ci_low: estimate - half_width,
        ci_high: estimate + half_width,
        stddev,
        p_value: Some(p_value),
        chance_to_beat_control: None,
        risk: None,
        error: None,
    }
}

/// Welch–Satterthwaite degrees of freedom on the per-arm variances.
fn welch_dof(a: &Arm, b: &Arm) -> f64 {
    (b.variance / b.n + a.variance / a.n).powi(2)
        / (b.variance.powi(2) / (b.n * b.n * (b.n - 1.0))
            + a.variance.powi(2) / (a.n * a.n * (a.n - 1.0)))
}

/// Quantile of Student's t. statrs inverts its CDF through the incomplete beta, which loses
/// digits from about 10⁵ degrees of freedom (and stops converging near 10⁹), while A/B tests
/// routinely have millions. Past 1000 degrees of freedom Hill's expansion around the normal
/// quantile (Abramowitz & Stegun 26.7.5, terms to ν⁻⁴) is exact to double precision.
fn t_quantile(dof: f64, p: f64) -> Option<f64> {
    if dof >= 1000.0 {
        let z = standard_normal().inverse_cdf(p);
        let z2 = z * z;
        let g1 = z * (z2 + 1.0) / 4.0;
        let g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
        let g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
        let g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
        Some(z + (g1 + (g2 + (g3 + g4 / dof) / dof) / dof) / dof)
    } else {
        StudentsT::new(0.0, 1.0, dof).ok().map(|t| t.inverse_cdf(p))
    }
}

/// Upper tail of Student's t. statrs' beta-based tail drifts past 10⁷ degrees of freedom, where
/// the normal tail is within 1e-8 of the t's.
fn t_sf(dof: f64, x: f64) -> Option<f64> {
    if dof > 1e7 {
        Some(standard_normal().sf(x))
    } else {
        StudentsT::new(0.0, 1.0, dof).ok().map(|t| t.sf(x))
    }
}

/// eq. 161 of Waudby-Smith et al.: the rho that makes the boundary tightest at `tuning` units.
fn sequential_rho(alpha: f64, tuning: f64) -> f64 {
    ((-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning).sqrt()
}

/// gbstats `EffectBayesianABTest` with its default improper (flat) prior: the posterior of the
/// relative uplift is the normal approximation of the data.
fn bayesian(a: &Arm, b: &Arm, alpha: f64, inverse: bool) -> Comparison {
    if a.mean == 0.0 || a.unadjusted_mean == 0.0 {
        return bayesian_default(BASELINE_VARIATION_ZERO_MESSAGE);
    }
    if a.n == 0.0 || b.n == 0.0 {
        return bayesian_default(NO_UNITS_IN_VARIATION_MESSAGE);
    }
    if !positive(a.variance) || !positive(b.variance) {
        return bayesian_default(ZERO_NEGATIVE_VARIANCE_MESSAGE);
    }
    let mu = (b.mean - a.mean) / a.unadjusted_mean;
    let variance = relative_variance(a, b);
    if !positive(variance) || !mu.is_finite() {
        return bayesian_default(ZERO_NEGATIVE_VARIANCE_MESSAGE);
    }
    let sigma = variance.sqrt();
    let normal = standard_normal();
    let z = mu / sigma;
    let higher = normal.cdf(z);
    let chance = if inverse { 1.0 - higher } else { higher };
    let q = normal.inverse_cdf(1.0 - alpha / 2.0);
    // Closed forms of gbstats' truncated-normal risk, without its 1 − Φ cancellation:
    // E[max(X, 0)] and −E[min(X, 0)] for X ~ N(mu, sigma²).
    let density = sigma * normal.pdf(z);
    // Both are expectations of non-negative losses; far in a tail the subtraction can round a
    // few ulps below zero (-5e-324 at z ≈ 38), which is 0.
    let risk_control = (mu * higher + density).max(0.0);
    let risk_treatment = (density - mu * normal.cdf(-z)).max(0.0);
    let risk = if inverse {
        [risk_treatment, risk_control]
    } else {
        [risk_control, risk_treatment]
    };
    Comparison {
        relative: mu,
        ci_low: mu - q * sigma,
        ci_high: mu + q * sigma,
        stddev: sigma,
        p_value: None,
        chance_to_beat_control: Some(chance),
        risk: Some(risk),
        error: None,
    }
}

/// gbstats `check_srm`: the chi-square p-value of the observed split against `weights`
/// (normalised here, so they need not sum to 1). Variants with no weight, or none given, are
/// left out of the statistic but still count in its degrees of freedom, as in gbstats.
pub fn srm_p_value(users: &[f64], weights: &[f64]) -> f64 {
    let total: f64 = users.iter().sum();
    let total_weight: f64 = weights.iter().sum();
    if total == 0.0 || users.len() < 2 || !positive(total_weight) {
        return 1.0;
    }
    let x: f64 = users
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| {
            let e = w / total_weight * total;
            (o - e).powi(2) / e
        })
        .sum();
    let Ok(chi2) = ChiSquared::new((users.len() - 1) as f64) else {
        return 1.0;
    };
    if x.is_nan() { 1.0 } else { chi2.sf(x) }
}

/// GrowthBook's warning rule: a split this unlikely is a bug in assignment or tracking, not
/// chance; below 8 users per variant the chi-square approximation is not trusted.
pub fn srm_flagged(p_value: f64, users: &[f64]) -> bool {
    p_value < 0.001 && users.iter().all(|u| *u >= 8.0)
}

/// Holm–Bonferroni adjusted p-values, in the input's order: step-down, kept monotone in the
/// order of the raw p-values and capped at 1. A missing (NaN) p-value counts as 1.
pub fn holm_bonferroni(p_values: &[f64]) -> Vec<f64> {
    let clean: Vec<f64> = p_values
        .iter()
        .map(|p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let m = clean.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| clean[i].total_cmp(&clean[j]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * clean[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Outcome of a guarded rollout's regression check on one metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardrailCheck {
    /// `treatment − control`, in the metric's own unit.
    pub difference: f64,
    /// The confidence sequence's bound on the side that matters: lower bound when higher is
    /// worse, upper bound when lower is worse. Infinite when the check cannot run yet.
    pub bound: f64,
    /// The bound excludes zero on the harmful side.
    pub regressed: bool,
}

/// One-sided sequential test on the absolute difference `treatment − control`, safe to run
/// after every batch of traffic. For `higher_is_better = false` metrics (error rate, latency) a
/// regression is a lower bound above 0; otherwise an upper bound below 0.
///
/// The boundary is GrowthBook's safe-rollout one (gbstats `SequentialOneSidedTreatmentGreaterTTest`
/// / `…LesserTTest`, packages/stats/gbstats/frequentist/tests.py, and its TypeScript port's
/// `sequentialIntervalHalfwidthOneSided`): Waudby-Smith et al. 2023 eq. 9 made one-sided,
/// i.e. rho from eq. 161 at `2·alpha` and half-width
/// `sqrt(s² · 2(Nρ²+1)/(Nρ)² · ln(1 + sqrt(Nρ²+1)/(2·alpha)))`.
///
/// Unlike gbstats, one arm with zero variance does not stop the check (only both together):
/// a control with no errors at all is the usual case for an error-rate guardrail, and exactly
/// when a regression must still be caught. `alpha` must be in (0, 0.5), as GrowthBook requires.
pub fn guardrail_regression(
    control: &Statistic,
    treatment: &Statistic,
    alpha: f64,
    tuning: f64,
    higher_is_better: bool,
) -> GuardrailCheck {
    let undecided = |difference: f64| GuardrailCheck {
        difference,
        bound: if higher_is_better {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        },
        regressed: false,
    };
    let Ok((a, b)) = prepare(control, treatment, ThetaZero::Post) else {
        return undecided(0.0);
    };
    let difference = b.mean - a.mean;
    let runnable = alpha > 0.0 && alpha < 0.5 && positive(tuning) && positive(a.n) && positive(b.n);
    if !runnable {
        return undecided(difference);
    }
    let variance = b.variance / b.n + a.variance / a.n;
    if !positive(variance) || !difference.is_finite() {
        return undecided(difference);
    }
    let n = a.n + b.n;
    let rho2 = sequential_rho(2.0 * alpha, tuning).powi(2);
    let tr2p1 = n * rho2 + 1.0;
    let half_width = (variance * n * 2.0 * tr2p1 / (n * n * rho2)
        * (1.0 + tr2p1.sqrt() / (2.0 * alpha)).ln())
    .sqrt();
    if higher_is_better {
        let bound = difference + half_width;
        GuardrailCheck {
            difference,
            bound,
            regressed: bound < 0.0,
        }
    } else {
        let bound = difference - half_width;
        GuardrailCheck {
            difference,
            bound,
            regressed: bound > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    fn prop(n: f64, sum: f64) -> Statistic {
        Statistic::Proportion { n, sum }
    }

    fn mean(n: f64, sum: f64, sum_squares: f64) -> Statistic {
        Statistic::Mean {
            n,
            sum,
            sum_squares,
        }
    }

    fn adjusted(n: f64, post: Statistic, pre: Statistic, sum_of_products: f64) -> Statistic {
        Statistic::Adjusted {
            n,
            post: Box::new(post),
            pre: Box::new(pre),
            sum_of_products,
        }
    }

    fn bayes() -> Analysis {
        Analysis::default()
    }

    fn freq() -> Analysis {
        Analysis {
            method: Method::Frequentist,
            ..Analysis::default()
        }
    }

    fn seq(tuning: f64) -> Analysis {
        Analysis {
            method: Method::Frequentist,
            sequential: true,
            sequential_tuning: tuning,
            ..Analysis::default()
        }
    }

    /// Expected figures from gbstats 0.8.0.
    struct Freq {
        relative: f64,
        ci: [f64; 2],
        stddev: f64,
        p: f64,
    }

    fn check_freq(c: &Comparison, e: Freq) {
        assert_eq!(c.error, None);
        close(c.relative, e.relative, 1e-9);
        close(c.ci_low, e.ci[0], 1e-6);
        close(c.ci_high, e.ci[1], 1e-6);
        close(c.stddev, e.stddev, 1e-9);
        close(c.p_value.unwrap(), e.p, 1e-6);
        assert_eq!((c.chance_to_beat_control, c.risk), (None, None));
    }

    /// Expected figures from gbstats 0.8.0.
    struct Bayes {
        relative: f64,
        ci: [f64; 2],
        stddev: f64,
        ctw: f64,
        risk: [f64; 2],
    }

    fn check_bayes(c: &Comparison, e: Bayes) {
        assert_eq!(c.error, None);
        close(c.relative, e.relative, 1e-9);
        close(c.ci_low, e.ci[0], 1e-6);
        close(c.ci_high, e.ci[1], 1e-6);
        close(c.stddev, e.stddev, 1e-9);
        close(c.chance_to_beat_control.unwrap(), e.ctw, 1e-6);
        let risk = c.risk.unwrap();
        close(risk[0], e.risk[0], 1e-6);
        close(risk[1], e.risk[1], 1e-6);
        assert_eq!(c.p_value, None);
    }

    // The issue's examples, to the decimals it gives.
    #[test]
    fn issue_conversion_example() {
        let control = prop(10_000.0, 1_000.0);
        let treatment = prop(10_000.0, 1_100.0);
        let b = compare(&control, &treatment, &bayes(), false);
        close(b.relative, 0.1, 1e-4);
        close(b.chance_to_beat_control.unwrap(), 0.986061, 1e-6);
        let f = compare(&control, &treatment, &freq(), false);
        close(f.relative, 0.1, 1e-4);
        close(f.p_value.unwrap(), 0.027890, 1e-6);
        close(f.ci_low, 0.010865, 1e-6);
        close(f.ci_high, 0.189135, 1e-6);
    }

    #[test]
    fn issue_srm_example() {
        let users = [5_000.0, 5_400.0];
        let p = srm_p_value(&users, &[0.5, 0.5]);
        close(p, 8.7699e-5, 1e-8);
        assert!(srm_flagged(p, &users));
    }

    // Everything below is gbstats 0.8.0 output (TwoSidedTTest, SequentialTwoSidedTTest,
    // EffectBayesianABTest with the default flat prior, check_srm), full precision.

    #[test]
    fn gbstats_binomial_all_methods() {
        let control = prop(10_000.0, 1_000.0);
        let treatment = prop(10_000.0, 1_100.0);
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.09999999999999995,
                ci: [0.010870112525621006, 0.18912988747437887],
                stddev: 0.045475268003608287,
                ctw: 0.9860609494573318,
                risk: [0.10022287267691717, 0.00022287267691721734],
            },
        );
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.09999999999999995,
                ci: [0.010864708144846927, 0.189135291855153],
                stddev: 0.045475268003608287,
                p: 0.027889528764600602,
            },
        );
        check_freq(
            &compare(&control, &treatment, &seq(5000.0), false),
            Freq {
                relative: 0.09999999999999995,
                ci: [-0.04220635376208545, 0.24220635376208535],
                stddev: 0.045475268003608287,
                p: 0.5490379443452079,
            },
        );
    }

    #[test]
    fn gbstats_mean_metric() {
        // gbstats' own test statistics.
        let control = mean(3407.0, 1396.87, 52377.9767);
        let treatment = mean(3461.0, 2422.7, 134698.29);
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.7073170731707317,
                ci: [-0.03526008906611777, 1.449894235407581],
                stddev: 0.3787943616681428,
                p: 0.06191182745618362,
            },
        );
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.7073170731707317,
                ci: [-0.03510623324566797, 1.449740379587131],
                stddev: 0.3787943616681428,
                ctw: 0.9690691085323815,
                risk: [0.7118738401388185, 0.004556766968086795],
            },
        );
    }

    #[test]
    fn gbstats_mean_sequential_tuned() {
        let control = mean(3000.0, 1396.87, 52377.9767);
        let treatment = mean(3461.0, 2422.7, 134698.29);
        check_freq(
            &compare(&control, &treatment, &seq(1000.0), false),
            Freq {
                relative: 0.5033610858562358,
                ci: [-0.5584405051077315, 1.5651626768202032],
                stddev: 0.3334122146400735,
                p: 1.0,
            },
        );
    }

    #[test]
    fn gbstats_inverse_metric() {
        let control = prop(5000.0, 250.0);
        let treatment = prop(5000.0, 220.0);
        check_bayes(
            &compare(&control, &treatment, &bayes(), true),
            Bayes {
                relative: -0.1200000000000001,
                ci: [-0.275664085798643, 0.03566408579864272],
                stddev: 0.07942191133434148,
                ctw: 0.9345953352371912,
                risk: [0.12227028060561831, 0.00227028060561819],
            },
        );
        // Frequentist output does not depend on the direction.
        check_freq(
            &compare(&control, &treatment, &freq(), true),
            Freq {
                relative: -0.1200000000000001,
                ci: [-0.2756830022782908, 0.035683002278290604],
                stddev: 0.07942191133434147,
                p: 0.13084104935274765,
            },
        );
    }

    #[test]
    fn gbstats_inverse_large_sample() {
        let control = prop(2_000_000.0, 100_000.0);
        let treatment = prop(2_000_000.0, 101_000.0);
        check_bayes(
            &compare(&control, &treatment, &bayes(), true),
            Bayes {
                relative: 0.010000000000000009,
                ci: [0.0013937939034716785, 0.018606206096528334],
                stddev: 0.00439100216351575,
                ctw: 0.011381639251408004,
                risk: [1.7175350128795915e-05, 0.010017175350128806],
            },
        );
        check_freq(
            &compare(&control, &treatment, &freq(), true),
            Freq {
                relative: 0.010000000000000009,
                ci: [0.0013937912992497622, 0.018606208700750256],
                stddev: 0.00439100216351575,
                p: 0.02276333104162731,
            },
        );
    }

    #[test]
    fn gbstats_small_sample_t_distribution() {
        let control = mean(12.0, 30.0, 95.0);
        let treatment = mean(9.0, 31.5, 130.0);
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.4,
                ci: [-0.24164803595718864, 1.0416480359571887],
                stddev: 0.302331011317133,
                p: 0.20467300559117008,
            },
        );
        let alpha_10 = Analysis {
            alpha: 0.1,
            ..freq()
        };
        check_freq(
            &compare(&control, &treatment, &alpha_10, false),
            Freq {
                relative: 0.4,
                ci: [-0.1282914232149387, 0.9282914232149387],
                stddev: 0.302331011317133,
                p: 0.20467300559117008,
            },
        );
    }

    fn revenue_per_order(control: bool) -> Statistic {
        let (n, m, d, sp) = if control {
            (
                400.0,
                mean(400.0, 11982.418446640087, 665012.5976216644),
                mean(400.0, 1182.0, 4172.0),
                42704.36937323134,
            )
        } else {
            (
                420.0,
                mean(420.0, 14196.510202153502, 919027.0677450324),
                mean(420.0, 1277.0, 4783.0),
                54420.150594173945,
            )
        };
        Statistic::Ratio {
            n,
            numerator: Box::new(m),
            denominator: Box::new(d),
            sum_of_products: sp,
        }
    }

    #[test]
    fn gbstats_ratio_metric() {
        let (control, treatment) = (revenue_per_order(true), revenue_per_order(false));
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.09663902424433288,
                ci: [-0.02290908500858385, 0.2161871334972496],
                stddev: 0.06090468879105454,
                p: 0.11296177297541865,
            },
        );
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.09663902424433288,
                ci: [-0.022731972275754367, 0.2160100207644201],
                stddev: 0.06090468879105454,
                ctw: 0.9437125885622167,
                risk: [0.0980994725171431, 0.0014604482728102239],
            },
        );
        check_freq(
            &compare(&control, &treatment, &seq(5000.0), false),
            Freq {
                relative: 0.09663902424433288,
                ci: [-0.1149458184663841, 0.3082238669550499],
                stddev: 0.06090468879105454,
                p: 0.7444570694071252,
            },
        );
    }

    fn cuped_mean(control: bool) -> Statistic {
        if control {
            adjusted(
                1000.0,
                mean(1000.0, 4782.436570659038, 38179.47001078965),
                mean(1000.0, 6122.098235693034, 55631.34962651113),
                43710.633412771684,
            )
        } else {
            adjusted(
                1000.0,
                mean(1000.0, 5237.6412166182345, 42960.66985490429),
                mean(1000.0, 6013.394677559674, 54118.62193158342),
                45754.415361749605,
            )
        }
    }

    #[test]
    fn gbstats_cuped_mean() {
        let (control, treatment) = (cuped_mean(true), cuped_mean(false));
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.11322404447048592,
                ci: [0.07472807325907407, 0.15172001568189777],
                stddev: 0.019629238571095962,
                p: 9.270484158108161e-09,
            },
        );
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.11322404447048592,
                ci: [0.07475144382719336, 0.15169664511377848],
                stddev: 0.019629238571095962,
                ctw: 0.9999999959922558,
                risk: [0.11322404448340634, 1.2920410406313241e-11],
            },
        );
        check_freq(
            &compare(&control, &treatment, &seq(5000.0), false),
            Freq {
                relative: 0.11322404447048592,
                ci: [0.051906639436601204, 0.17454144950437064],
                stddev: 0.019629238571095962,
                p: 6.549801970722172e-06,
            },
        );
    }

    #[test]
    fn gbstats_cuped_binomial() {
        let control = adjusted(2000.0, prop(2000.0, 460.0), prop(2000.0, 602.0), 331.0);
        let treatment = adjusted(2000.0, prop(2000.0, 501.0), prop(2000.0, 617.0), 350.0);
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.07419284949061104,
                ci: [-0.0303306867493532, 0.1787163857305753],
                stddev: 0.05331314886035621,
                p: 0.16410816976694553,
            },
        );
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.07419284949061104,
                ci: [-0.03029900217810977, 0.17868470115933183],
                stddev: 0.05331314886035621,
                ctw: 0.9179846751123806,
                risk: [0.07618400535031727, 0.001991155859706238],
            },
        );
    }

    #[test]
    fn gbstats_cuped_without_pre_period_falls_back() {
        // No pre-period data: theta is 0 and the post statistics decide.
        let control = adjusted(
            500.0,
            mean(500.0, 1000.0, 9000.0),
            mean(500.0, 0.0, 0.0),
            0.0,
        );
        let treatment = adjusted(
            520.0,
            mean(520.0, 1150.0, 10000.0),
            mean(520.0, 0.0, 0.0),
            0.0,
        );
        check_freq(
            &compare(&control, &treatment, &freq(), false),
            Freq {
                relative: 0.10576923076923084,
                ci: [-0.1384063638144877, 0.34994482535294935],
                stddev: 0.12443344375618048,
                p: 0.39552150719725754,
            },
        );
        check_bayes(
            &compare(&control, &treatment, &bayes(), false),
            Bayes {
                relative: 0.10576923076923084,
                ci: [-0.13811583746517345, 0.3496542990036351],
                stddev: 0.1244334437561805,
                ctw: 0.80233925206593,
                risk: [0.11945323232542461, 0.013684001556193787],
            },
        );
    }

    #[test]
    fn gbstats_three_arms() {
        let control = prop(3000.0, 300.0);
        let first = prop(3050.0, 330.0);
        let second = prop(2980.0, 270.0);
        check_bayes(
            &compare(&control, &first, &bayes(), false),
            Bayes {
                relative: 0.08196721311475405,
                ci: [-0.07817002429413722, 0.2421044505236453],
                stddev: 0.08170417348075441,
                ctw: 0.8421224962592815,
                risk: [0.08873280450189132, 0.006765591387137263],
            },
        );
        check_bayes(
            &compare(&control, &second, &bayes(), false),
            Bayes {
                relative: -0.09395973154362428,
                ci: [-0.23567011123519763, 0.04775064814794902],
                stddev: 0.0723025427045429,
                ctw: 0.09688008429086797,
                risk: [0.0032950387359020287, 0.09725477027952631],
            },
        );
        check_freq(
            &compare(&control, &first, &freq(), false),
            Freq {
                relative: 0.08196721311475405,
                ci: [-0.07820208900609066, 0.24213651523559876],
                stddev: 0.08170417348075441,
                p: 0.31579515620973364,
            },
        );
        check_freq(
            &compare(&control, &second, &freq(), false),
            Freq {
                relative: -0.09395973154362428,
                ci: [-0.23569884923899376, 0.04777938615174521],
                stddev: 0.0723025427045429,
                p: 0.19381034988129398,
            },
        );
        check_freq(
            &compare(&control, &second, &seq(5000.0), false),
            Freq {
                relative: -0.09395973154362428,
                ci: [-0.3135134777879476, 0.125594014700699],
                stddev: 0.0723025427045429,
                p: 1.0,
            },
        );
        let users = [3000.0, 3050.0, 2980.0];
        let p = srm_p_value(&users, &[1.0, 1.0, 1.0]);
        close(p, 0.6492783992911144, 1e-9);
        assert!(!srm_flagged(p, &users));
    }

    fn assert_default(c: &Comparison, method: Method, message: &str) {
        let expected = match method {
            Method::Frequentist => frequentist_default(message),
            Method::Bayesian => bayesian_default(message),
        };
        assert_eq!(c, &expected);
    }

    #[test]
    fn gbstats_error_paths() {
        let zero_base = (prop(100.0, 0.0), prop(100.0, 5.0));
        assert_default(
            &compare(&zero_base.0, &zero_base.1, &bayes(), false),
            Method::Bayesian,
            BASELINE_VARIATION_ZERO_MESSAGE,
        );
        assert_default(
            &compare(&zero_base.0, &zero_base.1, &freq(), false),
            Method::Frequentist,
            BASELINE_VARIATION_ZERO_MESSAGE,
        );
        let flat = (mean(100.0, 100.0, 100.0), mean(100.0, 120.0, 200.0));
        for (analysis, method) in [(bayes(), Method::Bayesian), (freq(), Method::Frequentist)] {
            assert_default(
                &compare(&flat.0, &flat.1, &analysis, false),
                method,
                ZERO_NEGATIVE_VARIANCE_MESSAGE,
            );
        }
        let empty = (prop(100.0, 10.0), prop(0.0, 0.0));
        assert_default(
            &compare(&empty.0, &empty.1, &bayes(), false),
            Method::Bayesian,
            NO_UNITS_IN_VARIATION_MESSAGE,
        );
        // gbstats' frequentist tests have no units check; the zero variance catches it.
        assert_default(
            &compare(&empty.0, &empty.1, &freq(), false),
            Method::Frequentist,
            ZERO_NEGATIVE_VARIANCE_MESSAGE,
        );
    }

    #[test]
    fn mixed_kinds_and_bad_settings_are_errors_not_panics() {
        let c = compare(&prop(100.0, 10.0), &mean(100.0, 10.0, 30.0), &freq(), false);
        assert_eq!(c.error.as_deref(), Some(MISMATCHED_STATISTICS_MESSAGE));
        let mixed_cuped = adjusted(100.0, prop(100.0, 10.0), mean(100.0, 5.0, 9.0), 3.0);
        let c = compare(&cuped_mean(true), &mixed_cuped, &bayes(), false);
        assert_eq!(c.error.as_deref(), Some(MISMATCHED_STATISTICS_MESSAGE));
        for analysis in [
            Analysis {
                alpha: 0.0,
                ..freq()
            },
            Analysis {
                alpha: f64::NAN,
                ..bayes()
            },
            Analysis {
                sequential_tuning: 0.0,
                ..seq(1.0)
            },
        ] {
            let c = compare(&prop(100.0, 10.0), &prop(100.0, 12.0), &analysis, false);
            assert_eq!(c.error.as_deref(), Some(INVALID_ANALYSIS_MESSAGE));
        }
    }

    #[test]
    fn risk_closed_form_equals_truncated_normal_means() {
        // gbstats: P(X > 0)·E[X | X > 0] and −P(X < 0)·E[X | X < 0], by numeric integration.
        for (mu, sigma) in [(0.1, 0.045), (-0.3, 0.2), (0.0, 1.0), (2.0, 0.5)] {
            let steps = 200_000;
            let (lo, hi) = (mu - 12.0 * sigma, mu + 12.0 * sigma);
            let h = (hi - lo) / steps as f64;
            let normal = Normal::new(mu, sigma).unwrap();
            let (mut pos, mut neg) = (0.0, 0.0);
            for i in 0..steps {
                let x = lo + (i as f64 + 0.5) * h;
                let w = x * normal.pdf(x) * h;
                if x > 0.0 { pos += w } else { neg += w }
            }
            let z = mu / sigma;
            let std = Normal::standard();
            let density = sigma * std.pdf(z);
            close(mu * std.cdf(z) + density, pos, 1e-7);
            close(density - mu * std.cdf(-z), -neg, 1e-7);
        }
    }

    #[test]
    fn gbstats_srm() {
        let cases: [(&[f64], &[f64], f64, bool); 6] = [
            (&[5000.0, 5100.0], &[0.5, 0.5], 0.3197181768128675, false),
            (
                &[1000.0, 2100.0, 950.0],
                &[0.25, 0.5, 0.25],
                0.03353848383147017,
                false,
            ),
            (&[1000.0, 3000.0], &[0.2, 0.8], 2.6644463892359247e-15, true),
            (&[0.0, 0.0], &[0.5, 0.5], 1.0, false),
            // Significant, but too few users for the warning.
            (&[6.0, 0.0], &[0.5, 0.5], 0.014305878435429641, false),
            (&[5000.0, 5400.0], &[1.0, 1.0], 8.769942375590228e-05, true),
        ];
        for (users, weights, expected, flagged) in cases {
            let p = srm_p_value(users, weights);
            close(p, expected, 1e-9_f64.max(expected * 1e-6));
            assert_eq!(srm_flagged(p, users), flagged, "{users:?}");
        }
        assert!(!srm_flagged(1e-9, &[7.0, 900.0]));
    }

    #[test]
    fn holm_hand_computed() {
        // Sorted: 0.01 ×4 = 0.04, 0.02 ×3 = 0.06, 0.03 ×2 = 0.06, 0.04 ×1 = 0.04 → 0.06.
        let adjusted = holm_bonferroni(&[0.03, 0.01, 0.04, 0.02]);
        let expected = [0.06, 0.04, 0.06, 0.06];
        for (a, e) in adjusted.iter().zip(expected) {
            close(*a, e, 1e-12);
        }
        // Capped at 1; NaN counts as 1.
        assert_eq!(holm_bonferroni(&[0.5, 0.4, f64::NAN]), vec![1.0, 1.0, 1.0]);
        assert_eq!(holm_bonferroni(&[0.2]), vec![0.2]);
        assert!(holm_bonferroni(&[]).is_empty());
    }

    #[test]
    fn guardrail_matches_growthbook_one_sided_sequential() {
        // GrowthBook's tests for SequentialOneSidedTreatment{Greater,Lesser}TTest with
        // difference_type "absolute", alpha 0.05, tuning 5000.
        let control = mean(3000.0, 1396.87, 52377.9767);
        let treatment = mean(3461.0, 2422.7, 134698.29);
        let worse_if_higher = guardrail_regression(&control, &treatment, 0.05, 5000.0, false);
        close(worse_if_higher.difference, 0.23437666666666668, 1e-12);
        close(worse_if_higher.bound, -0.12656844172804982, 1e-9);
        assert!(!worse_if_higher.regressed);
        let worse_if_lower = guardrail_regression(&control, &treatment, 0.05, 5000.0, true);
        close(worse_if_lower.bound, 0.5953217750613832, 1e-9);
        assert!(!worse_if_lower.regressed);
    }

    #[test]
    fn guardrail_catches_error_rate_regression() {
        // 0 errors in control is the common case and must not stop the check.
        let control = prop(5000.0, 0.0);
        let treatment = prop(5000.0, 60.0);
        let check = guardrail_regression(&control, &treatment, 0.05, 5000.0, false);
        close(check.difference, 0.012, 1e-12);
        assert!(check.bound > 0.0 && check.regressed, "{check:?}");
        // The same gap in a conversion metric is an improvement, not a regression.
        let improvement = guardrail_regression(&control, &treatment, 0.05, 5000.0, true);
        assert!(!improvement.regressed);
        // A small gap with little traffic is not enough.
        let noisy = guardrail_regression(&prop(200.0, 4.0), &prop(200.0, 6.0), 0.05, 5000.0, false);
        assert!(!noisy.regressed && noisy.bound < 0.0);
        // Nothing to go on yet.
        let empty = guardrail_regression(&prop(0.0, 0.0), &prop(0.0, 0.0), 0.05, 5000.0, false);
        assert_eq!((empty.bound, empty.regressed), (f64::NEG_INFINITY, false));
        let bad_alpha = guardrail_regression(&control, &treatment, 0.5, 5000.0, false);
        assert!(!bad_alpha.regressed);
    }

    #[test]
    fn t_distribution_matches_scipy_at_any_sample_size() {
        // scipy.stats.t.ppf(0.975, ν), t.ppf(0.95, ν), t.sf(2.2, ν), t.sf(6.0, ν).
        let table = [
            (
                1.3,
                7.500529325562029,
                4.333339183467029,
                0.11154950387276315,
                0.0332253647521563,
            ),
            (
                2.5,
                3.5746548420036817,
                2.5582186141359355,
                0.06645699270983456,
                0.0076408649427614495,
            ),
            (
                30.0,
                2.0422724563012378,
                1.697260886593957,
                0.017824219998417892,
                6.971384383602382e-07,
            ),
            (
                19998.0,
                1.9600826170220889,
                1.6449298265797991,
                0.0139091456056536,
                1.003574531762163e-09,
            ),
            (
                1e6,
                1.959966356814107,
                1.6448551507220404,
                0.013903561458011936,
                9.86924906177215e-10,
            ),
            (
                1e9,
                1.959963986912325,
                1.6448536284752415,
                0.013903447627443001,
                9.865879822492407e-10,
            ),
            (
                1e12,
                1.9599639845424262,
                1.644853626952996,
                0.013903447513612546,
                9.865876453749109e-10,
            ),
        ];
        for (dof, q975, q95, sf22, sf6) in table {
            close(t_quantile(dof, 0.975).unwrap(), q975, 1e-10);
            close(t_quantile(dof, 0.95).unwrap(), q95, 1e-10);
            close(t_sf(dof, 2.2).unwrap(), sf22, 1e-9);
            close(t_sf(dof, 6.0).unwrap(), sf6, 1e-11);
        }
        assert_eq!(t_quantile(f64::NAN, 0.975), None);
    }

    #[test]
    fn statistic_accessors() {
        let r = revenue_per_order(true);
        assert_eq!(r.n(), 400.0);
        close(r.mean(), 11982.418446640087 / 1182.0, 1e-12);
        let c = cuped_mean(true);
        close(c.mean(), 4.782436570659038, 1e-12);
        close(
            c.variance(),
            mean(1000.0, 4782.436570659038, 38179.47001078965).variance(),
            0.0,
        );
        assert_eq!(prop(0.0, 0.0).mean(), 0.0);
        close(prop(10.0, 3.0).variance(), 0.21, 1e-12);
    }

    #[test]
    fn serde_and_schema() {
        let json = serde_json::to_value(cuped_mean(true)).unwrap();
        assert_eq!(json["kind"], "adjusted");
        assert_eq!(json["post"]["kind"], "mean");
        let back: Statistic = serde_json::from_value(json).unwrap();
        assert_eq!(back, cuped_mean(true));
        let analysis: Analysis = serde_json::from_str(r#"{"method":"frequentist"}"#).unwrap();
        assert_eq!(analysis, freq());
        // Recursive schema must terminate.
        let mut schemas = Vec::new();
        <Statistic as ToSchema>::schemas(&mut schemas);
        let _ = <Statistic as utoipa::PartialSchema>::schema();
    }

    fn binomial() -> impl Strategy<Value = Statistic> {
        (2u32..200_000, 0.0f64..=1.0).prop_map(|(n, rate)| {
            let n = f64::from(n);
            prop(n, (n * rate).round())
        })
    }

    proptest! {
        #[test]
        fn comparison_is_coherent(
            control in binomial(),
            treatment in binomial(),
            frequentist in any::<bool>(),
            sequential in any::<bool>(),
            inverse in any::<bool>(),
            alpha in 0.001f64..0.3,
        ) {
            let analysis = Analysis {
                method: if frequentist { Method::Frequentist } else { Method::Bayesian },
                sequential: frequentist && sequential,
                alpha,
                ..Analysis::default()
            };
            let c = compare(&control, &treatment, &analysis, inverse);
            prop_assert!(c.ci_low <= c.relative && c.relative <= c.ci_high, "{c:?}");
            if let Some(ctw) = c.chance_to_beat_control {
                prop_assert!((0.0..=1.0).contains(&ctw), "{c:?}");
                let [a, b] = c.risk.unwrap();
                prop_assert!(a >= 0.0 && b >= 0.0, "{c:?}");
            }
            if let Some(p) = c.p_value {
                prop_assert!((0.0..=1.0).contains(&p), "{c:?}");
            }
        }

        #[test]
        fn holm_is_conservative_and_monotone(p in prop::collection::vec(0.0f64..=1.0, 0..30)) {
            let adjusted = holm_bonferroni(&p);
            prop_assert_eq!(adjusted.len(), p.len());
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
            for w in order.windows(2) {
                prop_assert!(adjusted[w[0]] <= adjusted[w[1]]);
            }
            for (a, raw) in adjusted.iter().zip(&p) {
                prop_assert!(*a >= *raw && *a <= 1.0);
            }
        }
    }
}
