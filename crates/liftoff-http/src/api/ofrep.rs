//! The OpenFeature Remote Evaluation Protocol: any OpenFeature SDK with an OFREP provider
//! evaluates Liftoff flags.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use liftoff_core::flags::{Environment, context, payload_value};
use liftoff_core::launch::LaunchError;
use liftoff_core::launch::service::{ADMITTED_FLAG, MAINTENANCE_FLAG, ReservedFlag};
use liftoff_eval::{EvaluationRef, Reason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, OptionalJson};
use crate::mw::auth::{Caller, Ingest};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(evaluate_one))
        .routes(routes!(evaluate_all))
}

/// An OFREP request: the evaluation context. `targetingKey` is the user id; `environment`
/// picks the flag environment (default production); the rest are targeting attributes.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OfrepRequest {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<BTreeMap<String, Value>>,
}

/// One flag's answer, borrowed from the catalog and the evaluation and written straight into
/// the body: a bulk answer builds no owned copy of any name, variant or value.
#[derive(Serialize, ToSchema)]
pub struct OfrepEvaluation<'a> {
    pub key: &'a str,
    /// A boolean for flags without variants; the variant's payload (any JSON value: string,
    /// number, object, …), or its name, otherwise.
    #[schema(value_type = Value)]
    pub value: OfrepValue<'a>,
    pub reason: &'static str,
    pub variant: &'a str,
    #[schema(value_type = Object)]
    pub metadata: Metadata,
}

/// What an answer's `value` holds.
#[derive(Serialize)]
#[serde(untagged)]
pub enum OfrepValue<'a> {
    Bool(bool),
    Name(&'a str),
    Payload(Value),
}

/// An answer's `metadata`: `{"source": "launch"}` for the launch-state flags, else empty.
pub struct Metadata {
    launch: bool,
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(usize::from(self.launch)))?;
        if self.launch {
            m.serialize_entry("source", "launch")?;
        }
        m.end()
    }
}

#[derive(Serialize, ToSchema)]
pub struct OfrepBulk<'a> {
    pub flags: Vec<OfrepEvaluation<'a>>,
}

fn split(req: OfrepRequest) -> (Environment, liftoff_eval::Context) {
    let mut attrs = req.context.unwrap_or_default();
    let env = attrs
        .get("environment")
        .and_then(Value::as_str)
        .and_then(Environment::parse)
        .unwrap_or(Environment::Production);
    let user = attrs
        .remove("targetingKey")
        .and_then(|v| v.as_str().map(str::to_owned));
    (env, context(user, attrs))
}

fn answer<'a>(key: &'a str, has_variants: bool, e: &EvaluationRef<'a>) -> OfrepEvaluation<'a> {
    let value = match e.payload {
        _ if !has_variants => OfrepValue::Bool(e.enabled),
        Some(p) if e.variant_enabled => OfrepValue::Payload(payload_value(p)),
        _ => OfrepValue::Name(e.served_value()),
    };
    OfrepEvaluation {
        key,
        value,
        reason: e.reason.as_str(),
        variant: e.served_value(),
        metadata: Metadata { launch: false },
    }
}

/// A launch-state flag as an OFREP answer (see `GET /api/launch/status`).
fn reserved_answer(r: &ReservedFlag) -> OfrepEvaluation<'_> {
    OfrepEvaluation {
        key: r.key,
        value: OfrepValue::Bool(r.value),
        reason: r.reason,
        variant: if r.value { "on" } else { "off" },
        metadata: Metadata { launch: true },
    }
}

/// Evaluates one flag. Two keys are reserved for launch state: `liftoff.maintenance` (true
/// while maintenance mode holds the user out) and `liftoff.admitted` (true when the context's
/// `targetingKey` holds a seat of the soft-launch cap; evaluating it asks for one).
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "ofrep", request_body = Option<OfrepRequest>,
    params(("key" = String, Path)), security(("bearer" = ["ingest"])),
    responses((status = 200, body = OfrepEvaluation<'static>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`errorCode: FLAG_NOT_FOUND`", body = Problem, content_type = "application/problem+json")))]
async fn evaluate_one(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiPath(key): ApiPath<String>,
    OptionalJson(req): OptionalJson<OfrepRequest>,
) -> Result<Response, ApiError> {
    let (env, ctx) = split(req);
    if let Some(reserved) = state
        .launch
        .reserved_flag(&key, ctx.user_id.as_deref())
        .await
    {
        return match reserved {
            Ok(r) => Ok(Json(reserved_answer(&r)).into_response()),
            // OFREP's evaluation errors are 400 with an `errorCode`.
            Err(LaunchError::Invalid(detail)) => Err(ApiError::bad_request(
                "targeting_key_missing",
                detail.clone(),
            )
            .with_extension("key", key.clone())
            .with_extension("errorCode", "TARGETING_KEY_MISSING")
            .with_extension("errorDetails", detail)),
            Err(e) => Err(e.into()),
        };
    }
    let catalog = state.flags.catalog();
    let e = catalog.evaluate_ref(&key, env, &ctx);
    state
        .experiments
        .observe_evaluation(&key, env, ctx.user_id.as_deref(), e.given_variant());
    let flag = catalog.flags.get(key.as_str());
    let Some(flag) = flag.filter(|_| e.found && e.reason != Reason::Error) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "flag_not_found",
            format!("flag `{key}` not found"),
        )
        .with_extension("key", key.clone())
        .with_extension("errorCode", "FLAG_NOT_FOUND")
        .with_extension("errorDetails", format!("flag `{key}` not found")));
    };
    Ok(Json(answer(&key, !flag.variants.is_empty(), &e)).into_response())
}

/// Evaluates every flag for one context, with `liftoff.maintenance` (and `liftoff.admitted`
/// when the context has a `targetingKey`). Send the last `ETag` as `If-None-Match`: while
/// neither the flags nor the context changed the answer is 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "ofrep", request_body = Option<OfrepRequest>,
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = OfrepBulk<'static>), (status = 304, description = "Unchanged since the ETag"),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn evaluate_all(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<OfrepRequest>,
) -> Result<Response, ApiError> {
    let mut h = Sha256::new();
    // The context as JSON (its keys in order), hashed as it is written: no copy of it is kept.
    serde_json::to_writer(HashWriter(&mut h), &req.context).map_err(ApiError::internal)?;
    let (env, ctx) = split(req);
    let catalog = state.flags.catalog();
    let mut reserved = Vec::with_capacity(2);
    for key in [MAINTENANCE_FLAG, ADMITTED_FLAG] {
        if key == ADMITTED_FLAG && ctx.user_id.is_none() {
            continue;
        }
        if let Some(r) = state
            .launch
            .reserved_flag(key, ctx.user_id.as_deref())
            .await
        {
            reserved.push(r?);
        }
    }
    h.update(catalog.env(env).etag.as_bytes());
    for r in &reserved {
        h.update(r.key.as_bytes());
        h.update(r.version.as_bytes());
    }
    let etag = format!("\"{}\"", hex::encode(&h.finalize()[..12]));
    let etag = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if crate::etag::is_fresh(&headers, etag.to_str().unwrap_or_default()) {
        return Ok(crate::etag::not_modified(etag));
    }
    let user = ctx.user_id.as_deref();
    let flags = catalog
        .evaluate_all(env, &ctx)
        .map(|(f, e)| {
            let key = f.flag_id.as_str();
            state
                .experiments
                .observe_evaluation(key, env, user, e.given_variant());
            answer(key, !f.variants.is_empty(), &e)
        })
        .chain(reserved.iter().map(reserved_answer))
        .collect();
    let mut res = Json(OfrepBulk { flags }).into_response();
    res.headers_mut().insert(header::ETAG, etag);
    Ok(res)
}

/// Feeds what is written into a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
