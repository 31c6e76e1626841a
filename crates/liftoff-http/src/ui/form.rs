//! `CsrfForm<T>`: the body of a dashboard form, read and checked in one place. It reads the
//! urlencoded body as `T`, then checks the form's `csrf` field against the signed-in session's
//! token and the request's origin; a handler that names it cannot forget the check.
//!
//! Handlers take `Result<CsrfForm<T>, Refused>`: a body that is not a complete `T` is
//! [`Refused::Incomplete`] (the page shows its message), and a wrong token or origin is
//! [`Refused::Page`] with the "Form expired" page (403), as is a missing session (the login
//! redirect). The body is read first, so an incomplete form is reported as such whatever its
//! token.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawForm, Request};
use axum::response::{IntoResponse, Response};
use axum::{Form, http};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::state::AppState;
use crate::ui::layout::error_page;
use crate::ui::session::{Refused, UiUser};

/// A dashboard form whose CSRF token and origin were checked against the session.
pub struct CsrfForm<T>(pub T);

/// The token every dashboard form carries as `csrf` (empty when missing, which never matches).
#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

/// A form that carries nothing but its token (sign-out, revoke).
#[derive(Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Refused;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refused> {
        let (mut parts, body) = req.into_parts();
        let user = UiUser::from_request_parts(&mut parts, state)
            .await
            .map_err(Refused::Page)?;
        let incomplete =
            |e: axum::extract::rejection::FormRejection| Refused::Incomplete(e.body_text());
        let RawForm(raw) = RawForm::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| Refused::Incomplete(e.body_text()))?;
        let again =
            |parts: http::request::Parts| Request::from_parts(parts, Body::from(raw.clone()));
        let Form(form) = Form::<T>::from_request(again(parts.clone()), state)
            .await
            .map_err(incomplete)?;
        let Form(token) = Form::<Token>::from_request(again(parts.clone()), state)
            .await
            .map_err(incomplete)?;
        user.check_csrf(&parts.headers, &token.csrf)
            .map_err(Refused::Page)?;
        Ok(Self(form))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Page(res) => res,
            Refused::Incomplete(m) => error_page(
                http::StatusCode::BAD_REQUEST,
                "Form incomplete",
                &format!("The form was incomplete: {m}"),
            ),
        }
    }
}
