"""The recorder's exponential histograms: per series, beside its classic buckets.

Enters: the histograms a View or ``histograms: exponential`` asks for (metric name ->
(max_size, max_scale)), and per fold the series key whose accumulators to update. Leaves: per
series, the exponential snapshots of the duration, request size and response size histograms
(None for those kept classic only). Not thread-safe: the recorder calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxstack_otel._internal.http.projection import SeriesKey
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.exponential import (
    ExponentialAccumulator,
    ExponentialSnapshot,
)

__all__ = ["ExponentialSeries"]

_SPECS = (cat.HTTP_REQUEST_DURATION, cat.HTTP_REQUEST_SIZE, cat.HTTP_RESPONSE_SIZE)
_Slots = list[ExponentialAccumulator | None]
_Snapshots = tuple[
    ExponentialSnapshot | None, ExponentialSnapshot | None, ExponentialSnapshot | None
]
_NONE: _Snapshots = (None, None, None)


class ExponentialSeries:
    """The exponential accumulators of every series, three slots each (duration, sizes).

    Args:
        wanted: metric name -> (max_size, max_scale) of ``ExponentialBucketHistogramAggregation``.
    """

    __slots__ = ("_params", "_slots", "get", "max_sizes", "on")

    def __init__(self, wanted: Mapping[str, tuple[int, int]]) -> None:
        self._params = tuple(wanted.get(spec.name) for spec in _SPECS)
        self.on = any(p is not None for p in self._params)
        """Whether any histogram is kept exponentially (the fold skips this class otherwise)."""
        self.max_sizes = {s.name: p[0] for s, p in zip(_SPECS, self._params, strict=True) if p}
        """metric name -> max_size, for the projection's merges."""
        self._slots: dict[SeriesKey, _Slots] = {}
        self.get = self._slots.get
        """The slots of a series, or None before its first fold."""

    def create(self, key: SeriesKey) -> _Slots:
        """The slots of ``key``, made on first use."""
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = [
                None if p is None else ExponentialAccumulator(p[0], p[1]) for p in self._params
            ]
        return slots

    def snapshot(self, key: SeriesKey) -> _Snapshots:
        """The three histograms of ``key`` now (None where not kept)."""
        slots = self._slots.get(key)
        if slots is None:
            return _NONE
        dur, req, resp = (None if a is None else a.snapshot() for a in slots)
        return dur, req, resp

    def pop(self, key: SeriesKey) -> None:
        """Forget an evicted series."""
        self._slots.pop(key, None)

    def clear(self) -> None:
        """Forget every series."""
        self._slots.clear()
