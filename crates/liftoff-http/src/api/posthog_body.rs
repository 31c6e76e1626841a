//! PostHog capture bodies: the layers SDKs wrap events in (HTTP gzip, a form's `data=`,
//! `compression=gzip-js|gzip|base64`, or a body that is gzip or base64 by its look), undone in
//! two ways that share one reading of the layers:
//!
//! - [`find_key`] streams through them looking for the first `"api_key"`/`"token"` member,
//!   holding a few bytes at a time, so an unknown key is refused before anything is inflated
//!   into memory or parsed;
//! - [`payload`] undoes them whole (inflation capped at [`MAX_DECOMPRESSED`]) and parses the
//!   JSON, once the key is known to be good.
//!
//! What the JSON holds is read here too: the events of a PostHog payload ([`records`]: one
//! event, an array or `{batch}`) or of a native batch ([`native_records`]), and the
//! user and environment of a flags request ([`flags_request`]). `api/capture.rs` only
//! authenticates, calls these and hands the records to the events service.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use liftoff_core::analytics::{Clock, EventError, EventRecord, posthog};
use liftoff_core::flags::{Environment, context};
use liftoff_eval::Context;
use serde_json::Value;

use crate::body::{MAX_DECOMPRESSED, decode, gunzip};
use crate::error::ApiError;
use crate::mw::auth::bearer;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The body with its outer layers (form, base64) undone and what inflation remains.
struct Layers {
    bytes: Vec<u8>,
    gzip: bool,
}

/// Reads the layers of `raw`. With `Content-Encoding: gzip` the inner body is taken to be
/// JSON and is inflated only while it is read.
fn layers(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    raw: Bytes,
) -> Result<Layers, ApiError> {
    let http_gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "gzip" | "x-gzip"));
    if http_gzip {
        return Ok(Layers {
            bytes: raw.to_vec(),
            gzip: true,
        });
    }
    // Any other encoding is refused here (415).
    let mut bytes = decode(headers, raw)?;
    let mut compression = query.get("compression").cloned();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form || bytes.starts_with(b"data=") {
        let mut form = form_fields(&bytes);
        let Some(data) = form.remove("data") else {
            return Err(ApiError::bad_request(
                "malformed_body",
                "a form body must carry the events as `data=`",
            ));
        };
        if let Some(c) = form.remove("compression") {
            compression = Some(c);
        }
        bytes = data.into_bytes();
    }
    match compression
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("gzip-js" | "gzip") => Ok(Layers { bytes, gzip: true }),
        Some("base64") => Ok(Layers {
            bytes: base64_decode(&bytes).ok_or_else(|| {
                ApiError::bad_request("malformed_body", "the body is not valid base64")
            })?,
            gzip: false,
        }),
        Some("" | "none") | None => {
            let trimmed = bytes.trim_ascii_start();
            if bytes.starts_with(&GZIP_MAGIC) {
                Ok(Layers { bytes, gzip: true })
            } else if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") || trimmed.is_empty() {
                Ok(Layers { bytes, gzip: false })
            } else {
                let bytes = base64_decode(trimmed).unwrap_or(bytes);
                let gzip = bytes.starts_with(&GZIP_MAGIC);
                Ok(Layers { bytes, gzip })
            }
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!(
                "compression `{}` is not supported; use gzip-js, base64 or none",
                other.chars().take(20).collect::<String>()
            ),
        )),
    }
}

/// The JSON document of a capture body.
pub fn payload(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    raw: Bytes,
) -> Result<Value, ApiError> {
    let l = layers(headers, query, raw)?;
    let bytes = if l.gzip { gunzip(&l.bytes)? } else { l.bytes };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("{e}; send a valid JSON document"))
    })
}

/// The first `"api_key"` or `"token"` member with a string value in a capture body, found by
/// streaming through its layers; inflates no more than it reads, and at most
/// [`MAX_DECOMPRESSED`] bytes.
pub fn find_key(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    raw: Bytes,
) -> Result<Option<String>, ApiError> {
    let l = layers(headers, query, raw)?;
    let found = if l.gzip {
        scan(flate2::read::GzDecoder::new(l.bytes.as_slice()).take(MAX_DECOMPRESSED))
    } else {
        scan(l.bytes.as_slice())
    };
    found.map_err(|e| {
        ApiError::bad_request("malformed_body", format!("the body is not valid gzip: {e}"))
    })
}

/// A key sent beside the body: `?api_key=`, `?token=` or `Authorization: Bearer`.
pub fn outer_key<'a>(
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
) -> Option<&'a str> {
    query
        .get("api_key")
        .or_else(|| query.get("token"))
        .map(String::as_str)
        .or_else(|| bearer(headers))
        .filter(|k| !k.is_empty())
}

/// The events of a PostHog payload (one event, an array, or `{batch: [...], sent_at}`),
/// normalised by [`posthog::events`]; 422 when one is not an event.
pub fn records(payload: Value) -> Result<Vec<(EventRecord, Clock)>, ApiError> {
    posthog::events(payload).map_err(|e| ApiError::from(EventError::Invalid(e)))
}

/// The records of a native batch, each parsed on its own so an error names its index.
pub fn native_records(body: Value) -> Result<Vec<(EventRecord, Clock)>, ApiError> {
    let items = match body {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("events") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_events",
                    "send an array of events or {\"events\": [...]}",
                ));
            }
        },
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_events",
                "send an array of events or {\"events\": [...]}",
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            serde_json::from_value::<EventRecord>(v)
                .map(|r| (r, Clock::Client))
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_events",
                        format!("event {index}: {e}; nothing of this batch was stored"),
                    )
                })
        })
        .collect()
}

/// What a PostHog flags request asks about: the environment (`environment` among the
/// `person_properties`; production by default) and the evaluation context of its
/// `distinct_id` (a string or a number) with the `person_properties`.
pub fn flags_request(payload: &Value) -> (Environment, Context) {
    let distinct_id = payload.get("distinct_id").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let attributes: BTreeMap<String, Value> = payload
        .get("person_properties")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    let env = attributes
        .get("environment")
        .and_then(Value::as_str)
        .and_then(Environment::parse)
        .unwrap_or(Environment::Production);
    (env, context(distinct_id, attributes))
}

/// Where the scanner is in the JSON text.
enum At {
    Between,
    /// Inside a string; `name` holds it while it could still be one of the key names.
    InString {
        name: Vec<u8>,
        escaped: bool,
    },
    /// Just after a string: a `:` makes it a member name.
    AfterString {
        wanted: bool,
    },
    /// After `"api_key":`, before the value.
    BeforeValue,
    InValue(Vec<u8>),
}

const NAMES: [&[u8]; 2] = [b"api_key", b"token"];
/// Longest key value read; Liftoff keys are far shorter.
const MAX_VALUE: usize = 512;

/// Bytes inflated and read at a time.
const SCAN_CHUNK: usize = 64 * 1024;

fn scan(mut reader: impl Read) -> std::io::Result<Option<String>> {
    let mut at = At::Between;
    let mut buf = vec![0u8; SCAN_CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        let chunk = &buf[..n];
        let mut i = 0;
        while i < n {
            // The long stretches (between strings, inside ordinary strings) are skipped with
            // memchr; only the bytes around a string's end go through `step`.
            match &mut at {
                At::Between => match memchr::memchr(b'"', &chunk[i..]) {
                    Some(j) => i += j,
                    None => break,
                },
                At::InString {
                    name,
                    escaped: false,
                } => match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(j) => {
                        let room = 9usize.saturating_sub(name.len()).min(j);
                        name.extend_from_slice(&chunk[i..i + room]);
                        i += j;
                    }
                    None => {
                        let room = 9usize.saturating_sub(name.len()).min(n - i);
                        name.extend_from_slice(&chunk[i..i + room]);
                        break;
                    }
                },
                _ => {}
            }
            let b = chunk[i];
            let mut again = true;
            while again {
                (at, again) = step(at, b);
            }
            i += 1;
            if let At::InValue(v) = &mut at
                && v.last() == Some(&0)
            {
                v.pop();
                return Ok(String::from_utf8(std::mem::take(v)).ok());
            }
        }
    }
}

/// One byte of the scan: the next state, and whether the byte must be looked at again. A
/// finished value is marked by a trailing NUL (which a JSON string cannot hold unescaped).
fn step(at: At, b: u8) -> (At, bool) {
    match at {
        At::Between => (
            if b == b'"' {
                At::InString {
                    name: Vec::with_capacity(8),
                    escaped: false,
                }
            } else {
                At::Between
            },
            false,
        ),
        At::InString { mut name, escaped } => {
            if escaped {
                name.clear();
                name.push(0);
                (
                    At::InString {
                        name,
                        escaped: false,
                    },
                    false,
                )
            } else if b == b'\\' {
                (
                    At::InString {
                        name,
                        escaped: true,
                    },
                    false,
                )
            } else if b == b'"' {
                let wanted = NAMES.contains(&name.as_slice());
                (At::AfterString { wanted }, false)
            } else {
                if name.len() <= 8 {
                    name.push(b);
                }
                (
                    At::InString {
                        name,
                        escaped: false,
                    },
                    false,
                )
            }
        }
        At::AfterString { wanted } => match b {
            b' ' | b'\t' | b'\n' | b'\r' => (At::AfterString { wanted }, false),
            b':' if wanted => (At::BeforeValue, false),
            _ => (At::Between, true),
        },
        At::BeforeValue => match b {
            b' ' | b'\t' | b'\n' | b'\r' => (At::BeforeValue, false),
            b'"' => (At::InValue(Vec::with_capacity(64)), false),
            _ => (At::Between, true),
        },
        At::InValue(mut v) => match b {
            b'"' => {
                v.push(0);
                (At::InValue(v), false)
            }
            // Keys never hold escapes or control characters: not a key, keep scanning.
            b'\\' => (
                At::InString {
                    name: vec![0],
                    escaped: true,
                },
                false,
            ),
            _ if v.len() >= MAX_VALUE => (
                At::InString {
                    name: vec![0],
                    escaped: false,
                },
                false,
            ),
            _ => {
                v.push(b);
                (At::InValue(v), false)
            }
        },
    }
}

/// `name=value&…` with `+` and `%XX` decoded.
pub fn form_fields(body: &[u8]) -> HashMap<String, String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    fn unescape(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi * 16 + lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (!k.is_empty()).then(|| (unescape(k), unescape(v)))
        })
        .collect()
}

fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    // A `+` that went through form decoding unescaped arrives as a space.
    let cleaned: Vec<u8> = text
        .iter()
        .filter(|b| !matches!(b, b'\n' | b'\r' | b'\t'))
        .map(|b| if *b == b' ' { b'+' } else { *b })
        .collect();
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(&cleaned)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(&cleaned))
        .ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn key_in(text: &str) -> Option<String> {
        scan(text.as_bytes()).unwrap()
    }

    #[test]
    fn finds_the_first_key_member_wherever_it_is() {
        assert_eq!(
            key_in(r#"{"api_key": "lft_a", "batch": []}"#).as_deref(),
            Some("lft_a")
        );
        assert_eq!(
            key_in(r#"{"batch":[{"event":"x","properties":{"token":"lft_b"}}],"api_key":"lft_c"}"#)
                .as_deref(),
            Some("lft_b")
        );
        assert_eq!(
            key_in(r#"[{"event":"x","token" :	"lft_d"}]"#).as_deref(),
            Some("lft_d")
        );
    }

    #[test]
    fn ignores_names_in_values_escapes_and_non_strings() {
        assert_eq!(
            key_in(r#"{"note":"\"api_key\": \"x\"","token":null}"#),
            None
        );
        assert_eq!(
            key_in(r#"{"token_x":"a","xtoken":"b","api_key":"\u0041"}"#),
            None
        );
        assert_eq!(key_in(r#"{"event":"api_key","distinct_id":"token"}"#), None);
        assert_eq!(
            key_in(r#"{"api_key": 42, "token": "lft_e"}"#).as_deref(),
            Some("lft_e")
        );
    }

    #[test]
    fn a_key_in_a_gzip_body_is_found_without_inflating_the_rest() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"api_key":"lft_f","batch":["#).unwrap();
        for _ in 0..200_000 {
            gz.write_all(br#"{"event":"x","distinct_id":"u"},"#)
                .unwrap();
        }
        gz.write_all(b"{}]}").unwrap();
        let body = gz.finish().unwrap();
        let mut counted = Counting(flate2::read::GzDecoder::new(body.as_slice()), 0);
        assert_eq!(scan(&mut counted).unwrap().as_deref(), Some("lft_f"));
        assert!(counted.1 <= SCAN_CHUNK, "read {} bytes", counted.1);
        let h = HeaderMap::new();
        let q = HashMap::new();
        assert_eq!(
            find_key(&h, &q, Bytes::from(body)).unwrap().as_deref(),
            Some("lft_f")
        );
    }

    struct Counting<R>(R, usize);
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn form_fields_decode() {
        let f = form_fields(b"data=eyJh%2BIjoxfQ%3D%3D&compression=base64&x");
        assert_eq!(f["data"], "eyJh+IjoxfQ==");
        assert_eq!(f["compression"], "base64");
        assert_eq!(f["x"], "");
        assert_eq!(form_fields(b"a=%zz%4")["a"], "%zz%4");
    }

    #[test]
    fn payloads_in_every_encoding() {
        let json = br#"{"event":"e","distinct_id":"u","api_key":"k"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let none = HashMap::new();
        let h = HeaderMap::new();
        let want: Value = serde_json::from_slice(json).unwrap();
        assert_eq!(payload(&h, &none, Bytes::from_static(json)).unwrap(), want);
        assert_eq!(payload(&h, &none, Bytes::from(b64.clone())).unwrap(), want);
        assert_eq!(
            find_key(&h, &none, Bytes::from(b64.clone()))
                .unwrap()
                .as_deref(),
            Some("k")
        );
        let form = format!("data={}", b64.replace('+', "%2B").replace('=', "%3D"));
        assert_eq!(payload(&h, &none, Bytes::from(form.clone())).unwrap(), want);
        assert_eq!(
            find_key(&h, &none, Bytes::from(form)).unwrap().as_deref(),
            Some("k")
        );
        let q = HashMap::from([("compression".to_owned(), "lz64".to_owned())]);
        assert_eq!(
            payload(&h, &q, Bytes::from_static(json))
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn every_event_shape_becomes_records() {
        let one = serde_json::json!({"event": "e", "distinct_id": "u"});
        let shapes = [
            one.clone(),
            serde_json::json!([one.clone(), one.clone()]),
            serde_json::json!({"api_key": "k", "batch": [one.clone(), one.clone(), one.clone()]}),
        ];
        let counts: Vec<usize> = shapes
            .into_iter()
            .map(|p| records(p).unwrap().len())
            .collect();
        assert_eq!(counts, [1, 2, 3]);
        let bad = records(serde_json::json!([one, 7])).unwrap_err();
        assert_eq!(
            (bad.status, bad.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_events")
        );
    }

    #[test]
    fn native_batches_are_an_array_or_wrapped() {
        let e = serde_json::json!({"event": "e", "user_id": "u"});
        assert_eq!(native_records(serde_json::json!([e, e])).unwrap().len(), 2);
        assert_eq!(
            native_records(serde_json::json!({"events": [e]}))
                .unwrap()
                .len(),
            1
        );
        for bad in [
            serde_json::json!({"batch": [e]}),
            serde_json::json!("e"),
            serde_json::json!([e, {"event": 5}]),
        ] {
            let err = native_records(bad).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let err = native_records(serde_json::json!([e, {"event": 5}])).unwrap_err();
        assert!(err.detail.starts_with("event 1: "), "{}", err.detail);
    }

    #[test]
    fn flags_requests_name_the_user_and_the_environment() {
        let (env, ctx) = flags_request(&serde_json::json!({
            "distinct_id": 42,
            "person_properties": {"environment": "staging", "plan": "pro"}
        }));
        assert_eq!(env, Environment::Staging);
        assert_eq!(ctx.user_id.as_deref(), Some("42"));
        assert_eq!(ctx.properties["plan"], "pro");
        let (env, ctx) = flags_request(&serde_json::json!({"distinct_id": ["x"]}));
        assert_eq!((env, ctx), (Environment::Production, Context::default()));
    }

    #[test]
    fn a_key_beside_the_body_comes_from_the_query_or_the_header() {
        let mut h = HeaderMap::new();
        let q = HashMap::from([("token".to_owned(), "lft_q".to_owned())]);
        assert_eq!(outer_key(&q, &h), Some("lft_q"));
        h.insert(header::AUTHORIZATION, "Bearer lft_h".parse().unwrap());
        assert_eq!(outer_key(&HashMap::new(), &h), Some("lft_h"));
        let empty = HashMap::from([("api_key".to_owned(), String::new())]);
        assert_eq!(outer_key(&empty, &HeaderMap::new()), None);
    }
}
