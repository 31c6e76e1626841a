//! Signing in and out of the dashboard.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use liftoff_core::secret::{random_token, secrets_equal};
use liftoff_core::users::LoginOutcome;
use maud::html;
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::layout::bare;
use crate::ui::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, UiUser, cookie, csrf_failure, safe_next, same_origin,
    set_cookie,
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

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn login_page(status: StatusCode, secure: bool, next: &str, error: Option<&str>) -> Response {
    let csrf = random_token(24);
    let mut res = bare(
        status,
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.flash.error role="alert" { (e) } }
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
        return Redirect::to(next).into_response();
    }
    login_page(StatusCode::OK, state.settings.secure_cookies, next, None)
}

pub async fn submit(
    State(state): State<AppState>,
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
    let next = safe_next(form.next.as_deref()).to_owned();
    // Only failed attempts spend from the budget, so people who type their password right are
    // never locked out by their own sign-ins.
    let limit_key = format!("login:{}", form.username);
    if let Some(retry) = state.login_limiter.blocked(&limit_key) {
        let mut res = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            secure,
            &next,
            Some(&format!(
                "Too many attempts for this user. Try again in {retry} seconds."
            )),
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return res;
    }
    match state.users.login(&form.username, &form.password).await {
        Ok(LoginOutcome::SignedIn(session)) => {
            tracing::info!(user = %session.user.username, "Dashboard sign-in.");
            let max_age = (session.record.expires_at - session.record.created_at).num_seconds();
            let mut res = Redirect::to(&next).into_response();
            let h = res.headers_mut();
            for c in [
                set_cookie(SESSION_COOKIE, &session.token, max_age, secure),
                set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Ok(LoginOutcome::Busy) => {
            let mut res = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                secure,
                &next,
                Some("Liftoff is busy checking other sign-ins. Try again in a moment."),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1));
            res
        }
        Ok(LoginOutcome::Refused) => {
            let _ = state.login_limiter.check(&limit_key);
            tracing::info!(user = %form.username, "Dashboard sign-in refused.");
            login_page(
                StatusCode::UNAUTHORIZED,
                secure,
                &next,
                Some("Invalid username or password."),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "Sign-in failed: store unavailable.");
            login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                secure,
                &next,
                Some("Liftoff cannot reach its store. Try again shortly."),
            )
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    user: UiUser,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let submitted = form.map(|f| f.0.csrf).unwrap_or_default();
    if let Err(res) = user.check_csrf(&headers, &submitted) {
        return res;
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
