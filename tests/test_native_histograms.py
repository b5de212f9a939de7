"""Prometheus native histograms: the protobuf exposition, read by a real Prometheus."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fluxstack_otel._internal.sinks.prometheus.protobuf import (
    CONTENT_TYPE_PROTOBUF,
    render_protobuf,
)
from servers import PrometheusServer, requires_prometheus, serve_asgi


def _exponential_collection() -> Any:
    """1,000 requests at 0.5 ms and 10 at 200 ms, in an SDK exponential histogram."""
    reader = InMemoryMetricReader()
    view = View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())
    provider = MeterProvider(metric_readers=[reader], views=[view])
    histogram = provider.get_meter("m").create_histogram("latency", unit="s")
    for _ in range(1000):
        histogram.record(0.0005, {"route": "/fast"})
    for _ in range(10):
        histogram.record(0.2, {"route": "/fast"})
    requests = provider.get_meter("m").create_counter("served")
    requests.add(1010, {"route": "/fast"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


@pytest.mark.slow
@requires_prometheus
def test_a_real_prometheus_reads_native_histogram_quantiles_within_the_schemes_error(
    prometheus: Callable[..., PrometheusServer],
) -> None:
    """histogram_quantile on the native series is within (base - 1) of the true latency."""
    body = render_protobuf(_exponential_collection())

    async def metrics(request: Request) -> Response:
        return Response(body, media_type=CONTENT_TYPE_PROTOBUF)

    app = Starlette(routes=[Route("/metrics", metrics)])
    with serve_asgi(app) as base:
        prom = prometheus([base.removeprefix("http://")], features=["native-histograms"])
        prom.wait_for('served_total{route="/fast"} == 1010')
        schema_result = prom.wait_for("histogram_count(latency_seconds)")
        assert float(schema_result[0]["value"][1]) == 1010
        results = {
            q: float(prom.query(f"histogram_quantile({q}, latency_seconds)")[0]["value"][1])
            for q in (0.5, 0.99, 0.995)
        }
    # The SDK picked scale 4 for a 400x range within 160 buckets: base 2 ** (1 / 16).
    error = 2 ** (1 / 16) - 1
    assert math.isclose(results[0.5], 0.0005, rel_tol=error)
    assert math.isclose(results[0.99], 0.0005, rel_tol=error)
    assert math.isclose(results[0.995], 0.2, rel_tol=error)
