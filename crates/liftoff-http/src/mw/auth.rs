//! Bearer-token authentication and scope checks, as an extractor every API handler names:
//! `Caller<Admin>`, `Caller<Read>` or `Caller<Ingest>`. A handler cannot forget its scope
//! without the route test (`every_api_route_requires_a_token`) noticing.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use liftoff_core::auth::{Principal, Scope};

use crate::error::ApiError;
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

/// The token in `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S: RequiredScope + Send> FromRequestParts<AppState> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer_token(parts) else {
            return Err(ApiError::unauthorized(
                "send an API key as `Authorization: Bearer <token>`; the admin token is in <data>/admin-token on first start",
            ));
        };
        let Some(principal) = state.keys.authenticate(token).await? else {
            return Err(ApiError::unauthorized(
                "the token is unknown or revoked; create a new key with POST /api/keys",
            ));
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
        Ok(Self {
            principal,
            _scope: PhantomData,
        })
    }
}
