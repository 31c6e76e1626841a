//! Static files compiled into the binary, served with a content hash in the URL so browsers
//! cache them forever and still see a new version at once.

use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/htmx.min.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uPlot.min.css"),
    },
];

fn versions() -> &'static Vec<String> {
    static V: OnceLock<Vec<String>> = OnceLock::new();
    V.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex::encode(&Sha256::digest(a.bytes)[..6]))
            .collect()
    })
}

/// The URL of an asset, versioned by its content.
pub fn url(name: &str) -> String {
    let v = ASSETS
        .iter()
        .position(|a| a.name == name)
        .map(|i| versions()[i].as_str())
        .unwrap_or("0");
    format!("/assets/{name}?v={v}")
}

#[derive(Deserialize)]
pub struct VersionQuery {
    v: Option<String>,
}

pub async fn serve(Path(name): Path<String>, Query(q): Query<VersionQuery>) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let asset = &ASSETS[i];
    let cache = if q.v.as_deref() == Some(versions()[i].as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        asset.bytes,
    )
        .into_response()
}

/// The feedback widget customers embed with `<script src=".../widget/feedback.js">`. Its URL
/// cannot carry a version (it is pasted into other sites), so it is revalidated by `ETag`
/// instead of cached forever.
const FEEDBACK_WIDGET: &[u8] = include_bytes!("../../assets/widget/feedback.js");

pub async fn feedback_widget(headers: axum::http::HeaderMap) -> Response {
    static ETAG: OnceLock<String> = OnceLock::new();
    let etag =
        ETAG.get_or_init(|| format!("\"{}\"", hex::encode(&Sha256::digest(FEEDBACK_WIDGET)[..8])));
    let tag = HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if crate::etag::is_fresh(&headers, etag) {
        return crate::etag::not_modified(tag);
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (header::ETAG, tag),
            // Other sites load it; a cross-origin resource policy must not block that.
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
        ],
        FEEDBACK_WIDGET,
    )
        .into_response()
}
