//! Scaling recommendations from measured trends: a log-linear least-squares fit of daily peak
//! request rates, projections at fixed horizons, when a resource crosses its target and how
//! many instances that takes. Pure: the service gathers the figures, this decides.

use serde::Serialize;
use utoipa::ToSchema;

/// The utilisation a recommendation aims to stay under (70 %), as capacity planners do to keep
/// headroom for spikes and for losing one instance.
pub const TARGET_UTILISATION: f64 = 0.70;

/// Days ahead a projection is reported for.
pub const HORIZONS: [u32; 3] = [30, 90, 180];

/// The fewest days with traffic a fit needs; fewer and the trend is noise.
pub const MIN_DAYS: usize = 7;

/// `ln(peak) = intercept + slope · day`, fitted by least squares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct GrowthFit {
    /// Natural-log growth per day.
    pub slope_per_day: f64,
    /// `ln(peak)` at day 0.
    pub intercept: f64,
    /// Growth per week as a fraction (`0.10` is 10 % a week).
    pub weekly_growth: f64,
    /// How much of the variance of `ln(peak)` the line explains, 0–1.
    pub r_squared: f64,
    /// Standard error of `slope_per_day` (0 for a perfect fit).
    pub slope_std_error: f64,
    /// Two-sided p-value of "the slope is 0" (Student's t with days − 2 degrees of freedom): how
    /// likely a slope this steep is from noise around a flat line.
    pub slope_p_value: f64,
    /// Days that entered the fit.
    pub days: usize,
    /// The last day of the fit (the same day numbering as the input).
    pub last_day: i64,
}

impl GrowthFit {
    /// The fitted peak on `day`.
    pub fn at(&self, day: f64) -> f64 {
        (self.intercept + self.slope_per_day * day).exp()
    }

    /// The fitted peak `days` after the last measured day.
    pub fn ahead(&self, days: f64) -> f64 {
        self.at(self.last_day as f64 + days)
    }

    /// Days after the last measured day until the load grows by `factor` (`None` when it never
    /// does: flat or shrinking traffic). A factor at or below 1 is already reached: 0.
    pub fn days_until_factor(&self, factor: f64) -> Option<f64> {
        if factor <= 1.0 {
            return Some(0.0);
        }
        (self.slope_per_day > 1e-12).then(|| factor.ln() / self.slope_per_day)
    }
}

/// A least-squares line `y = intercept + slope · x` with its slope's significance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    /// How much of the variance of `y` the line explains, 0–1.
    pub r_squared: f64,
    /// Standard error of `slope` (0 for a perfect fit).
    pub slope_std_error: f64,
    /// Two-sided p-value of "the slope is 0" (Student's t with points − 2 degrees of freedom).
    pub slope_p_value: f64,
    pub points: usize,
}

/// Fits a line through finite `(x, y)` points; `None` with fewer than three or when every `x`
/// is the same. The one least-squares fit Liftoff has: growth (on logarithms), trends of
/// latency and of resource use.
pub fn line_fit(points: &[(f64, f64)]) -> Option<LineFit> {
    let usable: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if usable.len() < 3 {
        return None;
    }
    let n = usable.len() as f64;
    let mean_x = usable.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = usable.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = usable.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = usable.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = usable.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = usable
        .iter()
        .map(|p| (p.1 - (intercept + slope * p.0)).powi(2))
        .sum();
    // A perfectly flat series is perfectly explained by a flat line.
    // (Rounding leaves a flat series a variance of about 1e-30, not 0.)
    let r_squared = if ss_tot <= 1e-18 * n {
        1.0
    } else {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    };
    let (slope_std_error, slope_p_value) = slope_test(slope, ss_res, sxx, usable.len());
    Some(LineFit {
        slope,
        intercept,
        r_squared,
        slope_std_error,
        slope_p_value,
        points: usable.len(),
    })
}

/// Fits `(day, peak)` points; days without traffic (`peak <= 0`) are left out because a
/// logarithm cannot hold them. `None` with fewer than [`MIN_DAYS`] usable points or one day only.
pub fn fit_growth(points: &[(i64, f64)]) -> Option<GrowthFit> {
    let usable: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, y)| y.is_finite() && *y > 0.0)
        .map(|(d, y)| (*d as f64, y.ln()))
        .collect();
    if usable.len() < MIN_DAYS {
        return None;
    }
    let line = line_fit(&usable)?;
    let last_day = points
        .iter()
        .filter(|(_, y)| y.is_finite() && *y > 0.0)
        .map(|p| p.0)
        .max()?;
    Some(GrowthFit {
        slope_per_day: line.slope,
        intercept: line.intercept,
        weekly_growth: (line.slope * 7.0).exp() - 1.0,
        r_squared: line.r_squared,
        slope_std_error: line.slope_std_error,
        slope_p_value: line.slope_p_value,
        days: line.points,
        last_day,
    })
}

/// The slope's standard error and two-sided p-value against 0.
fn slope_test(slope: f64, ss_res: f64, sxx: f64, n: usize) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let df = n as f64 - 2.0;
    let se = (ss_res / df / sxx).sqrt();
    if se.is_nan() || se <= 1e-15 {
        // No residual at all: a line through every point; any slope is certain.
        return (0.0, if slope.abs() > 1e-12 { 0.0 } else { 1.0 });
    }
    let p = StudentsT::new(0.0, 1.0, df)
        .map(|t| 2.0 * t.sf((slope / se).abs()))
        .unwrap_or(1.0);
    (se, p)
}

/// Which way a measured figure is heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrendVerdict {
    Improving,
    Stable,
    Degrading,
}

/// Weekly changes smaller than this are "stable" however significant: a real but negligible
/// drift is not worth a reader's attention.
pub const MIN_MEANINGFUL_WEEKLY_CHANGE: f64 = 0.02;
/// The significance a slope needs to be called a trend.
pub const TREND_ALPHA: f64 = 0.05;

/// The verdict on a fitted figure (latency, error rate: `higher_is_worse`): a trend only when
/// the slope is significant at [`TREND_ALPHA`] and moves the figure by at least
/// [`MIN_MEANINGFUL_WEEKLY_CHANGE`] a week; the least-squares line, not eyeballing.
pub fn trend_verdict(fit: &GrowthFit, higher_is_worse: bool) -> TrendVerdict {
    if fit.slope_p_value >= TREND_ALPHA || fit.weekly_growth.abs() < MIN_MEANINGFUL_WEEKLY_CHANGE {
        return TrendVerdict::Stable;
    }
    if (fit.weekly_growth > 0.0) == higher_is_worse {
        TrendVerdict::Degrading
    } else {
        TrendVerdict::Improving
    }
}

/// One instance's measured peak utilisation of a resource, 0–1.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceLoad {
    /// `cpu` or `memory`.
    pub resource: &'static str,
    pub instance: String,
    /// Utilisation at the last measured day's peak, 0–1.
    pub utilisation: f64,
}

/// What the recommendations start from.
#[derive(Clone, Debug, Default)]
pub struct ScalingInput {
    /// `(day number, peak requests per second)` over the last 28 days.
    pub daily_peaks: Vec<(i64, f64)>,
    /// Per-instance peak utilisation from the instances' system reports.
    pub loads: Vec<ResourceLoad>,
    /// Instances reporting today (at least 1 is assumed: this one).
    pub instances: u32,
    /// Monthly cost of one instance, when the operator gave it.
    pub instance_monthly_cost: Option<f64>,
    /// The day number of today, to turn "days ahead" into dates.
    pub today: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AdviceSeverity)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Projection {
    pub days_ahead: u32,
    /// Projected daily peak requests per second.
    pub peak_rps: f64,
}

/// One recommendation: what to do, how urgent, and the figures it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    /// `trend`, `capacity` (a resource will cross the target), `instances` or `data`.
    pub kind: &'static str,
    pub severity: Severity,
    pub message: String,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ScalingReport {
    pub fit: Option<GrowthFit>,
    pub projections: Vec<Projection>,
    /// Instances needed in 90 days to stay under the target utilisation.
    pub recommended_instances: u32,
    pub monthly_cost: Option<f64>,
    pub recommendations: Vec<Recommendation>,
}

/// Days ahead within which a crossing is critical rather than a warning.
const CRITICAL_WITHIN_DAYS: f64 = 14.0;
/// The horizon the instance count is sized for.
const SIZING_HORIZON_DAYS: f64 = 90.0;

/// Decides the recommendations. Utilisation is assumed to grow with the request rate (load is
/// what drives CPU and memory on a request-serving instance), which is what the fit measures.
pub fn recommend(input: &ScalingInput) -> ScalingReport {
    let instances = input.instances.max(1);
    let Some(fit) = fit_growth(&input.daily_peaks) else {
        let days = input.daily_peaks.iter().filter(|p| p.1 > 0.0).count();
        return ScalingReport {
            fit: None,
            projections: Vec::new(),
            recommended_instances: instances,
            monthly_cost: input
                .instance_monthly_cost
                .map(|c| c * f64::from(instances)),
            recommendations: vec![Recommendation {
                kind: "data",
                severity: Severity::Info,
                message: format!(
                    "Not enough traffic history for a trend: {days} day(s) with requests, {MIN_DAYS} needed."
                ),
                evidence: serde_json::json!({"days_with_traffic": days, "days_needed": MIN_DAYS}),
            }],
        };
    };
    let projections: Vec<Projection> = HORIZONS
        .iter()
        .map(|&h| Projection {
            days_ahead: h,
            peak_rps: fit.ahead(f64::from(h)),
        })
        .collect();
    let mut recommendations = vec![trend_item(&fit, &projections)];
    let growth_to_horizon = fit.ahead(SIZING_HORIZON_DAYS) / fit.ahead(0.0);
    let mut worst = 0.0_f64;
    for load in &input.loads {
        let now = load.utilisation.max(0.0);
        worst = worst.max(now * growth_to_horizon);
        if let Some(item) = capacity_item(&fit, load, input.today) {
            recommendations.push(item);
        }
    }
    // Total work scales with instances × utilisation; spread it so none exceeds the target.
    let recommended = if worst > 0.0 {
        ((f64::from(instances) * worst / TARGET_UTILISATION).ceil() as u32).max(1)
    } else {
        instances
    };
    if recommended != instances {
        recommendations.push(Recommendation {
            kind: "instances",
            severity: if recommended > instances { Severity::Warning } else { Severity::Info },
            message: format!(
                "Run {recommended} instance(s) (now {instances}) to stay under {:.0} % at the load projected in {SIZING_HORIZON_DAYS:.0} days.",
                TARGET_UTILISATION * 100.0
            ),
            evidence: serde_json::json!({
                "instances": instances,
                "recommended": recommended,
                "projected_peak_utilisation": worst,
                "target_utilisation": TARGET_UTILISATION,
            }),
        });
    }
    ScalingReport {
        fit: Some(fit),
        projections,
        recommended_instances: recommended,
        monthly_cost: input
            .instance_monthly_cost
            .map(|c| c * f64::from(recommended)),
        recommendations,
    }
}

fn trend_item(fit: &GrowthFit, projections: &[Projection]) -> Recommendation {
    let weekly = fit.weekly_growth * 100.0;
    let message = if fit.weekly_growth.abs() < 0.005 {
        "Peak traffic is flat.".to_owned()
    } else {
        format!(
            "Peak traffic {} {:.1} % a week (R² {:.2}); {:.1} req/s expected in 90 days.",
            if weekly > 0.0 { "grows" } else { "shrinks" },
            weekly.abs(),
            fit.r_squared,
            projections
                .iter()
                .find(|p| p.days_ahead == 90)
                .map_or(0.0, |p| p.peak_rps)
        )
    };
    Recommendation {
        kind: "trend",
        severity: Severity::Info,
        message,
        evidence: serde_json::json!({
            "weekly_growth": fit.weekly_growth,
            "r_squared": fit.r_squared,
            "days": fit.days,
            "current_peak_rps": fit.ahead(0.0),
            "projections": projections,
        }),
    }
}

fn capacity_item(fit: &GrowthFit, load: &ResourceLoad, today: i64) -> Option<Recommendation> {
    let now = load.utilisation;
    if !(now.is_finite() && now > 0.0) {
        return None;
    }
    let days = fit.days_until_factor(TARGET_UTILISATION / now)?;
    let severity = if days <= CRITICAL_WITHIN_DAYS {
        Severity::Critical
    } else if days <= SIZING_HORIZON_DAYS {
        Severity::Warning
    } else {
        return None;
    };
    let crosses_day = fit.last_day + days.ceil() as i64;
    let message = if days == 0.0 {
        format!(
            "{} on {} is at {:.0} %, over the {:.0} % target now.",
            load.resource,
            load.instance,
            now * 100.0,
            TARGET_UTILISATION * 100.0
        )
    } else {
        format!(
            "{} on {} crosses {:.0} % in about {:.0} days at the current growth.",
            load.resource,
            load.instance,
            TARGET_UTILISATION * 100.0,
            days.max(0.0)
        )
    };
    Some(Recommendation {
        kind: "capacity",
        severity,
        message,
        evidence: serde_json::json!({
            "resource": load.resource,
            "instance": load.instance,
            "utilisation": now,
            "target_utilisation": TARGET_UTILISATION,
            "days_until_target": days,
            "crosses_in_days_from_today": (crosses_day - today).max(0),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 28 days growing `weekly` a week from `start` req/s, with a deterministic ±`noise` wobble.
    fn series(start: f64, weekly: f64, noise: f64) -> Vec<(i64, f64)> {
        let daily = (1.0 + weekly).ln() / 7.0;
        (0..28)
            .map(|d| {
                let wobble = 1.0 + noise * ((d * 7919 % 13) as f64 / 6.0 - 1.0);
                (20_000 + d, start * (daily * d as f64).exp() * wobble)
            })
            .collect()
    }

    #[test]
    fn trend_verdicts_on_a_month_of_daily_latency() {
        use rand::{Rng, SeedableRng};
        let mut degrading = 0;
        let mut stable = 0;
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut noise = || 1.0 + rng.random_range(-0.05..0.05);
            // 6 % a week worse, with ±5 % day-to-day noise.
            let worse: Vec<(i64, f64)> = (0..30)
                .map(|d| (d, 120.0 * 1.06_f64.powf(d as f64 / 7.0) * noise()))
                .collect();
            // Flat, with ±5 % noise.
            let flat: Vec<(i64, f64)> = (0..30).map(|d| (d, 120.0 * noise())).collect();
            let fit = fit_growth(&worse).unwrap();
            degrading += usize::from(trend_verdict(&fit, true) == TrendVerdict::Degrading);
            stable += usize::from(
                trend_verdict(&fit_growth(&flat).unwrap(), true) == TrendVerdict::Stable,
            );
        }
        assert!(
            degrading >= 190,
            "6 %/week called degrading in {degrading}/200"
        );
        assert!(stable >= 190, "flat noise called stable in {stable}/200");
        // Lower is worse for throughput-like figures: the same rise is an improvement.
        let rising: Vec<(i64, f64)> = (0..30).map(|d| (d, 1.1_f64.powf(d as f64 / 7.0))).collect();
        let fit = fit_growth(&rising).unwrap();
        assert_eq!(fit.slope_p_value, 0.0);
        assert_eq!(trend_verdict(&fit, false), TrendVerdict::Improving);
        assert_eq!(trend_verdict(&fit, true), TrendVerdict::Degrading);
    }

    #[test]
    fn ten_percent_a_week_is_recovered_and_projected() {
        let points = series(50.0, 0.10, 0.05);
        let fit = fit_growth(&points).unwrap();
        assert!(
            (fit.weekly_growth - 0.10).abs() < 0.01,
            "weekly growth {}",
            fit.weekly_growth
        );
        assert!(fit.r_squared > 0.9, "r² {}", fit.r_squared);
        // The true curve 90 days after the last day (day 27 of the series).
        let truth = 50.0 * ((1.1f64).ln() / 7.0 * (27.0 + 90.0)).exp();
        let projected = fit.ahead(90.0);
        assert!(
            (projected / truth - 1.0).abs() < 0.10,
            "projected {projected}, true {truth}"
        );
    }

    #[test]
    fn an_exact_curve_is_fitted_exactly() {
        let fit = fit_growth(&series(10.0, 0.25, 0.0)).unwrap();
        assert!((fit.weekly_growth - 0.25).abs() < 1e-9);
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
        assert!((fit.ahead(0.0) - 10.0 * 1.25f64.powf(27.0 / 7.0)).abs() < 1e-6);
    }

    #[test]
    fn too_little_history_says_so() {
        assert!(fit_growth(&[(1, 5.0), (2, 6.0)]).is_none());
        let mut points = series(10.0, 0.1, 0.0);
        for p in points.iter_mut().skip(5) {
            p.1 = 0.0;
        }
        assert!(fit_growth(&points).is_none(), "zero days are left out");
        let report = recommend(&ScalingInput {
            daily_peaks: points,
            instances: 2,
            instance_monthly_cost: Some(40.0),
            ..Default::default()
        });
        assert_eq!(report.recommendations[0].kind, "data");
        assert_eq!(report.recommended_instances, 2);
        assert_eq!(report.monthly_cost, Some(80.0));
    }

    #[test]
    fn flat_traffic_never_crosses() {
        let fit = fit_growth(&series(30.0, 0.0, 0.0)).unwrap();
        assert_eq!(fit.days_until_factor(1.5), None);
        assert_eq!(fit.r_squared, 1.0);
    }

    #[test]
    fn a_resource_on_course_to_cross_is_flagged_with_its_date_and_sizing() {
        let report = recommend(&ScalingInput {
            daily_peaks: series(50.0, 0.10, 0.0),
            loads: vec![
                ResourceLoad {
                    resource: "cpu",
                    instance: "a".into(),
                    utilisation: 0.50,
                },
                ResourceLoad {
                    resource: "memory",
                    instance: "a".into(),
                    utilisation: 0.10,
                },
            ],
            instances: 2,
            instance_monthly_cost: Some(25.0),
            today: 20_027,
        });
        // 0.5 → 0.7 is a factor 1.4: ln 1.4 / (ln 1.1 / 7) ≈ 24.7 days: a warning.
        let cpu = report
            .recommendations
            .iter()
            .find(|r| r.kind == "capacity")
            .unwrap();
        assert_eq!(cpu.severity, Severity::Warning);
        let days = cpu.evidence["days_until_target"].as_f64().unwrap();
        assert!((days - 24.71).abs() < 0.1, "{days}");
        assert_eq!(
            report
                .recommendations
                .iter()
                .filter(|r| r.kind == "capacity")
                .count(),
            1,
            "memory at 10 % does not cross within 90 days"
        );
        // In 90 days CPU would be 0.5 × 1.1^(90/7) ≈ 1.70 of one instance's worth per instance:
        // 2 × 1.70 / 0.7 → 5 instances.
        assert_eq!(report.recommended_instances, 5);
        assert_eq!(report.monthly_cost, Some(125.0));
        assert_eq!(report.projections.len(), 3);
    }

    #[test]
    fn already_over_the_target_is_critical() {
        let report = recommend(&ScalingInput {
            daily_peaks: series(50.0, 0.02, 0.0),
            loads: vec![ResourceLoad {
                resource: "cpu",
                instance: "b".into(),
                utilisation: 0.85,
            }],
            instances: 1,
            ..Default::default()
        });
        let cpu = report
            .recommendations
            .iter()
            .find(|r| r.kind == "capacity")
            .unwrap();
        assert_eq!(cpu.severity, Severity::Critical);
        assert!(
            cpu.message.contains("over the 70 % target now"),
            "{}",
            cpu.message
        );
    }
}
