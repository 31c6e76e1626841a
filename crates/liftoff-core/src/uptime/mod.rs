//! Uptime monitors: HTTP(S) checks on an interval, their results, and what is computed from
//! them (uptime %, downtime periods, response times).
//!
//! A check is *up* when the response status is expected (200–399 unless a list is given) and,
//! when a keyword is set, the body (first 1 MiB) contains it. A failing check makes the monitor
//! `pending` until more than `retries` checks in a row failed; then it is `down`, and a downtime
//! period is open from the first failing check of the streak until the next successful check.
//!
//! Storage keeps raw checks 24 hours, hourly rollups 30 days and daily rollups 365 days; every
//! check is added to its hour and day in the same transaction that stores it, so each
//! resolution counts every check exactly once and compaction is a plain purge.

pub mod service;
mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use service::{UptimeError, UptimeService};
pub use store::UptimeStore;

/// How long each resolution is kept.
pub const CHECKS_KEPT_HOURS: i64 = 24;
pub const HOURLY_KEPT_DAYS: i64 = 30;
pub const DAILY_KEPT_DAYS: i64 = 365;

/// The smallest interval production allows, in seconds.
pub const MIN_INTERVAL_SECONDS: u32 = 10;
pub const MAX_INTERVAL_SECONDS: u32 = 86_400;
/// Body bytes read to look for a keyword.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GET" => Some(Self::Get),
            "HEAD" => Some(Self::Head),
            _ => None,
        }
    }
}

/// What the last checks say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorStatus {
    /// Not checked yet.
    #[default]
    Unknown,
    Up,
    /// Failing, but not yet more than `retries` checks in a row.
    Pending,
    Down,
}

impl MonitorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Pending => "pending",
            Self::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unknown" => Some(Self::Unknown),
            "up" => Some(Self::Up),
            "pending" => Some(Self::Pending),
            "down" => Some(Self::Down),
            _ => None,
        }
    }
}

/// The running state the checker keeps beside the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MonitorState {
    pub status: MonitorStatus,
    pub consecutive_failures: u32,
    /// The first failing check of the current streak.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Monitor {
    pub id: i64,
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    pub method: HttpMethod,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    /// Accepted status codes; absent means 200–399.
    pub expected_status: Option<Vec<u16>>,
    /// A substring the body must contain (GET only).
    pub keyword: Option<String>,
    /// Failing checks in a row tolerated (as `pending`) before the monitor is `down`.
    pub retries: u32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Written by the checker only; ignored by create and update.
    pub state: MonitorState,
}

impl Monitor {
    pub fn status_ok(&self, code: u16) -> bool {
        match &self.expected_status {
            Some(list) if !list.is_empty() => list.contains(&code),
            _ => (200..400).contains(&code),
        }
    }

    /// Whether a check is due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.enabled
            && self.state.last_checked_at.is_none_or(|t| {
                (now - t).num_milliseconds() >= i64::from(self.interval_seconds) * 1000
            })
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckRecord {
    pub monitor_id: i64,
    pub at: DateTime<Utc>,
    pub up: bool,
    pub status_code: Option<u16>,
    pub response_ms: u32,
    pub error: Option<String>,
}

/// What a check did to the monitor's downtime periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DowntimeEdge {
    None,
    /// The monitor went down; the period starts at the first failing check.
    Open(DateTime<Utc>),
    /// The monitor is up again.
    Close(DateTime<Utc>),
}

/// Bucket sizes of the rollups, in minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Hour,
    Day,
}

impl Resolution {
    pub fn minutes(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 1440,
        }
    }

    /// The start of the bucket holding `at`, in Unix milliseconds.
    pub fn bucket_ms(self, at: DateTime<Utc>) -> i64 {
        let size = self.minutes() * 60_000;
        at.timestamp_millis().div_euclid(size) * size
    }
}

/// Counts of one hour or day.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Rollup {
    pub start: DateTime<Utc>,
    pub up: u64,
    pub total: u64,
    pub sum_ms: u64,
    pub max_ms: u32,
}

impl Rollup {
    pub fn avg_ms(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_ms as f64 / self.total as f64
        }
    }
}

/// A period the monitor was down; `ended_at` absent while it still is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Downtime {
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The state after a check, and what it did to downtime periods. Pure.
pub fn next_state(
    prev: &MonitorState,
    retries: u32,
    check: &CheckRecord,
) -> (MonitorState, DowntimeEdge) {
    if check.up {
        let edge = if prev.status == MonitorStatus::Down {
            DowntimeEdge::Close(check.at)
        } else {
            DowntimeEdge::None
        };
        return (
            MonitorState {
                status: MonitorStatus::Up,
                consecutive_failures: 0,
                failing_since: None,
                last_checked_at: Some(check.at),
                last_error: None,
            },
            edge,
        );
    }
    let failures = prev.consecutive_failures.saturating_add(1);
    let since = prev.failing_since.unwrap_or(check.at);
    let down = failures > retries;
    let edge = if down && prev.status != MonitorStatus::Down {
        DowntimeEdge::Open(since)
    } else {
        DowntimeEdge::None
    };
    (
        MonitorState {
            status: if down {
                MonitorStatus::Down
            } else {
                MonitorStatus::Pending
            },
            consecutive_failures: failures,
            failing_since: Some(since),
            last_checked_at: Some(check.at),
            last_error: check.error.clone(),
        },
        edge,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(s: i64, up: bool) -> CheckRecord {
        CheckRecord {
            monitor_id: 1,
            at: Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap(),
            up,
            status_code: None,
            response_ms: 1,
            error: (!up).then(|| "refused".into()),
        }
    }

    #[test]
    fn retries_hold_the_monitor_pending_then_down_from_the_first_failure() {
        let s0 = MonitorState::default();
        let (s1, e1) = next_state(&s0, 1, &check(0, true));
        assert_eq!((s1.status, e1), (MonitorStatus::Up, DowntimeEdge::None));
        let (s2, e2) = next_state(&s1, 1, &check(10, false));
        assert_eq!(
            (s2.status, e2),
            (MonitorStatus::Pending, DowntimeEdge::None)
        );
        let (s3, e3) = next_state(&s2, 1, &check(20, false));
        assert_eq!(s3.status, MonitorStatus::Down);
        assert_eq!(e3, DowntimeEdge::Open(check(10, false).at));
        let (s4, e4) = next_state(&s3, 1, &check(30, false));
        assert_eq!((s4.status, e4), (MonitorStatus::Down, DowntimeEdge::None));
        let (s5, e5) = next_state(&s4, 1, &check(40, true));
        assert_eq!(s5.status, MonitorStatus::Up);
        assert_eq!(e5, DowntimeEdge::Close(check(40, true).at));
        // A pending streak that recovers opens no period.
        let (p, _) = next_state(&s5, 1, &check(50, false));
        assert_eq!(next_state(&p, 1, &check(60, true)).1, DowntimeEdge::None);
    }

    #[test]
    fn buckets_are_utc_hours_and_days() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        assert_eq!(
            Resolution::Hour.bucket_ms(at),
            Utc.with_ymd_and_hms(2026, 3, 4, 5, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            Resolution::Day.bucket_ms(at),
            Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }
}
