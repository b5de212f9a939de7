"""Standard variables honoured as the SDK defines them: lowmemory temporality, excluded URLs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.metrics.v1 import metrics_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import ConfigError, configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from receivers import HttpReceiver, metrics_of
from servers import serve_asgi, wait_until

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def _app() -> Starlette:
    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/ok", ok), Route("/healthz", ok), Route("/internal/x", ok)])


_EVERY = {cat.HTTP_REQUESTS.name, cat.PROCESS_CPU_USER.name, "orders", "jobs.seen"}


def _complete(request: Any) -> bool:
    return set(metrics_of(request)) >= _EVERY


def _temporality(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return int(getattr(metric, kind).aggregation_temporality)


def test_lowmemory_keeps_observed_counters_cumulative(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_..._TEMPORALITY_PREFERENCE=lowmemory: synchronous counters and histograms as deltas,
    observed counters (process CPU, a custom observable counter) cumulative, as the spec says."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "lowmemory")
    with HttpReceiver() as receiver:
        m = configure_monitoring(
            {
                "set_global": False,
                "exporters": [{"type": "otlp", "endpoint": f"{receiver.base_url}/v1/metrics",
                               "interval": 0.1}],
            }
        )  # fmt: skip
        try:
            m.counter("orders").add(1)

            def observe(options: CallbackOptions) -> Iterable[Observation]:
                return [Observation(5)]

            m.observable_counter("jobs.seen", [observe])
            with serve_asgi(m.instrument(_app())) as base:
                assert httpx.get(f"{base}/ok", timeout=10, trust_env=False).status_code == 200

            receiver.wait_for(lambda r: any(_complete(q) for q in r.requests))
        finally:
            m.shutdown()
    # One export that holds them all: an earlier one may precede the recorded request.
    request = next(q for q in receiver.requests if _complete(q))
    metrics = metrics_of(request)
    assert _temporality(metrics[cat.HTTP_REQUESTS.name]) == DELTA
    assert _temporality(metrics[cat.HTTP_REQUEST_DURATION.name]) == DELTA
    assert _temporality(metrics["orders"]) == DELTA
    assert _temporality(metrics[cat.PROCESS_CPU_USER.name]) == CUMULATIVE
    assert _temporality(metrics["jobs.seen"]) == CUMULATIVE


def test_excluded_urls_from_the_standard_variable_are_not_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_PYTHON_EXCLUDED_URLS=healthz,/internal/.*: those paths are served but not counted."""
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "healthz,/internal/.*")
    m = configure_monitoring({"set_global": False, "system_metrics": False})
    try:
        with (
            serve_asgi(m.instrument(_app())) as base,
            httpx.Client(base_url=base, trust_env=False, timeout=10) as client,
        ):
            for path in ("/healthz", "/internal/x", "/ok"):
                assert client.get(path).status_code == 200

            def scraped() -> str:
                text = m.render_prometheus().decode()
                return text if 'route="/ok"' in text else ""

            text = wait_until(scraped, timeout=10)
    finally:
        m.shutdown()
    assert 'route="/healthz"' not in text
    assert 'route="/internal/x"' not in text


def test_a_bad_excluded_urls_pattern_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid regular expression is a ConfigError naming OTEL_PYTHON_EXCLUDED_URLS."""
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "ok,(broken")
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"set_global": False})
    assert caught.value.path == "OTEL_PYTHON_EXCLUDED_URLS"
