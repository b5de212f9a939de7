"""Event-loop lag: how late an asyncio timer fires on the loop that serves the app.

A probe task sleeps ``interval`` seconds in a loop and records how much later than asked it woke.
A callback that blocks the loop for 200 ms makes the next wake-up about 200 ms late. The gauge
reports the worst lag over the last ``window`` seconds (the collection interval), so a stall
between two scrapes is seen rather than averaged away; an idle loop reads close to zero.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["LoopLagProbe"]


class LoopLagProbe:
    """Samples the running loop's timer lag.

    Args:
        interval: Seconds between probe wake-ups.
        window: Seconds of samples the reported value covers.
    """

    def __init__(self, *, interval: float = 0.05, window: float = 5.0) -> None:
        self._interval = interval
        # At most an hour of samples (72,000): a huge window must not become a huge deque.
        samples = min(math.ceil(min(window, 3600.0) / interval), 72_000)
        self._samples: deque[float] = deque(maxlen=max(1, samples))
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        # A plain attribute, read on every request: True while a probe task is alive.
        self.active = False

    def value(self) -> float | None:
        """The worst lag (seconds) over the window, or None before the first sample."""
        samples = tuple(self._samples)
        return max(samples) if samples else None

    def ensure_started(self) -> None:
        """Start the probe on the running loop unless one already runs there."""
        if self._stopped or self.active:
            return
        import asyncio  # loaded already: this runs on the app's event loop

        loop = asyncio.get_running_loop()
        self._loop = loop
        self._task = loop.create_task(self._run(), name="fluxstack-otel-loop-lag")
        self._task.add_done_callback(self._on_done)
        self.active = True

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task is self._task:
            self.active = False

    def reset_after_fork(self) -> None:
        """Forget the parent's task and samples; the child starts its own probe."""
        self._task = None
        self._loop = None
        self.active = False
        self._samples.clear()

    def stop(self) -> None:
        """Cancel the probe from any thread; it does not start again."""
        self._stopped = True
        task, loop = self._task, self._loop
        self._task = None
        self.active = False
        if task is None or loop is None or task.done():
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(task.cancel)

    async def _run(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        interval = self._interval
        samples = self._samples
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                expected = loop.time() + interval
                await asyncio.sleep(interval)
                samples.append(max(0.0, loop.time() - expected))
