"""The plugin's alert metrics evaluate as docs/migrating-from-fluxstack.md states: default
aggregation per kind, per-series values over the window, the millisecond alias scaled by 1000."""

from __future__ import annotations

from typing import Any

import pytest

from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.sinks.alerts.evaluate import values_of
from fluxstack_otel._internal.sinks.alerts.rules import Rule, compile_rules
from fluxstack_otel._internal.sinks.alerts.snapshot import HistogramPoint, NumberPoint, Sample

NO_THRESHOLDS = {"response_time": None, "error_rate": None, "memory_usage": None, "cpu_usage": None}
BOUNDS = (0.5, 1.0, 2.0, 4.0)
DUR_A = (("method", "GET"), ("route", "/a"), ("status_code", "200"))
DUR_B = (("method", "GET"), ("route", "/b"), ("status_code", "200"))
GET_A = (("method", "GET"), ("route", "/a"))


def rule(metric: str, **extra: Any) -> Rule:
    """One plugin-style alert, compiled as the processor compiles it."""
    alert = {"metric": metric, "operator": ">", "value": 1, "severity": "warning", **extra}
    (compiled,) = compile_rules(load_config({"alerts": [alert], "thresholds": NO_THRESHOLDS}))
    return compiled


@pytest.mark.parametrize(
    ("metric", "aggregation"),
    [
        ("http_request_duration_ms", "p95"),
        ("http_request_duration_seconds", "p95"),
        ("http_request_size_bytes", "p95"),
        ("http_response_size_bytes", "p95"),
        ("http_requests_total", "rate"),
        ("http_responses_total", "rate"),
        ("http_errors_total", "rate"),
        ("process_cpu_user_seconds_total", "rate"),
        ("process_memory_rss_bytes", "value"),
        ("process_memory_heap_used_bytes", "value"),
        ("nodejs_eventloop_lag_seconds", "value"),
        ("system_memory_total_bytes", "value"),
        ("system_load_average_1m", "value"),
    ],
)
def test_each_plugin_metric_gets_the_documented_default(metric: str, aggregation: str) -> None:
    """Histograms default to p95, counters to rate, gauges to value, over a 60 s window."""
    compiled = rule(metric)
    assert compiled.expr.aggregation == aggregation  # type: ignore[union-attr]
    assert compiled.expr.by_series is True  # type: ignore[union-attr]
    assert compiled.window == 60.0


def test_duration_ms_is_the_p95_of_the_windows_buckets_per_series_times_1000() -> None:
    """http_request_duration_ms: p95 of the bucket increases since the baseline, per series, x1000."""
    compiled = rule("http_request_duration_ms", value=2000)
    name = cat.HTTP_REQUEST_DURATION.name
    before = {name: {DUR_A: HistogramPoint((100, 0, 0, 0, 0), BOUNDS, 10.0, 1)}}
    # Since the baseline: route /a got 10 requests between 2 s and 4 s; /b none but its first.
    now = {
        name: {
            DUR_A: HistogramPoint((100, 0, 0, 10, 0), BOUNDS, 40.0, 1),
            DUR_B: HistogramPoint((1, 0, 0, 0, 0), BOUNDS, 0.1, 1),
        }
    }
    values = values_of(compiled, [Sample(0.0, before), Sample(60.0, now)])
    assert values[DUR_A] == pytest.approx((2.0 + 0.95 * 2.0) * 1000)  # inside the 2-4 s bucket
    assert values[DUR_B] == pytest.approx(0.95 * 0.5 * 1000)  # new since the baseline: all of it


def test_a_counter_is_a_rate_per_second_unless_aggregation_is_value() -> None:
    """http_requests_total: increase / seconds between readings; ``value`` is the raw total."""
    name = cat.HTTP_REQUESTS.name
    history = [
        Sample(0.0, {name: {GET_A: NumberPoint(100.0, 1)}}),
        Sample(60.0, {name: {GET_A: NumberPoint(160.0, 1)}}),
    ]
    assert values_of(rule(name), history) == {GET_A: pytest.approx(1.0)}
    assert values_of(rule(name, aggregation="value"), history) == {GET_A: 160.0}


def test_a_gauge_is_its_latest_value_and_needs_no_baseline() -> None:
    """process_memory_rss_bytes: the newest sample's value, from the very first evaluation."""
    name = cat.PROCESS_RSS.name
    history = [Sample(0.0, {name: {(): NumberPoint(5e8)}})]
    assert values_of(rule(name), history) == {(): 5e8}
    assert values_of(rule("http_requests_total"), history) == {}  # a rate needs two samples
