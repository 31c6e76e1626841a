//! The feed SDKs that evaluate locally read: every definition for one environment, with an
//! ETag, and a Server-Sent Events stream that pushes the new definitions on every change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::flags::environment;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::mw::auth::{Caller, ReadOrIngest};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(flags))
        .routes(routes!(stream))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// development, staging or production (default).
    #[param(pattern = "^(|development|dev|staging|stage|production|prod)$")]
    environment: Option<String>,
}

/// Every flag definition for one environment, in Unleash's client-features format (plus
/// `whitelist`/`blacklist`). 304 when `If-None-Match` carries the current ETag.
#[utoipa::path(get, path = "/api/sdk/flags", tag = "sdk", params(FeedParams), security(("bearer" = ["read", "ingest"])),
    responses((status = 200, description = "Client features JSON"), (status = 304, description = "Unchanged"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn flags(
    State(state): State<AppState>,
    _caller: Caller<ReadOrIngest>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<FeedParams>,
) -> Result<Response, ApiError> {
    let env = environment(p.environment.as_deref())?;
    let catalog = state.flags.catalog();
    let feed = catalog.env(env);
    let etag = HeaderValue::from_str(&feed.etag).map_err(ApiError::internal)?;
    if crate::etag::is_fresh(&headers, &feed.etag) {
        return Ok(crate::etag::not_modified(etag));
    }
    // Serialized once per catalog, not once per request.
    let body = feed.json.as_bytes().to_vec();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response())
}

/// Server-Sent Events: `event: flags` with the definitions (`id` is their ETag) at once and
/// after every change; a keep-alive comment every 15 s.
#[utoipa::path(get, path = "/api/sdk/stream", tag = "sdk", params(FeedParams), security(("bearer" = ["read", "ingest"])),
    responses((status = 200, description = "text/event-stream"), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn stream(
    State(state): State<AppState>,
    _caller: Caller<ReadOrIngest>,
    ApiQuery(p): ApiQuery<FeedParams>,
) -> Result<impl IntoResponse, ApiError> {
    let env = environment(p.environment.as_deref())?;
    let changes = state.flags.subscribe();
    let flags = state.flags.clone();
    let events = stream::unfold(
        (changes, None::<String>, flags),
        move |(mut changes, mut last, flags)| async move {
            loop {
                let catalog = flags.catalog();
                let feed = catalog.env(env);
                if last.as_deref() != Some(feed.etag.as_str()) {
                    last = Some(feed.etag.clone());
                    // Serialized once per catalog, not once per connection.
                    let event = Event::default()
                        .event("flags")
                        .id(feed.etag.trim_matches('"'))
                        .data(&*feed.json);
                    return Some((Ok::<Event, Infallible>(event), (changes, last, flags)));
                }
                // Ends the stream when the service goes away (shutdown).
                changes.changed().await.ok()?;
            }
        },
    );
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
