"""After ``os.fork()`` in process: the child starts from zero, with its own identity and threads.

Each test forks once; the child runs a small function, sends its result as JSON through a pipe
and leaves with ``os._exit`` whatever happens; the parent reads with a deadline and reaps it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from fluxstack_otel import Monitoring, load_config
from fluxstack_otel._internal.http import fold, projection, tally
from fluxstack_otel._internal.sinks.periodic import PeriodicWorker, Tick
from support.fork import in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    """A pipeline with no exporter threads and not the process-wide provider."""
    instance = Monitoring(load_config({"set_global": False, "exporters": []}))
    try:
        yield instance
    finally:
        instance.shutdown()


def values(monitoring: Monitoring, name: str) -> list[float]:
    return [
        point.value  # type: ignore[union-attr]
        for rm in monitoring.collect().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_custom_counts_from_before_the_fork_stay_in_the_parent(monitoring: Monitoring) -> None:
    """An SDK counter starts empty in the child and counts the child's own; the parent keeps its."""
    counter = monitoring.meter.create_counter("jobs")
    counter.add(5, {"kind": "a"})

    def child() -> list[list[float]]:
        before = values(monitoring, "jobs")
        counter.add(1, {"kind": "a"})
        return [before, values(monitoring, "jobs")]

    assert in_child(child) == [[], [1]]
    counter.add(1, {"kind": "a"})
    assert values(monitoring, "jobs") == [6]


def test_http_counts_and_identity_are_the_childs_own(monitoring: Monitoring) -> None:
    """The child has a new service.instance.id and none of the parent's HTTP series."""
    recorder = monitoring._recorder
    assert recorder is not None
    recorder.record("GET", "/", 200, None, 0.01, 0, 5, time.perf_counter())

    def instance() -> str:
        (rm,) = monitoring.collect().resource_metrics
        return str(rm.resource.attributes["service.instance.id"])

    def child() -> tuple[str, list[float]]:
        return instance(), values(monitoring, "http_requests_total")

    child_instance, child_requests = in_child(child)
    assert child_instance != instance()
    assert child_requests == []
    assert values(monitoring, "http_requests_total") == [1]


def test_a_lock_held_at_fork_time_does_not_hang_the_child(monitoring: Monitoring) -> None:
    """A collection in progress in another thread when the fork happens cannot deadlock the child."""
    counter = monitoring.meter.create_counter("held")
    counter.add(1)
    storage = next(iter(monitoring._provider._measurement_consumer._reader_storages.values()))  # type: ignore[union-attr]
    (match,) = next(iter(storage._instrument_view_instrument_matches.values()))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with match._lock, storage._lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait(5)
    try:

        def child() -> list[float]:
            counter.add(2)
            return values(monitoring, "held")

        assert in_child(child, timeout=5) == [2]
    finally:
        release.set()
        thread.join(5)


def test_a_periodic_worker_runs_again_in_the_child() -> None:
    """A running exporter thread is restarted in the child; a stopped one stays stopped."""
    runs: list[int] = []
    ran = threading.Event()

    def task(tick: Tick) -> None:
        runs.append(os.getpid())
        ran.set()

    running = PeriodicWorker("fluxstack-otel-test-running", 0.02, task)
    stopped = PeriodicWorker("fluxstack-otel-test-stopped", 0.02, lambda tick: None)
    running.start()
    stopped.start()
    stopped.stop(1.0)
    try:

        def child() -> list[bool]:
            ran.clear()
            return [ran.wait(5) and runs[-1] == os.getpid(), not stopped.running]

        assert in_child(child) == [True, True]
    finally:
        running.stop(1.0)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_otlp_exporter_of_a_forked_worker_delivers(protocol: str) -> None:
    """An OTLP exporter that has exported in the parent exports the child's own data after fork."""
    from fluxstack_otel._internal.sinks.otlp import OtlpSink
    from receivers import RECEIVERS, metrics_of

    with RECEIVERS[protocol]() as receiver:
        config = {
            "set_global": False,
            "system_metrics": False,
            "exporters": [
                {
                    "type": "otlp",
                    "endpoint": receiver.base_url,
                    "protocol": protocol,
                    "interval": 60,
                }
            ],
        }
        monitoring = Monitoring(load_config(config))
        try:
            (sink,) = [s for s in monitoring._sinks if isinstance(s, OtlpSink)]
            recorder = monitoring._recorder
            assert recorder is not None
            recorder.record("GET", "/parent", 200, None, 0.01, 0, 5, time.perf_counter())
            assert sink.export(5.0)  # the parent's connection is open when the fork happens

            def child() -> bool:
                recorder.record("GET", "/child", 200, None, 0.01, 0, 5, time.perf_counter())
                return sink.export(5.0)

            assert in_child(child, timeout=20.0) is True
            receiver.wait_for(lambda r: len(r.requests) >= 2)
        finally:
            monitoring.shutdown(5.0)

    routes = [
        {kv.value.string_value for kv in point.attributes if kv.key == "route"}
        for request in receiver.requests
        for point in metrics_of(request)["http_requests_total"].sum.data_points
    ]
    assert routes[0] == {"/parent"}
    assert {"/child"} in routes[1:]


@pytest.mark.parametrize("read", ["snapshot", "totals", "series"])
def test_a_fork_while_a_collection_yields_leaves_the_recorder_usable_in_the_child(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    """A long collection lets the app's threads run (``runtime/gil.py``), never while holding
    the recorder's lock: a fork at that moment would leave the lock held in the child."""
    recorder = monitoring._recorder
    assert recorder is not None
    recorder.record("GET", "/a", 200, None, 0.01, 0, 5, time.perf_counter())
    paused, resume = threading.Event(), threading.Event()
    parent = os.getpid()

    def pause() -> None:
        if os.getpid() == parent and not paused.is_set():  # the reader's first yield only
            paused.set()
            resume.wait(10)

    monkeypatch.setattr(fold, "yield_now", pause)
    monkeypatch.setattr(projection, "yield_now", pause)
    monkeypatch.setattr(tally, "yield_now", pause)
    reader = {"snapshot": recorder.snapshot, "series": recorder.series,
              "totals": lambda: recorder.totals(["http_requests_total"])}[read]  # fmt: skip
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert paused.wait(5)
    try:

        def child() -> list[float]:
            recorder.record("GET", "/a", 200, None, 0.01, 0, 5, time.perf_counter())
            return values(monitoring, "http_requests_total")

        assert in_child(child, timeout=5) == [1]  # the child's own request, not the parent's
    finally:
        resume.set()
        thread.join(5)
