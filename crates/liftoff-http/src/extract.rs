//! Extractors whose rejections are problem documents, so a malformed body, query or path gets
//! the same error shape as every other failure.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::strict_json::{self, ReadError};

/// A JSON body. Syntax errors are 400, well-formed JSON of the wrong shape is 422, a missing
/// `Content-Type: application/json` or any `Content-Encoding` is 415 and a body over the limit
/// is 413. The shape is read with JSON Schema's rules ([`crate::strict_json`]), so what the
/// OpenAPI document allows is what is accepted.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        crate::body::refuse_encoding(req.headers())?;
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(req, state).await?;
        match strict_json::from_slice(&bytes) {
            Ok(v) => Ok(Self(v)),
            Err(ReadError::Syntax(e)) => Err(malformed(&e)),
            Err(ReadError::Shape(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                shape_error(&e),
            )),
        }
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(essence) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let essence = essence.trim().to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || (sub.ends_with("+json") && sub.len() > 5))
}

/// The whole body, within the router's size limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(crate::body::unreadable)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!("the body is not valid JSON: {e}; send a valid JSON document"),
    )
}

/// "the body does not have the expected shape: `path`: what was wrong".
fn shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        format!("the body does not have the expected shape: {}", e.inner())
    } else {
        format!(
            "the body does not have the expected shape: `{path}`: {}",
            e.inner()
        )
    }
}

/// Query parameters; a bad value is a 400 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request("invalid_query", r.body_text()))
    }
}

/// Path parameters; a bad value is a 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|r: PathRejection| ApiError::bad_request("invalid_path", r.body_text()))
    }
}

/// A JSON body that may be absent: an empty body (or `null`) is `T::default()`. The content type is not
/// enforced (protocol clients such as OFREP providers vary); malformed JSON is still a 400.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        crate::body::refuse_encoding(req.headers())?;
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        match strict_json::from_slice::<Option<T>>(&bytes) {
            Ok(v) => Ok(Self(v.unwrap_or_default())),
            Err(ReadError::Syntax(e)) => Err(malformed(&e)),
            Err(ReadError::Shape(e)) => Err(ApiError::bad_request("invalid_body", shape_error(&e))),
        }
    }
}
