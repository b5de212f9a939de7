"""OpenTelemetry ``MetricsData`` built by hand: exact inputs for the exposition renderer's tests.

A collection from a live ``MeterProvider`` carries wall-clock timestamps and SDK ordering; these
builders give the same types with every field chosen by the test, so rendered bytes are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics import export as ex
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

START_NS = 1_735_787_000_000_000_000
"""The start time every built point carries."""
AT_NS = 1_735_787_045_678_000_000
"""The collection time every built point carries."""

Attributes = Mapping[str, Any]
CUMULATIVE = ex.AggregationTemporality.CUMULATIVE


def number(value: float, attributes: Attributes | None = None) -> ex.NumberDataPoint:
    """A counter, up-down counter or gauge point."""
    return ex.NumberDataPoint(dict(attributes or {}), START_NS, AT_NS, value)


def histogram_point(
    bounds: Sequence[float],
    counts: Sequence[int],
    total: float,
    attributes: Attributes | None = None,
    exemplars: Sequence[Exemplar] = (),
) -> ex.HistogramDataPoint:
    """A cumulative explicit-bucket histogram point; ``counts`` has one more entry than bounds."""
    assert len(counts) == len(bounds) + 1
    return ex.HistogramDataPoint(
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
    name: str, points: Sequence[ex.NumberDataPoint], description: str = "", unit: str = ""
) -> ex.Metric:
    """A monotonic cumulative sum."""
    return ex.Metric(name, description, unit, ex.Sum(list(points), CUMULATIVE, is_monotonic=True))


def updown(
    name: str, points: Sequence[ex.NumberDataPoint], description: str = "", unit: str = ""
) -> ex.Metric:
    """A non-monotonic cumulative sum (an up-down counter)."""
    return ex.Metric(name, description, unit, ex.Sum(list(points), CUMULATIVE, is_monotonic=False))


def gauge(
    name: str, points: Sequence[ex.NumberDataPoint], description: str = "", unit: str = ""
) -> ex.Metric:
    """A gauge."""
    return ex.Metric(name, description, unit, ex.Gauge(list(points)))


def histogram(
    name: str, points: Sequence[ex.HistogramDataPoint], description: str = "", unit: str = ""
) -> ex.Metric:
    """An explicit-bucket cumulative histogram."""
    return ex.Metric(name, description, unit, ex.Histogram(list(points), CUMULATIVE))


def collection(
    scopes: Mapping[str, Sequence[ex.Metric]],
    resource: Attributes | Resource | None = None,
    version: str | None = None,
) -> ex.MetricsData:
    """One resource (its attributes, or itself) whose scopes (by name, all at ``version``) hold
    ``metrics``, in order."""
    if not isinstance(resource, Resource):
        resource = Resource(dict(resource or {}))
    return ex.MetricsData(
        resource_metrics=[
            ex.ResourceMetrics(
                resource=resource,
                scope_metrics=[
                    ex.ScopeMetrics(InstrumentationScope(name, version), list(metrics), "")
                    for name, metrics in scopes.items()
                ],
                schema_url="",
            )
        ]
    )


def by_name(metrics: Sequence[ex.Metric]) -> dict[str, ex.Metric]:
    """Metrics keyed by their name."""
    return {m.name: m for m in metrics}


def points(metric: ex.Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    """A sum's or histogram's points keyed by their attribute set."""
    data = metric.data
    assert isinstance(data, ex.Sum | ex.Histogram)
    return {frozenset(p.attributes.items()): p for p in data.data_points}


def collected_points(data: ex.MetricsData | None, name: str) -> list[Any]:
    """Every point of the metrics named ``name`` in one collection, in order."""
    assert data is not None
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points  # type: ignore[union-attr]
    ]
