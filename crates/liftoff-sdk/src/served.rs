//! The flag values served while answering one request: the [`ReportLayer`](crate::layer::ReportLayer)
//! opens a scope around each request, every [`FlagClient`](crate::FlagClient) evaluation inside
//! it notes `(flag, variant)` (`on`/`off` for a flag without variants), and the request's record
//! carries them, so Liftoff can compare error rates and latency per variant (guarded rollouts,
//! experiment guardrails). Evaluations in tasks the handler spawns are not seen: they run
//! outside the request's task.

use std::cell::RefCell;

use liftoff_eval::Evaluation;

/// At most this many flags are noted per request (Liftoff reads at most 50).
const MAX_PER_REQUEST: usize = 50;

tokio::task_local! {
    pub(crate) static SERVED: RefCell<Vec<(String, String)>>;
}

/// Whether the caller runs inside a reported request (then evaluations are noted).
pub(crate) fn in_request() -> bool {
    SERVED.try_with(|_| ()).is_ok()
}

/// Notes an evaluation when it happens inside a reported request (nothing otherwise).
pub(crate) fn note(flag: &str, e: &Evaluation) {
    if !e.found {
        return;
    }
    let _ = SERVED.try_with(|served| {
        let mut served = served.borrow_mut();
        if served.len() < MAX_PER_REQUEST && !served.iter().any(|(f, _)| f == flag) {
            served.push((flag.to_owned(), e.served_value().to_owned()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use liftoff_eval::{Reason, VariantResult};

    fn eval(enabled: bool, variant: Option<&str>) -> Evaluation {
        Evaluation {
            enabled,
            variant: VariantResult {
                name: variant.unwrap_or("disabled").to_owned(),
                enabled: variant.is_some(),
                payload: None,
                feature_enabled: enabled,
            },
            reason: Reason::Split,
            found: true,
        }
    }

    #[tokio::test]
    async fn a_request_keeps_each_flag_once_and_nothing_is_noted_outside_one() {
        note("outside", &eval(true, None));
        assert!(!in_request());
        let fut = SERVED.scope(RefCell::new(Vec::new()), async {
            assert!(in_request());
            note("checkout", &eval(true, Some("v2")));
            note("checkout", &eval(true, Some("control")));
            note("search", &eval(false, None));
            note("new-nav", &eval(true, None));
        });
        let mut fut = std::pin::pin!(fut);
        fut.as_mut().await;
        let served = fut.as_mut().take_value().unwrap().into_inner();
        assert_eq!(
            served,
            [
                ("checkout".to_owned(), "v2".to_owned()),
                ("search".to_owned(), "off".to_owned()),
                ("new-nav".to_owned(), "on".to_owned())
            ]
        );
    }
}
