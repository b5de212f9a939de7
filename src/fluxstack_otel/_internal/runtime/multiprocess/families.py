"""Metric families of a host's workers: OTel points to plain JSON and back, summed across workers.

A family is one metric of one scope: ``(scope, name) -> [kind, description, unit, {attributes:
payload}]``, where a payload is ``[value]`` or ``[count, sum, buckets, bounds]``. Workers publish
their families as JSON (``encode_families``); the answering worker decodes them and merges them:
counters and histograms are summed, gauges are kept per worker with a ``pid`` label, and the host
gauges (``HOST_GAUGES``) are one value. ``_multiprocess`` does the files, locks and liveness.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics import exponential as exp
from fluxstack_otel._internal.metrics.assemble import one_resource, scope_of
from fluxstack_otel._internal.metrics.dual import DualHistogramDataPoint, exponential_of
from fluxstack_otel._internal.metrics.points import metrics_of
from fluxstack_otel._internal.runtime.failures import report_failure

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "HOST_GAUGES",
    "SUMMED",
    "UPDOWN",
    "Attrs",
    "Families",
    "add_payloads",
    "attrs_key",
    "decode_families",
    "encode_families",
    "family_points",
    "merge_families",
    "to_metrics_data",
]

Attrs = tuple[tuple[str, Any], ...]
# (scope, name) -> [kind, description, unit, {attrs: payload}]; a payload is [value] or
# [count, sum, buckets, bounds], and for a histogram with exponential buckets (``metrics.dual``)
# a fifth item [scale, offset, counts, zero_count, max_size].
Families = dict[tuple[str, str], list[Any]]

COUNTER, UPDOWN, GAUGE, HISTOGRAM = "counter", "updown", "gauge", "histogram"
SUMMED = (COUNTER, HISTOGRAM)
"""The kinds summed across workers; the others are kept per worker."""
# Gauges that describe the host rather than the worker: one value, no ``pid`` label.
HOST_GAUGES = frozenset(
    {cat.SYSTEM_MEMORY_TOTAL.name, cat.SYSTEM_LOAD_1M.name, cat.SYSTEM_CPU_CORES.name}
)


def family_points(
    data: MetricsData,
) -> Iterator[tuple[str, str, str, str, str, Attrs, int, list[Any]]]:
    """(scope, name, kind, description, unit, attributes, start, payload) of every point."""
    for _, scope, m in metrics_of(data):
        d = m.data
        if isinstance(d, Histogram):
            kind = HISTOGRAM
        elif isinstance(d, Sum):
            kind = COUNTER if d.is_monotonic else UPDOWN
        elif isinstance(d, Gauge):
            kind = GAUGE
        else:  # an SDK instrument's exponential histogram: not aggregated across workers
            continue
        for p in d.data_points:
            attrs = attrs_key(p.attributes)
            if isinstance(p, HistogramDataPoint):
                bounds = [float(b) for b in p.explicit_bounds]
                payload: list[Any] = [p.count, p.sum, list(p.bucket_counts), bounds]
                snap = exponential_of(p)
                if snap is not None:
                    size = getattr(p, "max_size", exp.DEFAULT_MAX_SIZE)
                    payload.append([*_encoded(snap), size])
            else:
                payload = [p.value]
            yield (scope.name, m.name, kind, m.description or "", m.unit or "",
                   attrs, int(p.start_time_unix_nano or 0), payload)  # fmt: skip


def attrs_key(attributes: Any) -> Attrs:
    return tuple(
        sorted(
            (str(k), tuple(v) if isinstance(v, list | tuple) else v)
            for k, v in (attributes or {}).items()
        )
    )


def add_payloads(kind: str, a: list[Any], b: list[Any]) -> list[Any] | None:
    """The sum of two payloads; None for histograms with different bucket bounds."""
    if kind != HISTOGRAM:
        return [a[0] + b[0]]
    if list(a[3]) != list(b[3]) or len(a[2]) != len(b[2]):
        return None
    total = [a[0] + b[0], a[1] + b[1], [x + y for x, y in zip(a[2], b[2], strict=True)], a[3]]
    if len(a) > 4 and len(b) > 4:  # both have exponential buckets: merged exactly
        both = exp.merged(_snapshot(a[4]), _snapshot(b[4]), max(a[4][4], b[4][4]))
        total.append([*_encoded(both), max(a[4][4], b[4][4])])
    return total


def _snapshot(e: list[Any]) -> exp.ExponentialSnapshot:
    return exp.ExponentialSnapshot(int(e[0]), int(e[1]), tuple(e[2]), int(e[3]))


def _encoded(snap: exp.ExponentialSnapshot) -> list[Any]:
    return [snap.scale, snap.offset, list(snap.counts), snap.zero_count]


def merge_families(into: Families, source: Families, *, summed_only: bool, pid: int | None) -> None:
    """Add ``source`` to ``into``: counters and histograms summed, gauges per worker (``pid``)."""
    for key, (kind, desc, unit, points) in source.items():
        if kind not in SUMMED and (summed_only or (pid is not None and key[1] in HOST_GAUGES)):
            continue
        family = into.setdefault(key, [kind, desc, unit, {}])
        if family[0] != kind:
            continue  # one name, two kinds across workers: the first seen wins
        target = family[3]
        for attrs, payload in points.items():
            if kind not in SUMMED:
                if key[1] not in HOST_GAUGES:
                    label = pid if pid is not None else os.getpid()
                    attrs = (*(a for a in attrs if a[0] != "pid"), ("pid", str(label)))
                target[attrs] = payload
                continue
            existing = target.get(attrs)
            if existing is None:
                target[attrs] = payload
            else:
                total = add_payloads(kind, existing, payload)
                if total is None:
                    report_failure(f"summing {key[1]!r} across workers (bucket bounds differ)",
                                   exc_info=False, level=logging.WARNING)  # fmt: skip
                else:
                    target[attrs] = total


def encode_families(families: Families) -> list[Any]:
    return [
        [scope, name, kind, desc, unit, [[[list(kv) for kv in a], *p] for a, p in pts.items()]]
        for (scope, name), (kind, desc, unit, pts) in families.items()
    ]


def decode_families(encoded: list[Any]) -> Families:
    families: Families = {}
    for scope, name, kind, desc, unit, points in encoded:
        families[(scope, name)] = [
            kind,
            desc,
            unit,
            {
                tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in p[0]): list(p[1:])
                for p in points
            },
        ]
    return families


def to_metrics_data(
    families: Families, resource: Resource, start_ns: int, now_ns: int
) -> MetricsData:
    """The families as cumulative OTel data, every point started at ``start_ns``."""
    scopes: dict[str, list[Metric]] = {}
    start = start_ns
    for (scope, name), (kind, desc, unit, points) in families.items():
        if kind == HISTOGRAM:
            data: Any = Histogram(
                data_points=[_histogram_point(a, p, start, now_ns) for a, p in points.items()],
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
            )
        else:
            numbers = [
                NumberDataPoint(
                    attributes=dict(a),
                    start_time_unix_nano=start,
                    time_unix_nano=now_ns,
                    value=p[0],
                )
                for a, p in points.items()
            ]
            if kind == GAUGE:
                data = Gauge(data_points=numbers)
            else:
                data = Sum(
                    data_points=numbers,
                    aggregation_temporality=AggregationTemporality.CUMULATIVE,
                    is_monotonic=kind == COUNTER,
                )
        metric = Metric(name=name, description=desc, unit=unit, data=data)
        scopes.setdefault(scope, []).append(metric)
    return one_resource(resource, (scope_of(InstrumentationScope(s), m) for s, m in scopes.items()))


def _histogram_point(a: Attrs, p: list[Any], start: int, now_ns: int) -> HistogramDataPoint:
    fields: dict[str, Any] = {
        "attributes": dict(a),
        "start_time_unix_nano": start,
        "time_unix_nano": now_ns,
        "count": p[0],
        "sum": p[1],
        "bucket_counts": list(p[2]),
        "explicit_bounds": list(p[3]),
        "min": _absent(),
        "max": _absent(),
    }
    if len(p) > 4:
        return DualHistogramDataPoint(**fields, exponential=_snapshot(p[4]), max_size=int(p[4][4]))
    return HistogramDataPoint(**fields)


def _absent() -> float:
    # Sums of histograms have no known min/max; None encodes "absent" in OTLP.
    return None  # type: ignore[return-value]
