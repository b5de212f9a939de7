"""Standard ``OTEL_*`` variables that change what the pipeline does, checked against the SDK.

Exemplar filter (``OTEL_METRICS_EXEMPLAR_FILTER``), console exporter (``OTEL_METRICS_EXPORTER``),
Prometheus host and port (``OTEL_EXPORTER_PROMETHEUS_HOST/PORT``); the export timeout is in
test_exporters_otlp.py. Real uvicorn, real subprocess stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel import ConfigError, configure_monitoring
from servers import free_port, serve_asgi, wait_until
from support.asgi import ok_app as app

ROOT = Path(__file__).resolve().parent.parent
OM = {"accept": "application/openmetrics-text"}


def exemplars(text: str) -> list[Any]:
    return [
        s.exemplar
        for f in parse_om(text)
        for s in f.samples
        if s.name == "http_request_duration_seconds_bucket" and s.exemplar is not None
    ]


def traced_exemplars(sampler: Any = None) -> list[Any]:
    """One request through a traced app; the duration exemplars /metrics then shows."""
    provider = TracerProvider(**({"sampler": sampler} if sampler is not None else {}))
    m = configure_monitoring({"system_metrics": False, "set_global": False, "tracing": True})
    try:
        with serve_asgi(m.instrument(app, tracer_provider=provider)) as base:
            assert httpx.get(f"{base}/x", timeout=10, trust_env=False).status_code == 200
            text = httpx.get(f"{base}/metrics", headers=OM, timeout=10, trust_env=False).text
    finally:
        m.shutdown()
        provider.shutdown()
    assert "http_request_duration_seconds_count" in text
    return exemplars(text)


def test_an_empty_exemplar_filter_starts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_METRICS_EXEMPLAR_FILTER='' is trace_based, where the SDK alone ends start-up."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "")
    assert len(traced_exemplars()) == 1


def test_an_unknown_exemplar_filter_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value outside the three names is refused, naming the variable, value and the names."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes")
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"system_metrics": False, "set_global": False})
    assert str(caught.value) == (
        "OTEL_METRICS_EXEMPLAR_FILTER: expected one of trace_based, always_on, always_off,"
        " got 'sometimes'"
    )


def test_always_off_keeps_no_http_exemplar(monkeypatch: pytest.MonkeyPatch) -> None:
    """always_off: a request inside a sampled span leaves no duration exemplar."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    assert traced_exemplars() == []


def test_always_on_keeps_the_exemplar_of_an_unsampled_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """always_on: an unsampled span's context still becomes the duration exemplar."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")
    found = traced_exemplars(ALWAYS_OFF)
    assert len(found) == 1
    assert int(found[0].labels["trace_id"], 16) != 0


def test_the_sdk_instruments_follow_the_same_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK instruments get the same filter: always_off drops a custom histogram's exemplar."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    provider = TracerProvider()
    m = configure_monitoring({"system_metrics": False, "set_global": False})
    try:
        waits = m.meter.create_histogram("job.wait", unit="s")
        with provider.get_tracer("t").start_as_current_span("job"):
            waits.record(0.2)
        points = [
            p
            for rm in m.collect().resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "job.wait"
            for p in metric.data.data_points
        ]
    finally:
        m.shutdown()
        provider.shutdown()
    assert [p.count for p in points] == [1]
    assert [list(p.exemplars) for p in points] == [[]]


CONSOLE_CHILD = textwrap.dedent(
    """
    from fluxstack_otel import configure_monitoring
    m = configure_monitoring({"system_metrics": False, "set_global": False})
    m.meter.create_counter("jobs.done").add(3)
    m.shutdown()  # the final flush prints one snapshot
    """
)


def test_console_from_the_environment_prints_json_to_stdout() -> None:
    """OTEL_METRICS_EXPORTER=console writes JSON on stdout, as the SDK's console exporter does."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"),
           "OTEL_METRICS_EXPORTER": "console"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CONSOLE_CHILD], capture_output=True, text=True,
                          timeout=60, env=env, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    names = {metric["name"] for metric in lines[-1]["metrics"]}
    assert "jobs.done" in names  # the JSON document keeps OpenTelemetry names


def test_the_prometheus_port_variable_serves_on_a_port_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_PROMETHEUS_HOST/PORT: the exposition moves off the app to that address."""
    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    m = configure_monitoring({"system_metrics": False, "set_global": False})

    def total(client: httpx.Client) -> float:
        text = client.get(f"http://127.0.0.1:{port}/metrics").text
        return sum(
            s.value for f in parse_text(text) for s in f.samples if s.name == "http_requests_total"
        )

    try:
        with serve_asgi(m.instrument(app)) as base, httpx.Client(trust_env=False) as client:
            assert client.get(f"{base}/items").status_code == 200
            assert client.get(f"{base}/metrics").text == "ok"  # the app's own route now
            # Both requests counted on the app (a request is recorded once its response is sent).
            wait_until(lambda: total(client) == 2, timeout=5, message="2 requests at the port")
    finally:
        m.shutdown()
