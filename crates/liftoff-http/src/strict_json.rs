//! Reads a parsed JSON document into a typed value with JSON Schema's rules rather than serde's
//! leniencies, so what the OpenAPI document promises is exactly what the server accepts:
//!
//! - a struct is read only from an object (serde also reads one from an array, field by field,
//!   which would let `"scope": [null, null]` through as an empty scope);
//! - a number with a zero fraction (`486.0`) is an integer, as JSON Schema says it is (serde
//!   refuses it for integer fields).
//!
//! Everything else behaves as `serde_json::Value`'s own deserializer.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Number, Value};

/// Deserializes `T` from `value`; the error carries the path of the offending field.
pub fn from_value<T: de::DeserializeOwned>(
    value: &Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(Strict(value))
}

/// A `Value` read with the rules above.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a Value);

/// The integer a number stands for when it has no fraction and fits, else `None`.
fn whole(n: &Number) -> Option<Result<u64, i64>> {
    if n.is_u64() {
        return n.as_u64().map(Ok);
    }
    if n.is_i64() {
        return n.as_i64().map(Err);
    }
    let f = n.as_f64()?;
    // Only integers a float holds exactly: beyond 2^53 a float may be an out-of-range integer
    // rounded into range (-9223372036854775809 parses as exactly -2^63).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if f.fract() != 0.0 || !f.is_finite() || f.abs() > EXACT {
        return None;
    }
    Some(if f >= 0.0 {
        Ok(f as u64)
    } else {
        Err(f as i64)
    })
}

impl<'de, 'a> Deserializer<'de> for Strict<'a> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match whole(n) {
                Some(Ok(u)) => visitor.visit_u64(u),
                Some(Err(i)) => visitor.visit_i64(i),
                None => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visit_object(map, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Enum payloads are rare in request bodies; serde_json's own reading is fine there.
        self.0.clone().deserialize_enum(name, variants, visitor)
    }

    /// Enum tags and field names are strings: serde would also take a number as a variant's
    /// index (`"kind": 0` for the first kind).
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => visitor.visit_str(s),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => n
            .as_f64()
            .map_or(de::Unexpected::Other("number"), de::Unexpected::Float),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: &[Value],
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let mut seq = Items(items.iter());
    let out = visitor.visit_seq(&mut seq)?;
    if seq.0.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(
            items.len(),
            &"fewer elements in the array",
        ))
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: &Map<String, Value>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    visitor.visit_map(Entries {
        iter: map.iter(),
        value: None,
    })
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Strict(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::from_value;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Scope {
        service: Option<String>,
        endpoint: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Rule {
        name: String,
        port: u16,
        threshold: f64,
        #[serde(default)]
        scope: Option<Scope>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn an_object_reads_as_serde_would() {
        let r: Rule = from_value(&json!({
            "name": "x", "port": 80, "threshold": 0.5,
            "scope": {"service": "api", "endpoint": null}, "tags": ["a"]
        }))
        .unwrap();
        assert_eq!(r.port, 80);
        assert_eq!(r.scope.unwrap().service.as_deref(), Some("api"));
        assert_eq!(r.tags, ["a"]);
    }

    #[test]
    fn whole_numbers_with_a_fraction_are_integers() {
        let r: Rule = from_value(&json!({"name": "x", "port": 486.0, "threshold": 2.0})).unwrap();
        assert_eq!(r.port, 486);
        assert_eq!(r.threshold, 2.0);
        let err =
            from_value::<Rule>(&json!({"name": "x", "port": 486.5, "threshold": 1})).unwrap_err();
        assert_eq!(err.path().to_string(), "port");
        assert!(
            from_value::<Rule>(&json!({"name": "x", "port": 70000.0, "threshold": 1})).is_err()
        );
        assert!(from_value::<i64>(&json!(-3.0)).unwrap() == -3);
    }

    #[test]
    fn a_struct_is_never_read_from_an_array() {
        let err = from_value::<Rule>(&json!({
            "name": "x", "port": 1, "threshold": 1, "scope": [null, null]
        }))
        .unwrap_err();
        assert_eq!(err.path().to_string(), "scope");
        assert!(err.to_string().contains("expected struct Scope"), "{err}");
        assert!(from_value::<Rule>(&json!(["x", 1, 1.0, null, []])).is_err());
    }

    #[test]
    fn an_enum_tag_is_a_name_not_an_index() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Channel {
            Slack { url: String },
            Webhook { url: String },
        }
        let c: Channel = from_value(&json!({"kind": "webhook", "url": "u"})).unwrap();
        assert_eq!(c, Channel::Webhook { url: "u".into() });
        assert!(from_value::<Channel>(&json!({"kind": 0, "url": "u"})).is_err());
        assert!(from_value::<Channel>(&json!({"kind": 1.0, "url": "u"})).is_err());
    }

    #[test]
    fn sequences_maps_and_enums_still_read() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            ErrorRate,
            Latency,
        }
        let v: Vec<Kind> = from_value(&json!(["error_rate", "latency"])).unwrap();
        assert_eq!(v, [Kind::ErrorRate, Kind::Latency]);
        let m: std::collections::BTreeMap<String, u32> =
            from_value(&json!({"a": 1, "b": 2.0})).unwrap();
        assert_eq!(m["b"], 2);
        let t: (u8, String) = from_value(&json!([1, "a"])).unwrap();
        assert_eq!(t, (1, "a".to_owned()));
        assert!(from_value::<(u8,)>(&json!([1, 2])).is_err());
        let any: serde_json::Value = from_value(&json!({"x": [1.5, 2.0]})).unwrap();
        assert_eq!(any, json!({"x": [1.5, 2]}));
    }
}
