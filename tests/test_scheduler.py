"""The one periodic scheduler: isolation of jobs, runs that die, a thread that is hit, huge times."""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.runtime.scheduler import (
    MAX_INTERVAL,
    PeriodicWorker,
    Scheduler,
    Tick,
    clamp_wait,
)


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def counter() -> tuple[list[float], Callable[[Tick], None]]:
    runs: list[float] = []

    def task(tick: Tick) -> None:
        runs.append(time.monotonic())

    return runs, task


def test_every_worker_of_a_scheduler_shares_its_one_thread() -> None:
    """Three jobs on one scheduler are dispatched by one scheduler thread, which ends with them."""
    scheduler = Scheduler()
    jobs = [
        PeriodicWorker(f"fluxstack-otel-test-{i}", 0.01, counter()[1], scheduler=scheduler)
        for i in range(3)
    ]
    for job in jobs:
        job.start()
    assert len(scheduler.jobs) == 3
    name = "fluxstack-otel-scheduler"
    assert scheduler._thread is not None
    assert scheduler._thread.name == name
    thread = scheduler._thread
    for job in jobs:
        assert job.stop(2.0)
    thread.join(5)
    assert not thread.is_alive()  # nothing left to schedule: the thread ends


def test_a_hanging_job_delays_no_other_job() -> None:
    """A run stuck forever skips its own ticks while another job on the scheduler keeps running."""
    scheduler = Scheduler()
    release = threading.Event()
    hung = threading.Event()

    def hang(tick: Tick) -> None:
        hung.set()
        release.wait(30)

    runs, task = counter()
    stuck = PeriodicWorker("fluxstack-otel-test-stuck", 0.01, hang, scheduler=scheduler)
    healthy = PeriodicWorker("fluxstack-otel-test-healthy", 0.01, task, scheduler=scheduler)
    stuck.start()
    healthy.start()
    try:
        assert hung.wait(5)
        before = len(runs)
        wait_for(lambda: len(runs) >= before + 5)
        assert stuck.runs == 0  # its later ticks were skipped, not piled up
    finally:
        release.set()
        healthy.stop(2.0)
        stuck.stop(2.0)


def test_a_run_that_dies_of_a_base_exception_is_counted_and_the_job_goes_on() -> None:
    """SystemExit raised in a run ends that run only: it is counted and the next tick runs."""
    runs: list[int] = []

    def task(tick: Tick) -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise SystemExit("a run that dies")

    kind = "a run of fluxstack-otel-test-dies"
    before = failure_counts().get(kind, 0)
    worker = PeriodicWorker("fluxstack-otel-test-dies", 0.01, task, scheduler=Scheduler())
    worker.start()
    wait_for(lambda: len(runs) >= 4)
    worker.stop(2.0)
    assert failure_counts()[kind] - before == 2


def test_the_scheduler_thread_survives_an_exception_raised_into_it() -> None:
    """An exception injected into the scheduler thread is reported and dispatching goes on."""
    scheduler = Scheduler()
    runs, task = counter()
    worker = PeriodicWorker("fluxstack-otel-test-hit", 0.01, task, scheduler=scheduler)
    worker.start()
    wait_for(lambda: len(runs) >= 2)
    thread = scheduler._thread
    assert thread is not None
    assert thread.ident is not None
    kind = "the periodic scheduler (resumed)"
    before = failure_counts().get(kind, 0)
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)
    )
    assert hit == 1
    wait_for(lambda: failure_counts().get(kind, 0) > before)
    count = len(runs)
    wait_for(lambda: len(runs) >= count + 3)
    assert scheduler._thread is thread
    assert thread.is_alive()
    worker.stop(2.0)


def test_a_dead_scheduler_thread_is_restarted_by_the_next_wake() -> None:
    """With its thread gone (as if killed), the scheduler starts a new one and the jobs run on."""
    scheduler = Scheduler()
    runs, task = counter()
    worker = PeriodicWorker("fluxstack-otel-test-dead", 0.01, task, scheduler=scheduler)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    scheduler._thread = dead  # what a thread that died leaves behind
    worker.start()  # start wakes the scheduler: the supervisor sees a dead thread
    wait_for(lambda: len(runs) >= 3)
    assert scheduler._thread is not dead
    worker.stop(2.0)


@pytest.mark.parametrize("interval", [1e308, math.inf, 1e9 * 10])
def test_a_huge_interval_neither_crashes_nor_runs_early(interval: float) -> None:
    """Intervals past any sane bound are clamped: start, stop and the final run all work."""
    ticks: list[Tick] = []
    worker = PeriodicWorker(
        "fluxstack-otel-test-huge", interval, ticks.append, scheduler=Scheduler()
    )
    assert worker.interval == MAX_INTERVAL
    worker.start()
    assert worker.stop(1e308) is True  # a huge stop bound is clamped too
    assert [t.final for t in ticks] == [True]


def test_a_huge_backoff_that_fits_a_huge_deadline_is_cut_short_by_a_stop() -> None:
    """Tick.wait of 1e300 s before an infinite deadline neither overflows nor ignores the stop."""
    abort = threading.Event()
    tick = Tick(math.inf, abort=abort)
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(tick.wait(1e300)))
    waiter.start()
    abort.set()
    waiter.join(5)
    assert outcome == [False]


def test_clamp_wait_keeps_every_value_within_what_event_wait_takes() -> None:
    """Negative, NaN, infinite and huge waits become 0 or at most an hour."""
    assert clamp_wait(-1.0) == 0.0
    assert clamp_wait(math.nan) == 0.0
    assert clamp_wait(math.inf) == 3600.0
    assert clamp_wait(0.5) == 0.5


def test_run_soon_brings_the_next_run_forward() -> None:
    """A job with a long interval runs at once after run_soon (the fork hooks use it)."""
    runs, task = counter()
    worker = PeriodicWorker("fluxstack-otel-test-soon", 3600.0, task, scheduler=Scheduler())
    worker.start()
    assert runs == []
    worker.run_soon()
    wait_for(lambda: len(runs) == 1)
    worker.stop(2.0)


def test_the_longest_configurable_durations_neither_crash_nor_kill_a_background_job(
    tmp_path: Any,
) -> None:
    """Every interval at the configuration's cap (365 days): configure, run at start, shut down."""
    from fluxstack_otel import configure_monitoring

    seconds = "365d"  # a bare number above a day is refused as a likely unit mistake
    monitoring = configure_monitoring(
        {
            "set_global": False,
            "collect_interval": seconds,
            "alert_evaluation_interval": seconds,
            "retention_period": seconds,
            "thresholds": {"error_rate": 0.5},
            "multiprocess": {"enabled": True, "directory": str(tmp_path)},
            "exporters": [{"type": "console", "interval": seconds, "stream": "log"}],
        }
    )
    try:
        wait_for(lambda: any(tmp_path.glob("worker-*.json")))  # the publisher ran at start
        alerts = monitoring._p.alerts
        assert alerts is not None
        wait_for(lambda: alerts._worker.runs >= 1)  # the first evaluation too
    finally:
        started = time.monotonic()
        monitoring.shutdown(2.0)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("seconds", [1e9, 1e18, 1e300])
def test_a_worker_given_a_huge_interval_runs_and_stops(seconds: float) -> None:
    """Below the configuration, the scheduler clamps what it is given: no overflow, a bounded stop."""
    runs, task = counter()
    worker = PeriodicWorker("fluxstack-otel-test-huge", seconds, task, scheduler=Scheduler())
    worker.start()
    worker.run_soon()
    wait_for(lambda: len(runs) == 1)
    started = time.monotonic()
    worker.stop(2.0)
    assert time.monotonic() - started < 3.0
