//! What people send to create or change a flag, and its validation into a [`Flag`].

use std::collections::BTreeMap;

use liftoff_eval::{DependencyDef, StrategyDef};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::model::{Environment, EnvironmentState, Flag, FlagKey, FlagVariant, StrategyKind};

pub const MAX_VARIANTS: usize = 100;
pub const MAX_LIST: usize = 10_000;
pub const MAX_RULES: usize = 50;

/// A new flag. Only `flag_id` is required.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewFlag {
    pub flag_id: FlagKey,
    /// Defaults to the flag id.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Defaults to true.
    pub enabled: Option<bool>,
    #[serde(default)]
    pub strategy: StrategyKind,
    /// 0–100, decimals allowed. Defaults to 100 for `all_users`, else 0.
    pub percentage: Option<f64>,
    #[serde(default)]
    pub user_whitelist: Vec<String>,
    #[serde(default)]
    pub user_blacklist: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    #[serde(default)]
    pub variants: Vec<FlagVariant>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<StrategyDef>,
    /// Segment ids the simple strategy is limited to.
    #[serde(default)]
    pub segments: Vec<i64>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub dependencies: Vec<DependencyDef>,
    /// Per-environment state; environments left out are enabled and follow `percentage`.
    #[serde(default)]
    pub environments: BTreeMap<Environment, EnvironmentState>,
    /// Why; kept in the audit log.
    pub reason: Option<String>,
}

/// A change to a flag: only the fields present change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct FlagPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub strategy: Option<StrategyKind>,
    pub percentage: Option<f64>,
    pub user_whitelist: Option<Vec<String>>,
    pub user_blacklist: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, Value>>,
    pub variants: Option<Vec<FlagVariant>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<Vec<StrategyDef>>,
    pub segments: Option<Vec<i64>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub dependencies: Option<Vec<DependencyDef>>,
    /// Merged per environment: environments left out keep their state.
    pub environments: Option<BTreeMap<Environment, EnvironmentState>>,
    /// Why; kept in the audit log.
    pub reason: Option<String>,
}

impl FlagPatch {
    pub fn apply(self, flag: &mut Flag) {
        let FlagPatch {
            name,
            description,
            enabled,
            strategy,
            percentage,
            user_whitelist,
            user_blacklist,
            attributes,
            variants,
            rules,
            segments,
            dependencies,
            environments,
            reason: _,
        } = self;
        // A percentage for an all-users flag means a percentage rollout from now on.
        if percentage.is_some() && strategy.is_none() && flag.strategy == StrategyKind::AllUsers {
            flag.strategy = StrategyKind::Percentage;
        }
        macro_rules! set {
            ($($field:ident <- $value:expr),+) => { $( if let Some(v) = $value { flag.$field = v; } )+ };
        }
        set!(name <- name, description <- description, enabled <- enabled, strategy <- strategy,
             percentage <- percentage, user_whitelist <- user_whitelist, user_blacklist <- user_blacklist,
             attributes <- attributes, variants <- variants, rules <- rules, segments <- segments,
             dependencies <- dependencies);
        if let Some(envs) = environments {
            flag.environments.extend(envs);
        }
    }
}

/// Every problem with a flag definition, each naming its field.
pub fn validate(flag: &Flag) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, msg: String| {
        if !ok {
            problems.push(msg);
        }
    };
    check(
        !flag.name.trim().is_empty() && flag.name.chars().count() <= 200,
        "name: must be 1 to 200 characters".into(),
    );
    check(
        flag.description.chars().count() <= 2000,
        "description: at most 2000 characters".into(),
    );
    let pct_ok = |p: f64| p.is_finite() && (0.0..=100.0).contains(&p);
    check(
        pct_ok(flag.percentage),
        format!("percentage: {} is not between 0 and 100", flag.percentage),
    );
    for (env, state) in &flag.environments {
        if let Some(p) = state.percentage {
            check(
                pct_ok(p),
                format!(
                    "environments.{}.percentage: {p} is not between 0 and 100",
                    env.as_str()
                ),
            );
        }
    }
    for (field, list) in [
        ("user_whitelist", &flag.user_whitelist),
        ("user_blacklist", &flag.user_blacklist),
    ] {
        check(
            list.len() <= MAX_LIST,
            format!("{field}: at most {MAX_LIST} users"),
        );
        check(
            list.iter().all(|u| !u.is_empty() && u.len() <= 256),
            format!("{field}: user ids must be 1 to 256 bytes"),
        );
    }
    check(
        flag.attributes.len() <= 100,
        "attributes: at most 100".into(),
    );
    for (name, value) in &flag.attributes {
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
        let ok = match value {
            Value::Array(items) => {
                !items.is_empty() && items.len() <= 1000 && items.iter().all(scalar)
            }
            v => scalar(v),
        };
        check(
            ok,
            format!(
                "attributes.{name}: must be a string, number, boolean or a non-empty list of them"
            ),
        );
    }
    if flag.strategy == StrategyKind::UserAttribute {
        check(
            !flag.attributes.is_empty(),
            "attributes: the user_attribute strategy needs at least one attribute".into(),
        );
    }
    check(
        flag.variants.len() <= MAX_VARIANTS,
        format!(
            "variants: at most {MAX_VARIANTS} (got {})",
            flag.variants.len()
        ),
    );
    let mut names = std::collections::BTreeSet::new();
    for (i, v) in flag.variants.iter().enumerate() {
        check(
            !v.name.is_empty() && v.name.len() <= 100,
            format!("variants[{i}].name: must be 1 to 100 characters"),
        );
        check(
            names.insert(v.name.as_str()),
            format!("variants[{i}].name: `{}` is used twice", v.name),
        );
        check(
            v.weight <= 1_000_000,
            format!("variants[{i}].weight: at most 1000000"),
        );
    }
    if !flag.variants.is_empty() {
        check(
            flag.variants.iter().any(|v| v.weight > 0),
            "variants: at least one weight must be above 0".into(),
        );
    }
    check(
        flag.rules.len() <= MAX_RULES,
        format!("rules: at most {MAX_RULES}"),
    );
    check(
        flag.dependencies
            .iter()
            .all(|d| d.feature != flag.flag_id.as_str()),
        "dependencies: a flag cannot depend on itself".into(),
    );
    if problems.is_empty() {
        // The rule model's own checks (operators, regexes, values, rollout parameters) on the
        // advanced rules, named as the user wrote them: `rules[i]`.
        let mut feature = flag.to_feature(Environment::Production);
        feature.strategies = flag.rules.clone();
        if let Err(errors) = liftoff_eval::validate(&feature) {
            problems.extend(
                errors
                    .iter()
                    .map(|e| e.to_string().replace("strategies[", "rules[")),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
