//! Encoding and decoding shared by the backends: how a value is kept in a column (sketches,
//! uuids, JSON documents and maps, times, resolutions) and the [`StoreError::Corrupt`] a value
//! that does not decode becomes. Rules (what to keep, merge or drop) are not here: they are
//! pure functions in `liftoff-core` (see ARCHITECTURE.md, "backends hold no business rules").

use std::collections::BTreeMap;
use std::fmt::Display;

use chrono::{DateTime, Utc};
use liftoff_core::analytics::dedupe::{uuid_from_key, uuid_key};
use liftoff_core::monitoring::sketch::DDSketch;
use liftoff_core::store::StoreError;
use liftoff_core::uptime::Monitor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored value that does not decode (or a merge of stored values that fails).
pub(crate) fn corrupt(e: impl Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(crate) fn sketch_from(bytes: &[u8]) -> Result<DDSketch, StoreError> {
    DDSketch::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("stored sketch: {e}")))
}

/// `sketch` merged with the one a cell already stores, if it stores one: what every cell upsert
/// writes back.
pub(crate) fn merged_with_stored(
    mut sketch: DDSketch,
    stored: Option<&[u8]>,
) -> Result<DDSketch, StoreError> {
    if let Some(bytes) = stored {
        sketch.merge(&sketch_from(bytes)?).map_err(corrupt)?;
    }
    Ok(sketch)
}

pub(crate) fn uuid_bytes(u: Option<u128>) -> Option<Vec<u8>> {
    u.map(uuid_key)
}

pub(crate) fn uuid_from(bytes: Option<Vec<u8>>) -> Result<Option<u128>, StoreError> {
    bytes.map(|b| uuid_from_key(&b)).transpose()
}

/// A person's properties, kept as a JSON object in text.
pub(crate) fn properties_from(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(StoreError::Corrupt(
            "stored person properties are not a JSON object".into(),
        )),
    }
}

/// A document as JSON text.
pub(crate) fn doc_text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

/// A document as a JSON value.
pub(crate) fn doc_value<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(corrupt)
}

/// A stored `what` back from JSON text.
pub(crate) fn doc_from_text<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::Corrupt(format!("stored {what} does not parse: {e}")))
}

/// A stored `what` back from a JSON value.
pub(crate) fn doc_from_value<T: DeserializeOwned>(
    v: serde_json::Value,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Corrupt(format!("stored {what} does not parse: {e}")))
}

/// An operation cell's map (layers, error types) as a JSON value.
pub(crate) fn map_value(m: &BTreeMap<String, u64>) -> serde_json::Value {
    serde_json::to_value(m).unwrap_or_default()
}

pub(crate) fn map_from_value(v: serde_json::Value) -> Result<BTreeMap<String, u64>, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("stored map: {e}")))
}

/// A monitor's expected statuses as JSON text.
pub(crate) fn expected_json(m: &Monitor) -> Option<String> {
    m.expected_status
        .as_ref()
        .map(|l| serde_json::Value::from(l.clone()).to_string())
}

/// A time as Unix milliseconds.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Unix milliseconds as a time (the epoch for a value out of range, which [`ms`] never writes).
pub(crate) fn from_ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

/// One row of a per-day admission count (day number since the epoch, asks, seats).
pub(crate) fn admission_day(
    day: i64,
    asked: i64,
    admitted: i64,
) -> Result<liftoff_core::launch::store::AdmissionDay, StoreError> {
    let day = DateTime::from_timestamp(day.saturating_mul(86_400), 0)
        .ok_or_else(|| corrupt(format!("admission day {day} out of range")))?;
    Ok(liftoff_core::launch::store::AdmissionDay {
        day,
        asked: u64::try_from(asked).map_err(corrupt)?,
        admitted: u64::try_from(admitted).map_err(corrupt)?,
    })
}

/// A rollup resolution (minutes) as a 32-bit column.
pub(crate) fn resolution(res: i64) -> Result<i32, StoreError> {
    i32::try_from(res).map_err(|_| StoreError::Corrupt("resolution out of range".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_round_trip_and_bad_ones_are_corrupt() {
        assert_eq!(uuid_from(uuid_bytes(Some(42))).unwrap(), Some(42));
        assert_eq!(uuid_from(None).unwrap(), None);
        assert!(uuid_from(Some(vec![1, 2, 3])).is_err());
        assert!(properties_from("[1]").is_err());
        assert_eq!(properties_from(r#"{"a":1}"#).unwrap().len(), 1);
        let m = BTreeMap::from([("cache".to_owned(), 3u64)]);
        assert_eq!(map_from_value(map_value(&m)).unwrap(), m);
        assert!(sketch_from(b"nope").is_err());
        assert!(resolution(i64::MAX).is_err());
        let n: Vec<u8> = doc_from_text(&doc_text(&vec![1u8]).unwrap(), "list").unwrap();
        assert_eq!(n, vec![1]);
        let err = doc_from_value::<Vec<u8>>(serde_json::json!("x"), "list").unwrap_err();
        assert!(err.to_string().contains("stored list does not parse"));
    }
}
