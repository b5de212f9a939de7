"""Exponential histograms end to end: recorder, views, deltas, OTLP, both Prometheus formats."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.config.sources import resolve
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.exponential import (
    ExponentialAccumulator,
    ExponentialSnapshot,
    downscaled,
    merged,
    quantile,
    subtracted,
)
from fluxstack_otel._internal.sinks.alerts.evaluate import values_of
from fluxstack_otel._internal.sinks.alerts.snapshot import take_sample
from fluxstack_otel._internal.sinks.console import format_text
from fluxstack_otel._internal.sinks.document import document
from fluxstack_otel.alerts import compile_rules
from receivers import DELTA, HttpReceiver, metrics_of
from servers import PrometheusServer, requires_prometheus, serve_asgi, wait_until
from support.configs import NO_THRESHOLDS

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "json-schema.json").read_text())

DURATION = cat.HTTP_REQUEST_DURATION.name
values = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)),
    max_size=120,
)


def _acc(observed: list[float], max_size: int = 160) -> ExponentialSnapshot:
    acc = ExponentialAccumulator(max_size=max_size)
    for v in observed:
        acc.record(v)
    return acc.snapshot()


def _trim(s: ExponentialSnapshot) -> tuple[int, int, tuple[int, ...], int]:
    nz = [i for i, n in enumerate(s.counts) if n]
    if not nz:
        return (0, 0, (), s.zero_count)
    return s.scale, s.offset + nz[0], s.counts[nz[0] : nz[-1] + 1], s.zero_count


@settings(max_examples=150, deadline=None, derandomize=True)
@given(xs=values, ys=values, max_size=st.sampled_from([4, 20, 160]))
def test_merging_two_histograms_equals_recording_all_values_in_one(
    xs: list[float], ys: list[float], max_size: int
) -> None:
    """merged(a, b) has the scale and the counts one histogram of both value lists would have."""
    both = _acc(xs + ys, max_size)
    together = merged(_acc(xs, max_size), _acc(ys, max_size), max_size)
    assert _trim(together) == _trim(both)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(xs=values, ys=values)
def test_subtracting_an_earlier_reading_leaves_the_values_recorded_since(
    xs: list[float], ys: list[float]
) -> None:
    """A cumulative reading minus an earlier one: exactly the later values' buckets."""
    later = _acc(xs + ys)
    diff = subtracted(later, _acc(xs))
    assert all(n >= 0 for n in diff.counts)
    if ys:
        assert _trim(diff) == _trim(downscaled(_acc(ys), later.scale))
    else:
        assert diff.zero_count == 0
        assert not any(diff.counts)


def test_quantiles_read_back_within_the_buckets_relative_width() -> None:
    """1,000 values at 0.5 ms and 10 at 200 ms: p50 and p99 near 0.5 ms, p99.5 near 200 ms."""
    snap = _acc([0.0005] * 1000 + [0.2] * 10)
    error = 2 ** (2**-snap.scale) - 1
    assert math.isclose(quantile(snap, 0.5), 0.0005, rel_tol=error)
    assert math.isclose(quantile(snap, 0.99), 0.0005, rel_tol=error)
    assert math.isclose(quantile(snap, 0.995), 0.2, rel_tol=error)
    assert math.isnan(quantile(_acc([]), 0.5))


# --- the pipeline --------------------------------------------------------------------------


@pytest.fixture
def monitor() -> Iterator[Callable[..., Monitoring]]:
    made: list[Monitoring] = []

    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Monitoring:
        m = configure_monitoring(
            {"set_global": False, "system_metrics": False, **(config or {})}, **kwargs
        )
        made.append(m)
        return m

    yield make
    for m in made:
        m.shutdown()


def _record(m: Monitoring, durations: list[float], status: int = 200) -> None:
    recorder = m._p.recorder
    assert recorder is not None
    now = time.perf_counter()
    for d in durations:
        recorder.record("GET", "/fast", status, None, d, 0, 10, now)


def _exponential_points(data: MetricsData | None, name: str) -> list[Any]:
    assert data is not None
    found = [
        metric.data
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
    ]
    assert found, name
    assert isinstance(found[0], ExponentialHistogram), found
    return list(found[0].data_points)


def test_histograms_exponential_gives_a_reader_exponential_points_with_exact_counts(
    monitor: Callable[..., Monitoring],
) -> None:
    """The SDK's own buckets for the same values, merged across statuses where a metric sums them."""
    reader = InMemoryMetricReader()
    m = monitor({"histograms": "exponential"}, metric_readers=[reader])
    _record(m, [0.0005] * 1000 + [0.2] * 10)
    _record(m, [0.003] * 5, status=500)
    points = {p.attributes["status_code"]: p for p in _exponential_points(
        reader.get_metrics_data(), DURATION)}  # fmt: skip
    ok = points["200"]
    assert ok.count == 1010
    assert ok.zero_count == 0
    assert sum(ok.positive.bucket_counts) == 1010
    assert _trim(ExponentialSnapshot(ok.scale, ok.positive.offset,
                 tuple(ok.positive.bucket_counts), 0)) == _trim(_acc([0.0005] * 1000 + [0.2] * 10))  # fmt: skip
    assert ok.classic.count == 1010  # the classic buckets travel along
    # Request sizes have no status: one point of both statuses' values (all 0 bytes here).
    (size,) = _exponential_points(reader.get_metrics_data(), cat.HTTP_REQUEST_SIZE.name)
    assert size.count == 1015
    assert size.zero_count == 1015


def test_a_delta_reader_gets_exact_exponential_deltas(monitor: Callable[..., Monitoring]) -> None:
    """Between two reads, the buckets and the zero count say exactly what was recorded."""
    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(preferred_temporality={Histogram: delta, Counter: delta})
    m = monitor({"histograms": "exponential"}, metric_readers=[reader])
    _record(m, [0.001] * 7)
    (first,) = _exponential_points(reader.get_metrics_data(), DURATION)
    _record(m, [0.5] * 3)
    (second,) = _exponential_points(reader.get_metrics_data(), DURATION)
    assert first.count == 7
    assert sum(first.positive.bucket_counts) == 7
    assert second.count == 3
    assert sum(second.positive.bucket_counts) == 3
    assert second.classic.count == 3
    assert second.start_time_unix_nano == first.time_unix_nano


def test_a_view_chooses_exponential_for_one_histogram_and_its_bucket_cap(
    monitor: Callable[..., Monitoring],
) -> None:
    """Only the selected built-in turns exponential, within the view's max_size."""
    reader = InMemoryMetricReader()
    view = View(
        instrument_name=DURATION, aggregation=ExponentialBucketHistogramAggregation(max_size=8)
    )
    m = monitor(metric_readers=[reader], views=[view])
    _record(m, [0.0001 * 2**i for i in range(20)])
    data = reader.get_metrics_data()
    (p,) = _exponential_points(data, DURATION)
    assert len(p.positive.bucket_counts) <= 8
    assert p.count == 20
    assert not isinstance(
        next(
            mt.data
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for mt in sm.metrics
            if mt.name == cat.HTTP_REQUEST_SIZE.name
        ),
        ExponentialHistogram,
    )


def test_the_otlp_variable_sets_the_histograms_key(tmp_path: Any) -> None:
    """base2_exponential_bucket_histogram turns it on; a misspelling names the variable."""
    name = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
    on = resolve(environ={name: "base2_exponential_bucket_histogram"}, cwd=tmp_path)
    assert on.config.histograms == "exponential"
    with pytest.raises(ConfigError) as info:
        resolve(environ={name: "base2_exponential"}, cwd=tmp_path)
    assert name in str(info.value)
    assert "base2_exponential_bucket_histogram" in str(info.value)


def test_sdk_histograms_follow_the_setting_and_stay_in_the_text_exposition(
    monitor: Callable[..., Monitoring],
) -> None:
    """A custom histogram is exponential in the stream; /metrics text still has its count and sum."""
    m = monitor({"histograms": "exponential"})
    m.histogram("checkout_seconds", unit="s").record(0.25)
    (p,) = _exponential_points(m._p.stream.collect(), "checkout_seconds")
    assert p.count == 1
    _record(m, [0.0005] * 4)

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    with serve_asgi(m.instrument(Starlette(routes=[Route("/", hello)]))) as base:
        text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    families = {f.name: f for f in parse_text(text)}
    custom = {s.name: s.value for s in families["checkout_seconds"].samples}
    assert custom["checkout_seconds_count"] == 1
    assert custom["checkout_seconds_sum"] == 0.25
    buckets = [s for s in families["http_request_duration_seconds"].samples
               if s.name.endswith("_bucket")]  # fmt: skip
    assert {s.labels["le"] for s in buckets} >= {"0.0005", "+Inf"}
    assert max(s.value for s in buckets) == 4


def test_otlp_sends_exponential_histograms_in_both_temporalities(
    monitor: Callable[..., Monitoring],
) -> None:
    """Decoded with opentelemetry-proto: consistent scale, offset, counts and sums."""
    for temporality in ("cumulative", "delta"):
        with HttpReceiver() as receiver:
            otlp = {"type": "otlp", "endpoint": receiver.base_url, "interval": 0.05,
                    "temporality": temporality}  # fmt: skip
            m = monitor({"histograms": "exponential", "exporters": [otlp]})
            _record(m, [0.0005] * 100 + [0.2] * 2)

            def has_points(r: Any) -> bool:
                return any(
                    DURATION in metrics_of(q)
                    and metrics_of(q)[DURATION].exponential_histogram.data_points
                    for q in r.requests
                )

            receiver.wait_for(has_points)
            m.shutdown()
        decoded = [
            metrics_of(q)[DURATION].exponential_histogram
            for q in receiver.requests
            if DURATION in metrics_of(q)
        ]
        points = [p for h in decoded for p in h.data_points]
        assert all(p.count == p.zero_count + sum(p.positive.bucket_counts) for p in points)
        snap = ExponentialSnapshot(points[0].scale, points[0].positive.offset,
                                   tuple(points[0].positive.bucket_counts), 0)  # fmt: skip
        assert _trim(snap) == _trim(_acc([0.0005] * 100 + [0.2] * 2))
        assert math.isclose(points[0].sum, 0.05 + 0.4)
        if temporality == "delta":
            assert {h.aggregation_temporality for h in decoded} == {DELTA}
            assert sum(p.count for p in points) == 102
        else:
            assert points[-1].count == 102


@pytest.mark.slow
@requires_prometheus
def test_a_real_prometheus_reads_the_apps_native_and_classic_histograms(
    monitor: Callable[..., Monitoring],
    prometheus: Callable[..., PrometheusServer],
) -> None:
    """Native quantiles of rate() within the scheme's error; a text-only Prometheus reads classic.

    1,000 requests at 0.5 ms and 10 at 200 ms: at the scale the recorder picks (4, base
    2 ** (1/16)), a quantile read back is within 2 ** (1/16) - 1 (4.4 %) of the true value.
    """
    m = monitor({"histograms": "exponential"})

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    _record(m, [0.0005])
    with serve_asgi(m.instrument(Starlette(routes=[Route("/", hello)]))) as base:
        target = [base.removeprefix("http://")]
        native = prometheus(target, features=["native-histograms"])
        classic = prometheus(target)
        selector = f'{DURATION}{{route="/fast"}}'
        native.wait_for(f"histogram_count({selector}) == 1")
        classic.wait_for(f'{DURATION}_count{{route="/fast"}} == 1')
        _record(m, [0.0005] * 999 + [0.2] * 10)
        native.wait_for(f"histogram_count({selector}) == 1010")
        classic.wait_for(f'{DURATION}_count{{route="/fast"}} == 1010')
        results = {
            q: float(native.query(f"histogram_quantile({q}, rate({selector}[1m]))")[0]["value"][1])
            for q in (0.5, 0.99, 0.999)
        }
        wait_until(lambda: classic.query(
            f'histogram_quantile(0.5, sum by (le) (rate({DURATION}_bucket{{route="/fast"}}[1m])))'
        ), timeout=10)  # fmt: skip
        classic_p50 = float(classic.query(
            f'histogram_quantile(0.5, sum by (le) (rate({DURATION}_bucket{{route="/fast"}}[1m])))'
        )[0]["value"][1])  # fmt: skip
    error = 2 ** (1 / 16) - 1
    assert math.isclose(results[0.5], 0.0005, rel_tol=error)
    assert math.isclose(results[0.99], 0.0005, rel_tol=error)
    assert math.isclose(results[0.999], 0.2, rel_tol=error)
    # The classic buckets answer too, interpolated inside the (0.00025, 0.0005] bucket.
    assert 0.00025 < classic_p50 <= 0.0005


# --- the package's own readers: alerts, console, JSON --------------------------------------


def test_alert_quantiles_the_console_and_the_json_document_read_the_exponential_buckets(
    monitor: Callable[..., Monitoring],
) -> None:
    """p50 of 1,000 at 0.5 ms and 10 at 200 ms reads 0.5 ms, where classic buckets give 0.38 ms."""
    m = monitor({"histograms": "exponential"})
    _record(m, [0.001])
    before = take_sample(time.time() - 10, m._p.stream.collect(), {DURATION})
    _record(m, [0.0005] * 1000 + [0.2] * 10)
    error = 2 ** (1 / 16) - 1
    # Alerts read the built-in stream, in milliseconds for a *_ms rule.
    config = load_config({"alerts": [{"metric": "http_request_duration_ms", "operator": ">",
                          "value": 1, "severity": "warning", "aggregation": "p50"}],
                          "thresholds": NO_THRESHOLDS})  # fmt: skip
    (compiled,) = compile_rules(config)
    sample = take_sample(time.time(), m._p.stream.collect(), {DURATION})
    (p50_ms,) = values_of(compiled, [before, sample]).values()  # the window's 1,010
    assert math.isclose(p50_ms, 0.5, rel_tol=error)
    # The console and the JSON document read the presented stream (ExponentialHistogram).
    presented = m._p.exported.collect()
    (line,) = [ln for ln in format_text(presented).splitlines() if DURATION in ln]
    p50 = float(line.split("p50=")[1].split()[0])
    assert math.isclose(p50, 0.0005, rel_tol=error)
    doc = document(presented)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    (metric,) = [x for x in doc["metrics"] if x["name"] == DURATION]
    (series,) = metric["series"]
    assert series["count"] == 1011
    assert sum(series["exponential"]["counts"]) == 1011
    assert {"le": 0.0005, "count": 1000} in series["buckets"]
