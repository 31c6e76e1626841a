//! Request records as apps send them, validated at the edge and folded into per-minute cells:
//! one latency sketch per (minute, service, method, route, status). Raw requests are never
//! stored; the cells merge into any window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::sketch::DDSketch;

/// Routes kept apart per service; more distinct routes than this are counted under `other`,
/// so a client that sends raw paths (ids in them) cannot grow memory or storage without bound.
pub const MAX_ROUTES: usize = 2_000;
pub const OTHER_ROUTE: &str = "other";
pub const DEFAULT_SERVICE: &str = "default";

/// One request, as `POST /api/ingest/requests` takes it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RequestRecord {
    /// The app or service; `default` when absent.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub service: Option<String>,
    #[schema(pattern = "^[A-Za-z]{1,16}$")]
    pub method: String,
    /// The route template (`/users/{id}`), never the raw path.
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub route: String,
    #[schema(minimum = 100, maximum = 599)]
    pub status: u16,
    pub duration_ms: f64,
    /// RFC 3339, or Unix time in seconds or milliseconds; now when absent.
    #[schema(value_type = Option<Object>)]
    pub ts: Option<Value>,
    pub user_id: Option<String>,
    /// The variants served while answering, `{flag: variant}` (`on`/`off` for flags without
    /// variants): kept per variant for flags under an experiment or a guarded rollout.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub flags: Option<BTreeMap<String, String>>,
}

/// A request after validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub service: String,
    pub method: String,
    pub route: String,
    pub status: u16,
    pub duration_ms: f64,
    pub at: DateTime<Utc>,
    /// (flag, variant) served, at most [`MAX_VARIANTS_PER_REQUEST`](super::variants::MAX_VARIANTS_PER_REQUEST).
    pub flags: Vec<(String, String)>,
}

/// The key of a per-minute cell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CellKey {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    pub service: String,
    pub method: String,
    pub route: String,
    pub status: u16,
}

pub(crate) fn parse_ts(v: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let at = match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("ts `{s}` is not RFC 3339: {e}"))?,
        Value::Number(n) => {
            let x = n.as_f64().ok_or("ts is not a number")?;
            // Numbers above 1e11 are milliseconds (1e11 s is in the year 5138).
            let ms = if x.abs() > 1e11 { x } else { x * 1000.0 };
            Utc.timestamp_millis_opt(ms as i64)
                .single()
                .ok_or_else(|| format!("ts {x} is out of range"))?
        }
        Value::Null => now,
        _ => return Err("ts must be an RFC 3339 string or Unix seconds/milliseconds".into()),
    };
    if at < now - Duration::days(30) || at > now + Duration::minutes(5) {
        return Err(format!("ts {at} is more than 30 days old or in the future"));
    }
    Ok(at)
}

fn token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_control())
}

impl RequestRecord {
    pub fn validate(self, now: DateTime<Utc>) -> Result<Request, String> {
        // Most clients already send upper case: no allocation then.
        let method = if self.method.bytes().all(|b| b.is_ascii_uppercase()) {
            self.method
        } else {
            self.method.to_ascii_uppercase()
        };
        if !(method.len() <= 16
            && !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!(
                "method `{}` is not an HTTP method",
                method.chars().take(20).collect::<String>()
            ));
        }
        if !token(&self.route, 512) {
            return Err(format!(
                "route must be 1 to 512 printable characters (got {})",
                self.route.len()
            ));
        }
        if !(100..=599).contains(&self.status) {
            return Err(format!("status {} is not between 100 and 599", self.status));
        }
        if !(self.duration_ms.is_finite() && (0.0..=86_400_000.0).contains(&self.duration_ms)) {
            return Err(format!(
                "duration_ms {} must be between 0 and 86400000",
                self.duration_ms
            ));
        }
        let service = self.service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
        if !token(&service, 100) {
            return Err("service must be 1 to 100 printable characters".into());
        }
        let at = match &self.ts {
            Some(v) => parse_ts(v, now)?,
            None => now,
        };
        let flags = match self.flags {
            None => Vec::new(),
            Some(map) => {
                if map.len() > super::variants::MAX_VARIANTS_PER_REQUEST {
                    return Err(format!(
                        "flags names {} flags; at most {} per request",
                        map.len(),
                        super::variants::MAX_VARIANTS_PER_REQUEST
                    ));
                }
                if let Some((k, v)) = map.iter().find(|(k, v)| !token(k, 200) || !token(v, 100)) {
                    return Err(format!(
                        "flags: `{}` = `{}`: flag keys are 1 to 200 and variants 1 to 100 printable characters",
                        k.chars().take(40).collect::<String>(),
                        v.chars().take(40).collect::<String>()
                    ));
                }
                map.into_iter().collect()
            }
        };
        Ok(Request {
            service,
            method,
            route: self.route,
            status: self.status,
            duration_ms: self.duration_ms,
            at,
            flags,
        })
    }
}

/// Which routes are kept apart; the rest become `other`. Keyed by service then route so a
/// lookup borrows the request's strings: the hot path allocates only for a route never seen.
#[derive(Default)]
pub struct RouteBudget {
    seen: Mutex<Seen>,
    overflowed: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Seen {
    routes: HashMap<String, HashSet<String>>,
    total: usize,
}

impl Seen {
    /// Whether `route` of `service` is (now) kept apart.
    fn admit(&mut self, service: &str, route: &str) -> bool {
        if self.routes.get(service).is_some_and(|r| r.contains(route)) {
            return true;
        }
        if self.total >= MAX_ROUTES {
            return false;
        }
        self.total += 1;
        self.routes
            .entry(service.to_owned())
            .or_default()
            .insert(route.to_owned());
        true
    }
}

impl RouteBudget {
    /// The route to record `route` of `service` under.
    pub fn admit(&self, service: &str, route: &str) -> String {
        let kept = self.seen.lock().is_ok_and(|mut s| s.admit(service, route));
        if kept {
            return route.to_owned();
        }
        self.overflowed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OTHER_ROUTE.to_owned()
    }

    /// Puts every request's route through the budget under one lock.
    pub fn admit_all(&self, requests: &mut [Request]) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let mut overflowed = 0;
        for r in requests {
            if !seen.admit(&r.service, &r.route) {
                r.route = OTHER_ROUTE.to_owned();
                overflowed += 1;
            }
        }
        if overflowed > 0 {
            self.overflowed
                .fetch_add(overflowed, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Requests recorded under `other` because the budget was spent.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Teaches the budget routes already stored (at start).
    pub fn learn(&self, service: &str, route: &str) {
        if let Ok(mut s) = self.seen.lock() {
            s.admit(service, route);
        }
    }
}

/// Folds requests (their routes already through the budget) into per-minute cells. Keys are
/// borrowed while folding and owned once per cell, not once per request.
pub fn fold(requests: &[Request]) -> BTreeMap<CellKey, DDSketch> {
    let mut cells: std::collections::HashMap<(i64, &str, &str, &str, u16), DDSketch> =
        std::collections::HashMap::new();
    for r in requests {
        let key = (
            r.at.timestamp().div_euclid(60),
            r.service.as_str(),
            r.method.as_str(),
            r.route.as_str(),
            r.status,
        );
        cells.entry(key).or_default().add(r.duration_ms);
    }
    cells
        .into_iter()
        .map(|((minute, service, method, route, status), s)| {
            (
                CellKey {
                    minute,
                    service: service.to_owned(),
                    method: method.to_owned(),
                    route: route.to_owned(),
                    status,
                },
                s,
            )
        })
        .collect()
}

/// Whether the cell is a service's all-route total: totals are stored as cells with an empty
/// method and route (no request has either), so summaries and charts merge a few cells per
/// minute instead of one per endpoint.
pub fn is_total(k: &CellKey) -> bool {
    k.method.is_empty()
}

/// Adds to `cells` the per-(service, status, minute) totals of the endpoint cells in it.
pub fn add_totals(
    cells: &mut BTreeMap<CellKey, DDSketch>,
) -> Result<(), super::sketch::SketchError> {
    let mut totals: BTreeMap<CellKey, DDSketch> = BTreeMap::new();
    for (k, s) in cells.iter().filter(|(k, _)| !is_total(k)) {
        let key = CellKey {
            minute: k.minute,
            service: k.service.clone(),
            method: String::new(),
            route: String::new(),
            status: k.status,
        };
        match totals.get_mut(&key) {
            Some(t) => t.merge(s)?,
            None => {
                totals.insert(key, s.clone());
            }
        }
    }
    for (k, s) in totals {
        match cells.get_mut(&k) {
            Some(c) => c.merge(&s)?,
            None => {
                cells.insert(k, s);
            }
        }
    }
    Ok(())
}

/// Merges cells with the same key (and the same minute) into one.
pub fn merge_cells(
    cells: impl IntoIterator<Item = (CellKey, DDSketch)>,
) -> Result<BTreeMap<CellKey, DDSketch>, super::sketch::SketchError> {
    let mut merged: BTreeMap<CellKey, DDSketch> = BTreeMap::new();
    for (k, s) in cells {
        match merged.get_mut(&k) {
            Some(m) => m.merge(&s)?,
            None => {
                merged.insert(k, s);
            }
        }
    }
    Ok(merged)
}

/// Compaction's merge: cells moved to their `to_res`-minute bucket ([`super::bucket_start`])
/// and merged per bucket.
pub fn roll_up(
    cells: impl IntoIterator<Item = (CellKey, DDSketch)>,
    to_res: i64,
) -> Result<BTreeMap<CellKey, DDSketch>, super::sketch::SketchError> {
    merge_cells(cells.into_iter().map(|(k, s)| {
        (
            CellKey {
                minute: super::bucket_start(k.minute, to_res),
                ..k
            },
            s,
        )
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(v: Value) -> RequestRecord {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_refuses_what_cannot_be_a_request() {
        let now = Utc::now();
        let ok =
            json!({"method": "get", "route": "/users/{id}", "status": 200, "duration_ms": 12.5});
        let r = record(ok.clone()).validate(now).unwrap();
        assert_eq!(
            (r.method.as_str(), r.service.as_str(), r.at),
            ("GET", "default", now)
        );
        for (field, value) in [
            ("duration_ms", json!(-1)),
            ("status", json!(999)),
            ("route", json!("x".repeat(10_000))),
            ("method", json!("GET /")),
            ("ts", json!("yesterday")),
            ("ts", json!(1)),
        ] {
            let mut bad = ok.clone();
            bad[field] = value;
            assert!(record(bad).validate(now).is_err(), "{field} accepted");
        }
        let mut ms = ok.clone();
        ms["ts"] = json!(now.timestamp_millis());
        assert_eq!(
            record(ms).validate(now).unwrap().at.timestamp(),
            now.timestamp()
        );
    }

    #[test]
    fn folding_groups_by_minute_and_caps_routes() {
        let now = Utc.timestamp_opt(1_800_000_000, 0).single().unwrap();
        let budget = RouteBudget::default();
        let reqs = (0..MAX_ROUTES + 10).map(|i| Request {
            service: "web".into(),
            method: "GET".into(),
            route: format!("/r/{i}"),
            status: 200,
            duration_ms: 5.0,
            at: now,
            flags: Vec::new(),
        });
        let reqs: Vec<Request> = reqs
            .map(|r| Request {
                route: budget.admit(&r.service, &r.route),
                ..r
            })
            .collect();
        let cells = fold(&reqs);
        assert_eq!(cells.len(), MAX_ROUTES + 1, "the rest went to `other`");
        assert_eq!(budget.overflowed(), 10);
        let other = cells
            .iter()
            .find(|(k, _)| k.route == OTHER_ROUTE)
            .unwrap()
            .1;
        assert_eq!(other.count(), 10);
    }
}
