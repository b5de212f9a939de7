"""The thread a scrape renders on: the package's own, at the lowest CPU priority.

A scrape through the app's middleware used to render in the event loop's default executor, on
the app's threads. A render of 10,000 series takes a few hundred milliseconds of CPU; on a core
the event loop shares, the scheduler split it half and half, and every request that arrived
during a scrape waited twice as long (measured under uvicorn pinned to one core, with a scrape
every 2 s: wrk's p99 8-10 ms without scrapes, 27-32 ms with). Here a scrape renders on one
thread of the package's, which lowers its own scheduling priority once (``nice`` 19, Linux
per-thread; elsewhere it keeps the process's): when the app has work, the app runs first, and
the render takes the idle time. The thread yields the interpreter lock while it walks the series
(``gil.py``), so it seldom holds the lock while it waits for the CPU.

The priority cannot be raised back without privileges, which is why the thread is the
package's own and never the app's. A forked child makes its own on first use. The periodic
jobs' runs (exporters, alerts: ``scheduler.py``) take the same priority: each runs on a thread
of its own that ends with the run.

In: a function to run. Out: an awaitable of its result (``run``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # both loaded by the first scrape, not with the package (a lean default)
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["LOW_PRIORITY", "lower_priority", "run"]

_T = TypeVar("_T")

LOW_PRIORITY = 19
"""The ``nice`` value of the render thread: the lowest priority a process may take."""

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid it was made in, the executor)


def lower_priority() -> None:
    """Lower the calling thread's scheduling priority to ``LOW_PRIORITY`` (for good)."""
    # Linux only: there a thread id names the thread; elsewhere it may name another process.
    # Not allowed (a sandbox): the process's priority stays.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY)


def _executor() -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():  # none yet, or the parent's (forked)
            pool = ThreadPoolExecutor(
                1, thread_name_prefix="fluxstack-otel-render", initializer=lower_priority
            )
            _pool = (os.getpid(), pool)
        return _pool[1]


def run(fn: Callable[[], _T]) -> asyncio.Future[_T]:
    """Run ``fn`` on the render thread; await the result from the running event loop."""
    import asyncio  # loaded already: the caller runs on an event loop

    return asyncio.get_running_loop().run_in_executor(_executor(), fn)
