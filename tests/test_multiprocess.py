"""The host view of several workers: summing, compaction of dead workers, staleness, fork.

Other workers are files in the shared directory, written by a second publisher and given another
pid, with liveness injected: the reading and compaction logic runs exactly as in production, and
the test decides which pids are alive. The real multi-process case is test_multiprocess_gunicorn.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import ConfigError, configure_monitoring
from fluxstack_otel._internal.config.model import MultiprocessConfig, load_config
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.catalog import HTTP_REQUEST_DURATION
from fluxstack_otel._internal.metrics.exponential import ExponentialAccumulator
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.runtime.multiprocess.host import HostStream
from fluxstack_otel._internal.sinks.prometheus.sink import render
from support.metricdata import collected_points

Alive = set[int]


def _worker(
    directory: Path,
    alive: Alive,
    *,
    instance: str,
    clock: list[float] | None = None,
    exponential: dict[str, tuple[int, int]] | None = None,
) -> tuple[HostStream, HttpRecorder]:
    recorder = HttpRecorder(
        retention_period=10.0,
        clock=(lambda: clock[0]) if clock is not None else time.perf_counter,
        exponential=exponential,
    )
    local = MetricStream((), recorder.to_metrics, Resource({"service.instance.id": instance}))
    host = HostStream(local, directory, 0.5, alive=lambda pid, started: pid in alive)
    return host, recorder


def _record(recorder: HttpRecorder, n: int, route: str = "/r", now: float | None = None) -> None:
    at = time.perf_counter() if now is None else now
    for _ in range(n):
        recorder.record("GET", route, 200, None, 0.01, 0, 2, at)


def _as_pid(directory: Path, host: HostStream, pid: int) -> Path:
    """Publish ``host`` and move its file to another pid, as if another process had written it."""
    host.publish()
    [source] = [p for p in directory.glob("worker-*.json") if host._instance in p.name]
    doc = json.loads(source.read_text())
    doc["pid"] = pid
    target = directory / f"worker-{pid}-{host._instance}.json"
    target.write_text(json.dumps(doc))
    source.unlink()
    return target


def _requests(host: HostStream, route: str = "/r") -> int:
    text = render(host.collect(), openmetrics=False).decode()
    prefix = f'http_requests_total{{method="GET",route="{route}"}} '
    return sum(
        int(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)
    )


def test_counters_sum_over_workers_and_dead_ones_are_archived_once(tmp_path: Path) -> None:
    """Live and dead workers are summed; a dead worker's file moves into the archive, counted once."""
    alive: Alive = {os.getpid(), 1001}
    me, mine = _worker(tmp_path, alive, instance="me")
    other, theirs = _worker(tmp_path, alive, instance="other")
    gone, its = _worker(tmp_path, alive, instance="gone")
    _record(mine, 3)
    _record(theirs, 5)
    _record(its, 7)
    _as_pid(tmp_path, other, 1001)
    dead_file = _as_pid(tmp_path, gone, 1002)

    assert _requests(me) == 15
    assert not dead_file.exists()  # compacted by the collection that found it dead
    assert _requests(me) == 15
    alive.discard(1001)
    assert _requests(me) == 15
    assert [p.name for p in tmp_path.glob("worker-*.json")] == [f"worker-{os.getpid()}-me.json"]
    archive = json.loads((tmp_path / "archive.json").read_text())
    assert len(archive["absorbed"]) == 2


def test_exponential_buckets_merge_across_workers_exactly(tmp_path: Path) -> None:
    """The host's duration points carry the exponential buckets of every worker's values."""
    alive: Alive = {os.getpid(), 1001}
    wanted = {HTTP_REQUEST_DURATION.name: (160, 20)}
    me, mine = _worker(tmp_path, alive, instance="me", exponential=wanted)
    other, theirs = _worker(tmp_path, alive, instance="other", exponential=wanted)
    now = time.perf_counter()
    for _ in range(30):
        mine.record("GET", "/r", 200, None, 0.0005, 0, 2, now)
    for _ in range(4):
        theirs.record("GET", "/r", 200, None, 0.2, 0, 2, now)
    _as_pid(tmp_path, other, 1001)
    (point,) = collected_points(me.collect(), HTTP_REQUEST_DURATION.name)
    assert point.count == 34
    expected = ExponentialAccumulator()
    for v in [0.0005] * 30 + [0.2] * 4:
        expected.record(v)
    assert point.exponential == expected.snapshot()


def test_the_answering_worker_counts_its_live_requests_not_its_file(tmp_path: Path) -> None:
    """A collection counts the answering worker's requests as of now, even when its file is stale."""
    alive: Alive = {os.getpid(), 1001}
    me, mine = _worker(tmp_path, alive, instance="me")
    other, theirs = _worker(tmp_path, alive, instance="other")
    _record(theirs, 5)
    _as_pid(tmp_path, other, 1001)
    _record(mine, 2)
    me.publish()
    own_file = tmp_path / f"worker-{os.getpid()}-me.json"
    own_file.unlink()
    own_file.mkdir()  # its publish fails from now on: the file can no longer follow the worker
    _record(mine, 3)
    assert _requests(me) == 10
    _record(mine, 1)
    assert _requests(me) == 11


def test_a_crash_between_archiving_and_deleting_does_not_count_twice(tmp_path: Path) -> None:
    """A dead worker's file already named in the archive is deleted without being added again."""
    alive: Alive = {os.getpid()}
    me, _ = _worker(tmp_path, alive, instance="me")
    gone, its = _worker(tmp_path, alive, instance="gone")
    _record(its, 4)
    dead_file = _as_pid(tmp_path, gone, 1002)
    saved = dead_file.read_bytes()
    assert me.compact() == 1
    dead_file.write_bytes(saved)  # as if the process had died before unlinking it
    assert _requests(me) == 4
    assert not dead_file.exists()
    assert _requests(me) == 4


def test_a_workers_total_survives_eviction_and_restart_of_its_series(tmp_path: Path) -> None:
    """An idle series evicted then seen again keeps its earlier counts in the published total."""
    clock = [0.0]
    me, mine = _worker(tmp_path, {os.getpid()}, instance="me", clock=clock)
    _record(mine, 4, now=0.0)
    assert _requests(me) == 4
    clock[0] = 100.0  # past the 10 s retention: the recorder evicts the series
    assert len(mine.snapshot()) == 0
    assert _requests(me) == 4
    _record(mine, 2, now=100.0)  # the series is back with a new start time, counting from 0
    assert _requests(me) == 6


def test_gauges_are_per_live_worker_and_host_gauges_one_value(tmp_path: Path) -> None:
    """Gauges get a pid label, dead workers' gauges go; the host's memory total appears once."""
    alive: Alive = {os.getpid(), 1001}
    me, _ = _worker(tmp_path, alive, instance="me")
    me.publish()
    gauges = [
        ["s", "process_memory_rss_bytes", "gauge", "RSS", "By", [[[], 100]]],
        ["s", "system_memory_total_bytes", "gauge", "Total", "By", [[[], 999]]],
        ["s", "jobs_total", "counter", "Jobs", "1", [[[["queue", "q"]], 2]]],
    ]
    for pid in (1001, 1002):
        doc = {
            "pid": pid,
            "instance": str(pid),
            "started": 0.0,
            "published_ns": time.time_ns(),
            "interval": 0.5,
            "families": gauges,
        }
        (tmp_path / f"worker-{pid}-{pid}.json").write_text(json.dumps(doc))
    text = render(me.collect(), openmetrics=False).decode()
    assert 'process_memory_rss_bytes{pid="1001"} 100' in text
    assert 'pid="1002"' not in text
    assert "system_memory_total_bytes" not in text  # only the answering worker's own reading
    assert 'jobs_total{queue="q"} 4' in text  # the dead worker's counter still counts


def test_a_stale_live_worker_is_logged_and_still_summed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A live worker silent for more than three intervals is reported; its counts remain."""
    alive: Alive = {os.getpid(), 1001}
    me, _ = _worker(tmp_path, alive, instance="me")
    other, theirs = _worker(tmp_path, alive, instance="other")
    _record(theirs, 9)
    path = _as_pid(tmp_path, other, 1001)
    doc = json.loads(path.read_text())
    doc["published_ns"] -= 10 * 10**9
    path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, logger="fluxstack_otel"):
        assert _requests(me) == 9
    assert any("worker pid 1001" in r.getMessage() for r in caplog.records)


def test_every_worker_reports_one_host_instance_id(tmp_path: Path) -> None:
    """The host view's service.instance.id comes from the directory, the same for every worker."""
    a, _ = _worker(tmp_path, {os.getpid()}, instance="a")
    b, _ = _worker(tmp_path, {os.getpid()}, instance="b")
    ids = {
        s.collect().resource_metrics[0].resource.attributes["service.instance.id"] for s in (a, b)
    }
    assert len(ids) == 1
    assert ids != {"a"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_publishes_its_own_counts_under_its_own_identity(tmp_path: Path) -> None:
    """After fork the child starts from zero, with a file of its own; the parent's stays."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "collect_interval": 60,
            "multiprocess": {"enabled": True, "directory": str(tmp_path)},
        }
    )
    try:
        recorder = monitoring._recorder
        assert recorder is not None
        _record(recorder, 3)
        pid = os.fork()
        if pid == 0:  # the child: count its own, publish, leave without running pytest's exit
            code = 1
            try:
                _record(recorder, 2)
                assert monitoring._host is not None
                monitoring._host.publish()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        child = json.loads(next(tmp_path.glob(f"worker-{pid}-*.json")).read_text())
        [counts] = [f for f in child["families"] if f[1] == "http_requests_total"]
        assert [p[1] for p in counts[5]] == [2]
        assert monitoring._host is not None
        assert child["instance"] != monitoring._host._instance
        text = monitoring.render_prometheus().decode()  # the worker's own view: its 3
        assert 'http_requests_total{method="GET",route="/r"} 3' in text
    finally:
        monitoring.shutdown()


def test_config_requires_a_directory_when_enabled() -> None:
    """multiprocess is off by default; enabled without a directory is a ConfigError naming it."""
    assert load_config({}).multiprocess == MultiprocessConfig()
    config = load_config({"multiprocess": {"enabled": True, "directory": "/tmp/x"}})
    assert config.multiprocess.directory == "/tmp/x"
    with pytest.raises(ConfigError, match=r"multiprocess\.directory"):
        load_config({"multiprocess": {"enabled": True}})
    with pytest.raises(ConfigError, match="did you mean 'directory'"):
        load_config({"multiprocess": {"enabled": True, "directry": "/tmp/x"}})
    with pytest.raises(ConfigError, match=r"multiprocess\.enabled"):
        load_config({"multiprocess": {"enabled": "yes"}})


def test_an_unusable_directory_is_a_config_error(tmp_path: Path) -> None:
    """A directory that cannot be created fails at configuration time, naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot use"):
        configure_monitoring(
            {
                "system_metrics": False,
                "multiprocess": {"enabled": True, "directory": str(blocker / "sub")},
            }
        )
