"""System metrics: real psutil readings, the heap definition, fork safety and the loop-lag probe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.runtime.looplag import LoopLagProbe
from fluxstack_otel._internal.runtime.system import PsutilSource


def gauges(m: Monitoring) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(m.render_prometheus().decode()):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def test_all_six_system_metrics_have_live_values() -> None:
    """The exposition carries the six system metrics with readings of this very process."""
    m = configure_monitoring({"http_metrics": False})
    try:
        g = gauges(m)
        rss = psutil.Process().memory_info().rss
        assert abs(g[cat.PROCESS_RSS.name] - rss) < 64 * 2**20
        assert 0 < g[cat.PROCESS_HEAP_USED.name] <= g[cat.PROCESS_RSS.name]
        assert g[cat.PROCESS_CPU_USER.name] == pytest.approx(
            psutil.Process().cpu_times().user, abs=1.0
        )
        assert g[cat.SYSTEM_MEMORY_TOTAL.name] == psutil.virtual_memory().total
        assert g[cat.SYSTEM_LOAD_1M.name] == pytest.approx(os.getloadavg()[0], abs=2.0)
        # No sample yet: the probe starts with the app's loop.
        assert cat.EVENT_LOOP_LAG.name not in g
    finally:
        m.shutdown()


_HEAP_PROBE = """
import gc
from fluxstack_otel._internal.runtime.system import PsutilSource
source = PsutilSource()
gc.collect()
before = source.heap_used_bytes()
# 200,000 small bytes objects (CPython's object arenas) plus 25 MB of larger buffers (malloc).
blob = [bytes(120) + i.to_bytes(4, "little") for i in range(200_000)]
blob.extend(bytearray(b"x" * 25_000) for _ in range(1_000))
print(int(source.heap_used_bytes() - before))
"""


@pytest.mark.slow
def test_heap_used_moves_with_allocated_objects() -> None:
    """Allocating 50 MB of Python objects raises heap-used by at least 40 MB.

    Run in a fresh interpreter: memory freed earlier in a long test process is reused by new
    objects without growing the resident heap, which would hide the allocation.
    """
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(out.stdout) >= 40 * 2**20, out


def test_readings_follow_the_pid_after_fork() -> None:
    """A PsutilSource made before fork reports the child's own figures in the child."""
    source = PsutilSource()
    source.rss_bytes()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            ok = source._process().pid == os.getpid()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


@pytest.mark.slow
def test_loop_lag_sees_a_200ms_block() -> None:
    """A callback that blocks the loop 200 ms makes the lag gauge read at least 0.1 s."""
    probe = LoopLagProbe(interval=0.02, window=5.0)

    async def main() -> float | None:
        probe.ensure_started()
        await asyncio.sleep(0.1)
        time.sleep(0.2)  # the blocking "endpoint"
        await asyncio.sleep(0.1)
        value = probe.value()
        probe.stop()
        await asyncio.sleep(0)
        return value

    value = asyncio.run(main())
    assert value is not None
    assert value >= 0.1


def test_loop_lag_reads_near_zero_on_an_idle_loop() -> None:
    """With nothing blocking, the worst lag over the window stays small."""
    probe = LoopLagProbe(interval=0.02, window=5.0)

    async def main() -> float | None:
        probe.ensure_started()
        await asyncio.sleep(0.3)
        probe.stop()
        await asyncio.sleep(0)
        return probe.value()

    value = asyncio.run(main())
    assert value is not None
    assert value < 0.1


def test_probe_restarts_on_a_new_loop() -> None:
    """After its loop is gone, the probe starts again on the next loop that serves the app."""
    probe = LoopLagProbe(interval=0.01)

    async def once() -> bool:
        probe.ensure_started()
        await asyncio.sleep(0.05)
        return probe.active

    assert asyncio.run(once())
    assert asyncio.run(once())
    probe.stop()


def test_cpu_cores_is_the_affinity_capped_by_a_cgroup_quota(tmp_path: Path) -> None:
    """system_cpu_cores reads the affinity mask, and a cgroup v2 or v1 CPU quota caps it."""
    affinity = float(len(os.sched_getaffinity(0)))
    membership = tmp_path / "cgroup"
    membership.write_text("0::/app.slice/web\n")
    root = tmp_path / "fs"
    (root / "app.slice" / "web").mkdir(parents=True)
    source = PsutilSource(cgroup_root=root, proc_cgroup=membership)
    assert source.cpu_count() == affinity  # no cpu.max anywhere: no quota
    (root / "app.slice" / "web" / "cpu.max").write_text("max 100000\n")
    assert source.cpu_count() == affinity
    (root / "app.slice" / "cpu.max").write_text("50000 100000\n")  # a parent's limit counts
    assert source.cpu_count() == pytest.approx(min(affinity, 0.5))
    membership.write_text("4:memory:/x\n3:cpu,cpuacct:/docker/abc\n")
    (root / "cpu" / "docker" / "abc").mkdir(parents=True)
    (root / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("150000\n")
    (root / "cpu" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    assert source.cpu_count() == pytest.approx(min(affinity, 1.5))
    (root / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("-1\n")
    assert source.cpu_count() == affinity
    assert PsutilSource(proc_cgroup=tmp_path / "absent").cpu_count() == affinity


def test_cpu_cores_is_exported_with_the_live_reading() -> None:
    """The exposition carries system_cpu_cores, the CPUs this process may use here."""
    m = configure_monitoring({"http_metrics": False})
    try:
        assert gauges(m)[cat.SYSTEM_CPU_CORES.name] == PsutilSource().cpu_count() >= 1
    finally:
        m.shutdown()
