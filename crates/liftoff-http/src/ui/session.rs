//! Dashboard sessions: the `liftoff_session` cookie, the signed-in user, and CSRF checks.
//!
//! The cookie holds a random token (the store keeps its digest). Each session has its own CSRF
//! token that every state-changing form carries; the login form, which has no session yet,
//! uses a double-submit cookie instead.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use liftoff_core::secret::secrets_equal;
use liftoff_core::users::User;

use crate::state::AppState;
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
/// live session.
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
    /// Takes a submitted form when its body is complete, its CSRF token and origin are right
    /// and the user's role passes `may` (`UiUser::require_editor`, `UiUser::require_admin`).
    pub fn accept<T>(
        &self,
        headers: &HeaderMap,
        form: Result<axum::Form<T>, axum::extract::rejection::FormRejection>,
        csrf: impl Fn(&T) -> &str,
        may: impl Fn(&Self) -> Result<(), Response>,
    ) -> Result<T, Refused> {
        let axum::Form(form) = form.map_err(|e| Refused::Incomplete(e.body_text()))?;
        self.check_csrf(headers, csrf(&form))
            .and_then(|()| may(self))
            .map_err(Refused::Page)?;
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
            Ok(Some(s)) => Ok(Self {
                user: s.user,
                csrf: s.record.csrf_token,
                token,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "Session lookup failed.");
                Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    "Liftoff cannot reach its store. Try again shortly.",
                ))
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

/// A post-login destination: only a local path, never another site (`//evil`, `https://…`).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

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

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/flags?window=1h")), "/flags?window=1h");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
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
