"""The real OpenTelemetry Python SDK exporting to Liftoff over OTLP/HTTP (protobuf).

HTTP server duration histograms (`http.server.request.duration`, seconds, as the semantic
conventions and their instrumentations record them) go to /v1/metrics with an `ingest` key;
the counts, errors and latencies come back through /api/monitoring/performance. Cumulative
temporality (the SDK's default) must not count a request twice when it is exported again.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

# The bucket boundaries the HTTP semantic conventions advise (seconds).
BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
HOUR = 3_600_000  # ms: no periodic export during a test, only the explicit flushes


def meter_provider(url: str, token: str, service: str, **exporter_args) -> MeterProvider:
    exporter = OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **exporter_args,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
    return MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])


def duration_histogram(provider: MeterProvider):
    return provider.get_meter("liftoff-test").create_histogram(
        "http.server.request.duration",
        unit="s",
        description="Duration of HTTP server requests.",
        explicit_bucket_boundaries_advisory=BOUNDARIES,
    )


def record(hist, method: str, route: str, status: int, seconds: float, n: int) -> None:
    attrs = {
        "http.request.method": method,
        "http.route": route,
        "http.response.status_code": status,
        "url.scheme": "http",
    }
    for _ in range(n):
        hist.record(seconds, attrs)


def performance(liftoff, service: str) -> dict:
    r = liftoff.admin("GET", f"/api/monitoring/performance?window=1h&service={service}", expect=200)
    return r.json()


def test_cumulative_histograms_come_back_per_endpoint(liftoff, ingest_token):
    provider = meter_provider(liftoff.url, ingest_token, "py-otel")
    try:
        hist = duration_histogram(provider)
        record(hist, "GET", "/api/items/{id}", 200, 0.02, 40)
        record(hist, "GET", "/api/items/{id}", 404, 0.004, 3)
        record(hist, "GET", "/api/items/{id}", 500, 0.3, 5)
        record(hist, "POST", "/api/checkout", 201, 0.15, 10)
        record(hist, "POST", "/api/checkout", 503, 1.2, 2)
        assert provider.force_flush(10_000)

        # More requests, then a second export of the same cumulative series: only the new ten
        # may be added.
        record(hist, "GET", "/api/items/{id}", 200, 0.02, 10)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    perf = performance(liftoff, "py-otel")
    assert set(perf) == {"GET:/api/items/{id}", "POST:/api/checkout"}, perf

    items = perf["GET:/api/items/{id}"]
    assert items["request_count"] == 58, items
    assert items["error_count"] == 5, items
    assert items["status_codes"] == {"200": 50, "404": 3, "500": 5}, items
    # 50 of 58 requests took 20 ms, in the 10-25 ms bucket.
    assert 10 <= items["duration_ms"]["p50"] <= 25.5, items

    checkout = perf["POST:/api/checkout"]
    assert checkout["request_count"] == 12, checkout
    assert checkout["error_count"] == 2, checkout
    assert checkout["status_codes"] == {"201": 10, "503": 2}, checkout
    # 150 ms is in the 100-250 ms bucket.
    assert 100 <= checkout["duration_ms"]["p50"] <= 252.5, checkout


def test_delta_temporality_and_gzip(liftoff, ingest_token):
    provider = meter_provider(
        liftoff.url,
        ingest_token,
        "py-otel-delta",
        compression=Compression.Gzip,
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
    )
    try:
        hist = duration_histogram(provider)
        for _ in range(3):
            record(hist, "GET", "/health", 200, 0.003, 7)
            assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    perf = performance(liftoff, "py-otel-delta")
    health = perf["GET:/health"]
    assert health["request_count"] == 21, perf
    assert health["error_count"] == 0, perf
    assert health["duration_ms"]["p50"] == pytest.approx(3.0, rel=0.02), perf


def test_server_spans_become_requests(liftoff, ingest_token):
    exporter = OTLPSpanExporter(
        endpoint=f"{liftoff.url}/v1/traces",
        headers={"Authorization": f"Bearer {ingest_token}"},
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "py-otel-traces"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("liftoff-test")
    try:
        for status in (200, 200, 201):
            with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as span:
                span.set_attribute("http.request.method", "POST")
                span.set_attribute("http.route", "/orders")
                span.set_attribute("http.response.status_code", status)
                # A client call inside the request is not a request to this service.
                with tracer.start_as_current_span("GET payments", kind=SpanKind.CLIENT) as client:
                    client.set_attribute("http.request.method", "GET")
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "POST")
            span.set_attribute("http.route", "/orders")
            span.set_status(Status(StatusCode.ERROR, "boom"))
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    perf = performance(liftoff, "py-otel-traces")
    assert set(perf) == {"POST:/orders"}, perf
    orders = perf["POST:/orders"]
    assert orders["request_count"] == 4, orders
    assert orders["status_codes"] == {"200": 2, "201": 1, "500": 1}, orders
    assert orders["error_count"] == 1, orders
