"""Run by test_sdk_range.py under the oldest supported OpenTelemetry SDK: the parts that read
non-public SDK attributes (views on the built-ins, user readers and exporters) work there."""

from __future__ import annotations

import io
import time

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    InMemoryMetricReader,
)
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View

from fluxstack_otel import configure_monitoring

delta = AggregationTemporality.DELTA
cumulative = InMemoryMetricReader()
deltas = InMemoryMetricReader(preferred_temporality={Counter: delta, Histogram: delta})
out = io.StringIO()
m = configure_monitoring(
    {"set_global": False, "naming": "semconv", "collect_interval": 0.1},
    views=[
        View(instrument_name="http.server.request.duration",
             aggregation=ExplicitBucketHistogramAggregation([0.1, 1.0])),
        View(instrument_name="http.server.request.body.size", aggregation=DropAggregation()),
    ],
    metric_readers=[cumulative, deltas],
    metric_exporters=[ConsoleMetricExporter(out=out)],
)  # fmt: skip
recorder = m._p.recorder
assert recorder is not None
for _ in range(3):
    recorder.record("GET", "/a", 200, None, 0.05, 1, 2, time.perf_counter())
m.counter("orders").add(2)
text = m.render_prometheus().decode()
bucket = 'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a"'
assert f'{bucket},http_response_status_code="200",le="0.1"}} 3' in text, text
assert "http_server_request_body_size" not in text, text


def points(reader: InMemoryMetricReader, name: str) -> list[float]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for x in sm.metrics
        if x.name == name
        for p in x.data.data_points
    ]


assert points(cumulative, "http.server.request.count") == [3]
assert points(cumulative, "orders") == [2]
assert points(deltas, "http.server.request.count") == [3]
recorder.record("GET", "/a", 200, None, 0.05, 1, 2, time.perf_counter())
assert points(deltas, "http.server.request.count") == [1]
m.shutdown()  # the periodic reader exports a last time at shutdown
assert "http.server.request.count" in out.getvalue()
print("sdk smoke ok")
