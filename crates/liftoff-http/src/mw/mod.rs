//! Middleware for every request: body limits, problem documents for bare errors, security
//! headers, panics turned into 500s, and one log line per request.

pub mod auth;
pub mod client;
pub mod cors;
pub mod ratelimit;
pub mod room;

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, InternalCause};
use crate::state::AppState;

/// What every request goes through, in one layer (one boxed future and one clone of the inner
/// service per request, instead of one per concern):
/// - a declared `Content-Length` over the limit is refused before any of the body is read
///   (bodies without a length are capped while they are read, `DefaultBodyLimit`);
/// - error responses that have no body of their own (axum's 405, a 413 from a capped stream)
///   get the problem-document shape, and each request is logged once;
/// - security headers.
pub async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let limit = state.settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let res = if declared.is_some_and(|n| n > limit as u64) {
        ApiError::payload_too_large(limit).into_response()
    } else {
        next.run(req).await
    };
    let mut res = finish_response(res, &method, &route, started);
    security_headers(&mut res);
    res
}

/// Gives a bare error response the problem-document shape and logs the request.
fn finish_response(
    mut res: Response,
    method: &axum::http::Method,
    route: &str,
    started: Instant,
) -> Response {
    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let detail = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                format!("{method} is not allowed on {route}; see /api/openapi.json")
            }
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is over the size limit".to_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        let code = match status {
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        };
        let allow = res.headers().get(header::ALLOW).cloned();
        let mut fresh = ApiError::new(status, code, detail).into_response();
        if let Some(allow) = allow {
            fresh.headers_mut().insert(header::ALLOW, allow);
        }
        res = fresh;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(InternalCause(cause)) = res.extensions().get::<InternalCause>() {
        tracing::error!(%method, %route, status = status.as_u16(), ms, cause = %cause, "Request failed.");
    } else {
        tracing::debug!(%method, %route, status = status.as_u16(), ms, "Request served.");
    }
    res
}

/// Records Liftoff's own traffic by route template (a route layer: it runs only for matched
/// routes, after routing, so the template is known; static files are left out as noise).
pub async fn record_own_traffic(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    if let Some(t) = template.filter(|t| !t.starts_with("/assets/") && t != "/favicon.ico") {
        state.monitoring.record_own(
            method.as_str(),
            &t,
            res.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
    }
    res
}

/// Headers that make the dashboard harder to frame, sniff or inject into.
fn security_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // A response that sets its own framing and policy keeps them (the report preview, framed
    // by the Reports page only).
    h.entry("x-frame-options")
        .or_insert(HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html && !h.contains_key("content-security-policy") {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
}

/// The answer when a handler panics: a problem document, and the panic in the log.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal(format!("handler panicked: {msg}")).into_response()
}
