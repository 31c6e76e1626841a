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

/// One event with borrowed text: what [`crate::SegmentBuilder::push`] takes, so a row parsed
/// out of a buffer needs no `String` of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef<'a> {
    pub ts_ms: i64,
    pub user: &'a str,
    pub session: Option<&'a str>,
    pub event: &'a str,
    pub properties: &'a str,
    pub uuid: Option<u128>,
}

impl RowRef<'_> {
    pub fn to_owned_row(&self) -> EventRow {
        EventRow {
            ts_ms: self.ts_ms,
            user: self.user.to_owned(),
            session: self.session.map(str::to_owned),
            event: self.event.to_owned(),
            properties: self.properties.to_owned(),
            uuid: self.uuid,
        }
    }
}

fn empty_object() -> String {
    "{}".to_owned()
}

impl EventRow {
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            ts_ms: self.ts_ms,
            user: &self.user,
            session: self.session.as_deref(),
            event: &self.event,
            properties: &self.properties,
            uuid: self.uuid,
        }
    }

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
pub(crate) mod uuid_text {
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
        text.map(|t| parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }

    /// The uuid of `text`: 32 hex digits, hyphens anywhere.
    pub(crate) fn parse(text: &str) -> Result<u128, String> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return Err("uuid must have 32 hex digits".to_owned());
        }
        u128::from_str_radix(&hex, 16).map_err(|e| e.to_string())
    }
}
