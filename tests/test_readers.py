"""A user's own MetricReader or MetricExporter sees the whole stream, the built-ins included."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.runtime.failures import failure_counts
from servers import serve_asgi, wait_until
from support.metricdata import collected_points


def _app() -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/hello", hello)])


def _names(data: MetricsData | None) -> set[str]:
    assert data is not None
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def _requests(data: MetricsData | None) -> float:
    return sum(p.value for p in collected_points(data, cat.HTTP_REQUESTS.name))


@pytest.fixture
def monitor() -> Iterator[Any]:
    made: list[Monitoring] = []

    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Monitoring:
        m = configure_monitoring({"set_global": False, **(config or {})}, **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.shutdown()


def _wait_recorded(m: Monitoring, n: int) -> None:
    wait_until(lambda: _requests(m._p.stream.collect()) == n, timeout=10)


def test_an_in_memory_reader_sees_the_twelve_with_the_values_of_metrics(monitor: Any) -> None:
    """InMemoryMetricReader: every built-in, custom metrics too, with /metrics' values."""
    reader = InMemoryMetricReader()
    m = monitor(metric_readers=[reader])
    m.counter("orders").add(3)
    with serve_asgi(m.instrument(_app())) as base:
        for _ in range(5):
            httpx.get(f"{base}/hello", timeout=10, trust_env=False)
        _wait_recorded(m, 5)
        data = reader.get_metrics_data()
        text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    lag = cat.EVENT_LOOP_LAG.name  # reported once the probe has measured the loop
    assert {s.name for s in cat.BUILTIN_METRICS} - {lag} <= _names(data)
    assert "orders" in _names(data)
    assert _requests(data) == 5
    families = {f.name: f for f in parse_text(text)}
    scraped = sum(s.value for s in families["http_requests"].samples if s.name.endswith("_total"))
    assert scraped == 5
    (orders,) = collected_points(data, "orders")
    assert orders.value == 3


def test_a_delta_reader_gets_deltas_of_the_builtins(monitor: Any) -> None:
    """A reader preferring delta for counters and histograms gets what happened since its last read."""
    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(preferred_temporality={Counter: delta, Histogram: delta})
    m = monitor({"system_metrics": False}, metric_readers=[reader])
    with serve_asgi(m.instrument(_app())) as base:
        for _ in range(3):
            httpx.get(f"{base}/hello", timeout=10, trust_env=False)
        _wait_recorded(m, 3)
        first = reader.get_metrics_data()
        for _ in range(2):
            httpx.get(f"{base}/hello", timeout=10, trust_env=False)
        _wait_recorded(m, 5)
        second = reader.get_metrics_data()
    assert _requests(first) == 3
    assert _requests(second) == 2
    (duration,) = collected_points(second, cat.HTTP_REQUEST_DURATION.name)
    assert duration.count == 2


def test_the_official_prometheus_reader_serves_the_builtins(monitor: Any) -> None:
    """PrometheusMetricReader (opentelemetry-exporter-prometheus) exposes the twelve via its registry."""
    registry = CollectorRegistry()
    if "registry" in inspect.signature(PrometheusMetricReader).parameters:
        reader = PrometheusMetricReader(registry=registry)
    else:  # older releases register with prometheus_client's global registry
        from prometheus_client import REGISTRY as registry  # type: ignore[no-redef]

        reader = PrometheusMetricReader()
    try:
        m = monitor(metric_readers=[reader])
        with serve_asgi(m.instrument(_app())) as base:
            for _ in range(4):
                httpx.get(f"{base}/hello", timeout=10, trust_env=False)
            _wait_recorded(m, 4)
            ours = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
        official = generate_latest(registry).decode()
    finally:
        if hasattr(reader, "_collector"):
            with contextlib.suppress(KeyError):
                registry.unregister(reader._collector)

    def requests(text: str) -> float:
        return sum(
            s.value
            for f in parse_text(text)
            for s in f.samples
            if s.name == "http_requests_total" and s.labels.get("route") == "/hello"
        )

    assert requests(official) == requests(ours) == 4
    for name in ("http_request_duration_seconds_bucket", "process_memory_rss_bytes"):
        assert name in official


def test_a_user_exporter_receives_the_stream_every_interval(monitor: Any) -> None:
    """ConsoleMetricExporter given as metric_exporters prints the built-ins and custom metrics."""
    out = io.StringIO()
    lock = threading.Lock()

    class Out(io.StringIO):
        def write(self, s: str) -> int:
            with lock:
                return out.write(s)

    exporter = ConsoleMetricExporter(out=Out(), formatter=lambda d: d.to_json(indent=None) + "\n")
    m = monitor({"collect_interval": 0.2}, metric_exporters=[exporter])
    m.counter("orders").add(2)
    with serve_asgi(m.instrument(_app())) as base:
        httpx.get(f"{base}/hello", timeout=10, trust_env=False)
        _wait_recorded(m, 1)

        def exported_requests() -> bool:
            with lock:
                lines = out.getvalue().splitlines()
            return any('"http_requests_total"' in line and '"orders"' in line for line in lines)

        wait_until(exported_requests, timeout=10)
    with lock:
        line = next(
            x for x in out.getvalue().splitlines() if '"http_requests_total"' in x and "orders" in x
        )
    document = json.loads(line)
    names = {
        m["name"]
        for rm in document["resource_metrics"]
        for sm in rm["scope_metrics"]
        for m in sm["metrics"]
    }
    assert {cat.HTTP_REQUESTS.name, cat.PROCESS_RSS.name, "orders"} <= names


class _Raising(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any
    ) -> MetricExportResult:
        self.calls += 1
        raise RuntimeError("backend exploded")

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kw: Any) -> None:
        pass


class _Hanging(_Raising):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any
    ) -> MetricExportResult:
        self.calls += 1
        self.release.wait(60)
        return MetricExportResult.SUCCESS


def test_a_failing_user_exporter_is_counted_and_the_app_keeps_serving(monitor: Any) -> None:
    """An exporter that raises is reported and counted; the app and /metrics are unaffected."""
    exporter = _Raising()
    before = sum(failure_counts().values())
    m = monitor({"collect_interval": 0.1}, metric_exporters=[exporter])
    with serve_asgi(m.instrument(_app())) as base:
        wait_until(lambda: exporter.calls >= 2, timeout=10)
        assert httpx.get(f"{base}/hello", timeout=10, trust_env=False).status_code == 200
        assert httpx.get(f"{base}/metrics", timeout=10, trust_env=False).status_code == 200
    assert sum(failure_counts().values()) >= before + 2
    assert any("_Raising" in kind for kind in failure_counts())


def test_a_hanging_user_exporter_does_not_hold_shutdown_past_its_bound() -> None:
    """shutdown(timeout) returns within its bound while an exporter hangs in export."""
    exporter = _Hanging()
    m = configure_monitoring(
        {"set_global": False, "collect_interval": 0.1}, metric_exporters=[exporter]
    )
    try:
        wait_until(lambda: exporter.calls >= 1, timeout=10)
        started = time.monotonic()
        m.shutdown(timeout=1.0)
        assert time.monotonic() - started < 3.0
    finally:
        exporter.release.set()


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"metric_readers": [ConsoleMetricExporter()]}, "metric_readers[0]"),
        ({"metric_readers": ["prometheus"]}, "metric_readers[0]"),
        ({"metric_exporters": [InMemoryMetricReader()]}, "metric_exporters[0]"),
    ],
)
def test_what_is_not_a_reader_or_exporter_is_refused(
    kwargs: dict[str, Sequence[Any]], path: str
) -> None:
    """A reader that is not a MetricReader (or exporter not a MetricExporter): ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"set_global": False}, **kwargs)
    assert caught.value.path == path
    assert "expected an opentelemetry.sdk.metrics.export.Metric" in str(caught.value)


def test_a_reader_registered_elsewhere_is_refused(monitor: Any) -> None:
    """A reader already given to another pipeline is a ConfigError, not the SDK's bare Exception."""
    reader = InMemoryMetricReader()
    monitor(metric_readers=[reader])
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"set_global": False}, metric_readers=[reader])
    assert caught.value.path == "metric_readers"


def test_an_otel_entry_names_an_exporter_by_module_and_attribute(monitor: Any) -> None:
    """{"type": "otel", "exporter": "module:attribute", "options": {...}} gets the whole stream."""
    from otel_entry import RecordingExporter

    m = monitor(
        {
            "exporters": [
                {"type": "prometheus"},
                {"type": "otel", "exporter": "otel_entry:RecordingExporter",
                 "options": {"label": "entry"}, "interval": 0.1},
            ]
        }
    )  # fmt: skip
    m.counter("orders").add(1)

    def exported() -> set[str]:
        with RecordingExporter.lock:
            batches = list(RecordingExporter.exports.get("entry", []))
        return set().union(*(_names(b) for b in batches)) if batches else set()

    names = wait_until(
        lambda: (n := exported()) >= {cat.HTTP_REQUESTS.name, "orders"} and n, timeout=10
    )
    assert cat.PROCESS_RSS.name in names


def test_an_otel_entry_by_entry_point_name_prints_to_stdout(tmp_path: Any) -> None:
    """exporter: "console" is the SDK's ConsoleMetricExporter, found by its entry point."""
    code = (
        "from fluxstack_otel import configure_monitoring\n"
        "m = configure_monitoring({'set_global': False, 'exporters': [\n"
        "    {'type': 'otel', 'exporter': 'console', 'interval': 60}]})\n"
        "m.shutdown()\n"  # the periodic reader exports a last time
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "http_requests_total"' in done.stdout


@pytest.mark.parametrize(
    ("entry", "path", "words"),
    [
        ({"exporter": "no_such_exporter"}, "exporters[0].exporter", "installed: "),
        ({"exporter": "os:sep"}, "exporters[0].exporter", "not a MetricExporter or MetricReader"),
        ({"exporter": "no.such.module:Thing"}, "exporters[0].exporter", "cannot load"),
        (
            {"exporter": "otel_entry:RecordingExporter", "options": {"nope": "s3cr3t-value"}},
            "exporters[0].options",
            "refused the options ['nope']",
        ),
        ({"exporter": "bad name!"}, "exporters[0].exporter", "entry-point name"),
    ],
)
def test_a_bad_otel_entry_is_one_config_error(entry: dict[str, Any], path: str, words: str) -> None:
    """Not installed, not a class, refused options: a ConfigError naming the key, no values quoted."""
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"set_global": False, "exporters": [{"type": "otel", **entry}]})
    assert caught.value.path == path
    assert words in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_an_otel_entry_repr_masks_its_options() -> None:
    """Options may carry credentials: the entry's repr names them and masks their values."""
    from fluxstack_otel.config import OtelExporterConfig

    entry = OtelExporterConfig(exporter="console", options=(("headers", "Bearer s3cr3t"),))
    assert "s3cr3t" not in repr(entry)
    assert "headers=***" in repr(entry)
