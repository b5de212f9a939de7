"""Settable clocks for the code that takes one (recorder, alert processor, file history)."""

from __future__ import annotations

import time


class FakeClock:
    """A monotonic clock in seconds that moves only when the test sets or advances ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


class FakeWallClock:
    """A wall clock in Unix nanoseconds that moves by ``step`` at each reading (0: stands still)."""

    def __init__(self, ns: int = 1_735_787_045_000_000_000, *, step: int = 0) -> None:
        self.ns = ns
        self.step = step

    def __call__(self) -> int:
        self.ns += self.step
        return self.ns


class SteppingClock:
    """A clock in seconds that moves by ``step`` at each reading, from now (wall time) on.

    For code that samples on a schedule (the dashboard history): each reading is one step after
    the last, however fast the test runs.
    """

    def __init__(self, step: float = 5.0, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now
