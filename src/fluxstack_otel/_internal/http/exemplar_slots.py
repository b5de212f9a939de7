"""The recorder's exemplars (``tracing: true``): the latest trace per duration bucket per series.

Enters: the trace of an exchange just recorded (its series key, duration, trace and span ids,
time), queued without a lock. Leaves, at each fold: per series, one slot per duration bucket
holding the latest exemplar that fell in it, which the projection attaches to the duration
histogram's points. Folded under the recorder's lock, after the records.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping

from fluxstack_otel._internal.http.projection import SeriesKey

__all__ = ["ExemplarSlots"]

# (series key, duration, trace id, span id, Unix time in ns)
_Pending = tuple[SeriesKey, float, int, int, int]
# (duration, Unix time in ns, trace id, span id): the latest exemplar of one bucket
_Exemplar = tuple[float, int, int, int]


class ExemplarSlots:
    """The exemplars of every series, one slot per duration bucket.

    Args:
        bounds: The duration histogram's bucket bounds.
    """

    __slots__ = ("_bounds", "_slots", "pending")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._slots: dict[SeriesKey, list[_Exemplar | None]] = {}
        self.pending: deque[_Pending] = deque()
        """Noted, not yet folded (appending to a deque needs no lock)."""

    def note(self, key: SeriesKey, duration: float, trace_id: int, span_id: int, at: int) -> None:
        """Queue the exemplar of one exchange of ``key``."""
        self.pending.append((key, duration, trace_id, span_id, at))

    def fold(
        self, series: Mapping[SeriesKey, object], overflow: Callable[[SeriesKey], SeriesKey]
    ) -> None:
        """Fold the queue into the slots (the recorder's lock held, after the records).

        Every exemplar's series exists, or was folded into the overflow, or was evicted
        meanwhile: then the exemplar is dropped.
        """
        pending, slots_of, bounds = self.pending, self._slots, self._bounds
        for _ in range(len(pending)):
            key, duration, trace_id, span_id, at = pending.popleft()
            if key not in series:
                key = overflow(key)
                if key not in series:
                    continue
            slots = slots_of.get(key)
            if slots is None:
                slots = slots_of[key] = [None] * (len(bounds) + 1)
            slots[bisect_left(bounds, duration)] = (duration, at, trace_id, span_id)

    def __bool__(self) -> bool:
        """Whether any series holds an exemplar."""
        return bool(self._slots)

    def copy(self, key: SeriesKey) -> tuple[_Exemplar | None, ...] | None:
        """The slots of ``key`` now, or None when it has none."""
        slots = self._slots.get(key)
        return None if slots is None else tuple(slots)

    def pop(self, key: SeriesKey) -> None:
        """Forget an evicted series."""
        self._slots.pop(key, None)

    def clear(self) -> None:
        """Forget every series and the queue."""
        self.pending.clear()
        self._slots.clear()
