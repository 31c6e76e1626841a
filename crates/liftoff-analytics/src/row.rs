//! The input row: one event as it arrives from ingest or an NDJSON export.

use serde::{Deserialize, Serialize};

/// One product event. `properties` is the JSON object text exactly as stored (often `"{}"`);
/// the engine interns it whole because real data repeats a few hundred objects millions of
/// times, so parsing it per event would be wasted work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Unix time in milliseconds.
    #[serde(rename = "ts")]
    pub ts_ms: i64,
    #[serde(rename = "user_id")]
    pub user: String,
    #[serde(
        rename = "session_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session: Option<String>,
    pub event: String,
    #[serde(default = "empty_object")]
    pub properties: String,
    /// Client-chosen idempotency key (PostHog `uuid`), when the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "uuid_text")]
    pub uuid: Option<u128>,
}

fn empty_object() -> String {
    "{}".to_owned()
}

impl EventRow {
    /// Parses one NDJSON line in the export shape
    /// (`{"ts":…,"user_id":…,"session_id":…,"event":…,"properties":"<json text>","uuid":…}`).
    pub fn from_ndjson(line: &str) -> Result<EventRow, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The NDJSON line (without the newline) that [`EventRow::from_ndjson`] reads back.
    pub fn to_ndjson(&self) -> String {
        serde_json::to_string(self)
            .expect("an EventRow always serializes: plain strings and numbers")
    }
}

/// UUIDs travel as the usual 8-4-4-4-12 hex text; hyphens are optional on input.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(u) => {
                let h = format!("{u:032x}");
                s.serialize_str(&format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                ))
            }
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) => {
                let hex: String = t.chars().filter(|c| *c != '-').collect();
                if hex.len() != 32 {
                    return Err(serde::de::Error::custom("uuid must have 32 hex digits"));
                }
                u128::from_str_radix(&hex, 16)
                    .map(Some)
                    .map_err(serde::de::Error::custom)
            }
        }
    }
}
