//! Flag definitions: the Unleash client-features JSON shape (plus Liftoff's black/white lists),
//! parsed leniently so real Unleash exports load, and the delta-API events that patch them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A full set of definitions: what Unleash's `/api/client/features` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeatures {
    #[serde(default = "default_version", deserialize_with = "lenient_u32_or_2")]
    pub version: u32,
    #[serde(default, deserialize_with = "null_default")]
    pub features: Vec<FeatureDef>,
    #[serde(default, deserialize_with = "null_default")]
    pub segments: Vec<SegmentDef>,
}

fn default_version() -> u32 {
    2
}

impl Default for ClientFeatures {
    fn default() -> Self {
        ClientFeatures {
            version: default_version(),
            features: Vec::new(),
            segments: Vec::new(),
        }
    }
}

/// One feature flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDef {
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub strategies: Vec<StrategyDef>,
    #[serde(default, deserialize_with = "null_default")]
    pub variants: Vec<VariantDef>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependencies: Vec<DependencyDef>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub impression_data: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// Liftoff extension: user ids always off (checked before the whitelist and strategies).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub blacklist: Vec<String>,
    /// Liftoff extension: user ids always on (checked before strategies).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub whitelist: Vec<String>,
}

/// An activation strategy. Parameters are strings; numbers and booleans in the JSON are
/// accepted and kept as their text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyDef {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub constraints: Vec<ConstraintDef>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segments: Vec<i64>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub variants: Vec<VariantDef>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A constraint on one context field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintDef {
    pub context_name: String,
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "lenient_string_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
    #[serde(
        default,
        deserialize_with = "lenient_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub inverted: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub case_insensitive: bool,
}

/// A variant of a feature or of a strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantDef {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub weight: u32,
    /// `"variable"` (the default) or `"fix"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub overrides: Vec<OverrideDef>,
}

/// A variant's payload. `kind` is `string`, `json`, `csv` or `number`; `value` is always text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "lenient_string")]
    pub value: String,
}

/// Forces a variant for the listed values of one context field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideDef {
    pub context_name: String,
    #[serde(default, deserialize_with = "lenient_string_vec")]
    pub values: Vec<String>,
}

/// A dependency on a parent feature (one level deep).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DependencyDef {
    pub feature: String,
    /// Expected parent state; `None` means enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// When non-empty, the parent's variant must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
}

/// A reusable list of constraints, referenced from strategies by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDef {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub constraints: Vec<ConstraintDef>,
}

/// One event of Unleash's delta API (`/api/client/delta`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeltaEvent {
    /// Replaces everything.
    #[serde(rename_all = "camelCase")]
    Hydration {
        #[serde(default)]
        event_id: Option<i64>,
        #[serde(default, deserialize_with = "null_default")]
        features: Vec<FeatureDef>,
        #[serde(default, deserialize_with = "null_default")]
        segments: Vec<SegmentDef>,
    },
    /// Adds or replaces one feature (matched by name).
    #[serde(rename_all = "camelCase")]
    FeatureUpdated {
        #[serde(default)]
        event_id: Option<i64>,
        feature: FeatureDef,
    },
    /// Removes one feature.
    #[serde(rename_all = "camelCase")]
    FeatureRemoved {
        #[serde(default)]
        event_id: Option<i64>,
        feature_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
    },
    /// Adds or replaces one segment (matched by id).
    #[serde(rename_all = "camelCase")]
    SegmentUpdated {
        #[serde(default)]
        event_id: Option<i64>,
        segment: SegmentDef,
    },
    /// Removes one segment.
    #[serde(rename_all = "camelCase")]
    SegmentRemoved {
        #[serde(default)]
        event_id: Option<i64>,
        segment_id: i64,
    },
}

/// A delta-API response body: `{"events": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientFeaturesDelta {
    #[serde(default, deserialize_with = "null_default")]
    pub events: Vec<DeltaEvent>,
}

impl ClientFeatures {
    /// Applies delta-API events in order.
    pub fn apply_delta(&mut self, events: &[DeltaEvent]) {
        for event in events {
            self.apply_event(event);
        }
    }

    /// Applies one delta-API event.
    pub fn apply_event(&mut self, event: &DeltaEvent) {
        match event {
            DeltaEvent::Hydration {
                features, segments, ..
            } => {
                self.features = features.clone();
                self.segments = segments.clone();
            }
            DeltaEvent::FeatureUpdated { feature, .. } => {
                match self.features.iter_mut().find(|f| f.name == feature.name) {
                    Some(existing) => *existing = feature.clone(),
                    None => self.features.push(feature.clone()),
                }
            }
            DeltaEvent::FeatureRemoved { feature_name, .. } => {
                self.features.retain(|f| &f.name != feature_name);
            }
            DeltaEvent::SegmentUpdated { segment, .. } => {
                match self.segments.iter_mut().find(|s| s.id == segment.id) {
                    Some(existing) => *existing = segment.clone(),
                    None => self.segments.push(segment.clone()),
                }
            }
            DeltaEvent::SegmentRemoved { segment_id, .. } => {
                self.segments.retain(|s| s.id != *segment_id);
            }
        }
    }

    /// Builds definitions from nothing by applying events (a delta stream starting with
    /// `hydration`).
    pub fn from_delta(events: &[DeltaEvent]) -> ClientFeatures {
        let mut features = ClientFeatures::default();
        features.apply_delta(events);
        features
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `null` → `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Text of a JSON scalar: strings as they are, numbers and booleans as written.
fn scalar_text(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_text(serde_json::Value::deserialize(d)?).unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_text(serde_json::Value::deserialize(d)?))
}

fn lenient_string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(values.into_iter().filter_map(scalar_text).collect())
}

fn number_to_u32(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u.min(u64::from(u32::MAX)) as u32)
            } else if n.as_i64().is_some() {
                Some(0)
            } else {
                n.as_f64().map(|f| f.clamp(0.0, f64::from(u32::MAX)) as u32)
            }
        }
        serde_json::Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.clamp(0.0, f64::from(u32::MAX)) as u32),
        _ => None,
    }
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(number_to_u32(&serde_json::Value::deserialize(d)?).unwrap_or(0))
}

fn lenient_u32_or_2<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(number_to_u32(&serde_json::Value::deserialize(d)?).unwrap_or(2))
}

/// A map of strings that also takes numbers/booleans (as text) and skips `null` entries;
/// `null` for the whole map is an empty map.
pub(crate) fn lenient_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of strings")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(MapVisitor)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                if let Some(text) = scalar_text(v) {
                    out.insert(k, text);
                }
            }
            Ok(out)
        }
    }

    d.deserialize_option(MapVisitor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn parses_real_unleash_shapes_leniently() {
        let json = r#"{
            "features": [{
                "name": "f", "enabled": true, "description": null, "impressionData": null,
                "variants": null,
                "strategies": [{
                    "name": "flexibleRollout",
                    "parameters": {"rollout": 50, "groupId": "g", "stickiness": "default", "x": null, "b": true},
                    "constraints": [{"contextName": "n", "operator": "NUM_GT", "value": 5, "values": [1, "2", null]}],
                    "segments": null
                }]
            }]
        }"#;
        let parsed: ClientFeatures = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.version, 2);
        assert!(parsed.segments.is_empty());
        let s = &parsed.features[0].strategies[0];
        assert_eq!(s.parameters["rollout"], "50");
        assert_eq!(s.parameters["b"], "true");
        assert!(!s.parameters.contains_key("x"));
        assert_eq!(s.constraints[0].value.as_deref(), Some("5"));
        assert_eq!(s.constraints[0].values, vec!["1", "2"]);
    }

    #[test]
    fn variant_weight_is_lenient() {
        let v: VariantDef = serde_json::from_str(r#"{"name":"a","weight":"33"}"#).unwrap();
        assert_eq!(v.weight, 33);
        let v: VariantDef = serde_json::from_str(r#"{"name":"a","weight":-4}"#).unwrap();
        assert_eq!(v.weight, 0);
        let v: VariantDef = serde_json::from_str(r#"{"name":"a","weight":12.7}"#).unwrap();
        assert_eq!(v.weight, 12);
    }

    #[test]
    fn round_trips_and_omits_empty_lists() {
        let f = FeatureDef {
            name: "x".into(),
            enabled: true,
            whitelist: vec!["u1".into()],
            ..FeatureDef::default()
        };
        let json = serde_json::to_value(&f).unwrap();
        assert!(json.get("blacklist").is_none());
        assert_eq!(json["whitelist"][0], "u1");
        let back: FeatureDef = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn applies_delta_events() {
        let events: Vec<DeltaEvent> = serde_json::from_str(
            r#"[
            {"eventId":1,"type":"hydration","features":[{"name":"a","enabled":true}],"segments":[{"id":1,"constraints":[]}]},
            {"eventId":2,"type":"feature-updated","feature":{"name":"b","enabled":true}},
            {"eventId":3,"type":"feature-updated","feature":{"name":"a","enabled":false}},
            {"eventId":4,"type":"feature-removed","featureName":"b","project":"default"},
            {"eventId":5,"type":"segment-updated","segment":{"id":2,"constraints":[]}},
            {"eventId":6,"type":"segment-removed","segmentId":1}
        ]"#,
        )
        .unwrap();
        let defs = ClientFeatures::from_delta(&events);
        assert_eq!(defs.features.len(), 1);
        assert_eq!(defs.features[0].name, "a");
        assert!(!defs.features[0].enabled);
        assert_eq!(
            defs.segments.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![2]
        );
    }
}
