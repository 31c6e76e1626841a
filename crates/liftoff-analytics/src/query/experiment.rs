//! The two questions an experiment asks of the events: who saw which variant of a flag
//! (exposures carried by events, PostHog's way), and what each exposed user did in the
//! window after their first exposure.
//!
//! Both work on the interned property objects: a property object is parsed once (hundreds
//! or thousands of distinct objects), never once per event.

use std::collections::HashMap;

use crate::table::EventTable;

/// PostHog SDKs send this event when code reads a flag.
pub const FLAG_CALLED_EVENT: &str = "$feature_flag_called";

/// A user's exposures to a flag found in the events: the first one, and whether any later
/// one named another variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventExposure {
    pub user: String,
    pub first_ms: i64,
    pub variant: String,
    pub multiple: bool,
}

/// One exposed user's window: `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserWindow<'a> {
    pub user: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What one user did in their window: how many events and the sum of the property.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserTotals {
    pub count: u64,
    pub sum: f64,
}

fn variant_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        // A boolean flag reports true/false; they name no variant of an experiment.
        _ => None,
    }
}

/// The number a property holds: a JSON number, or a string that parses as one.
fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

impl EventTable {
    /// Exposures to `flag` in `[from_ms, to_ms)` carried by events: a `$feature_flag_called`
    /// event whose `$feature_flag` is the flag (variant in `$feature_flag_response`), or any
    /// event with a `$feature/<flag>` property. In user order.
    pub fn flag_exposures(&self, flag: &str, from_ms: i64, to_ms: i64) -> Vec<EventExposure> {
        let called = self.events.get(FLAG_CALLED_EVENT);
        let tagged_key = format!("$feature/{flag}");
        // Per property object: the variant it names for any event, and for the called event.
        let mut any_event: HashMap<u32, String> = HashMap::new();
        let mut called_only: HashMap<u32, String> = HashMap::new();
        // The flag key as it stands inside JSON text (escaped, without the quotes): property
        // objects are stored as serde_json writes them, so every mention of the flag reads so.
        let quoted = serde_json::to_string(flag).unwrap_or_default();
        let escaped = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(flag);
        for p in 0..self.props.len() as u32 {
            let text = self.props.name(p);
            // Cheap pre-check before parsing: the flag must be mentioned at all.
            if !text.contains(escaped) {
                continue;
            }
            let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(text) else {
                continue;
            };
            if let Some(v) = obj.get(&tagged_key).and_then(variant_text) {
                any_event.insert(p, v);
            }
            if obj.get("$feature_flag").and_then(|v| v.as_str()) == Some(flag)
                && let Some(v) = obj.get("$feature_flag_response").and_then(variant_text)
            {
                called_only.insert(p, v);
            }
        }
        if any_event.is_empty() && called_only.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for u in 0..self.user_count() {
            let mut found: Option<EventExposure> = None;
            for i in self.rows_in(u, from_ms, to_ms) {
                let p = self.prop[i];
                let variant = any_event.get(&p).or_else(|| {
                    (Some(u32::from(self.event[i])) == called)
                        .then(|| called_only.get(&p))
                        .flatten()
                });
                let Some(variant) = variant else { continue };
                match &mut found {
                    None => {
                        found = Some(EventExposure {
                            user: self.users.name(u as u32).to_owned(),
                            first_ms: self.ts[i],
                            variant: variant.clone(),
                            multiple: false,
                        })
                    }
                    Some(f) => f.multiple |= f.variant != *variant,
                }
            }
            out.extend(found);
        }
        out
    }

    /// For each window, the user's `event`s in it: their number and the sum of `property`
    /// (when given; non-numeric values count as 0). Unknown users and events give zeros.
    pub fn user_totals(
        &self,
        event: &str,
        property: Option<&str>,
        windows: &[UserWindow<'_>],
    ) -> Vec<UserTotals> {
        let Some(e) = self.events.get(event) else {
            return vec![UserTotals::default(); windows.len()];
        };
        let e = e as u16;
        let mut values: HashMap<u32, f64> = HashMap::new();
        let mut value_of = |p: u32| -> f64 {
            let Some(key) = property else { return 0.0 };
            *values.entry(p).or_insert_with(|| {
                serde_json::from_str::<serde_json::Value>(self.props.name(p))
                    .ok()
                    .and_then(|o| o.get(key).and_then(number))
                    .unwrap_or(0.0)
            })
        };
        windows
            .iter()
            .map(|w| {
                let Some(u) = self.users.get(w.user) else {
                    return UserTotals::default();
                };
                let mut t = UserTotals::default();
                for i in self.rows_in(u as usize, w.from_ms, w.to_ms) {
                    if self.event[i] == e {
                        t.count += 1;
                        if property.is_some() {
                            t.sum += value_of(self.prop[i]);
                        }
                    }
                }
                t
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::EventRow;

    fn row(ts: i64, user: &str, event: &str, props: &str) -> EventRow {
        EventRow {
            ts_ms: ts,
            user: user.into(),
            session: None,
            event: event.into(),
            properties: props.into(),
            uuid: None,
        }
    }

    #[test]
    fn exposures_come_from_called_events_and_tagged_properties() {
        let t = EventTable::from_rows(&[
            row(
                10,
                "a",
                "$feature_flag_called",
                r#"{"$feature_flag":"checkout","$feature_flag_response":"red"}"#,
            ),
            row(
                20,
                "a",
                "$feature_flag_called",
                r#"{"$feature_flag":"checkout","$feature_flag_response":"blue"}"#,
            ),
            row(15, "b", "$pageview", r#"{"$feature/checkout":"blue"}"#),
            row(16, "b", "$pageview", r#"{"$feature/checkout":"blue"}"#),
            // Another flag, a called event for another flag, and a boolean response.
            row(
                5,
                "c",
                "$feature_flag_called",
                r#"{"$feature_flag":"other","$feature_flag_response":"red"}"#,
            ),
            row(
                6,
                "d",
                "$feature_flag_called",
                r#"{"$feature_flag":"checkout","$feature_flag_response":true}"#,
            ),
            // A `$feature_flag` property on another event is not an exposure.
            row(
                7,
                "e",
                "click",
                r#"{"$feature_flag":"checkout","$feature_flag_response":"red"}"#,
            ),
            // Outside the range.
            row(500, "f", "$pageview", r#"{"$feature/checkout":"red"}"#),
        ])
        .unwrap();
        let got = t.flag_exposures("checkout", 0, 100);
        assert_eq!(
            got,
            vec![
                EventExposure {
                    user: "a".into(),
                    first_ms: 10,
                    variant: "red".into(),
                    multiple: true
                },
                EventExposure {
                    user: "b".into(),
                    first_ms: 15,
                    variant: "blue".into(),
                    multiple: false
                },
            ]
        );
    }

    #[test]
    fn totals_count_events_and_sum_a_property_inside_each_window() {
        let t = EventTable::from_rows(&[
            row(10, "a", "buy", r#"{"amount":10}"#),
            row(20, "a", "buy", r#"{"amount":"2.5"}"#),
            row(30, "a", "buy", r#"{"amount":"n/a"}"#),
            row(99, "a", "buy", r#"{"amount":100}"#),
            row(12, "b", "view", r#"{}"#),
        ])
        .unwrap();
        let w = |user, from_ms, to_ms| UserWindow {
            user,
            from_ms,
            to_ms,
        };
        let got = t.user_totals(
            "buy",
            Some("amount"),
            &[w("a", 10, 99), w("b", 0, 100), w("zz", 0, 100)],
        );
        assert_eq!(
            got[0],
            UserTotals {
                count: 3,
                sum: 12.5
            }
        );
        assert_eq!(got[1], UserTotals::default());
        assert_eq!(got[2], UserTotals::default());
        assert_eq!(
            t.user_totals("none", None, &[w("a", 0, 100)])[0],
            UserTotals::default()
        );
    }
}
