"""One collection per tick: the push sinks that fall due together read one collection.

Each sink's output from the shared collection must be what it writes alone (counts, names,
temporality), the stream must be collected once per tick however many sinks read it, and
nothing of a round may outlive it.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import weakref
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import Metric, MetricsData

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.metrics.stream import DeltaView, MetricStream, PresentedStream
from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Round, Scheduler, Tick
from fluxstack_otel._internal.sinks.console import ConsoleSink
from fluxstack_otel._internal.sinks.file import FileSink
from fluxstack_otel._internal.sinks.json_endpoint import JsonSink
from fluxstack_otel.config import (
    ConsoleExporterConfig,
    FileExporterConfig,
    JsonExporterConfig,
)
from support.pipeline import Pipeline


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


class Counted:
    """The recorder's ``to_metrics`` with a count of the full builds (names=None)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._inner = pipeline.recorder.to_metrics
        self.full = 0

    def __call__(self, names: Collection[str] | None) -> list[Metric]:
        if names is None:
            self.full += 1
        return self._inner(names)


def _without_time(document: dict[str, Any]) -> dict[str, Any]:
    out = dict(document)
    out.pop("timestamp")
    return out


def test_every_sink_writes_from_the_rounds_collection_what_it_writes_alone(
    pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Console, file and JSON push in one round: one collection, the same documents as alone."""
    counted = Counted(pipeline)
    stream = MetricStream([pipeline.reader], counted, pipeline.resource)
    context = pipeline.context()._replace(stream=PresentedStream(stream, lambda d: d))
    console = ConsoleSink(ConsoleExporterConfig(format="json"), context)
    file = FileSink(
        FileExporterConfig(file_path=str(tmp_path / "file.json"), format="json"), context
    )
    push = JsonSink(JsonExporterConfig(file_path=str(tmp_path / "push.json")), context)
    pipeline.requests(7, "/a")
    pipeline.request("/b", 503)

    alone_console = json.loads(console.snapshot())
    file.write()
    alone_file = json.loads((tmp_path / "file.json").read_text())
    push.push(Tick(time.monotonic() + 5))
    alone_push = json.loads((tmp_path / "push.json").read_text())
    assert counted.full == 3  # alone, each sink collects for itself

    shared = Round(3)
    tick = Tick(time.monotonic() + 5, round=shared)
    caplog.set_level(logging.INFO, logger="fluxstack_otel")
    console._run(tick)
    file._run(tick)
    push.push(tick)
    assert counted.full == 4  # the round collected once for the three of them

    logged = json.loads(caplog.records[-1].getMessage())
    assert _without_time(logged) == _without_time(alone_console)
    assert _without_time(json.loads((tmp_path / "file.json").read_text())) == _without_time(
        alone_file
    )
    assert _without_time(json.loads((tmp_path / "push.json").read_text())) == _without_time(
        alone_push
    )
    totals = {
        s["labels"]["route"]: s["value"]
        for m in alone_file["metrics"]
        if m["name"] == "http_requests_total"
        for s in m["series"]
    }
    assert totals == {"/a": 7, "/b": 1}


def _sums(data: MetricsData, name: str) -> tuple[dict[str, float], set[int]]:
    values: dict[str, float] = {}
    temporalities: set[int] = set()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    temporalities.add(int(m.data.aggregation_temporality))  # type: ignore[union-attr]
                    for p in m.data.data_points:
                        values[str(p.attributes.get("route"))] = p.value  # type: ignore[union-attr]
    return values, temporalities


def test_delta_sinks_take_their_own_deltas_from_the_shared_collection(
    pipeline: Pipeline,
) -> None:
    """Two delta readers and a cumulative one in one round: each sees its own temporality."""
    counted = Counted(pipeline)
    stream = MetricStream([pipeline.reader], counted, pipeline.resource)
    first, second = DeltaView(stream), DeltaView(stream)
    pipeline.requests(5)
    first.collect(Round())  # `first` has exported once: its next delta starts here
    pipeline.requests(3)

    shared = Round(3)
    a, commit_a = first.peek(shared)
    b, commit_b = second.peek(shared)
    cumulative = stream.collect_in(shared)
    commit_a()
    commit_b()
    assert counted.full == 2  # `first`'s own round, then one for the three readers
    assert _sums(a, "http_requests_total") == ({"/a": 3}, {1})  # DELTA
    assert _sums(b, "http_requests_total") == ({"/a": 8}, {1})  # its first export: all of it
    assert _sums(cumulative, "http_requests_total") == ({"/a": 8}, {2})  # CUMULATIVE


def test_a_round_makes_each_value_once_across_threads_and_forgets_a_failure() -> None:
    """Concurrent askers get the one object made; a make that raised is made again next time."""
    shared = Round(8)
    made: list[object] = []
    gate = threading.Event()

    def make() -> object:
        gate.wait(5)
        made.append(object())
        return made[-1]

    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(shared.share("k", make))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(made) == 1
    assert got == made * 8

    def broken() -> object:
        raise RuntimeError("collection failed")

    with pytest.raises(RuntimeError):
        shared.share("other", broken)
    assert shared.share("other", lambda: "second try") == "second try"


def test_jobs_due_together_run_in_one_round_that_ends_with_their_runs() -> None:
    """Two jobs started a moment apart share each tick's round; nothing of it is kept after."""
    scheduler = Scheduler()
    ticks: dict[str, list[Tick]] = {"a": [], "b": []}
    values: list[weakref.ref[Any]] = []

    class Value:
        pass

    def task(name: str) -> Any:
        def run(tick: Tick) -> None:
            value = tick.round.share("collection", Value)
            if name == "a":
                values.append(weakref.ref(value))
            ticks[name].append(tick)

        return run

    a = PeriodicWorker("fluxstack-otel-a", 0.05, task("a"), scheduler=scheduler)
    b = PeriodicWorker("fluxstack-otel-b", 0.05, task("b"), scheduler=scheduler)
    a.start()
    b.start()
    try:
        wait_for(lambda: len(ticks["a"]) >= 4 and len(ticks["b"]) >= 4)
    finally:
        a.stop(1.0)
        b.stop(1.0)
    for ta, tb in zip(ticks["a"][:4], ticks["b"][:4], strict=True):
        assert ta.round is tb.round
        assert ta.round.members == 2
    assert ticks["a"][-1].final
    assert ticks["a"][-1].round.members == 1  # the flush at stop runs alone
    del ta, tb
    ticks.clear()  # the ticks were the last holders of their rounds
    gc.collect()
    assert all(ref() is None for ref in values)


@pytest.mark.parametrize("busy", [True, False], ids=["requests between ticks", "idle"])
def test_a_monitoring_with_four_periodic_sinks_collects_once_per_tick(
    tmp_path: Path, busy: bool
) -> None:
    """Console, JSON, file and alerts on one interval: one collection per tick, not four; with
    no request between two ticks, one without the HTTP metrics (the sinks reuse their text)."""
    monitoring = configure_monitoring(
        {
            "service_name": "svc",
            "set_global": False,
            "collect_interval": 0.2,
            "alert_evaluation_interval": 0.2,
            "exporters": [
                {"type": "console", "format": "json"},
                {"type": "json", "file_path": str(tmp_path / "push.json")},
                {"type": "file", "file_path": str(tmp_path / "metrics.prom")},
            ],
        }
    )
    stream = monitoring._p.stream
    recorder = monitoring._recorder
    assert recorder is not None
    inner = stream.collect
    full: list[float] = []
    light: list[float] = []

    def counting(names: Collection[str] | None = None) -> MetricsData:
        if names is None:
            full.append(time.monotonic())
        elif not names:
            light.append(time.monotonic())
        return inner(names)

    stream.collect = counting  # type: ignore[method-assign]
    console = next(s for s in monitoring._sinks if isinstance(s, ConsoleSink))
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.01):
            recorder.record("GET", "/a", 200, None, 0.01, 0, 5, time.perf_counter())

    feeder = threading.Thread(target=traffic, daemon=True)
    try:
        recorder.record("GET", "/a", 200, None, 0.01, 0, 5, time.perf_counter())
        wait_for(lambda: console._worker.runs >= 2)  # past the first ticks, which build it all
        if busy:
            feeder.start()
        start, full_at, light_at = console._worker.runs, len(full), len(light)
        wait_for(lambda: console._worker.runs >= start + 5)
        ticks = console._worker.runs - start
        collected = (len(full) - full_at, len(light) - light_at)
    finally:
        stop.set()
        if busy:
            feeder.join(5.0)
        monitoring.shutdown()
    # Alone, the four jobs would collect four times a tick; sharing, once (a tick in progress
    # at either end may add one).
    made = collected[0] if busy else collected[1]
    assert ticks <= made <= ticks + 2, (ticks, collected)
    if not busy:
        assert collected[0] == 0, collected  # nothing moved: no HTTP point was built
