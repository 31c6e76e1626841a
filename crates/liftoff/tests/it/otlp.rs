//! OTLP/HTTP ingest: `/v1/metrics` histograms (cumulative and delta, protobuf, JSON, gzip) and
//! `/v1/traces` server spans, and what bad bodies get.

use std::io::Write as _;

use chrono::Utc;
use liftoff_core::monitoring::otlp::{
    AggregationTemporality, AnyValue, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Histogram, HistogramDataPoint, KeyValue, Metric, Resource, ResourceMetrics, ResourceSpans,
    ScopeMetrics, ScopeSpans, Span, SpanKind, Status, StatusCode, any_value, metric,
};
use prost::Message;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, problem, spawn};

const PROTOBUF: &str = "application/x-protobuf";

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn i(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
    }
}

fn now_nanos() -> u64 {
    Utc::now().timestamp_nanos_opt().unwrap() as u64
}

/// Bounds in seconds: 5, 10, 25, 50, 100, 250 ms (and the overflow bucket).
const BOUNDS: [f64; 6] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

fn point(route: &str, status: i64, start: u64, counts: &[u64]) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![
            s("http.request.method", "GET"),
            s("http.route", route),
            i("http.response.status_code", status),
            s("url.scheme", "https"),
        ],
        start_time_unix_nano: start,
        time_unix_nano: now_nanos(),
        count: counts.iter().sum(),
        sum: None,
        bucket_counts: counts.to_vec(),
        explicit_bounds: BOUNDS.to_vec(),
        min: None,
        max: None,
    }
}

fn metrics(
    service: &str,
    temporality: AggregationTemporality,
    points: Vec<HistogramDataPoint>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![s("service.name", service)],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![
                    Metric {
                        name: "http.server.request.duration".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: points,
                            aggregation_temporality: temporality as i32,
                        })),
                    },
                    // Not a request duration: ignored.
                    Metric {
                        name: "http.server.active_requests".into(),
                        unit: "{request}".into(),
                        data: None,
                    },
                ],
            }],
        }],
    }
}

async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.at(path))
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    req.body(body).send().await.unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn performance(app: &TestApp, service: &str) -> Value {
    let res = app
        .get(
            &format!("/api/monitoring/performance?window=1h&service={service}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn cumulative_histograms_count_each_request_once() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let start = now_nanos() - 60_000_000_000;
    let first = metrics(
        "otlp-cumulative",
        AggregationTemporality::Cumulative,
        vec![
            point("/items/{id}", 200, start, &[0, 2, 3, 0, 0, 0, 0]),
            point("/items/{id}", 503, start, &[0, 0, 0, 0, 0, 1, 0]),
        ],
    );
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        PROTOBUF,
        false,
        first.encode_to_vec(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], PROTOBUF);
    assert!(
        res.bytes().await.unwrap().is_empty(),
        "empty ExportMetricsServiceResponse"
    );
    // The same series later: 2 + 8 + 1 in total, so 6 new requests with status 200.
    let second = metrics(
        "otlp-cumulative",
        AggregationTemporality::Cumulative,
        vec![
            point("/items/{id}", 200, start, &[0, 2, 8, 1, 0, 0, 0]),
            point("/items/{id}", 503, start, &[0, 0, 0, 0, 0, 1, 0]),
        ],
    );
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        PROTOBUF,
        false,
        second.encode_to_vec(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let perf = performance(&app, "otlp-cumulative").await;
    let e = &perf["GET:/items/{id}"];
    assert_eq!(e["request_count"], 12, "{perf}");
    assert_eq!(e["error_count"], 1);
    assert_eq!(e["status_codes"], json!({"200": 11, "503": 1}));
    let p50 = e["duration_ms"]["p50"].as_f64().unwrap();
    assert!(
        (10.0..=25.0 * 1.01).contains(&p50),
        "p50 {p50} is in the 10–25 ms bucket"
    );
    assert_eq!(perf.as_object().unwrap().len(), 1, "{perf}");
}

#[tokio::test]
async fn json_and_gzip_bodies_are_accepted() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let t = now_nanos().to_string();
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-json"}}]},
        "scopeMetrics": [{"scope": {"name": "opentelemetry.instrumentation.flask"}, "metrics": [{
            "name": "http.server.duration", "unit": "ms",
            "histogram": {"aggregationTemporality": 1, "dataPoints": [{
                "attributes": [
                    {"key": "http.method", "value": {"stringValue": "POST"}},
                    {"key": "http.route", "value": {"stringValue": "/checkout"}},
                    {"key": "http.status_code", "value": {"intValue": "201"}}],
                "startTimeUnixNano": t, "timeUnixNano": t, "count": "4", "sum": 400.0,
                "bucketCounts": ["0", "0", "4", "0"], "explicitBounds": [10, 50, 200],
                "min": 80.0, "max": 120.0}]}}]}]}]});
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        "application/json",
        false,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
    let perf = performance(&app, "otlp-json").await;
    let e = &perf["POST:/checkout"];
    assert_eq!(e["request_count"], 4, "{perf}");
    let p50 = e["duration_ms"]["p50"].as_f64().unwrap();
    assert!((80.0..=121.0).contains(&p50), "p50 {p50} within [min, max]");

    let delta = metrics(
        "otlp-gzip",
        AggregationTemporality::Delta,
        vec![point("/gz", 200, 0, &[5, 0, 0, 0, 0, 0, 0])],
    );
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        PROTOBUF,
        true,
        gzip(&delta.encode_to_vec()),
    )
    .await;
    assert_eq!(res.status(), 200);
    let perf = performance(&app, "otlp-gzip").await;
    assert_eq!(perf["GET:/gz"]["request_count"], 5, "{perf}");
    let p50 = perf["GET:/gz"]["duration_ms"]["p50"].as_f64().unwrap();
    assert!((2.4..=2.6).contains(&p50), "half the first bound: {p50}");
}

#[tokio::test]
async fn bad_bodies_are_refused() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let (_, read) = app.key("read").await;
    let valid = metrics(
        "otlp-bad",
        AggregationTemporality::Delta,
        vec![point("/x", 200, 0, &[1, 0, 0, 0, 0, 0, 0])],
    )
    .encode_to_vec();

    let res = post(&app, "/v1/metrics", None, PROTOBUF, false, valid.clone()).await;
    problem(res, 401).await;
    let res = post(&app, "/v1/traces", None, PROTOBUF, false, Vec::new()).await;
    problem(res, 401).await;
    let res = post(
        &app,
        "/v1/metrics",
        Some(&read),
        PROTOBUF,
        false,
        valid.clone(),
    )
    .await;
    problem(res, 403).await;

    let truncated = valid[..valid.len() - 7].to_vec();
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        PROTOBUF,
        false,
        truncated,
    )
    .await;
    problem(res, 400).await;
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        "application/json",
        false,
        b"{\"resourceMetrics\": 1}".to_vec(),
    )
    .await;
    problem(res, 400).await;
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        "text/plain",
        false,
        valid.clone(),
    )
    .await;
    problem(res, 415).await;
    let res = post(
        &app,
        "/v1/metrics",
        Some(&token),
        PROTOBUF,
        true,
        b"not gzip".to_vec(),
    )
    .await;
    problem(res, 400).await;

    // 50 MiB of zeros compress to about 50 KiB: under the body limit, over the 20 MiB cap.
    let bomb = gzip(&vec![0u8; 50 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let res = post(&app, "/v1/metrics", Some(&token), PROTOBUF, true, bomb).await;
    problem(res, 413).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);

    // Nothing was recorded by any of these.
    let perf = performance(&app, "otlp-bad").await;
    assert_eq!(perf, json!({}));
}

#[tokio::test]
async fn server_spans_become_requests() {
    let app = spawn().await;
    let (_, token) = app.key("ingest").await;
    let end = now_nanos();
    let span = |kind: SpanKind, attrs: Vec<KeyValue>, ms: u64, error: bool| Span {
        trace_id: Vec::new(),
        events: Vec::new(),
        name: "GET /orders/{id}".into(),
        kind: kind as i32,
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes: attrs,
        status: Some(Status {
            message: String::new(),
            code: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            } as i32,
        }),
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", "otlp-traces")],
            }),
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![
                    span(
                        SpanKind::Server,
                        vec![
                            s("http.request.method", "GET"),
                            s("http.route", "/orders/{id}"),
                            i("http.response.status_code", 200),
                        ],
                        40,
                        false,
                    ),
                    // No HTTP status, but failed: a 500.
                    span(
                        SpanKind::Server,
                        vec![
                            s("http.request.method", "GET"),
                            s("http.route", "/orders/{id}"),
                        ],
                        90,
                        true,
                    ),
                    // A client span is not a request to this service.
                    span(
                        SpanKind::Client,
                        vec![
                            s("http.request.method", "GET"),
                            i("http.response.status_code", 200),
                        ],
                        10,
                        false,
                    ),
                ],
            }],
        }],
    };
    let res = post(
        &app,
        "/v1/traces",
        Some(&token),
        PROTOBUF,
        false,
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let perf = performance(&app, "otlp-traces").await;
    assert_eq!(perf.as_object().unwrap().len(), 1, "{perf}");
    let e = &perf["GET:/orders/{id}"];
    assert_eq!(e["request_count"], 2);
    assert_eq!(e["status_codes"], json!({"200": 1, "500": 1}));
    let max = e["duration_ms"]["max"].as_f64().unwrap();
    assert!((max - 90.0).abs() < 1.0, "{max}");

    // OTLP/JSON spans: enum names and string timestamps.
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-traces-json"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "POST /pay", "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": (end - 5_000_000).to_string(), "endTimeUnixNano": end.to_string(),
            "attributes": [{"key": "http.request.method", "value": {"stringValue": "POST"}},
                           {"key": "http.route", "value": {"stringValue": "/pay"}},
                           {"key": "http.response.status_code", "value": {"intValue": 402}}]}]}]}]});
    let res = post(
        &app,
        "/v1/traces",
        Some(&token),
        "application/json",
        false,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
    let perf = performance(&app, "otlp-traces-json").await;
    assert_eq!(
        perf["POST:/pay"]["status_codes"],
        json!({"402": 1}),
        "{perf}"
    );
}
