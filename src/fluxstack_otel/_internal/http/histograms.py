"""The histogram points of the HTTP projection: per-point accumulators, merged series, exemplars.

Enters: the recorder's per-series buckets (classic, and exponential where kept) and exemplar
slots, added into one accumulator per projected point. Leaves: ``Histogram`` metrics whose points
are classic ``HistogramDataPoint``s, or ``DualHistogramDataPoint``s carrying both schemes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, cast

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.dual import DualHistogramDataPoint
from fluxstack_otel._internal.metrics.exponential import ExponentialSnapshot, merged

__all__ = ["HistAcc", "add_exemplars", "add_hist", "hist_metric", "number_point"]

_K = TypeVar("_K", bound=tuple[object, ...])
# (duration, Unix time in ns, trace id, span id): the latest exemplar of one bucket
_Exemplar = tuple[float, int, int, int]

# The recorder keeps no min/max (they would cost compares on every request and cannot be turned
# into deltas). The SDK types say float, but None is what OTLP encodes as "absent", and every
# consumer in this package treats None as not recorded.
_NOT_RECORDED: float = cast(float, None)

_P = TypeVar("_P")
_new = object.__new__


def _fields_are(cls: type, names: tuple[str, ...]) -> bool:
    return tuple(f.name for f in dataclasses.fields(cls)) == names


# A collection builds a point per series: filling a point's __dict__ costs a third of the frozen
# dataclass __init__ (0.37 µs against 1.18 µs for a NumberDataPoint, benchmarks/scale.py), and
# it is the same object. Only while the SDK's point types have exactly the fields set here: an
# SDK that adds one gets its own constructor.
_FAST_NUMBER = _fields_are(
    NumberDataPoint, ("attributes", "start_time_unix_nano", "time_unix_nano", "value", "exemplars")
)
_HIST_FIELDS = (
    "attributes", "start_time_unix_nano", "time_unix_nano", "count", "sum", "bucket_counts",
    "explicit_bounds", "min", "max", "exemplars",
)  # fmt: skip
_FAST_HIST = _fields_are(HistogramDataPoint, _HIST_FIELDS) and _fields_are(
    DualHistogramDataPoint, (*_HIST_FIELDS, "exponential", "max_size")
)


def _made(cls: type[_P], fields: dict[str, Any], fast: bool) -> _P:
    if not fast:
        return cls(**fields)
    point = _new(cls)
    point.__dict__.update(fields)
    return point


def number_point(
    attributes: dict[str, str], start_ns: int, now_ns: int, value: int
) -> NumberDataPoint:
    """A NumberDataPoint without exemplars (the recorder's counters and gauges keep none)."""
    fields = {
        "attributes": attributes,
        "start_time_unix_nano": start_ns,
        "time_unix_nano": now_ns,
        "value": value,
        "exemplars": [],
    }
    return _made(NumberDataPoint, fields, _FAST_NUMBER)


class HistAcc:
    __slots__ = ("buckets", "count", "exemplars", "exp", "max_size", "start_ns", "sum")

    def __init__(
        self,
        count: int,
        total: float,
        buckets: list[int] | tuple[int, ...],
        start_ns: int,
        exp: ExponentialSnapshot | None,
        max_size: int,
    ) -> None:
        self.count = count
        self.sum: float = total
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
        # The series' own counts until another series merges in (most points are one series);
        # the sum a float, as the sum of an accumulation from 0.0 would be.
        into[key] = HistAcc(count, float(total), buckets, start_ns, exp, max_size)
        return
    if acc.exp is not None and exp is not None:
        acc.exp = merged(acc.exp, exp, max_size)
    acc.start_ns = min(acc.start_ns, start_ns)
    acc.count += count
    acc.sum += total
    b = acc.buckets
    if isinstance(b, tuple):  # the first series' own counts: copied before adding to them
        b = acc.buckets = list(b)
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
        return _made(HistogramDataPoint, fields, _FAST_HIST)
    fields["exponential"] = acc.exp
    fields["max_size"] = acc.max_size
    return _made(DualHistogramDataPoint, fields, _FAST_HIST)
