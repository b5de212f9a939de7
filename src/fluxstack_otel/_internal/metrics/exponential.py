"""Base-2 exponential histograms: OpenTelemetry's bucket scheme, without an SDK call per value.

The same buckets as the SDK's ``ExponentialBucketHistogramAggregation``: at scale ``s`` the
base is ``2 ** (2 ** -s)`` and bucket ``i`` holds the values in ``(base ** i, base ** (i + 1)]``;
a histogram starts at the finest scale (20) and halves its resolution (scale - 1, two buckets
merged into one) whenever the positive values would need more than ``max_size`` buckets. Values
at or below 0 go to the zero bucket (the recorder's durations and sizes are never negative).
Relative error of a value read back as its bucket's midpoint: at most ``(base - 1) / (base + 1)``,
about 2.2 % at scale 3 (``max_size`` 160 covers 20 octaves there, 1 µs to 1 s).

``ExponentialAccumulator.record`` is what the recorder's fold calls per value: one ``frexp`` (or
one ``log``), a compare and an increment while the bucket range holds. ``to_prometheus`` turns
the buckets into a Prometheus native histogram's schema, spans and deltas.
"""

from __future__ import annotations

import math
from math import floor, frexp, ldexp, log
from typing import NamedTuple

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_SCALE",
    "ExponentialAccumulator",
    "ExponentialSnapshot",
    "NativeBuckets",
    "bucket_index",
    "downscaled",
    "fitted",
    "merged",
    "quantile",
    "subtracted",
    "to_prometheus",
]

MAX_SCALE = 20
MIN_SCALE = -10
DEFAULT_MAX_SIZE = 160
PROMETHEUS_MAX_SCHEMA = 8
PROMETHEUS_MIN_SCHEMA = -4

_FACTORS = {s: ldexp(1 / log(2), s) for s in range(1, MAX_SCALE + 1)}


def bucket_index(value: float, scale: int) -> int:
    """The bucket of ``value`` (> 0) at ``scale``: ``base ** i < value <= base ** (i + 1)``."""
    mantissa, exponent = frexp(value)  # value = mantissa * 2 ** exponent, 0.5 <= mantissa < 1
    if mantissa == 0.5:  # an exact power of two is the upper bound of the bucket below it
        return ((exponent - 1) << scale) - 1 if scale > 0 else ((exponent - 2) >> -scale)
    if scale > 0:
        return floor(log(value) * _FACTORS[scale])
    return (exponent - 1) >> -scale


class ExponentialSnapshot(NamedTuple):
    """A consistent copy of an exponential histogram's state."""

    scale: int
    offset: int
    counts: tuple[int, ...]
    zero_count: int

    @property
    def observations(self) -> int:
        """Every value counted, the zero bucket included."""
        return self.zero_count + sum(self.counts)


class ExponentialAccumulator:
    """The buckets of one series' exponential histogram (not thread-safe: the fold holds a lock).

    Args:
        max_size: The most positive buckets kept; the scale goes down to stay within it.
        max_scale: The scale to start at.
    """

    __slots__ = ("counts", "max_size", "offset", "scale", "zero_count")

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, max_scale: int = MAX_SCALE) -> None:
        self.max_size = max_size
        self.scale = max_scale
        self.offset = 0
        self.counts: list[int] = []
        self.zero_count = 0

    def record(self, value: float) -> None:
        """Count one value."""
        if value <= 0.0:
            self.zero_count += 1
            return
        # bucket_index, inlined: this runs for every value the fold records.
        scale = self.scale
        mantissa, exponent = frexp(value)
        if mantissa == 0.5:
            index = ((exponent - 1) << scale) - 1 if scale > 0 else ((exponent - 2) >> -scale)
        elif scale > 0:
            index = floor(log(value) * _FACTORS[scale])
        else:
            index = (exponent - 1) >> -scale
        counts = self.counts
        at = index - self.offset
        if 0 <= at < len(counts):
            counts[at] += 1
            return
        self._grow(index)

    def _grow(self, index: int) -> None:
        counts = self.counts
        if not counts:
            self.offset = index
            counts.append(1)
            return
        change = _fit(
            min(self.offset, index), max(self.offset + len(counts) - 1, index), self.max_size
        )
        if change:
            self._downscale(change)
            index >>= change
        at = index - self.offset
        if at < 0:
            self.counts = [0] * -at + self.counts
            self.offset = index
            at = 0
        elif at >= len(self.counts):
            self.counts.extend([0] * (at - len(self.counts) + 1))
        self.counts[at] += 1

    def _downscale(self, change: int) -> None:
        """Merge buckets to ``scale - change``: bucket ``i`` becomes ``i >> change``."""
        snap = downscaled(self.snapshot(), self.scale - change)
        self.counts = list(snap.counts)
        self.offset = snap.offset
        self.scale = snap.scale

    def snapshot(self) -> ExponentialSnapshot:
        """A copy of the buckets now."""
        return ExponentialSnapshot(self.scale, self.offset, tuple(self.counts), self.zero_count)


def downscaled(snap: ExponentialSnapshot, scale: int) -> ExponentialSnapshot:
    """``snap`` at a scale at or below its own (buckets merged, counts exact)."""
    change = snap.scale - scale
    if change <= 0 or not snap.counts:
        return snap._replace(scale=min(snap.scale, scale))
    merged: list[int] = []
    first = snap.offset >> change
    for i, n in enumerate(snap.counts):
        at = ((snap.offset + i) >> change) - first
        if at == len(merged):
            merged.append(n)
        else:
            merged[at] += n
    return ExponentialSnapshot(scale, first, tuple(merged), snap.zero_count)


class NativeBuckets(NamedTuple):
    """A Prometheus native histogram's positive buckets: schema, spans and count deltas."""

    schema: int
    spans: tuple[tuple[int, int], ...]
    """(offset, length): the gap to the previous span (to bucket 0 for the first), its size."""
    deltas: tuple[int, ...]
    """Each bucket's count minus the previous bucket's (the first: minus 0)."""


def to_prometheus(snap: ExponentialSnapshot) -> NativeBuckets | None:
    """The native-histogram form of ``snap``, or None where no schema can hold it (scale < -4).

    Prometheus bucket ``i`` is ``(2 ** ((i - 1) * 2 ** -schema), 2 ** (i * 2 ** -schema)]``,
    OpenTelemetry's ``i - 1``; a scale above 8 is merged down to schema 8. Empty buckets inside
    the range start a new span when two or more are in a row, as Prometheus' own clients do.
    """
    if snap.scale < PROMETHEUS_MIN_SCHEMA:
        return None
    snap = downscaled(snap, min(snap.scale, PROMETHEUS_MAX_SCHEMA))
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    previous = 0  # the count of the previous bucket in the spans
    end = 0  # the Prometheus index just after the previous span
    start: int | None = None  # where the current span starts
    length = 0
    zeros = 0  # empty buckets since the last counted one
    for i, n in enumerate(snap.counts):
        if n == 0:
            zeros += start is not None
            continue
        index = snap.offset + i + 1
        if start is not None and zeros <= 1:
            # One empty bucket inside a span costs less as a zero than as a new span.
            if zeros:
                deltas.append(-previous)
                previous = 0
            length += zeros + 1
        else:
            if start is not None:
                spans.append((start - end, length))
                end = start + length
            start, length = index, 1
        deltas.append(n - previous)
        previous = n
        zeros = 0
    if start is not None:
        spans.append((start - end, length))
    return NativeBuckets(snap.scale, tuple(spans), tuple(deltas))


def _fit(low: int, high: int, max_size: int) -> int:
    """How many halvings make the bucket range ``[low, high]`` hold in ``max_size`` buckets."""
    change = 0
    while (high >> change) - (low >> change) + 1 > max_size:
        change += 1
    return change


def fitted(snap: ExponentialSnapshot, max_size: int, max_scale: int) -> ExponentialSnapshot:
    """``snap`` at ``max_scale`` or below, merged down until it holds in ``max_size`` buckets."""
    scale = min(snap.scale, max_scale)
    if snap.counts:
        low, high = snap.offset, snap.offset + len(snap.counts) - 1
        change = snap.scale - scale
        scale -= _fit(low >> change, high >> change, max_size)
    return downscaled(snap, scale)


def merged(a: ExponentialSnapshot, b: ExponentialSnapshot, max_size: int) -> ExponentialSnapshot:
    """The histogram of both ``a``'s and ``b``'s values, within ``max_size`` buckets.

    The common scale is the lower of the two, lowered further until the union of both ranges
    fits, as the SDK does when it merges; every count is kept exactly.
    """
    scale = min(a.scale, b.scale)
    if not a.counts or not b.counts:
        kept = downscaled(a if a.counts else b, scale)
        return kept._replace(zero_count=a.zero_count + b.zero_count)
    a, b = downscaled(a, scale), downscaled(b, scale)
    low = min(a.offset, b.offset)
    high = max(a.offset + len(a.counts), b.offset + len(b.counts)) - 1
    change = _fit(low, high, max_size)
    if change:
        a, b = downscaled(a, scale - change), downscaled(b, scale - change)
        low = min(a.offset, b.offset)
        high = max(a.offset + len(a.counts), b.offset + len(b.counts)) - 1
    counts = [0] * (high - low + 1)
    for snap in (a, b):
        start = snap.offset - low
        for i, n in enumerate(snap.counts):
            counts[start + i] += n
    return ExponentialSnapshot(a.scale, low, tuple(counts), a.zero_count + b.zero_count)


def subtracted(later: ExponentialSnapshot, earlier: ExponentialSnapshot) -> ExponentialSnapshot:
    """The values counted in ``later`` but not yet in ``earlier`` (two readings of one series).

    A cumulative histogram only lowers its scale and widens its range, so ``earlier`` at
    ``later``'s scale lies inside ``later``'s range; the difference keeps ``later``'s buckets.
    """
    scale = min(later.scale, earlier.scale)
    later, earlier = downscaled(later, scale), downscaled(earlier, scale)
    counts = list(later.counts)
    for i, n in enumerate(earlier.counts):
        at = earlier.offset + i - later.offset
        if 0 <= at < len(counts):
            counts[at] -= n
    return ExponentialSnapshot(
        scale, later.offset, tuple(counts), later.zero_count - earlier.zero_count
    )


def quantile(snap: ExponentialSnapshot, q: float) -> float:
    """The ``q`` quantile (0..1) of the counted values: NaN when there are none.

    Interpolated inside the bucket that holds the rank, exponentially (the buckets' own
    geometry), so a value read back is off by at most the bucket's relative width.
    """
    total = snap.observations
    if total == 0:
        return math.nan
    rank = q * total
    if rank <= snap.zero_count:
        return 0.0
    seen = snap.zero_count
    base = 2.0 ** (2.0**-snap.scale)
    for i, n in enumerate(snap.counts):
        if n and seen + n >= rank:
            lower = base ** (snap.offset + i)
            return float(lower * base ** ((rank - seen) / n))
        seen += n
    return float(base ** (snap.offset + len(snap.counts)))
