//! Prometheus exposition of the requests this replica ingested: `http_requests_total` and the
//! `http_request_duration_seconds` histogram per (service, method, route[, code]). Counters
//! are cumulative since the process started, as Prometheus expects; with several replicas,
//! Prometheus sums them. Series are bounded by the route budget.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use super::requests::Request;

/// Upper bounds of the latency buckets, in seconds (Prometheus client defaults).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    codes: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot is above the largest bound (+Inf).
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

type SeriesKey = (String, String, String);

#[derive(Default)]
pub struct RequestCounters {
    series: Mutex<BTreeMap<SeriesKey, Series>>,
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one histogram series: cumulative `_bucket` lines for [`BUCKETS`] and `+Inf`, then
/// `_sum` and `_count`. `buckets` holds non-cumulative counts, the last slot above every bound.
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: &[u64; BUCKETS.len() + 1],
    sum_seconds: f64,
) {
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += buckets[i];
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    cumulative += buckets[BUCKETS.len()];
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_seconds}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

impl RequestCounters {
    pub fn observe(&self, requests: &[Request]) {
        // Tallied per batch with borrowed keys first: the shared map is then touched (and its
        // keys cloned) once per series, not once per request.
        let mut local: HashMap<(&str, &str, &str), Series> = HashMap::new();
        for r in requests {
            let s = local.entry((&r.service, &r.method, &r.route)).or_default();
            *s.codes.entry(r.status).or_default() += 1;
            let secs = r.duration_ms / 1000.0;
            let slot = BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(BUCKETS.len());
            s.buckets[slot] += 1;
            s.sum_seconds += secs;
            s.count += 1;
        }
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        for ((service, method, route), add) in local {
            let s = series
                .entry((service.to_owned(), method.to_owned(), route.to_owned()))
                .or_default();
            for (code, n) in add.codes {
                *s.codes.entry(code).or_default() += n;
            }
            for (slot, n) in s.buckets.iter_mut().zip(add.buckets) {
                *slot += n;
            }
            s.sum_seconds += add.sum_seconds;
            s.count += add.count;
        }
    }

    /// Appends both metric families in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let Ok(series) = self.series.lock() else {
            return;
        };
        out.push_str("# HELP http_requests_total Requests ingested by this replica, by service, method, route and status code.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((svc, method, route), s) in series.iter() {
            for (code, n) in &s.codes {
                let _ = writeln!(
                    out,
                    "http_requests_total{{service=\"{}\",method=\"{}\",route=\"{}\",code=\"{code}\"}} {n}",
                    escape(svc),
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP http_request_duration_seconds Request latency ingested by this replica.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((svc, method, route), s) in series.iter() {
            let labels = format!(
                "service=\"{}\",method=\"{}\",route=\"{}\"",
                escape(svc),
                escape(method),
                escape(route)
            );
            write_histogram(
                out,
                "http_request_duration_seconds",
                &labels,
                &s.buckets,
                s.sum_seconds,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn req(route: &str, status: u16, ms: f64) -> Request {
        Request {
            service: "web".into(),
            method: "GET".into(),
            route: route.into(),
            status,
            duration_ms: ms,
            at: Utc::now(),
            flags: Vec::new(),
        }
    }

    #[test]
    fn buckets_are_cumulative_and_end_at_inf() {
        let c = RequestCounters::default();
        let reqs = [
            req("/a", 200, 3.0),
            req("/a", 500, 30.0),
            req("/a", 200, 20_000.0),
        ];
        c.observe(&reqs);
        let mut out = String::new();
        c.render(&mut out);
        assert!(out.contains(
            "http_requests_total{service=\"web\",method=\"GET\",route=\"/a\",code=\"200\"} 2"
        ));
        assert!(out.contains(
            "http_requests_total{service=\"web\",method=\"GET\",route=\"/a\",code=\"500\"} 1"
        ));
        assert!(out.contains("le=\"0.005\"} 1\n"));
        assert!(out.contains("le=\"0.05\"} 2\n"));
        assert!(out.contains("le=\"10\"} 2\n"));
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains(
            "http_request_duration_seconds_count{service=\"web\",method=\"GET\",route=\"/a\"} 3"
        ));
        let series: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit_once(' ').unwrap().0)
            .collect();
        let unique: std::collections::BTreeSet<_> = series.iter().collect();
        assert_eq!(series.len(), unique.len(), "every series once");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
