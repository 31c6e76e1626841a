//! Request bodies that protocol clients compress: `Content-Encoding: gzip` undone with a cap on
//! the decompressed size, so a small gzip bomb cannot exhaust memory. Shared by OTLP and
//! PostHog capture.

use std::io::Read as _;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;

/// Largest body accepted once decompressed.
pub const MAX_DECOMPRESSED: u64 = 20 << 20;

/// A body the server could not read (413 when over the limit).
pub(crate) fn unreadable(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is over the size limit; send less data per request",
        )
    } else {
        ApiError::bad_request("unreadable_body", r.body_text())
    }
}

/// Reads a whole body of at most `limit` bytes: 413 above it, 400 when it cannot be read.
pub(crate) async fn read_capped(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over the size limit; send less data per request",
            )
        } else {
            ApiError::bad_request(
                "unreadable_body",
                format!("the body could not be read: {e}"),
            )
        }
    })
}

/// Gunzips `raw`; 400 when it is not gzip, 413 above [`MAX_DECOMPRESSED`].
pub(crate) fn gunzip(raw: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::bad_request("malformed_body", format!("the body is not valid gzip: {e}"))
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the decompressed body is larger than the limit of {MAX_DECOMPRESSED} bytes; send less data per request"
            ),
        ));
    }
    Ok(out)
}

/// The body, gunzipped when `Content-Encoding: gzip`; other encodings are 415.
pub(crate) fn decode(headers: &HeaderMap, raw: Bytes) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw.to_vec()),
        "gzip" | "x-gzip" => gunzip(&raw),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!(
                "Content-Encoding `{}` is not supported; send gzip or no encoding",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// JSON bodies are not compressed in Liftoff's own protocol: any `Content-Encoding` other than
/// `identity` is a 415 rather than bytes read as JSON. (OTLP and PostHog capture, where gzip is
/// part of the protocol, use [`decode`].)
pub(crate) fn refuse_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    if encoding.is_empty() || encoding == "identity" {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_encoding",
        format!(
            "Content-Encoding `{}` is not supported on this route; send the JSON body uncompressed",
            encoding.chars().take(40).collect::<String>()
        ),
    ))
}
