"""One run of a periodic job as the job sees it, and the wait every thread of the package takes.

In: a run's deadline, whether it is the final run (the flush at stop), the event a stop sets, and
the ``Round`` of jobs that fell due with it. Out: ``Tick.remaining`` and ``Tick.wait`` (a backoff
that gives up at the deadline or at a stop), ``Round.share`` (one result per round, however many
jobs ask: the collection every push sink of the tick reads), and ``clamp_wait``, which keeps any
wait within what ``Event.wait`` takes. The scheduler builds the ticks (``scheduler.py``); the push
exporters and notifiers pass them on to their retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["MAX_WAIT", "Round", "Tick", "clamp_wait"]

_T = TypeVar("_T")

MAX_WAIT = 3600.0  # seconds one Event.wait may block; the scheduler re-checks after it


def clamp_wait(seconds: float) -> float:
    """``seconds`` made safe for ``Event.wait``: within [0, an hour], NaN as 0."""
    if not seconds > 0.0:  # negative, zero or NaN
        return 0.0
    return min(seconds, MAX_WAIT)


class Round:
    """The jobs dispatched together in one scheduler scan, and what they share.

    The first job to ask for a key makes its value; the others of the round get the same object
    (a job asking while it is being made waits for it). The values live as long as the round,
    that is as long as one of its runs holds its tick: nothing is kept between two ticks.
    """

    __slots__ = ("_lock", "_values", "members")

    def __init__(self, members: int = 1) -> None:
        self.members = members
        """How many jobs the round started with (1: the job runs alone)."""
        self._lock = threading.RLock()  # reentrant: a value may be made from another one
        self._values: dict[int, tuple[object, object]] = {}

    def share(self, key: object, make: Callable[[], _T]) -> _T:
        """The value of ``key`` in this round, made by ``make`` the first time it is asked for.

        A ``make`` that raises leaves nothing behind: the next job of the round tries again.
        """
        with self._lock:
            held = self._values.get(id(key))
            if held is None:
                held = (key, make())  # the key is held too, so its id stays its own
                self._values[id(key)] = held
            return held[1]  # type: ignore[return-value]


class Tick:
    """One run of a periodic task: how long it may take, and a wait that a stop interrupts.

    Attributes:
        deadline: The monotonic time by which the run should be over.
        final: True for the last run, at stop (the flush).
        round: The jobs that fell due with this one (a round of its own when it ran alone).
    """

    __slots__ = ("_abort", "_clock", "deadline", "final", "round")

    def __init__(
        self,
        deadline: float,
        *,
        final: bool = False,
        abort: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        round: Round | None = None,
    ) -> None:
        self.deadline = deadline
        self.final = final
        self.round = Round() if round is None else round
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
