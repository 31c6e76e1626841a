//! `Room<Queue>`: an extractor that answers 429 before the body is read when an ingest queue is
//! already behind (its writer would make the request wait longer than it allows), so a flood
//! costs the server a header parse per refused request, not a body parse.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use liftoff_core::batch::SubmitError;

use crate::error::ApiError;
use crate::state::AppState;

pub trait IngestQueue {
    fn admit(state: &AppState) -> Result<(), SubmitError>;
}

/// Product events (native and PostHog capture).
pub struct Events;
/// Request records (native and OTLP).
pub struct Requests;
/// Named operations.
pub struct Operations;

impl IngestQueue for Events {
    fn admit(state: &AppState) -> Result<(), SubmitError> {
        state.events.admit()
    }
}
impl IngestQueue for Requests {
    fn admit(state: &AppState) -> Result<(), SubmitError> {
        state.monitoring.admit()
    }
}
impl IngestQueue for Operations {
    fn admit(state: &AppState) -> Result<(), SubmitError> {
        state.operations.admit()
    }
}

/// Room in queue `Q` for one more request.
pub struct Room<Q>(PhantomData<Q>);

/// The refusal of a request that a queue cannot take now.
pub fn queue_full() -> ApiError {
    let mut e = ApiError::too_many_requests(1);
    e.detail = "the ingest queue is behind; retry after the time in Retry-After".to_owned();
    e.with_extension("reason", "queue_full")
}

impl<Q: IngestQueue + Send> FromRequestParts<AppState> for Room<Q> {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Q::admit(state).map_err(|_| queue_full())?;
        Ok(Self(PhantomData))
    }
}
