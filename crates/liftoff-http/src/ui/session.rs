//! Dashboard sessions: the `liftoff_session` cookie, the signed-in user, and CSRF checks.
//!
//! The cookie holds a random token (the store keeps its digest). Each session has its own CSRF
//! token that every state-changing form carries; the login form, which has no session yet,
//! uses a double-submit cookie instead.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use liftoff_core::secret::secrets_equal;
use liftoff_core::users::User;

use crate::state::AppState;
use crate::ui::form::CsrfForm;
use crate::ui::layout::error_page;

pub const SESSION_COOKIE: &str = "liftoff_session";
pub const LOGIN_CSRF_COOKIE: &str = "liftoff_login_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, whole site.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// Refuses cross-site form posts even before the CSRF token is looked at: when the browser
/// says where the form came from, it must be this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// The signed-in dashboard user. Extracting it redirects to the login page when there is no
/// live session. The session is looked up once a request: a handler's `UiUser` and its
/// [`CsrfForm`](crate::ui::form::CsrfForm) share it.
#[derive(Clone)]
pub struct UiUser {
    pub user: User,
    pub csrf: String,
    pub token: String,
}

impl UiUser {
    /// Checks a submitted form's CSRF token and origin; the `Err` is the page to answer with.
    pub fn check_csrf(&self, headers: &HeaderMap, submitted: &str) -> Result<(), Response> {
        if same_origin(headers) && secrets_equal(&self.csrf, submitted) {
            Ok(())
        } else {
            Err(csrf_failure())
        }
    }

    /// Refuses users whose role may not change state.
    pub fn require_editor(&self) -> Result<(), Response> {
        if self.user.role.can_edit() {
            Ok(())
        } else {
            Err(forbidden_page("editors and admins"))
        }
    }

    pub fn require_admin(&self) -> Result<(), Response> {
        if self.user.role.can_administer() {
            Ok(())
        } else {
            Err(forbidden_page("admins"))
        }
    }
}

/// Why a submitted form was not taken.
pub enum Refused {
    /// Fields were missing or malformed: show the form's page with this message.
    Incomplete(String),
    /// CSRF, origin or role check failed: answer with this page.
    Page(Response),
}

impl UiUser {
    /// Takes a submitted form (complete, its CSRF token and origin checked by
    /// [`CsrfForm`](crate::ui::form::CsrfForm)) when the user's role passes `may`
    /// (`UiUser::require_editor`, `UiUser::require_admin`).
    pub fn accept<T>(
        &self,
        form: Result<CsrfForm<T>, Refused>,
        may: impl Fn(&Self) -> Result<(), Response>,
    ) -> Result<T, Refused> {
        let CsrfForm(form) = form?;
        may(self).map_err(Refused::Page)?;
        Ok(form)
    }
}

pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form was missing its security token or came from another site. Reload the page and try again.",
    )
}

fn forbidden_page(who: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        &format!("Only {who} can do this. Ask an admin to change your role."),
    )
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(user.clone());
        }
        let to_login = || {
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let next = if path == "/" {
                String::new()
            } else {
                format!("?next={}", encode_component(path))
            };
            Redirect::to(&format!("/login{next}")).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(to_login());
        };
        match state.users.session(&token).await {
            Ok(Some(s)) => {
                let user = Self {
                    user: s.user,
                    csrf: s.record.csrf_token,
                    token,
                };
                parts.extensions.insert(user.clone());
                Ok(user)
            }
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "Session lookup failed.");
                Err(crate::ui::failure::failure_page(&e))
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Longest post-login destination kept; longer ones become `/`.
const MAX_NEXT_BYTES: usize = 2048;
/// Percent-decoding rounds tried before a destination that keeps changing is refused.
const MAX_DECODES: usize = 4;

/// A post-login destination: a path on this site, or `/`.
///
/// Accepted only when the value — and every form of it that repeated percent-decoding yields —
/// starts with a single `/` followed by anything but `/` or `\`, holds no control character,
/// whitespace (Unicode included) or backslash, and has no empty (`//`) or dot (`.`, `..`)
/// path segment; and it must reach a fixed point within [`MAX_DECODES`] rounds. So `//evil`,
/// `/\evil`, `/%09/evil`, `/%2F/evil`, `/%252F%252Fevil`, `/\u{3000}/evil`, `https://evil`
/// and the like all become `/`. Characters beyond ASCII are percent-encoded in the result,
/// which is therefore always a valid `Location` header value.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_safe_next(n) => encode_non_ascii(n),
        _ => "/".to_owned(),
    }
}

fn is_safe_next(next: &str) -> bool {
    if next.len() > MAX_NEXT_BYTES {
        return false;
    }
    let mut current = next.to_owned();
    for _ in 0..=MAX_DECODES {
        if !is_plain_local_path(&current) {
            return false;
        }
        let decoded = percent_decode_lossy(&current);
        if decoded == current {
            return true;
        }
        current = decoded;
    }
    false
}

/// One form of a destination, checked without decoding anything.
fn is_plain_local_path(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('/') else {
        return false;
    };
    if rest.starts_with(['/', '\\']) {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    segments
        .iter()
        .enumerate()
        .all(|(i, seg)| (i == last || !seg.is_empty()) && *seg != "." && *seg != "..")
}

/// Decodes every `%XX` escape (invalid UTF-8 becomes U+FFFD); other bytes stay as they are.
fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A 303 to `location`, which should come from [`safe_next`]; a value that still cannot be a
/// header goes to `/` instead of failing the response.
pub fn see_other(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; liftoff_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
    }

    /// Known open-redirect bypasses, as the handler sees them (query or form already decoded
    /// once). Each must become `/`.
    const BYPASSES: &[&str] = &[
        "//evil.example",
        "///evil.example",
        "////evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "\\/evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nX: 1",
        "/%09/evil.example",
        "/%0d%0aX:%201",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "/%25%32%46%25%32%46evil.example",
        "/ /evil.example",
        "/%20/evil.example",
        " /evil.example",
        "/\u{3000}/evil.example",
        "/%E3%80%80/evil.example",
        "/\u{a0}/evil.example",
        "/\u{2028}/evil.example",
        "//%09/evil.example",
        "/%09//evil.example",
        "https://evil.example",
        "http:evil.example",
        "http:/evil.example",
        "//evil.example/%2e%2e",
        "javascript:alert(1)",
        "/javascript:alert(1)%0a",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "",
        "/.//evil.example",
        "/..//evil.example",
        "/%2e%2e/%2e%2e//evil.example",
        "/x/../../evil.example",
        "/flags%00",
        "/flags\u{7f}",
        "/%ZZ%2F/evil.example",
    ];

    #[test]
    fn open_redirect_bypasses_become_the_root() {
        for b in BYPASSES {
            assert_eq!(safe_next(Some(b)), "/", "{b:?} must not survive");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }

    #[test]
    fn local_paths_survive() {
        for ok in [
            "/",
            "/flags",
            "/flags/",
            "/flags?env=prod",
            "/flags?window=1h&env=prod",
            "/analytics#funnel",
            "/analytics?q=a//b#x",
            "/flags/checkout-v2",
            "/uptime/monitors/42?tab=checks",
            "/search?q=100%25",
        ] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        assert_eq!(safe_next(Some("/flags/café")), "/flags/caf%C3%A9");
    }

    #[test]
    fn every_result_is_a_header_value() {
        for b in BYPASSES.iter().chain(&["/flags/café", "/\u{1F680}"]) {
            assert!(HeaderValue::from_str(&safe_next(Some(b))).is_ok(), "{b:?}");
        }
        let res = see_other("/\r\nX: 1");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[LOCATION], "/");
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h), "no Origin header: rely on the token");
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:7070"));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:7070"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }
}
