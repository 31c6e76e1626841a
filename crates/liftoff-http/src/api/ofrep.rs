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
use liftoff_eval::{Evaluation, Reason};
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

#[derive(Serialize, ToSchema)]
pub struct OfrepEvaluation {
    pub key: String,
    /// A boolean for flags without variants; the variant's payload (any JSON value: string,
    /// number, object, …), or its name, otherwise.
    pub value: Value,
    pub reason: &'static str,
    pub variant: String,
    #[schema(value_type = Object)]
    pub metadata: BTreeMap<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct OfrepBulk {
    pub flags: Vec<OfrepEvaluation>,
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

fn ofrep_value(has_variants: bool, e: &Evaluation) -> Value {
    if !has_variants {
        return Value::Bool(e.enabled);
    }
    match &e.variant.payload {
        Some(p) if e.variant.enabled => payload_value(p),
        _ => Value::String(e.served_value().to_owned()),
    }
}

fn answer(key: &str, has_variants: bool, e: &Evaluation) -> OfrepEvaluation {
    OfrepEvaluation {
        key: key.to_owned(),
        value: ofrep_value(has_variants, e),
        reason: e.reason.as_str(),
        variant: e.served_value().to_owned(),
        metadata: BTreeMap::new(),
    }
}

/// A launch-state flag as an OFREP answer (see `GET /api/launch/status`).
fn reserved_answer(r: &ReservedFlag) -> OfrepEvaluation {
    OfrepEvaluation {
        key: r.key.to_owned(),
        value: Value::Bool(r.value),
        reason: r.reason,
        variant: if r.value { "on" } else { "off" }.to_owned(),
        metadata: BTreeMap::from([("source".to_owned(), Value::from("launch"))]),
    }
}

/// Evaluates one flag. Two keys are reserved for launch state: `liftoff.maintenance` (true
/// while maintenance mode holds the user out) and `liftoff.admitted` (true when the context's
/// `targetingKey` holds a seat of the soft-launch cap; evaluating it asks for one).
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "ofrep", request_body = Option<OfrepRequest>,
    params(("key" = String, Path)), security(("bearer" = ["ingest"])),
    responses((status = 200, body = OfrepEvaluation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`errorCode: FLAG_NOT_FOUND`", body = Problem, content_type = "application/problem+json")))]
async fn evaluate_one(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    ApiPath(key): ApiPath<String>,
    OptionalJson(req): OptionalJson<OfrepRequest>,
) -> Result<Json<OfrepEvaluation>, ApiError> {
    let (env, ctx) = split(req);
    if let Some(reserved) = state
        .launch
        .reserved_flag(&key, ctx.user_id.as_deref())
        .await
    {
        return match reserved {
            Ok(r) => Ok(Json(reserved_answer(&r))),
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
    let e = catalog.evaluate(&key, env, &ctx);
    state
        .experiments
        .observe_evaluation(&key, env, ctx.user_id.as_deref(), &e);
    if !e.found || e.reason == Reason::Error {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "flag_not_found",
            format!("flag `{key}` not found"),
        )
        .with_extension("key", key.clone())
        .with_extension("errorCode", "FLAG_NOT_FOUND")
        .with_extension("errorDetails", format!("flag `{key}` not found")));
    }
    let has_variants = catalog
        .flags
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .is_some_and(|(_, f)| !f.variants.is_empty());
    Ok(Json(answer(&key, has_variants, &e)))
}

/// Evaluates every flag for one context, with `liftoff.maintenance` (and `liftoff.admitted`
/// when the context has a `targetingKey`). Send the last `ETag` as `If-None-Match`: while
/// neither the flags nor the context changed the answer is 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "ofrep", request_body = Option<OfrepRequest>,
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = OfrepBulk), (status = 304, description = "Unchanged since the ETag"),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn evaluate_all(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<OfrepRequest>,
) -> Result<Response, ApiError> {
    let context_key = serde_json::to_vec(&req.context).unwrap_or_default();
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
    let mut h = Sha256::new();
    h.update(catalog.env(env).etag.as_bytes());
    h.update(&context_key);
    for r in &reserved {
        h.update(r.key.as_bytes());
        h.update(r.version.as_bytes());
    }
    let etag = format!("\"{}\"", hex::encode(&h.finalize()[..12]));
    if crate::etag::is_fresh(&headers, &etag) {
        let etag = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
        return Ok(crate::etag::not_modified(etag));
    }
    let flags = catalog
        .evaluate_all(env, &ctx)
        .into_iter()
        .map(|(f, e)| {
            state.experiments.observe_evaluation(
                f.flag_id.as_str(),
                env,
                ctx.user_id.as_deref(),
                &e,
            );
            answer(f.flag_id.as_str(), !f.variants.is_empty(), &e)
        })
        .chain(reserved.iter().map(reserved_answer))
        .collect();
    let mut res = Json(OfrepBulk { flags }).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}
