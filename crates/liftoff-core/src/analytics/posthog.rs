//! PostHog capture payloads, normalised to [`EventRecord`]s, so the official SDKs work with
//! `host` pointed at Liftoff.
//!
//! Shapes accepted (after the HTTP layer has undone gzip, base64 and form encoding): one event
//! object, an array of events, or an envelope `{api_key, batch: [...], sent_at}`. The API key
//! is the envelope's `api_key` or `token`, else the first event's, else its
//! `properties.token`. Per event: `distinct_id` at the top or in `properties` (numbers are
//! stringified), `$session_id` in properties is the session, top-level `$set`/`$set_once`
//! (what `identify` and `set` send) move into `properties`, and `offset` or the envelope's
//! `sent_at` correct the client's clock.

use serde_json::{Map, Value};

use super::event::{Clock, EventRecord, parse_time};

/// One refused event of a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {message}")]
pub struct Invalid {
    pub index: usize,
    pub message: String,
}

fn key_of(o: &Map<String, Value>) -> Option<String> {
    ["api_key", "token"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .or_else(|| {
            o.get("properties")
                .and_then(Value::as_object)
                .and_then(|p| p.get("token"))
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
}

/// The API key a payload carries, if any.
pub fn api_key(body: &Value) -> Option<String> {
    match body {
        Value::Object(o) => key_of(o).or_else(|| {
            o.get("batch")
                .and_then(Value::as_array)
                .and_then(|b| b.first())
                .and_then(Value::as_object)
                .and_then(key_of)
        }),
        Value::Array(a) => a.first().and_then(Value::as_object).and_then(key_of),
        _ => None,
    }
}

/// How many events a payload holds (an array, `{batch}`, `{events}` or one event), for counting
/// refused ones.
pub fn count(body: &Value) -> usize {
    match body {
        Value::Array(a) => a.len(),
        Value::Object(o) => ["batch", "events"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .map_or(1, Vec::len),
        _ => 1,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The events of a payload with the clock each is read with.
pub fn events(body: Value) -> Result<Vec<(EventRecord, Clock)>, Invalid> {
    let bad = |index, message: &str| Invalid {
        index,
        message: message.to_owned(),
    };
    let (items, sent_at) = match body {
        Value::Array(a) => (a, None),
        Value::Object(mut o) => match o.remove("batch") {
            Some(Value::Array(b)) => (b, o.remove("sent_at")),
            Some(_) => return Err(bad(0, "`batch` must be an array of events")),
            None => {
                let sent_at = o.remove("sent_at");
                (vec![Value::Object(o)], sent_at)
            }
        },
        _ => {
            return Err(bad(
                0,
                "send an event object, an array of events or {batch: [...]}",
            ));
        }
    };
    let sent_at = match sent_at.filter(|v| !v.is_null()) {
        Some(v) => Some(parse_time(&v).map_err(|m| bad(0, &format!("sent_at: {m}")))?),
        None => None,
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let Value::Object(mut o) = item else {
                return Err(bad(index, "an event must be a JSON object"));
            };
            let mut props = match o.remove("properties") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(p)) => p,
                Some(_) => return Err(bad(index, "properties must be a JSON object")),
            };
            let event = match o.get("event") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(bad(index, "`event` must be a string")),
                None => return Err(bad(index, "missing `event` (the event name)")),
            };
            let user_id = o
                .get("distinct_id")
                .or_else(|| o.get("user_id"))
                .or_else(|| o.get("$distinct_id"))
                .or_else(|| props.get("distinct_id"))
                .and_then(text)
                .ok_or_else(|| bad(index, "missing `distinct_id` (who did it)"))?;
            for key in ["$set", "$set_once"] {
                if let Some(v) = o.remove(key) {
                    match (props.get_mut(key), v) {
                        (Some(Value::Object(inner)), Value::Object(top)) => inner.extend(top),
                        (_, v) => {
                            props.insert(key.to_owned(), v);
                        }
                    }
                }
            }
            props.remove("token");
            let session_id = o
                .get("session_id")
                .and_then(text)
                .or_else(|| props.get("$session_id").and_then(text));
            let clock = match o.get("offset").and_then(Value::as_i64) {
                Some(offset) => Clock::Offset(offset),
                None => sent_at.map_or(Clock::Client, Clock::SentAt),
            };
            let uuid = match o.get("uuid") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad(index, "`uuid` must be a string")),
            };
            Ok((
                EventRecord {
                    event,
                    user_id,
                    session_id,
                    timestamp: o.remove("timestamp"),
                    properties: Some(Value::Object(props)),
                    uuid,
                },
                clock,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_single_and_array_shapes() {
        let env = json!({"api_key": "k1", "sent_at": "2025-06-15T15:06:40Z", "batch": [
            {"event": "a", "distinct_id": 42, "timestamp": "2025-06-15T15:06:30Z"},
            {"event": "b", "properties": {"distinct_id": "u2", "$session_id": "s1", "token": "k1"}, "offset": 50},
        ]});
        assert_eq!(api_key(&env).as_deref(), Some("k1"));
        let ev = events(env).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].0.user_id, "42");
        assert_eq!(ev[0].1, Clock::SentAt(1_750_000_000_000));
        assert_eq!(ev[1].0.user_id, "u2");
        assert_eq!(ev[1].0.session_id.as_deref(), Some("s1"));
        assert_eq!(ev[1].1, Clock::Offset(50));
        assert_eq!(
            ev[1].0.properties,
            Some(json!({"distinct_id": "u2", "$session_id": "s1"})),
            "token dropped"
        );

        let single = json!({"token": "k2", "event": "x", "distinct_id": "u"});
        assert_eq!(api_key(&single).as_deref(), Some("k2"));
        assert_eq!(events(single).unwrap()[0].1, Clock::Client);

        let arr = json!([{"event": "x", "properties": {"distinct_id": "u", "token": "k3"}}]);
        assert_eq!(api_key(&arr).as_deref(), Some("k3"));
        assert!(api_key(&json!({"event": "x"})).is_none());
    }

    #[test]
    fn identify_and_set_at_the_top_level_move_into_properties() {
        let ev = events(json!({"event": "$identify", "distinct_id": "u",
            "$set": {"email": "a@x"}, "properties": {"$set": {"plan": "pro"}, "$anon_distinct_id": "anon"}}))
        .unwrap();
        assert_eq!(
            ev[0].0.properties,
            Some(json!({"$set": {"plan": "pro", "email": "a@x"}, "$anon_distinct_id": "anon"}))
        );
    }

    #[test]
    fn missing_fields_name_the_event() {
        let err =
            events(json!([{"event": "a", "distinct_id": "u"}, {"distinct_id": "u"}])).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.message.contains("missing `event`"));
        assert_eq!(events(json!([{"event": "a"}])).unwrap_err().index, 0);
        assert!(events(json!({"batch": 3})).is_err());
        assert!(events(json!({"sent_at": "then", "event": "a", "distinct_id": "u"})).is_err());
    }
}
