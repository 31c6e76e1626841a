//! How every domain failure is classified, in one place: its [`ErrorKind`] (what sort of
//! failure it is) and its stable [`Code`] (what clients match on). The JSON API turns a
//! classified error into a problem document and the dashboard into a message and a status,
//! both from this table, so the two cannot drift apart.
//!
//! A code's string never changes once released; add a code rather than rename one.

use std::fmt;

use crate::alerts::AlertError;
use crate::analytics::EventError;
use crate::analytics::funnel::FunnelError;
use crate::analytics::insights::InsightsError;
use crate::auth::KeyError;
use crate::batch::SubmitError;
use crate::deployments::DeploymentError;
use crate::experiments::ExperimentError;
use crate::flags::FlagError;
use crate::incidents::IncidentError;
use crate::launch::LaunchError;
use crate::monitoring::IngestError;
use crate::monitoring::dashboard::DashboardError;
use crate::store::StoreError;
use crate::uptime::UptimeError;
use crate::users::UserError;

/// What sort of failure an error is; the HTTP layer maps each to one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// What was asked for does not exist (404).
    NotFound,
    /// The change conflicts with the current state: a duplicate, a concurrent change, a
    /// state that forbids it (409).
    Conflict,
    /// The input breaks a rule (422).
    Invalid,
    /// The input is larger than allowed (413).
    TooLarge,
    /// Too much at once; retry later (429).
    Overloaded,
    /// A dependency cannot be reached or Liftoff is shutting down; retry later (503).
    Unavailable,
    /// A bug or data that cannot be read back: not the client's doing (500).
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
            Self::TooLarge => "too_large",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// The table of codes: `Name = "string", Kind;` (after meilisearch's `make_error_codes!`).
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $code:literal, $kind:ident; )*) => {
        /// Every stable problem code a domain error is answered with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The string clients see as the problem's `code` (and the last segment of `type`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Code::$name => $code, )*
                }
            }

            pub fn kind(self) -> ErrorKind {
                match self {
                    $( Code::$name => ErrorKind::$kind, )*
                }
            }
        }
    };
}

error_codes! {
    /// Something general does not exist (an API key, an alert rule…).
    NotFound = "not_found", NotFound;
    /// The store refused a change as conflicting with existing data.
    Conflict = "conflict", Conflict;
    /// The store cannot be reached, or ingest is shutting down or could not commit.
    Unavailable = "unavailable", Unavailable;
    /// The ingest queue is full.
    RateLimited = "rate_limited", Overloaded;
    /// A bug or corrupted data.
    Internal = "internal", Internal;
    InvalidKeyName = "invalid_key_name", Invalid;
    InvalidUser = "invalid_user", Invalid;
    UserExists = "user_exists", Conflict;
    FlagNotFound = "flag_not_found", NotFound;
    FlagExists = "flag_exists", Conflict;
    InvalidFlag = "invalid_flag", Invalid;
    FlagBusy = "flag_busy", Conflict;
    FlagDisabled = "flag_disabled", Conflict;
    InvalidAlertInput = "invalid_alert_input", Invalid;
    MonitorNotFound = "monitor_not_found", NotFound;
    InvalidMonitor = "invalid_monitor", Invalid;
    IncidentNotFound = "incident_not_found", NotFound;
    InvalidIncident = "invalid_incident", Invalid;
    IncidentBusy = "incident_busy", Conflict;
    InvalidQuery = "invalid_query", Invalid;
    InvalidEvents = "invalid_events", Invalid;
    TooManyEvents = "too_many_events", TooLarge;
    InvalidRecords = "invalid_records", Invalid;
    InvalidFunnel = "invalid_funnel", Invalid;
    InvalidLaunchInput = "invalid_launch_input", Invalid;
    FeedbackNotFound = "feedback_not_found", NotFound;
    LaunchBusy = "launch_busy", Conflict;
    /// The current phase's exit criteria do not pass (advance with `force` and a reason).
    PhaseCriteriaNotMet = "phase_criteria_not_met", Conflict;
    LastPhase = "last_phase", Conflict;
    ExperimentNotFound = "experiment_not_found", NotFound;
    InvalidExperiment = "invalid_experiment", Invalid;
    /// The key is taken, or the flag already has an experiment that has not stopped.
    ExperimentConflict = "experiment_conflict", Conflict;
    ExperimentBusy = "experiment_busy", Conflict;
    DeploymentNotFound = "deployment_not_found", NotFound;
    InvalidDeployment = "invalid_deployment", Invalid;
    ReportNotFound = "report_not_found", NotFound;
    InvalidReport = "invalid_report", Invalid;
}

/// A failure that knows its code (and so its kind), what a client may be told, and when to
/// retry. The HTTP layer has one conversion for every `Classified` error.
pub trait Classified: fmt::Display {
    fn code(&self) -> Code;

    fn kind(&self) -> ErrorKind {
        self.code().kind()
    }

    /// What a client may read. By default the message itself; a failure whose message can
    /// carry internals (host names, SQL) says something general instead, and then
    /// [`withheld`](Self::withheld) is true and the message goes to the server log only.
    /// Never sent for [`ErrorKind::Internal`].
    fn detail(&self) -> String {
        self.to_string()
    }

    fn withheld(&self) -> bool {
        false
    }

    /// Seconds a client should wait before retrying.
    fn retry_after_secs(&self) -> Option<u64> {
        default_retry(self.kind())
    }

    /// The kind of the underlying failure, when this error wraps one of another kind (a
    /// batch the store could not commit); answered as the problem's `cause_kind`.
    fn cause_kind(&self) -> Option<ErrorKind> {
        None
    }
}

impl Classified for StoreError {
    fn code(&self) -> Code {
        match self {
            Self::Conflict(_) => Code::Conflict,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Corrupt(_) => Code::Internal,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Conflict(_) => "the change conflicts with existing data".into(),
            Self::Unavailable(_) => "the store is unavailable; retry shortly".into(),
            Self::Corrupt(_) => self.to_string(),
        }
    }

    fn withheld(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl Classified for crate::reports::ReportError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::InvalidReport,
            Self::NotFound(_) => Code::ReportNotFound,
            Self::Sources(_) | Self::Busy => Code::Unavailable,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Sources(_) => "a service the report reads is unavailable; retry shortly".into(),
            _ => self.to_string(),
        }
    }

    fn withheld(&self) -> bool {
        matches!(self, Self::Sources(_))
    }
}

impl Classified for SubmitError {
    fn code(&self) -> Code {
        match self {
            Self::Overloaded => Code::RateLimited,
            Self::Closed | Self::Store(_) => Code::Unavailable,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Overloaded => {
                "the ingest queue is behind; retry after the time in Retry-After".into()
            }
            Self::Closed => "Liftoff is shutting down; retry".into(),
            Self::Store(_) => "the batch could not be committed; retry".into(),
        }
    }

    fn cause_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Store(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// The second expression when given, else the first.
macro_rules! given_or {
    ($default:expr) => {
        $default
    };
    ($default:expr, $given:expr) => {
        $given
    };
}

fn default_retry(kind: ErrorKind) -> Option<u64> {
    match kind {
        ErrorKind::Unavailable => Some(5),
        ErrorKind::Overloaded => Some(1),
        _ => None,
    }
}

/// Implements [`Classified`] for an error that may wrap another classified error (`inner`):
/// a wrapped error is classified as itself (its arm in `code` is never used); the others by
/// `code` (and `detail`/`retry` when given).
macro_rules! classified {
    ($ty:ty, |$e:ident| code: $code:expr, inner: $inner:expr
        $(, detail: $detail:expr)? $(, retry: $retry:expr)? ) => {
        impl Classified for $ty {
            fn code(&self) -> Code {
                let $e = self;
                let inner: Option<&dyn Classified> = $inner;
                match inner {
                    Some(i) => i.code(),
                    None => $code,
                }
            }

            fn detail(&self) -> String {
                let $e = self;
                let inner: Option<&dyn Classified> = $inner;
                match inner {
                    Some(i) => i.detail(),
                    None => given_or!(self.to_string() $(, $detail)?),
                }
            }

            fn withheld(&self) -> bool {
                let $e = self;
                let inner: Option<&dyn Classified> = $inner;
                inner.is_some_and(|i| i.withheld())
            }

            fn retry_after_secs(&self) -> Option<u64> {
                let $e = self;
                let inner: Option<&dyn Classified> = $inner;
                match inner {
                    Some(i) => i.retry_after_secs(),
                    None => given_or!(default_retry(self.kind()) $(, $retry)?),
                }
            }

            fn cause_kind(&self) -> Option<ErrorKind> {
                let $e = self;
                let inner: Option<&dyn Classified> = $inner;
                inner.and_then(|i| i.cause_kind())
            }
        }
    };
}

classified!(KeyError, |e| code: match e {
    KeyError::InvalidName => Code::InvalidKeyName,
    KeyError::NotFound(_) => Code::NotFound,
    KeyError::Store(_) => Code::Internal,
}, inner: match e {
    KeyError::Store(s) => Some(s),
    _ => None,
});

classified!(FlagError, |e| code: match e {
    FlagError::NotFound(_) => Code::FlagNotFound,
    FlagError::Exists(_) => Code::FlagExists,
    FlagError::Invalid(_) => Code::InvalidFlag,
    FlagError::Busy(_) => Code::FlagBusy,
    FlagError::Disabled(_) => Code::FlagDisabled,
    FlagError::Store(_) => Code::Internal,
}, inner: match e {
    FlagError::Store(s) => Some(s),
    _ => None,
});

classified!(LaunchError, |e| code: match e {
    LaunchError::Invalid(_) => Code::InvalidLaunchInput,
    LaunchError::FeedbackNotFound(_) => Code::FeedbackNotFound,
    LaunchError::Busy => Code::LaunchBusy,
    LaunchError::CriteriaNotMet { .. } => Code::PhaseCriteriaNotMet,
    LaunchError::LastPhase(_) => Code::LastPhase,
    LaunchError::Sources(_) => Code::Unavailable,
    LaunchError::Store(_) => Code::Internal,
}, inner: match e {
    LaunchError::Store(s) => Some(s),
    _ => None,
});

classified!(ExperimentError, |e| code: match e {
    ExperimentError::NotFound(_) => Code::ExperimentNotFound,
    ExperimentError::Invalid(_) => Code::InvalidExperiment,
    ExperimentError::Conflict(_) => Code::ExperimentConflict,
    ExperimentError::Busy(_) => Code::ExperimentBusy,
    ExperimentError::Flag(_) | ExperimentError::Insights(_) | ExperimentError::Store(_) => Code::Internal,
}, inner: match e {
    ExperimentError::Flag(f) => Some(f),
    ExperimentError::Insights(i) => Some(i),
    ExperimentError::Store(s) => Some(s),
    _ => None,
});

classified!(DeploymentError, |e| code: match e {
    DeploymentError::NotFound(_) => Code::DeploymentNotFound,
    DeploymentError::Invalid(_) => Code::InvalidDeployment,
    DeploymentError::Store(_) => Code::Internal,
}, inner: match e {
    DeploymentError::Store(s) => Some(s),
    _ => None,
});

classified!(AlertError, |e| code: match e {
    AlertError::NotFound(_) => Code::NotFound,
    AlertError::Invalid(_) => Code::InvalidAlertInput,
    AlertError::Store(_) => Code::Internal,
}, inner: match e {
    AlertError::Store(s) => Some(s),
    _ => None,
});

classified!(UptimeError, |e| code: match e {
    UptimeError::NotFound(_) => Code::MonitorNotFound,
    UptimeError::Invalid(_) => Code::InvalidMonitor,
    UptimeError::Store(_) => Code::Internal,
}, inner: match e {
    UptimeError::Store(s) => Some(s),
    _ => None,
});

classified!(IncidentError, |e| code: match e {
    IncidentError::NotFound(_) | IncidentError::ItemNotFound(..) => Code::IncidentNotFound,
    IncidentError::Invalid(_) => Code::InvalidIncident,
    IncidentError::Busy(_) => Code::IncidentBusy,
    IncidentError::Store(_) => Code::Internal,
}, inner: match e {
    IncidentError::Store(s) => Some(s),
    _ => None,
});

classified!(InsightsError, |e| code: match e {
    InsightsError::Query(_) => Code::InvalidQuery,
    InsightsError::Engine(_) | InsightsError::Store(_) => Code::Internal,
}, inner: match e {
    InsightsError::Store(s) => Some(s),
    _ => None,
});

impl Classified for FunnelError {
    fn code(&self) -> Code {
        Code::InvalidFunnel
    }
}

classified!(DashboardError, |e| code: Code::Internal, inner: match e {
    DashboardError::Store(s) => Some(s),
    DashboardError::Alerts(a) => Some(a),
    DashboardError::Insights(i) => Some(i),
});

classified!(UserError, |e| code: match e {
    UserError::InvalidUsername | UserError::WeakPassword => Code::InvalidUser,
    UserError::Exists(_) => Code::UserExists,
    UserError::Busy => Code::Unavailable,
    UserError::Hash(_) | UserError::Store(_) => Code::Internal,
}, inner: match e {
    UserError::Store(s) => Some(s),
    _ => None,
}, retry: matches!(e, UserError::Busy).then_some(1));

classified!(EventError, |e| code: match e {
    EventError::Invalid(_) | EventError::Empty => Code::InvalidEvents,
    EventError::TooMany(_) => Code::TooManyEvents,
    EventError::Submit(_) => Code::Internal,
}, inner: match e {
    EventError::Submit(s) => Some(s),
    _ => None,
}, detail: format!("{e}; nothing of this batch was stored"));

classified!(IngestError, |e| code: match e {
    IngestError::Invalid { .. } | IngestError::Empty => Code::InvalidRecords,
    IngestError::Submit(_) => Code::Internal,
}, inner: match e {
    IngestError::Submit(s) => Some(s),
    _ => None,
}, detail: format!("{e}; nothing of this batch was stored"));

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_unique_and_snake_case() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "`{s}` twice");
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "`{s}`"
            );
        }
    }

    #[test]
    fn wrapped_store_errors_keep_their_kind() {
        let down = || StoreError::Unavailable("db:5432 refused".into());
        for e in [
            &FlagError::Store(down()) as &dyn Classified,
            &AlertError::Store(down()),
            &UptimeError::Store(down()),
            &IncidentError::Store(down()),
            &KeyError::Store(down()),
            &UserError::Store(down()),
            &DashboardError::Alerts(AlertError::Store(down())),
        ] {
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.code(), Code::Unavailable);
            assert!(e.withheld());
            assert!(!e.detail().contains("5432"), "{}", e.detail());
            assert_eq!(e.retry_after_secs(), Some(5));
        }
        let corrupt = FlagError::Store(StoreError::Corrupt("bad json".into()));
        assert_eq!(corrupt.kind(), ErrorKind::Internal);
        let conflict = IncidentError::Store(StoreError::Conflict("unique".into()));
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn a_batch_the_store_refused_is_unavailable_with_the_cause_kind() {
        let e = EventError::Submit(SubmitError::Store(StoreError::Corrupt("x".into())));
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(e.cause_kind(), Some(ErrorKind::Internal));
        assert_eq!(e.detail(), "the batch could not be committed; retry");
        let e = IngestError::Submit(SubmitError::Overloaded);
        assert_eq!(e.code(), Code::RateLimited);
        assert_eq!(e.retry_after_secs(), Some(1));
        let e = IngestError::Empty;
        assert_eq!(
            e.detail(),
            "the batch is empty; nothing of this batch was stored"
        );
    }
}
