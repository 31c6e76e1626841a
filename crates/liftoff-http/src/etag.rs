//! Conditional GETs: one reading of `If-None-Match` for every route that sends an `ETag`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Whether the client already holds `etag` (a quoted entity tag): any tag of the
/// comma-separated `If-None-Match` list equals it, weakly compared (RFC 9110 §13.1.2), or the
/// list is `*`.
pub fn is_fresh(headers: &HeaderMap, etag: &str) -> bool {
    fn strip(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
    let want = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == want)
}

/// `304 Not Modified` carrying the tag again, as RFC 9110 §15.4.5 asks.
pub fn not_modified(etag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn matches_lists_weak_tags_and_star_only() {
        assert!(is_fresh(&with("\"a\""), "\"a\""));
        assert!(is_fresh(&with("\"x\", \"a\""), "\"a\""));
        assert!(is_fresh(&with("W/\"a\""), "\"a\""));
        assert!(is_fresh(&with("*"), "\"a\""));
        assert!(!is_fresh(&with("\"ab\""), "\"a\""));
        assert!(!is_fresh(&HeaderMap::new(), "\"a\""));
    }
}
