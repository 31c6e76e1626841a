//! OpenTelemetry (OTLP/HTTP) ingest: HTTP server histograms and server spans folded into the
//! same per-minute request cells as `POST /api/ingest/requests`.
//!
//! Only the OTLP messages and fields Liftoff reads are defined here, with the field numbers of
//! `opentelemetry-proto` v1 (`collector/{metrics,trace}/v1`, `metrics/v1`, `trace/v1`,
//! `common/v1`, `resource/v1`); protobuf decoding skips every other field. OTLP/JSON is read
//! into the same types by [`metrics_from_json`] and [`traces_from_json`].
//!
//! Metrics: data points of the histograms `http.server.request.duration` (seconds, semantic
//! conventions ≥ 1.20) and `http.server.duration` (milliseconds, older conventions) become
//! sketch entries: each bucket's count is added at one representative value (the midpoint of
//! its bounds; the data point's `min` or half the first bound for the first bucket; `max` or
//! the last bound for the overflow bucket; clamped to `[min, max]` when those are present).
//! Quantiles are therefore only as precise as the exporter's buckets, and the sketch's sum is
//! the sum of the representative values, not the exporter's exact `sum`.
//!
//! Cumulative histograms are turned into deltas by [`OtlpState`]: the previous counts of each
//! series (resource, scope, metric and point attributes) are kept and only the increase is
//! recorded. The first point of a series counts in full; a new start time, a decrease or new
//! bucket bounds is a reset and also counts in full.
//!
//! Traces: spans of kind SERVER become one request each (duration = end − start).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

use super::RequestCell;
use super::requests::{CellKey, DEFAULT_SERVICE, OTHER_ROUTE};
use super::sketch::DDSketch;

// ---------------------------------------------------------------------------------------------
// Messages (opentelemetry-proto v1), only the fields read here.

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeMetrics {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    /// Only `histogram` is read; gauges, sums and exponential histograms are recognised (so
    /// they are not mistaken for unknown fields) and ignored.
    #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10")]
    pub data: Option<metric::Data>,
}

pub mod metric {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "5")]
        Gauge(super::Ignored),
        #[prost(message, tag = "7")]
        Sum(super::Ignored),
        #[prost(message, tag = "9")]
        Histogram(super::Histogram),
        #[prost(message, tag = "10")]
        ExponentialHistogram(super::Ignored),
    }
}

/// A message whose content is not read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ignored {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    #[prost(enumeration = "AggregationTemporality", tag = "2")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AggregationTemporality {
    Unspecified = 0,
    Delta = 1,
    Cumulative = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
    #[prost(fixed64, repeated, tag = "6")]
    pub bucket_counts: Vec<u64>,
    #[prost(double, repeated, tag = "7")]
    pub explicit_bounds: Vec<f64>,
    #[prost(double, optional, tag = "11")]
    pub min: Option<f64>,
    #[prost(double, optional, tag = "12")]
    pub max: Option<f64>,
}

/// The (empty) answer to a metrics export; also the shape of the trace answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// Only compared (spans of one trace share flag evaluations), never decoded.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(enumeration = "SpanKind", tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// OpenTelemetry records flag evaluations as span events (`feature_flag.evaluation`).
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<SpanEvent>,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanEvent {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SpanKind {
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(enumeration = "StatusCode", tag = "3")]
    pub code: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// Decodes a protobuf export request.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("the body is not a valid OTLP protobuf message: {e}"))
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON: lowerCamelCase names (snake_case accepted too), 64-bit integers as strings or
// numbers, enums as integers (their names accepted too). Unknown fields are ignored.

type JsonResult<T> = Result<T, String>;

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel)
        .or_else(|| v.get(snake))
        .filter(|x| !x.is_null())
}

fn list<'a>(v: &'a Value, camel: &str, snake: &str) -> JsonResult<&'a [Value]> {
    match field(v, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("`{camel}` must be an array")),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> JsonResult<&'a Value> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(format!("{what} must be an object"))
    }
}

fn string(v: &Value, camel: &str, snake: &str) -> JsonResult<String> {
    match field(v, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("`{camel}` must be a string")),
    }
}

fn uint64(v: &Value, camel: &str, snake: &str) -> JsonResult<u64> {
    match field(v, camel, snake) {
        None => Ok(0),
        Some(x) => uint64_value(x).ok_or_else(|| format!("`{camel}` must be an unsigned integer")),
    }
}

fn uint64_value(x: &Value) -> Option<u64> {
    match x {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn float_value(x: &Value) -> Option<f64> {
    match x {
        Value::Number(n) => n.as_f64(),
        // Protobuf JSON writes non-finite doubles as strings.
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

fn opt_float(v: &Value, camel: &str) -> JsonResult<Option<f64>> {
    field(v, camel, camel)
        .map(|x| float_value(x).ok_or_else(|| format!("`{camel}` must be a number")))
        .transpose()
}

fn enumeration(v: &Value, camel: &str, snake: &str, names: &[(&str, i32)]) -> JsonResult<i32> {
    match field(v, camel, snake) {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| format!("`{camel}` must be an enum value")),
        Some(Value::String(s)) => names
            .iter()
            .find(|(name, _)| name == s)
            .map(|(_, i)| *i)
            .ok_or_else(|| format!("`{camel}`: unknown value `{s}`")),
        Some(_) => Err(format!("`{camel}` must be an enum value")),
    }
}

fn any_value_json(v: &Value) -> JsonResult<AnyValue> {
    use any_value::Value as V;
    let value = if let Some(s) = field(v, "stringValue", "string_value") {
        Some(V::StringValue(
            s.as_str()
                .ok_or("`stringValue` must be a string")?
                .to_owned(),
        ))
    } else if let Some(b) = field(v, "boolValue", "bool_value") {
        Some(V::BoolValue(
            b.as_bool().ok_or("`boolValue` must be a boolean")?,
        ))
    } else if let Some(i) = field(v, "intValue", "int_value") {
        let i = match i {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        Some(V::IntValue(i.ok_or("`intValue` must be an integer")?))
    } else if let Some(d) = field(v, "doubleValue", "double_value") {
        Some(V::DoubleValue(
            float_value(d).ok_or("`doubleValue` must be a number")?,
        ))
    } else {
        // Arrays, key-value lists and bytes are not read.
        None
    };
    Ok(AnyValue { value })
}

fn attributes_json(v: &Value) -> JsonResult<Vec<KeyValue>> {
    list(v, "attributes", "attributes")?
        .iter()
        .map(|kv| {
            let kv = object(kv, "an attribute")?;
            Ok(KeyValue {
                key: string(kv, "key", "key")?,
                value: field(kv, "value", "value")
                    .map(any_value_json)
                    .transpose()?,
            })
        })
        .collect()
}

fn resource_json(v: &Value) -> JsonResult<Option<Resource>> {
    field(v, "resource", "resource")
        .map(|r| {
            Ok(Resource {
                attributes: attributes_json(object(r, "`resource`")?)?,
            })
        })
        .transpose()
}

fn scope_json(v: &Value) -> JsonResult<Option<InstrumentationScope>> {
    field(v, "scope", "scope")
        .map(|s| {
            let s = object(s, "`scope`")?;
            Ok(InstrumentationScope {
                name: string(s, "name", "name")?,
                version: string(s, "version", "version")?,
            })
        })
        .transpose()
}

fn data_point_json(p: &Value) -> JsonResult<HistogramDataPoint> {
    let p = object(p, "a data point")?;
    let bucket_counts = list(p, "bucketCounts", "bucket_counts")?
        .iter()
        .map(|c| uint64_value(c).ok_or_else(|| "`bucketCounts` must hold integers".to_owned()))
        .collect::<JsonResult<_>>()?;
    let explicit_bounds = list(p, "explicitBounds", "explicit_bounds")?
        .iter()
        .map(|b| float_value(b).ok_or_else(|| "`explicitBounds` must hold numbers".to_owned()))
        .collect::<JsonResult<_>>()?;
    Ok(HistogramDataPoint {
        attributes: attributes_json(p)?,
        start_time_unix_nano: uint64(p, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: uint64(p, "timeUnixNano", "time_unix_nano")?,
        count: uint64(p, "count", "count")?,
        sum: opt_float(p, "sum")?,
        bucket_counts,
        explicit_bounds,
        min: opt_float(p, "min")?,
        max: opt_float(p, "max")?,
    })
}

fn metric_json(m: &Value) -> JsonResult<Metric> {
    let m = object(m, "a metric")?;
    let data = if let Some(h) = field(m, "histogram", "histogram") {
        let h = object(h, "`histogram`")?;
        Some(metric::Data::Histogram(Histogram {
            data_points: list(h, "dataPoints", "data_points")?
                .iter()
                .map(data_point_json)
                .collect::<JsonResult<_>>()?,
            aggregation_temporality: enumeration(
                h,
                "aggregationTemporality",
                "aggregation_temporality",
                &[
                    ("AGGREGATION_TEMPORALITY_UNSPECIFIED", 0),
                    ("AGGREGATION_TEMPORALITY_DELTA", 1),
                    ("AGGREGATION_TEMPORALITY_CUMULATIVE", 2),
                ],
            )?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: string(m, "name", "name")?,
        unit: string(m, "unit", "unit")?,
        data,
    })
}

/// Reads an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn metrics_from_json(v: &Value) -> JsonResult<ExportMetricsServiceRequest> {
    let v = object(v, "the request")?;
    let resource_metrics = list(v, "resourceMetrics", "resource_metrics")?
        .iter()
        .map(|rm| {
            let rm = object(rm, "`resourceMetrics` items")?;
            Ok(ResourceMetrics {
                resource: resource_json(rm)?,
                scope_metrics: list(rm, "scopeMetrics", "scope_metrics")?
                    .iter()
                    .map(|sm| {
                        let sm = object(sm, "`scopeMetrics` items")?;
                        Ok(ScopeMetrics {
                            scope: scope_json(sm)?,
                            metrics: list(sm, "metrics", "metrics")?
                                .iter()
                                .map(metric_json)
                                .collect::<JsonResult<_>>()?,
                        })
                    })
                    .collect::<JsonResult<_>>()?,
            })
        })
        .collect::<JsonResult<_>>()?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

fn span_json(s: &Value) -> JsonResult<Span> {
    let s = object(s, "a span")?;
    let status = field(s, "status", "status")
        .map(|st| {
            let st = object(st, "`status`")?;
            Ok::<_, String>(Status {
                message: string(st, "message", "message")?,
                code: enumeration(
                    st,
                    "code",
                    "code",
                    &[
                        ("STATUS_CODE_UNSET", 0),
                        ("STATUS_CODE_OK", 1),
                        ("STATUS_CODE_ERROR", 2),
                    ],
                )?,
            })
        })
        .transpose()?;
    let events = list(s, "events", "events")?
        .iter()
        .map(|e| {
            let e = object(e, "a span event")?;
            Ok(SpanEvent {
                time_unix_nano: uint64(e, "timeUnixNano", "time_unix_nano")?,
                name: string(e, "name", "name")?,
                attributes: attributes_json(e)?,
            })
        })
        .collect::<JsonResult<_>>()?;
    Ok(Span {
        trace_id: string(s, "traceId", "trace_id")?.into_bytes(),
        events,
        name: string(s, "name", "name")?,
        kind: enumeration(
            s,
            "kind",
            "kind",
            &[
                ("SPAN_KIND_UNSPECIFIED", 0),
                ("SPAN_KIND_INTERNAL", 1),
                ("SPAN_KIND_SERVER", 2),
                ("SPAN_KIND_CLIENT", 3),
                ("SPAN_KIND_PRODUCER", 4),
                ("SPAN_KIND_CONSUMER", 5),
            ],
        )?,
        start_time_unix_nano: uint64(s, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: uint64(s, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: attributes_json(s)?,
        status,
    })
}

/// Reads an OTLP/JSON `ExportTraceServiceRequest`.
pub fn traces_from_json(v: &Value) -> JsonResult<ExportTraceServiceRequest> {
    let v = object(v, "the request")?;
    let resource_spans = list(v, "resourceSpans", "resource_spans")?
        .iter()
        .map(|rs| {
            let rs = object(rs, "`resourceSpans` items")?;
            Ok(ResourceSpans {
                resource: resource_json(rs)?,
                scope_spans: list(rs, "scopeSpans", "scope_spans")?
                    .iter()
                    .map(|ss| {
                        let ss = object(ss, "`scopeSpans` items")?;
                        Ok(ScopeSpans {
                            scope: scope_json(ss)?,
                            spans: list(ss, "spans", "spans")?
                                .iter()
                                .map(span_json)
                                .collect::<JsonResult<_>>()?,
                        })
                    })
                    .collect::<JsonResult<_>>()?,
            })
        })
        .collect::<JsonResult<_>>()?;
    Ok(ExportTraceServiceRequest { resource_spans })
}

// ---------------------------------------------------------------------------------------------
// Attributes to cell keys.

/// Semantic conventions ≥ 1.20: seconds.
pub const REQUEST_DURATION: &str = "http.server.request.duration";
/// Older conventions: milliseconds.
pub const LEGACY_DURATION: &str = "http.server.duration";

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str(attrs: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match attr(attrs, k)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    })
}

fn attr_status(attrs: &[KeyValue], keys: &[&str]) -> Option<u16> {
    keys.iter().find_map(|k| match attr(attrs, k)? {
        any_value::Value::IntValue(i) => u16::try_from(*i).ok(),
        any_value::Value::StringValue(s) => s.parse().ok(),
        any_value::Value::DoubleValue(d) => Some(*d as u16),
        any_value::Value::BoolValue(_) => None,
    })
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_control())
}

fn service_of(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| attr_str(&r.attributes, &["service.name"]))
        .filter(|s| printable(s, 100))
        .unwrap_or_else(|| DEFAULT_SERVICE.to_owned())
}

/// Why a data point or span was not recorded.
fn key_of(
    service: &str,
    attrs: &[KeyValue],
    error: bool,
    at: DateTime<Utc>,
) -> Result<CellKey, &'static str> {
    let method = attr_str(attrs, &["http.request.method", "http.method"])
        .ok_or("no http.request.method")?
        .to_ascii_uppercase();
    // Semantic conventions report unknown methods as `_OTHER`.
    let method = if method == "_OTHER" {
        "OTHER".to_owned()
    } else {
        method
    };
    if !(method.len() <= 16
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err("http.request.method is not an HTTP method");
    }
    // Without a route template (a 404, say) the request counts under `other`, never under its
    // raw path.
    let route = attr_str(attrs, &["http.route"]).unwrap_or_else(|| OTHER_ROUTE.to_owned());
    if !printable(&route, 512) {
        return Err("http.route is not 1 to 512 printable characters");
    }
    let status = match attr_status(attrs, &["http.response.status_code", "http.status_code"]) {
        Some(s) => s,
        None if error || attr(attrs, "error.type").is_some() => 500,
        None => 200,
    };
    if !(100..=599).contains(&status) {
        return Err("status is not between 100 and 599");
    }
    Ok(CellKey {
        minute: at.timestamp().div_euclid(60),
        service: service.to_owned(),
        method,
        route,
        status,
    })
}

/// The instant of a Unix-nanosecond timestamp, now for 0; `None` when over 30 days old or in
/// the future (the same window as request records).
fn instant(nanos: u64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if nanos == 0 {
        return Some(now);
    }
    let at = Utc.timestamp_nanos(i64::try_from(nanos).ok()?);
    (at >= now - Duration::days(30) && at <= now + Duration::minutes(5)).then_some(at)
}

/// Milliseconds per unit of a duration metric.
fn ms_per_unit(metric: &Metric) -> Option<f64> {
    match metric.unit.as_str() {
        "s" => Some(1000.0),
        "ms" => Some(1.0),
        "us" | "µs" => Some(1e-3),
        "ns" => Some(1e-6),
        "" if metric.name == REQUEST_DURATION => Some(1000.0),
        "" if metric.name == LEGACY_DURATION => Some(1.0),
        _ => None,
    }
}

/// Adds a histogram's buckets (counts already deltas) to `sketch`; values in ms.
fn add_buckets(sketch: &mut DDSketch, p: &HistogramDataPoint, counts: &[u64], scale: f64) {
    let clamp = |x: f64| {
        let mut x = x;
        if let Some(min) = p.min.filter(|m| m.is_finite()) {
            x = x.max(min);
        }
        if let Some(max) = p.max.filter(|m| m.is_finite()) {
            x = x.min(max);
        }
        x.max(0.0)
    };
    let bounds = &p.explicit_bounds;
    if bounds.is_empty() {
        // One bucket: all that is known is the average.
        let n = counts.first().copied().unwrap_or(0);
        if let (Some(sum), true) = (p.sum, p.count > 0) {
            sketch.add_n(clamp(sum / p.count as f64) * scale, n);
        }
        return;
    }
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let value = if i == 0 {
            p.min
                .filter(|m| m.is_finite() && *m <= bounds[0])
                .unwrap_or(bounds[0] / 2.0)
        } else if i == bounds.len() {
            p.max
                .filter(|m| m.is_finite() && *m > bounds[i - 1])
                .unwrap_or(bounds[i - 1])
        } else {
            (bounds[i - 1] + bounds[i]) / 2.0
        };
        sketch.add_n(clamp(value) * scale, c);
    }
}

fn valid_histogram(p: &HistogramDataPoint) -> bool {
    // No buckets at all is allowed: only `count` (and `sum`) are known.
    (p.bucket_counts.is_empty() && p.explicit_bounds.is_empty())
        || (p.bucket_counts.len() == p.explicit_bounds.len() + 1
            && p.explicit_bounds.iter().all(|b| b.is_finite())
            && p.explicit_bounds.windows(2).all(|w| w[0] < w[1]))
}

/// The bucket counts, or `[count]` for a histogram without buckets.
fn bucket_counts(p: &HistogramDataPoint) -> Vec<u64> {
    if p.bucket_counts.is_empty() {
        vec![p.count]
    } else {
        p.bucket_counts.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Cumulative to delta.

/// Series whose previous cumulative counts are kept; beyond this the least recently seen is
/// forgotten (and its next point counts in full).
pub const MAX_SERIES: usize = 20_000;

#[derive(Clone, Debug)]
struct Previous {
    start: u64,
    bounds: Vec<u64>,
    counts: Vec<u64>,
    seen: Instant,
}

/// The previous counts of cumulative histogram series, to record only their increase.
#[derive(Default)]
pub struct OtlpState {
    series: Mutex<HashMap<String, Previous>>,
}

/// Cells ready to commit, and the cumulative counts to remember once they are committed.
pub struct Converted {
    pub cells: Vec<RequestCell>,
    /// Data points or spans that were not recorded (bad attributes, timestamps or buckets).
    pub skipped: usize,
    /// Server requests that were served flag variants (traces only), for the per-variant
    /// cells.
    pub served: Vec<Served>,
    pending: Vec<(String, Previous)>,
}

fn series_id(
    resource: Option<&Resource>,
    scope: Option<&InstrumentationScope>,
    metric: &str,
    attrs: &[KeyValue],
) -> String {
    fn render(attrs: &[KeyValue]) -> Vec<String> {
        let mut v: Vec<String> = attrs
            .iter()
            .map(|kv| {
                format!(
                    "{:?}={:?}",
                    kv.key,
                    kv.value.as_ref().and_then(|v| v.value.as_ref())
                )
            })
            .collect();
        v.sort();
        v
    }
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        resource.map(|r| render(&r.attributes)).unwrap_or_default(),
        scope.map(|s| s.name.as_str()).unwrap_or_default(),
        metric,
        render(attrs),
    )
}

impl OtlpState {
    /// Cells from the request duration histograms of `req`. Nothing is remembered until
    /// [`commit`](Self::commit) is called with the result (after the cells are stored), so a
    /// rejected export retried by the client is not lost.
    pub fn metrics(&self, req: &ExportMetricsServiceRequest, now: DateTime<Utc>) -> Converted {
        let mut cells = std::collections::BTreeMap::<CellKey, DDSketch>::new();
        let mut skipped = 0;
        let mut pending = Vec::new();
        let Ok(series) = self.series.lock() else {
            return Converted {
                cells: Vec::new(),
                skipped: 0,
                served: Vec::new(),
                pending,
            };
        };
        for rm in &req.resource_metrics {
            let service = service_of(rm.resource.as_ref());
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    if m.name != REQUEST_DURATION && m.name != LEGACY_DURATION {
                        continue;
                    }
                    let Some(metric::Data::Histogram(h)) = &m.data else {
                        continue;
                    };
                    let Some(scale) = ms_per_unit(m) else {
                        skipped += h.data_points.len();
                        continue;
                    };
                    let cumulative =
                        h.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                    for p in &h.data_points {
                        let key = instant(p.time_unix_nano, now)
                            .ok_or("timestamp out of range")
                            .and_then(|at| key_of(&service, &p.attributes, false, at));
                        let (Ok(key), true) = (key, valid_histogram(p)) else {
                            skipped += 1;
                            continue;
                        };
                        let current = bucket_counts(p);
                        let counts = if cumulative {
                            let id = series_id(
                                rm.resource.as_ref(),
                                sm.scope.as_ref(),
                                &m.name,
                                &p.attributes,
                            );
                            let bounds: Vec<u64> =
                                p.explicit_bounds.iter().map(|b| b.to_bits()).collect();
                            let delta = match series.get(&id) {
                                Some(prev)
                                    if prev.start == p.start_time_unix_nano
                                        && prev.bounds == bounds
                                        && prev.counts.len() == current.len()
                                        && prev
                                            .counts
                                            .iter()
                                            .zip(&current)
                                            .all(|(a, b)| a <= b) =>
                                {
                                    prev.counts
                                        .iter()
                                        .zip(&current)
                                        .map(|(a, b)| b - a)
                                        .collect()
                                }
                                // First point, or a reset: counts since the (new) start.
                                _ => current.clone(),
                            };
                            pending.push((
                                id,
                                Previous {
                                    start: p.start_time_unix_nano,
                                    bounds,
                                    counts: current,
                                    seen: Instant::now(),
                                },
                            ));
                            delta
                        } else {
                            current
                        };
                        let mut sketch = DDSketch::default();
                        add_buckets(&mut sketch, p, &counts, scale);
                        if sketch.is_empty() {
                            continue;
                        }
                        match cells.get_mut(&key) {
                            Some(s) => {
                                if s.merge(&sketch).is_err() {
                                    skipped += 1;
                                }
                            }
                            None => {
                                cells.insert(key, sketch);
                            }
                        }
                    }
                }
            }
        }
        Converted {
            cells: cells.into_iter().collect(),
            skipped,
            served: Vec::new(),
            pending,
        }
    }

    /// Remembers the cumulative counts of a conversion whose cells were stored.
    pub fn commit(&self, converted: Converted) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        for (id, prev) in converted.pending {
            if series.len() >= MAX_SERIES && !series.contains_key(&id) {
                let oldest = series
                    .iter()
                    .min_by_key(|(_, p)| p.seen)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    series.remove(&k);
                }
            }
            series.insert(id, prev);
        }
    }

    /// Series remembered.
    pub fn len(&self) -> usize {
        self.series.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The flag evaluations a span records, OpenTelemetry's way: `feature_flag.key` with
/// `feature_flag.result.variant` (or the older `feature_flag.variant`) on the span itself or on
/// its `feature_flag` / `feature_flag.evaluation` events.
fn flag_evaluations(span: &Span) -> impl Iterator<Item = (String, String)> + '_ {
    let read = |attrs: &[KeyValue]| {
        Some((
            attr_str(attrs, &["feature_flag.key"])?,
            attr_str(
                attrs,
                &["feature_flag.result.variant", "feature_flag.variant"],
            )?,
        ))
    };
    read(&span.attributes).into_iter().chain(
        span.events
            .iter()
            .filter(|e| e.name == "feature_flag.evaluation" || e.name == "feature_flag")
            .filter_map(move |e| read(&e.attributes)),
    )
}

/// The flag evaluations of each trace of an export: evaluations recorded on any span of a
/// trace count for that trace's server spans.
fn flags_by_trace(req: &ExportTraceServiceRequest) -> HashMap<&[u8], Vec<(String, String)>> {
    let mut by_trace: HashMap<&[u8], Vec<(String, String)>> = HashMap::new();
    for s in req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
    {
        for f in flag_evaluations(s) {
            let entry = by_trace.entry(s.trace_id.as_slice()).or_default();
            if entry.len() < super::variants::MAX_VARIANTS_PER_REQUEST && !entry.contains(&f) {
                entry.push(f);
            }
        }
    }
    by_trace
}

/// A server span that was served flag variants (see [`traces`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    pub minute: i64,
    pub status: u16,
    pub duration_ms: f64,
    pub flags: Vec<(String, String)>,
}

/// Cells from the server spans of `req`: one request per span of kind SERVER, and those of
/// them whose trace evaluated flags as [`Served`].
pub fn traces(req: &ExportTraceServiceRequest, now: DateTime<Utc>) -> Converted {
    let mut cells = std::collections::BTreeMap::<CellKey, DDSketch>::new();
    let mut skipped = 0;
    let by_trace = flags_by_trace(req);
    let mut served = Vec::new();
    for rs in &req.resource_spans {
        let service = service_of(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                if s.kind != SpanKind::Server as i32 {
                    continue;
                }
                let error = s
                    .status
                    .as_ref()
                    .is_some_and(|st| st.code == StatusCode::Error as i32);
                let duration_ms =
                    s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) as f64 / 1e6;
                let key = instant(s.end_time_unix_nano, now)
                    .filter(|_| s.end_time_unix_nano >= s.start_time_unix_nano)
                    .filter(|_| duration_ms <= 86_400_000.0)
                    .ok_or("bad span times")
                    .and_then(|at| key_of(&service, &s.attributes, error, at));
                let Ok(key) = key else {
                    skipped += 1;
                    continue;
                };
                if let Some(flags) = by_trace.get(s.trace_id.as_slice()) {
                    served.push(Served {
                        minute: key.minute,
                        status: key.status,
                        duration_ms,
                        flags: flags.clone(),
                    });
                }
                cells.entry(key).or_default().add(duration_ms);
            }
        }
    }
    Converted {
        cells: cells.into_iter().collect(),
        skipped,
        served,
        pending: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost::Message;
    use serde_json::json;

    use super::*;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    /// Flag evaluations on a child span's `feature_flag.evaluation` event (or on the server
    /// span itself) label the trace's server span; other traces and client spans are not.
    #[test]
    fn server_spans_carry_the_flag_values_their_trace_evaluated() {
        let now = Utc::now();
        let end = now.timestamp_nanos_opt().unwrap() as u64;
        let s = |v: &str| any_value::Value::StringValue(v.into());
        let http = |status: i64| {
            vec![
                kv("http.request.method", s("GET")),
                kv("http.route", s("/search")),
                kv(
                    "http.response.status_code",
                    any_value::Value::IntValue(status),
                ),
            ]
        };
        let span = |trace: &[u8], kind: SpanKind, attributes, events| Span {
            trace_id: trace.to_vec(),
            name: "x".into(),
            kind: kind as i32,
            start_time_unix_nano: end - 20_000_000,
            end_time_unix_nano: end,
            attributes,
            events,
            status: None,
        };
        let evaluation = SpanEvent {
            time_unix_nano: end,
            name: "feature_flag.evaluation".into(),
            attributes: vec![
                kv("feature_flag.key", s("new-search")),
                kv("feature_flag.result.variant", s("on")),
            ],
        };
        let mut on_span = http(200);
        on_span.push(kv("feature_flag.key", s("checkout")));
        on_span.push(kv("feature_flag.variant", s("v2")));
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![
                        span(b"t1", SpanKind::Server, http(503), vec![]),
                        span(b"t1", SpanKind::Internal, vec![], vec![evaluation.clone()]),
                        span(b"t2", SpanKind::Server, on_span, vec![]),
                        span(b"t3", SpanKind::Server, http(200), vec![]),
                        span(
                            b"t3",
                            SpanKind::Client,
                            vec![],
                            vec![SpanEvent {
                                name: "log".into(),
                                ..evaluation
                            }],
                        ),
                    ],
                }],
            }],
        };
        let converted = traces(&req, now);
        assert_eq!(
            converted.cells.iter().map(|(_, s)| s.count()).sum::<u64>(),
            3
        );
        let served: Vec<(u16, Vec<(String, String)>)> = converted
            .served
            .iter()
            .map(|r| (r.status, r.flags.clone()))
            .collect();
        assert_eq!(
            served,
            [
                (503, vec![("new-search".to_owned(), "on".to_owned())]),
                (200, vec![("checkout".to_owned(), "v2".to_owned())]),
            ]
        );
        assert!(
            converted
                .served
                .iter()
                .all(|r| (r.duration_ms - 20.0).abs() < 1e-9)
        );
    }

    fn request(counts: Vec<u64>, start: u64, now: DateTime<Utc>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("shop".into()),
                    )],
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: None,
                    metrics: vec![Metric {
                        name: REQUEST_DURATION.into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![
                                    kv(
                                        "http.request.method",
                                        any_value::Value::StringValue("get".into()),
                                    ),
                                    kv("http.route", any_value::Value::StringValue("/a".into())),
                                    kv(
                                        "http.response.status_code",
                                        any_value::Value::IntValue(200),
                                    ),
                                ],
                                start_time_unix_nano: start,
                                time_unix_nano: now.timestamp_nanos_opt().unwrap() as u64,
                                count: counts.iter().sum(),
                                sum: None,
                                bucket_counts: counts,
                                explicit_bounds: vec![0.01, 0.1, 1.0],
                                min: None,
                                max: None,
                            }],
                        })),
                    }],
                }],
            }],
        }
    }

    #[test]
    fn cumulative_points_become_deltas() {
        let now = Utc::now();
        let state = OtlpState::default();
        let total = |c: &Converted| c.cells.iter().map(|(_, s)| s.count()).sum::<u64>();
        let first = state.metrics(&request(vec![1, 2, 0, 0], 7, now), now);
        assert_eq!(total(&first), 3);
        // Not committed: the same point counts in full again.
        assert_eq!(
            total(&state.metrics(&request(vec![1, 2, 0, 0], 7, now), now)),
            3
        );
        state.commit(first);
        let second = state.metrics(&request(vec![1, 5, 1, 0], 7, now), now);
        assert_eq!(total(&second), 4);
        let (key, sketch) = &second.cells[0];
        assert_eq!(
            (key.method.as_str(), key.route.as_str(), key.status),
            ("GET", "/a", 200)
        );
        assert!(
            (sketch.quantile(0.0).unwrap() - 55.0).abs() < 1.0,
            "midpoint of 10–100 ms"
        );
        state.commit(second);
        // A new start time is a reset.
        assert_eq!(
            total(&state.metrics(&request(vec![0, 1, 0, 0], 8, now), now)),
            1
        );
        // A decrease too.
        assert_eq!(
            total(&state.metrics(&request(vec![0, 1, 0, 0], 7, now), now)),
            1
        );
    }

    #[test]
    fn histograms_without_buckets_record_their_average() {
        let now = Utc::now();
        let state = OtlpState::default();
        let mut req = request(vec![], 7, now);
        let Some(metric::Data::Histogram(h)) =
            &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            unreachable!()
        };
        let p = &mut h.data_points[0];
        (p.explicit_bounds, p.count, p.sum) = (vec![], 4, Some(0.2));
        let first = state.metrics(&req, now);
        let (_, sketch) = &first.cells[0];
        assert_eq!(sketch.count(), 4);
        assert!((sketch.quantile(0.5).unwrap() - 50.0).abs() < 1.0);
        state.commit(first);
        let p = match &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
            Some(metric::Data::Histogram(h)) => &mut h.data_points[0],
            _ => unreachable!(),
        };
        (p.count, p.sum) = (6, Some(0.3));
        let second = state.metrics(&req, now);
        assert_eq!(second.cells[0].1.count(), 2, "the increase only");
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn protobuf_and_json_agree() {
        let now = Utc::now();
        let req = request(vec![1, 2, 3, 4], 7, now);
        let bytes = req.encode_to_vec();
        assert_eq!(decode::<ExportMetricsServiceRequest>(&bytes).unwrap(), req);
        assert!(decode::<ExportMetricsServiceRequest>(&bytes[..bytes.len() - 5]).is_err());
        let t = now.timestamp_nanos_opt().unwrap().to_string();
        let json = json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeMetrics": [{"metrics": [{"name": REQUEST_DURATION, "unit": "s", "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [{"attributes": [
                        {"key": "http.request.method", "value": {"stringValue": "get"}},
                        {"key": "http.route", "value": {"stringValue": "/a"}},
                        {"key": "http.response.status_code", "value": {"intValue": "200"}}],
                    "startTimeUnixNano": "7", "timeUnixNano": t, "count": "10",
                    "bucketCounts": ["1", "2", 3, "4"], "explicitBounds": [0.01, 0.1, 1.0]}]}}]}]}]});
        assert_eq!(metrics_from_json(&json).unwrap(), req);
        assert!(metrics_from_json(&json!({"resourceMetrics": 3})).is_err());
    }
}
