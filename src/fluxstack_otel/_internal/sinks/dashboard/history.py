"""The dashboard's history: a bounded ring of what happened in each interval, kept server-side.

A page opened now draws the last minutes at once, and every rate, ratio and quantile it shows
comes from two samples the server took, never from one document, so the first paint is already
right and nothing unknown reads as zero.

Every ``step`` seconds ``sample`` collects the stream (the host's under multiprocess, so one
worker's page shows the whole host) and turns the difference from the previous collection into
one *point*: the requests, errors, CPU seconds and histogram buckets added during the interval,
plus the gauges as read (memory, loop lag, load, CPUs) and the active alerts. Differences are
taken per series, as PromQL's ``increase`` does: a series new since the previous sample counts
from zero, one that went down restarted (eviction, a worker's reset) and counts from zero too.
The first sample is only a baseline; the page shows a dash until a second one exists.

A point is stored as its compact JSON text, so the ring's memory is about the length of that text
(0.3 KB with a few routes; ``memory()`` counts it) and serving it is a join. The
busiest ``MAX_ROUTES`` routes of an interval keep a per-route entry (the sparklines), as
``[index, requests, errors]`` into the section's ``routes`` names; the others are in the totals
only.

A point's intervals are its readings' own: ``dt`` between the two readings of the HTTP metrics,
``cdt`` between the CPU's (a large collection takes a while between the two). With
``histograms: exponential`` a histogram's entry also carries ``"e"`` (``docs/dashboard.md``).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.dual import classic_of, exponential_of
from fluxstack_otel._internal.metrics.exponential import (
    DEFAULT_MAX_SIZE,
    ExponentialSnapshot,
    merged,
    subtracted,
)

__all__ = ["MAX_POINTS", "MAX_ROUTES", "History", "ring_shape"]

MAX_POINTS = 720
"""Points a ring holds at most, whatever ``dashboard.history`` asks: a long history is sampled
more coarsely rather than kept in more memory."""
MAX_ROUTES = 20
"""Routes with an entry of their own in one point (the busiest of the interval)."""

_COUNTERS = (cat.HTTP_REQUESTS, cat.HTTP_ERRORS, cat.PROCESS_CPU_USER)
_HISTOGRAMS = (cat.HTTP_REQUEST_DURATION, cat.HTTP_RESPONSE_SIZE)
_GAUGES: dict[str, tuple[str, Callable[[list[float]], float]]] = {
    # name -> (its key in a point, how the series of several workers combine: multiprocess)
    cat.PROCESS_RSS.name: ("rss", sum),
    cat.PROCESS_HEAP_USED.name: ("heap", sum),
    cat.EVENT_LOOP_LAG.name: ("lag", max),
    cat.SYSTEM_LOAD_1M.name: ("load", max),
    cat.SYSTEM_CPU_CORES.name: ("cores", max),
    cat.SYSTEM_MEMORY_TOTAL.name: ("mem", max),
}
_WANTED = frozenset([m.name for m in _COUNTERS] + [m.name for m in _HISTOGRAMS] + list(_GAUGES))

Labels = tuple[tuple[str, str], ...]


class _Hist(NamedTuple):
    total: int
    sum: float
    buckets: tuple[int, ...]  # per bucket, the +Inf one last (not cumulative)
    bounds: tuple[float, ...]
    exponential: ExponentialSnapshot | None = None
    max_size: int = DEFAULT_MAX_SIZE


class _View(NamedTuple):
    """One collection, reduced to what the points need."""

    counters: dict[str, dict[Labels, float]]
    histograms: dict[str, dict[Labels, _Hist]]
    gauges: dict[str, list[float]]
    read_at: dict[str, float]
    """Per metric, when its points say it was read (Unix seconds)."""


def ring_shape(history: float, collect_interval: float) -> tuple[int, float]:
    """(points, step): how many points a ring of ``history`` seconds holds, and how far apart.

    One point per ``collect_interval``, or fewer, further apart, when that would pass
    ``MAX_POINTS``; ``(0, collect_interval)`` when ``history`` is 0 (no ring).
    """
    if history <= 0:
        return 0, collect_interval
    step = max(collect_interval, history / MAX_POINTS)
    return max(1, min(MAX_POINTS, math.ceil(history / step - 1e-9))), step


class History:
    """The ring of points, filled by ``sample`` and read by ``encoded``.

    Args:
        collect: Returns the stream's cumulative data now.
        alerts: Returns the active alerts (``[{"name", "state", "severity", ...}]``).
        points: Points kept; the oldest goes when a new one comes.
        step: Seconds between samples (written into the section for the page).
        clock: Unix time, injectable for tests.
    """

    def __init__(
        self,
        collect: Callable[[], MetricsData],
        alerts: Callable[[], Iterable[Mapping[str, Any]]],
        *,
        points: int,
        step: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._collect = collect
        self._alerts = alerts
        self._step = step
        self._clock = clock
        self._lock = threading.Lock()
        # The points' texts, and their times apart in an array of doubles: 8 bytes a point
        # rather than a float object and a tuple.
        self._ring: deque[bytes] = deque(maxlen=max(1, points))
        self._times: array[float] = array("d")
        self._last: tuple[float, float, _View] | None = None  # (clock, point time, view)
        self._bounds: dict[str, tuple[float, ...]] = {}
        # Route names are written once, in the section; a point refers to them by index. They
        # are as many as the recorder's routes, which its cardinality cap bounds.
        self._routes: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every point and the baseline (a forked child starts its own history)."""
        with self._lock:
            self._ring.clear()
            del self._times[:]
            self._last = None
            self._bounds = {}
            self._routes = {}

    def sample(self) -> None:
        """Collect now and append the interval since the previous sample as one point."""
        now = self._clock()
        view = _view(self._collect())
        alerts = [
            [str(a.get("name")), str(a.get("state")), str(a.get("severity"))]
            for a in self._alerts()
        ]
        with self._lock:
            last = self._last
            if last is not None and round(now, 6) <= round(last[0], 6):
                return  # the clock has not moved: nothing to tell apart yet
            if last is None:
                self._last = (now, now, view)
                return
            # Rates divide by the interval between the HTTP metrics' two readings, not between
            # clock readings around slow collections; points abut (each ends dt after the last).
            dt = _between(last[2], view, cat.HTTP_REQUESTS.name, now - last[0])
            at = last[1] + dt
            self._last = (now, at, view)
            point = self._point(at, dt, last[2], view, alerts)
            text = json.dumps(point, separators=(",", ":"), allow_nan=False).encode()
            if len(self._times) == self._ring.maxlen:
                del self._times[0]
            self._ring.append(text)
            self._times.append(point["t"])

    def encoded(self, since: float | None = None) -> str:
        """The history section as JSON text: the ring's shape and the points after ``since``."""
        with self._lock:
            start = 0 if since is None else bisect.bisect_right(self._times, since)
            points = [text.decode() for text in itertools.islice(self._ring, start, None)]
            bounds = dict(self._bounds)
            capacity = self._ring.maxlen
            routes = sorted(self._routes, key=self._routes.__getitem__)
        head = {
            "step": self._step,
            "capacity": capacity,
            "routes": routes,
            "duration_bounds": list(bounds.get(cat.HTTP_REQUEST_DURATION.name, ())),
            "size_bounds": list(bounds.get(cat.HTTP_RESPONSE_SIZE.name, ())),
        }
        text = json.dumps(head, separators=(",", ":"))
        return text[:-1] + ',"points":[' + ",".join(points) + "]}"

    def memory(self) -> int:
        """Bytes the ring holds: its points (text, time and their tuple) and the route names.

        Not counted: the previous collection's reduced view, kept for the next difference (one
        collection's worth, whatever the ring's length).
        """
        with self._lock:
            points = sum(sys.getsizeof(text) for text in self._ring) + sys.getsizeof(self._times)
            return points + sum(sys.getsizeof(name) + 100 for name in self._routes)

    def _route(self, name: str) -> int:
        index = self._routes.get(name)
        if index is None:
            index = self._routes[name] = len(self._routes)
        return index

    def __len__(self) -> int:
        with self._lock:
            return len(self._ring)

    def _point(
        self, now: float, dt: float, before: _View, view: _View, alerts: list[list[str]]
    ) -> dict[str, Any]:
        requests = _increases(before.counters, view.counters, cat.HTTP_REQUESTS.name)
        errors = _increases(before.counters, view.counters, cat.HTTP_ERRORS.name)
        cpu = _increases(before.counters, view.counters, cat.PROCESS_CPU_USER.name)
        routes: dict[str, list[float]] = {}
        for labels, n in requests.items():
            routes.setdefault(dict(labels).get(cat.LABEL_ROUTE, ""), [0, 0])[0] += n
        for labels, n in errors.items():
            routes.setdefault(dict(labels).get(cat.LABEL_ROUTE, ""), [0, 0])[1] += n
        busiest = sorted(routes.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        point: dict[str, Any] = {
            "t": round(now, 6),
            "dt": round(dt, 3),
            "req": _total(requests),
            "err": _total(errors),
            "cpu": round(_total(cpu), 6) if view.counters.get(cat.PROCESS_CPU_USER.name) else None,
            "cdt": round(_between(before, view, cat.PROCESS_CPU_USER.name, dt), 6),
            "routes": [
                [self._route(r), _num(a), _num(b)] for r, (a, b) in busiest[:MAX_ROUTES] if a or b
            ],
            "alerts": alerts,
        }
        for spec, key in ((cat.HTTP_REQUEST_DURATION, "dur"), (cat.HTTP_RESPONSE_SIZE, "size")):
            point[key] = self._histogram(spec.name, before.histograms, view.histograms)
        for name, (key, combine) in _GAUGES.items():
            values = view.gauges.get(name)
            point[key] = _num(combine(values)) if values else None
        return point

    def _histogram(
        self,
        name: str,
        before: dict[str, dict[Labels, _Hist]],
        now: dict[str, dict[Labels, _Hist]],
    ) -> dict[str, Any] | None:
        series = now.get(name)
        if not series:
            return None
        bounds = self._bounds.setdefault(name, next(iter(series.values())).bounds)
        count, total, buckets = 0, 0.0, [0] * (len(bounds) + 1)
        # The exponential increases merged; ``exact`` turns False once a counted series has none.
        exp: ExponentialSnapshot | None = None
        exact = True
        previous = before.get(name, {})
        for labels, h in series.items():
            if h.bounds != bounds:
                continue  # a series with other bounds cannot be added bucket by bucket
            old = previous.get(labels)
            if old is not None and old.bounds == h.bounds and old.total <= h.total:
                count += h.total - old.total
                total += h.sum - old.sum
                buckets = [
                    x + (a - b if a > b else 0)
                    for x, a, b in zip(buckets, h.buckets, old.buckets, strict=True)
                ]
                part = _exponential_increase(h.exponential, old.exponential)
            else:  # new since the last sample, or restarted: all of it is new
                count += h.total
                total += h.sum
                buckets = [x + a for x, a in zip(buckets, h.buckets, strict=True)]
                part = h.exponential
            if part is None:
                exact = False
            elif exact and part.observations:
                exp = part if exp is None else merged(exp, part, h.max_size)
        out: dict[str, Any] = {"n": count, "s": _num(total), "b": buckets}
        if exact and exp is not None and exp.observations == count:
            out["e"] = _compact(exp)
        return out


def _exponential_increase(
    now: ExponentialSnapshot | None, before: ExponentialSnapshot | None
) -> ExponentialSnapshot | None:
    """The buckets added between two readings of one series; all of ``now`` when it restarted."""
    if now is None:
        return None
    if before is None:
        return now
    diff = subtracted(now, before)
    if diff.zero_count < 0 or any(n < 0 for n in diff.counts):
        return now  # reset between the readings (its classic counts did not go down)
    return diff


def _compact(snap: ExponentialSnapshot) -> list[Any]:
    """``[scale, zero_count, offset, counts]`` without the empty buckets at either end."""
    counts = snap.counts
    first = next((i for i, n in enumerate(counts) if n), len(counts))
    last = len(counts) - next((i for i, n in enumerate(reversed(counts)) if n), len(counts))
    trimmed = list(counts[first:last])
    return [snap.scale, snap.zero_count, snap.offset + first if trimmed else 0, trimmed]


def _between(before: _View, view: _View, name: str, default: float) -> float:
    """Seconds between the two readings of ``name`` (``default`` where a point does not say)."""
    then, now = before.read_at.get(name), view.read_at.get(name)
    return now - then if then is not None and now is not None and now > then else default


def _view(data: MetricsData) -> _View:
    counters: dict[str, dict[Labels, float]] = {}
    histograms: dict[str, dict[Labels, _Hist]] = {}
    gauges: dict[str, list[float]] = {}
    read_at: dict[str, float] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in _WANTED:
                    continue
                d = metric.data
                stamp = max((p.time_unix_nano for p in d.data_points), default=0)
                if stamp:
                    read_at[metric.name] = max(read_at.get(metric.name, 0.0), stamp / 1e9)
                if isinstance(d, Histogram | ExponentialHistogram):
                    into_h = histograms.setdefault(metric.name, {})
                    for hp in d.data_points:
                        if isinstance(hp, HistogramDataPoint | ExponentialHistogramDataPoint):
                            into_h[_labels(hp.attributes)] = _hist(hp)
                elif isinstance(d, Sum) and d.is_monotonic:
                    into_c = counters.setdefault(metric.name, {})
                    for p in d.data_points:
                        if isinstance(p, NumberDataPoint):
                            key = _labels(p.attributes)
                            into_c[key] = into_c.get(key, 0.0) + float(p.value)
                elif isinstance(d, Gauge | Sum):
                    values = gauges.setdefault(metric.name, [])
                    values.extend(float(p.value) for p in d.data_points if _finite(p))
    return _View(counters, histograms, gauges, read_at)


def _hist(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> _Hist:
    """A histogram point of either shape as its classic buckets plus its exponential ones."""
    classic = classic_of(point) if isinstance(point, ExponentialHistogramDataPoint) else point
    return _Hist(
        classic.count,
        float(classic.sum),
        tuple(classic.bucket_counts),
        tuple(float(b) for b in classic.explicit_bounds),
        exponential_of(point),
        int(getattr(point, "max_size", DEFAULT_MAX_SIZE)),
    )


def _increases(
    before: dict[str, dict[Labels, float]], now: dict[str, dict[Labels, float]], name: str
) -> dict[Labels, float]:
    previous = before.get(name, {})
    out: dict[Labels, float] = {}
    for labels, value in now.get(name, {}).items():
        old = previous.get(labels)
        out[labels] = value if old is None or value < old else value - old
    return out


def _total(values: dict[Labels, float]) -> float | int:
    return _num(sum(values.values()))


def _labels(attributes: Any) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in (attributes or {}).items()))


def _finite(p: object) -> bool:
    value = getattr(p, "value", None)
    return isinstance(value, int | float) and math.isfinite(value)


def _num(value: float) -> float | int:
    """A whole number as an int (``3`` rather than ``3.0`` in the JSON), anything else rounded."""
    if not math.isfinite(value):
        return 0
    if float(value).is_integer():
        return int(value)
    return round(value, 6)
