//! Resource readings that app instances report (the SDK's instance reporter): the latest per
//! (service, instance), held in memory. Instances that stop reporting drop out after
//! [`STALE_AFTER`]; at most [`MAX_INSTANCES`] are kept, so a misbehaving fleet cannot grow
//! memory without bound. Every reading also goes to its hour ([`super::resources`]), which is
//! what the trends are fitted to.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::system::Sample;

pub const MAX_INSTANCES: usize = 1_000;
pub const STALE_AFTER: Duration = Duration::minutes(10);

/// What `POST /api/ingest/system` takes.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct InstanceReport {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub service: String,
    /// Host name, pod name or any id unique within the service.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub instance: String,
    /// When the reading was taken, RFC 3339 [default: when it arrives]. At most a week old and
    /// 5 minutes ahead: an agent that buffered through an outage sends what it read then.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub sample: Sample,
}

/// How old a reading may be when it arrives.
pub const MAX_READING_AGE: Duration = Duration::days(7);
/// How far ahead of this server's clock a reading may be.
pub const MAX_READING_AHEAD: Duration = Duration::minutes(5);

/// An instance's latest reading.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct InstanceView {
    pub service: String,
    pub instance: String,
    #[serde(flatten)]
    pub sample: Sample,
    pub last_seen: DateTime<Utc>,
}

fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| !c.is_control())
}

impl InstanceReport {
    /// Refuses readings that cannot be true: negative or non-finite figures, shares over 100 %,
    /// a time more than a week ago or ahead of `now`.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), String> {
        if let Some(at) = self.timestamp
            && (at < now - MAX_READING_AGE || at > now + MAX_READING_AHEAD)
        {
            return Err(format!(
                "timestamp {at} is more than 7 days old or more than 5 minutes ahead of this server's clock"
            ));
        }
        if !name_ok(&self.service) || !name_ok(&self.instance) {
            return Err("service and instance must be 1 to 100 printable characters".into());
        }
        let s = &self.sample;
        let shares = [s.cpu.percent, s.memory.percent, s.disk.percent];
        let amounts = [
            s.cpu.count,
            s.memory.total_mb,
            s.memory.used_mb,
            s.disk.total_gb,
            s.disk.used_gb,
            s.process_rss_mb,
        ];
        if shares
            .iter()
            .any(|v| !(v.is_finite() && (0.0..=100.0).contains(v)))
        {
            return Err("percentages must be between 0 and 100".into());
        }
        if amounts.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err("counts and sizes must be finite and not negative".into());
        }
        Ok(())
    }
}

/// (service, instance) → latest reading and when it came.
type Latest = HashMap<(String, String), (Sample, DateTime<Utc>)>;

#[derive(Default)]
pub struct Instances {
    latest: Mutex<Latest>,
    /// Every reading, summed per hour until the `resource-history` job writes it.
    pub hours: super::resources::PendingHours,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooManyInstances;

impl Instances {
    /// Adds `report` to its hour and keeps it as its instance's latest reading unless a later
    /// one is held.
    pub fn record(
        &self,
        report: InstanceReport,
        now: DateTime<Utc>,
    ) -> Result<(), TooManyInstances> {
        let Ok(mut latest) = self.latest.lock() else {
            return Ok(());
        };
        let at = report.timestamp.unwrap_or(now);
        let key = (report.service, report.instance);
        if !latest.contains_key(&key) && latest.len() >= MAX_INSTANCES {
            latest.retain(|_, (_, seen)| now - *seen < STALE_AFTER);
            if latest.len() >= MAX_INSTANCES {
                return Err(TooManyInstances);
            }
        }
        self.hours.add(&key.0, &key.1, &report.sample, at);
        match latest.get_mut(&key) {
            Some((_, seen)) if *seen > at => {}
            _ => {
                latest.insert(key, (report.sample, at));
            }
        }
        Ok(())
    }

    /// Instances heard from within [`STALE_AFTER`], by service then instance.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<InstanceView> {
        let Ok(latest) = self.latest.lock() else {
            return Vec::new();
        };
        let mut out: Vec<InstanceView> = latest
            .iter()
            .filter(|(_, (_, seen))| now - *seen < STALE_AFTER)
            .map(|((service, instance), (sample, seen))| InstanceView {
                service: service.clone(),
                instance: instance.clone(),
                sample: sample.clone(),
                last_seen: *seen,
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.instance).cmp(&(&b.service, &b.instance)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(instance: &str, cpu: f64) -> InstanceReport {
        let mut sample = Sample::default();
        sample.cpu.percent = cpu;
        InstanceReport {
            service: "web".into(),
            instance: instance.into(),
            timestamp: None,
            sample,
        }
    }

    #[test]
    fn keeps_the_latest_and_forgets_the_silent() {
        let i = Instances::default();
        let t0 = Utc::now();
        i.record(report("a", 10.0), t0).unwrap();
        i.record(report("a", 20.0), t0).unwrap();
        i.record(report("b", 5.0), t0 + Duration::minutes(9))
            .unwrap();
        let now = t0 + Duration::minutes(11);
        let seen = i.list(now);
        assert_eq!(seen.len(), 1, "a went silent 11 minutes ago");
        assert_eq!(seen[0].instance, "b");
        let all = i.list(t0);
        assert_eq!(all[0].sample.cpu.percent, 20.0);
    }

    #[test]
    fn bounded_and_validated() {
        let i = Instances::default();
        let t0 = Utc::now();
        for n in 0..MAX_INSTANCES {
            i.record(report(&n.to_string(), 1.0), t0).unwrap();
        }
        assert_eq!(i.record(report("one-more", 1.0), t0), Err(TooManyInstances));
        i.record(report("one-more", 1.0), t0 + STALE_AFTER).unwrap();
        assert!(report("x", 101.0).validate(t0).is_err());
        assert!(report("x", f64::NAN).validate(t0).is_err());
        assert!(report("", 1.0).validate(t0).is_err());
        assert!(report("x", 50.0).validate(t0).is_ok());
        let mut old = report("x", 50.0);
        old.timestamp = Some(t0 - Duration::days(8));
        assert!(old.validate(t0).is_err());
        old.timestamp = Some(t0 + Duration::minutes(6));
        assert!(old.validate(t0).is_err());
        old.timestamp = Some(t0 - Duration::days(6));
        assert!(old.validate(t0).is_ok());
    }

    #[test]
    fn a_late_reading_goes_to_its_hour_but_not_over_a_newer_one() {
        let i = Instances::default();
        let t0 = Utc::now();
        i.record(report("a", 20.0), t0).unwrap();
        let mut late = report("a", 90.0);
        late.timestamp = Some(t0 - Duration::hours(3));
        i.record(late, t0).unwrap();
        assert_eq!(i.list(t0)[0].sample.cpu.percent, 20.0);
        let hours = i.hours.take();
        assert_eq!(hours.len(), 2, "{hours:?}");
    }
}
