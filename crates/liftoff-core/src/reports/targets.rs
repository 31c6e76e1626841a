//! Targets a report judges figures against: the weekly report's (settings: uptime 99.9 %,
//! average response under 200 ms, errors under 1 % by default) and the launch's success
//! criteria use the same judgement.

use liftoff_report::numbers::{ms, share};
use liftoff_report::{Cell, Tone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a target's value must stand to its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    AtLeast,
    Below,
    Above,
}

impl Comparison {
    fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= target,
            Comparison::Below => value < target,
            Comparison::Above => value > target,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => "≥",
            Comparison::Below => "<",
            Comparison::Above => ">",
        }
    }
}

/// One target and how a figure stands against it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Target {
    /// `uptime`, `avg_response_time_ms`, `error_rate` or `average_rating`.
    pub metric: &'static str,
    /// Over the report's span; `null` without data.
    pub value: Option<f64>,
    pub target: f64,
    pub comparison: Comparison,
    /// `null` without data.
    pub met: Option<bool>,
}

impl Target {
    pub fn judge(
        metric: &'static str,
        value: Option<f64>,
        target: f64,
        comparison: Comparison,
    ) -> Self {
        let met = value.map(|v| comparison.holds(v, target));
        Self {
            metric,
            value,
            target,
            comparison,
            met,
        }
    }

    /// The value as the report writes it.
    pub fn shown(&self, v: f64) -> String {
        match self.metric {
            "uptime" | "error_rate" => share(v),
            "avg_response_time_ms" => ms(v),
            _ => format!("{v:.2}"),
        }
    }

    /// `≥ 99.90 %`, `< 200 ms`.
    pub fn wanted(&self) -> String {
        format!("{} {}", self.comparison.symbol(), self.shown(self.target))
    }

    /// `met`, `missed` or `no data`, coloured.
    pub fn status_cell(&self) -> Cell {
        match self.met {
            Some(true) => Cell::toned("met", Tone::Good),
            Some(false) => Cell::toned("missed", Tone::Bad),
            None => Cell::toned("no data", Tone::Neutral),
        }
    }

    pub fn label(&self) -> &'static str {
        match self.metric {
            "uptime" => "Uptime",
            "avg_response_time_ms" => "Average response time",
            "error_rate" => "Error rate",
            _ => "Average rating",
        }
    }
}

/// The weekly report's targets (`--target-uptime`, `--target-avg-response-ms`,
/// `--target-error-rate`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Targets {
    /// Fraction 0–1 of passing checks.
    pub uptime: f64,
    pub avg_response_time_ms: f64,
    /// Fraction 0–1 of requests answered 5xx.
    pub error_rate: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            uptime: 0.999,
            avg_response_time_ms: 200.0,
            error_rate: 0.01,
        }
    }
}

impl Targets {
    /// Refuses targets no figure could be judged by.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.uptime > 0.0 && self.uptime <= 1.0) {
            return Err("the uptime target is a fraction above 0 and at most 1 (0.999)".into());
        }
        if !(self.avg_response_time_ms.is_finite() && self.avg_response_time_ms > 0.0) {
            return Err("the average response target is a positive number of milliseconds".into());
        }
        if !(self.error_rate > 0.0 && self.error_rate < 1.0) {
            return Err("the error rate target is a fraction between 0 and 1 (0.01)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_by_their_comparison_and_without_data_are_unknown() {
        let t = Target::judge("uptime", Some(0.999), 0.999, Comparison::AtLeast);
        assert_eq!(t.met, Some(true));
        let t = Target::judge("error_rate", Some(0.01), 0.01, Comparison::Below);
        assert_eq!(t.met, Some(false));
        let t = Target::judge("average_rating", Some(4.0), 4.0, Comparison::Above);
        assert_eq!(t.met, Some(false));
        let t = Target::judge("uptime", None, 0.999, Comparison::AtLeast);
        assert_eq!(t.met, None);
        assert_eq!(t.wanted(), "≥ 99.90 %");
        assert!(Targets::default().validate().is_ok());
        let bad = Targets {
            uptime: 99.9,
            ..Targets::default()
        };
        assert!(bad.validate().is_err());
    }
}
