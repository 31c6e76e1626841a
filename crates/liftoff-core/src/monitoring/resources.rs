//! Resource use over time: every reading of an instance (and of this server) summed per hour,
//! written to the metrics store once a minute, and the trend of each resource fitted by least
//! squares over daily averages.
//!
//! Hours are kept as sums and peaks, not averages, so that the parts of one hour written by
//! several flushes, or by several replicas, add up to the same hour a single writer would keep.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::system::Sample;
use crate::launch::scaling::{TREND_ALPHA, line_fit};

/// Hours waiting to be written. Bounded: a store that is down for long drops the newest
/// readings (counted) rather than growing memory.
pub const MAX_PENDING_HOURS: usize = 20_000;

/// Days a trend needs: fewer and a daily cycle or one busy day passes for a trend.
pub const MIN_TREND_DAYS: usize = 3;

/// The oldest day of a trend counts only when its readings span this many of its hours: a
/// shorter piece of a day holds an uneven part of the daily swing.
pub const MIN_OLDEST_DAY_HOURS: i64 = 18;

/// A change smaller than this (percentage points a week) is "stable" however significant.
pub const MIN_MEANINGFUL_CHANGE_PER_WEEK: f64 = 2.0;

/// "Full in N days" is said only up to a year ahead; further is not a forecast.
pub const MAX_FULL_IN_DAYS: f64 = 365.0;

/// A resource that fills within this many days needs acting on now.
pub const FILLS_SOON_DAYS: f64 = 30.0;

/// One instance's readings within one hour.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceHour {
    pub service: String,
    pub instance: String,
    /// Unix seconds / 3600.
    pub hour: i64,
    pub samples: u64,
    /// Sums of the readings' percentages (0–100 each) and their peaks.
    pub cpu_sum: f64,
    pub cpu_max: f64,
    pub memory_sum: f64,
    pub memory_max: f64,
    pub disk_sum: f64,
    pub disk_max: f64,
    /// What the instance had at its latest reading of the hour.
    pub cpu_count: f64,
    pub memory_total_mb: f64,
    pub disk_total_gb: f64,
}

impl ResourceHour {
    fn of(service: &str, instance: &str, hour: i64, s: &Sample) -> Self {
        Self {
            service: service.to_owned(),
            instance: instance.to_owned(),
            hour,
            samples: 1,
            cpu_sum: s.cpu.percent,
            cpu_max: s.cpu.percent,
            memory_sum: s.memory.percent,
            memory_max: s.memory.percent,
            disk_sum: s.disk.percent,
            disk_max: s.disk.percent,
            cpu_count: s.cpu.count,
            memory_total_mb: s.memory.total_mb,
            disk_total_gb: s.disk.total_gb,
        }
    }

    /// Adds `other` (the same instance and hour, read later) to this hour.
    pub fn add(&mut self, other: &ResourceHour) {
        self.samples += other.samples;
        self.cpu_sum += other.cpu_sum;
        self.cpu_max = self.cpu_max.max(other.cpu_max);
        self.memory_sum += other.memory_sum;
        self.memory_max = self.memory_max.max(other.memory_max);
        self.disk_sum += other.disk_sum;
        self.disk_max = self.disk_max.max(other.disk_max);
        self.cpu_count = other.cpu_count;
        self.memory_total_mb = other.memory_total_mb;
        self.disk_total_gb = other.disk_total_gb;
    }

    fn key(&self) -> HourKey {
        (self.service.clone(), self.instance.clone(), self.hour)
    }
}

type HourKey = (String, String, i64);

/// Readings summed per hour until the next flush.
#[derive(Default)]
pub struct PendingHours {
    hours: Mutex<HashMap<HourKey, ResourceHour>>,
    dropped: AtomicU64,
}

impl PendingHours {
    pub fn add(&self, service: &str, instance: &str, sample: &Sample, at: DateTime<Utc>) {
        let hour = ResourceHour::of(service, instance, at.timestamp().div_euclid(3600), sample);
        self.merge(std::iter::once(hour));
    }

    fn merge(&self, rows: impl IntoIterator<Item = ResourceHour>) {
        let Ok(mut hours) = self.hours.lock() else {
            return;
        };
        for row in rows {
            let key = row.key();
            if let Some(held) = hours.get_mut(&key) {
                held.add(&row);
            } else if hours.len() < MAX_PENDING_HOURS {
                hours.insert(key, row);
            } else {
                self.dropped.fetch_add(row.samples, Ordering::Relaxed);
            }
        }
    }

    /// Everything pending, which stops being pending: the caller writes it or [`Self::put_back`].
    pub fn take(&self) -> Vec<ResourceHour> {
        self.hours
            .lock()
            .map(|mut h| h.drain().map(|(_, v)| v).collect())
            .unwrap_or_default()
    }

    /// Returns rows a failed write took, to be tried again.
    pub fn put_back(&self, rows: Vec<ResourceHour>) {
        self.merge(rows);
    }

    /// A copy of what is pending within hours `from..to`, for answers that must include it.
    pub fn within(&self, from: i64, to: i64) -> Vec<ResourceHour> {
        self.hours
            .lock()
            .map(|h| {
                h.values()
                    .filter(|r| (from..to).contains(&r.hour))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Readings dropped because too many hours were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One hour of an instance: averages and peaks, 0–100.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HourReading {
    pub at: DateTime<Utc>,
    pub samples: u64,
    pub cpu_percent: f64,
    pub cpu_peak_percent: f64,
    pub memory_percent: f64,
    pub memory_peak_percent: f64,
    pub disk_percent: f64,
    pub disk_peak_percent: f64,
}

/// Which way a resource's use is heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceDirection {
    Rising,
    Stable,
    Falling,
}

/// One resource of one instance over a window.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ResourceTrend {
    /// Average of every reading in the window, 0–100.
    pub average_percent: f64,
    /// The highest reading, 0–100.
    pub peak_percent: f64,
    /// Least-squares slope of the daily averages, in percentage points a week; absent with
    /// fewer than three days.
    pub change_per_week: Option<f64>,
    /// Two-sided p-value of "the slope is 0".
    pub p_value: Option<f64>,
    /// Rising or falling only when the slope is significant (p < 0.05) and at least two
    /// points a week.
    pub direction: ResourceDirection,
    /// Days until the fitted line reaches 100 %, when rising and within a year.
    pub full_in_days: Option<f64>,
}

/// `GET /api/monitoring/resources`: one instance's hours and trends.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct InstanceHistory {
    pub service: String,
    pub instance: String,
    /// At the latest reading.
    pub cpu_count: f64,
    pub memory_total_mb: f64,
    pub disk_total_gb: f64,
    pub cpu: ResourceTrend,
    pub memory: ResourceTrend,
    pub disk: ResourceTrend,
    /// Oldest first.
    pub hours: Vec<HourReading>,
}

/// Hours as stored (one instance's hour may come in several rows: pending and stored, or from
/// several replicas) into each instance's history, by service then instance.
pub fn histories(rows: impl IntoIterator<Item = ResourceHour>) -> Vec<InstanceHistory> {
    let mut merged: BTreeMap<(String, String), BTreeMap<i64, ResourceHour>> = BTreeMap::new();
    for row in rows {
        let hours = merged
            .entry((row.service.clone(), row.instance.clone()))
            .or_default();
        match hours.get_mut(&row.hour) {
            Some(held) => held.add(&row),
            None => {
                hours.insert(row.hour, row);
            }
        }
    }
    merged
        .into_iter()
        .filter_map(|((service, instance), hours)| {
            let hours: Vec<ResourceHour> = hours.into_values().collect();
            let last = hours.last()?.clone();
            Some(InstanceHistory {
                service,
                instance,
                cpu_count: last.cpu_count,
                memory_total_mb: last.memory_total_mb,
                disk_total_gb: last.disk_total_gb,
                cpu: trend(&hours, |h| (h.cpu_sum, h.cpu_max)),
                memory: trend(&hours, |h| (h.memory_sum, h.memory_max)),
                disk: trend(&hours, |h| (h.disk_sum, h.disk_max)),
                hours: hours.iter().map(reading).collect(),
            })
        })
        .collect()
}

fn reading(h: &ResourceHour) -> HourReading {
    let n = h.samples.max(1) as f64;
    HourReading {
        at: Utc
            .timestamp_opt(h.hour * 3600, 0)
            .single()
            .unwrap_or_default(),
        samples: h.samples,
        cpu_percent: h.cpu_sum / n,
        cpu_peak_percent: h.cpu_max,
        memory_percent: h.memory_sum / n,
        memory_peak_percent: h.memory_max,
        disk_percent: h.disk_sum / n,
        disk_peak_percent: h.disk_max,
    }
}

/// The trend of one resource. The line is fitted to daily averages, not hourly ones: hourly
/// values swing with the daily cycle and each is close to the one before, and a t-test on
/// them would call a trend significant that is not.
fn trend(hours: &[ResourceHour], of: impl Fn(&ResourceHour) -> (f64, f64)) -> ResourceTrend {
    let samples: u64 = hours.iter().map(|h| h.samples).sum();
    let total: f64 = hours.iter().map(|h| of(h).0).sum();
    let peak = hours.iter().map(|h| of(h).1).fold(0.0, f64::max);
    // Days are the 24 hours up to the latest reading, the 24 before, and so on, not calendar
    // days: a calendar day read only in part holds part of the daily swing, and its average
    // bent the line by several points a week depending on the hour it was read. Now only the
    // oldest day can be partial, and it is left out when it spans less than
    // [`MIN_OLDEST_DAY_HOURS`]. Each day's point sits at the mean time of its readings.
    let latest = hours.iter().map(|h| h.hour).max().unwrap_or_default();
    let mut days: BTreeMap<i64, (f64, f64, u64)> = BTreeMap::new();
    for h in hours {
        let day = days.entry((latest - h.hour).div_euclid(24)).or_default();
        day.0 += of(h).0;
        day.1 += (h.hour as f64 + 0.5) / 24.0 * h.samples as f64;
        day.2 += h.samples;
    }
    if let Some((&oldest, _)) = days.last_key_value() {
        let starts = hours.iter().map(|h| h.hour).min().unwrap_or(latest);
        let spans = latest - 24 * oldest - starts + 1;
        if oldest > 0 && spans < MIN_OLDEST_DAY_HOURS {
            days.remove(&oldest);
        }
    }
    let points: Vec<(f64, f64)> = days
        .values()
        .rev()
        .filter(|(_, _, n)| *n > 0)
        .map(|(sum, at, n)| (at / *n as f64, sum / *n as f64))
        .collect();
    let fit = (points.len() >= MIN_TREND_DAYS)
        .then(|| line_fit(&points))
        .flatten();
    let direction = match fit {
        Some(f)
            if f.slope_p_value < TREND_ALPHA
                && (f.slope * 7.0).abs() >= MIN_MEANINGFUL_CHANGE_PER_WEEK =>
        {
            if f.slope > 0.0 {
                ResourceDirection::Rising
            } else {
                ResourceDirection::Falling
            }
        }
        _ => ResourceDirection::Stable,
    };
    let full_in_days = fit
        .filter(|_| direction == ResourceDirection::Rising)
        .and_then(|f| {
            let last_day = points.last()?.0;
            let now = f.intercept + f.slope * last_day;
            let days = ((100.0 - now) / f.slope).max(0.0);
            (days <= MAX_FULL_IN_DAYS).then_some(days)
        });
    ResourceTrend {
        average_percent: if samples == 0 {
            0.0
        } else {
            total / samples as f64
        },
        peak_percent: peak,
        change_per_week: fit.map(|f| f.slope * 7.0),
        p_value: fit.map(|f| f.slope_p_value),
        direction,
        full_in_days,
    }
}

/// How much an instance's trends ask for attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Concern {
    None,
    /// Rising, or full in more than [`FILLS_SOON_DAYS`].
    Watch,
    /// Full within [`FILLS_SOON_DAYS`].
    Urgent,
}

pub fn days_phrase(days: f64) -> String {
    match days.round() as i64 {
        0 => "less than a day".to_owned(),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}

/// "memory ↑ +4.1 pts/week, full in 12 days; CPU, disk stable": what moves, then the rest,
/// in the words the weekly report and the Performance page share.
pub fn describe(
    cpu: Option<&ResourceTrend>,
    memory: Option<&ResourceTrend>,
    disk: Option<&ResourceTrend>,
) -> (String, Concern) {
    let all = [("CPU", cpu), ("memory", memory), ("disk", disk)];
    if all.iter().all(|(_, t)| t.is_none()) {
        return ("no history".to_owned(), Concern::None);
    }
    if all
        .iter()
        .all(|(_, t)| t.is_none_or(|t| t.change_per_week.is_none()))
    {
        return (
            format!("under {MIN_TREND_DAYS} days of history"),
            Concern::None,
        );
    }
    let mut parts = Vec::new();
    let mut stable = Vec::new();
    let mut concern = Concern::None;
    for (name, trend) in all {
        let Some(t) = trend else { continue };
        let Some(per_week) = t
            .change_per_week
            .filter(|_| t.direction != ResourceDirection::Stable)
        else {
            if t.change_per_week.is_some() {
                stable.push(name);
            }
            continue;
        };
        let rising = t.direction == ResourceDirection::Rising;
        let mut text = format!(
            "{name} {} {per_week:+.1} pts/week",
            if rising { "↑" } else { "↓" }
        );
        if let Some(days) = t.full_in_days {
            text.push_str(&format!(", full in {}", days_phrase(days)));
        }
        let this = match t.full_in_days {
            Some(days) if days <= FILLS_SOON_DAYS => Concern::Urgent,
            _ if rising => Concern::Watch,
            _ => Concern::None,
        };
        concern = concern.max(this);
        parts.push(text);
    }
    if !stable.is_empty() {
        parts.push(format!("{} stable", stable.join(", ")));
    }
    (parts.join("; "), concern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sample(cpu: f64, memory: f64, disk: f64) -> Sample {
        let mut s = Sample::default();
        s.cpu.percent = cpu;
        s.cpu.count = 2.0;
        s.memory.percent = memory;
        s.memory.total_mb = 4096.0;
        s.disk.percent = disk;
        s.disk.total_gb = 100.0;
        s
    }

    fn week(memory: impl Fn(f64) -> f64, noise: &mut impl Rng) -> Vec<ResourceHour> {
        let pending = PendingHours::default();
        let start = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        for minute in (0..7 * 24 * 60).step_by(10) {
            let at = start + chrono::Duration::minutes(minute);
            let day = minute as f64 / 1440.0;
            // A daily cycle on top of the trend, as real machines have.
            let cycle = 10.0 * (day * std::f64::consts::TAU).sin();
            let m = (memory(day) + cycle + noise.random_range(-3.0..3.0)).clamp(0.0, 100.0);
            let c = (40.0 + cycle + noise.random_range(-5.0..5.0)).clamp(0.0, 100.0);
            pending.add("web", "a", &sample(c, m, 50.0), at);
        }
        pending.take()
    }

    #[test]
    fn a_rising_memory_is_called_rising_with_when_it_fills() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let h = histories(week(|d| 50.0 + 4.0 * d, &mut rng));
        assert_eq!(h.len(), 1);
        let h = &h[0];
        assert_eq!(h.hours.len(), 7 * 24);
        assert_eq!(h.hours[0].samples, 6);
        assert_eq!(h.memory.direction, ResourceDirection::Rising);
        let per_week = h.memory.change_per_week.unwrap();
        assert!((per_week - 28.0).abs() < 2.0, "{per_week}");
        // The line reaches about 74 % on the last day: (100 - 74) / 4 ≈ 6.5 days.
        let full = h.memory.full_in_days.unwrap();
        assert!((5.0..8.0).contains(&full), "{full}");
        assert_eq!(h.cpu.direction, ResourceDirection::Stable);
        assert_eq!(h.cpu.full_in_days, None);
        assert_eq!(h.disk.direction, ResourceDirection::Stable);
        assert!((h.disk.average_percent - 50.0).abs() < 1e-9);
        assert_eq!(h.memory_total_mb, 4096.0);
    }

    #[test]
    fn the_words_name_what_moves_and_the_worst_concern_wins() {
        let t = |direction, per_week: f64, full: Option<f64>| ResourceTrend {
            average_percent: 50.0,
            peak_percent: 60.0,
            change_per_week: Some(per_week),
            p_value: Some(0.01),
            direction,
            full_in_days: full,
        };
        let urgent = t(ResourceDirection::Rising, 7.0, Some(12.4));
        let slow = t(ResourceDirection::Rising, 2.5, Some(90.0));
        let flat = t(ResourceDirection::Stable, 0.3, None);
        assert_eq!(
            describe(Some(&flat), Some(&urgent), Some(&slow)),
            (
                "memory ↑ +7.0 pts/week, full in 12 days; disk ↑ +2.5 pts/week, full in 90 days; CPU stable".to_owned(),
                Concern::Urgent
            )
        );
        assert_eq!(describe(None, None, None).1, Concern::None);
        let young = ResourceTrend {
            change_per_week: None,
            p_value: None,
            ..flat.clone()
        };
        assert_eq!(
            describe(Some(&young), Some(&young), Some(&young)).0,
            "under 3 days of history"
        );
        let falling = t(ResourceDirection::Falling, -3.0, None);
        assert_eq!(
            describe(Some(&falling), Some(&flat), Some(&flat)),
            (
                "CPU ↓ -3.0 pts/week; memory, disk stable".to_owned(),
                Concern::None
            )
        );
    }

    #[test]
    fn flat_noise_is_stable_in_nearly_every_run() {
        let mut stable = 0;
        for seed in 0..200 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let h = histories(week(|_| 60.0, &mut rng));
            if h[0].memory.direction == ResourceDirection::Stable {
                stable += 1;
            }
        }
        assert!(stable >= 190, "{stable} of 200 flat runs called stable");
    }

    /// Six and a half days of readings every two hours with a ±10 point daily swing, starting
    /// at each hour of the day: the partial days at the ends must not move the verdict.
    #[test]
    fn the_hour_a_history_starts_does_not_bend_its_trend() {
        let mut slopes = Vec::new();
        for start_hour in 0..24 {
            let pending = PendingHours::default();
            let start = Utc.with_ymd_and_hms(2026, 11, 2, start_hour, 0, 0).unwrap();
            for step in 0..78 {
                let at = start + chrono::Duration::hours(2 * step);
                let day = (i64::from(start_hour) + 2 * step) as f64 / 24.0;
                let cycle = 10.0 * (day * std::f64::consts::TAU).sin();
                let s = sample(
                    40.0 + cycle,
                    50.0 + 3.0 * (2 * step) as f64 / 24.0 + cycle,
                    30.0,
                );
                pending.add("web", "a", &s, at);
            }
            let h = &histories(pending.take())[0];
            assert_eq!(
                h.cpu.direction,
                ResourceDirection::Stable,
                "from {start_hour}:00"
            );
            let cpu = h.cpu.change_per_week.unwrap();
            assert!(
                cpu.abs() < MIN_MEANINGFUL_CHANGE_PER_WEEK,
                "from {start_hour}:00: {cpu}"
            );
            assert_eq!(h.memory.direction, ResourceDirection::Rising);
            slopes.push(h.memory.change_per_week.unwrap());
        }
        let (low, high) = slopes
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &s| (l.min(s), h.max(s)));
        assert!(
            low > 19.5 && high < 22.5,
            "3 points a day = 21 a week: {low}..{high}"
        );
    }

    #[test]
    fn hours_from_several_writers_add_up() {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 10, 5, 0).unwrap();
        let a = PendingHours::default();
        a.add("web", "a", &sample(10.0, 20.0, 30.0), t);
        let b = PendingHours::default();
        b.add(
            "web",
            "a",
            &sample(30.0, 40.0, 30.0),
            t + chrono::Duration::minutes(30),
        );
        let mut rows = a.take();
        rows.extend(b.take());
        let h = histories(rows);
        assert_eq!(h[0].hours.len(), 1);
        assert_eq!(h[0].hours[0].samples, 2);
        assert_eq!(h[0].hours[0].cpu_percent, 20.0);
        assert_eq!(h[0].hours[0].cpu_peak_percent, 30.0);
        assert_eq!(h[0].cpu.change_per_week, None, "one hour has no trend");
    }

    #[test]
    fn pending_is_bounded_and_a_failed_write_comes_back() {
        let p = PendingHours::default();
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        for i in 0..MAX_PENDING_HOURS + 5 {
            p.add("web", &i.to_string(), &sample(1.0, 1.0, 1.0), t);
        }
        assert_eq!(p.dropped(), 5);
        let rows = p.take();
        assert_eq!(rows.len(), MAX_PENDING_HOURS);
        assert!(p.take().is_empty());
        p.put_back(rows);
        assert_eq!(p.within(0, i64::MAX).len(), MAX_PENDING_HOURS);
    }
}
