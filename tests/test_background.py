"""Scrapes render on the package's own thread, at the lowest CPU priority, never on the app's."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from fluxstack_otel._internal.runtime import background
from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Tick
from support.fork import in_child


def _where() -> tuple[str, int, int]:
    me = threading.current_thread()
    return me.name, threading.get_native_id(), os.getpid()


def test_a_render_runs_on_the_packages_thread_and_returns_its_result() -> None:
    async def main() -> tuple[tuple[str, int, int], str]:
        made = await background.run(_where)
        default = await asyncio.get_running_loop().run_in_executor(None, _where)
        return made, default[0]

    (name, _, pid), default = asyncio.run(main())
    assert name.startswith("fluxstack-otel-render")
    assert not default.startswith("fluxstack-otel-render")  # the app's executor is left alone
    assert pid == os.getpid()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_render_thread_has_the_lowest_priority_and_the_app_keeps_its_own() -> None:
    async def main() -> tuple[int, int]:
        _, tid, _ = await background.run(_where)
        _, app_tid, _ = await asyncio.get_running_loop().run_in_executor(None, _where)
        return os.getpriority(os.PRIO_PROCESS, tid), os.getpriority(os.PRIO_PROCESS, app_tid)

    render, app = asyncio.run(main())
    assert render == background.LOW_PRIORITY
    assert app == os.getpriority(os.PRIO_PROCESS, 0)


def test_a_forked_child_renders_on_a_thread_of_its_own() -> None:
    """The parent's render thread is gone in a child: the first render there makes one."""

    async def once() -> tuple[str, int, int]:
        return await asyncio.wait_for(background.run(_where), 5)

    asyncio.run(once())  # the parent's thread exists
    assert in_child(lambda: asyncio.run(once())[2] == os.getpid(), timeout=10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_a_periodic_run_has_the_lowest_priority_too() -> None:
    """Exporters and alerts run on threads of their own: at the render thread's priority."""
    seen: list[int] = []
    ran = threading.Event()

    def task(tick: Tick) -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        ran.set()

    worker = PeriodicWorker("fluxstack-otel-test-priority", 3600.0, task, run_at_start=True)
    worker.start()
    try:
        assert ran.wait(5)
    finally:
        worker.stop(5.0)
    assert seen[0] == background.LOW_PRIORITY
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != background.LOW_PRIORITY
