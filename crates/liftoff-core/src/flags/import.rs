//! Unleash feature JSON into Liftoff flags, so a team moves over without rewriting rules.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use liftoff_eval::{ClientFeatures, FeatureDef, SegmentDef};
use serde_json::Value;

use super::model::{Flag, FlagKey, FlagVariant, StrategyKind};

/// One Unleash feature as a Liftoff flag. Segments are inlined into the strategies that use
/// them (a segment is an AND of constraints, like a strategy's own); a strategy naming a
/// missing segment can never match and is dropped. `Err` names the problem.
pub fn flag_from_unleash(
    f: &FeatureDef,
    segments: &HashMap<i64, &SegmentDef>,
    now: DateTime<Utc>,
) -> Result<Flag, String> {
    let key = FlagKey::try_from(f.name.clone())?;
    let mut rules = Vec::with_capacity(f.strategies.len());
    for s in &f.strategies {
        let mut s = s.clone();
        let mut complete = true;
        for id in std::mem::take(&mut s.segments) {
            match segments.get(&id) {
                Some(seg) => s.constraints.extend(seg.constraints.iter().cloned()),
                None => complete = false,
            }
        }
        if complete {
            rules.push(s);
        }
    }
    Ok(Flag {
        flag_id: key,
        name: f.name.clone(),
        description: f.description.clone().unwrap_or_default(),
        enabled: f.enabled,
        // Unleash serves a feature without strategies to everyone.
        strategy: if f.strategies.is_empty() {
            StrategyKind::AllUsers
        } else {
            StrategyKind::Rules
        },
        percentage: 100.0,
        user_whitelist: f.whitelist.clone(),
        user_blacklist: f.blacklist.clone(),
        attributes: BTreeMap::new(),
        variants: f
            .variants
            .iter()
            .map(|v| FlagVariant {
                name: v.name.clone(),
                weight: v.weight,
                weight_type: v.weight_type.clone(),
                payload: v.payload.as_ref().map(|p| match p.kind.as_str() {
                    "json" => serde_json::from_str(&p.value)
                        .unwrap_or_else(|_| Value::String(p.value.clone())),
                    "number" => serde_json::from_str(&p.value)
                        .unwrap_or_else(|_| Value::String(p.value.clone())),
                    _ => Value::String(p.value.clone()),
                }),
                stickiness: v.stickiness.clone(),
                overrides: v.overrides.clone(),
            })
            .collect(),
        rules,
        segments: Vec::new(),
        dependencies: f.dependencies.clone(),
        environments: BTreeMap::new(),
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

/// Every feature of an Unleash export, stamped `now`; features that cannot be flags are
/// reported by name.
pub fn flags_from_unleash(
    features: &ClientFeatures,
    now: DateTime<Utc>,
) -> (Vec<Flag>, Vec<String>) {
    let segments: HashMap<i64, &SegmentDef> = features.segments.iter().map(|s| (s.id, s)).collect();
    let mut flags = Vec::new();
    let mut problems = Vec::new();
    for f in &features.features {
        match flag_from_unleash(f, &segments, now) {
            Ok(flag) => flags.push(flag),
            Err(e) => problems.push(format!("{}: {e}", f.name)),
        }
    }
    (flags, problems)
}
