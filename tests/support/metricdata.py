"""OpenTelemetry ``MetricsData`` built by hand: exact inputs for the exposition renderer's tests.

A collection from a live ``MeterProvider`` carries wall-clock timestamps and SDK ordering; these
builders give the same types with every field chosen by the test, so rendered bytes are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

START_NS = 1_735_787_000_000_000_000
"""The start time every built point carries."""
AT_NS = 1_735_787_045_678_000_000
"""The collection time every built point carries."""

Attributes = Mapping[str, Any]
CUMULATIVE = AggregationTemporality.CUMULATIVE


def number(value: float, attributes: Attributes | None = None) -> NumberDataPoint:
    """A counter, up-down counter or gauge point."""
    return NumberDataPoint(dict(attributes or {}), START_NS, AT_NS, value)


def histogram_point(
    bounds: Sequence[float],
    counts: Sequence[int],
    total: float,
    attributes: Attributes | None = None,
    exemplars: Sequence[Exemplar] = (),
) -> HistogramDataPoint:
    """A cumulative explicit-bucket histogram point; ``counts`` has one more entry than bounds."""
    assert len(counts) == len(bounds) + 1
    return HistogramDataPoint(
        attributes=dict(attributes or {}),
        start_time_unix_nano=START_NS,
        time_unix_nano=AT_NS,
        count=sum(counts),
        sum=total,
        bucket_counts=list(counts),
        explicit_bounds=list(bounds),
        min=0.0,
        max=total,
        exemplars=list(exemplars),
    )


def counter(
    name: str, points: Sequence[NumberDataPoint], description: str = "", unit: str = ""
) -> Metric:
    """A monotonic cumulative sum."""
    return Metric(name, description, unit, Sum(list(points), CUMULATIVE, is_monotonic=True))


def updown(
    name: str, points: Sequence[NumberDataPoint], description: str = "", unit: str = ""
) -> Metric:
    """A non-monotonic cumulative sum (an up-down counter)."""
    return Metric(name, description, unit, Sum(list(points), CUMULATIVE, is_monotonic=False))


def gauge(
    name: str, points: Sequence[NumberDataPoint], description: str = "", unit: str = ""
) -> Metric:
    """A gauge."""
    return Metric(name, description, unit, Gauge(list(points)))


def histogram(
    name: str, points: Sequence[HistogramDataPoint], description: str = "", unit: str = ""
) -> Metric:
    """An explicit-bucket cumulative histogram."""
    return Metric(name, description, unit, Histogram(list(points), CUMULATIVE))


def collection(
    scopes: Mapping[str, Sequence[Metric]],
    resource: Attributes | None = None,
    version: str | None = None,
) -> MetricsData:
    """One resource whose scopes (by name, all at ``version``) hold ``metrics``, in order."""
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(dict(resource or {})),
                scope_metrics=[
                    ScopeMetrics(InstrumentationScope(name, version), list(metrics), "")
                    for name, metrics in scopes.items()
                ],
                schema_url="",
            )
        ]
    )
