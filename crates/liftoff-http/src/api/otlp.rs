//! OTLP/HTTP receiver: `POST /v1/metrics` and `POST /v1/traces`, so OpenTelemetry SDKs and
//! collectors export HTTP server metrics and spans straight to Liftoff (with an `ingest` key as
//! `Authorization: Bearer …`). Binary protobuf and OTLP/JSON, optionally gzip-compressed.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use liftoff_core::monitoring::otlp::{
    self, Converted, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    ExportTraceServiceRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{decode as body, unreadable};
use crate::error::{ApiError, Problem};
use crate::mw::auth::{Caller, Ingest};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_metrics))
        .routes(routes!(export_traces))
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Protobuf,
    Json,
}

fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send OTLP as `Content-Type: application/x-protobuf` or `application/json`",
        )),
    }
}

fn parse<M: prost::Message + Default>(
    format: Format,
    bytes: &[u8],
    from_json: fn(&serde_json::Value) -> Result<M, String>,
) -> Result<M, ApiError> {
    match format {
        Format::Protobuf => {
            otlp::decode(bytes).map_err(|e| ApiError::bad_request("malformed_otlp", e))
        }
        Format::Json => {
            let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
                ApiError::bad_request("malformed_json", format!("{e}; send a valid JSON document"))
            })?;
            from_json(&v).map_err(|e| ApiError::bad_request("malformed_otlp", e))
        }
    }
}

/// The empty export answer, in the request's format.
fn success(format: Format) -> Response {
    match format {
        Format::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            prost::Message::encode_to_vec(&ExportMetricsServiceResponse {}),
        )
            .into_response(),
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
    }
}

/// Stores converted cells; nothing to store is not an error.
async fn store(state: &AppState, converted: &mut Converted) -> Result<(), ApiError> {
    if converted.skipped > 0 {
        tracing::debug!(
            skipped = converted.skipped,
            "OTLP points or spans not recorded"
        );
    }
    if converted.cells.is_empty() {
        return Ok(());
    }
    state
        .monitoring
        .ingest_cells(std::mem::take(&mut converted.cells))
        .await?;
    Ok(())
}

/// OTLP/HTTP metrics export. Data points of the histograms `http.server.request.duration`
/// (seconds) and `http.server.duration` (milliseconds) are recorded per minute, service,
/// method, route and status; cumulative histograms count only their increase. Other metrics
/// are accepted and ignored. Protobuf or JSON, optionally gzip (at most 20 MiB decompressed).
#[utoipa::path(post, path = "/v1/metrics", tag = "monitoring",
    request_body(description = "`ExportMetricsServiceRequest` (OTLP protobuf or OTLP/JSON)",
        content((Vec<u8> = "application/x-protobuf"), (Object = "application/json"))),
    security(("bearer" = ["ingest"])),
    responses((status = 200, description = "An empty `ExportMetricsServiceResponse`, in the request's format"),
        (status = 400, description = "Not a valid OTLP message", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large, before or after decompression", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not protobuf or JSON, or an unsupported encoding", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
async fn export_metrics(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    _room: crate::mw::room::Room<crate::mw::room::Requests>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = format(&headers)?;
    let bytes = body(&headers, raw.map_err(unreadable)?)?;
    let req: ExportMetricsServiceRequest = parse(format, &bytes, otlp::metrics_from_json)?;
    let mut converted = state.otlp.metrics(&req, Utc::now());
    store(&state, &mut converted).await?;
    state.otlp.commit(converted);
    Ok(success(format))
}

/// OTLP/HTTP trace export. Spans of kind SERVER are recorded as requests (duration = end −
/// start; status from `http.response.status_code`, 500 for an ERROR span without one); other
/// spans are accepted and ignored.
#[utoipa::path(post, path = "/v1/traces", tag = "monitoring",
    request_body(description = "`ExportTraceServiceRequest` (OTLP protobuf or OTLP/JSON)",
        content((Vec<u8> = "application/x-protobuf"), (Object = "application/json"))),
    security(("bearer" = ["ingest"])),
    responses((status = 200, description = "An empty `ExportTraceServiceResponse`, in the request's format"),
        (status = 400, description = "Not a valid OTLP message", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large, before or after decompression", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not protobuf or JSON, or an unsupported encoding", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Ingest queue full; see Retry-After", body = Problem, content_type = "application/problem+json")))]
async fn export_traces(
    State(state): State<AppState>,
    _caller: Caller<Ingest>,
    _room: crate::mw::room::Room<crate::mw::room::Requests>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = format(&headers)?;
    let bytes = body(&headers, raw.map_err(unreadable)?)?;
    let req: ExportTraceServiceRequest = parse(format, &bytes, otlp::traces_from_json)?;
    let mut converted = otlp::traces(&req, Utc::now());
    store(&state, &mut converted).await?;
    if !converted.served.is_empty() {
        state.monitoring.ingest_served(&converted.served).await?;
    }
    Ok(success(format))
}
