"""A periodic worker: one daemon thread per push exporter, with a bounded last run at stop.

Why a thread per exporter rather than one shared scheduler: an export that hangs (a backend that
accepts the connection and never answers) then delays only its own exporter. Each run collects
fresh data, so nothing queues up while a backend is down and memory stays flat.

A run receives a ``Tick``: its deadline (the next interval, or the shutdown bound for the last run)
and an interruptible ``wait`` for retry backoff, so retries never overlap the next run and a stop
cuts them short. ``stop`` runs the task one last time (the flush) and returns within its timeout
whatever the task does: a thread stuck in a hanging export is abandoned (it is a daemon), never
joined forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["PeriodicSink", "PeriodicWorker", "Tick"]


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
        if seconds >= self.remaining():
            return False
        if self._abort is None:
            time.sleep(seconds)
            return True
        return not self._abort.wait(seconds)


class PeriodicWorker:
    """Runs ``task`` every ``interval`` seconds in a daemon thread, and once more at stop.

    Args:
        name: The thread's name (``fluxstack-otel-...``) and the subject of failure reports.
        interval: Seconds between the starts of two runs (a run never overlaps the next).
        task: Called with a ``Tick``; whatever it raises is reported (rate-limited), never
            propagated.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        task: Callable[[Tick], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._interval = interval
        self._task = task
        self._clock = clock
        self._stop = threading.Event()
        self._final_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._runs = 0
        self._flushed = threading.Event()
        call_in_child(self._after_fork_in_child)

    @property
    def runs(self) -> int:
        """Runs completed so far, the final one included."""
        return self._runs

    def start(self) -> None:
        """Start the thread; the first run comes one interval later. Idempotent."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop the periodic runs, run the task a last time, and return within ``timeout``.

        Returns:
            True when the last run finished in time; False when it was abandoned (still stuck in
            a previous or in the last run) or the worker was never started.
        """
        with self._lock:
            thread = self._thread
            if self._stop.is_set():
                return self._flushed.is_set()
            join_deadline = self._clock() + timeout
            # The last run ends a little before the bound, so its own timeouts fire in time to be
            # reported as what they are rather than as an abandoned thread.
            self._final_deadline = join_deadline - 0.1 * timeout
            self._stop.set()
        if thread is None:
            return False
        thread.join(max(0.0, join_deadline - self._clock()))
        if thread.is_alive():
            report_failure(
                f"the final export of {self._name} (abandoned after {timeout:g}s)",
                exc_info=False,
            )
            return False
        return self._flushed.is_set()

    def _loop(self) -> None:
        stop = self._stop
        next_start = self._clock() + self._interval
        while not stop.wait(max(0.0, next_start - self._clock())):
            # The deadline is the next start: retries inside a run never overlap the next one.
            next_start += self._interval
            self._run(Tick(next_start, abort=stop, clock=self._clock))
            now = self._clock()
            if next_start <= now:  # the run overran (a hanging backend): rest a full interval
                next_start = now + self._interval
        self._run(Tick(self._final_deadline, final=True, clock=self._clock))
        self._flushed.set()

    def _run(self, tick: Tick) -> None:
        try:
            self._task(tick)
        except Exception:
            report_failure(f"a run of {self._name}")
        finally:
            self._runs += 1

    def _after_fork_in_child(self) -> None:
        # Threads do not survive fork(): a forked worker runs a thread of its own when the
        # parent's worker was running (and not stopped), with fresh locks and events.
        running = self._thread is not None and not self._stop.is_set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flushed = threading.Event()
        self._thread = None
        self._runs = 0
        if running:
            self.start()


class PeriodicSink:
    """The sink contract for a push exporter whose only background work is one PeriodicWorker.

    Subclasses set ``_worker`` in ``__init__``; they serve no endpoint.
    """

    _worker: PeriodicWorker

    def endpoints(self) -> dict[str, Endpoint]:
        return {}

    def start(self) -> None:
        self._worker.start()

    def shutdown(self, timeout: float) -> None:
        self._worker.stop(timeout)
