"""PeriodicWorker: runs every interval, flushes once at stop, and stops within its bound."""

from __future__ import annotations

import itertools
import threading
import time

from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.periodic import PeriodicWorker, Tick


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_runs_every_interval_and_once_more_at_stop() -> None:
    """Runs repeat while started; stop adds exactly one final run, marked final."""
    ticks: list[Tick] = []
    worker = PeriodicWorker("fluxstack-otel-test", 0.01, ticks.append)
    worker.start()
    wait_for(lambda: len(ticks) >= 3)
    assert worker.stop(2.0) is True
    assert ticks[-1].final
    assert not any(t.final for t in ticks[:-1])
    count = len(ticks)
    time.sleep(0.05)
    assert len(ticks) == count  # nothing runs after stop


def test_first_run_waits_one_interval() -> None:
    """Start does not run the task at once: the first run comes an interval later."""
    ticks: list[Tick] = []
    worker = PeriodicWorker("fluxstack-otel-test", 60.0, ticks.append)
    worker.start()
    time.sleep(0.05)
    assert ticks == []
    worker.stop(1.0)
    assert len(ticks) == 1
    assert ticks[0].final


def test_a_failing_task_is_reported_and_the_worker_goes_on() -> None:
    """An exception in a run is counted and logged, and the next run still happens."""
    runs = []

    def task(tick: Tick) -> None:
        runs.append(tick)
        raise RuntimeError("backend exploded")

    kind = "a run of fluxstack-otel-failing"
    before = failure_counts().get(kind, 0)
    worker = PeriodicWorker("fluxstack-otel-failing", 0.01, task)
    worker.start()
    wait_for(lambda: len(runs) >= 3)
    worker.stop(1.0)
    assert failure_counts()[kind] - before >= 3


def test_stop_returns_within_its_bound_when_the_task_hangs() -> None:
    """A run stuck forever is abandoned: stop returns False after its timeout, not later."""
    release = threading.Event()
    started = threading.Event()

    def task(tick: Tick) -> None:
        started.set()
        release.wait(30)

    worker = PeriodicWorker("fluxstack-otel-hanging", 0.01, task)
    worker.start()
    assert started.wait(5)
    t0 = time.monotonic()
    assert worker.stop(0.2) is False
    elapsed = time.monotonic() - t0
    release.set()
    assert 0.15 < elapsed < 1.0


def test_stop_cuts_retry_backoff_short() -> None:
    """A run waiting out a retry backoff gives up as soon as stop is called."""
    waiting = threading.Event()
    outcomes: list[bool] = []

    def task(tick: Tick) -> None:
        if tick.final:
            return
        waiting.set()
        outcomes.append(tick.wait(0.25))  # fits before the run's deadline (the next interval)

    worker = PeriodicWorker("fluxstack-otel-backoff", 0.3, task)
    worker.start()
    assert waiting.wait(5)
    t0 = time.monotonic()
    worker.stop(2.0)
    assert time.monotonic() - t0 < 0.2
    assert outcomes == [False]


def test_a_backoff_that_would_pass_the_deadline_is_refused() -> None:
    """Tick.wait says give up instead of sleeping past the run's deadline."""
    tick = Tick(time.monotonic() + 0.05)
    t0 = time.monotonic()
    assert tick.wait(1.0) is False
    assert time.monotonic() - t0 < 0.04
    assert tick.wait(0.001) is True


def test_stop_without_start_runs_nothing() -> None:
    """A worker never started (a sibling sink failed to start) stops at once, without a run."""
    ticks: list[Tick] = []
    worker = PeriodicWorker("fluxstack-otel-idle", 0.01, ticks.append)
    assert worker.stop(1.0) is False
    worker.start()  # too late: stays stopped
    time.sleep(0.03)
    assert ticks == []


def test_stop_is_idempotent() -> None:
    """A second stop returns the first one's outcome and runs nothing more."""
    ticks: list[Tick] = []
    worker = PeriodicWorker("fluxstack-otel-twice", 60.0, ticks.append)
    worker.start()
    assert worker.stop(1.0) is True
    assert worker.stop(1.0) is True
    assert len(ticks) == 1


def test_slow_runs_skip_rather_than_pile_up() -> None:
    """After a run longer than the interval the next waits a full interval: no catching up."""
    starts: list[float] = []

    def task(tick: Tick) -> None:
        starts.append(time.monotonic())
        time.sleep(0.05)

    worker = PeriodicWorker("fluxstack-otel-slow", 0.02, task)
    worker.start()
    wait_for(lambda: len(starts) >= 4)
    worker.stop(1.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps[:3]) >= 0.065  # 0.05 of work + a full 0.02 interval; catching up gives 0.05
