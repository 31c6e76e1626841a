//! Ingest bodies: a bare JSON array of records, or an object with the array under the
//! record kind's name (`{"requests": [...]}`). Deserialized in one streaming pass: serde's
//! `untagged` enums first copy the whole document into an intermediate tree to try each
//! shape, which cost more than the rest of request ingest together.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A record kind that arrives in batches.
pub trait BatchItem: for<'de> Deserialize<'de> {
    /// The field holding the array in the object form.
    const KEY: &'static str;
}

/// The records of one ingest request.
pub struct Batch<T>(pub Vec<T>);

impl<'de, T: BatchItem> Deserialize<'de> for Batch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BatchVisitor(PhantomData))
    }
}

struct BatchVisitor<T>(PhantomData<T>);

impl<'de, T: BatchItem> Visitor<'de> for BatchVisitor<T> {
    type Value = Batch<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of records or an object with `{}`", T::KEY)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Batch<T>, A::Error> {
        // The size hint is untrusted: cap the pre-allocation.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(r) = seq.next_element()? {
            out.push(r);
        }
        Ok(Batch(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Batch<T>, A::Error> {
        let mut records = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == T::KEY {
                if records.is_some() {
                    return Err(de::Error::duplicate_field(T::KEY));
                }
                records = Some(map.next_value::<Vec<T>>()?);
            } else {
                // Unknown fields are ignored, as everywhere in the API.
                map.next_value::<IgnoredAny>()?;
            }
        }
        records
            .map(Batch)
            .ok_or_else(|| de::Error::missing_field(T::KEY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct R {
        n: u32,
    }
    impl BatchItem for R {
        const KEY: &'static str = "rs";
    }

    fn parse(s: &str) -> Result<Vec<R>, serde_json::Error> {
        serde_json::from_str::<Batch<R>>(s).map(|b| b.0)
    }

    #[test]
    fn both_shapes_and_clear_errors() {
        assert_eq!(parse(r#"[{"n":1},{"n":2}]"#).unwrap().len(), 2);
        assert_eq!(
            parse(r#"{"other":{"x":[1]},"rs":[{"n":3}]}"#).unwrap(),
            vec![R { n: 3 }]
        );
        assert!(
            parse(r#"{"x":1}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field `rs`")
        );
        assert!(parse(r#"{"rs":[],"rs":[]}"#).is_err());
        assert!(parse(r#"[{"n":"x"}]"#).is_err());
        assert!(
            parse("3")
                .unwrap_err()
                .to_string()
                .contains("an array of records")
        );
    }
}
