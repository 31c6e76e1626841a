//! A flag as people manage it: the seed's simple face (`strategy`, `percentage`, white- and
//! blacklists, required attributes, variants) over the full rule model (ordered strategies with
//! constraints, dependencies), with a state per environment.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use liftoff_eval::{
    ConstraintDef, DependencyDef, FeatureDef, OverrideDef, Payload, StrategyDef, VariantDef,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A flag key: 1–200 characters, no white space, control characters or `/`; `stats` and
/// `user` are taken by routes, and keys starting `liftoff.` by launch state
/// (`liftoff.maintenance`, `liftoff.admitted`). Unicode is allowed, as Unleash allows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "new-checkout",
    pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f/?#%]{1,200}$")]
pub struct FlagKey(String);

impl TryFrom<String> for FlagKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = (1..=200).contains(&s.chars().count())
            && s.chars().all(|c| {
                !c.is_whitespace() && !c.is_control() && !matches!(c, '/' | '?' | '#' | '%')
            })
            && !matches!(s.as_str(), "stats" | "user")
            && !s.starts_with("liftoff.");
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "invalid flag id `{}`: use 1 to 200 characters without spaces, `/`, `?`, `#` or `%` (`stats`, `user` and keys starting `liftoff.` are reserved)",
                s.chars().take(120).collect::<String>()
            ))
        }
    }
}

impl From<FlagKey> for String {
    fn from(k: FlagKey) -> String {
        k.0
    }
}

impl FlagKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Derived `Ord` and `Hash` on the one `String` field agree with `str`'s, so a map keyed by
/// `FlagKey` can be asked with a `&str`.
impl std::borrow::Borrow<str> for FlagKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 3] = [
        Environment::Development,
        Environment::Staging,
        Environment::Production,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    /// Accepts the full names and the usual short forms (`dev`, `stage`, `prod`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Some(Environment::Development),
            "staging" | "stage" => Some(Environment::Staging),
            "production" | "prod" => Some(Environment::Production),
            _ => None,
        }
    }
}

/// The simple face of targeting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Everyone (subject to the black- and whitelists).
    #[default]
    AllUsers,
    /// A stable share of users, by `percentage`.
    Percentage,
    /// Only the users in `user_whitelist`.
    UserList,
    /// Users whose attributes match every entry of `attributes`.
    UserAttribute,
    /// A percentage raised step by step by a rollout plan.
    Gradual,
    /// Only the advanced `rules` decide (imported Unleash flags); no rule matching means off.
    Rules,
}

impl StrategyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::AllUsers => "all_users",
            StrategyKind::Percentage => "percentage",
            StrategyKind::UserList => "user_list",
            StrategyKind::UserAttribute => "user_attribute",
            StrategyKind::Gradual => "gradual",
            StrategyKind::Rules => "rules",
        }
    }
}

/// A flag's state in one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentState {
    pub enabled: bool,
    /// Overrides the flag's `percentage` in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlagVariant {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Relative weight; shares are weight / sum of weights.
    #[schema(maximum = 1000000)]
    pub weight: u32,
    /// Any JSON value handed to the app with this variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// `variable` (default) shares what is left; `fix` holds its weight out of 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// Context field that keeps a user on one variant (default: user id, then session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// Users (or other context values) always given this variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub overrides: Vec<OverrideDef>,
}

/// A flag as stored and served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Flag {
    pub flag_id: FlagKey,
    pub name: String,
    pub description: String,
    /// The master switch: off here is off everywhere, at the next evaluation.
    pub enabled: bool,
    pub strategy: StrategyKind,
    /// 0–100, decimals allowed; used by `percentage` and `gradual`.
    pub percentage: f64,
    pub user_whitelist: Vec<String>,
    pub user_blacklist: Vec<String>,
    /// Required attribute values: a string, or a list of accepted strings.
    pub attributes: BTreeMap<String, Value>,
    pub variants: Vec<FlagVariant>,
    /// Advanced rules: Unleash strategies (with constraints) tried after the simple strategy.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<StrategyDef>,
    /// Segment ids the simple strategy is limited to: users must be in all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<i64>,
    /// Flags this one needs: `{feature, enabled?, variants?}`.
    #[schema(value_type = Vec<Object>)]
    pub dependencies: Vec<DependencyDef>,
    pub environments: BTreeMap<Environment, EnvironmentState>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change; used for optimistic concurrency.
    pub version: i64,
}

impl Flag {
    /// The effective state in `env`: the master switch and the environment's own switch.
    pub fn enabled_in(&self, env: Environment) -> bool {
        self.enabled && self.environments.get(&env).is_none_or(|s| s.enabled)
    }

    pub fn percentage_in(&self, env: Environment) -> f64 {
        self.environments
            .get(&env)
            .and_then(|s| s.percentage)
            .unwrap_or(self.percentage)
    }

    /// The Unleash feature definition this flag evaluates as in `env`.
    pub fn to_feature(&self, env: Environment) -> FeatureDef {
        let mut strategies = Vec::with_capacity(1 + self.rules.len());
        let pct = self.percentage_in(env);
        let strategy = |name: &str,
                        parameters: BTreeMap<String, String>,
                        constraints: Vec<ConstraintDef>| StrategyDef {
            name: name.to_owned(),
            parameters,
            constraints,
            segments: self.segments.clone(),
            ..Default::default()
        };
        match self.strategy {
            StrategyKind::AllUsers => strategies.push(strategy("default", BTreeMap::new(), vec![])),
            StrategyKind::Percentage | StrategyKind::Gradual => {
                let params = BTreeMap::from([
                    ("rollout".to_owned(), format_percentage(pct)),
                    ("stickiness".to_owned(), "default".to_owned()),
                    ("groupId".to_owned(), self.flag_id.0.clone()),
                ]);
                strategies.push(strategy("flexibleRollout", params, vec![]));
            }
            // The whitelist is checked before strategies; nobody else is in.
            StrategyKind::UserList | StrategyKind::Rules => {}
            StrategyKind::UserAttribute => {
                let constraints = self
                    .attributes
                    .iter()
                    .map(|(name, value)| ConstraintDef {
                        context_name: name.clone(),
                        operator: "IN".to_owned(),
                        values: attribute_values(value),
                        ..Default::default()
                    })
                    .collect();
                strategies.push(strategy("default", BTreeMap::new(), constraints));
            }
        }
        strategies.extend(self.rules.iter().cloned());
        // A user list with no other rule must not fall back to "everyone".
        if strategies.is_empty() {
            strategies.push(strategy(
                "userWithId",
                BTreeMap::from([("userIds".to_owned(), String::new())]),
                vec![],
            ));
        }
        FeatureDef {
            name: self.flag_id.0.clone(),
            enabled: self.enabled_in(env),
            description: Some(self.description.clone()).filter(|d| !d.is_empty()),
            strategies,
            variants: self.variants.iter().map(variant_def).collect(),
            dependencies: self.dependencies.clone(),
            blacklist: self.user_blacklist.clone(),
            whitelist: self.user_whitelist.clone(),
            ..Default::default()
        }
    }
}

fn format_percentage(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

fn attribute_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(scalar_string).collect(),
        other => vec![scalar_string(other)],
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn variant_def(v: &FlagVariant) -> VariantDef {
    VariantDef {
        name: v.name.clone(),
        weight: v.weight,
        weight_type: v.weight_type.clone(),
        stickiness: v.stickiness.clone(),
        payload: v.payload.as_ref().map(|p| match p {
            Value::String(s) => Payload {
                kind: "string".to_owned(),
                value: s.clone(),
            },
            Value::Number(n) => Payload {
                kind: "number".to_owned(),
                value: n.to_string(),
            },
            other => Payload {
                kind: "json".to_owned(),
                value: other.to_string(),
            },
        }),
        overrides: v.overrides.clone(),
    }
}

/// The payload a variant was given, back as JSON.
pub fn payload_value(p: &Payload) -> Value {
    match p.kind.as_str() {
        "json" => serde_json::from_str(&p.value).unwrap_or_else(|_| Value::String(p.value.clone())),
        "number" => {
            serde_json::from_str(&p.value).unwrap_or_else(|_| Value::String(p.value.clone()))
        }
        _ => Value::String(p.value.clone()),
    }
}
