//! Signing in and out of the dashboard.

use std::net::IpAddr;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use liftoff_core::secret::{random_token, secrets_equal};
use liftoff_core::users::{LoginOutcome, NewSession};
use maud::html;
use serde::Deserialize;

use crate::mw::client::client_ip;
use crate::mw::ratelimit::RateLimiter;
use crate::state::AppState;
use crate::ui::flash::Flash;
use crate::ui::form::{CsrfForm, NoFields};
use crate::ui::layout::{bare, error_page};
use crate::ui::session::{
    LOGIN_CSRF_COOKIE, Refused, SESSION_COOKIE, UiUser, cookie, csrf_failure, safe_next,
    same_origin, see_other, set_cookie,
};

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

fn login_page(status: StatusCode, secure: bool, next: &str, error: Option<&str>) -> Response {
    let csrf = random_token(24);
    let mut res = bare(
        status,
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { (Flash::error(e)) }
            form #login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="username" { "User name" }
                input #username name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.muted { "First start? The admin password is in " code { "<data>/admin-password" } "." }
        },
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, secure)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(_)) = state.users.session(token).await
    {
        return see_other(&next);
    }
    login_page(StatusCode::OK, state.settings.secure_cookies, &next, None)
}

/// Failed sign-ins, counted per client address and per (client address, user name) — never
/// per user name alone, so hammering an account from one place cannot lock its owner out
/// from another (GitHub and Grafana behave the same way). Only failures spend; a client that
/// is out of budget is answered 429 before any password is hashed. Both maps are
/// [`RateLimiter`]s, so they hold a bounded number of buckets.
pub struct LoginThrottle {
    per_client: RateLimiter,
    per_account: RateLimiter,
}

impl LoginThrottle {
    /// One client may fail for one user name 5 times at once, then once per 30 s.
    pub const ACCOUNT_BURST: f64 = 5.0;
    pub const ACCOUNT_REFILL_SECS: f64 = 30.0;
    /// One client may fail 20 times at once whatever the names, then once per 10 s.
    pub const CLIENT_BURST: f64 = 20.0;
    pub const CLIENT_REFILL_SECS: f64 = 10.0;
    /// Longest part of a user name a bucket is keyed on (valid names are at most 64).
    const NAME_KEY_BYTES: usize = 64;

    pub fn new() -> Self {
        Self {
            per_client: RateLimiter::new(1.0 / Self::CLIENT_REFILL_SECS, Self::CLIENT_BURST),
            per_account: RateLimiter::new(1.0 / Self::ACCOUNT_REFILL_SECS, Self::ACCOUNT_BURST),
        }
    }

    /// Seconds until `ip` may try `username` again, if it is out of budget.
    pub fn blocked(&self, ip: IpAddr, username: &str) -> Option<u64> {
        let (client, account) = Self::keys(ip, username);
        match (
            self.per_client.blocked(&client),
            self.per_account.blocked(&account),
        ) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    /// Spends one failure from both budgets.
    pub fn failed(&self, ip: IpAddr, username: &str) {
        let (client, account) = Self::keys(ip, username);
        let _ = self.per_client.check(&client);
        let _ = self.per_account.check(&account);
    }

    /// An IPv6 client is its /64 (one host usually owns the whole prefix); IPv4, and IPv4
    /// mapped into IPv6, its address.
    fn keys(ip: IpAddr, username: &str) -> (String, String) {
        let client = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        let mut end = username.len().min(Self::NAME_KEY_BYTES);
        while !username.is_char_boundary(end) {
            end -= 1;
        }
        let account = format!("{client} {}", &username[..end]);
        (client, account)
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// The login page answering 429 with `Retry-After`.
fn too_many(secure: bool, next: &str, retry: u64, message: &str) -> Response {
    let mut res = login_page(StatusCode::TOO_MANY_REQUESTS, secure, next, Some(message));
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
    res
}

pub async fn submit(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let secure = state.settings.secure_cookies;
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            secure,
            "/",
            Some("Enter a user name and a password."),
        );
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE);
    let csrf_ok = match (expected, form.csrf.as_deref()) {
        (Some(a), Some(b)) => secrets_equal(a, b),
        _ => false,
    };
    if !csrf_ok || !same_origin(&headers) {
        return csrf_failure();
    }
    let next = safe_next(form.next.as_deref());
    let ip = client_ip(&extensions);
    if let Some(retry) = state.login_limiter.blocked(ip, &form.username) {
        tracing::info!(%ip, user = %form.username, "Dashboard sign-in throttled.");
        return too_many(
            secure,
            &next,
            retry,
            &format!("Too many attempts from this address. Try again in {retry} seconds."),
        );
    }
    match state.users.login(&form.username, &form.password).await {
        Ok(LoginOutcome::SignedIn(session)) => signed_in(&state, session, &next).await,
        Ok(LoginOutcome::Refused) => {
            state.login_limiter.failed(ip, &form.username);
            tracing::info!(%ip, user = %form.username, "Dashboard sign-in refused.");
            login_page(
                StatusCode::UNAUTHORIZED,
                secure,
                &next,
                Some("Invalid username or password."),
            )
        }
        Ok(LoginOutcome::Busy) => {
            tracing::warn!(%ip, "Dashboard sign-in refused: every password check is busy.");
            too_many(
                secure,
                &next,
                1,
                "Liftoff is busy checking other sign-ins. Try again in a moment.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "Sign-in failed.");
            let (message, status) = crate::ui::failure::failure(&e);
            login_page(status, secure, &next, Some(&message))
        }
    }
}

/// The redirect that carries a new session's cookie. Should the cookie not fit in a header,
/// the session is deleted again, so no session exists that no browser holds.
async fn signed_in(state: &AppState, session: NewSession, next: &str) -> Response {
    let secure = state.settings.secure_cookies;
    let max_age = (session.record.expires_at - session.record.created_at).num_seconds();
    let cookies = [
        set_cookie(SESSION_COOKIE, &session.token, max_age, secure),
        set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
    ]
    .map(|c| HeaderValue::from_str(&c));
    let [Ok(session_cookie), Ok(clear_csrf)] = cookies else {
        if let Err(e) = state.users.logout(&session.token).await {
            tracing::error!(error = %e, "Could not delete a session whose cookie was invalid.");
        }
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in failed",
            "The session cookie could not be sent. Try again.",
        );
    };
    tracing::info!(user = %session.user.username, "Dashboard sign-in.");
    let mut res = see_other(next);
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, session_cookie);
    h.append(header::SET_COOKIE, clear_csrf);
    res
}

pub async fn logout(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<NoFields>, Refused>,
) -> Response {
    match form {
        Ok(CsrfForm(NoFields {})) => {}
        Err(Refused::Page(res)) => return res,
        // A body that is not a form carries no token.
        Err(Refused::Incomplete(_)) => return csrf_failure(),
    }
    if let Err(e) = state.users.logout(&user.token).await {
        tracing::error!(error = %e, "Sign-out could not delete the session.");
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        SESSION_COOKIE,
        "",
        0,
        state.settings.secure_cookies,
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn failures_spend_per_client_and_per_account_only() {
        let t = LoginThrottle::new();
        let attacker = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let owner = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        for _ in 0..5 {
            assert_eq!(t.blocked(attacker, "admin"), None);
            t.failed(attacker, "admin");
        }
        let retry = t.blocked(attacker, "admin").unwrap();
        assert!((1..=30).contains(&retry), "{retry}");
        assert_eq!(
            t.blocked(owner, "admin"),
            None,
            "another client is not locked out"
        );
        assert_eq!(
            t.blocked(attacker, "ada"),
            None,
            "other names keep their budget"
        );
        for i in 0..15 {
            t.failed(attacker, &format!("user{i}"));
        }
        assert!(
            t.blocked(attacker, "someone-new").is_some(),
            "20 failures use the client's budget"
        );
        assert_eq!(t.blocked(owner, "someone-new"), None);
    }

    #[test]
    fn ipv6_clients_are_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(LoginThrottle::keys(a, "x").0, LoginThrottle::keys(b, "x").0);
        assert_ne!(LoginThrottle::keys(a, "x").0, LoginThrottle::keys(c, "x").0);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(LoginThrottle::keys(mapped, "x").0, "192.0.2.1");
        let unspecified = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(LoginThrottle::keys(unspecified, "x").0, "0:0:0:0::/64");
    }

    #[test]
    fn long_names_are_keyed_by_a_bounded_prefix() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let long = "é".repeat(1000);
        let (_, account) = LoginThrottle::keys(ip, &long);
        assert!(account.len() <= "127.0.0.1 ".len() + 64);
    }
}
