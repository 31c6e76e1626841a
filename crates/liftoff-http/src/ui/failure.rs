//! What the dashboard shows for a failed domain call, from the same classification as the
//! JSON API ([`liftoff_core::error`]): the status of the error's kind and a message a person
//! can act on. Every page answers failures through here, so a page and the API it mirrors
//! never disagree on a status.

use axum::http::StatusCode;
use axum::response::Response;
use liftoff_core::error::{Classified, ErrorKind};

use crate::error::status_of;
use crate::ui::layout::error_page;

/// Shown when the store cannot be reached.
pub const STORE_DOWN: &str = "Liftoff cannot reach its store. Try again shortly.";
/// Shown for a bug or unreadable data; the cause is logged.
pub const INTERNAL: &str =
    "Liftoff could not complete the request; the cause is in the server log.";

/// The message and status for a failed action.
pub fn failure<E: Classified + ?Sized>(e: &E) -> (String, StatusCode) {
    let kind = e.kind();
    let message = match kind {
        ErrorKind::Internal => {
            tracing::error!(error = %e, "Dashboard request failed.");
            INTERNAL.to_owned()
        }
        _ if e.withheld() => {
            tracing::warn!(error = %e, "Dashboard request failed.");
            if kind == ErrorKind::Unavailable {
                STORE_DOWN.to_owned()
            } else {
                e.detail()
            }
        }
        _ => e.detail(),
    };
    (message, status_of(kind))
}

/// A whole page for a read that failed.
pub fn failure_page<E: Classified + ?Sized>(e: &E) -> Response {
    let (message, status) = failure(e);
    let title = match e.kind() {
        ErrorKind::NotFound => "Not found",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Invalid => "Not accepted",
        ErrorKind::TooLarge => "Too large",
        ErrorKind::Overloaded => "Busy",
        ErrorKind::Unavailable => "Store unavailable",
        ErrorKind::Internal => "Something went wrong",
    };
    error_page(status, title, &message)
}

#[cfg(test)]
mod tests {
    use liftoff_core::StoreError;
    use liftoff_core::flags::FlagError;

    use super::*;

    #[test]
    fn the_dashboard_answers_the_api_status() {
        let cases: [(&dyn Classified, StatusCode, &str); 5] = [
            (
                &FlagError::Exists("a".into()),
                StatusCode::CONFLICT,
                "flag `a` already exists",
            ),
            (
                &FlagError::NotFound("a".into()),
                StatusCode::NOT_FOUND,
                "flag `a` not found",
            ),
            (
                &FlagError::Store(StoreError::Unavailable("db:5432".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                STORE_DOWN,
            ),
            (
                &FlagError::Store(StoreError::Corrupt("bad row".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL,
            ),
            (
                &FlagError::Store(StoreError::Conflict("unique".into())),
                StatusCode::CONFLICT,
                "the change conflicts with existing data",
            ),
        ];
        for (e, status, message) in cases {
            assert_eq!(failure(e), (message.to_owned(), status), "{e}");
            let api = crate::error::ApiError::from(ClassifiedRef(e));
            assert_eq!(api.status, status, "{e}");
        }
    }

    /// Lets a `&dyn Classified` go through the API's conversion.
    struct ClassifiedRef<'a>(&'a dyn Classified);

    impl std::fmt::Display for ClassifiedRef<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl Classified for ClassifiedRef<'_> {
        fn code(&self) -> liftoff_core::error::Code {
            self.0.code()
        }
        fn detail(&self) -> String {
            self.0.detail()
        }
        fn withheld(&self) -> bool {
            self.0.withheld()
        }
    }
}
