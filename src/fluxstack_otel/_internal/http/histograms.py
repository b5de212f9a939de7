"""The histogram points of the HTTP projection: per-point accumulators, merged series, exemplars.

Enters: the recorder's per-series buckets (classic, and exponential where kept) and exemplar
slots, added into one accumulator per projected point. Leaves: ``Histogram`` metrics whose points
are classic ``HistogramDataPoint``s, or ``DualHistogramDataPoint``s carrying both schemes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.dual import DualHistogramDataPoint
from fluxstack_otel._internal.metrics.exponential import ExponentialSnapshot, merged

__all__ = ["HistAcc", "add_exemplars", "add_hist", "hist_metric"]

_K = TypeVar("_K", bound=tuple[object, ...])
# (duration, Unix time in ns, trace id, span id): the latest exemplar of one bucket
_Exemplar = tuple[float, int, int, int]

# The recorder keeps no min/max (they would cost compares on every request and cannot be turned
# into deltas). The SDK types say float, but None is what OTLP encodes as "absent", and every
# consumer in this package treats None as not recorded.
_NOT_RECORDED: float = cast(float, None)


class HistAcc:
    __slots__ = ("buckets", "count", "exemplars", "exp", "max_size", "start_ns", "sum")

    def __init__(
        self, buckets: list[int], start_ns: int, exp: ExponentialSnapshot | None, max_size: int
    ) -> None:
        self.count = 0
        self.sum: float = 0.0
        self.buckets = buckets
        self.start_ns = start_ns
        self.exemplars: list[_Exemplar | None] | None = None
        self.exp = exp
        self.max_size = max_size


def add_exemplars(acc: HistAcc, slots: tuple[_Exemplar | None, ...]) -> None:
    """Merge a series' exemplars into a projected point's: the latest per bucket wins."""
    if acc.exemplars is None:
        acc.exemplars = list(slots)
        return
    mine = acc.exemplars
    for i, theirs in enumerate(slots):
        if theirs is None:
            continue
        current = mine[i]
        if current is None or theirs[1] > current[1]:
            mine[i] = theirs


def exemplar_points(acc: HistAcc) -> list[Exemplar]:
    if acc.exemplars is None:
        return []
    return [
        Exemplar(None, value, at, span_id, trace_id)
        for value, at, trace_id, span_id in filter(None, acc.exemplars)
    ]


def add_hist(
    into: dict[_K, HistAcc],
    key: _K,
    count: int,
    buckets: tuple[int, ...],
    total: float,
    start_ns: int,
    exp: ExponentialSnapshot | None,
    max_size: int,
) -> None:
    acc = into.get(key)
    if acc is None:  # the common case: one recorded series makes one point
        acc = into[key] = HistAcc(list(buckets), start_ns, exp, max_size)
        acc.count = count
        acc.sum = float(total)  # a float, as the sum of an accumulation from 0.0 would be
        return
    if acc.exp is not None and exp is not None:
        acc.exp = merged(acc.exp, exp, max_size)
    acc.start_ns = min(acc.start_ns, start_ns)
    acc.count += count
    acc.sum += total
    b = acc.buckets
    for i, n in enumerate(buckets):
        if n:
            b[i] += n


def hist_metric(
    spec: cat.MetricSpec,
    series: dict[_K, HistAcc],
    bounds: tuple[float, ...],
    now_ns: int,
    label: Callable[[cat.MetricSpec, tuple[object, ...]], dict[str, str]],
) -> Metric:
    points = [_hist_point(acc, label(spec, key), bounds, now_ns) for key, acc in series.items()]
    return Metric(
        name=spec.name,
        description=spec.help,
        unit=spec.unit,
        data=Histogram(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
        ),
    )


def _hist_point(
    acc: HistAcc, attributes: dict[str, str], bounds: tuple[float, ...], now_ns: int
) -> HistogramDataPoint:
    fields: dict[str, Any] = {
        "attributes": attributes,
        "start_time_unix_nano": acc.start_ns,
        "time_unix_nano": now_ns,
        "count": acc.count,
        "sum": acc.sum,
        "bucket_counts": list(acc.buckets),
        "explicit_bounds": list(bounds),
        "min": _NOT_RECORDED,
        "max": _NOT_RECORDED,
        "exemplars": exemplar_points(acc),
    }
    if acc.exp is None:
        return HistogramDataPoint(**fields)
    return DualHistogramDataPoint(**fields, exponential=acc.exp, max_size=acc.max_size)
