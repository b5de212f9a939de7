"""metrics/points.py: the one spelling of numbers, attribute values and times in every sink."""

from __future__ import annotations

import math

from opentelemetry.sdk.metrics import export as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from fluxstack_otel._internal.metrics.points import (
    attribute_text,
    json_number,
    metrics_of,
    prometheus_number,
    rfc3339,
    rfc3339_ns,
)


def test_prometheus_numbers_are_written_as_the_text_formats_want() -> None:
    """Integers stay integers, floats round-trip, non-finite values get Prometheus spellings."""
    assert [prometheus_number(v) for v in (3, 0.25, 5.0, 1e300, math.nan, math.inf, -math.inf)] == [
        "3", "0.25", "5.0", "1e+300", "NaN", "+Inf", "-Inf",
    ]  # fmt: skip
    assert float(prometheus_number(0.1 + 0.2)) == 0.1 + 0.2


def test_json_numbers_are_strict_json() -> None:
    """Finite numbers pass through; NaN and infinities become the Prometheus strings."""
    assert [json_number(v) for v in (3, 0.5, math.nan, math.inf, -math.inf)] == [
        3, 0.5, "NaN", "+Inf", "-Inf",
    ]  # fmt: skip


def test_attribute_values_become_label_text() -> None:
    """Strings as they are, booleans lower-case, sequences bracketed and comma-joined."""
    assert [attribute_text(v) for v in ("a", True, False, 7, 1.5, [1, "x", True], ())] == [
        "a", "true", "false", "7", "1.5", "[1,x,true]", "[]",
    ]  # fmt: skip


def test_times_are_rfc3339_in_utc_with_milliseconds() -> None:
    """Seconds and nanoseconds give the same millisecond-precision UTC text, truncated."""
    assert rfc3339(1_735_787_045.6789) == "2025-01-02T03:04:05.678Z"
    assert rfc3339_ns(1_735_787_045_678_900_000) == "2025-01-02T03:04:05.678Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"


def test_times_out_of_range_are_clamped_not_raised() -> None:
    """A deadline a huge interval away, a negative or a NaN time still gives RFC 3339 text."""
    assert rfc3339(1e300) == rfc3339(math.inf) == "9999-12-31T23:59:59.000Z"
    assert rfc3339(-5.0) == rfc3339(math.nan) == "1970-01-01T00:00:00.000Z"


def test_metrics_of_walks_every_metric_with_its_resource_and_scope() -> None:
    """Every metric of every scope of every resource, in order, with where it comes from."""
    gauge = otel.Gauge([])
    r1, r2 = Resource({"n": 1}), Resource({"n": 2})
    s1, s2 = InstrumentationScope("a"), InstrumentationScope("b")

    def metric(name: str) -> otel.Metric:
        return otel.Metric(name, None, None, gauge)

    data = otel.MetricsData([
        otel.ResourceMetrics(r1, [otel.ScopeMetrics(s1, [metric("x"), metric("y")], ""),
                                  otel.ScopeMetrics(s2, [metric("z")], "")], ""),
        otel.ResourceMetrics(r2, [otel.ScopeMetrics(s1, [metric("w")], "")], ""),
    ])  # fmt: skip
    walked = [(e.resource, e.scope.name, e.metric.name) for e in metrics_of(data)]
    assert walked == [(r1, "a", "x"), (r1, "a", "y"), (r1, "b", "z"), (r2, "a", "w")]
