"""The dashboard in a real headless Chromium, driven over the DevTools protocol on loopback.

Chromium comes from Debian (``apt-get install chromium``); without it these tests skip. The browser
runs with a private profile, no network beyond 127.0.0.1 and a bounded life: its whole process
group is stopped when the test ends.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime
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
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    LABEL_ROUTE,
    PROCESS_HEAP_USED,
    PROCESS_RSS,
    SYSTEM_LOAD_1M,
)
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from servers import serve_asgi, wait_until

websocket = pytest.importorskip("websocket", reason="pip install websocket-client (dev extra)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,  # real servers or subprocesses: left out of make unit-fast
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: apt-get install chromium"),
]

PAGE = "/metrics/dashboard"
SHOWN = ["total-requests", "request-rate", "error-rate", "errors-total", "p50", "p95", "p99",
         "rss", "heap", "cpu", "cpu-seconds", "loop-lag", "load"]  # fmt: skip

# One JS expression, evaluated atomically in the page: what it shows and the documents behind it.
SNAPSHOT = """window.fluxstackDashboard === undefined ? "null" : JSON.stringify({
  updates: window.fluxstackDashboard.updates,
  error: window.fluxstackDashboard.error,
  doc: window.fluxstackDashboard.doc,
  prev: window.fluxstackDashboard.prev,
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


class Chromium:
    """A headless Chromium with one page, spoken to over the Chrome DevTools Protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.console_errors: list[str] = []
        self._next_id = 0
        self._process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-proxy-server",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so every child stops with it
        )
        try:
            port_file = profile / "DevToolsActivePort"
            wait_until(
                lambda: port_file.is_file() and port_file.read_text().count("\n") >= 1,
                timeout=20,
                message=self._dead_or("Chromium's DevToolsActivePort file"),
            )
            port = int(port_file.read_text().splitlines()[0])
            targets: list[dict[str, Any]] = wait_until(
                lambda: [
                    t
                    for t in httpx.get(f"http://127.0.0.1:{port}/json/list", trust_env=False).json()
                    if t.get("type") == "page"
                ],
                timeout=10,
                message="a page target",
            )
            self._ws = websocket.create_connection(
                targets[0]["webSocketDebuggerUrl"], timeout=10, suppress_origin=True
            )
            for domain in ("Runtime", "Log", "Page"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _dead_or(self, what: str) -> Any:
        return lambda: f"{what} (chromium exit status: {self._process.poll()})"

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile are recorded."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']!r}")
                result: dict[str, Any] = message["result"]
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(json.dumps(params.get("args")))
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(json.dumps(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(
                f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
            )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable results)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised {result['exceptionDetails']!r}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(5)


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """A started headless Chromium with a throw-away profile; stopped when the test ends."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="fluxstack-chromium-") as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            yield browser
        finally:
            browser.close()


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


def _quantiles(doc: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, float]:
    """p50/p95/p99 as the page should show them: the last interval's, else since start."""

    def merged(d: dict[str, Any]) -> tuple[list[float], list[float]]:
        series = _series(d, HTTP_REQUEST_DURATION.name)
        bounds = [b["le"] for b in series[0]["buckets"]]
        cumulative = [
            float(sum(s["buckets"][i]["count"] for s in series)) for i in range(len(bounds))
        ]
        return bounds, [*cumulative, float(sum(s["count"] for s in series))]

    bounds, cumulative = merged(doc)
    if prev is not None:
        _, before = merged(prev)
        if cumulative[-1] > before[-1]:
            cumulative = [a - b for a, b in zip(cumulative, before, strict=True)]
    counts = [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]
    return {f"p{round(q * 100)}": histogram_quantile(q, bounds, counts) for q in (0.5, 0.95, 0.99)}


def _check_matches_json(snapshot: dict[str, Any]) -> None:
    """Every number the page shows equals what its own last document says."""
    doc, prev, shown = snapshot["doc"], snapshot["prev"], snapshot["shown"]
    total = _sum(doc, HTTP_REQUESTS.name)
    assert float(shown["total-requests"]["value"]) == total
    assert shown["total-requests"]["text"] == str(round(total))
    assert float(shown["errors-total"]["value"]) == _sum(doc, HTTP_ERRORS.name)
    for element, metric in [("rss", PROCESS_RSS), ("heap", PROCESS_HEAP_USED),
                            ("loop-lag", EVENT_LOOP_LAG), ("load", SYSTEM_LOAD_1M)]:  # fmt: skip
        value = shown[element]["value"]
        assert (float(value) if value else None) == _gauge(doc, metric.name), element
    for name, expected in _quantiles(doc, prev).items():
        assert math.isclose(float(shown[name]["value"]), expected, rel_tol=1e-9), name
    if prev is not None:
        elapsed = _seconds(doc) - _seconds(prev)
        rate = (total - _sum(prev, HTTP_REQUESTS.name)) / elapsed
        assert math.isclose(float(shown["request-rate"]["value"]), rate, rel_tol=1e-9)
    routes = {s["labels"][LABEL_ROUTE] for s in _series(doc, HTTP_REQUESTS.name)}
    assert [r["route"] for r in snapshot["routes"]] == sorted(routes)
    for row in snapshot["routes"]:
        assert row["requests"] == _sum(doc, HTTP_REQUESTS.name, row["route"]), row
        assert row["errors"] == _sum(doc, HTTP_ERRORS.name, row["route"]), row
    pairs = sorted((a["name"], a["severity"]) for a in snapshot["alerts"])
    assert pairs == sorted((a["name"], a["severity"]) for a in doc["alerts"])


def _seconds(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()


def test_dashboard_shows_the_document_and_follows_traffic(chromium: Chromium) -> None:
    """The page loads without console errors, shows the JSON's numbers, and moves with traffic."""
    monitoring = configure_monitoring(
        {
            "collect_interval": 1,
            "alert_evaluation_interval": 0.2,
            "notifiers": [],  # the page shows the alerts; nothing else needs to hear of them
            "alerts": [
                {
                    "name": "AnyFailure",
                    "metric": HTTP_ERRORS.name,
                    "operator": ">",
                    "value": 0,
                    "aggregation": "value",
                    "severity": "critical",
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
                lambda: (s := snapshot()) is not None and s["updates"] >= 2 and s,
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
            # Traffic over, the page keeps polling and the rate falls back to zero.
            assert wait_until(
                lambda: float(snapshot()["shown"]["request-rate"]["value"] or 0) == 0, timeout=10
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
