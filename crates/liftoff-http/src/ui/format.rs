//! How the dashboard writes numbers for people. The API answers rates as fractions 0–1; every
//! page shows them as percent through [`percent`], so one figure reads the same everywhere.

use liftoff_core::alerts::model::Metric;

/// `fraction` (0–1) as percent: one decimal and a no-break space before the sign
/// ("17.1 %"). Near the ends, where one decimal would hide what matters (an error rate of
/// 0.0078, an uptime of 99.95 %), two decimals, or three when two would still round to
/// 0 or 100 ("0.78 %", "99.95 %", "99.999 %"). Exactly 0 and 1 stay "0.0 %" and "100.0 %".
pub(crate) fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "—".to_owned();
    }
    let p = fraction * 100.0;
    let shows_as = |decimals: i32| {
        let scale = 10f64.powi(decimals);
        (p * scale).round() / scale
    };
    let inside = p > 0.0 && p < 100.0;
    let decimals = if inside && !(1.0..=99.0).contains(&p) {
        if (shows_as(2) == 0.0 || shows_as(2) == 100.0)
            && shows_as(3) != 0.0
            && shows_as(3) != 100.0
        {
            3
        } else {
            2
        }
    } else {
        1
    };
    format!("{p:.decimals$}\u{a0}%")
}

/// A value already in percent (0–100, as CPU, memory, disk and rollout percentages are kept)
/// in the same format as [`percent`].
pub(crate) fn percent_value(p: f64) -> String {
    percent(p / 100.0)
}

/// An alert metric's value in its unit: rates as percent, system readings (kept in percent)
/// the same way, latencies in milliseconds, counts and burn rates as numbers.
pub(crate) fn metric_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::ErrorRate | Metric::SuccessRate | Metric::CacheHitRate | Metric::FallbackRate => {
            percent(v)
        }
        Metric::CpuPercent | Metric::MemoryPercent | Metric::DiskPercent => percent_value(v),
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => format!("{v:.0}\u{a0}ms"),
        Metric::UptimeFailing
        | Metric::SloBurnRate
        | Metric::EventCount
        | Metric::RolloutRegressions
        | Metric::DeploymentRegression => {
            format!("{}", (v * 100.0).round() / 100.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_values_read_in_their_unit() {
        assert_eq!(metric_value(Metric::ErrorRate, 0.05), "5.0\u{a0}%");
        assert_eq!(metric_value(Metric::CpuPercent, 80.0), "80.0\u{a0}%");
        assert_eq!(metric_value(Metric::LatencyP95, 2000.0), "2000\u{a0}ms");
        assert_eq!(metric_value(Metric::EventCount, 12.0), "12");
        assert_eq!(metric_value(Metric::SloBurnRate, 14.4), "14.4");
    }

    #[test]
    fn one_decimal_and_more_only_near_the_ends() {
        let nbsp = |s: &str| s.replace(' ', "\u{a0}");
        for (fraction, shown) in [
            (0.0, "0.0 %"),
            (1.0, "100.0 %"),
            (0.75, "75.0 %"),
            (0.1709, "17.1 %"),
            (2.0 / 3.0, "66.7 %"),
            (0.0078, "0.78 %"),
            (0.05, "5.0 %"),
            (0.9995, "99.95 %"),
            (0.99999, "99.999 %"),
            (0.000_01, "0.001 %"),
            (0.994, "99.40 %"),
            (0.99, "99.0 %"),
            (0.01, "1.0 %"),
        ] {
            assert_eq!(percent(fraction), nbsp(shown), "{fraction}");
        }
        assert_eq!(percent(f64::NAN), "—");
        assert_eq!(percent_value(25.0), nbsp("25.0 %"));
    }
}
