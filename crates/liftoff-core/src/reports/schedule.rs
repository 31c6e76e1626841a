//! When a report is generated and sent: a five-field cron expression (`0 9 * * MON`, the
//! `weekly` day and hour are written as one) read in an IANA time zone, so "Monday 09:00 in
//! Berlin" stays 09:00 across daylight saving. A schedule is due for its latest occurrence at
//! or before now until that occurrence has been archived and queued; the occurrence's instant
//! is the period's key, which makes sending exactly once per period a uniqueness rule.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Format, ReportKind};

/// How far back the latest occurrence is looked for (a yearly schedule still has one).
const LOOKBACK_DAYS: i64 = 366;

/// A parsed cron expression: minute, hour, day of month, month, day of week.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Both day fields restricted: cron matches either (Vixie cron's rule).
    either_day: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The set bits of one field, each value in `lo..=hi`.
fn field(s: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u64, String> {
    let value = |v: &str| -> Result<u32, String> {
        let upper = v.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + name_base);
        }
        v.parse::<u32>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("`{v}` is not between {lo} and {hi}"))
    };
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("step `{st}` must be a positive number"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(format!("range `{range}` runs backwards"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts.as_slice() else {
            return Err(format!(
                "cron `{expr}` needs five fields: minute hour day-of-month month day-of-week"
            ));
        };
        let at = |what: &str, r: Result<u64, String>| r.map_err(|e| format!("{what}: {e}"));
        let weekdays = at("day of week", field(dow, 0, 7, &WEEKDAYS, 0))?;
        Ok(Self {
            minutes: at("minute", field(m, 0, 59, &[], 0))?,
            hours: at("hour", field(h, 0, 23, &[], 0))? as u32,
            days: at("day of month", field(dom, 1, 31, &[], 0))? as u32,
            months: at("month", field(mon, 1, 12, &MONTHS, 1))? as u16,
            // 7 is Sunday too.
            weekdays: ((weekdays | (weekdays >> 7)) & 0x7f) as u8,
            either_day: *dom != "*" && *dow != "*",
        })
    }

    /// `0 9 * * 1`: every `day` (0 Sunday – 6 Saturday) at `hour`:00.
    pub fn weekly(day: u8, hour: u8) -> Result<String, String> {
        if day > 6 || hour > 23 {
            return Err("`day` is 0 (Sunday) to 6 (Saturday) and `hour` 0 to 23".into());
        }
        Ok(format!("0 {hour} * * {day}"))
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.either_day {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The latest local time at or before `t` that matches, within [`LOOKBACK_DAYS`].
    fn latest_local(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut day = t.date();
        let mut first = true;
        for _ in 0..=LOOKBACK_DAYS {
            if self.day_matches(day) {
                let (max_h, max_m) = if first {
                    (t.hour(), Some(t.minute()))
                } else {
                    (23, None)
                };
                for h in (0..=max_h).rev() {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let top = if h == max_h { max_m.unwrap_or(59) } else { 59 };
                    for m in (0..=top).rev() {
                        if self.minutes & (1 << m) != 0 {
                            return Some(day.and_time(NaiveTime::from_hms_opt(h, m, 0)?));
                        }
                    }
                }
            }
            first = false;
            day = day.pred_opt()?;
        }
        None
    }
}

/// A time zone by its IANA name (`Europe/Berlin`, `UTC`), from the database built into Liftoff.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        format!("unknown time zone `{name}`: use an IANA name such as UTC or Europe/Berlin")
    })
}

/// The latest occurrence of `cron` in `tz` at or before `now`, as an instant. A local time
/// that daylight saving skips runs at the first instant after the gap; one it repeats runs
/// once, at its first instant.
pub fn latest_occurrence(
    cron: &Cron,
    tz: &jiff::tz::TimeZone,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let ts = jiff::Timestamp::from_second(now.timestamp()).ok()?;
    let local = ts.to_zoned(tz.clone()).datetime();
    let naive = NaiveDate::from_ymd_opt(
        i32::from(local.year()),
        u32::try_from(local.month()).ok()?,
        u32::try_from(local.day()).ok()?,
    )?
    .and_hms_opt(
        u32::try_from(local.hour()).ok()?,
        u32::try_from(local.minute()).ok()?,
        0,
    )?;
    let mut probe = naive;
    // A match that maps after `now` (a repeated hour) is skipped for an earlier one.
    for _ in 0..4 {
        let found = cron.latest_local(probe)?;
        let civil = jiff::civil::DateTime::new(
            i16::try_from(found.year()).ok()?,
            i8::try_from(found.month()).ok()?,
            i8::try_from(found.day()).ok()?,
            i8::try_from(found.hour()).ok()?,
            i8::try_from(found.minute()).ok()?,
            0,
            0,
        )
        .ok()?;
        let instant = tz.to_ambiguous_zoned(civil).compatible().ok()?.timestamp();
        let at = DateTime::<Utc>::from_timestamp(instant.as_second(), 0)?;
        if at <= now {
            return Some(at);
        }
        probe = found - Duration::minutes(1);
    }
    None
}

/// A saved schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    /// `weekly` or `launch` (an incident report is generated for one incident, not on a
    /// calendar).
    pub kind: ReportKind,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// IANA name the cron expression is read in.
    pub timezone: String,
    /// Alert channels that receive it.
    pub channels: Vec<i64>,
    /// What email attaches (`pdf` by default; the HTML is always the body) and webhooks link.
    pub format: Format,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The latest period delivered: its occurrence's instant.
    pub last_period: Option<DateTime<Utc>>,
}

/// The weekly day and hour, the other way to say when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyAt {
    /// 0 Sunday – 6 Saturday.
    #[schema(minimum = 0, maximum = 6)]
    pub day: u8,
    /// 0–23.
    #[schema(minimum = 0, maximum = 23)]
    pub hour: u8,
}

/// `POST /api/reports/schedules`: `cron` or `weekly`, not both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    pub kind: ReportKind,
    /// Five fields: minute hour day-of-month month day-of-week (`0 9 * * MON`).
    #[schema(max_length = 100)]
    pub cron: Option<String>,
    pub weekly: Option<WeeklyAt>,
    /// [default UTC]
    pub timezone: Option<String>,
    #[schema(min_items = 1, max_items = 20)]
    pub channels: Vec<i64>,
    /// [default pdf]
    pub format: Option<Format>,
    /// [default true]
    pub enabled: Option<bool>,
}

/// A checked schedule, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSchedule {
    pub name: String,
    pub kind: ReportKind,
    pub cron: String,
    pub timezone: String,
    pub channels: Vec<i64>,
    pub format: Format,
    pub enabled: bool,
}

impl ScheduleInput {
    pub fn validate(self) -> Result<NewSchedule, String> {
        if self.kind == ReportKind::Incident {
            return Err(
                "an incident report is generated for one incident: schedule weekly or launch"
                    .into(),
            );
        }
        let cron = match (self.cron, self.weekly) {
            (Some(c), None) => c.trim().to_owned(),
            (None, Some(w)) => Cron::weekly(w.day, w.hour)?,
            _ => {
                return Err(
                    "give `cron` (\"0 9 * * MON\") or `weekly` ({day, hour}), one of them".into(),
                );
            }
        };
        Cron::parse(&cron)?;
        let timezone = self.timezone.unwrap_or_else(|| "UTC".into());
        time_zone(&timezone)?;
        if self.channels.is_empty() || self.channels.len() > 20 {
            return Err("`channels` lists 1 to 20 alert channel ids".into());
        }
        let mut channels = self.channels;
        channels.sort_unstable();
        channels.dedup();
        let name = self
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.kind.title().to_owned());
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err("`name` is at most 100 printable characters".into());
        }
        let format = self.format.unwrap_or(Format::Pdf);
        if format == Format::Json {
            return Err("`format` is md, html or pdf: what email attaches".into());
        }
        Ok(NewSchedule {
            name,
            kind: self.kind,
            cron,
            timezone,
            channels,
            format,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

impl Schedule {
    /// The period due at `now`: the latest occurrence, unless it was delivered already or
    /// came before the schedule existed.
    pub fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        let cron = Cron::parse(&self.cron).ok()?;
        let tz = time_zone(&self.timezone).ok()?;
        let at = latest_occurrence(&cron, &tz, now)?;
        let fresh = self.last_period.is_none_or(|last| at > last);
        (fresh && at >= self.created_at - Duration::minutes(1)).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn latest(expr: &str, tz: &str, now: &str) -> Option<DateTime<Utc>> {
        let cron = Cron::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        latest_occurrence(
            &cron,
            &time_zone(tz).unwrap_or_else(|e| panic!("{e}")),
            utc(now),
        )
    }

    #[test]
    fn cron_fields_parse_ranges_steps_lists_and_names() {
        assert!(Cron::parse("0 9 * * MON").is_ok());
        assert!(Cron::parse("*/15 8-18 1,15 JAN-MAR 1-5").is_ok());
        for bad in [
            "",
            "0 9 * *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cron::weekly(1, 9).as_deref(), Ok("0 9 * * 1"));
        assert!(Cron::weekly(7, 9).is_err());
    }

    #[test]
    fn the_latest_occurrence_is_at_or_before_now() {
        // Monday 2026-06-01 09:00 UTC.
        assert_eq!(
            latest("0 9 * * MON", "UTC", "2026-06-01T09:00:00Z"),
            Some(utc("2026-06-01T09:00:00Z"))
        );
        assert_eq!(
            latest("0 9 * * MON", "UTC", "2026-06-01T08:59:59Z"),
            Some(utc("2026-05-25T09:00:00Z"))
        );
        assert_eq!(
            latest("*/15 * * * *", "UTC", "2026-06-03T10:44:00Z"),
            Some(utc("2026-06-03T10:30:00Z"))
        );
        // Sunday as 0 and as 7.
        assert_eq!(
            latest("0 0 * * 7", "UTC", "2026-06-03T00:00:00Z"),
            latest("0 0 * * 0", "UTC", "2026-06-03T00:00:00Z")
        );
        // Day of month or day of week when both are restricted.
        assert_eq!(
            latest("0 0 1 * MON", "UTC", "2026-06-03T00:00:00Z"),
            Some(utc("2026-06-01T00:00:00Z"))
        );
        assert_eq!(
            latest("0 0 29 2 *", "UTC", "2026-06-03T00:00:00Z"),
            None,
            "no Feb 29 within a year"
        );
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        // 09:00 in Berlin is 07:00 UTC in summer and 08:00 UTC in winter.
        assert_eq!(
            latest("0 9 * * MON", "Europe/Berlin", "2026-06-01T12:00:00Z"),
            Some(utc("2026-06-01T07:00:00Z"))
        );
        assert_eq!(
            latest("0 9 * * MON", "Europe/Berlin", "2026-12-07T12:00:00Z"),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        // 02:30 does not exist on 2026-03-29 in Berlin: it runs right after the gap.
        assert_eq!(
            latest("30 2 * * *", "Europe/Berlin", "2026-03-29T05:00:00Z"),
            Some(utc("2026-03-29T01:30:00Z"))
        );
        assert!(time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn a_schedule_is_due_once_per_period() {
        let mut s = Schedule {
            id: 1,
            name: "Weekly".into(),
            kind: ReportKind::Weekly,
            cron: "0 9 * * MON".into(),
            timezone: "UTC".into(),
            channels: vec![1],
            format: Format::Pdf,
            enabled: true,
            created_at: utc("2026-05-20T00:00:00Z"),
            created_by: "admin".into(),
            last_period: None,
        };
        let period = utc("2026-06-01T09:00:00Z");
        assert_eq!(s.due(utc("2026-06-01T09:00:30Z")), Some(period));
        s.last_period = Some(period);
        assert_eq!(s.due(utc("2026-06-01T09:05:00Z")), None);
        assert_eq!(
            s.due(utc("2026-06-08T09:00:00Z")),
            Some(utc("2026-06-08T09:00:00Z"))
        );
        // A period before the schedule existed is not sent.
        s.last_period = None;
        s.created_at = utc("2026-06-02T00:00:00Z");
        assert_eq!(s.due(utc("2026-06-03T00:00:00Z")), None);
        s.enabled = false;
        assert_eq!(s.due(utc("2026-06-08T09:00:00Z")), None);
    }

    #[test]
    fn inputs_are_checked() {
        let input = |cron: Option<&str>, weekly: Option<WeeklyAt>| ScheduleInput {
            name: None,
            kind: ReportKind::Weekly,
            cron: cron.map(str::to_owned),
            weekly,
            timezone: None,
            channels: vec![2, 1, 2],
            format: None,
            enabled: None,
        };
        let ok = input(None, Some(WeeklyAt { day: 1, hour: 9 }))
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.cron, "0 9 * * 1");
        assert_eq!(ok.channels, [1, 2]);
        assert_eq!(ok.format, Format::Pdf);
        assert_eq!(ok.timezone, "UTC");
        assert!(input(None, None).validate().is_err());
        assert!(
            input(Some("0 9 * * 1"), Some(WeeklyAt { day: 1, hour: 9 }))
                .validate()
                .is_err()
        );
        let mut bad = input(Some("0 9 * * 1"), None);
        bad.timezone = Some("Nowhere/City".into());
        assert!(bad.validate().is_err());
        let mut bad = input(Some("0 9 * * 1"), None);
        bad.kind = ReportKind::Incident;
        assert!(bad.validate().is_err());
    }
}
