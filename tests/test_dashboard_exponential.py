"""The dashboard with ``histograms: exponential``: the ring keeps exponential increases, the page
reads its quantiles there (finer), and falls back to the classic buckets where there are none."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.exponential import (
    DEFAULT_MAX_SIZE,
    ExponentialSnapshot,
    merged,
    quantile,
)
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from fluxstack_otel._internal.sinks.dashboard.history import MAX_POINTS, History
from fluxstack_otel._internal.sinks.dashboard.sink import DashboardSink
from servers import serve_asgi, wait_until
from support.chromium import Chromium, requires_chromium, started_chromium
from support.clocks import SteppingClock

PAGE = "/metrics/dashboard"
DURATION = cat.HTTP_REQUEST_DURATION.name
ERROR = 2 ** (1 / 16) - 1  # the relative width of a bucket at scale 4, what 0.5 ms..200 ms gets


@pytest.fixture
def monitored() -> Iterator[Callable[..., Monitoring]]:
    """``monitored(histograms)``: a dashboard whose ring only moves when a test samples it."""
    built: list[Monitoring] = []

    def build(histograms: str = "exponential", **config: Any) -> Monitoring:
        monitoring = configure_monitoring(
            {
                "set_global": False,
                "system_metrics": False,
                "collect_interval": 60,
                "histograms": histograms,
                "dashboard": {"enabled": True},
                **config,
            }
        )
        built.append(monitoring)
        return monitoring

    yield build
    for monitoring in built:
        monitoring.shutdown()


def _history(monitoring: Monitoring) -> History:
    sink = next(s for s in monitoring._sinks if isinstance(s, DashboardSink))
    assert sink.history is not None
    return sink.history


def _record(
    monitoring: Monitoring, durations: list[float], route: str = "/fast", status: int = 200
) -> None:
    recorder = monitoring._recorder
    assert recorder is not None
    now = time.perf_counter()
    for d in durations:
        recorder.record("GET", route, status, None, d, 0, 10, now)


def _snapshot(e: list[Any]) -> ExponentialSnapshot:
    scale, zero, offset, counts = e
    return ExponentialSnapshot(scale, offset, tuple(counts), zero)


def _points(monitoring: Monitoring) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = json.loads(_history(monitoring).encoded())["points"]
    return points


def test_a_point_carries_the_intervals_exponential_increase(
    monitored: Callable[..., Monitoring],
) -> None:
    """Two series merged, only what the interval added, empty buckets trimmed, classic kept."""
    m = monitored()
    _record(m, [0.001] * 7)  # after the baseline taken at start: the first point
    _history(m).sample()
    _record(m, [0.0005] * 1000)
    _record(m, [0.2] * 10, status=500)  # another series, merged into the same point
    _history(m).sample()
    early, point = _points(m)
    assert early["dur"]["n"] == _snapshot(early["dur"]["e"]).observations == 7
    dur = point["dur"]
    assert sorted(dur) == ["b", "e", "n", "s"]  # the classic fields as before, "e" added
    assert dur["n"] == sum(dur["b"]) == 1010
    snap = _snapshot(dur["e"])
    assert snap.observations == 1010
    assert snap.counts[0] > 0  # the empty buckets at both ends are trimmed
    assert snap.counts[-1] > 0
    assert math.isclose(quantile(snap, 0.5), 0.0005, rel_tol=ERROR)
    assert math.isclose(quantile(snap, 0.995), 0.2, rel_tol=ERROR)
    assert point["size"]["n"] == _snapshot(point["size"]["e"]).observations == 1010
    # The next interval holds its own values only, and a quiet one has nothing to read.
    _record(m, [0.003] * 5)
    _history(m).sample()
    _history(m).sample()
    busy, quiet = _points(m)[2:]
    assert busy["dur"]["n"] == _snapshot(busy["dur"]["e"]).observations == 5
    assert math.isclose(quantile(_snapshot(busy["dur"]["e"]), 0.5), 0.003, rel_tol=ERROR)
    assert quiet["dur"]["n"] == 0
    assert "e" not in quiet["dur"]


def test_a_restarted_series_counts_its_exponential_buckets_from_zero(
    monitored: Callable[..., Monitoring],
) -> None:
    """After a reset (a forked worker's) the interval holds the new values, not a difference."""
    m = monitored()
    _record(m, [0.0005] * 50)
    _history(m).sample()
    m._recorder.reset()  # type: ignore[union-attr]
    _record(m, [0.004] * 3)
    _history(m).sample()
    first, restarted = _points(m)
    assert _snapshot(first["dur"]["e"]).observations == first["dur"]["n"] == 50
    assert _snapshot(restarted["dur"]["e"]).observations == restarted["dur"]["n"] == 3
    assert math.isclose(quantile(_snapshot(restarted["dur"]["e"]), 0.5), 0.004, rel_tol=ERROR)


def test_classic_histograms_give_points_without_exponential_buckets(
    monitored: Callable[..., Monitoring],
) -> None:
    """``histograms: explicit`` (the default): the points are exactly as before, no "e"."""
    m = monitored("explicit")
    _record(m, [0.0005] * 10)
    _history(m).sample()
    (point,) = _points(m)
    assert sorted(point["dur"]) == sorted(point["size"]) == ["b", "n", "s"]


def test_a_full_ring_of_exponential_points_stays_small(
    monitored: Callable[..., Monitoring],
) -> None:
    """720 points of widely spread durations and sizes (about 100 buckets each) stay < 1.5 MB."""
    m = monitored()
    history = History(m._p.stream.collect, list, points=MAX_POINTS, step=5, clock=SteppingClock())
    history.sample()
    rng = random.Random(7)
    recorder = m._recorder
    assert recorder is not None
    for _ in range(MAX_POINTS):
        now = time.perf_counter()
        for r in range(30):
            size = int(rng.lognormvariate(8, 2))
            recorder.record("GET", f"/r{r}", 200, None, rng.lognormvariate(-7, 1.5), 0, size, now)
        history.sample()
    point = json.loads(history.encoded())["points"][-1]
    assert len(point["dur"]["e"][3]) > 40
    size = history.memory()
    print(f"ring of {MAX_POINTS} exponential points: {size / 1024:.0f} KiB")
    assert size < 1536 * 1024


# --- the page, in a real headless Chromium ------------------------------------------------

SHOWN = """window.fluxstackDashboard === undefined ? "null" : JSON.stringify({
  updates: window.fluxstackDashboard.updates,
  points: window.fluxstackDashboard.points,
  doc: window.fluxstackDashboard.doc,
  history: window.fluxstackDashboard.history,
  scheme: document.getElementById("latency-buckets").dataset.scheme,
  label: document.getElementById("latency-buckets").textContent,
  shown: Object.fromEntries(["p50", "p95", "p99"].map((id) =>
    [id, Number(document.getElementById(id).dataset.value)])),
  routes: Object.fromEntries([...document.querySelectorAll("#routes tbody tr[data-route]")]
    .map((tr) => [tr.dataset.route, Number(tr.querySelector(".p95").dataset.value)])),
})"""


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """A started headless Chromium with a throw-away profile; stopped when the test ends."""
    with started_chromium() as browser:
        yield browser


def _merged_increases(points: list[dict[str, Any]]) -> ExponentialSnapshot:
    """What the cards summarise (every point here is in the last minute), merged in Python."""
    snaps = [_snapshot(p["dur"]["e"]) for p in points if p["dur"] and p["dur"]["n"]]
    out = snaps[0]
    for s in snaps[1:]:
        out = merged(out, s, DEFAULT_MAX_SIZE * 4)  # no cap: the page does not cap either
    return out


@pytest.mark.slow
@requires_chromium
@pytest.mark.parametrize("histograms", ["exponential", "explicit"])
def test_the_page_reads_quantiles_from_the_exponential_buckets(
    monitored: Callable[..., Monitoring], chromium: Chromium, histograms: str
) -> None:
    """The page's p50/p95/p99 and a route's p95 equal Python's quantile() within a bucket's
    relative width, and the truth too (1,000 at 0.5 ms, 10 at 200 ms: p50 0.5 ms, where the
    classic buckets interpolate 0.38 ms); with classic histograms they are the classic figures."""
    m = monitored(histograms)
    app = m.instrument(Starlette(routes=[Route("/", _ok)]))
    with serve_asgi(app) as base:
        _record(m, [0.0005] * 1000, route="/a")
        _history(m).sample()  # the baseline was taken at start
        _record(m, [0.0005] * 500, route="/a")
        _record(m, [0.0005] * 500 + [0.2] * 10, route="/b")
        _history(m).sample()  # two points with values, the page merges them
        chromium.navigate(f"{base}{PAGE}?refresh=0.25")
        shown = wait_until(
            lambda: (
                (s := json.loads(chromium.evaluate(SHOWN) or "null"))
                and s["updates"] >= 1
                and len(s["points"]) == 2
                and s
            ),
            timeout=15,
            message=lambda: f"the page's first update; console: {chromium.console_errors}",
        )
        assert chromium.console_errors == []
    points = shown["points"]
    bounds = shown["history"]["duration_bounds"]
    counts = [sum(c) for c in zip(*(p["dur"]["b"] for p in points), strict=True)]
    classic = {q: histogram_quantile(q, bounds, counts) for q in (0.5, 0.95, 0.99)}
    if histograms == "explicit":
        assert shown["scheme"] == "classic"
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            assert math.isclose(shown["shown"][name], classic[q], rel_tol=1e-9), name
        return
    assert (shown["scheme"], shown["label"]) == ("exponential", ", exponential buckets")
    snap = _merged_increases(points)
    error = 2 ** (2**-snap.scale) - 1
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        assert math.isclose(shown["shown"][name], quantile(snap, q), rel_tol=error), name
        assert math.isclose(shown["shown"][name], 0.0005, rel_tol=error), name
    assert not math.isclose(classic[0.5], 0.0005, rel_tol=0.1)  # the classic figure is coarser
    # The routes table reads the document's exponential buckets (since start).
    (b_series,) = [s for m_ in shown["doc"]["metrics"] if m_["name"] == DURATION
                   for s in m_["series"] if s["labels"]["route"] == "/b"]  # fmt: skip
    e = b_series["exponential"]
    route_snap = ExponentialSnapshot(e["scale"], e["offset"], tuple(e["counts"]), e["zero_count"])
    assert math.isclose(shown["routes"]["/b"], quantile(route_snap, 0.95), rel_tol=error)
    assert math.isclose(shown["routes"]["/b"], 0.0005, rel_tol=error)
