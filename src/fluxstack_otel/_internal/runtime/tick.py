"""One run of a periodic job as the job sees it, and the wait every thread of the package takes.

In: a run's deadline, whether it is the final run (the flush at stop), and the event a stop sets.
Out: ``Tick.remaining`` and ``Tick.wait`` (a backoff that gives up at the deadline or at a stop),
and ``clamp_wait``, which keeps any wait within what ``Event.wait`` takes. The scheduler builds
the ticks (``scheduler.py``); the push exporters and notifiers pass them on to their retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["MAX_WAIT", "Tick", "clamp_wait"]

MAX_WAIT = 3600.0  # seconds one Event.wait may block; the scheduler re-checks after it


def clamp_wait(seconds: float) -> float:
    """``seconds`` made safe for ``Event.wait``: within [0, an hour], NaN as 0."""
    if not seconds > 0.0:  # negative, zero or NaN
        return 0.0
    return min(seconds, MAX_WAIT)


class Tick:
    """One run of a periodic task: how long it may take, and a wait that a stop interrupts.

    Attributes:
        deadline: The monotonic time by which the run should be over.
        final: True for the last run, at stop (the flush).
    """

    __slots__ = ("_abort", "_clock", "deadline", "final")

    def __init__(
        self,
        deadline: float,
        *,
        final: bool = False,
        abort: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.final = final
        self._abort = abort
        self._clock = clock

    def remaining(self) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(0.0, self.deadline - self._clock())

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (a retry backoff) unless that would pass the deadline.

        Returns:
            True when the run may go on: the wait fitted before the deadline and no stop came.
            False when the caller should give up now.
        """
        if not seconds < self.remaining():
            return False
        end = self._clock() + seconds
        while (left := end - self._clock()) > 0.0:  # in steps an Event.wait can take
            if self._abort is None:
                time.sleep(clamp_wait(left))
            elif self._abort.wait(clamp_wait(left)):
                return False
        return True
