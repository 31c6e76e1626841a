//! Time ranges and calendar buckets (UTC; weeks start on Monday like ISO 8601 and DuckDB's
//! `date_trunc('week', …)`).

use serde::Serialize;

pub const DAY_MS: i64 = 86_400_000;

/// A half-open interval `[from_ms, to_ms)` of unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    pub fn new(from_ms: i64, to_ms: i64) -> TimeRange {
        TimeRange { from_ms, to_ms }
    }

    /// Every representable timestamp.
    pub fn all() -> TimeRange {
        TimeRange {
            from_ms: i64::MIN,
            to_ms: i64::MAX,
        }
    }

    pub fn contains(&self, ts: i64) -> bool {
        self.from_ms <= ts && ts < self.to_ms
    }

    pub fn is_empty(&self) -> bool {
        self.from_ms >= self.to_ms
    }

    /// This range clipped to `[lo, hi]` (inclusive data bounds), so day and bucket arithmetic
    /// over "all time" stays within the data.
    pub(crate) fn clip(&self, lo: i64, hi: i64) -> TimeRange {
        TimeRange {
            from_ms: self.from_ms.max(lo),
            to_ms: self.to_ms.min(hi.saturating_add(1)),
        }
    }
}

/// UTC day number since 1970-01-01.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// Calendar bucket for active-user series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Day,
    Week,
    Month,
}

impl Bucket {
    /// Index of the bucket holding `ts_ms` on a continuous scale (days, Monday weeks, months).
    pub fn index(self, ts_ms: i64) -> i64 {
        let day = day_of(ts_ms);
        match self {
            Bucket::Day => day,
            // 1970-01-01 was a Thursday: shift by 3 so that index boundaries fall on Mondays.
            Bucket::Week => (day + 3).div_euclid(7),
            Bucket::Month => {
                let (y, m, _) = civil_from_days(day);
                y * 12 + i64::from(m) - 1
            }
        }
    }

    /// First millisecond of bucket `index`.
    pub fn start_ms(self, index: i64) -> i64 {
        let day = match self {
            Bucket::Day => index,
            Bucket::Week => index * 7 - 3,
            Bucket::Month => {
                days_from_civil(index.div_euclid(12), (index.rem_euclid(12) + 1) as u32, 1)
            }
        };
        day.saturating_mul(DAY_MS)
    }
}

/// (year, month 1..=12, day 1..=31) of a day number; Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number of a civil date; inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_and_known_dates() {
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        // 2024-01-01 was a Monday: a week starts there.
        let monday = 19_723 * DAY_MS;
        assert_eq!(Bucket::Week.start_ms(Bucket::Week.index(monday)), monday);
        assert_eq!(
            Bucket::Week.index(monday - 1) + 1,
            Bucket::Week.index(monday)
        );
        let feb = days_from_civil(2024, 2, 1) * DAY_MS;
        assert_eq!(
            Bucket::Month.start_ms(Bucket::Month.index(feb + 5 * DAY_MS)),
            feb
        );
        assert_eq!(Bucket::Month.index(feb - 1) + 1, Bucket::Month.index(feb));
    }
}
