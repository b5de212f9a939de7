"""tracing: true: OpenTelemetry's ASGI middleware for server spans, and trace exemplars."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.samples import Sample

from fluxstack_otel import (
    MissingDependencyError,
    Monitoring,
    MonitoringMiddleware,
    configure_monitoring,
)
from servers import (
    PrometheusServer,
    promtool_check_metrics,
    requires_prometheus,
    requires_promtool,
    serve_asgi,
    wait_until,
)
from support.asgi import drive
from support.asgi import ok_app as app

OM = {"accept": "application/openmetrics-text"}


class Spans:
    """An SDK TracerProvider whose finished spans stay in memory."""

    def __init__(self, **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(**options)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]

    def wait_for_server_spans(self, count: int) -> list[ReadableSpan]:
        """The server spans once ``count`` have ended.

        OpenTelemetry's middleware ends the span after the response's last send has returned, in
        the server's thread: the client can hold the whole response before the span is exported,
        so a live server's spans are awaited, never read at once.
        """

        def finished() -> list[ReadableSpan]:
            found = self.server_spans()
            return found if len(found) >= count else []

        return wait_until(
            finished,
            timeout=10,
            message=lambda: f"{count} finished server spans, have {len(self.server_spans())}",
        )


@pytest.fixture
def spans() -> Iterator[Spans]:
    s = Spans()
    yield s
    s.provider.shutdown()


@pytest.fixture
def traced() -> Iterator[Monitoring]:
    m = configure_monitoring({"system_metrics": False, "set_global": False, "tracing": True})
    yield m
    m.shutdown()


def bucket_exemplars(text: str) -> list[Sample]:
    return [
        s
        for f in parse_om(text)
        for s in f.samples
        if s.name == "http_request_duration_seconds_bucket" and s.exemplar is not None
    ]


@pytest.mark.slow
def test_duration_buckets_carry_the_trace_of_an_exported_span(
    traced: Monitoring, spans: Spans
) -> None:
    """Through real uvicorn: OpenMetrics parses, and each exemplar names an exported server span."""
    wrapped = traced.instrument(app, tracer_provider=spans.provider)
    with serve_asgi(wrapped) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as c:
        for _ in range(5):
            assert c.get("/work").text == "ok"
        text = c.get("/metrics", headers=OM).text
    exemplars = bucket_exemplars(text)
    assert exemplars
    exported = {(format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
                for s in spans.server_spans()}  # fmt: skip
    assert len(exported) == 5
    for sample in exemplars:
        assert sample.exemplar is not None
        labels = sample.exemplar.labels
        assert (labels["trace_id"], labels["span_id"]) in exported
        assert float(sample.labels["le"]) >= sample.exemplar.value
        assert sample.exemplar.timestamp is not None


@pytest.mark.slow
def test_the_monitoring_endpoints_are_not_traced_and_nothing_is_counted_twice(
    traced: Monitoring, spans: Spans
) -> None:
    """Scrapes make no spans; OpenTelemetry's middleware adds no metrics of its own."""
    wrapped = traced.instrument(app, tracer_provider=spans.provider)
    assert isinstance(wrapped, MonitoringMiddleware)
    assert isinstance(wrapped.app, OpenTelemetryMiddleware)
    with serve_asgi(wrapped) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as c:
        c.get("/metrics")
        c.get("/once")
        c.get("/metrics")
    assert [s.attributes.get("http.target") or s.name for s in spans.server_spans()] == ["/once"]
    scopes = {sm.scope.name for rm in traced.collect().resource_metrics for sm in rm.scope_metrics}
    assert not [name for name in scopes if "instrumentation" in name]
    text = traced.render_prometheus().decode()
    assert 'http_requests_total{method="GET",route="<unmatched>"} 1' in text


@pytest.mark.slow
@requires_promtool
def test_the_text_format_has_no_exemplars_and_lints_clean(traced: Monitoring, spans: Spans) -> None:
    """Exemplars are an OpenMetrics feature: the 0.0.4 text stays plain and passes promtool."""
    with serve_asgi(traced.instrument(app, tracer_provider=spans.provider)) as base:
        httpx.get(f"{base}/x", timeout=10, trust_env=False)
        text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    assert " # {" not in text
    assert promtool_check_metrics(text) == []


def test_unsampled_requests_leave_no_exemplar(traced: Monitoring) -> None:
    """A span that is not sampled (not exported) never becomes an exemplar."""
    unsampled = Spans(sampler=ALWAYS_OFF)
    try:
        with serve_asgi(traced.instrument(app, tracer_provider=unsampled.provider)) as base:
            httpx.get(f"{base}/x", timeout=10, trust_env=False)
            text = httpx.get(f"{base}/metrics", headers=OM, timeout=10, trust_env=False).text
    finally:
        unsampled.provider.shutdown()
    assert "http_request_duration_seconds_count" in text
    assert bucket_exemplars(text) == []


def test_exemplars_reach_otlp_data_and_follow_fastapi_add_middleware(spans: Spans) -> None:
    """add_middleware works too, and the collected OTel points carry the span ids as exemplars."""
    m = configure_monitoring({"system_metrics": False, "set_global": False, "tracing": True})
    fastapi = FastAPI()

    @fastapi.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        return {"user_id": user_id}

    fastapi.add_middleware(MonitoringMiddleware, monitoring=m, tracer_provider=spans.provider)
    try:
        with serve_asgi(fastapi) as base:
            assert httpx.get(f"{base}/users/3", timeout=10, trust_env=False).status_code == 200
        data = m.collect()
    finally:
        m.shutdown()
    (span,) = spans.server_spans()
    (duration,) = [
        metric
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "http_request_duration_seconds"
    ]
    (point,) = duration.data.data_points  # type: ignore[union-attr]
    assert point.attributes["route"] == "/users/{user_id}"
    (exemplar,) = point.exemplars
    assert (exemplar.trace_id, exemplar.span_id) == (span.context.trace_id, span.context.span_id)


def test_tracing_off_adds_nothing(spans: Spans) -> None:
    """By default the app is not wrapped and no exemplar is kept."""
    m = configure_monitoring({"system_metrics": False, "set_global": False})
    try:
        wrapped = m.instrument(app, tracer_provider=spans.provider)
        assert isinstance(wrapped, MonitoringMiddleware)
        assert wrapped.app is app
        with serve_asgi(wrapped) as base:
            httpx.get(f"{base}/x", timeout=10, trust_env=False)
            text = httpx.get(f"{base}/metrics", headers=OM, timeout=10, trust_env=False).text
    finally:
        m.shutdown()
    assert spans.server_spans() == []
    assert bucket_exemplars(text) == []


def test_tracing_without_the_instrumentation_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without opentelemetry-instrumentation-asgi, tracing: true says which extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asgi", None)
    with pytest.raises(MissingDependencyError, match=r"fluxstack-otel\[tracing\]"):
        configure_monitoring({"system_metrics": False, "set_global": False, "tracing": True})


class ExemplarPrometheus(PrometheusServer):
    """A real Prometheus that stores exemplars (a feature flag in Prometheus 2.x)."""

    def _arguments(self) -> list[str]:
        return [*super()._arguments(), "--enable-feature=exemplar-storage"]


@pytest.mark.slow
@requires_prometheus
def test_a_real_prometheus_ingests_the_exemplars(traced: Monitoring, spans: Spans) -> None:
    """Prometheus scrapes the OpenMetrics exposition and serves the exemplars' trace ids back."""
    with serve_asgi(traced.instrument(app, tracer_provider=spans.provider)) as base:
        with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
            for _ in range(3):
                client.get("/work")
        finished = spans.wait_for_server_spans(3)
        trace_ids = {format(s.context.trace_id, "032x") for s in finished}
        with ExemplarPrometheus([base.removeprefix("http://")]) as prometheus:
            prometheus.wait_for("http_request_duration_seconds_count > 0", timeout=30)

            def stored() -> list[dict[str, Any]]:
                now = time.time()
                found = prometheus.api(
                    "query_exemplars",
                    {
                        "query": "http_request_duration_seconds_bucket",
                        "start": str(now - 300),
                        "end": str(now + 60),
                    },
                )
                return [e for series in found for e in series["exemplars"]]

            exemplars = wait_until(stored, timeout=30, message="exemplars in Prometheus")
    assert {e["labels"]["trace_id"] for e in exemplars} <= trace_ids


def test_exemplars_follow_their_series_with_per_request_labels(spans: Spans) -> None:
    """With ``labels`` a series' key carries the label values: the exemplar lands on it too."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "set_global": False,
            "tracing": True,
            "labels": {"tenant": {"header": "x-tenant"}},
        }
    )
    try:
        wrapped = monitoring.instrument(app, tracer_provider=spans.provider)
        for tenant in ("acme", "globex"):
            scope = {"type": "http", "method": "GET", "path": "/work", "raw_path": b"/work",
                     "query_string": b"", "root_path": "",
                     "headers": [(b"x-tenant", tenant.encode())]}  # fmt: skip
            asyncio.run(drive(wrapped, scope))
        text = monitoring.render_prometheus(openmetrics=True).decode()
    finally:
        monitoring.shutdown()
    exemplars = bucket_exemplars(text)
    assert {s.labels["tenant"] for s in exemplars} == {"acme", "globex"}
    traces = {format(s.context.trace_id, "032x") for s in spans.server_spans()}
    assert {s.exemplar.labels["trace_id"] for s in exemplars if s.exemplar} <= traces
