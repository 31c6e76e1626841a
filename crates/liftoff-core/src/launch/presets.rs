//! Launch presets and the thresholds a launch is judged by. The production figures are the
//! launch playbook's (error rate 3 % / 5 %, response time 1,500 / 2,000 ms, success rate
//! below 95 %, CPU 80 / 90 %, memory 85 / 95 %).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The soft-launch user limit when production is initialised without one.
pub const DEFAULT_PRODUCTION_USER_LIMIT: u32 = 100;
/// Staging's user limit.
pub const STAGING_USER_LIMIT: u32 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = LaunchEnvironment)]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

/// How many alert rules a preset turns on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alerting {
    /// Critical rules only.
    CriticalOnly,
    /// Critical and warning rules on error rate and response time.
    Moderate,
    /// Every threshold below as a rule.
    Strict,
}

/// A warning and a critical bound; `higher_is_worse` says which way a value goes bad.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct Bounds {
    pub warning: Option<f64>,
    pub critical: f64,
    pub higher_is_worse: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Bounds {
    /// Where `value` falls: at or beyond a bound counts as reaching it.
    pub fn level(&self, value: f64) -> Level {
        let worse = |bound: f64| {
            if self.higher_is_worse {
                value >= bound
            } else {
                value <= bound
            }
        };
        if worse(self.critical) {
            Level::Critical
        } else if self.warning.is_some_and(worse) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// The launch's thresholds; rates and utilisations are fractions 0–1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct Thresholds {
    pub error_rate: Bounds,
    pub response_time_ms: Bounds,
    /// Success rate: critical below 95 %; no warning level.
    pub success_rate: Bounds,
    pub cpu: Bounds,
    pub memory: Bounds,
}

impl Default for Thresholds {
    fn default() -> Self {
        let up = |warning: f64, critical: f64| Bounds {
            warning: Some(warning),
            critical,
            higher_is_worse: true,
        };
        Self {
            error_rate: up(0.03, 0.05),
            response_time_ms: up(1_500.0, 2_000.0),
            // "Below 95 %": 0.95 itself is fine, so the bound sits just under it.
            success_rate: Bounds {
                warning: None,
                critical: 0.95 - 1e-9,
                higher_is_worse: false,
            },
            cpu: up(0.80, 0.90),
            memory: up(0.85, 0.95),
        }
    }
}

/// What `POST /api/launch/initialize` applies for an environment.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Preset {
    pub environment: Environment,
    /// `None`: no cap.
    pub user_limit: Option<u32>,
    /// Every flag on (development) or only the listed features.
    pub all_features_on: bool,
    pub alerting: Alerting,
    pub thresholds: Thresholds,
}

impl Preset {
    /// The preset for `environment`; `user_limit` applies to production only (staging is 50,
    /// development has none).
    pub fn for_environment(environment: Environment, user_limit: Option<u32>) -> Self {
        let (user_limit, all_features_on, alerting) = match environment {
            Environment::Development => (None, true, Alerting::CriticalOnly),
            Environment::Staging => (Some(STAGING_USER_LIMIT), false, Alerting::Moderate),
            Environment::Production => (
                Some(user_limit.unwrap_or(DEFAULT_PRODUCTION_USER_LIMIT)),
                false,
                Alerting::Strict,
            ),
        };
        Self {
            environment,
            user_limit,
            all_features_on,
            alerting,
            thresholds: Thresholds::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_playbook() {
        let dev = Preset::for_environment(Environment::Development, Some(10));
        assert_eq!(dev.user_limit, None);
        assert!(dev.all_features_on);
        assert_eq!(dev.alerting, Alerting::CriticalOnly);
        let staging = Preset::for_environment(Environment::Staging, Some(10));
        assert_eq!(staging.user_limit, Some(50));
        assert_eq!(staging.alerting, Alerting::Moderate);
        let prod = Preset::for_environment(Environment::Production, None);
        assert_eq!(prod.user_limit, Some(100));
        assert_eq!(prod.alerting, Alerting::Strict);
        assert_eq!(
            Preset::for_environment(Environment::Production, Some(250)).user_limit,
            Some(250)
        );
    }

    #[test]
    fn levels_follow_the_thresholds() {
        let t = Thresholds::default();
        assert_eq!(t.error_rate.level(0.029), Level::Ok);
        assert_eq!(t.error_rate.level(0.03), Level::Warning);
        assert_eq!(t.error_rate.level(0.05), Level::Critical);
        assert_eq!(t.response_time_ms.level(1_499.0), Level::Ok);
        assert_eq!(t.response_time_ms.level(2_500.0), Level::Critical);
        assert_eq!(t.success_rate.level(0.95), Level::Ok);
        assert_eq!(t.success_rate.level(0.949), Level::Critical);
        assert_eq!(t.cpu.level(0.85), Level::Warning);
        assert_eq!(t.memory.level(0.96), Level::Critical);
    }
}
