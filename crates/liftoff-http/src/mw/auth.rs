//! Bearer-token authentication and scope checks, as an extractor every API handler names:
//! `Caller<Admin>`, `Caller<Read>` or `Caller<Ingest>`. A handler cannot forget its scope
//! without the route test (`every_api_route_requires_a_token`) noticing.

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use liftoff_core::auth::{Principal, Scope};

use crate::error::ApiError;
use crate::mw::client::client_ip;
use crate::state::AppState;

pub trait RequiredScope {
    /// Named in the 403 message.
    const NAME: &'static str;
    /// Whether a key with `scope` may use the route (admin always may).
    fn permits(scope: Scope) -> bool;
}

/// Routes that change configuration or manage keys.
pub struct Admin;
/// Routes that read (every GET of the API).
pub struct Read;
/// Routes that send data or evaluate flags.
pub struct Ingest;
/// Reads that client apps make too (a user's flags, the SDK feed): `read` or `ingest`.
pub struct ReadOrIngest;

impl RequiredScope for Admin {
    const NAME: &'static str = "admin";
    fn permits(scope: Scope) -> bool {
        scope == Scope::Admin
    }
}
impl RequiredScope for Read {
    const NAME: &'static str = "read";
    fn permits(scope: Scope) -> bool {
        scope.grants(Scope::Read)
    }
}
impl RequiredScope for Ingest {
    const NAME: &'static str = "ingest";
    fn permits(scope: Scope) -> bool {
        scope.grants(Scope::Ingest)
    }
}
impl RequiredScope for ReadOrIngest {
    const NAME: &'static str = "read or ingest";
    fn permits(scope: Scope) -> bool {
        scope.grants(Scope::Read) || scope.grants(Scope::Ingest)
    }
}

/// An authenticated caller holding scope `S` (or `admin`), within its rate limit.
pub struct Caller<S> {
    pub principal: Principal,
    _scope: PhantomData<S>,
}

/// The token in an `Authorization: Bearer <token>` header among `headers`: the one parser of
/// bearer tokens, for the `Caller` extractor and for PostHog capture's key beside the body.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 429 for a client address that used up its failed-authentication budget: checked before
/// anything else is done for it (before a key lookup, before a body is read).
pub fn refuse_if_failing(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    match state.auth_failures.blocked(&client.to_string()) {
        Some(retry) => Err(ApiError::too_many_failures(retry)),
        None => Ok(()),
    }
}

/// The one authentication check of every API route and capture endpoint: a client that keeps
/// failing is answered 429 before its token is even looked up, a missing or unknown token is a
/// 401 that spends from the client's failure budget, a key without the scope is a 403, and a
/// valid key spends from its own rate limit.
pub async fn authorize<S: RequiredScope>(
    state: &AppState,
    token: Option<&str>,
    client: IpAddr,
    missing: &'static str,
) -> Result<Principal, ApiError> {
    refuse_if_failing(state, client)?;
    let client_key = client.to_string();
    let refused = |err: ApiError| {
        let _ = state.auth_failures.check(&client_key);
        err
    };
    let Some(token) = token else {
        return Err(refused(ApiError::unauthorized(missing)));
    };
    let Some(principal) = state.keys.authenticate(token).await? else {
        return Err(refused(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the key is unknown or revoked; create a new key with POST /api/keys",
        )));
    };
    if !S::permits(principal.scope) {
        return Err(ApiError::forbidden(format!(
            "this key has scope `{}`; this route needs `{}`",
            principal.scope,
            S::NAME
        )));
    }
    let limiter = if principal.scope == Scope::Ingest {
        &state.ingest_limiter
    } else {
        &state.limiter
    };
    limiter
        .check(&principal.actor.identity())
        .map_err(ApiError::too_many_requests)?;
    Ok(principal)
}

impl<S: RequiredScope + Send> FromRequestParts<AppState> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authorize::<S>(
            state,
            bearer(&parts.headers),
            client_ip(&parts.extensions),
            "send an API key as `Authorization: Bearer <token>`; the admin token is in <data>/admin-token on first start",
        )
        .await?;
        Ok(Self {
            principal,
            _scope: PhantomData,
        })
    }
}
