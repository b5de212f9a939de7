"""The console exporter: one line per series, PromQL quantiles, to the log or stdout, or JSON."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
)
from opentelemetry.sdk.resources import Resource

from fluxstack_otel._internal.config.model import ConsoleExporterConfig, MonitoringConfig
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.base import SinkContext
from fluxstack_otel._internal.sinks.console import ConsoleSink, format_text
from support.metricdata import collection

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "json-schema.json").read_text())
BOUNDS = (0.01, 0.1, 1.0)
CUMULATIVE = AggregationTemporality.CUMULATIVE


@pytest.fixture
def context() -> Iterator[tuple[SinkContext, HttpRecorder]]:
    recorder = HttpRecorder(duration_buckets=BOUNDS, size_buckets=(100.0,))
    reader = InMemoryMetricReader()
    resource = Resource.create({"service.name": "shop", "service.instance.id": "abcdef123456"})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    stream = MetricStream([reader], recorder.to_metrics, resource)
    yield SinkContext(config=MonitoringConfig(), stream=stream), recorder
    provider.shutdown()


def record(recorder: HttpRecorder, durations: list[float]) -> None:
    for d in durations:
        recorder.record("GET", "/items", 200, None, d, 0, 50, time.perf_counter())


def test_text_snapshot_has_one_line_per_series_with_promql_quantiles(
    context: tuple[SinkContext, HttpRecorder],
) -> None:
    """Counters show their value; histograms count, mean and p50/p95/p99 as PromQL computes."""
    ctx, recorder = context
    durations = [0.005] * 5 + [0.05] * 4 + [0.5]
    record(recorder, durations)
    text = ConsoleSink(ConsoleExporterConfig(), ctx).snapshot()
    header, *lines = text.splitlines()
    assert re.fullmatch(r"fluxstack-otel shop abcdef12 \d{4}-\d\d-\d\dT[\d:.]+Z", header)
    assert '  http_requests_total{method="GET",route="/items"} 10' in lines
    (duration,) = [line for line in lines if line.startswith("  http_request_duration_seconds{")]
    counts = [5, 4, 1, 0]
    expected = " ".join(
        [
            '  http_request_duration_seconds{method="GET",route="/items",status_code="200"}',
            "count=10",
            f"mean={sum(durations) / 10:.6g}",
            *(
                f"{name}={histogram_quantile(q, BOUNDS, counts):.6g}"
                for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
            ),
        ]
    )
    assert duration == expected
    assert "p50=0.01 " in duration  # rank 5 of 10 ends exactly at the first bucket's bound


def test_log_stream_writes_one_info_record_per_snapshot(
    context: tuple[SinkContext, HttpRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    """stream log: the whole snapshot is one INFO record of the fluxstack_otel logger."""
    ctx, recorder = context
    record(recorder, [0.02])
    with caplog.at_level(logging.INFO, logger="fluxstack_otel"):
        ConsoleSink(ConsoleExporterConfig(stream="log"), ctx).emit()
    (rec,) = [r for r in caplog.records if r.name == "fluxstack_otel"]
    assert rec.levelno == logging.INFO
    assert "http_requests_total" in rec.getMessage()


def test_json_format_prints_the_document_on_one_line(
    context: tuple[SinkContext, HttpRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    """format json + stream stdout: one compact, schema-valid JSON object per line."""
    ctx, recorder = context
    record(recorder, [0.02])
    before = failure_counts()
    ConsoleSink(ConsoleExporterConfig(format="json", stream="stdout"), ctx).emit()
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    jsonschema.validate(json.loads(out), SCHEMA)
    assert failure_counts() == before  # a context without extras adds no sections, no failure


def test_runs_every_interval_and_once_at_shutdown(
    context: tuple[SinkContext, HttpRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    """Started, it prints every interval; shutdown prints a last snapshot."""
    ctx, _ = context
    sink = ConsoleSink(ConsoleExporterConfig(stream="stdout", interval=3600), ctx)
    sink.start()
    sink.shutdown(2.0)
    assert capsys.readouterr().out.count("fluxstack-otel shop") == 1
    sink = ConsoleSink(ConsoleExporterConfig(stream="stdout", interval=0.01), ctx)
    sink.start()
    deadline = time.monotonic() + 5
    printed = ""
    while printed.count("fluxstack-otel shop") < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
        printed += capsys.readouterr().out
    sink.shutdown(2.0)


def test_whole_float_values_print_as_integers() -> None:
    """A gauge of bytes reported as a float prints every digit, not 3.1871e+07."""
    provider = MeterProvider(metric_readers=[reader := InMemoryMetricReader()])
    gauge = provider.get_meter("m").create_gauge("rss_bytes")
    gauge.set(31_871_000.0)
    text = format_text(MetricStream([reader], None, Resource({})).collect())
    provider.shutdown()
    assert "  rss_bytes 31871000" in text.splitlines()


def test_histogram_without_observations_shows_only_its_count() -> None:
    """A series with no observations prints count=0 and no quantiles (there are none)."""
    point = HistogramDataPoint({}, 0, 1, 0, 0.0, [0, 0], [1.0], None, None)  # type: ignore[arg-type]
    data = collection({"s": [Metric("h", "", "", Histogram([point], CUMULATIVE))]})
    assert format_text(data).splitlines()[1] == "  h count=0"
