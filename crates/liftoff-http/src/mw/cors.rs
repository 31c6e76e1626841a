//! Cross-origin access for the routes a customer's own web page calls from the browser: the
//! feedback widget posts from the app's origin, not Liftoff's.
//!
//! Any origin may call them because the credential is an ingest key in the `Authorization`
//! header, never a cookie: the answer carries `Access-Control-Allow-Origin: *` and no
//! `Allow-Credentials`, so a browser never attaches (or exposes answers to) the dashboard's
//! session. Only the routes this layer is put on are opened; the rest of the API stays
//! same-origin.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a browser may reuse a preflight answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";

/// Answers preflights and marks every answer (errors too, so the widget can read the problem
/// document) as readable from any origin.
pub async fn public(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        (
            StatusCode::NO_CONTENT,
            [
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("authorization, content-type"),
                ),
                (
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(PREFLIGHT_MAX_AGE),
                ),
            ],
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    res
}
