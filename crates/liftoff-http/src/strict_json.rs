//! Reads JSON into a typed value with JSON Schema's rules rather than serde's leniencies, so what
//! the OpenAPI document promises is exactly what the server accepts:
//!
//! - a struct is read only from an object (serde also reads one from an array, field by field,
//!   which would let `"scope": [null, null]` through as an empty scope);
//! - a number with a zero fraction (`486.0`) is an integer, as JSON Schema says it is (serde
//!   refuses it for integer fields);
//! - enum tags and field names are strings, never a variant's index.
//!
//! The rules wrap serde_json's streaming deserializer, so a body is read in one pass straight into
//! its type. Reading it into a `serde_json::Value` first and then applying the rules cost a quarter
//! of request ingest.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The body is not JSON at all.
    Syntax(serde_json::Error),
    /// Well-formed JSON of the wrong shape; the error carries the path of the offending field.
    Shape(serde_path_to_error::Error<serde_json::Error>),
}

/// Deserializes `T` from a JSON document.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ReadError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(Strict(&mut de)) {
        Ok(v) => de.end().map(|()| v).map_err(ReadError::Syntax),
        // Not JSON, or JSON of another shape? The shape error may come before a syntax error
        // further on, and serde_json calls an array longer than a tuple "trailing characters":
        // only a reading of the whole document as any JSON tells.
        Err(e) => match serde_json::from_slice::<AnyJson>(bytes) {
            Err(syntax) => Err(ReadError::Syntax(syntax)),
            Ok(_) => Err(ReadError::Shape(e)),
        },
    }
}

/// Any JSON document, read and dropped. Unlike `IgnoredAny` (which serde_json skips without
/// recursing), it goes through `deserialize_any`, so nesting past the parser's depth limit is
/// a syntax error here as it is everywhere else.
struct AnyJson;

impl<'de> de::Deserialize<'de> for AnyJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyJson)
    }
}

impl<'de> Visitor<'de> for AnyJson {
    type Value = AnyJson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_i64<E>(self, _: i64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_u64<E>(self, _: u64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_f64<E>(self, _: f64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_str<E>(self, _: &str) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_unit<E>(self) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyJson, A::Error> {
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyJson, A::Error> {
        while map.next_entry::<IgnoredAny, AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }
}

/// The integer a float stands for when it has no fraction and fits exactly, else `None`.
fn whole(f: f64) -> Option<Result<u64, i64>> {
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

/// A deserializer read with the rules above.
struct Strict<D>(D);

macro_rules! wrapped {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

macro_rules! integers {
    ($($method:ident)*) => {$(
        /// Through `deserialize_any`, so a whole float reaches the visitor as an integer.
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_any(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    wrapped! {
        deserialize_any deserialize_bool deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    /// As a map: an array is refused with "expected struct …".
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    /// Enum tags and field names are strings: serde would also take a number as a variant's
    /// index (`"kind": 0` for the first kind).
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(Wrap(visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor whose nested values are read with the rules, and whose whole floats are integers.
struct Wrap<V>(V);

macro_rules! visits {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    visits! {
        visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
        visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
        visit_u128: u128 visit_char: char visit_str: &str visit_borrowed_str: &'de str
        visit_string: String visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8]
        visit_byte_buf: Vec<u8>
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<V::Value, E> {
        self.visit_f64(f64::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        match whole(v) {
            Some(Ok(u)) => self.0.visit_u64(u),
            Some(Err(i)) => self.0.visit_i64(i),
            None => self.0.visit_f64(v),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Wrap(data))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    /// Keys are JSON strings already; they are read as they are.
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        self.0.variant_seed(seed).map(|(v, rest)| (v, Wrap(rest)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(Wrap(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap(visitor))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::{ReadError, from_slice};

    /// Reads `value`'s text, as a request body would arrive.
    fn from_value<T: serde::de::DeserializeOwned>(
        value: &serde_json::Value,
    ) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
        match from_slice(value.to_string().as_bytes()) {
            Ok(v) => Ok(v),
            Err(ReadError::Shape(e)) => Err(e),
            Err(ReadError::Syntax(e)) => panic!("valid JSON read as a syntax error: {e}"),
        }
    }

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

    #[test]
    fn syntax_errors_outrank_shape_errors() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct N {
            n: u8,
        }
        assert!(matches!(
            from_slice::<N>(br#"{"n": "x", "#),
            Err(ReadError::Syntax(_))
        ));
        assert!(matches!(
            from_slice::<N>(br#"{"n": 1} x"#),
            Err(ReadError::Syntax(_))
        ));
        assert!(matches!(
            from_slice::<N>(br#"{"n": 300}"#),
            Err(ReadError::Shape(_))
        ));
        assert!(matches!(from_slice::<N>(b""), Err(ReadError::Syntax(_))));
        let deep = format!(r#"{{"n": {}{}}}"#, "[".repeat(500), "]".repeat(500));
        assert!(matches!(
            from_slice::<N>(deep.as_bytes()),
            Err(ReadError::Syntax(_))
        ));
    }
}
