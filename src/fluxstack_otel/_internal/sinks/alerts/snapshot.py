"""Compact copies of the metric stream's points that alert rules read, kept in a short history.

A collection is OpenTelemetry ``MetricsData``; the alert processor keeps only the metrics its
rules read, as small immutable points keyed by metric name and label set, stamped with the
time they were taken.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from itertools import chain
from types import MappingProxyType
from typing import NamedTuple, TypeAlias

from opentelemetry.sdk.metrics.export import Gauge, Histogram, Metric, MetricsData, Sum

from fluxstack_otel._internal.metrics.dual import exponential_of
from fluxstack_otel._internal.metrics.exponential import ExponentialSnapshot
from fluxstack_otel._internal.metrics.points import metrics_of
from fluxstack_otel._internal.sinks.alerts.rules import Labels

__all__ = [
    "HistogramPoint",
    "NumberPoint",
    "Point",
    "Sample",
    "Snapshot",
    "take_sample",
]


class NumberPoint(NamedTuple):
    """A counter's cumulative value (with its start time) or a gauge's value (start 0)."""

    value: float
    start_ns: int = 0


class HistogramPoint(NamedTuple):
    """A cumulative histogram: per-bucket counts, the last one the ``+Inf`` bucket."""

    counts: tuple[int, ...]
    bounds: tuple[float, ...]
    sum: float
    start_ns: int = 0
    exponential: ExponentialSnapshot | None = None
    """The same values' exponential buckets, where the histogram keeps them."""

    @property
    def observations(self) -> int:
        """Observations in every bucket."""
        return sum(self.counts)


Point: TypeAlias = NumberPoint | HistogramPoint
Snapshot: TypeAlias = Mapping[str, Mapping[Labels, Point]]
"""metric name -> label set -> point."""


class Sample(NamedTuple):
    """A snapshot and the clock reading (Unix seconds) when it was collected.

    ``read_at`` holds, per metric, the time its points say they were read (Unix seconds): a
    collection of many series takes a while, and a rate divides by the interval between the
    two readings it uses, not between two clock readings taken around them.
    """

    time: float
    snapshot: Snapshot
    read_at: Mapping[str, float] = MappingProxyType({})

    def time_of(self, metric: str) -> float:
        """When ``metric`` was read in this sample (the sample's time if its points do not say)."""
        return self.read_at.get(metric, self.time)


def take_sample(
    now: float, data: MetricsData, names: Collection[str], totals: Iterable[Metric] = ()
) -> Sample:
    """The sample of one collection at clock reading ``now``: the named metrics' points, and
    when each metric was read (its points' latest ``time_unix_nano``); ``totals`` are metrics
    read apart (``HttpRecorder.totals``), in place of the same names in ``data``."""
    out: dict[str, dict[Labels, Point]] = {}
    read_at: dict[str, float] = {}
    totals = list(totals)
    instead = {m.name for m in totals}
    named = (m for _, _, m in metrics_of(data) if m.name in names and m.name not in instead)
    for metric in chain(named, totals):
        series = out.setdefault(metric.name, {})
        payload = metric.data
        stamp = max((p.time_unix_nano for p in payload.data_points), default=0)
        if stamp:
            read_at[metric.name] = max(read_at.get(metric.name, 0.0), stamp / 1e9)
        if isinstance(payload, Histogram):
            for hp in payload.data_points:
                series[_labels(hp.attributes)] = HistogramPoint(
                    tuple(hp.bucket_counts), tuple(hp.explicit_bounds), hp.sum,
                    hp.start_time_unix_nano, exponential_of(hp),
                )  # fmt: skip
        elif isinstance(payload, Sum):
            for p in payload.data_points:
                series[_labels(p.attributes)] = NumberPoint(float(p.value), p.start_time_unix_nano)
        elif isinstance(payload, Gauge):
            for p in payload.data_points:
                series[_labels(p.attributes)] = NumberPoint(float(p.value))
    return Sample(now, out, read_at)


def _labels(attributes: Mapping[str, object] | None) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in (attributes or {}).items()))
