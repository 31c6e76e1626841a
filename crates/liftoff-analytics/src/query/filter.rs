//! Event filters (funnel steps) and property lookups. Property objects are interned, so a
//! filter or breakdown is evaluated once per distinct object (hundreds), not per event.

use crate::table::EventTable;
use serde::{Deserialize, Serialize};

/// Matches events with this name whose properties include every listed key/value pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    pub event: String,
    #[serde(default)]
    pub properties: Vec<PropertyEq>,
}

/// `properties[key] == value`, comparing string values by text and other JSON values by
/// their JSON text (`true`, `3`, `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyEq {
    pub key: String,
    pub value: String,
}

impl EventFilter {
    pub fn event(name: &str) -> EventFilter {
        EventFilter {
            event: name.to_owned(),
            properties: Vec::new(),
        }
    }
}

/// Per-row step masks: bit k set when the row matches step k.
pub(crate) struct StepMasks {
    pub(crate) by_event: Vec<u32>,
    /// `None` when no step filters on properties (then every property object passes).
    pub(crate) by_prop: Option<Vec<u32>>,
}

impl StepMasks {
    pub(crate) fn new(table: &EventTable, steps: &[EventFilter]) -> StepMasks {
        let mut by_event = vec![0u32; table.events.len()];
        for (k, s) in steps.iter().enumerate() {
            if let Some(e) = table.events.get(&s.event) {
                by_event[e as usize] |= 1 << k;
            }
        }
        let by_prop = steps.iter().any(|s| !s.properties.is_empty()).then(|| {
            (0..table.props.len() as u32)
                .map(|p| {
                    let obj = parse_object(table.props.name(p));
                    let mut mask = 0u32;
                    for (k, s) in steps.iter().enumerate() {
                        let ok = s.properties.iter().all(|f| {
                            obj.as_ref()
                                .and_then(|o| o.get(&f.key))
                                .map(value_text)
                                .as_deref()
                                == Some(f.value.as_str())
                        });
                        if ok {
                            mask |= 1 << k;
                        }
                    }
                    mask
                })
                .collect()
        });
        StepMasks { by_event, by_prop }
    }

    #[inline]
    pub(crate) fn of(&self, event: u16, prop: u32) -> u32 {
        let m = self.by_event[event as usize];
        match &self.by_prop {
            Some(p) if m != 0 => m & p[prop as usize],
            _ => m,
        }
    }
}

/// The value of `key` in every distinct property object: `(value id per object, values)`;
/// objects without the key map to the last value, `None`.
pub(crate) fn property_values(table: &EventTable, key: &str) -> (Vec<u32>, Vec<Option<String>>) {
    let mut values: Vec<Option<String>> = Vec::new();
    let mut ids = std::collections::HashMap::new();
    let mut by_prop = Vec::with_capacity(table.props.len());
    for p in 0..table.props.len() as u32 {
        let v = parse_object(table.props.name(p)).and_then(|o| o.get(key).map(value_text));
        let id = *ids.entry(v.clone()).or_insert_with(|| {
            values.push(v);
            values.len() as u32 - 1
        });
        by_prop.push(id);
    }
    (by_prop, values)
}

fn parse_object(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).ok()
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
