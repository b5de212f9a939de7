"""The dashboard in a real headless Chromium, driven over the DevTools protocol on loopback.

Chromium comes from Debian (``apt-get install chromium``); without it these tests skip. The browser
(``support/chromium.py``) runs with a private profile, no network beyond 127.0.0.1 and a bounded
life: its whole process group is stopped when the test ends.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.metrics.catalog import (
    EVENT_LOOP_LAG,
    HTTP_ERRORS,
    HTTP_REQUESTS,
    LABEL_ROUTE,
    PROCESS_HEAP_USED,
    PROCESS_RSS,
    SYSTEM_LOAD_1M,
)
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from servers import serve_asgi, wait_until
from support.chromium import Chromium, requires_chromium, started_chromium

websocket = pytest.importorskip("websocket", reason="pip install websocket-client (dev extra)")

pytestmark = [
    pytest.mark.slow,  # real servers or subprocesses: left out of make unit-fast
    requires_chromium,
]

PAGE = "/metrics/dashboard"
SHOWN = ["total-requests", "request-rate", "error-rate", "errors-total", "p50", "p95", "p99",
         "mean", "rss", "heap", "cpu", "cores", "loop-lag", "load"]  # fmt: skip
CHARTS = ["requests", "errors", "latency", "sizes", "memory", "cpu", "lag", "load"]
WINDOW = 60.0  # seconds the cards summarise (app.js)
UNKNOWN = "\u2013"  # the en dash the page shows for what is not known yet
ANY_FAILURE = {  # an alert that fires on the first failed request
    "name": "AnyFailure",
    "metric": HTTP_ERRORS.name,
    "operator": ">",
    "value": 0,
    "aggregation": "value",
    "severity": "critical",
}

# One JS expression, evaluated atomically in the page: what it shows and the documents behind it.
SNAPSHOT = """window.fluxstackDashboard === undefined ? "null" : JSON.stringify({
  updates: window.fluxstackDashboard.updates,
  error: window.fluxstackDashboard.error,
  doc: window.fluxstackDashboard.doc,
  points: window.fluxstackDashboard.points,
  history: window.fluxstackDashboard.history,
  first: window.fluxstackDashboard.first,
  shown: Object.fromEntries(SHOWN_IDS.map((id) => {
    const el = document.getElementById(id);
    return [id, {text: el.textContent, value: el.dataset.value}];
  })),
  routes: [...document.querySelectorAll("#routes tbody tr[data-route]")].map((tr) => ({
    route: tr.dataset.route,
    requests: Number(tr.querySelector(".requests").dataset.value),
    errors: Number(tr.querySelector(".errors").dataset.value),
    text: tr.textContent,
  })),
  alerts: [...document.querySelectorAll("#alerts li.alert")].map((li) => ({
    name: li.dataset.name, severity: li.querySelector(".severity").textContent,
  })),
})""".replace("SHOWN_IDS", json.dumps(SHOWN))


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """A started headless Chromium with a throw-away profile; stopped when the test ends."""
    with started_chromium() as browser:
        yield browser


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _fail(request: Request) -> Response:
    return PlainTextResponse("nope", status_code=503)


def _series(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next((m["series"] for m in doc["metrics"] if m["name"] == name), [])


def _sum(doc: dict[str, Any], name: str, route: str | None = None) -> float:
    return sum(
        s["value"]
        for s in _series(doc, name)
        if route is None or s["labels"].get(LABEL_ROUTE) == route
    )


def _gauge(doc: dict[str, Any], name: str) -> float | None:
    series = _series(doc, name)  # one process: one series, or none before a first reading
    assert len(series) <= 1
    return float(series[0]["value"]) if series else None


def _recent(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points the cards summarise: the last minute's, at least the last one."""
    out: list[dict[str, Any]] = []
    span = 0.0
    for p in reversed(points):
        if out and span + p["dt"] > WINDOW + 1e-6:
            break
        out.insert(0, p)
        span += p["dt"]
    return out


def _quantiles(points: list[dict[str, Any]], bounds: list[float]) -> dict[str, float]:
    """p50/p95/p99 and the mean of the points' duration increases, as the page should show."""
    counts = [0.0] * (len(bounds) + 1)
    total = n = 0.0
    for p in points:
        if p["dur"] is None:  # before the first request: no histogram yet
            continue
        for i, c in enumerate(p["dur"]["b"]):
            counts[i] += c
        total += p["dur"]["s"]
        n += p["dur"]["n"]
    out = {f"p{round(q * 100)}": histogram_quantile(q, bounds, counts) for q in (0.5, 0.95, 0.99)}
    out["mean"] = total / n
    return out


def _check_matches_json(snapshot: dict[str, Any]) -> None:
    """Every number the page shows equals what its document and history points say."""
    doc, points, shown = snapshot["doc"], snapshot["points"], snapshot["shown"]
    total = _sum(doc, HTTP_REQUESTS.name)
    assert float(shown["total-requests"]["value"]) == total
    assert shown["total-requests"]["text"] == str(round(total))
    assert float(shown["errors-total"]["value"]) == _sum(doc, HTTP_ERRORS.name)
    for element, metric in [("rss", PROCESS_RSS), ("heap", PROCESS_HEAP_USED),
                            ("loop-lag", EVENT_LOOP_LAG), ("load", SYSTEM_LOAD_1M)]:  # fmt: skip
        value = shown[element]["value"]
        assert (float(value) if value else None) == _gauge(doc, metric.name), element
    recent = _recent(points)
    elapsed = sum(p["dt"] for p in recent)
    requests = sum(p["req"] for p in recent)
    rate = requests / elapsed
    assert math.isclose(float(shown["request-rate"]["value"]), rate, rel_tol=1e-9)
    if requests:
        errors = sum(p["err"] for p in recent) / requests
        assert math.isclose(float(shown["error-rate"]["value"]), errors, rel_tol=1e-9, abs_tol=0)
        for name, expected in _quantiles(recent, snapshot["history"]["duration_bounds"]).items():
            assert math.isclose(float(shown[name]["value"]), expected, rel_tol=1e-9), name
    else:  # nothing asked in the window: unknown, never 0
        for name in ("error-rate", "p50", "p95", "p99", "mean"):
            assert shown[name]["text"] == UNKNOWN, name
    routes = {s["labels"][LABEL_ROUTE] for s in _series(doc, HTTP_REQUESTS.name)}
    assert [r["route"] for r in snapshot["routes"]] == sorted(routes)
    for row in snapshot["routes"]:
        assert row["requests"] == _sum(doc, HTTP_REQUESTS.name, row["route"]), row
        assert row["errors"] == _sum(doc, HTTP_ERRORS.name, row["route"]), row
    pairs = sorted((a["name"], a["severity"]) for a in snapshot["alerts"])
    assert pairs == sorted((a["name"], a["severity"]) for a in doc["alerts"])


def test_dashboard_shows_the_document_and_follows_traffic(chromium: Chromium) -> None:
    """The page loads without console errors, shows the document's and the history's numbers,
    and moves with traffic."""
    monitoring = configure_monitoring(
        {
            "collect_interval": 1,
            "alert_evaluation_interval": 0.2,
            "notifiers": [],  # the page shows the alerts; nothing else needs to hear of them
            "alerts": [
                ANY_FAILURE,
                {  # fires while errors come in, and resolves a few seconds after
                    "name": "FailingNow",
                    "metric": HTTP_ERRORS.name,
                    "operator": ">",
                    "value": 0,
                    "aggregation": "rate",
                    "window": 1,
                    "keep_firing_for": 3,
                    "severity": "warning",
                },
            ],
            "dashboard": {"enabled": True},
        }
    )
    app = monitoring.instrument(
        Starlette(routes=[Route("/", _ok), Route("/items/{item_id}", _ok), Route("/fail", _fail)])
    )
    try:
        with serve_asgi(app) as base, httpx.Client(base_url=base, trust_env=False) as client:
            for i in range(20):
                client.get(f"/items/{i}")
            chromium.navigate(f"{base}{PAGE}?refresh=0.25")

            def snapshot() -> dict[str, Any]:
                return json.loads(chromium.evaluate(SNAPSHOT))

            first = wait_until(
                lambda: (s := snapshot()) is not None and s["updates"] >= 2 and s["points"] and s,
                timeout=15,
                message=lambda: f"two updates of the page; console: {chromium.console_errors}",
            )
            assert first["error"] is None
            assert first["shown"]["total-requests"]["text"] == "20"
            assert [r["route"] for r in first["routes"]] == ["/items/{item_id}"]
            _check_matches_json(first)

            # More traffic, one route new, one failing: the open page follows without a reload.
            for _ in range(5):
                client.get("/")
            for _ in range(3):
                client.get("/fail")
            assert wait_until(
                lambda: any(a.name == "AnyFailure" for a in monitoring.alerts()), timeout=10
            )
            later = wait_until(
                lambda: (
                    (s := snapshot())["shown"]["total-requests"]["text"] == "28"
                    and any(a["name"] == "AnyFailure" for a in s["alerts"])
                    and s
                ),
                timeout=15,
                message="the page to show 28 requests and the AnyFailure alert",
            )
            assert later["updates"] > first["updates"]
            _check_matches_json(later)
            assert [r["route"] for r in later["routes"]] == ["/", "/fail", "/items/{item_id}"]
            fail_row = next(r for r in later["routes"] if r["route"] == "/fail")
            assert fail_row["errors"] == 3
            assert float(later["shown"]["errors-total"]["value"]) == 3
            alert = next(a for a in later["alerts"] if a["name"] == "AnyFailure")
            assert alert["severity"] == "critical"

            # Traffic over, the page keeps polling: the newest point is a true zero, and the
            # request-rate chart's legend says so (the card still averages the last minute).
            def idle() -> bool:
                points = snapshot()["points"]
                legend = chromium.evaluate(
                    "document.querySelector('#chart-requests .legend').textContent"
                )
                return points[-1]["req"] == 0 and legend.endswith("requests/s 0.00")

            assert wait_until(idle, timeout=10, message="a point without requests")
            # The alert timeline: FailingNow was firing, then resolved.
            bands = (
                "JSON.stringify([...document.querySelectorAll('#chart-alerts rect')]"
                ".map((r) => r.getAttribute('class')))"
            )
            assert wait_until(
                lambda: (
                    {"band-firing", "band-resolved"} <= set(json.loads(chromium.evaluate(bands)))
                ),
                timeout=20,
                message="a firing band and a resolved tick in the alert timeline",
            )
            assert chromium.console_errors == []

            # The policy is in force, and a breach would have been seen: an injected inline
            # script does not run, and its refusal is reported as a console error.
            chromium.evaluate(
                "const s = document.createElement('script');"
                " s.textContent = 'window.injected = true'; document.head.appendChild(s); 0"
            )
            assert chromium.evaluate("window.injected === undefined") is True
            assert wait_until(
                lambda: chromium.evaluate("0") == 0 and chromium.console_errors, timeout=5
            )
            assert "Content Security Policy" in " ".join(chromium.console_errors)
    finally:
        monitoring.shutdown()


def _traffic(base: str, stop: threading.Event, sent: list[int]) -> None:
    """Requests on three routes, one in eight failing, until ``stop`` (at most 20,000)."""
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        for i in range(20_000):
            if stop.wait(0.01):
                return
            client.get("/fail" if i % 8 == 7 else ("/" if i % 2 else f"/items/{i}"))
            sent[0] += 1


DRAWN = """JSON.stringify({
  charts: Object.fromEntries(CHART_IDS.map((id) => {
    const figure = document.getElementById("chart-" + id);
    const paths = [...figure.querySelectorAll("path.line")];
    return [id, {points: Number(figure.dataset.points),
                 length: paths.reduce((n, p) => n + p.getTotalLength(), 0)}];
  })),
  alerts: {points: Number(document.getElementById("chart-alerts").dataset.points),
           firing: document.querySelectorAll("#chart-alerts rect.band-firing").length},
  sparks: [...document.querySelectorAll("#routes tbody tr[data-route]")].map((tr) => ({
    route: tr.dataset.route,
    points: Number(tr.querySelector("svg.spark").dataset.points),
    length: [...tr.querySelectorAll("svg.spark path")].reduce((n, p) => n + p.getTotalLength(), 0),
  })),
})""".replace("CHART_IDS", json.dumps(CHARTS))


def test_a_fresh_page_draws_the_servers_history_and_hover_shows_values(
    chromium: Chromium, tmp_path: Path
) -> None:
    """Opened while traffic flows, the page's first paint already holds the server's history:
    every chart has drawn points (non-zero SVG path length), the routes have sparklines, the
    alert has a firing band, hovering a chart shows a time and a value; a screenshot is kept."""
    monitoring = configure_monitoring(
        {
            "collect_interval": 0.25,
            "alert_evaluation_interval": 0.25,
            "notifiers": [],
            "alerts": [ANY_FAILURE],
            "dashboard": {"enabled": True, "history": 60},
        }
    )
    app = monitoring.instrument(
        Starlette(routes=[Route("/", _ok), Route("/items/{item_id}", _ok), Route("/fail", _fail)])
    )
    stop = threading.Event()
    sent = [0]
    try:
        with serve_asgi(app) as base:
            worker = threading.Thread(target=_traffic, args=(base, stop, sent), daemon=True)
            worker.start()
            try:
                # The server's ring fills before any page exists.
                def busy_points() -> list[dict[str, Any]]:
                    doc = httpx.get(f"{base}{PAGE}/data.json", trust_env=False, timeout=10).json()
                    points = [p for p in doc["history"]["points"] if p["req"] > 0]
                    firing = [
                        p for p in points if ["AnyFailure", "firing", "critical"] in p["alerts"]
                    ]
                    return points if len(points) >= 8 and firing else []

                wait_until(busy_points, timeout=30, message="eight busy points in the history")
                chromium.call("Emulation.setDeviceMetricsOverride", width=1280, height=2200,
                              deviceScaleFactor=1, mobile=False)  # fmt: skip
                chromium.navigate(f"{base}{PAGE}?refresh=0.5")
                snap = wait_until(
                    lambda: (
                        (s := json.loads(chromium.evaluate(SNAPSHOT))) is not None
                        and s["updates"] >= 1
                        and s
                    ),
                    timeout=15,
                    message=lambda: f"a first update; console: {chromium.console_errors}",
                )
                # First paint: the history, not a blank waiting for a second poll.
                first = snap["first"]
                assert first["points"] >= 8, first
                assert first["requests"] > 0, first
                assert all(first["drawn"][f"chart-{c}"] > 0 for c in CHARTS), first["drawn"]
                for card in ("request-rate", "p95", "mean", "cpu"):
                    assert snap["shown"][card]["text"] != UNKNOWN, card
                    assert float(snap["shown"][card]["value"]) > 0, card
                drawn = json.loads(chromium.evaluate(DRAWN))
                for chart_id, figures in drawn["charts"].items():
                    assert figures["points"] >= 2, (chart_id, figures)
                    assert figures["length"] > 0, (chart_id, figures)
                assert drawn["alerts"]["firing"] > 0, drawn["alerts"]
                assert {s["route"] for s in drawn["sparks"]} == {"/", "/fail", "/items/{item_id}"}
                assert all(s["points"] >= 8 and s["length"] > 0 for s in drawn["sparks"]), drawn

                # Hover: the legend names the point's time and the value of each series.
                box = chromium.evaluate(
                    "JSON.stringify(document.querySelector('#chart-latency svg')"
                    ".getBoundingClientRect())"
                )
                rect = json.loads(box)
                x, y = rect["x"] + rect["width"] * 0.6, rect["y"] + rect["height"] / 2
                chromium.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
                hover = json.loads(
                    chromium.evaluate(
                        "JSON.stringify({i: document.getElementById('chart-latency').dataset.hover,"
                        " text: document.querySelector('#chart-latency .legend').textContent,"
                        " cursor: !document.querySelector('#chart-latency .cursor')"
                        ".classList.contains('hidden')})"
                    )
                )
                assert hover["i"] != "", hover
                assert hover["cursor"], hover
                assert re.search(r"^\d\d:\d\d:\d\d", hover["text"]), hover
                assert re.search(r"p95 \d+(\.\d+)? ms", hover["text"]), hover
                assert not hover["text"].startswith("latest"), hover
                _check_matches_json(snap)
                assert chromium.console_errors == []

                shot = chromium.call("Page.captureScreenshot", format="png")
                path = tmp_path / "dashboard.png"
                path.write_bytes(base64.b64decode(shot["data"]))
                print(f"dashboard screenshot: {path}")
                assert path.stat().st_size > 10_000
            finally:
                stop.set()
                worker.join(15)
    finally:
        monitoring.shutdown()
    assert sent[0] > 0


# The alert timeline at one instant: its bands, the axis ends they are scaled to, the points.
TIMELINE = """JSON.stringify({
  bands: [...document.querySelectorAll("#chart-alerts rect")].map((r) => ({
    state: r.getAttribute("class"), x: Number(r.getAttribute("x")),
    width: Number(r.getAttribute("width")),
  })),
  // the time axis: its first and last instants are the two labels drawn last, at its two ends
  axis: [...document.querySelectorAll("#chart-alerts text.axis")].slice(-2)
    .map((t) => Number(t.getAttribute("x"))),
  points: window.fluxstackDashboard.points.map((p) => ({t: p.t, dt: p.dt, alerts: p.alerts})),
})"""


@pytest.mark.timeout(60)
def test_an_alert_with_for_draws_a_pending_band_then_the_firing_band(chromium: Chromium) -> None:
    """An alert whose rule has ``for`` is drawn amber while it waits and red once it fires: a
    pending band as wide as its intervals on the timeline's scale, ending where the firing band
    begins."""
    hold = 2.0  # the rule's ``for``: eight history points at a quarter-second interval
    monitoring = configure_monitoring(
        {
            "collect_interval": 0.25,
            "alert_evaluation_interval": 0.1,
            "notifiers": [],
            # the built-in rules off, so this rule is the timeline's one row whatever the load
            "thresholds": dict.fromkeys(
                ("response_time", "error_rate", "memory_usage", "cpu_usage"), None
            ),
            "alerts": [
                {
                    "name": "SlowToFire",
                    "metric": HTTP_ERRORS.name,
                    "operator": ">",
                    "value": 0,
                    "aggregation": "value",  # the error count: once above 0, it stays there
                    "for": hold,
                    "severity": "warning",
                },
            ],
            "dashboard": {"enabled": True, "history": 60},  # a point every collect_interval
        }
    )
    app = monitoring.instrument(Starlette(routes=[Route("/", _ok), Route("/fail", _fail)]))
    try:
        with serve_asgi(app) as base, httpx.Client(base_url=base, trust_env=False) as client:
            client.get("/")
            chromium.navigate(f"{base}{PAGE}?refresh=0.25")

            def classes() -> list[str]:
                timeline = json.loads(chromium.evaluate(TIMELINE))
                return [band["state"] for band in timeline["bands"]]

            wait_until(
                lambda: chromium.evaluate("window.fluxstackDashboard?.updates ?? 0") >= 1,
                timeout=15,
                message=lambda: f"a first update; console: {chromium.console_errors}",
            )
            assert classes() == []  # nothing has failed yet: no band
            client.get("/fail")
            wait_until(
                lambda: "band-pending" in classes(),
                timeout=15,
                message="a pending band while the rule's `for` runs",
            )
            wait_until(
                lambda: "band-firing" in classes(),
                timeout=15,
                message="the firing band once `for` has passed",
            )
            timeline = json.loads(chromium.evaluate(TIMELINE))
    finally:
        monitoring.shutdown()

    bands, points = timeline["bands"], timeline["points"]
    states = [band["state"] for band in bands]
    pending = states.count("band-pending")
    assert pending >= 1, states
    assert states == ["band-pending"] * pending + ["band-firing"] * (len(states) - pending)
    # Each band spans its point's interval on the timeline's linear scale (chart.js's bands()).
    shown = [p for p in points if p["alerts"]]
    assert [[["SlowToFire", s.removeprefix("band-"), "warning"]] for s in states] == [
        p["alerts"] for p in shown
    ]
    t0, t1 = points[0]["t"] - points[0]["dt"], points[-1]["t"]
    left, right = timeline["axis"]
    scale = (right - left) / (t1 - t0)  # pixels per second
    for band, point in zip(bands, shown, strict=True):
        start = point["t"] - point["dt"]
        assert math.isclose(band["x"], left + (start - t0) * scale, abs_tol=1e-6)
        assert math.isclose(band["width"], (point["t"] - start) * scale, abs_tol=1e-6), band
    amber = [band for band in bands if band["state"] == "band-pending"]
    # Pending for about the rule's ``for`` (half of it at least, whatever the machine's load:
    # a sample reads the alert states a collection after its timestamp), never a one-pixel
    # sliver; a ``for`` ignored would show at most one interval amber.
    assert sum(band["width"] for band in amber) / scale >= hold / 2, (amber, scale)
    # Pending leads straight into firing: the first red band begins where the last amber ends
    # (a point's t is kept to the microsecond and its dt to the millisecond).
    red = bands[pending]
    assert math.isclose(amber[-1]["x"] + amber[-1]["width"], red["x"], abs_tol=1e-3 * scale)
    assert chromium.console_errors == []
