"""The dashboard's history ring: points from real collections, bounds, resets, multiprocess."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.runtime.multiprocess.host import HostStream
from fluxstack_otel._internal.runtime.system import PsutilSource
from fluxstack_otel._internal.sinks.dashboard.history import (
    MAX_POINTS,
    MAX_ROUTES,
    History,
    ring_shape,
)
from fluxstack_otel._internal.sinks.dashboard.sink import DashboardSink
from servers import ASGIApp, settle
from support import metricdata as md
from support.clocks import SteppingClock

PAGE = "/metrics/dashboard"


async def _ok(request: Request) -> Response:
    return PlainTextResponse("hello")


async def _fail(request: Request) -> Response:
    return PlainTextResponse("nope", status_code=503)


@pytest.fixture
def monitored() -> Iterator[Callable[[dict[str, Any]], tuple[Monitoring, ASGIApp]]]:
    """``monitored(dashboard) -> (monitoring, app)``, a collect interval too long to tick alone."""
    built: list[Monitoring] = []

    def build(dashboard: dict[str, Any]) -> tuple[Monitoring, ASGIApp]:
        monitoring = configure_monitoring(
            {"collect_interval": 60, "dashboard": {"enabled": True, **dashboard}}
        )
        built.append(monitoring)
        routes = [Route("/", _ok), Route("/fail", _fail), Route("/r/{n}", _ok)]
        return monitoring, monitoring.instrument(Starlette(routes=routes))

    yield build
    for monitoring in built:
        monitoring.shutdown()


def _sink(monitoring: Monitoring) -> DashboardSink:
    return next(s for s in monitoring._sinks if isinstance(s, DashboardSink))


def _history(monitoring: Monitoring) -> History:
    history = _sink(monitoring).history
    assert history is not None
    return history


def _routes(section: dict[str, Any], point: dict[str, Any]) -> dict[str, list[int]]:
    """A point's per-route entries by route name."""
    return {section["routes"][i]: [req, err] for i, req, err in point["routes"]}


def _get(client: httpx.Client, path: str, times: int) -> None:
    """``times`` requests to ``path``, one after the other."""
    for _ in range(times):
        client.get(path)


def _data(base: str, query: str = "") -> dict[str, Any]:
    response = httpx.get(f"{base}{PAGE}/data.json{query}", trust_env=False, timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize(
    ("history", "interval", "shape"),
    [(900, 5, (180, 5)), (0, 5, (0, 5)), (86400, 5, (MAX_POINTS, 120)), (10, 3, (4, 3))],
)
def test_ring_shape_is_one_point_per_interval_within_the_cap(
    history: float, interval: float, shape: tuple[int, float]
) -> None:
    """A point per collect interval, coarser when that would pass the cap, none for 0."""
    assert ring_shape(history, interval) == shape


def test_a_fresh_ring_has_only_a_baseline(monitored: Any, serve: Any) -> None:
    """Right after start the history has its shape and no point: one sample is no rate."""
    _, app = monitored({})
    history = _data(serve(app))["history"]
    assert history["points"] == []
    assert history["step"] == 60
    assert history["capacity"] == 15  # 900 s at 60 s


def test_a_point_holds_the_intervals_increases(monitored: Any, serve: Any) -> None:
    """Requests, errors, routes, buckets and gauges of one interval, as the server collected."""
    monitoring, app = monitored({})
    base = serve(app)
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        _get(client, "/", 5)
        _get(client, "/fail", 2)
    settle(base)
    _history(monitoring).sample()
    document = _data(base)
    (point,) = document["history"]["points"]
    assert (point["req"], point["err"]) == (7, 2)
    assert _routes(document["history"], point) == {"/": [5, 0], "/fail": [2, 2]}
    assert point["dur"]["n"] == sum(point["dur"]["b"]) == 7
    assert len(point["dur"]["b"]) == len(document["history"]["duration_bounds"]) + 1
    assert point["size"]["n"] == 7
    assert point["size"]["s"] == 5 * len("hello") + 2 * len("nope")
    assert point["rss"] > 0
    assert point["heap"] > 0
    assert point["cpu"] >= 0
    assert point["cores"] == PsutilSource().cpu_count()
    assert point["dt"] > 0
    assert point["t"] <= time.time()
    # The next interval, without traffic, is a true zero, not a copy of the last one.
    _history(monitoring).sample()
    quiet = _data(base)["history"]["points"][-1]
    assert (quiet["req"], quiet["err"], quiet["routes"], quiet["dur"]["n"]) == (0, 0, [], 0)


def test_a_restarted_series_counts_from_zero(monitored: Any, serve: Any) -> None:
    """A series that went down (evicted, reset) restarted: its new count is the increase."""
    monitoring, app = monitored({})
    base = serve(app)
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        _get(client, "/", 10)
        settle(base)
        _history(monitoring).sample()
        monitoring._recorder.reset()  # type: ignore[union-attr]  # as a forked worker's
        _get(client, "/", 3)
    settle(base)
    _history(monitoring).sample()
    points = _data(base)["history"]["points"]
    assert [p["req"] for p in points] == [10, 3]
    assert points[-1]["dur"]["n"] == 3


def test_since_returns_only_the_newer_points(monitored: Any, serve: Any) -> None:
    """``?since=t`` leaves out the points up to ``t``; a bad value means every point."""
    monitoring, app = monitored({})
    base = serve(app)
    for _ in range(3):
        _history(monitoring).sample()
    points = _data(base)["history"]["points"]
    assert len(points) == 3
    newer = _data(base, f"?since={points[1]['t']}")["history"]["points"]
    assert newer == points[2:]
    assert _data(base, f"?since={points[2]['t']}")["history"]["points"] == []
    for junk in ("?since=nan", "?since=abc", "?since=", "?other=1"):
        assert _data(base, junk)["history"]["points"] == points, junk


def test_the_ring_keeps_its_capacity(monitored: Any) -> None:
    """Past its capacity the oldest point goes: the ring never grows."""
    monitoring, _ = monitored({"history": 240})  # 4 points at 60 s
    history = _history(monitoring)
    for _ in range(10):
        history.sample()
    assert len(history) == 4
    assert len(json.loads(history.encoded())["points"]) == 4


def test_history_zero_keeps_no_ring_and_runs_nothing(monitored: Any, serve: Any) -> None:
    """With ``history: 0`` the document has no history section and no sampler thread runs."""
    monitoring, app = monitored({"history": 0})
    assert _sink(monitoring).history is None
    assert "history" not in _data(serve(app))
    assert not [t for t in threading.enumerate() if t.name.startswith("fluxstack-otel-dashboard")]


@pytest.mark.parametrize("value", [-1, "soon", 10**9])
def test_a_bad_history_is_a_config_error(value: object) -> None:
    """The error names dashboard.history and quotes the value."""
    with pytest.raises(ConfigError, match=r"dashboard\.history") as caught:
        configure_monitoring({"dashboard": {"enabled": True, "history": value}})
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)


def test_the_sampler_fills_the_ring_on_its_own() -> None:
    """Every collect interval the sampler thread adds a point, without a page asking."""
    monitoring = configure_monitoring(
        {"collect_interval": 0.1, "dashboard": {"enabled": True, "history": 5}}
    )
    try:
        history = _history(monitoring)
        deadline = time.monotonic() + 20
        while len(history) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(history) >= 3
    finally:
        monitoring.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("fluxstack-otel-dashboard")]


def test_a_failing_collection_is_reported_and_the_ring_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A collection that raises is counted and logged once; the next sample works again."""
    monitoring = configure_monitoring(
        {"collect_interval": 60, "dashboard": {"enabled": True, "history": 600}}
    )
    try:
        sink = _sink(monitoring)
        history = _history(monitoring)
        real = history._collect
        history._collect = lambda: (_ for _ in ()).throw(RuntimeError("disk on fire"))
        before = failure_counts().get("sampling the dashboard history", 0)
        with caplog.at_level(logging.ERROR, logger="fluxstack_otel"):
            sink._sample()  # what the sampler thread runs
        assert failure_counts()["sampling the dashboard history"] == before + 1
        history._collect = real
        sink._sample()
        assert len(history) == 1
    finally:
        monitoring.shutdown()


@pytest.mark.slow  # 720 real collections
def test_a_full_ring_with_busy_routes_stays_small(monitored: Any) -> None:
    """720 points with 30 busy routes each (20 kept per point) hold under 400 KB of text."""
    monitoring, _ = monitored({})
    recorder = monitoring._recorder
    assert recorder is not None
    history = History(
        monitoring._p.stream.collect, list, points=MAX_POINTS, step=5, clock=SteppingClock()
    )
    history.sample()
    for i in range(MAX_POINTS):
        now = time.perf_counter()
        for r in range(30):
            recorder.record(
                "GET", f"/api/v1/resource-{r}/{{id}}", 200, None, 0.003 * r, 0, 512, now
            )
        if i % 10 == 0:
            recorder.record("POST", "/api/v1/orders", 500, "500", 0.2, 300, 40, now)
        history.sample()
    assert len(history) == MAX_POINTS
    point = json.loads(history.encoded())["points"][-1]
    assert len(point["routes"]) == MAX_ROUTES
    size = history.memory()
    print(f"ring of {MAX_POINTS} points, {MAX_ROUTES} routes each: {size / 1024:.0f} KiB")
    assert size < 400 * 1024


def test_one_workers_history_shows_the_host(tmp_path: Path) -> None:
    """Under multiprocess the ring samples the host view: another worker's requests count."""
    alive = {4242}
    streams = []
    for instance in ("a", "b"):
        recorder = HttpRecorder(retention_period=60.0)
        local = MetricStream((), recorder.to_metrics, Resource({"service.instance.id": instance}))
        host = HostStream(local, tmp_path, 0.5, alive=lambda pid, started: pid in alive)
        streams.append((host, recorder))
    (a, a_recorder), (b, b_recorder) = streams

    def publish_b_as_another_pid() -> None:
        b.publish()
        mine = tmp_path / f"worker-{os.getpid()}-{b._instance}.json"
        doc = json.loads(mine.read_text())
        doc["pid"] = 4242
        (tmp_path / f"worker-4242-{b._instance}.json").write_text(json.dumps(doc))
        mine.unlink()

    def record(recorder: HttpRecorder, n: int) -> None:
        for _ in range(n):
            recorder.record("GET", "/r", 200, None, 0.01, 0, 2, time.perf_counter())

    record(b_recorder, 4)
    publish_b_as_another_pid()
    history = History(a.collect, list, points=10, step=1, clock=SteppingClock())
    history.sample()
    record(a_recorder, 3)
    record(b_recorder, 5)
    publish_b_as_another_pid()
    history.sample()
    section = json.loads(history.encoded())
    (point,) = section["points"]
    assert point["req"] == 3 + 5
    assert _routes(section, point) == {"/r": [8, 0]}


def test_rates_divide_by_the_interval_between_their_own_readings() -> None:
    """A slow collection reads the HTTP metrics first and the CPU counter later: each rate's
    interval is the one between its two readings, not between the clock readings around them."""
    reads = iter([(100.0, 101.0, 10, 1.0), (110.0, 121.0, 30, 5.0)])  # http at, cpu at, req, cpu

    def collect() -> Any:
        http_at, cpu_at, requests, cpu = next(reads)

        def at(seconds: float, value: float, attributes: dict[str, str]) -> Any:
            return dataclasses.replace(
                md.number(value, attributes), time_unix_nano=int(seconds * 1e9)
            )

        return md.collection(
            {
                "http": [
                    md.counter(cat.HTTP_REQUESTS.name, [at(http_at, requests, {"route": "/"})])
                ],
                "system": [md.counter(cat.PROCESS_CPU_USER.name, [at(cpu_at, cpu, {})])],
            }
        )

    clock = iter([105.0, 140.0])  # taken before each collection
    history = History(collect, list, points=4, step=5, clock=lambda: next(clock))
    history.sample()
    history.sample()
    (point,) = json.loads(history.encoded())["points"]
    assert point["t"] == 115.0  # the baseline's time plus the interval: the points abut
    assert (point["req"], point["dt"]) == (20, 10.0)  # 20 requests in the 10 s between readings
    assert (point["cpu"], point["cdt"]) == (4.0, 20.0)  # 4 CPU seconds in 20 s: 20 %, not 11 %
