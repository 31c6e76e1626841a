//! [`Snapshot`]: compiled definitions, and the evaluation results it produces.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::compile::{Env, Feature, Pick, Variant, Variants};
use crate::context::Context;
use crate::defs::{ClientFeatures, Payload, SegmentDef};
use crate::fxhash::FxHashMap;

/// Why an evaluation came out as it did (OpenFeature reason names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// Enabled for everyone: no strategies, or an unconditional one matched; no variant split.
    Static,
    /// Enabled, but no strategy matched this context: off.
    Default,
    /// Targeting decided: constraints, segments, user ids, a partial rollout, a black/white list
    /// hit, or a variant override.
    TargetingMatch,
    /// A variant was drawn by weighted bucketing.
    Split,
    /// The flag is off, or a dependency is not met.
    Disabled,
    /// The flag does not exist.
    Error,
}

impl Reason {
    /// The OpenFeature spelling, e.g. `"TARGETING_MATCH"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The variant part of an evaluation, shaped like Unleash's `getVariant` answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantResult {
    /// `"disabled"` when no variant applies.
    pub name: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    pub feature_enabled: bool,
}

/// The answer for one flag and one context.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub enabled: bool,
    pub variant: VariantResult,
    pub reason: Reason,
    /// Whether the flag exists.
    pub found: bool,
}

/// Name of the variant reported when none applies.
pub const DISABLED_VARIANT: &str = "disabled";
/// The value a flag without a variant is served when it is on …
pub const ON: &str = "on";
/// … and when it is off.
pub const OFF: &str = "off";

impl Evaluation {
    /// The value served, as answers and request records name it: the variant, else `on` or
    /// `off` for a flag without one.
    pub fn served_value(&self) -> &str {
        served(self.variant.enabled, &self.variant.name, self.enabled)
    }

    /// The variant given, if one was (not `disabled`).
    pub fn given_variant(&self) -> Option<&str> {
        self.variant.enabled.then_some(self.variant.name.as_str())
    }
}

fn served(variant_enabled: bool, variant: &str, enabled: bool) -> &str {
    if variant_enabled {
        variant
    } else if enabled {
        ON
    } else {
        OFF
    }
}

/// An evaluation that borrows from its [`Snapshot`]: no allocation at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvaluationRef<'a> {
    pub enabled: bool,
    /// `"disabled"` when no variant applies.
    pub variant_name: &'a str,
    pub variant_enabled: bool,
    pub payload: Option<&'a Payload>,
    pub reason: Reason,
    pub found: bool,
}

impl<'a> EvaluationRef<'a> {
    /// [`Evaluation::served_value`], borrowed from the snapshot.
    pub fn served_value(&self) -> &'a str {
        served(self.variant_enabled, self.variant_name, self.enabled)
    }

    /// [`Evaluation::given_variant`], borrowed from the snapshot.
    pub fn given_variant(&self) -> Option<&'a str> {
        self.variant_enabled.then_some(self.variant_name)
    }

    /// The owned [`Evaluation`].
    pub fn to_evaluation(&self) -> Evaluation {
        Evaluation {
            enabled: self.enabled,
            variant: VariantResult {
                name: self.variant_name.to_owned(),
                enabled: self.variant_enabled,
                payload: self.payload.cloned(),
                feature_enabled: self.enabled,
            },
            reason: self.reason,
            found: self.found,
        }
    }
}

/// Compiled, immutable definitions: build once per definition change, share freely
/// (`Send + Sync`), evaluate from any thread.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    features: Vec<Feature>,
    index: FxHashMap<Box<str>, u32>,
}

/// What evaluating one feature produced, before it is turned into a public result.
struct Outcome<'a> {
    enabled: bool,
    reason: Reason,
    variant: Option<&'a Variant>,
}

impl<'a> Outcome<'a> {
    fn off(reason: Reason) -> Self {
        Outcome {
            enabled: false,
            reason,
            variant: None,
        }
    }

    fn variant_name(&self) -> &'a str {
        self.variant.map_or(DISABLED_VARIANT, |v| &*v.name)
    }
}

impl Snapshot {
    /// Compiles definitions. Never fails: what cannot be compiled never matches (unknown
    /// operators and strategies, invalid regexes or values, missing segments, missing or nested
    /// dependency parents). With duplicate feature names the last definition wins.
    pub fn compile(defs: &ClientFeatures) -> Snapshot {
        let mut order: Vec<&crate::defs::FeatureDef> = Vec::with_capacity(defs.features.len());
        let mut by_name: FxHashMap<&str, u32> = FxHashMap::default();
        for f in &defs.features {
            match by_name.get(f.name.as_str()) {
                Some(&i) => order[i as usize] = f,
                None => {
                    by_name.insert(f.name.as_str(), order.len() as u32);
                    order.push(f);
                }
            }
        }
        let segments: FxHashMap<i64, &SegmentDef> =
            defs.segments.iter().map(|s| (s.id, s)).collect();
        let has_dependencies = |i: u32| !order[i as usize].dependencies.is_empty();
        let features: Vec<Feature> = order
            .iter()
            .map(|f| Feature::compile(f, &by_name, &has_dependencies, &segments))
            .collect();
        let index = features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i as u32))
            .collect();
        Snapshot { features, index }
    }

    /// Evaluates `flag` for `ctx`. Reads the clock only when a `DATE_*` constraint on
    /// `currentTime` needs it and `ctx.current_time` is absent.
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> Evaluation {
        self.evaluate_ref(flag, ctx).to_evaluation()
    }

    /// [`Snapshot::evaluate`] with a fixed clock for `DATE_*` constraints.
    pub fn evaluate_at(&self, flag: &str, ctx: &Context, now: DateTime<Utc>) -> Evaluation {
        self.evaluate_ref_at(flag, ctx, Some(now)).to_evaluation()
    }

    /// [`Snapshot::evaluate`] without allocating: names and payloads borrow from the snapshot.
    pub fn evaluate_ref(&self, flag: &str, ctx: &Context) -> EvaluationRef<'_> {
        self.evaluate_ref_at(flag, ctx, None)
    }

    fn evaluate_ref_at(
        &self,
        flag: &str,
        ctx: &Context,
        now: Option<DateTime<Utc>>,
    ) -> EvaluationRef<'_> {
        let Some(&idx) = self.index.get(flag) else {
            return EvaluationRef {
                enabled: false,
                variant_name: DISABLED_VARIANT,
                variant_enabled: false,
                payload: None,
                reason: Reason::Error,
                found: false,
            };
        };
        let env = Env::new(ctx, now);
        let out = self.run(idx, &env, true);
        EvaluationRef {
            enabled: out.enabled,
            variant_name: out.variant_name(),
            variant_enabled: out.variant.is_some(),
            payload: out.variant.and_then(|v| v.payload.as_ref()),
            reason: out.reason,
            found: true,
        }
    }

    /// Just whether `flag` is on for `ctx` (no variant is drawn unless a dependency needs its
    /// parent's). Unknown flags are off.
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        match self.index.get(flag) {
            Some(&idx) => self.run(idx, &Env::new(ctx, None), false).enabled,
            None => false,
        }
    }

    /// Whether a flag of that name exists.
    pub fn contains(&self, flag: &str) -> bool {
        self.index.contains_key(flag)
    }

    /// Flag names, in definition order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| &*f.name)
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The flag's `impressionData` setting (false for unknown flags).
    pub fn impression_data(&self, flag: &str) -> bool {
        self.index
            .get(flag)
            .is_some_and(|&i| self.features[i as usize].impression_data)
    }

    fn dependencies_met(&self, feature: &Feature, env: &Env<'_>) -> bool {
        feature.dependencies.iter().all(|dep| {
            let Some(parent) = dep.parent else {
                return false;
            };
            // Parents have no dependencies of their own (compile made sure), so this recursion
            // is one level deep.
            let need_variant = dep.variants.is_some();
            let out = self.run(parent, env, need_variant);
            if out.enabled != dep.enabled {
                return false;
            }
            match &dep.variants {
                Some(expected) => expected.contains(out.variant_name()),
                None => true,
            }
        })
    }

    #[inline]
    fn run(&self, idx: u32, env: &Env<'_>, want_variant: bool) -> Outcome<'_> {
        let feature = &self.features[idx as usize];
        if !feature.enabled {
            return Outcome::off(Reason::Disabled);
        }
        if !feature.dependencies.is_empty() && !self.dependencies_met(feature, env) {
            return Outcome::off(Reason::Disabled);
        }
        let ctx = env.ctx;
        if let Some(user) = ctx.user_id.as_deref() {
            if feature.blacklist.as_ref().is_some_and(|l| l.contains(user)) {
                return Outcome::off(Reason::TargetingMatch);
            }
            if feature.whitelist.as_ref().is_some_and(|l| l.contains(user)) {
                return Self::with_variant(
                    Reason::TargetingMatch,
                    feature.variants.as_ref(),
                    ctx,
                    want_variant,
                );
            }
        }
        if feature.unconditional {
            return Self::with_variant(
                Reason::Static,
                feature.variants.as_ref(),
                ctx,
                want_variant,
            );
        }
        for strategy in feature.strategies.iter() {
            if strategy.matches(env) {
                let reason = if strategy.targeted {
                    Reason::TargetingMatch
                } else {
                    Reason::Static
                };
                let variants = strategy.variants.as_ref().or(feature.variants.as_ref());
                return Self::with_variant(reason, variants, ctx, want_variant);
            }
        }
        Outcome::off(Reason::Default)
    }

    #[inline]
    fn with_variant<'s>(
        reason: Reason,
        variants: Option<&'s Variants>,
        ctx: &Context,
        want_variant: bool,
    ) -> Outcome<'s> {
        let picked = match variants {
            Some(vs) if want_variant => vs.pick(ctx).map(|(v, how)| (v, how, vs.split)),
            _ => None,
        };
        match picked {
            None => Outcome {
                enabled: true,
                reason,
                variant: None,
            },
            Some((v, how, split)) => Outcome {
                enabled: true,
                reason: match how {
                    Pick::Override => Reason::TargetingMatch,
                    Pick::Bucket if split => Reason::Split,
                    Pick::Bucket => reason,
                },
                variant: Some(v),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Snapshot>();
    }

    #[test]
    fn reason_names() {
        assert_eq!(Reason::TargetingMatch.as_str(), "TARGETING_MATCH");
        assert_eq!(
            serde_json::to_string(&Reason::TargetingMatch)
                .ok()
                .as_deref(),
            Some("\"TARGETING_MATCH\"")
        );
    }
}
