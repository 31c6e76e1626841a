//! Liftoff's HTTP surface.
//!
//! Layout:
//! - [`api`]: JSON routes per domain with their OpenAPI descriptions.
//! - [`ui`]: the server-rendered dashboard (sessions, CSRF, pages, embedded assets).
//! - [`mw`]: authentication and scopes, rate limits, body limits, security headers.
//! - [`error`]: the problem-document error every route answers with.
//! - [`extract`]: extractors whose rejections are problem documents.
//! - [`state`]: what handlers can reach.

mod api;
mod body;
pub mod error;
mod etag;
pub mod extract;
mod metrics;
pub mod mw;
pub mod server;
pub mod state;
mod strict_json;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, Problem};
pub use state::{AppState, HttpSettings, Services};

/// The OpenAPI document of every JSON route, as served at `/api/openapi.json`: generated from
/// the route annotations, with the error answers every operation shares added.
pub fn openapi() -> serde_json::Value {
    api::document(&api::routes().split_for_parts().1)
}

/// The whole application: API, dashboard, health endpoints, with middleware applied.
pub fn app(state: AppState) -> Router {
    let (api_router, openapi) = api::routes().split_for_parts();
    let openapi_json: Arc<[u8]> = serde_json::to_vec_pretty(&api::document(&openapi))
        .unwrap_or_default()
        .into();
    let max_body = state.settings.max_body_bytes;
    Router::new()
        .merge(api_router)
        .route(
            "/api/openapi.json",
            get(move || {
                let body = openapi_json.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        body.to_vec(),
                    )
                }
            }),
        )
        .route("/metrics", get(metrics::render))
        .merge(ui::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            mw::record_own_traffic,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), mw::edge))
        .layer(CatchPanicLayer::custom(mw::panic_response))
        .with_state(state)
}

/// 404: a problem document for API clients, a page for browsers.
async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && !path.starts_with("/api/") {
        return ui::layout::error_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no page at this address.",
        );
    }
    ApiError::not_found(format!("no route for {path}; see /api/openapi.json")).into_response()
}
