//! Whether a launch is ready: each check from live figures, pass / warn / fail. Pure: the
//! service gathers the figures (metrics, monitors, channels, rules, flags, disk, stores,
//! backups), this judges them.

use chrono::Duration;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::presets::{Level, Thresholds};

/// Free disk below this fraction fails the check.
pub const MIN_DISK_FREE: f64 = 0.20;
/// A backup older than this fails the check.
pub const MAX_BACKUP_AGE_HOURS: i64 = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    #[schema(value_type = serde_json::Value)]
    pub value: Value,
    #[schema(value_type = serde_json::Value)]
    pub threshold: Value,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Readiness {
    /// No check fails (warnings do not block).
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// The figures readiness is judged on.
#[derive(Clone, Debug, Default)]
pub struct ReadinessInput {
    /// Requests in the last hour and the fraction that failed (5xx); `None` without traffic.
    pub requests_last_hour: u64,
    pub error_rate: Option<f64>,
    pub p95_ms: Option<f64>,
    /// `(monitor name, up)`; paused monitors are left out by the caller.
    pub monitors: Vec<(String, bool)>,
    /// Notification channels whose last test delivery succeeded.
    pub tested_channels: usize,
    pub channels: usize,
    /// Critical alert rules, and how many of them are enabled.
    pub critical_rules: usize,
    pub critical_rules_enabled: usize,
    /// Beta features without a flag to switch them off.
    pub beta_features: Vec<String>,
    pub beta_features_without_flag: Vec<String>,
    /// Free fraction of the data directory's disk, when it could be read.
    pub disk_free: Option<f64>,
    /// `(store, answers)`.
    pub stores: Vec<(String, bool)>,
    /// Age of the newest backup, when there is one.
    pub backup_age: Option<Duration>,
}

fn check(
    name: &'static str,
    status: CheckStatus,
    value: Value,
    threshold: Value,
    detail: String,
) -> Check {
    Check {
        name,
        status,
        value,
        threshold,
        detail,
    }
}

fn from_level(level: Level) -> CheckStatus {
    match level {
        Level::Ok => CheckStatus::Pass,
        Level::Warning => CheckStatus::Warn,
        Level::Critical => CheckStatus::Fail,
    }
}

/// Every check, in a fixed order.
pub fn evaluate(input: &ReadinessInput, thresholds: &Thresholds) -> Readiness {
    let mut checks = Vec::with_capacity(9);
    checks.push(match input.error_rate {
        Some(rate) => check(
            "error_rate",
            from_level(thresholds.error_rate.level(rate)),
            json!(rate),
            json!({"warning": thresholds.error_rate.warning, "critical": thresholds.error_rate.critical}),
            format!(
                "{:.2} % of {} requests in the last hour failed",
                rate * 100.0,
                input.requests_last_hour
            ),
        ),
        None => check(
            "error_rate",
            CheckStatus::Warn,
            Value::Null,
            json!({"warning": thresholds.error_rate.warning, "critical": thresholds.error_rate.critical}),
            "No requests in the last hour: nothing to judge yet".into(),
        ),
    });
    checks.push(match input.p95_ms {
        Some(p95) => check(
            "p95_latency",
            from_level(thresholds.response_time_ms.level(p95)),
            json!(p95),
            json!({"warning": thresholds.response_time_ms.warning, "critical": thresholds.response_time_ms.critical}),
            format!("p95 response time over the last hour is {p95:.0} ms"),
        ),
        None => check(
            "p95_latency",
            CheckStatus::Warn,
            Value::Null,
            json!({"warning": thresholds.response_time_ms.warning, "critical": thresholds.response_time_ms.critical}),
            "No requests in the last hour: nothing to judge yet".into(),
        ),
    });
    let down: Vec<&str> = input
        .monitors
        .iter()
        .filter(|m| !m.1)
        .map(|m| m.0.as_str())
        .collect();
    checks.push(check(
        "uptime_monitors",
        if input.monitors.is_empty() {
            CheckStatus::Warn
        } else if down.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        json!({"monitors": input.monitors.len(), "down": down}),
        json!("every monitor up"),
        if input.monitors.is_empty() {
            "No uptime monitor: add one for each public endpoint".into()
        } else if down.is_empty() {
            format!("All {} monitors are up", input.monitors.len())
        } else {
            format!("Down: {}", down.join(", "))
        },
    ));
    checks.push(check(
        "notification_channel",
        if input.tested_channels > 0 {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        json!({"channels": input.channels, "tested": input.tested_channels}),
        json!("at least 1 channel whose test passed"),
        if input.tested_channels > 0 {
            format!("{} channel(s) passed their test", input.tested_channels)
        } else if input.channels > 0 {
            "No channel has passed a test: send a test notification".into()
        } else {
            "No notification channel: alerts would page nobody".into()
        },
    ));
    let disabled = input.critical_rules - input.critical_rules_enabled.min(input.critical_rules);
    checks.push(check(
        "critical_alert_rules",
        if input.critical_rules == 0 || disabled > 0 {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        },
        json!({"critical": input.critical_rules, "enabled": input.critical_rules_enabled}),
        json!("every critical rule enabled, at least 1"),
        if input.critical_rules == 0 {
            "No critical alert rule: initialise a preset or add one".into()
        } else if disabled > 0 {
            format!("{disabled} critical rule(s) disabled")
        } else {
            format!("All {} critical rules are enabled", input.critical_rules)
        },
    ));
    checks.push(check(
        "kill_switches",
        if input.beta_features_without_flag.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        json!({"beta_features": input.beta_features, "without_flag": input.beta_features_without_flag}),
        json!("a flag for every beta feature"),
        if input.beta_features_without_flag.is_empty() {
            format!(
                "Every beta feature ({}) can be switched off",
                input.beta_features.len()
            )
        } else {
            format!(
                "No flag to switch off: {}",
                input.beta_features_without_flag.join(", ")
            )
        },
    ));
    checks.push(match input.disk_free {
        Some(free) => check(
            "disk_free",
            if free >= MIN_DISK_FREE {
                CheckStatus::Pass
            } else {
                CheckStatus::Fail
            },
            json!(free),
            json!(MIN_DISK_FREE),
            format!("{:.0} % of the data disk is free", free * 100.0),
        ),
        None => check(
            "disk_free",
            CheckStatus::Warn,
            Value::Null,
            json!(MIN_DISK_FREE),
            "The data disk's free space could not be read".into(),
        ),
    });
    let failing: Vec<&str> = input
        .stores
        .iter()
        .filter(|s| !s.1)
        .map(|s| s.0.as_str())
        .collect();
    checks.push(check(
        "stores",
        if failing.is_empty() {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        json!({"stores": input.stores.len(), "unreachable": failing}),
        json!("every store answers"),
        if failing.is_empty() {
            "Every store answers".into()
        } else {
            format!("Unreachable: {}", failing.join(", "))
        },
    ));
    let max_age = Duration::hours(MAX_BACKUP_AGE_HOURS);
    checks.push(match input.backup_age {
        Some(age) => check(
            "backup",
            if age <= max_age {
                CheckStatus::Pass
            } else {
                CheckStatus::Fail
            },
            json!(age.num_seconds() as f64 / 3600.0),
            json!(MAX_BACKUP_AGE_HOURS),
            format!(
                "The newest backup is {:.1} hours old",
                age.num_seconds() as f64 / 3600.0
            ),
        ),
        None => check(
            "backup",
            CheckStatus::Fail,
            Value::Null,
            json!(MAX_BACKUP_AGE_HOURS),
            "No backup: run `liftoff backup --output FILE`".into(),
        ),
    });
    Readiness {
        ready: checks.iter().all(|c| c.status != CheckStatus::Fail),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> ReadinessInput {
        ReadinessInput {
            requests_last_hour: 1_000,
            error_rate: Some(0.004),
            p95_ms: Some(320.0),
            monitors: vec![("api".into(), true)],
            tested_channels: 1,
            channels: 2,
            critical_rules: 3,
            critical_rules_enabled: 3,
            beta_features: vec!["new-editor".into()],
            beta_features_without_flag: vec![],
            disk_free: Some(0.55),
            stores: vec![("state".into(), true), ("events".into(), true)],
            backup_age: Some(Duration::hours(3)),
        }
    }

    fn status(r: &Readiness, name: &str) -> CheckStatus {
        r.checks.iter().find(|c| c.name == name).unwrap().status
    }

    #[test]
    fn a_healthy_launch_is_ready() {
        let r = evaluate(&healthy(), &Thresholds::default());
        assert!(r.ready, "{:#?}", r.checks);
        assert_eq!(r.checks.len(), 9);
        assert!(r.checks.iter().all(|c| c.status == CheckStatus::Pass));
    }

    #[test]
    fn ten_percent_errors_fail_and_each_gap_fails_its_check() {
        let t = Thresholds::default();
        let mut input = healthy();
        input.error_rate = Some(0.10);
        let r = evaluate(&input, &t);
        assert!(!r.ready);
        assert_eq!(status(&r, "error_rate"), CheckStatus::Fail);
        input.error_rate = Some(0.035);
        assert_eq!(
            status(&evaluate(&input, &t), "error_rate"),
            CheckStatus::Warn
        );
        assert!(evaluate(&input, &t).ready, "a warning does not block");

        type Spoil = Box<dyn Fn(&mut ReadinessInput)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("p95_latency", Box::new(|i| i.p95_ms = Some(2_400.0))),
            (
                "uptime_monitors",
                Box::new(|i| i.monitors.push(("web".into(), false))),
            ),
            ("notification_channel", Box::new(|i| i.tested_channels = 0)),
            (
                "critical_alert_rules",
                Box::new(|i| i.critical_rules_enabled = 2),
            ),
            ("critical_alert_rules", Box::new(|i| i.critical_rules = 0)),
            (
                "kill_switches",
                Box::new(|i| i.beta_features_without_flag = vec!["x".into()]),
            ),
            ("disk_free", Box::new(|i| i.disk_free = Some(0.19))),
            ("stores", Box::new(|i| i.stores[1].1 = false)),
            (
                "backup",
                Box::new(|i| i.backup_age = Some(Duration::hours(25))),
            ),
            ("backup", Box::new(|i| i.backup_age = None)),
        ];
        for (name, spoil) in cases {
            let mut input = healthy();
            spoil(&mut input);
            let r = evaluate(&input, &t);
            assert_eq!(status(&r, name), CheckStatus::Fail, "{name}");
            assert!(!r.ready, "{name}");
        }
    }

    #[test]
    fn no_traffic_warns_instead_of_guessing() {
        let mut input = healthy();
        input.error_rate = None;
        input.p95_ms = None;
        let r = evaluate(&input, &Thresholds::default());
        assert_eq!(status(&r, "error_rate"), CheckStatus::Warn);
        assert_eq!(status(&r, "p95_latency"), CheckStatus::Warn);
        assert!(r.ready);
    }
}
