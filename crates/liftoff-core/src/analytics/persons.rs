//! Persons: who did the events, with properties set by `$set` (overwrites) and `$set_once`
//! (only fills missing keys), and when they were first and last seen.
//!
//! The merge is pure: a store loads the persons an append touches, calls [`apply_updates`] and
//! writes back what changed, inside the append's transaction.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// A person as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    pub user_id: String,
    /// Unix milliseconds of the earliest and latest event seen.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub properties: Map<String, Value>,
}

/// What one event does to its person.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonUpdate {
    pub user_id: String,
    /// The event's time: widens first/last seen.
    pub ts_ms: i64,
    /// Keys overwritten.
    pub set: Map<String, Value>,
    /// Keys set only when the person does not have them.
    pub set_once: Map<String, Value>,
    /// `$identify` with `$anon_distinct_id`: the anonymous person's properties are copied in
    /// as `$set_once` and its first seen is kept (its events stay under the anonymous id).
    pub merge_from: Option<String>,
}

impl PersonUpdate {
    /// Every user id the update reads.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.user_id.as_str()).chain(self.merge_from.as_deref())
    }
}

/// Applies `updates` in order over `known` (the stored persons they touch) and returns the
/// persons that changed, to be written back.
pub fn apply_updates(mut known: HashMap<String, Person>, updates: &[PersonUpdate]) -> Vec<Person> {
    let mut changed: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for u in updates {
        let anon = u.merge_from.as_ref().and_then(|id| known.get(id)).cloned();
        let is_new = !known.contains_key(&u.user_id);
        let p = known.entry(u.user_id.clone()).or_insert_with(|| Person {
            user_id: u.user_id.clone(),
            first_seen_ms: u.ts_ms,
            last_seen_ms: u.ts_ms,
            properties: Map::new(),
        });
        let before = p.clone();
        p.first_seen_ms = p.first_seen_ms.min(u.ts_ms);
        p.last_seen_ms = p.last_seen_ms.max(u.ts_ms);
        for (k, v) in &u.set {
            p.properties.insert(k.clone(), v.clone());
        }
        for (k, v) in &u.set_once {
            p.properties.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some(anon) = anon {
            p.first_seen_ms = p.first_seen_ms.min(anon.first_seen_ms);
            p.last_seen_ms = p.last_seen_ms.max(anon.last_seen_ms);
            for (k, v) in anon.properties {
                p.properties.entry(k).or_insert(v);
            }
        }
        if (is_new || *p != before) && seen.insert(u.user_id.clone()) {
            changed.push(u.user_id.clone());
        }
    }
    changed
        .into_iter()
        .filter_map(|id| known.remove(&id))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn up(user: &str, ts: i64, set: Value, once: Value) -> PersonUpdate {
        PersonUpdate {
            user_id: user.into(),
            ts_ms: ts,
            set: set.as_object().cloned().unwrap_or_default(),
            set_once: once.as_object().cloned().unwrap_or_default(),
            merge_from: None,
        }
    }

    #[test]
    fn set_overwrites_and_set_once_only_fills() {
        let out = apply_updates(
            HashMap::new(),
            &[
                up("u", 200, json!({"plan": "free"}), json!({"source": "ad"})),
                up(
                    "u",
                    100,
                    json!({"plan": "pro"}),
                    json!({"source": "seo", "city": "Oslo"}),
                ),
                up("u", 300, json!({}), json!({"plan": "never"})),
            ],
        );
        assert_eq!(out.len(), 1);
        let p = &out[0];
        assert_eq!(p.first_seen_ms, 100);
        assert_eq!(p.last_seen_ms, 300);
        assert_eq!(
            Value::Object(p.properties.clone()),
            json!({"plan": "pro", "source": "ad", "city": "Oslo"})
        );
    }

    #[test]
    fn stored_persons_are_updated_and_unchanged_ones_not_rewritten() {
        let stored = Person {
            user_id: "u".into(),
            first_seen_ms: 50,
            last_seen_ms: 500,
            properties: json!({"plan": "pro"}).as_object().cloned().unwrap(),
        };
        let known = HashMap::from([("u".to_owned(), stored.clone())]);
        assert!(
            apply_updates(
                known.clone(),
                &[up("u", 100, json!({"plan": "pro"}), json!({"plan": "x"}))]
            )
            .is_empty()
        );
        let out = apply_updates(known, &[up("u", 40, json!({}), json!({"a": 1}))]);
        assert_eq!(out[0].first_seen_ms, 40);
        assert_eq!(out[0].last_seen_ms, 500);
        assert_eq!(
            Value::Object(out[0].properties.clone()),
            json!({"plan": "pro", "a": 1})
        );
        // A new person is written even when its update carries no properties.
        assert_eq!(
            apply_updates(HashMap::new(), &[up("n", 7, json!({}), json!({}))]).len(),
            1
        );
    }

    #[test]
    fn identify_merges_the_anonymous_person() {
        let anon = Person {
            user_id: "anon".into(),
            first_seen_ms: 10,
            last_seen_ms: 20,
            properties: json!({"utm": "x", "plan": "anon"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let mut u = up("u", 30, json!({"plan": "pro"}), json!({}));
        u.merge_from = Some("anon".into());
        let out = apply_updates(HashMap::from([("anon".to_owned(), anon)]), &[u]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].first_seen_ms, 10);
        assert_eq!(out[0].last_seen_ms, 30);
        assert_eq!(
            Value::Object(out[0].properties.clone()),
            json!({"plan": "pro", "utm": "x"})
        );
    }
}
