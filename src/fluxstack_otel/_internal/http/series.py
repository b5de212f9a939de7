"""The recorder's table of series: made on first sight, capped, evicted by group, counted in total.

Enters: series keys seen by the fold (``fold.py``), with when their first request began; the
recorder clock at each eviction check. Leaves: each key's accumulators (``series``, the flat
lists ``fold.py`` lays out) and start time, the keys an eviction removed, and the running totals
per class of record (``totals``).

Bounds. At most ``max_series - 1`` label sets get series of their own; every further one is folded
into the overflow series (method and route ``<overflow>``, and ``<overflow>`` as status and error
type where the metric has them), one per metric, so no metric ever has more than ``max_series``
series, and the table holds at most ``max_series + 2`` keys (the overflow keeps apart only
"no response", "response" and "error", which tell the six metrics apart). Eviction works on whole
``(method, route)`` groups, the coarsest projection: when no request of a group was seen for
``retention_period``, all its keys go together, so a projected counter that stays is never a
partial sum that would go backwards, and one that comes back starts again with a new start time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from fluxstack_otel._internal.http.fold import (
    Totals,
    idle_groups,
    new_accumulators,
    new_totals,
    total_copies,
)
from fluxstack_otel._internal.http.projection import SeriesKey
from fluxstack_otel._internal.metrics import catalog as cat

__all__ = ["OVERFLOW", "SeriesTable", "overflow_key"]

_log = logging.getLogger("fluxstack_otel")

OVERFLOW = cat.OVERFLOW
# The status of overflow keys that had a response: not a real status, exposed as OVERFLOW.
_OVERFLOW_STATUS = 0


def overflow_key(key: SeriesKey) -> SeriesKey:
    """The overflow series a key folds into past the cap (it keeps whether it had a response
    and an error)."""
    return (
        OVERFLOW,
        OVERFLOW,
        None if key[2] is None else _OVERFLOW_STATUS,
        None if key[3] is None else OVERFLOW,
    )


class SeriesTable:
    """The series and their start times, within the cap; every method runs under the
    recorder's lock.

    Args:
        width: Slots of one series' accumulators (``fold.py``'s layout).
        max_series: The cardinality cap.
        retention: Seconds after which a (method, route) group that saw no request leaves.
        clock: The recorder's monotonic clock (seconds).
        wall_ns: Wall clock in nanoseconds, for start times.
    """

    def __init__(
        self,
        width: int,
        max_series: int,
        retention: float,
        clock: Callable[[], float],
        wall_ns: Callable[[], int],
    ) -> None:
        self._width = width
        self._max_series = max_series
        self._retention = retention
        self._clock = clock
        self._wall_ns = wall_ns
        self._warned = False
        self.series: dict[SeriesKey, list[float]] = {}
        """Every live series' accumulators."""
        self.start_ns: dict[SeriesKey, int] = {}
        """When each series' first request began (Unix ns)."""
        self._overflow_keys = 0
        self._evict_at = -math.inf  # no eviction is due before this (recorder clock)
        self.totals: Totals = new_totals(width)
        """Every record ever folded, per class: what rules over all series read."""
        self._totals_ns = wall_ns()

    def create(self, key: SeriesKey, started: float) -> list[float]:
        """The accumulators of a key the fold has not seen: new ones, or past the cap the
        overflow series'. ``started`` (recorder clock) is when the series' first request
        began, its start time, so a series never starts after the requests it counts."""
        if len(self.series) - self._overflow_keys >= self._max_series - 1:
            key = overflow_key(key)  # one slot stays free for the overflow series of a metric
            existing = self.series.get(key)
            if existing is not None:
                return existing
            self._overflow_keys += 1
            if not self._warned:
                self._warned = True
                _log.warning(
                    "HTTP metrics reached their cardinality cap of %d series; further label sets "
                    "are folded into route=%r. Raise max_series_per_metric or check that routes "
                    "are templates.",
                    self._max_series,
                    OVERFLOW,
                )
        acc = new_accumulators(self._width)
        self.series[key] = acc
        ago = self._clock() - started
        self.start_ns[key] = self._wall_ns() - (int(ago * 1e9) if ago > 0 else 0)
        return acc

    def owner(self, key: SeriesKey) -> SeriesKey:
        """The key whose series a just-folded key counts in: its own, or the overflow's."""
        return key if key in self.series else overflow_key(key)

    def evict(self) -> list[SeriesKey]:
        """Remove the groups idle for the retention period; their keys.

        None can leave before the oldest group's last request is a retention period old
        (records only make a group younger): until then, nothing is scanned.
        """
        now = self._clock()
        if now < self._evict_at:
            return []
        expired, oldest = idle_groups(self.series, now - self._retention)
        self._evict_at = (now if oldest is None else oldest) + self._retention
        for k in expired:
            del self.series[k]
            del self.start_ns[k]
            if k[0] == OVERFLOW:
                self._overflow_keys -= 1
        return expired

    def total_copies(self) -> list[Any]:
        """The totals' classes, copied for ``fold.snapshots``."""
        return total_copies(self.totals, self._totals_ns)

    def clear(self) -> None:
        """Forget every series and total (a forked child starts from zero)."""
        self.series.clear()
        self.start_ns.clear()
        self._overflow_keys = 0
        self.totals = new_totals(self._width)
        self._totals_ns = self._wall_ns()
        self._evict_at = -math.inf
