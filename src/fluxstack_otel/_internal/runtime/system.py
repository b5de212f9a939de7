"""The seven system metrics as OpenTelemetry observable instruments, read at collection time.

Readings come from a ``SystemSource`` (psutil on the live process by default, injectable for tests)
so nothing is sampled between collections and nothing runs on the request path.

``process_memory_heap_used_bytes``: CPython has no V8-style heap with a "used" figure. The honest
equivalent is the process's *resident anonymous memory* (``RssAnon``: RSS minus file-backed and
shared pages): the malloc heap plus CPython's object arenas plus thread stacks, without the mapped
interpreter, libraries and files. Allocating objects moves it one-for-one; it falls when the
allocator returns memory to the OS.

``system_cpu_cores``: the CPUs the process may use, which is what "100 % CPU" means for it: the
scheduler affinity mask (``taskset``, ``cpuset``), capped by a cgroup CPU quota where one is set
(``docker --cpus 1.5`` reads 1.5). Exporting it lets a PromQL rule divide by the CPUs of the host
that runs the app rather than by a number written into the rules file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
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
    def cpu_count(self) -> float: ...


class PsutilSource:
    """Live readings of the current process through psutil.

    The psutil handle is re-created when the pid changes, so readings stay correct in a forked
    worker (a handle made before ``fork()`` would still describe the parent).

    Args:
        cgroup_root: Where the cgroup file systems are mounted (a test points it elsewhere).
        proc_cgroup: The process's cgroup membership file.
    """

    def __init__(
        self,
        *,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        proc_cgroup: Path = Path("/proc/self/cgroup"),
    ) -> None:
        self._pid = -1
        self._proc: psutil.Process | None = None
        self._cgroup_root = cgroup_root
        self._proc_cgroup = proc_cgroup

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

    def cpu_count(self) -> float:
        if hasattr(os, "sched_getaffinity"):
            cpus = float(max(1, len(os.sched_getaffinity(0))))
        else:
            cpus = float(os.cpu_count() or 1)
        quota = cgroup_cpu_quota(self._cgroup_root, self._proc_cgroup)
        return cpus if quota is None else min(cpus, quota)


def cgroup_cpu_quota(root: Path, proc_cgroup: Path) -> float | None:
    """The CPU quota of the process's cgroup and its ancestors, in CPUs; None when unlimited.

    cgroup v2 (``cpu.max``: ``"<quota> <period>"`` or ``"max <period>"``) and v1
    (``cpu/cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, -1 for none); the smallest limit on the
    way up to the root counts, as the kernel enforces every one of them.
    """
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    limits: list[float | None] = []
    for line in lines:
        ident, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if ident == "0" and not controllers:  # v2: one unified hierarchy
            for directory in _up_to(root, path):
                limits.append(_ratio(_read(directory / "cpu.max")))
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's hierarchy
            for directory in _up_to(root / "cpu", path):
                quota = _read(directory / "cpu.cfs_quota_us")
                limits.append(_ratio(quota + _read(directory / "cpu.cfs_period_us")))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").split()
    except OSError:
        return []


def _up_to(root: Path, path: str) -> list[Path]:
    """``root/path`` and each of its parents up to ``root`` (a namespaced cgroup shows ``/``)."""
    parts = [p for p in path.strip().split("/") if p and p != ".."]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _ratio(fields: list[str]) -> float | None:
    try:
        quota, period = float(fields[0]), float(fields[1])
    except (IndexError, ValueError):  # "max": no quota
        return None
    if quota <= 0 or period <= 0 or not math.isfinite(quota / period):
        return None
    return quota / period


def register_system_metrics(
    meter: Meter, source: SystemSource, loop_lag: Callable[[], float | None]
) -> None:
    """Create the seven system instruments on ``meter``.

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
    gauge(cat.SYSTEM_CPU_CORES, source.cpu_count)
