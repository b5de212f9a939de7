"""What the metric stream remembers across collections: SDK exemplars, and idle SDK series.

- ``ExemplarMemory``: an SDK reservoir hands its exemplars to the first collection after they
  were offered and starts empty again. The stream keeps the latest exemplars of each series (per
  bucket, for histograms) and attaches them to every collection, so each sink sees them,
  whichever collected first.
- ``Retention``: the SDK keeps every series it ever saw; idle custom and third-party series
  leave the exports after ``retention_period`` and return as new series.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    ScopeMetrics,
    Sum,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.runtime.fork import call_in_child

__all__ = ["NEVER_IDLE", "ExemplarMemory", "Retention"]


class ExemplarMemory:
    """The latest exemplars of each SDK series, so that every collection carries them."""

    _LIMIT = 10_000  # series remembered; beyond it new series carry only their own exemplars

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str, frozenset[tuple[str, Any]]], dict[int, Any]] = {}
        self._lock = threading.Lock()
        call_in_child(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held the lock when it forked: it stays held.
        self._lock = threading.Lock()

    def keep(self, sm: ScopeMetrics) -> ScopeMetrics:
        metrics = sm.metrics
        if (
            not any(
                isinstance(m.data, Histogram | Sum) and any(p.exemplars for p in m.data.data_points)
                for m in metrics
            )
            and not self._kept
        ):
            return sm
        with self._lock:
            out = [self._metric(sm.scope.name, m) for m in metrics]
        return ScopeMetrics(scope=sm.scope, metrics=out, schema_url=sm.schema_url)

    def _metric(self, scope: str, metric: Metric) -> Metric:
        data = metric.data
        if not isinstance(data, Histogram | Sum):
            return metric
        points: list[Any] = []
        changed = False
        for p in data.data_points:
            sid = (scope, metric.name, frozenset((p.attributes or {}).items()))
            kept = self._kept.get(sid)
            if p.exemplars:
                if kept is None:
                    if len(self._kept) >= self._LIMIT:
                        points.append(p)
                        continue
                    kept = self._kept[sid] = {}
                if isinstance(p, HistogramDataPoint):
                    for e in p.exemplars:
                        kept[bisect_left(p.explicit_bounds, e.value)] = e
                else:
                    kept.clear()
                    kept.update(enumerate(p.exemplars))
            if kept is None or (p.exemplars and len(kept) == len(p.exemplars)):
                points.append(p)
                continue
            points.append(replace(p, exemplars=[kept[i] for i in sorted(kept)]))
            changed = True
        if not changed:
            return metric
        shaped: Any = replace(data, data_points=points)  # type: ignore[arg-type]
        return replace(metric, data=shaped)


# One series each, the process's own: never a cardinality risk, and an idle process's CPU time
# must not vanish from the exports.
NEVER_IDLE = frozenset({cat.SYSTEM_SCOPE})

_Sid = tuple[str, str, frozenset[tuple[str, Any]]]


class Retention:
    """Idle SDK series leave the exports, and come back as new series when they change again.

    The HTTP recorder evicts its own idle series; the SDK keeps every series it ever saw, and
    has no public way to forget one. So here a custom or third-party series whose value has not
    changed for ``period`` seconds is left out of every collection; when it changes again it
    comes back with a new start time and, for counters and histograms, only what was added since
    it left (its value at the time it left is the new zero), so backends see a new series, never a
    rise that happened while nobody looked.

    Args:
        period: Seconds a series may stay unchanged.
        wall_clock_ns: Unix time in nanoseconds; injectable for tests.
    """

    def __init__(self, period: float, wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._period_ns = int(period * 1e9)
        self._clock = wall_clock_ns
        # series -> [its value's signature, when it last changed, the baseline it left with]
        self._seen: dict[_Sid, list[Any]] = {}
        self._lock = threading.Lock()
        call_in_child(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held the lock when it forked: it stays held.
        self._lock = threading.Lock()

    def apply(self, sm: ScopeMetrics) -> ScopeMetrics:
        """``sm`` without its idle series, returning series rebased."""
        now = self._clock()
        changed = False
        metrics: list[Metric] = []
        with self._lock:
            for metric in sm.metrics:
                data = metric.data
                if not isinstance(data, Sum | Gauge | Histogram):
                    metrics.append(metric)
                    continue
                points = []
                for p in data.data_points:
                    out = self._point(sm.scope.name, metric.name, data, p, now)
                    changed |= out is not p
                    if out is not None:
                        points.append(out)
                if len(points) == len(data.data_points) and all(
                    a is b for a, b in zip(points, data.data_points, strict=True)
                ):
                    metrics.append(metric)
                else:
                    shaped: Any = replace(data, data_points=points)  # type: ignore[arg-type]
                    metrics.append(replace(metric, data=shaped))
        if not changed:
            return sm
        return ScopeMetrics(scope=sm.scope, metrics=metrics, schema_url=sm.schema_url)

    def _point(self, scope: str, name: str, data: Any, p: Any, now: int) -> Any:
        sid = (scope, name, frozenset((p.attributes or {}).items()))
        signature = (p.count, p.sum) if isinstance(p, HistogramDataPoint) else p.value
        seen = self._seen.get(sid)
        if seen is None:
            self._seen[sid] = [signature, now, None]
            return p
        if seen[0] != signature:
            seen[0], seen[1] = signature, now
            base = seen[2]
            if base is None:
                return p
            if isinstance(data, Gauge) or (isinstance(data, Sum) and not data.is_monotonic):
                seen[2] = None  # a level comes back as it is
                return p
            if base.start == 0:  # back after it left: measured from its value then, from now
                seen[2] = base = base._replace(start=now)
            return _rebased(p, base)
        idle = now - seen[1] >= self._period_ns
        base = seen[2]
        if base is not None and base.start == 0:
            return None  # still away
        if idle:
            seen[2] = _Baseline(p, 0)  # leaves (again): its value now is the zero it returns from
            return None
        return p if base is None else _rebased(p, base)


class _Baseline(NamedTuple):
    """A series' point when it left the exports, and when it came back (0: still away)."""

    point: Any
    start: int


def _rebased(p: Any, base: _Baseline) -> Any:
    """``p`` measured from ``base``: what was added since, from its return on."""
    old = base.point
    if isinstance(p, HistogramDataPoint):
        if len(p.bucket_counts) != len(old.bucket_counts):
            return replace(p, start_time_unix_nano=base.start)
        return replace(
            p,
            start_time_unix_nano=base.start,
            count=p.count - old.count,
            sum=p.sum - old.sum,
            bucket_counts=[a - b for a, b in zip(p.bucket_counts, old.bucket_counts, strict=True)],
            min=_absent(),
            max=_absent(),
        )
    return replace(p, start_time_unix_nano=base.start, value=p.value - old.value)


def _absent() -> float:
    # min/max of a difference of cumulative histograms are unknown; None encodes "absent" in OTLP.
    return None  # type: ignore[return-value]
