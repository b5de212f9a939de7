"""The one periodic scheduler: every interval job of the package runs on it.

The jobs are the push exporters (console, file, JSON push, OTLP: ``sinks/periodic.py``), the alert
processor's evaluations and the multiprocess publisher. Each is a ``PeriodicWorker``; all of a
process's workers share one ``Scheduler``.

Shape: one scheduler thread per process knows when each job falls due and dispatches each run
to a thread of its own, named after the job. The scheduler thread runs no job code, so nothing a
job does (an export that hangs on a backend that accepts the connection and never answers) can
delay another job: a hanging export delays only its own job. A job whose previous run is still
going when it falls due skips that tick and is due again one interval later, so runs never
overlap and never pile up, and memory stays flat while a backend is down. A fresh thread per run
rather than a long-lived thread per job: a run's thread that dies (even of a ``BaseException``)
takes only that run with it, and no idle thread can be left dead between runs; a thread start
costs about 100 µs once per interval.

Never dies: a run that raises is reported (``report_failure``: a rate-limited log line and a
count) and the job runs again at its next tick. The scheduler's loop reports and resumes whatever
it meets; should its thread end anyway, the next ``start``, ``run_soon`` or finished run restarts
it (``_ensure_thread``, the supervisor). The thread ends on its own when no job is left, so a
process whose monitoring is shut down runs none of the package's threads.

Fork: threads do not survive ``fork()``. In the child the scheduler gets fresh locks and a
thread of its own when jobs were scheduled; each job's first run in the child comes one interval
after the fork (a job that wants one sooner calls ``run_soon`` from its own fork hook, after it has
reset its state).

Time: intervals are clamped to ``MAX_INTERVAL`` and every wait to ``tick.MAX_WAIT``, so a huge
configured duration never overflows ``Event.wait`` or the deadline arithmetic.

One collection per tick: the jobs that fall due in one scan (and those due within ``GATHER``
seconds after it, so that jobs started a moment apart stay together) form a ``Round``, handed to
each run in its ``Tick``. Jobs that read the same metric source take one collection from the
round (``Round.share``), made in the first run thread that asks for it (never in the scheduler
thread, so a slow collection delays only its round), and dropped when the round's runs are over.

This module holds the scheduler as process-wide state (``default_scheduler``), like the failure
log of ``failures.py``: an interval job belongs to no single monitoring instance's thread.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable

from fluxstack_otel._internal.runtime.background import lower_priority
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child
from fluxstack_otel._internal.runtime.tick import Round, Tick, clamp_wait

__all__ = [
    "GATHER",
    "MAX_INTERVAL",
    "PeriodicWorker",
    "Round",
    "Scheduler",
    "Tick",
    "clamp_wait",
    "default_scheduler",
]

MAX_INTERVAL = 1e9
"""Seconds; a longer interval (about 31 years) is clamped to this, so due times stay finite."""

GATHER = 0.05
"""Seconds: a job due this soon after a scan runs in that scan's round, a little early."""

_MIN_INTERVAL = 1e-3  # seconds; a shorter interval would make the scheduler spin
_RESUME_PAUSE = 0.05  # seconds the scheduler rests after a fault in its own loop


class Scheduler:
    """Dispatches the runs of every started ``PeriodicWorker`` from one thread.

    Args:
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._jobs: list[PeriodicWorker] = []
        self._thread: threading.Thread | None = None
        call_in_child(self._after_fork_in_child)

    @property
    def jobs(self) -> tuple[PeriodicWorker, ...]:
        """The workers scheduled now."""
        with self._lock:
            return tuple(self._jobs)

    def add(self, job: PeriodicWorker) -> None:
        """Schedule ``job`` (its due time is already set)."""
        with self._lock:
            if job not in self._jobs:
                self._jobs.append(job)
        self.wake()

    def remove(self, job: PeriodicWorker) -> None:
        """Schedule ``job`` no more (a run under way goes on)."""
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)
        self._wake.set()

    def wake(self) -> None:
        """Re-read the due times now, restarting the thread if it is gone."""
        self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        with self._lock:
            if not self._jobs or (self._thread is not None and self._thread.is_alive()):
                return
            thread = threading.Thread(
                target=self._main, name="fluxstack-otel-scheduler", daemon=True
            )
            self._thread = thread
        try:
            thread.start()
        except Exception:  # no thread can be started now; the next wake tries again
            with self._lock:
                if self._thread is thread:
                    self._thread = None
            report_failure("starting the periodic scheduler")

    def _main(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                while self._scan(me):
                    pass
                return
            except BaseException:  # even SystemExit: the scheduler never dies of a job's doing
                with contextlib.suppress(BaseException):  # nor of a log handler that raises
                    report_failure("the periodic scheduler (resumed)")
                    time.sleep(_RESUME_PAUSE)  # a fault that repeats must not spin a core

    def _scan(self, me: threading.Thread) -> bool:
        """Dispatch the jobs that are due, then wait for the next; False when none is left."""
        self._wake.clear()
        with self._lock:
            if not self._jobs or self._thread is not me:
                if self._thread is me:
                    self._thread = None
                return False
            jobs = list(self._jobs)
        now = self._clock()
        due = [job for job in jobs if job.due <= now]
        if due:
            due += [job for job in jobs if now < job.due <= now + GATHER]
            shared = Round(len(due))
            for job in due:
                job._dispatch(now, shared)
        next_due = min(job.due for job in jobs)
        self._wake.wait(clamp_wait(next_due - self._clock()))
        return True

    def _after_fork_in_child(self) -> None:
        global _default_lock
        _default_lock = threading.Lock()  # it may have been held by a thread the fork dropped
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        for job in self._jobs:
            job._reset_in_child()
        self._ensure_thread()


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process's scheduler, made at first use."""
    global _default
    if _default is not None:
        return _default
    with _default_lock:
        if _default is None:
            _default = Scheduler()
        return _default


class PeriodicWorker:
    """Runs ``task`` every ``interval`` seconds on the scheduler, and once more at stop.

    Args:
        name: The run threads' name (``fluxstack-otel-...``) and the subject of failure reports.
        interval: Seconds between the starts of two runs (a run never overlaps the next);
            clamped to [1 ms, ``MAX_INTERVAL``].
        task: Called with a ``Tick``; whatever it raises is reported (rate-limited), never
            propagated.
        run_at_start: Run once at ``start`` rather than one interval later.
        flush_at_stop: Run a last time (``Tick.final``) at ``stop``.
        clock: Monotonic clock, injectable for tests.
        scheduler: The scheduler to run on (default: the process's).
    """

    def __init__(
        self,
        name: str,
        interval: float,
        task: Callable[[Tick], None],
        *,
        run_at_start: bool = False,
        flush_at_stop: bool = True,
        clock: Callable[[], float] = time.monotonic,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._name = name
        self._interval = _clamp_interval(interval)
        self._task = task
        self._run_at_start = run_at_start
        self._flush_at_stop = flush_at_stop
        self._clock = clock
        # Made now, not at start: the scheduler's fork hook then comes before the hooks of the
        # job's owner, which may call run_soon in the child.
        self._scheduler = scheduler if scheduler is not None else default_scheduler()
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._started = False
        self._stopped = False
        self._flushed = False
        self._running: threading.Thread | None = None
        self._runs = 0
        self.due = math.inf

    @property
    def name(self) -> str:
        """The job's name."""
        return self._name

    @property
    def interval(self) -> float:
        """Seconds between two runs, as clamped."""
        return self._interval

    @property
    def runs(self) -> int:
        """Runs completed so far, the final one included."""
        return self._runs

    @property
    def running(self) -> bool:
        """Whether the job is scheduled (started and not stopped)."""
        return self._started and not self._stopped

    def start(self) -> None:
        """Schedule the runs; the first comes one interval later (or now). Idempotent."""
        with self._lock:
            if self._started or self._stopped:
                return
            self._started = True
            self.due = self._clock() + (0.0 if self._run_at_start else self._interval)
        self._scheduler.add(self)

    def run_soon(self) -> None:
        """Make the next run come now (skipped if a run is under way)."""
        with self._lock:
            if not self.running:
                return
            self.due = self._clock()
        self._scheduler.wake()

    def stop(self, timeout: float) -> bool:
        """Stop the periodic runs, run the task a last time, and return within ``timeout``.

        A run under way is told to give up its retries (``Tick.wait`` returns False) and is
        waited for; one stuck in a hanging export is abandoned (its thread is a daemon).

        Returns:
            True when the last run finished in time (or none was asked for); False when it was
            abandoned (still stuck in a previous or in the last run) or the worker was never
            started.
        """
        with self._lock:
            if self._stopped:
                return self._flushed
            self._stopped = True
            started = self._started
        if not started:
            return False
        self._scheduler.remove(self)
        timeout = _clamp_interval(timeout)
        deadline = self._clock() + timeout
        self._abort.set()
        previous = self._running
        if previous is threading.current_thread():
            previous = None  # a job stopping itself from its own run
        if previous is not None:
            previous.join(clamp_wait(deadline - self._clock()))
            if previous.is_alive():
                self._abandoned(timeout)
                return False
        if not self._flush_at_stop:
            self._flushed = True
            return True
        # The last run ends a little before the bound, so its own timeouts fire in time to be
        # reported as what they are rather than as an abandoned thread.
        tick = Tick(deadline - 0.1 * timeout, final=True, clock=self._clock)
        final = threading.Thread(target=self._run, args=(tick,), name=self._name, daemon=True)
        final.start()
        final.join(clamp_wait(deadline - self._clock()))
        if final.is_alive():
            self._abandoned(timeout)
            return False
        self._flushed = True
        return True

    def _abandoned(self, timeout: float) -> None:
        report_failure(
            f"the final export of {self._name} (abandoned after {timeout:g}s)", exc_info=False
        )

    def _dispatch(self, now: float, shared: Round | None = None) -> None:
        """Start a run now (called by the scheduler when the job is due), in round ``shared``."""
        interval = self._interval
        with self._lock:  # against a stop in between: once stopped, no run starts
            if self._stopped:
                return
            # The deadline is the next start: retries inside a run never overlap the next one.
            next_due = self.due + interval
            if next_due <= now:  # the scheduler was late (or the clock jumped): a full interval
                next_due = now + interval
            self.due = next_due
            previous = self._running
            if previous is not None and previous.is_alive():
                return  # the previous run overran (a hanging backend): skip this tick
            tick = Tick(next_due, abort=self._abort, clock=self._clock, round=shared)
            thread = threading.Thread(target=self._run, args=(tick,), name=self._name, daemon=True)
            self._running = thread
            try:
                thread.start()
            except Exception:
                self._running = None
                report_failure(f"starting a run of {self._name}")

    def _run(self, tick: Tick) -> None:
        lower_priority()  # the run's own thread: the app's threads come first (background.py)
        try:
            self._task(tick)
        except BaseException:  # a run's thread ends here, whatever it met
            report_failure(f"a run of {self._name}")
        finally:
            self._runs += 1
            if not tick.final:
                now = self._clock()
                if now >= tick.deadline:  # the run overran (a hanging backend): rest a full
                    with self._lock:  # interval rather than catch up
                        self.due = max(self.due, now + self._interval)
                self._scheduler._ensure_thread()

    def _reset_in_child(self) -> None:
        # The parent's run threads are gone; the child's first run comes one interval on.
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._running = None
        self._runs = 0
        self.due = self._clock() + self._interval


def _clamp_interval(seconds: float) -> float:
    if math.isnan(seconds):
        return MAX_INTERVAL
    return min(max(seconds, _MIN_INTERVAL), MAX_INTERVAL)
