//! Persons: who did the events, with properties set by `$set` (overwrites) and `$set_once`
//! (only fills missing keys), and when they were first and last seen.
//!
//! The merge is pure: a store loads the persons an append touches, calls [`apply_updates`] and
//! writes back what changed, inside the append's transaction. Most events set no property, and
//! for those only first and last seen move: [`split_seen`] folds them into one [`Seen`] per
//! person, which a store applies with a single upsert (min / max) without reading the person.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// First and last seen of one person, widened by updates that set nothing else: the stored
/// person (or a new one with no properties) takes the min and the max.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub user_id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// Splits `updates` into the persons that are only seen, one [`Seen`] each in user order (a
/// store can write them without reading them first, and in one lock order on every replica),
/// and the updates that need [`apply_updates`]. A person named by any update of the second
/// kind, as its user or as the anonymous id it merges, goes wholly to the second, so the order
/// of that person's updates still decides what is stored: applying both parts gives exactly
/// what [`apply_updates`] over all of `updates` gives.
pub fn split_seen(updates: &[PersonUpdate]) -> (Vec<Seen>, Vec<&PersonUpdate>) {
    let rich: HashSet<&str> = updates
        .iter()
        .filter(|u| !u.set.is_empty() || !u.set_once.is_empty() || u.merge_from.is_some())
        .flat_map(PersonUpdate::ids)
        .collect();
    let mut seen: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut merged = Vec::new();
    for u in updates {
        if rich.contains(u.user_id.as_str()) {
            merged.push(u);
        } else {
            let (first, last) = seen.entry(&u.user_id).or_insert((u.ts_ms, u.ts_ms));
            *first = (*first).min(u.ts_ms);
            *last = (*last).max(u.ts_ms);
        }
    }
    let seen = seen
        .into_iter()
        .map(|(id, (first, last))| Seen {
            user_id: id.to_owned(),
            first_seen_ms: first,
            last_seen_ms: last,
        })
        .collect();
    (seen, merged)
}

/// Applies `updates` in order over `known` (the stored persons they touch) and returns the
/// persons that changed, to be written back.
pub fn apply_updates<'a>(
    mut known: HashMap<String, Person>,
    updates: impl IntoIterator<Item = &'a PersonUpdate>,
) -> Vec<Person> {
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

    /// A store as a map: what `split_seen`'s two parts, applied as a store applies them, leave
    /// behind must be what `apply_updates` over every update leaves.
    fn store_after(
        mut store: HashMap<String, Person>,
        changed: Vec<Person>,
    ) -> HashMap<String, Person> {
        for p in changed {
            store.insert(p.user_id.clone(), p);
        }
        store
    }

    fn arb_update() -> impl proptest::strategy::Strategy<Value = PersonUpdate> {
        use proptest::prelude::*;
        let id = || prop::sample::select(vec!["a", "b", "c", "d"]);
        let props = || {
            prop::collection::btree_map(prop::sample::select(vec!["plan", "city"]), 0u8..3, 0..2)
                .prop_map(|m| {
                    m.into_iter()
                        .map(|(k, v)| (k.to_owned(), json!(v)))
                        .collect()
                })
        };
        (
            id(),
            0i64..100,
            props(),
            props(),
            prop::option::weighted(0.2, id()),
        )
            .prop_map(|(user, ts, set, set_once, merge_from)| PersonUpdate {
                user_id: user.to_owned(),
                ts_ms: ts,
                set,
                set_once,
                merge_from: merge_from.map(str::to_owned),
            })
    }

    proptest::proptest! {
        #[test]
        fn seen_upserts_and_merges_store_what_merging_everything_stores(
            updates in proptest::collection::vec(arb_update(), 0..12),
            stored in proptest::collection::vec((0i64..100, 0i64..50), 4),
            present in proptest::collection::vec(proptest::bool::ANY, 4),
        ) {
            let store: HashMap<String, Person> = ["a", "b", "c", "d"]
                .iter()
                .zip(stored.iter().zip(&present))
                .filter(|(_, (_, here))| **here)
                .map(|(id, ((first, span), _))| {
                    let p = Person {
                        user_id: (*id).to_owned(),
                        first_seen_ms: *first,
                        last_seen_ms: first + span,
                        properties: json!({"plan": 9}).as_object().cloned().unwrap(),
                    };
                    ((*id).to_owned(), p)
                })
                .collect();
            let want = store_after(store.clone(), apply_updates(store.clone(), &updates));

            let (seen, merged) = split_seen(&updates);
            let mut got = store.clone();
            for s in seen {
                let p = got.entry(s.user_id.clone()).or_insert_with(|| Person {
                    user_id: s.user_id.clone(),
                    first_seen_ms: s.first_seen_ms,
                    last_seen_ms: s.last_seen_ms,
                    properties: Map::new(),
                });
                p.first_seen_ms = p.first_seen_ms.min(s.first_seen_ms);
                p.last_seen_ms = p.last_seen_ms.max(s.last_seen_ms);
            }
            let got = store_after(got.clone(), apply_updates(got, merged));
            proptest::prop_assert_eq!(got, want);
        }
    }
}
