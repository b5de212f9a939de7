"""The six system metrics as OpenTelemetry observable instruments, read at collection time.

Readings come from a ``SystemSource`` (psutil on the live process by default, injectable for tests)
so nothing is sampled between collections and nothing runs on the request path.

``process_memory_heap_used_bytes``: CPython has no V8-style heap with a "used" figure. The honest
equivalent is the process's *resident anonymous memory* (``RssAnon``: RSS minus file-backed and
shared pages): the malloc heap plus CPython's object arenas plus thread stacks, without the mapped
interpreter, libraries and files. Allocating objects moves it one-for-one; it falls when the
allocator returns memory to the OS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Protocol

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from fluxstack_otel._internal.metrics import catalog as cat

__all__ = ["PsutilSource", "SystemSource", "register_system_metrics"]


class SystemSource(Protocol):
    """Where system readings come from; one method per figure, each cheap."""

    def rss_bytes(self) -> float: ...
    def heap_used_bytes(self) -> float: ...
    def cpu_user_seconds(self) -> float: ...
    def memory_total_bytes(self) -> float: ...
    def load_average_1m(self) -> float: ...


class PsutilSource:
    """Live readings of the current process through psutil.

    The psutil handle is re-created when the pid changes, so readings stay correct in a forked
    worker (a handle made before ``fork()`` would still describe the parent).
    """

    def __init__(self) -> None:
        self._pid = -1
        self._proc: psutil.Process | None = None

    def _process(self) -> psutil.Process:
        pid = os.getpid()
        if self._proc is None or pid != self._pid:
            self._proc = psutil.Process(pid)
            self._pid = pid
        return self._proc

    def rss_bytes(self) -> float:
        return float(self._process().memory_info().rss)

    def heap_used_bytes(self) -> float:
        info = self._process().memory_info()
        shared = getattr(info, "shared", None)
        # Linux: rss - shared == RssAnon. Elsewhere psutil has no split; RSS is the best bound.
        return float(info.rss - shared) if shared is not None else float(info.rss)

    def cpu_user_seconds(self) -> float:
        return float(self._process().cpu_times().user)

    def memory_total_bytes(self) -> float:
        return float(psutil.virtual_memory().total)

    def load_average_1m(self) -> float:
        return float(os.getloadavg()[0])


def register_system_metrics(
    meter: Meter, source: SystemSource, loop_lag: Callable[[], float | None]
) -> None:
    """Create the six system instruments on ``meter``.

    Args:
        meter: The meter of the monitoring's MeterProvider.
        source: Where the readings come from.
        loop_lag: Returns the current event-loop lag in seconds, or None before a probe has run.
    """

    def gauge(spec: cat.MetricSpec, read: Callable[[], float | None]) -> None:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            value = read()
            return () if value is None else (Observation(value),)

        meter.create_observable_gauge(
            spec.name, callbacks=[callback], unit=spec.unit, description=spec.help
        )

    gauge(cat.PROCESS_RSS, source.rss_bytes)
    gauge(cat.PROCESS_HEAP_USED, source.heap_used_bytes)

    def cpu_callback(options: CallbackOptions) -> Iterable[Observation]:
        return (Observation(source.cpu_user_seconds()),)

    meter.create_observable_counter(
        cat.PROCESS_CPU_USER.name,
        callbacks=[cpu_callback],
        unit=cat.PROCESS_CPU_USER.unit,
        description=cat.PROCESS_CPU_USER.help,
    )
    gauge(cat.EVENT_LOOP_LAG, loop_lag)
    gauge(cat.SYSTEM_MEMORY_TOTAL, source.memory_total_bytes)
    gauge(cat.SYSTEM_LOAD_1M, source.load_average_1m)
