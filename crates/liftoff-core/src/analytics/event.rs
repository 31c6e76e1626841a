//! Product events as clients send them (`EventRecord`), validated at the edge into [`Event`]s,
//! and the person updates (`$set`, `$set_once`, `$identify`) they carry.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::persons::PersonUpdate;

/// Longest event name and user id, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest `properties` object, serialized.
pub const MAX_PROPERTIES_BYTES: usize = 64 * 1024;
/// Deepest nesting of `properties` (the object itself is depth 1).
pub const MAX_DEPTH: usize = 10;
/// Events may be dated at most this far ahead of the server clock.
pub const MAX_FUTURE_MS: i64 = 3_600_000;
/// 2000-01-01T00:00:00Z: nothing older is accepted.
pub const MIN_TS_MS: i64 = 946_684_800_000;

/// One event, as `POST /api/ingest/events` takes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct EventRecord {
    /// The event name, 1–200 characters without control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub event: String,
    /// Who did it (PostHog's `distinct_id` is accepted too).
    #[serde(alias = "distinct_id")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub user_id: String,
    /// The session; without one, sessions are 30 minutes of inactivity.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub session_id: Option<String>,
    /// RFC 3339, or Unix time in seconds or milliseconds; now when absent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub timestamp: Option<Value>,
    /// A JSON object, at most 64 KiB serialized and 10 levels deep. `$set` and `$set_once`
    /// objects inside update the person's properties.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
    /// A UUID: a retry with the same one is stored once.
    #[serde(default)]
    #[schema(
        pattern = "^\\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\\}?$"
    )]
    pub uuid: Option<String>,
}

/// An event after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub uuid: Option<u128>,
    /// Unix milliseconds.
    pub ts_ms: i64,
    pub user: String,
    pub session: Option<String>,
    pub event: String,
    /// The compact JSON text of the properties object (`{}` when none).
    pub properties: String,
}

/// How the event's time is derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The client's `timestamp` as sent (now when absent).
    Client,
    /// PostHog's `sent_at`: the client clock's skew is `now - sent_at`, added to `timestamp`.
    SentAt(i64),
    /// PostHog's `offset`: the event happened this many milliseconds before now.
    Offset(i64),
}

/// Parses an RFC 3339 string, a numeric string, or a number of Unix seconds (below 1e11) or
/// milliseconds, to Unix milliseconds.
pub fn parse_time(v: &Value) -> Result<i64, String> {
    let number = |x: f64| -> Result<i64, String> {
        if !x.is_finite() {
            return Err("timestamp is not a finite number".into());
        }
        // Numbers above 1e11 are milliseconds (1e11 s is in the year 5138).
        let ms = if x.abs() > 1e11 { x } else { x * 1000.0 };
        if ms.abs() > 1e15 {
            return Err(format!("timestamp {x} is out of range"));
        }
        Ok(ms as i64)
    };
    match v {
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
                return Ok(t.timestamp_millis());
            }
            // PostHog SDKs sometimes omit the offset (`2024-01-01T00:00:00.000`): that is UTC.
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f") {
                return Ok(Utc.from_utc_datetime(&t).timestamp_millis());
            }
            match s.trim().parse::<f64>() {
                Ok(x) => number(x),
                Err(_) => Err(format!(
                    "timestamp `{}` is not RFC 3339 or Unix seconds/milliseconds",
                    s.chars().take(40).collect::<String>()
                )),
            }
        }
        Value::Number(n) => number(n.as_f64().ok_or("timestamp is not a number")?),
        _ => Err("timestamp must be an RFC 3339 string or Unix seconds/milliseconds".into()),
    }
}

/// Parses a UUID (8-4-4-4-12 hex; hyphens and braces optional).
pub fn parse_uuid(s: &str) -> Result<u128, String> {
    let hex: String = s
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "uuid `{}` is not a UUID (32 hex digits, hyphens optional)",
            s.chars().take(40).collect::<String>()
        ));
    }
    u128::from_str_radix(&hex, 16).map_err(|e| e.to_string())
}

/// The usual 8-4-4-4-12 lower-case form.
pub fn format_uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The deepest nesting of `v` (a scalar is 0, `{}` is 1), walked without recursion.
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(m) => {
                deepest = deepest.max(d + 1);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            Value::Array(a) => {
                deepest = deepest.max(d + 1);
                stack.extend(a.iter().map(|c| (c, d + 1)));
            }
            _ => deepest = deepest.max(d),
        }
    }
    deepest
}

fn check_text(what: &str, s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(format!(
            "{what} must be 1 to {MAX_NAME_CHARS} characters (got {n})"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

/// A `$set`-style member of `props`: an object, absent, or an error.
fn update_map(props: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!("properties.{key} must be an object")),
    }
}

impl EventRecord {
    /// Validates the record and returns the event with the person update it implies (every
    /// event at least moves the person's first/last seen).
    pub fn validate(self, now_ms: i64, clock: Clock) -> Result<(Event, PersonUpdate), String> {
        check_text("event", &self.event)?;
        check_text("user_id", &self.user_id)?;
        if let Some(s) = &self.session_id {
            check_text("session_id", s)?;
        }
        let props = match self.properties {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err("properties must be a JSON object".into()),
        };
        let d = 1 + props.values().map(depth).max().unwrap_or(0);
        if d > MAX_DEPTH {
            return Err(format!(
                "properties are nested {d} levels deep; at most {MAX_DEPTH} are allowed"
            ));
        }
        let properties = serde_json::to_string(&props).map_err(|e| e.to_string())?;
        if properties.len() > MAX_PROPERTIES_BYTES {
            let (key, size) = props
                .iter()
                .map(|(k, v)| (k.as_str(), serde_json::to_string(v).map_or(0, |s| s.len())))
                .max_by_key(|(_, n)| *n)
                .unwrap_or(("", 0));
            return Err(format!(
                "properties are {} bytes serialized, over the limit of {MAX_PROPERTIES_BYTES}; the largest is properties.{key} ({size} bytes)",
                properties.len()
            ));
        }
        let sent = self
            .timestamp
            .as_ref()
            .filter(|v| !v.is_null())
            .map(parse_time)
            .transpose()?;
        let ts_ms = match (clock, sent) {
            (Clock::Offset(offset), _) => now_ms - offset,
            (Clock::SentAt(sent_at), Some(ts)) => ts + (now_ms - sent_at),
            (_, Some(ts)) => ts,
            (_, None) => now_ms,
        };
        if ts_ms > now_ms + MAX_FUTURE_MS {
            return Err(format!(
                "timestamp {} is more than an hour in the future",
                show(ts_ms)
            ));
        }
        if ts_ms < MIN_TS_MS {
            return Err(format!("timestamp {} is before 2000", show(ts_ms)));
        }
        let uuid = self.uuid.as_deref().map(parse_uuid).transpose()?;
        let set = update_map(&props, "$set")?;
        let set_once = update_map(&props, "$set_once")?;
        let merge_from = match props.get("$anon_distinct_id") {
            Some(Value::String(anon)) if self.event == "$identify" && *anon != self.user_id => {
                check_text("$anon_distinct_id", anon)?;
                Some(anon.clone())
            }
            _ => None,
        };
        let update = PersonUpdate {
            user_id: self.user_id.clone(),
            ts_ms,
            set,
            set_once,
            merge_from,
        };
        Ok((
            Event {
                uuid,
                ts_ms,
                user: self.user_id,
                session: self.session_id,
                event: self.event,
                properties,
            },
            update,
        ))
    }
}

fn show(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| format!("{ms} ms"), |t| t.to_rfc3339())
}

/// `now` in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Unix milliseconds `days` before `now_ms`.
pub fn days_before(now_ms: i64, days: u32) -> i64 {
    now_ms - Duration::days(i64::from(days)).num_milliseconds()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_750_000_000_000;

    fn rec(v: Value) -> EventRecord {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_plain_event_validates() {
        let (e, u) = rec(
            json!({"event": "signup", "distinct_id": "u1", "properties": {"plan": "pro"},
            "uuid": "0190C3D2-7A4B-7C00-8000-000000000001", "timestamp": NOW / 1000}),
        )
        .validate(NOW, Clock::Client)
        .unwrap();
        assert_eq!(e.user, "u1");
        assert_eq!(e.ts_ms, NOW);
        assert_eq!(e.properties, r#"{"plan":"pro"}"#);
        assert_eq!(
            format_uuid(e.uuid.unwrap()),
            "0190c3d2-7a4b-7c00-8000-000000000001"
        );
        assert_eq!(u.ts_ms, NOW);
        assert!(u.set.is_empty() && u.set_once.is_empty());
    }

    #[test]
    fn timestamps_in_every_form_and_the_limits() {
        let at = |t: Value| {
            rec(json!({"event": "e", "user_id": "u", "timestamp": t}))
                .validate(NOW, Clock::Client)
                .map(|(e, _)| e.ts_ms)
        };
        assert_eq!(at(json!(NOW)), Ok(NOW));
        assert_eq!(at(json!(NOW as f64 / 1000.0)), Ok(NOW));
        assert_eq!(at(json!("2025-06-15T15:06:40Z")), Ok(NOW));
        assert_eq!(at(json!("2025-06-15T17:06:40+02:00")), Ok(NOW));
        assert_eq!(at(json!("2025-06-15T15:06:40.000")), Ok(NOW));
        assert_eq!(at(json!(NOW + MAX_FUTURE_MS)), Ok(NOW + MAX_FUTURE_MS));
        assert!(
            at(json!(NOW + MAX_FUTURE_MS + 1))
                .unwrap_err()
                .contains("future")
        );
        assert!(
            at(json!("1999-12-31T23:59:59Z"))
                .unwrap_err()
                .contains("before 2000")
        );
        assert!(at(json!("yesterday")).unwrap_err().contains("not RFC 3339"));
        assert!(at(json!(true)).is_err());
    }

    #[test]
    fn sent_at_corrects_the_client_clock_and_offset_wins() {
        // The client clock is 10 minutes behind: it says the event was 5 s before sending.
        let client_sent = NOW - 600_000;
        let r = json!({"event": "e", "user_id": "u", "timestamp": client_sent - 5_000});
        let (e, _) = rec(r.clone())
            .validate(NOW, Clock::SentAt(client_sent))
            .unwrap();
        assert_eq!(e.ts_ms, NOW - 5_000);
        // Without a timestamp, sent_at alone means now.
        let (e, _) = rec(json!({"event": "e", "user_id": "u"}))
            .validate(NOW, Clock::SentAt(client_sent))
            .unwrap();
        assert_eq!(e.ts_ms, NOW);
        let (e, _) = rec(r).validate(NOW, Clock::Offset(2_500)).unwrap();
        assert_eq!(e.ts_ms, NOW - 2_500);
    }

    #[test]
    fn names_and_properties_are_checked() {
        let v = |r: Value| rec(r).validate(NOW, Clock::Client).map(|_| ());
        assert!(
            v(json!({"event": "", "user_id": "u"}))
                .unwrap_err()
                .contains("event must be 1 to 200")
        );
        assert!(v(json!({"event": "a".repeat(201), "user_id": "u"})).is_err());
        assert!(v(json!({"event": "a".repeat(200), "user_id": "u"})).is_ok());
        assert!(
            v(json!({"event": "a\nb", "user_id": "u"}))
                .unwrap_err()
                .contains("control")
        );
        assert!(
            v(json!({"event": "e", "user_id": ""}))
                .unwrap_err()
                .contains("user_id")
        );
        assert!(
            v(json!({"event": "e", "user_id": "u", "properties": [1]}))
                .unwrap_err()
                .contains("object")
        );
        assert!(
            v(json!({"event": "e", "user_id": "u", "uuid": "nope"}))
                .unwrap_err()
                .contains("uuid")
        );
        let big = v(json!({"event": "e", "user_id": "u", "properties": {"small": 1, "blob": "x".repeat(1_000_000)}}))
            .unwrap_err();
        assert!(big.contains("properties.blob (1000002 bytes)"), "{big}");
        // Exactly at the limit is fine: {"k":"…"} is 8 bytes of framing.
        assert!(v(json!({"event": "e", "user_id": "u", "properties": {"k": "x".repeat(MAX_PROPERTIES_BYTES - 8)}})).is_ok());
        assert!(v(json!({"event": "e", "user_id": "u", "properties": {"k": "x".repeat(MAX_PROPERTIES_BYTES - 7)}})).is_err());
    }

    #[test]
    fn depth_is_limited_to_ten() {
        let nested = |levels: usize| {
            // `levels` = depth of the properties object itself.
            let mut v = json!(1);
            for _ in 0..levels {
                v = json!({ "a": v });
            }
            json!({"event": "e", "user_id": "u", "properties": v})
        };
        assert_eq!(depth(&json!({"a": {"b": [1]}})), 3);
        assert_eq!(depth(&json!(1)), 0);
        assert!(rec(nested(10)).validate(NOW, Clock::Client).is_ok());
        let err = rec(nested(11)).validate(NOW, Clock::Client).unwrap_err();
        assert!(err.contains("nested 11 levels deep; at most 10"), "{err}");
        // A deep body never reaches validation: serde_json refuses it (no stack overflow).
        let deep = "[".repeat(100_000);
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }

    #[test]
    fn set_and_identify_become_person_updates() {
        let (_, u) = rec(json!({"event": "$identify", "distinct_id": "u9",
            "properties": {"$set": {"email": "a@x"}, "$set_once": {"first": "ad"}, "$anon_distinct_id": "anon-1"}}))
        .validate(NOW, Clock::Client)
        .unwrap();
        assert_eq!(u.set.get("email"), Some(&json!("a@x")));
        assert_eq!(u.set_once.get("first"), Some(&json!("ad")));
        assert_eq!(u.merge_from.as_deref(), Some("anon-1"));
        let err = rec(json!({"event": "e", "user_id": "u", "properties": {"$set": 3}}))
            .validate(NOW, Clock::Client)
            .unwrap_err();
        assert!(err.contains("$set must be an object"));
    }

    #[test]
    fn uuids_round_trip() {
        let u = parse_uuid("{0190C3D27A4B7C008000000000000001}").unwrap();
        assert_eq!(format_uuid(u), "0190c3d2-7a4b-7c00-8000-000000000001");
        assert!(parse_uuid("0190c3d2-7a4b-7c00-8000-00000000000").is_err());
    }
}
