//! Product-event capture: `POST /api/ingest/events` (Bearer ingest key) and the PostHog capture
//! endpoints (`/capture/`, `/batch/`, `/e/`, `/i/v0/e/`, with or without the trailing slash),
//! where the key travels in the body as PostHog's `api_key`/`token` (or `?api_key=`).
//!
//! Every event of a request is validated before any is stored, and the answer comes only once
//! they are committed: a 2xx means stored.
//!
//! The handlers only orchestrate: authenticate ([`authorize`], the check every API route
//! shares), decode the body with [`posthog_body`] (its layers, its key, its event shapes), and
//! hand the records to the events service.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use liftoff_core::analytics::event::now_ms;
use liftoff_core::analytics::{Accepted, EventRecord, posthog};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::posthog_body;
use crate::body::read_capped;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::mw::auth::{Caller, Ingest, authorize, refuse_if_failing};
use crate::mw::client::ClientIp;
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
    _room: crate::mw::room::Room<crate::mw::room::Events>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Accepted>, ApiError> {
    let n = posthog::count(&body);
    let records = posthog_body::native_records(body).inspect_err(|_| state.events.reject(n))?;
    let valid = state.events.validate(records, now_ms())?;
    Ok(Json(state.events.ingest(valid).await?))
}

const NO_KEY: &str = "send a Liftoff ingest key as the PostHog project API key (`api_key` or `token` in the body, or ?api_key=)";

/// Authenticates a capture request before its body is parsed: a key beside the body is checked
/// before the body is even read; a key inside it is found by a streaming look
/// ([`posthog_body::find_key`]) and checked before anything is inflated into memory.
async fn authenticated_payload(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    client: std::net::IpAddr,
    body: Body,
) -> Result<Value, ApiError> {
    refuse_if_failing(state, client)?;
    state
        .events
        .admit()
        .map_err(|_| crate::mw::room::queue_full())?;
    let limit = state.settings.max_body_bytes;
    if let Some(key) = posthog_body::outer_key(query, headers) {
        authorize::<Ingest>(state, Some(key), client, NO_KEY).await?;
        let raw = read_capped(body, limit).await?;
        return posthog_body::payload(headers, query, raw);
    }
    let raw = read_capped(body, limit).await?;
    let key = if raw.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        posthog_body::find_key(headers, query, raw.clone())?
    };
    authorize::<Ingest>(state, key.as_deref(), client, NO_KEY).await?;
    posthog_body::payload(headers, query, raw)
}

async fn capture(
    state: AppState,
    query: HashMap<String, String>,
    headers: HeaderMap,
    client: std::net::IpAddr,
    body: Body,
) -> Result<Json<CaptureStatus>, ApiError> {
    let payload = authenticated_payload(&state, &query, &headers, client, body).await?;
    let n = posthog::count(&payload);
    let records = posthog_body::records(payload).inspect_err(|_| state.events.reject(n))?;
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
            client: ClientIp,
            body: Body,
        ) -> Result<Json<CaptureStatus>, ApiError> {
            capture(state, query, headers, client.0, body).await
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
    client: std::net::IpAddr,
    body: Body,
) -> Result<Json<PosthogFlags>, ApiError> {
    let payload = authenticated_payload(&state, &query, &headers, client, body).await?;
    let (env, ctx) = posthog_body::flags_request(&payload);
    let catalog = state.flags.catalog();
    let mut out = PosthogFlags {
        flags: Default::default(),
        feature_flags: Default::default(),
        feature_flag_payloads: Default::default(),
        errors_while_computing_flags: false,
    };
    for (f, e) in catalog.evaluate_all(env, &ctx) {
        let key = f.flag_id.as_str().to_owned();
        let variant = (!f.variants.is_empty() && e.variant_enabled && e.enabled)
            .then(|| e.variant_name.to_owned());
        let payload = match e.payload {
            Some(p) if e.variant_enabled && e.enabled => {
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
            request_body(content = serde_json::Value, description = "`{api_key|token, distinct_id, person_properties?}`"),
            params(("api_key" = Option<String>, Query, description = "The project API key (a Liftoff ingest key), when not in the body")),
            security(("posthog_api_key" = [])),
            responses((status = 200, body = PosthogFlags),
                (status = 400, body = Problem, content_type = "application/problem+json"),
                (status = 401, description = "No api_key, or not a Liftoff key", body = Problem, content_type = "application/problem+json")))]
        async fn $name(
            State(state): State<AppState>,
            ApiQuery(query): ApiQuery<HashMap<String, String>>,
            headers: HeaderMap,
            client: ClientIp,
            body: Body,
        ) -> Result<Json<PosthogFlags>, ApiError> {
            posthog_flags(state, query, headers, client.0, body).await
        }
    };
}

posthog_flags_route!(flags_slash, "/flags/");
// No bare `/flags`: that is the dashboard's flag list. PostHog SDKs call `/flags/?v=2`.
posthog_flags_route!(decide_slash, "/decide/");
posthog_flags_route!(decide_bare, "/decide");
