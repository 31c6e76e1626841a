//! `POST /api/launch/initialize`: applies a preset across the domains it touches. The launch
//! settings (user limit, features), the features as flags (created when missing, every change
//! audited with the preset as its reason) and the preset's alert rules (created, or replaced
//! by name, so initialising twice never duplicates a rule).

use serde::Serialize;
use utoipa::ToSchema;

use super::presets::{Alerting, Environment, Preset, Thresholds};
use super::service::{InitializeInput, LaunchError, LaunchService};
use super::store::LaunchSettings;
use crate::alerts::AlertsService;
use crate::alerts::model::{Op, RuleInput, RuleScope, Severity};
use crate::auth::Actor;
use crate::flags::{FlagError, FlagKey, FlagService, NewFlag};

/// The most features (and beta features) one preset may name.
const MAX_FEATURES: usize = 200;
/// Rules a preset owns carry this name prefix.
pub const RULE_PREFIX: &str = "Launch: ";

/// What initialising did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Initialized {
    #[serde(flatten)]
    pub settings: LaunchSettings,
    /// Flags created for features that had none.
    pub flags_created: Vec<String>,
    /// Flags switched on.
    pub flags_enabled: Vec<String>,
    /// The preset's alert rules.
    pub rules: Vec<PresetRule>,
    /// Users the new limit admitted from the waitlist.
    pub admitted: Vec<String>,
}

/// One of the preset's alert rules after initialising.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PresetRule {
    pub name: String,
    pub enabled: bool,
}

/// The services a preset changes.
pub struct PresetTargets<'a> {
    pub launch: &'a LaunchService,
    pub flags: &'a FlagService,
    pub alerts: &'a AlertsService,
}

/// One preset rule: name, metric, comparison, threshold, severity.
struct RuleSpec {
    name: &'static str,
    metric: &'static str,
    op: Op,
    threshold: f64,
    severity: Severity,
    /// Error rate and response time: on from staging up; resources: production only.
    traffic: bool,
}

fn rule_specs(t: &Thresholds) -> Vec<RuleSpec> {
    let spec = |name, metric, op, threshold, severity, traffic| RuleSpec {
        name,
        metric,
        op,
        threshold,
        severity,
        traffic,
    };
    let warn = |b: &super::presets::Bounds| b.warning.unwrap_or(b.critical);
    vec![
        spec(
            "error rate warning",
            "error_rate",
            Op::Gt,
            warn(&t.error_rate),
            Severity::Warning,
            true,
        ),
        spec(
            "error rate critical",
            "error_rate",
            Op::Gt,
            t.error_rate.critical,
            Severity::Critical,
            true,
        ),
        spec(
            "response time warning",
            "latency_p95",
            Op::Gt,
            warn(&t.response_time_ms),
            Severity::Warning,
            true,
        ),
        spec(
            "response time critical",
            "latency_p95",
            Op::Gt,
            t.response_time_ms.critical,
            Severity::Critical,
            true,
        ),
        spec(
            "success rate critical",
            "success_rate",
            Op::Lt,
            0.95,
            Severity::Critical,
            true,
        ),
        spec(
            "CPU warning",
            "cpu_percent",
            Op::Gt,
            warn(&t.cpu) * 100.0,
            Severity::Warning,
            false,
        ),
        spec(
            "CPU critical",
            "cpu_percent",
            Op::Gt,
            t.cpu.critical * 100.0,
            Severity::Critical,
            false,
        ),
        spec(
            "memory warning",
            "memory_percent",
            Op::Gt,
            warn(&t.memory) * 100.0,
            Severity::Warning,
            false,
        ),
        spec(
            "memory critical",
            "memory_percent",
            Op::Gt,
            t.memory.critical * 100.0,
            Severity::Critical,
            false,
        ),
    ]
}

fn enabled_under(alerting: Alerting, spec: &RuleSpec) -> bool {
    match alerting {
        Alerting::CriticalOnly => spec.severity == Severity::Critical,
        Alerting::Moderate => spec.traffic,
        Alerting::Strict => true,
    }
}

fn feature_keys(field: &str, names: &[String]) -> Result<Vec<FlagKey>, LaunchError> {
    if names.len() > MAX_FEATURES {
        return Err(LaunchError::Invalid(format!(
            "`{field}` names at most {MAX_FEATURES} features"
        )));
    }
    names
        .iter()
        .map(|n| {
            FlagKey::try_from(n.clone())
                .map_err(|e| LaunchError::Invalid(format!("`{field}`: {e}")))
        })
        .collect()
}

impl PresetTargets<'_> {
    pub async fn initialize(
        &self,
        input: &InitializeInput,
        actor: &Actor,
    ) -> Result<Initialized, LaunchError> {
        let features = feature_keys("features", &input.features)?;
        let beta = feature_keys("beta_features", &input.beta_features)?;
        let preset = Preset::for_environment(input.environment, input.user_limit);
        let reason = format!(
            "launch preset `{}`",
            serde_json::to_value(input.environment)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        );
        let (settings, admitted) = self.launch.initialize(input, actor).await?;

        let mut flags_created = Vec::new();
        let mut flags_enabled = Vec::new();
        let mut wanted: Vec<FlagKey> = features.into_iter().chain(beta).collect();
        if preset.environment == Environment::Development {
            // Development runs with every feature on.
            for (key, _) in self.flags.catalog().flags.iter() {
                wanted.push(key.clone());
            }
        }
        wanted.sort();
        wanted.dedup();
        let catalog = self.flags.catalog();
        for key in wanted {
            let current = catalog
                .flags
                .iter()
                .find(|(k, _)| **k == key)
                .map(|(_, f)| f.enabled);
            match current {
                None => {
                    let created = self
                        .flags
                        .create(actor, new_flag(key.clone(), &reason))
                        .await;
                    match created {
                        Ok(_) => flags_created.push(key.to_string()),
                        // Created meanwhile by someone else: it exists, which is what we want.
                        Err(FlagError::Exists(_)) => {}
                        Err(e) => return Err(LaunchError::Sources(e.to_string())),
                    }
                }
                Some(false) => {
                    self.flags
                        .set_enabled(actor, key.as_str(), true, Some(reason.clone()))
                        .await
                        .map_err(|e| LaunchError::Sources(e.to_string()))?;
                    flags_enabled.push(key.to_string());
                }
                Some(true) => {}
            }
        }

        let existing = self
            .alerts
            .rules()
            .await
            .map_err(|e| LaunchError::Sources(e.to_string()))?;
        let mut rules = Vec::new();
        for spec in rule_specs(&preset.thresholds) {
            let name = format!("{RULE_PREFIX}{}", spec.name);
            let enabled = enabled_under(preset.alerting, &spec);
            let rule = RuleInput {
                name: name.clone(),
                metric: spec.metric.to_owned(),
                scope: RuleScope::default(),
                op: spec.op,
                threshold: Some(spec.threshold),
                for_seconds: 60,
                keep_firing_for_seconds: 0,
                severity: spec.severity,
                enabled,
                description: format!("Set by the {reason}."),
                slo: None,
            };
            let saved = match existing.iter().find(|r| r.name == name) {
                Some(r) => self.alerts.update_rule(actor, r.id, rule).await,
                None => self.alerts.create_rule(actor, rule).await,
            };
            saved.map_err(|e| LaunchError::Sources(e.to_string()))?;
            rules.push(PresetRule { name, enabled });
        }
        Ok(Initialized {
            settings,
            flags_created,
            flags_enabled,
            rules,
            admitted,
        })
    }
}

fn new_flag(key: FlagKey, reason: &str) -> NewFlag {
    NewFlag {
        name: None,
        description: format!("Created by the {reason}."),
        enabled: Some(true),
        strategy: Default::default(),
        percentage: None,
        user_whitelist: Vec::new(),
        user_blacklist: Vec::new(),
        attributes: Default::default(),
        variants: Vec::new(),
        rules: Vec::new(),
        segments: Vec::new(),
        dependencies: Vec::new(),
        environments: Default::default(),
        reason: Some(reason.to_owned()),
        flag_id: key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_enable_the_rules_their_alerting_asks_for() {
        let specs = rule_specs(&Thresholds::default());
        assert_eq!(specs.len(), 9);
        let on = |a| specs.iter().filter(|s| enabled_under(a, s)).count();
        assert_eq!(on(Alerting::CriticalOnly), 5);
        assert_eq!(on(Alerting::Moderate), 5);
        assert_eq!(on(Alerting::Strict), 9);
        let cpu = specs.iter().find(|s| s.name == "CPU critical").unwrap();
        assert_eq!(cpu.threshold, 90.0);
        let e = specs
            .iter()
            .find(|s| s.name == "error rate warning")
            .unwrap();
        assert_eq!(e.threshold, 0.03);
    }
}
