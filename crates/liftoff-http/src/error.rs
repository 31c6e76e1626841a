//! One error shape for every failure: RFC 9457 problem documents (`application/problem+json`).
//!
//! Client errors say what was wrong and what to do. Internal errors say only that something went
//! wrong; their cause is logged by the `log_internal_errors` middleware, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use liftoff_core::error::{Classified, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem: `/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable code, the last segment of `type`.
    pub code: String,
}

/// The cause of a 500, carried to the logging middleware in the response's extensions.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    retry_after: Option<u64>,
    internal: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. OFREP's `errorCode`.
    extensions: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            internal: None,
            extensions: serde_json::Map::new(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than the limit of {limit} bytes; send less data per request"
            ),
        )
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this key; retry after {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// A client that failed authentication too often: 429 until its budget refills.
    pub fn too_many_failures(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_authentications",
            format!(
                "too many failed authentications from this address; check the key and retry after {retry_after_secs} s"
            ),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn unavailable(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// A failure that is not the client's: the body says so, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Liftoff could not complete the request; the cause is in the server log",
        );
        e.internal = Some(cause.to_string());
        e
    }

    pub fn with_extension(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let mut doc = serde_json::to_value(self.problem()).unwrap_or_default();
        if let Some(obj) = doc.as_object_mut() {
            for (k, v) in &self.extensions {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"liftoff\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(cause) = self.internal.take() {
            res.extensions_mut().insert(InternalCause(cause));
        }
        res
    }
}

/// The one status for each kind of failure, shared by the API and the dashboard.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Every domain error becomes a problem document the same way: the status of its kind, its
/// code, what a client may read, `Retry-After` when it says when, and the message in the log
/// when it is withheld from the client.
impl<E: Classified> From<E> for ApiError {
    fn from(e: E) -> Self {
        let kind = e.kind();
        if kind == ErrorKind::Internal {
            return Self::internal(e);
        }
        let mut err = Self::new(status_of(kind), e.code().as_str(), e.detail());
        err.retry_after = e.retry_after_secs();
        if e.withheld() {
            err.internal = Some(e.to_string());
        }
        if let Some(cause) = e.cause_kind() {
            err = err.with_extension("cause_kind", cause.as_str());
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use liftoff_core::StoreError;
    use liftoff_core::analytics::EventError;
    use liftoff_core::batch::SubmitError;
    use liftoff_core::error::Code;
    use liftoff_core::users::UserError;

    use super::*;

    /// What clients already match on: the status and code of every classified failure.
    #[test]
    fn every_code_keeps_its_status() {
        let pinned: Vec<(&str, u16)> = Code::ALL
            .iter()
            .map(|c| (c.as_str(), status_of(c.kind()).as_u16()))
            .collect();
        let expected = [
            ("not_found", 404),
            ("conflict", 409),
            ("unavailable", 503),
            ("rate_limited", 429),
            ("internal", 500),
            ("invalid_key_name", 422),
            ("invalid_user", 422),
            ("user_exists", 409),
            ("flag_not_found", 404),
            ("flag_exists", 409),
            ("invalid_flag", 422),
            ("flag_busy", 409),
            ("flag_disabled", 409),
            ("invalid_alert_input", 422),
            ("monitor_not_found", 404),
            ("invalid_monitor", 422),
            ("incident_not_found", 404),
            ("invalid_incident", 422),
            ("incident_busy", 409),
            ("invalid_query", 422),
            ("invalid_events", 422),
            ("too_many_events", 413),
            ("invalid_records", 422),
            ("invalid_funnel", 422),
            ("invalid_launch_input", 422),
            ("feedback_not_found", 404),
            ("launch_busy", 409),
            ("phase_criteria_not_met", 409),
            ("last_phase", 409),
            ("experiment_not_found", 404),
            ("invalid_experiment", 422),
            ("experiment_conflict", 409),
            ("experiment_busy", 409),
            ("deployment_not_found", 404),
            ("invalid_deployment", 422),
            ("report_not_found", 404),
            ("invalid_report", 422),
        ];
        assert_eq!(pinned, expected);
    }

    #[test]
    fn retry_after_cause_and_log_follow_the_classification() {
        let e = ApiError::from(EventError::Submit(SubmitError::Store(
            StoreError::Unavailable("db:5432".into()),
        )));
        assert_eq!((e.status.as_u16(), e.code), (503, "unavailable"));
        assert_eq!(e.retry_after, Some(5));
        assert_eq!(e.extensions["cause_kind"], "unavailable");
        let e = ApiError::from(UserError::Busy);
        assert_eq!((e.status.as_u16(), e.retry_after), (503, Some(1)));
        assert!(e.internal.is_none());
        let e = ApiError::from(StoreError::Unavailable("db:5432".into()));
        assert_eq!(e.detail, "the store is unavailable; retry shortly");
        assert_eq!(e.internal.as_deref(), Some("store unavailable: db:5432"));
        let e = ApiError::from(UserError::InvalidUsername);
        assert_eq!((e.status.as_u16(), e.retry_after), (422, None));
        let e = ApiError::from(StoreError::Corrupt("row 7".into()));
        assert_eq!((e.status.as_u16(), e.code), (500, "internal"));
        assert!(!e.detail.contains("row 7"));
    }
}
