//! Product-event capture: `POST /api/ingest/events` (Bearer ingest key) and the PostHog capture
//! endpoints (`/capture/`, `/batch/`, `/e/`, `/i/v0/e/`, with or without the trailing slash),
//! where the key travels in the body as PostHog's `api_key`/`token` (or `?api_key=`).
//!
//! Every event of a request is validated before any is stored, and the answer comes only once
//! they are committed: a 2xx means stored.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use liftoff_core::analytics::event::now_ms;
use liftoff_core::analytics::{Accepted, Clock, EventError, EventRecord, posthog};
use liftoff_core::auth::Scope;
use liftoff_core::batch::SubmitError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{decode, gunzip, unreadable};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Caller, Ingest};
use crate::state::AppState;

/// A batch: a bare array, or `{"events": [...]}`.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; `native_records` parses it event by event"
)]
#[serde(untagged)]
pub enum EventBatch {
    Bare(Vec<EventRecord>),
    Wrapped { events: Vec<EventRecord> },
}

/// PostHog's answer to a capture.
#[derive(Serialize, ToSchema)]
pub struct CaptureStatus {
    /// Always 1: the events are stored.
    pub status: u8,
    /// Events stored by this request (duplicates excluded).
    pub accepted: u64,
    /// Events whose uuid was already stored.
    pub duplicates: u64,
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::Invalid(_) | EventError::Empty => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_events",
                format!("{e}; nothing of this batch was stored"),
            ),
            EventError::TooMany(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_events",
                e.to_string(),
            ),
            EventError::Submit(SubmitError::Overloaded) => ApiError::too_many_requests(1),
            EventError::Submit(SubmitError::Closed) => {
                ApiError::unavailable(5, "Liftoff is shutting down; retry")
            }
            EventError::Submit(SubmitError::Store(cause)) => {
                let mut err = ApiError::unavailable(5, "the batch could not be committed; retry");
                if cause.contains("invalid") || cause.contains("Corrupt") {
                    err = err.with_extension("cause_kind", "store");
                }
                err
            }
        }
    }
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_events))
        .routes(routes!(capture_slash))
        .routes(routes!(capture_bare))
        .routes(routes!(batch_slash))
        .routes(routes!(batch_bare))
        .routes(routes!(e_slash))
        .routes(routes!(e_bare))
        .routes(routes!(i_v0_e_slash))
        .routes(routes!(i_v0_e_bare))
        .routes(routes!(flags_slash))
        .routes(routes!(decide_slash))
        .routes(routes!(decide_bare))
}

/// The records of a native batch, each parsed on its own so an error names its index.
fn native_records(body: Value) -> Result<Vec<(EventRecord, Clock)>, ApiError> {
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

/// Records a batch of product events: `{event, user_id, session_id?, timestamp?, properties?,
/// uuid?}` each (a bare array or `{"events": [...]}`, at most 10,000). All are validated before
/// any is stored; the answer comes once they are committed. A retry with the same `uuid`s is
/// counted under `duplicates` and not stored again.
#[utoipa::path(post, path = "/api/ingest/events", tag = "analytics", request_body = EventBatch,
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = Accepted),
        (status = 400, description = "Not JSON (or nested deeper than the parser allows)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An event is invalid; nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
async fn ingest_events(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Accepted>, ApiError> {
    let n = posthog::count(&body);
    let records = native_records(body).inspect_err(|_| state.events.reject(n))?;
    let valid = state.events.validate(records, now_ms())?;
    Ok(Json(state.events.ingest(valid).await?))
}

/// `name=value&…` with `+` and `%XX` decoded.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
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

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Undoes PostHog's encodings: form `data=` (+ `compression`), `?compression=gzip-js|gzip|base64`,
/// or a body that is gzip or base64 by its look. Returns the JSON document.
fn posthog_payload(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    raw: Bytes,
) -> Result<Value, ApiError> {
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
    let bytes = match compression
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("gzip-js" | "gzip") => gunzip(&bytes)?,
        Some("base64") => base64_decode(&bytes).ok_or_else(|| {
            ApiError::bad_request("malformed_body", "the body is not valid base64")
        })?,
        Some("" | "none") | None => {
            let trimmed = bytes.trim_ascii_start();
            if bytes.starts_with(&GZIP_MAGIC) {
                gunzip(&bytes)?
            } else if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") || trimmed.is_empty() {
                bytes
            } else {
                base64_decode(trimmed).unwrap_or(bytes)
            }
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "compression `{}` is not supported; use gzip-js, base64 or none",
                    other.chars().take(20).collect::<String>()
                ),
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("{e}; send a valid JSON document"))
    })
}

fn no_key() -> ApiError {
    ApiError::unauthorized(
        "send a Liftoff ingest key as the PostHog project API key (`api_key` or `token` in the body, or ?api_key=)",
    )
}

/// Authenticates a PostHog-style key with the same rules (and rate limit) as `Caller<Ingest>`.
async fn authenticate(state: &AppState, key: &str) -> Result<(), ApiError> {
    let Some(principal) = state.keys.authenticate(key).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the api_key is not a Liftoff ingest key (unknown or revoked); create one with POST /api/keys {\"scope\": \"ingest\"}",
        ));
    };
    if !principal.scope.grants(Scope::Ingest) {
        return Err(ApiError::forbidden(format!(
            "this key has scope `{}`; capture needs `ingest`",
            principal.scope
        )));
    }
    let limiter = if principal.scope == Scope::Ingest {
        &state.ingest_limiter
    } else {
        &state.limiter
    };
    limiter
        .check(&principal.actor.identity())
        .map_err(ApiError::too_many_requests)
}

async fn capture(
    state: AppState,
    query: HashMap<String, String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<CaptureStatus>, ApiError> {
    let raw = raw.map_err(unreadable)?;
    let outer_key = query
        .get("api_key")
        .or_else(|| query.get("token"))
        .cloned()
        .or_else(|| {
            let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|k| !k.is_empty());
    if raw.iter().all(u8::is_ascii_whitespace) && outer_key.is_none() {
        return Err(no_key());
    }
    let payload = posthog_payload(&headers, &query, raw)?;
    let key = outer_key
        .or_else(|| posthog::api_key(&payload))
        .ok_or_else(no_key)?;
    authenticate(&state, &key).await?;
    let n = posthog::count(&payload);
    let records = posthog::events(payload).map_err(|e| {
        state.events.reject(n);
        ApiError::from(EventError::Invalid(e))
    })?;
    let valid = state.events.validate(records, now_ms())?;
    let done = state.events.ingest(valid).await?;
    Ok(Json(CaptureStatus {
        status: 1,
        accepted: done.accepted,
        duplicates: done.duplicates,
    }))
}

/// One PostHog capture route per path: utoipa documents one path per handler.
macro_rules! posthog_route {
    ($name:ident, $path:literal) => {
        /// PostHog-compatible capture (public route; the key is in the body). Takes one event,
        /// an array, or `{api_key, batch: [...], sent_at}`; JSON, gzip (`Content-Encoding:
        /// gzip` or `?compression=gzip-js`, at most 20 MiB decompressed), base64, or a form
        /// with `data=`. The key is `api_key`/`token` in the body or `?api_key=`, and must be a
        /// Liftoff ingest key. Answers `{"status": 1}` once the events are stored.
        #[utoipa::path(post, path = $path, tag = "analytics",
            request_body(content = Object, description = "A PostHog capture payload"),
            params(("api_key" = Option<String>, Query, description = "The project API key (a Liftoff ingest key), when not in the body"),
                ("compression" = Option<String>, Query, description = "`gzip-js`, `gzip` or `base64`")),
            security(("posthog_api_key" = [])),
            responses((status = 200, body = CaptureStatus),
                (status = 400, description = "Not JSON, not gzip or not base64", body = Problem, content_type = "application/problem+json"),
                (status = 401, description = "No api_key, or not a Liftoff key", body = Problem, content_type = "application/problem+json"),
                (status = 413, description = "Body too large, before or after decompression", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "An event is invalid; nothing was stored", body = Problem, content_type = "application/problem+json"),
                (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
        async fn $name(
            State(state): State<AppState>,
            ApiQuery(query): ApiQuery<HashMap<String, String>>,
            headers: HeaderMap,
            raw: Result<Bytes, BytesRejection>,
        ) -> Result<Json<CaptureStatus>, ApiError> {
            capture(state, query, headers, raw).await
        }
    };
}

posthog_route!(capture_slash, "/capture/");
posthog_route!(capture_bare, "/capture");
posthog_route!(batch_slash, "/batch/");
posthog_route!(batch_bare, "/batch");
posthog_route!(e_slash, "/e/");
posthog_route!(e_bare, "/e");
posthog_route!(i_v0_e_slash, "/i/v0/e/");
posthog_route!(i_v0_e_bare, "/i/v0/e");

/// One flag in PostHog's `/flags?v=2` answer.
#[derive(Serialize, ToSchema)]
pub struct PosthogFlag {
    pub key: String,
    pub enabled: bool,
    /// The variant's name for a multivariate flag that assigned one.
    pub variant: Option<String>,
    #[schema(value_type = Object)]
    pub reason: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// PostHog's flag answer: `flags` (v2) and the older `featureFlags`/`featureFlagPayloads`.
#[derive(Serialize, ToSchema)]
pub struct PosthogFlags {
    pub flags: std::collections::BTreeMap<String, PosthogFlag>,
    #[serde(rename = "featureFlags")]
    #[schema(value_type = Object)]
    pub feature_flags: serde_json::Map<String, Value>,
    #[serde(rename = "featureFlagPayloads")]
    #[schema(value_type = Object)]
    pub feature_flag_payloads: serde_json::Map<String, Value>,
    #[serde(rename = "errorsWhileComputingFlags")]
    pub errors_while_computing_flags: bool,
}

async fn posthog_flags(
    state: AppState,
    query: HashMap<String, String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<PosthogFlags>, ApiError> {
    let raw = raw.map_err(unreadable)?;
    let outer_key = query.get("api_key").or_else(|| query.get("token")).cloned();
    if raw.iter().all(u8::is_ascii_whitespace) && outer_key.is_none() {
        return Err(no_key());
    }
    let payload = posthog_payload(&headers, &query, raw)?;
    let key = outer_key
        .or_else(|| posthog::api_key(&payload))
        .ok_or_else(no_key)?;
    authenticate(&state, &key).await?;
    let distinct_id = payload.get("distinct_id").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let attributes: std::collections::BTreeMap<String, Value> = payload
        .get("person_properties")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    let env = attributes
        .get("environment")
        .and_then(Value::as_str)
        .and_then(liftoff_core::flags::Environment::parse)
        .unwrap_or(liftoff_core::flags::Environment::Production);
    let ctx = super::flags::context(distinct_id, attributes);
    let catalog = state.flags.catalog();
    let mut out = PosthogFlags {
        flags: Default::default(),
        feature_flags: Default::default(),
        feature_flag_payloads: Default::default(),
        errors_while_computing_flags: false,
    };
    for (f, e) in catalog.evaluate_all(env, &ctx) {
        let key = f.flag_id.as_str().to_owned();
        let variant = (!f.variants.is_empty() && e.variant.enabled && e.enabled)
            .then(|| e.variant.name.clone());
        let payload = match &e.variant.payload {
            Some(p) if e.variant.enabled && e.enabled => {
                Some(liftoff_core::flags::payload_value(p))
            }
            _ => None,
        };
        out.feature_flags.insert(
            key.clone(),
            variant
                .clone()
                .map_or(Value::Bool(e.enabled), Value::String),
        );
        if let Some(p) = &payload {
            out.feature_flag_payloads.insert(key.clone(), p.clone());
        }
        out.flags.insert(
            key.clone(),
            PosthogFlag {
                key,
                enabled: e.enabled,
                variant,
                reason: serde_json::json!({"code": e.reason.as_str(), "description": e.reason.as_str()}),
                metadata: serde_json::json!({"payload": payload.map(|p| p.to_string())}),
            },
        );
    }
    Ok(Json(out))
}

/// One PostHog flag route per path.
macro_rules! posthog_flags_route {
    ($name:ident, $path:literal) => {
        /// PostHog-compatible feature-flag evaluation (public route; the key is in the body),
        /// minimal: every flag evaluated for `distinct_id` with `person_properties` as context
        /// (`environment` among them picks the environment; production by default). Groups and
        /// local evaluation are not supported.
        #[utoipa::path(post, path = $path, tag = "analytics",
            request_body(content = Object, description = "`{api_key|token, distinct_id, person_properties?}`"),
            params(("api_key" = Option<String>, Query, description = "The project API key (a Liftoff ingest key), when not in the body")),
            security(("posthog_api_key" = [])),
            responses((status = 200, body = PosthogFlags),
                (status = 400, body = Problem, content_type = "application/problem+json"),
                (status = 401, description = "No api_key, or not a Liftoff key", body = Problem, content_type = "application/problem+json")))]
        async fn $name(
            State(state): State<AppState>,
            ApiQuery(query): ApiQuery<HashMap<String, String>>,
            headers: HeaderMap,
            raw: Result<Bytes, BytesRejection>,
        ) -> Result<Json<PosthogFlags>, ApiError> {
            posthog_flags(state, query, headers, raw).await
        }
    };
}

posthog_flags_route!(flags_slash, "/flags/");
// No bare `/flags`: that is the dashboard's flag list. PostHog SDKs call `/flags/?v=2`.
posthog_flags_route!(decide_slash, "/decide/");
posthog_flags_route!(decide_bare, "/decide");

#[cfg(test)]
mod tests {
    use super::*;

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
        let json = br#"{"event":"e","distinct_id":"u"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let none = HashMap::new();
        let h = HeaderMap::new();
        let want: Value = serde_json::from_slice(json).unwrap();
        assert_eq!(
            posthog_payload(&h, &none, Bytes::from_static(json)).unwrap(),
            want
        );
        assert_eq!(
            posthog_payload(&h, &none, Bytes::from(b64.clone())).unwrap(),
            want
        );
        let form = format!("data={}", b64.replace('+', "%2B").replace('=', "%3D"));
        assert_eq!(posthog_payload(&h, &none, Bytes::from(form)).unwrap(), want);
        let q = HashMap::from([("compression".to_owned(), "lz64".to_owned())]);
        assert_eq!(
            posthog_payload(&h, &q, Bytes::from_static(json))
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
